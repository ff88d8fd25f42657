"""rladder-stream: online inference with Recurrent Ladder networks (RLadder) and RTagger.

The rooms, bottom to top (nothing imports what stands above it; ``tests/test_imports.py`` checks it):

- ``rladder_stream.envs``: the Gymnasium environments and their data (a leaf: numpy, Gymnasium, Pillow, mido).
- the model: :mod:`~rladder_stream.config` (configurations), :mod:`~rladder_stream.registry` (named
  configurations and the one factory, :func:`build_model`), :mod:`~rladder_stream.cells`,
  :mod:`~rladder_stream.ladder` (the pure one-tick step), :mod:`~rladder_stream.tagger` (RTagger).
- streaming: :mod:`~rladder_stream.predictor` (stateful), :mod:`~rladder_stream.stateless` (SB3-style),
  :mod:`~rladder_stream.checkpoint` (safe save/load), :mod:`~rladder_stream.baselines` (reference predictors).
- training: :mod:`~rladder_stream.tasks`, :mod:`~rladder_stream.train`, :mod:`~rladder_stream.losses`,
  :mod:`~rladder_stream.metrics` (AMI), :mod:`~rladder_stream.mean_teacher`.
- ``rladder_stream.export`` (ONNX export and :class:`OnnxPredictor`) and ``rladder_stream.reproduce`` (the
  paper's tables).
- ``rladder_stream.apps``: the command line, the benchmark, MIDI streaming, the figures, and
  :func:`load_predictor`, the one way to load a model file.

Everything below is importable from here; the names load on first use, so ``import rladder_stream`` is cheap.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .version import __version__

if not os.path.isdir(os.path.join(os.path.dirname(__file__), "envs")):  # a source checkout: envs/ is beside us
    from pathlib import Path

    from .checkout import use_source_folders

    use_source_folders(__name__, Path(__file__).resolve().parent)

#: public name -> the module that defines it
_PUBLIC = {
    "LadderConfig": "config", "LevelConfig": "config",
    "get_config": "registry", "list_configs": "registry", "register_config": "registry", "build_model": "registry",
    "RLadder": "ladder", "RTagger": "tagger",
    "StepOutput": "outputs", "StreamingPredictor": "outputs",
    "Predictor": "predictor", "StatelessPredictor": "stateless",
    "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint", "load_model": "checkpoint",
    "save_checkpoint": "checkpoint",
    "OnnxPredictor": "export.runtime", "OnnxModelError": "export.runtime", "export_onnx": "export.onnx",
    "load_predictor": "apps.loading",
}

__all__ = ["__version__", *sorted(_PUBLIC)]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


if TYPE_CHECKING:  # what type checkers and editors see
    from .apps.loading import load_predictor
    from .checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
    from .config import LadderConfig, LevelConfig
    from .export.onnx import export_onnx
    from .export.runtime import OnnxModelError, OnnxPredictor
    from .ladder import RLadder
    from .outputs import StepOutput, StreamingPredictor
    from .predictor import Predictor
    from .registry import build_model, get_config, list_configs, register_config
    from .stateless import StatelessPredictor
    from .tagger import RTagger
