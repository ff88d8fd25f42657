"""rladder-stream: online inference with Recurrent Ladder networks (RLadder) and RTagger.

The rooms, bottom to top, each a folder (nothing imports what stands above it; ``tests/test_imports.py`` checks
it; docs/design.md#the-layout):

- ``rladder_stream.envs``: the Gymnasium environments and their data (a leaf: numpy, Gymnasium, Pillow, mido).
- the base, the modules directly in this folder: the errors a user can cause, every command's argument parser,
  atomic writes, the version, and the start-up hook that registers the environments with Gymnasium.
- :mod:`rladder_stream.model`: configurations (plain data), the registry and the one factory,
  :func:`build_model`, the cells, RLadder (the pure one-tick step) and RTagger.
- :mod:`rladder_stream.streaming`: the stateful :class:`Predictor`, the stateless one, the one streaming loop,
  safe checkpoints and reference predictors.
- :mod:`rladder_stream.training`: the tasks and their on-device renderers, the training loop and its settings,
  the costs, AMI, Mean Teacher.
- ``rladder_stream.export`` (ONNX export and :class:`OnnxPredictor`) beside :mod:`rladder_stream.reproduce` (the
  paper's tables).
- :mod:`rladder_stream.apps`: the command line, the benchmark, MIDI streaming, the figures, and
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
