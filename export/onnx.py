"""ONNX export of the one-tick step: ``(obs, state) -> (outputs, next_state)`` as one ONNX graph.

The graph is the model's pure ``step`` (docs/design.md#one-tick) with its state as named inputs and outputs:

================================  ==========================================================
inputs                            ``obs`` ``(batch, *obs_shape)``, then ``state.<name>`` for each
                                  entry of ``model.state_spec()`` ``(batch, *shape)``, in that order
outputs                           the step's outputs (``class_logits``, ``probe_logits``,
                                  ``prediction_logits``: whichever the config enables), then
                                  ``next_state.<name>`` in the same order as the state inputs
================================  ==========================================================

The batch axis (``batch``) is dynamic; every tensor is float32. A streaming runtime feeds each
``next_state.<name>`` back as ``state.<name>`` of the next tick, starting from each entry's ``init`` in the
metadata (zeros for the RLadder; see :data:`STATE_INITS`).

The model carries its own description as ``metadata_props`` (keys prefixed ``rladder_stream.``): the
config JSON, the state layout (names, per-sample shapes, initial value), input and output names and
per-sample shapes, the package version, so that :class:`rladder_stream.export.runtime.OnnxPredictor` needs the ``.onnx``
file alone.

Export uses PyTorch's ``torch.export``-based ONNX exporter (``torch.onnx.export(..., dynamo=True)``, which
needs the ``onnxscript`` package); the legacy TorchScript exporter is deprecated and not used.

    >>> from rladder_stream import build_model, get_config
    >>> from export.onnx import export_onnx
    >>> path = export_onnx(build_model(get_config("omm-rladder", size="tiny")), "/tmp/omm.onnx")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from rladder_stream.fileio import atomic_write_bytes
from rladder_stream.model.ladder import RLadder
from rladder_stream.model.tagger import RTagger
from rladder_stream.version import __version__

FORMAT = "rladder-stream-onnx-step"
#: Metadata key of the SHA-256 over the whole model (graph, weights, every other metadata entry); see
#: :func:`model_digest`. Checked on every load, so a changed byte inside a weight is refused.
DIGEST_KEY = "rladder_stream.sha256"
FORMAT_VERSION = 1
META_PREFIX = "rladder_stream."
OBS_INPUT = "obs"
STATE_INPUT_PREFIX = "state."
STATE_OUTPUT_PREFIX = "next_state."
BATCH_DIM = "batch"

#: The opset the exporter writes natively (torchlib's opset in torch 2.4-2.13: no version conversion) and
#: that every onnxruntime this package accepts (>= 1.18) loads. IR version follows the exporter (10).
DEFAULT_OPSET = 18
#: Opsets ``export_onnx`` accepts: 18 up to the highest the installed torch exporter writes (23 in torch 2.13;
#: onnxruntime 1.31 loads up to opset 26 and IR version 13). Other opsets are converted by onnxscript.
MIN_OPSET = 18


def max_opset() -> int:
    """The highest opset the installed PyTorch exporter can write."""
    try:
        from torch.onnx import _constants

        return int(_constants.ONNX_MAX_OPSET)
    except (ImportError, AttributeError):  # pragma: no cover - older or newer torch layouts
        return 20


#: Model classes that export supports, by name (the name is stored as ``model_kind``). A later model with
#: the same generic interface (``config.to_dict()``, ``state_spec()``, ``init_state()``, pure ``step``),
#: such as RTagger, is added here and needs nothing else from this module.
EXPORTABLE_MODELS: dict[str, type[nn.Module]] = {"RLadder": RLadder, "RTagger": RTagger}
#: How a state entry starts (metadata ``init``): zeros, a constant, or a softmax over axis 1 of standard-normal
#: noise (the RTagger's masks). A model lists its non-zero starts in ``state_initialisers()``.
STATE_INITS = ("zeros", "constant:<value>", "softmax_normal")


class StepGraph(nn.Module):
    """The pure step with a flat signature for export: ``forward(obs, *state) -> (*outputs, *next_state)``.

    Works for any model with ``state_spec()`` and ``step(obs, state) -> (outputs, next_state)``.
    """

    def __init__(self, model: nn.Module, output_names: Sequence[str]):
        super().__init__()
        self.model = model
        self.state_names = list(model.state_spec())
        self.output_names = list(output_names)

    def forward(self, obs: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs, next_state = self.model.step(obs, dict(zip(self.state_names, state)))
        return tuple(outputs[k] for k in self.output_names) + tuple(next_state[k] for k in self.state_names)


def state_input_name(name: str) -> str:
    """The graph input that carries state entry ``name`` (e.g. ``enc1.h`` -> ``state.enc1.h``)."""
    return STATE_INPUT_PREFIX + name


def state_output_name(name: str) -> str:
    """The graph output that carries the next value of state entry ``name``."""
    return STATE_OUTPUT_PREFIX + name


def _load_model(model_or_checkpoint_path: nn.Module | str | os.PathLike) -> nn.Module:
    if isinstance(model_or_checkpoint_path, (str, os.PathLike)):
        from rladder_stream.streaming.checkpoint import load_model

        return load_model(model_or_checkpoint_path, "cpu")
    if isinstance(model_or_checkpoint_path, nn.Module):
        return model_or_checkpoint_path
    raise TypeError(f"export_onnx takes a model or a checkpoint path, got {type(model_or_checkpoint_path).__name__}")


def _model_kind(model: nn.Module) -> str:
    for kind, cls in EXPORTABLE_MODELS.items():
        if type(model) is cls:
            return kind
    raise TypeError(
        f"ONNX export supports {', '.join(EXPORTABLE_MODELS)} models, got {type(model).__name__} "
        "(a model needs config.to_dict(), state_spec(), init_state() and a pure step(obs, state))"
    )


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the exporter's progress prints and known-harmless notices (real errors still raise)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx._internal.exporter._registration", "torch.onnx", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*axis name.*will not be used", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _name_batch_axis(proto: Any) -> None:
    """Name the leading axis of every graph input and output ``batch``; fail if export fixed it."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if not dims:
            raise RuntimeError(f"exported graph value {value.name!r} has no shape")
        if dims[0].HasField("dim_value"):
            raise RuntimeError(f"the exporter fixed the batch axis of {value.name!r} to {dims[0].dim_value}")
        dims[0].dim_param = BATCH_DIM


def build_metadata(model: nn.Module, output_shapes: dict[str, tuple[int, ...]]) -> dict[str, str]:
    """The ``metadata_props`` of an exported step (keys without the ``rladder_stream.`` prefix)."""
    spec = model.state_spec()
    inits = model.state_initialisers() if hasattr(model, "state_initialisers") else {}
    layout = [
        {"name": n, "input": state_input_name(n), "output": state_output_name(n), "shape": list(shape), "init": inits.get(n, "zeros")}
        for n, shape in spec.items()
    ]
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "model_kind": _model_kind(model),
        "package_version": __version__,
        "torch_version": torch.__version__,
        "config": json.dumps(model.config.to_dict(), sort_keys=True),
        "obs_shape": json.dumps(list(model.config.obs_shape)),
        "dtype": "float32",
        "batch_axis": "0",
        "state_layout": json.dumps(layout),
        "inputs": json.dumps([OBS_INPUT] + [state_input_name(n) for n in spec]),
        "outputs": json.dumps(list(output_shapes) + [state_output_name(n) for n in spec]),
        "output_shapes": json.dumps({k: list(v) for k, v in output_shapes.items()}),
    }


def model_digest(proto: Any) -> str:
    """SHA-256 of a model's deterministic serialisation without its own :data:`DIGEST_KEY` entry: it covers
    the graph, every initializer (the weights) and the other metadata."""
    import hashlib

    import onnx

    copy_ = onnx.ModelProto()
    copy_.CopyFrom(proto)
    kept = [(p.key, p.value) for p in copy_.metadata_props if p.key != DIGEST_KEY]
    del copy_.metadata_props[:]
    for key, value in kept:
        entry = copy_.metadata_props.add()
        entry.key, entry.value = key, value
    return hashlib.sha256(copy_.SerializeToString(deterministic=True)).hexdigest()


def export_onnx(
    model_or_checkpoint_path: nn.Module | str | os.PathLike,
    out_path: str | os.PathLike,
    opset: int | None = None,
    *,
    verify: bool = True,
) -> Path:
    """Export the one-tick step of a model (or of a checkpoint's model) to an ONNX file.

    Args:
        model_or_checkpoint_path: an :class:`~rladder_stream.model.ladder.RLadder` (not modified: a float32
            eval-mode copy is exported, so BatchNorm uses its running statistics) or a checkpoint path.
        out_path: the ``.onnx`` file to write (atomically; parent folders are created).
        opset: ONNX opset, ``MIN_OPSET`` .. :func:`max_opset`; default :data:`DEFAULT_OPSET`.
        verify: run one tick in ONNX Runtime (CPU) on random inputs and state and compare with PyTorch;
            raise ``RuntimeError`` above 1e-4.
    Returns:
        ``out_path`` as a ``Path``. The model passes ``onnx.checker`` (full check).
    """
    import onnx

    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= max_opset():
        raise ValueError(f"opset {opset} is not supported; choose {MIN_OPSET}..{max_opset()} (default {DEFAULT_OPSET})")
    source = _load_model(model_or_checkpoint_path)
    _model_kind(source)
    model = copy.deepcopy(source).cpu().float().eval()
    spec = model.state_spec()

    # Example inputs: batch 2 (torch.export specialises axes of size 0 and 1), a non-zero state.
    gen = torch.Generator().manual_seed(0)
    batch = 2
    obs = torch.rand((batch, *model.config.obs_shape), generator=gen)
    state = {k: 0.5 * torch.randn((batch, *shape), generator=gen) for k, shape in spec.items()}
    if getattr(model.config, "groups", 0):  # an RTagger is checked on what it is fed: masks that sum to 1, z in range,
        start = model.init_state(batch, generator=gen)  # its tick counter, and (binary inputs) binary images; random
        state.update({k: start[k] for k in ("z", "m", "tick") if k in start})  # ones drive a trained engine's dense
        if model.config.tagger_input == "binary":  # activations into the thousands, where float32 rounding alone
            obs = (obs < 0.3).float()  # exceeds the check's tolerance
    with torch.no_grad():
        want_outputs, want_state = model.step(obs, state)
    output_names = list(want_outputs)
    graph = StepGraph(model, output_names).eval()
    batch_dim = torch.export.Dim(BATCH_DIM, min=1)
    input_names = [OBS_INPUT] + [state_input_name(n) for n in spec]
    graph_output_names = output_names + [state_output_name(n) for n in spec]
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            graph,
            (obs, *state.values()),
            dynamo=True,
            opset_version=opset,
            input_names=input_names,
            output_names=graph_output_names,
            dynamic_shapes=({0: batch_dim}, tuple({0: batch_dim} for _ in spec)) if spec else ({0: batch_dim},),
            optimize=True,
            verbose=False,
        )
    proto = program.model_proto
    _name_batch_axis(proto)
    proto.graph.name = f"rladder_stream_step_{model.config.name}"
    proto.doc_string = (
        f"One tick of the {_model_kind(model)} '{model.config.name}' (rladder-stream {__version__}): "
        f"inputs {OBS_INPUT} and {STATE_INPUT_PREFIX}<name>, outputs the step's outputs and "
        f"{STATE_OUTPUT_PREFIX}<name>; state starts as its layout's 'init' says; see metadata_props {META_PREFIX}*."
    )
    meta = build_metadata(model, {k: tuple(v.shape[1:]) for k, v in want_outputs.items()})
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = META_PREFIX + key, value
    digest = model_digest(proto)  # before the entry that will hold it exists
    entry = proto.metadata_props.add()
    entry.key, entry.value = DIGEST_KEY, digest
    onnx.checker.check_model(proto, full_check=True)

    if verify:
        _verify(proto, obs, state, want_outputs, want_state, output_names)

    out_path = atomic_write_bytes(out_path, proto.SerializeToString())
    return out_path


def _verify(proto: Any, obs: torch.Tensor, state: dict[str, torch.Tensor], want_outputs: dict[str, torch.Tensor],
            want_state: dict[str, torch.Tensor], output_names: list[str], atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """One tick in ONNX Runtime (CPU) against PyTorch on the export's example inputs: every value within
    ``atol + rtol * |value|`` (a logit near the forecast's clip has a slope of 1,000 in the probability, so float32
    rounding there alone moves a logit of -6.9 by ~1e-4)."""
    import onnxruntime as ort

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {OBS_INPUT: obs.numpy()} | {state_input_name(k): v.numpy() for k, v in state.items()}
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    want = {k: want_outputs[k] for k in output_names} | {state_output_name(k): v for k, v in want_state.items()}
    worst = {k: float(np.abs(got[k] - v.numpy()).max()) for k, v in want.items()}
    bad = {k: worst[k] for k, v in want.items() if not (np.abs(got[k] - v.numpy()) <= atol + rtol * np.abs(v.numpy())).all()}
    if bad:
        raise RuntimeError(f"exported step disagrees with PyTorch beyond {atol} + {rtol} x |value|: {bad}")
