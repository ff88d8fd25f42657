"""Streaming inference with an exported step in ONNX Runtime: :class:`OnnxPredictor`.

``OnnxPredictor`` has the interface of :class:`rladder_stream.Predictor` (``reset(stream_ids=None)``,
``step(obs) -> StepOutput``, ``n_streams`` batched streams, the same unbatched/batched conventions, the
same observation checks and the same post-processing of the outputs) and is built from the ``.onnx`` file
alone: configuration and state layout come from the model's metadata (see :mod:`rladder_stream.export.onnx`).

    >>> from export.runtime import OnnxPredictor
    >>> predictor = OnnxPredictor("omm.onnx", n_streams=1)   # doctest: +SKIP
    >>> out = predictor.step(frame)                          # doctest: +SKIP

Where the state lives:

* **host** (CPU provider, the default without a GPU): the state is a dict of NumPy arrays fed to
  ``session.run`` and replaced by its results.
* **device** (CUDA provider, chosen automatically when onnxruntime-gpu finds a usable GPU): the state stays
  in GPU memory between ticks through I/O binding, in two buffers used in turn (read one, write the other),
  so a tick copies only the observation in and the step's outputs out. The same code runs with
  ``device="cpu"`` buffers when ``io_binding=True`` is asked for on CPU, which is how it is tested here.

In both, the state is replaced only after a successful tick: a rejected input leaves every stream as it was.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from rladder_stream.errors import ModelFileError
from rladder_stream.model.config import LadderConfig
from rladder_stream.streaming.outputs import StepOutput
from rladder_stream.streaming.predictor import to_step_output
from rladder_stream.streaming.validation import validate_observation, validate_stream_ids

from .onnx import DIGEST_KEY, FORMAT, FORMAT_VERSION, META_PREFIX, OBS_INPUT, model_digest

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


# ============================================================================ reading a file


class OnnxModelError(ModelFileError):
    """An ``.onnx`` file that cannot be used: missing, truncated, corrupted (its digest differs), not an
    rladder-stream step, or refused by ONNX Runtime; the message names the file."""


def read_verified_model(path: str | os.PathLike) -> tuple[bytes, Any]:
    """The bytes and parsed ``ModelProto`` of an exported step, after checking its digest.

    Raises :class:`OnnxModelError` for a missing, unparsable or altered file. A file without a digest
    (exported before digests were written) loads with a ``UserWarning``: it cannot be checked.
    """
    import onnx
    from google.protobuf.message import DecodeError

    path = OnnxModelError.check_path(path, "ONNX")
    data = path.read_bytes()
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OnnxModelError(f"{path}: not a readable ONNX file (truncated or corrupted?): {type(exc).__name__}: {exc}") from exc
    if not proto.graph.node and not proto.graph.input:
        raise OnnxModelError(f"{path}: not a readable ONNX file (no graph; truncated, empty or another kind of file?)")
    metadata = [(p.key, p.value) for p in proto.metadata_props]
    if not all(isinstance(text, str) for entry in metadata for text in entry):  # protobuf hands back bytes for bad UTF-8
        raise OnnxModelError(f"{path}: damaged ONNX file: its metadata is not valid text (corrupted or changed after "
                             "export); export it again")
    recorded = dict(metadata).get(DIGEST_KEY)
    if recorded is None:
        if any(key.startswith(META_PREFIX) for key, _ in metadata):
            warnings.warn(f"{path} has no {DIGEST_KEY} (exported before digests were written): its integrity cannot be checked; "
                          "export it again", UserWarning, stacklevel=3)
    elif recorded != model_digest(proto):
        raise OnnxModelError(f"{path}: checksum mismatch: the ONNX file's graph or weights were changed after export "
                             "(corrupted or tampered); export it again")
    return data, proto


def is_onnx_file(path: str | os.PathLike) -> bool:
    """Whether a model path names an ONNX file: by its ``.onnx`` suffix, or by content (an ONNX model starts
    with its IR version field, a checkpoint with a safetensors header or a zip signature)."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        return True
    try:
        with path.open("rb") as f:
            head = f.read(9)
    except OSError:
        return False
    is_checkpoint = head[:2] == b"PK" or (len(head) == 9 and head[8:9] == b"{")
    return len(head) >= 2 and head[0] == 0x08 and not is_checkpoint


def describe_onnx(path: str | os.PathLike) -> dict[str, Any]:
    """What ``rladder-stream info`` prints about an exported step (digest checked, metadata parsed)."""
    info = read_step_info(path)
    _, proto = read_verified_model(path)
    return {"file": str(path), "format": f"ONNX step (format {FORMAT_VERSION}), opset "
            f"{next((o.version for o in proto.opset_import if o.domain in ('', 'ai.onnx')), '?')}",
            "model_kind": info.model_kind, "config": info.config.to_dict(), "obs_shape": list(info.obs_shape),
            "state": {k: list(v) for k, v in info.state_shapes.items()}, "outputs": list(info.output_names),
            "exported_by": info.package_version}


# ============================================================================ model description


@dataclass(frozen=True)
class OnnxStepInfo:
    """What an exported step's metadata says about it.

    Attributes:
        model_kind: ``"RLadder"`` (later also RTagger).
        config: the model's configuration.
        obs_shape: shape of one observation.
        state_shapes: state entry name -> per-sample shape, in graph order.
        state_inputs / state_outputs: state entry name -> graph input / output name.
        output_names: the step's own outputs (logits), in graph order, without the state.
        output_shapes: per-sample shapes of those outputs.
        package_version: rladder-stream version that exported the model.
    """

    model_kind: str
    config: LadderConfig
    obs_shape: tuple[int, ...]
    state_shapes: dict[str, tuple[int, ...]]
    state_inputs: dict[str, str]
    state_outputs: dict[str, str]
    output_names: tuple[str, ...]
    output_shapes: dict[str, tuple[int, ...]]
    package_version: str
    dtype: np.dtype
    state_inits: dict[str, str] = field(default_factory=dict)  # name -> "zeros" | "constant:v" | "softmax_normal"

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], source: str = "model") -> "OnnxStepInfo":
        """Parse ``metadata_props`` (full keys, with the ``rladder_stream.`` prefix); ``ValueError`` if invalid."""
        meta = {k[len(META_PREFIX):]: v for k, v in metadata.items() if k.startswith(META_PREFIX)}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{source}: not an rladder-stream ONNX step (metadata {META_PREFIX}format={FORMAT!r} missing)")
        if meta.get("format_version") != str(FORMAT_VERSION):
            raise ValueError(f"{source}: ONNX step format version {meta.get('format_version')} is not supported (expected {FORMAT_VERSION})")
        try:
            layout = json.loads(meta["state_layout"])
            output_shapes = {k: tuple(v) for k, v in json.loads(meta["output_shapes"]).items()}
            inits = {e["name"]: e.get("init", "zeros") for e in layout}
            for name, kind in inits.items():
                _check_init(name, kind)
            return cls(
                model_kind=meta["model_kind"],
                config=LadderConfig.from_dict(json.loads(meta["config"])),
                obs_shape=tuple(json.loads(meta["obs_shape"])),
                state_shapes={e["name"]: tuple(e["shape"]) for e in layout},
                state_inputs={e["name"]: e["input"] for e in layout},
                state_outputs={e["name"]: e["output"] for e in layout},
                output_names=tuple(output_shapes),
                output_shapes=output_shapes,
                package_version=meta.get("package_version", "unknown"),
                dtype=np.dtype(meta.get("dtype", "float32")),
                state_inits=inits,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: invalid rladder-stream metadata: {type(exc).__name__}: {exc}") from exc


def _check_init(name: str, kind: str) -> None:
    if kind in ("zeros", "softmax_normal"):
        return
    if kind.startswith("constant:"):
        float(kind.split(":", 1)[1])  # ValueError when not a number
        return
    raise ValueError(f"state {name!r}: unknown init {kind!r}")


def initial_state(info: OnnxStepInfo, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The state before the first tick of ``batch`` streams, as the metadata's ``init`` of each entry says
    (``softmax_normal``: a softmax over axis 1, the RTagger's groups, of standard-normal noise from ``rng``)."""
    state = {}
    for name, shape in info.state_shapes.items():
        kind, full = info.state_inits.get(name, "zeros"), (batch, *shape)
        if kind == "softmax_normal":
            from scipy.special import softmax

            state[name] = softmax(rng.standard_normal(full), axis=1).astype(info.dtype)
        elif kind.startswith("constant:"):
            state[name] = np.full(full, float(kind.split(":", 1)[1]), info.dtype)
        else:
            state[name] = np.zeros(full, info.dtype)
    return state


def read_step_info(path: str | os.PathLike) -> OnnxStepInfo:
    """The metadata of an exported step, read with ``onnx`` after checking the file's digest (no session is
    created). Raises :class:`OnnxModelError`."""
    _, proto = read_verified_model(path)
    try:
        return OnnxStepInfo.from_metadata({p.key: p.value for p in proto.metadata_props}, str(path))
    except ValueError as exc:
        raise OnnxModelError(str(exc)) from exc


# ============================================================================ providers


@contextlib.contextmanager
def _ort_logs_quiet():
    """onnxruntime logs an error when the CUDA provider cannot load (no GPU, no CUDA libraries); we check instead."""
    import onnxruntime as ort

    ort.set_default_logger_severity(4)
    try:
        yield
    finally:
        ort.set_default_logger_severity(2)  # onnxruntime's default (warnings)


@functools.lru_cache(maxsize=None)
def cuda_usable() -> bool:
    """Whether onnxruntime can run on a CUDA GPU here (CUDA provider built in *and* a working GPU).

    onnxruntime-gpu lists the CUDA provider as available even without a GPU or CUDA libraries, so this
    opens a session on a one-node model once per process and checks which provider it got.
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper

    if CUDA not in ort.get_available_providers():
        return False
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    try:
        with _ort_logs_quiet():
            session = ort.InferenceSession(probe.SerializeToString(), providers=[CUDA, CPU])
    except Exception:  # noqa: BLE001 - any failure means "no usable GPU"
        return False
    return CUDA in session.get_providers()


def default_providers() -> list[str]:
    """``[CUDA, CPU]`` when onnxruntime finds a usable CUDA GPU, else ``[CPU]``."""
    return [CUDA, CPU] if cuda_usable() else [CPU]


def _provider_name(p: str | tuple[str, dict]) -> str:
    return p if isinstance(p, str) else p[0]


# ============================================================================ where the state lives


class _HostState:
    """State as NumPy arrays on the host, fed to ``session.run`` each tick."""

    device = "cpu"

    def __init__(self, session: Any, info: OnnxStepInfo, n_streams: int):
        self.session, self.info = session, info
        self.fetch = list(info.output_names) + [info.state_outputs[n] for n in info.state_shapes]
        self.arrays = {n: np.zeros((n_streams, *s), info.dtype) for n, s in info.state_shapes.items()}

    def run(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        feeds = {OBS_INPUT: obs} | {self.info.state_inputs[n]: a for n, a in self.arrays.items()}
        values = self.session.run(self.fetch, feeds)
        k = len(self.info.output_names)
        self.arrays = dict(zip(self.info.state_shapes, values[k:]))  # replaced only after a successful run
        return dict(zip(self.info.output_names, values[:k]))

    def get(self) -> dict[str, np.ndarray]:
        return {n: a.copy() for n, a in self.arrays.items()}

    def set(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays


class _BoundState:
    """State kept on the execution device between ticks through I/O binding (the CUDA path).

    Two sets of state buffers on ``device``; a tick reads set ``cur`` and writes set ``1 - cur``, then
    flips ``cur``: no state crosses to the host, nothing is allocated for the state per tick, and a failed
    tick leaves set ``cur`` (the state) untouched. The observation is copied in by ``bind_cpu_input``;
    the step's outputs are bound to host memory.
    """

    def __init__(self, session: Any, info: OnnxStepInfo, n_streams: int, device: str, device_id: int = 0):
        import onnxruntime as ort

        self.session, self.info, self.device = session, info, device
        self.buffers = [
            {n: ort.OrtValue.ortvalue_from_numpy(np.zeros((n_streams, *s), info.dtype), device, device_id) for n, s in info.state_shapes.items()}
            for _ in range(2)
        ]
        self.bindings = [self._binding(src=i, dst=1 - i) for i in range(2)]
        self.cur = 0

    def _binding(self, src: int, dst: int) -> Any:
        binding = self.session.io_binding()
        for n in self.info.state_shapes:
            binding.bind_ortvalue_input(self.info.state_inputs[n], self.buffers[src][n])
        for name in self.info.output_names:  # bound first: get_outputs() lists them first, in this order
            binding.bind_output(name, "cpu")
        for n in self.info.state_shapes:
            binding.bind_ortvalue_output(self.info.state_outputs[n], self.buffers[dst][n])
        return binding

    def run(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        binding = self.bindings[self.cur]
        binding.bind_cpu_input(OBS_INPUT, obs)
        self.session.run_with_iobinding(binding)
        values = binding.get_outputs()
        # OrtValue.numpy() of host memory aliases a buffer the next tick overwrites: copy.
        outputs = {name: np.array(values[i].numpy(), copy=True) for i, name in enumerate(self.info.output_names)}
        self.cur = 1 - self.cur
        return outputs

    def get(self) -> dict[str, np.ndarray]:
        return {n: np.array(v.numpy(), copy=True) for n, v in self.buffers[self.cur].items()}

    def set(self, arrays: dict[str, np.ndarray]) -> None:
        for n, v in self.buffers[self.cur].items():
            v.update_inplace(np.ascontiguousarray(arrays[n]))


# ============================================================================ the predictor


def state_distance(state: Mapping[str, Any], reference: Mapping[str, Any]) -> float:
    """How far one predictor's state is from another's: the largest difference over the reference's tensors,
    absolute where a tensor stays within 1 and relative to its largest value above (an integrating LSTM cell of a
    trained music model reaches |c| ~ 200, where float32 rounding alone moves two runtimes ~1e-4 apart over 500
    ticks). Tensors or arrays; 0 for a model without state."""
    def array(x: Any) -> np.ndarray:
        return (x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float64))

    distances = []
    for name, ref in reference.items():
        ref, other = array(ref), array(state[name])
        if ref.size:
            distances.append(float(np.abs(other - ref).max()) / max(1.0, float(np.abs(ref).max())))
    return max(distances, default=0.0)


class OnnxPredictor:
    """Online inference with an exported one-tick step in ONNX Runtime over ``n_streams`` streams.

    Args:
        path: an ``.onnx`` file written by :func:`rladder_stream.export.onnx.export_onnx`.
        n_streams: number of independent streams stepped together (a batch).
        providers: onnxruntime execution providers (names or ``(name, options)`` pairs), e.g.
            ``["CPUExecutionProvider"]``; default: CUDA when onnxruntime-gpu finds a usable GPU, else CPU.
        session_options: an ``onnxruntime.SessionOptions`` (threads, graph optimisation level...).
        io_binding: keep the state on the execution device between ticks (default: on for CUDA, off for CPU).
        seed: seeds the noise of random initial states (the RTagger's masks); ``None``: fresh entropy.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        n_streams: int = 1,
        providers: Sequence[str | tuple[str, dict]] | None = None,
        *,
        session_options: Any = None,
        io_binding: bool | None = None,
        seed: int | None = None,
    ):
        import onnxruntime as ort

        if n_streams < 1:
            raise ValueError(f"n_streams must be >= 1, got {n_streams}")
        self.path = Path(path)
        data, proto = read_verified_model(self.path)
        try:
            self.info = OnnxStepInfo.from_metadata({p.key: p.value for p in proto.metadata_props}, str(self.path))
        except ValueError as exc:
            raise OnnxModelError(str(exc)) from exc
        requested = list(providers) if providers is not None else default_providers()
        wants_cuda = any(_provider_name(p) == CUDA for p in requested)
        try:
            with _ort_logs_quiet() if providers is None else contextlib.nullcontext():
                self.session = ort.InferenceSession(data, sess_options=session_options, providers=requested)
        except Exception as exc:  # onnxruntime's own types (InvalidProtobuf, Fail, InvalidGraph, ...)
            raise OnnxModelError(f"{self.path}: ONNX Runtime cannot load it: {type(exc).__name__}: {exc}") from exc
        self.providers: list[str] = self.session.get_providers()
        if providers is not None and wants_cuda and CUDA not in self.providers:
            warnings.warn(f"CUDAExecutionProvider was requested but could not be used; running on {self.providers}", RuntimeWarning, stacklevel=2)
        self._check_graph()
        self.n_streams = n_streams
        on_cuda = self.providers[0] == CUDA
        if io_binding is None:
            io_binding = on_cuda
        if io_binding:
            device_id = int(self.session.get_provider_options().get(CUDA, {}).get("device_id", 0)) if on_cuda else 0
            self._state = _BoundState(self.session, self.info, n_streams, "cuda" if on_cuda else "cpu", device_id)
        else:
            self._state = _HostState(self.session, self.info, n_streams)
        self.ticks = np.zeros(n_streams, dtype=np.int64)
        self._rng = np.random.default_rng(seed)
        if any(kind != "zeros" for kind in self.info.state_inits.values()):
            self.reset()

    def _check_graph(self) -> None:
        info = self.info
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        want_in = [OBS_INPUT] + [info.state_inputs[n] for n in info.state_shapes]
        want_out = list(info.output_names) + [info.state_outputs[n] for n in info.state_shapes]
        if inputs != want_in or outputs != want_out:
            raise OnnxModelError(f"{self.path}: graph inputs/outputs {inputs} / {outputs} do not match its metadata {want_in} / {want_out}")

    # ------------------------------------------------------------------------------ description
    @property
    def config(self) -> LadderConfig:
        """The exported model's configuration (from the file's metadata)."""
        return self.info.config

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """Shape of one observation (no batch axis)."""
        return self.info.obs_shape

    @property
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """State entry names and per-sample shapes, in graph order (as ``RLadder.state_spec()``)."""
        return dict(self.info.state_shapes)

    @property
    def io_binding(self) -> bool:
        """Whether the state stays on the execution device between ticks."""
        return isinstance(self._state, _BoundState)

    # ------------------------------------------------------------------------------ state
    @property
    def state(self) -> dict[str, np.ndarray]:
        """A copy of the current state, ``name -> (n_streams, *shape)`` arrays, in graph order."""
        return self._state.get()

    @state.setter
    def state(self, value: Mapping[str, Any]) -> None:
        self._state.set(self._validated_state(value, self.n_streams))

    def _validated_state(self, state: Any, batch: int) -> dict[str, np.ndarray]:
        """Check a state against the layout; ``ValueError`` naming the first problem. Returns copies."""
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be a mapping of name -> array, got {type(state).__name__}")
        names = list(self.info.state_shapes)
        missing, unknown = [n for n in names if n not in state], [k for k in state if k not in self.info.state_shapes]
        if missing or unknown:
            raise ValueError(f"state entries do not match the model: missing {missing}, unexpected {unknown}; expected {names}")
        checked = {}
        for name, shape in self.info.state_shapes.items():
            value = state[name]
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if value.dtype != self.info.dtype:
                raise ValueError(f"state {name!r} has dtype {value.dtype}; expected {self.info.dtype}")
            if value.shape != (batch, *shape):
                raise ValueError(f"state {name!r} has shape {value.shape}; expected {(batch, *shape)}")
            if not np.isfinite(value).all():
                raise ValueError(f"state {name!r} contains NaN or infinite values")
            checked[name] = np.array(value, copy=True, order="C")
        return checked

    # ------------------------------------------------------------------------------ streaming
    def reset(self, stream_ids: Sequence[int] | None = None) -> None:
        """Forget the past of the given streams (all when ``None``); the other streams are untouched."""
        ids = validate_stream_ids(stream_ids, self.n_streams)
        state, fresh = self._state.get(), initial_state(self.info, len(ids), self._rng)
        for name, value in state.items():
            value[ids] = fresh[name]  # each entry's start as the metadata says (zeros for the RLadder)
        self._state.set(state)
        self.ticks[ids] = 0

    def step(self, obs: Any) -> StepOutput:
        """Consume one observation per stream; return the next-observation forecast and class beliefs.

        ``obs`` is ``obs_shape`` for a single stream or ``(n_streams, *obs_shape)``; the outputs have the
        same batching. On a ``ValueError`` the state is unchanged.
        """
        x, batched = validate_observation(obs, self.obs_shape, self.n_streams, self.info.dtype)
        outputs = self._state.run(np.ascontiguousarray(x))
        self.ticks += 1
        return to_step_output(outputs, batched)

    def run(self, obs: Any, state: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """One pure tick for any batch size (the ONNX counterpart of ``RLadder.step``); the predictor's own
        streams are not touched.

        Args:
            obs: ``(B, *obs_shape)`` observations (checked like :meth:`step`'s).
            state: ``name -> (B, *shape)`` arrays of the model's dtype (float32).
        Returns:
            ``(outputs, next_state)``: the raw outputs (logits) and the next state, as NumPy arrays.
        """
        arr = np.asarray(obs.detach().cpu().numpy() if isinstance(obs, torch.Tensor) else obs)
        batch = arr.shape[0] if arr.ndim == len(self.obs_shape) + 1 else 1
        x, _ = validate_observation(arr, self.obs_shape, batch, self.info.dtype)
        checked = self._validated_state(state, batch)
        feeds = {OBS_INPUT: np.ascontiguousarray(x)} | {self.info.state_inputs[n]: v for n, v in checked.items()}
        fetch = list(self.info.output_names) + [self.info.state_outputs[n] for n in self.info.state_shapes]
        values = self.session.run(fetch, feeds)
        k = len(self.info.output_names)
        return dict(zip(self.info.output_names, values[:k])), dict(zip(self.info.state_shapes, values[k:]))

    def __repr__(self) -> str:
        return (f"OnnxPredictor({str(self.path)!r}, n_streams={self.n_streams}, providers={self.providers}, "
                f"io_binding={self.io_binding}, model={self.info.model_kind} {self.config.name!r})")
