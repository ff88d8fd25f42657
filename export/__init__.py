"""ONNX export of the one-tick step and streaming inference with ONNX Runtime.

* :func:`export_onnx` (:mod:`rladder_stream.export.onnx`): a model or checkpoint -> an ``.onnx`` file whose graph is one
  tick, ``(obs, state.*) -> (outputs, next_state.*)``, with a dynamic batch axis and the model's config and
  state layout in its metadata. The ``rladder-stream export`` command is :func:`rladder_stream.apps.cli.export_cli_main`.
* :class:`OnnxPredictor` (:mod:`rladder_stream.export.runtime`): the ``Predictor`` interface on ONNX Runtime, built from
  the ``.onnx`` file alone; CUDA with the state kept on the GPU (I/O binding) when available, else CPU.

Loading any model file, checkpoint or ``.onnx``, is :func:`rladder_stream.load_predictor`.
"""

from .onnx import DEFAULT_OPSET, MIN_OPSET, export_onnx, max_opset
from .runtime import (OnnxModelError, OnnxPredictor, OnnxStepInfo, cuda_usable, default_providers, read_step_info,
                      state_distance)

__all__ = [
    "DEFAULT_OPSET",
    "MIN_OPSET",
    "OnnxModelError",
    "OnnxPredictor",
    "OnnxStepInfo",
    "cuda_usable",
    "default_providers",
    "export_onnx",
    "max_opset",
    "read_step_info",
    "state_distance",
]
