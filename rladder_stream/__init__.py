"""rladder-stream: online inference with Recurrent Ladder networks (RLadder) and RTagger.

The rooms, bottom to top (nothing imports what stands above it; ``tests/test_imports.py`` checks it):

- ``rladder_stream.envs``: the Gymnasium environments and their data (a leaf: numpy, Gymnasium, Pillow, mido).
- the model: :mod:`~rladder_stream.model.config` (configurations), :mod:`~rladder_stream.model.registry` (named
  configurations and the one factory, :func:`build_model`), :mod:`~rladder_stream.model.cells`,
  :mod:`~rladder_stream.model.ladder` (the pure one-tick step), :mod:`~rladder_stream.model.tagger` (RTagger).
- streaming: :mod:`~rladder_stream.streaming.predictor` (stateful), :mod:`~rladder_stream.streaming.stateless` (SB3-style),
  :mod:`~rladder_stream.streaming.checkpoint` (safe save/load), :mod:`~rladder_stream.streaming.baselines` (reference predictors).
- training: :mod:`~rladder_stream.training.tasks`, :mod:`~rladder_stream.training.train`, :mod:`~rladder_stream.training.losses`,
  :mod:`~rladder_stream.training.metrics` (AMI), :mod:`~rladder_stream.training.mean_teacher`.
- ``rladder_stream.export`` (ONNX export and :class:`OnnxPredictor`) and ``rladder_stream.reproduce`` (the
  paper's tables).
- ``rladder_stream.apps``: the command line, the benchmark, MIDI streaming, the figures, and
  :func:`load_predictor`, the one way to load a model file.

Everything below is importable from here; the names load on first use, so ``import rladder_stream`` is cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .version import __version__

#: public name -> the module that defines it
_PUBLIC = {
    "LadderConfig": "model.config", "LevelConfig": "model.config",
    "get_config": "model.registry", "list_configs": "model.registry", "register_config": "model.registry",
    "build_model": "model.registry", "RLadder": "model.ladder", "RTagger": "model.tagger",
    "StepOutput": "streaming.outputs", "StreamingPredictor": "streaming.outputs",
    "Predictor": "streaming.predictor", "StatelessPredictor": "streaming.stateless",
    "CheckpointError": "streaming.checkpoint", "load_checkpoint": "streaming.checkpoint",
    "load_model": "streaming.checkpoint", "save_checkpoint": "streaming.checkpoint",
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
    from .export.onnx import export_onnx
    from .export.runtime import OnnxModelError, OnnxPredictor
    from .model.config import LadderConfig, LevelConfig
    from .model.ladder import RLadder
    from .model.registry import build_model, get_config, list_configs, register_config
    from .model.tagger import RTagger
    from .streaming.checkpoint import CheckpointError, load_checkpoint, load_model, save_checkpoint
    from .streaming.outputs import StepOutput, StreamingPredictor
    from .streaming.predictor import Predictor
    from .streaming.stateless import StatelessPredictor
