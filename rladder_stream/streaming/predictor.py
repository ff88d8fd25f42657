"""Stateful online predictor: a batch of independent streams advanced one tick at a time.

``Predictor`` owns the explicit state of :meth:`RLadder.step` and nothing else: each call validates the
observation, runs the pure step, and only then replaces the state, so a rejected input leaves every
stream exactly where it was.

    >>> import numpy as np
    >>> from rladder_stream import Predictor, get_config, build_model
    >>> predictor = Predictor(build_model(get_config("omm-rladder", size="tiny")))
    >>> out = predictor.step(np.zeros((32, 32), np.float32))
    >>> out.next_obs.shape, out.class_probs.shape
    ((32, 32), (10,))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..model.ladder import RLadder, State
from .checkpoint import load_model, save_checkpoint
from .fast_step import make_step
from .outputs import StepOutput
from .validation import validate_observation, validate_stream_ids

THREADS_ENV = "RLADDER_STREAM_THREADS"
_TORCH_DEFAULT_THREADS = torch.get_num_threads()  # torch's own choice, before anyone changes it


def streaming_threads(n_streams: int, device: torch.device, threads: int | None = None) -> int:
    """Set (and return) torch's intra-op thread count for streaming ``n_streams`` streams on ``device``.

    A tick at batch 1 is a few hundred tiny operations: torch's thread pool spends more time waking and spinning
    its threads than computing, and stalls badly when another process holds a core (on a 2-core machine the demo
    streamed 5 ticks/s with the default pool beside other work, 60-100 with one thread). So on the CPU, at
    ``n_streams <= 4``, streaming uses one thread unless someone asked otherwise: ``threads`` (explicit), else
    ``$RLADDER_STREAM_THREADS``, else an ``$OMP_NUM_THREADS`` or a ``torch.set_num_threads`` already made (both
    left as they are). On a GPU, or for bigger batches, nothing is changed. The setting is torch's, for the
    whole process.
    """
    if threads is None and os.environ.get(THREADS_ENV):
        try:
            threads = int(os.environ[THREADS_ENV])
        except ValueError:
            raise ValueError(f"${THREADS_ENV} must be a whole number of threads, got {os.environ[THREADS_ENV]!r}") from None
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    elif (device.type == "cpu" and n_streams <= 4 and not os.environ.get("OMP_NUM_THREADS")
          and torch.get_num_threads() == _TORCH_DEFAULT_THREADS):
        torch.set_num_threads(1)
    return torch.get_num_threads()


def to_step_output(outputs: Mapping[str, torch.Tensor | np.ndarray], batched: bool) -> StepOutput:
    """Post-process one tick's raw outputs: sigmoid of prediction and probe logits, softmax of class logits.

    Shared by every runtime: ``Predictor`` passes torch tensors (computed with torch, on their device),
    ``rladder_stream.export.runtime.OnnxPredictor`` NumPy arrays (computed with SciPy's ``expit``/``softmax``, which keeps
    torch's thread pool out of an ONNX Runtime loop). ``outputs`` maps output names to ``(B, ...)`` values;
    with ``batched=False`` the batch axis (of size 1) is dropped.
    """

    def arr(t: torch.Tensor | np.ndarray | None) -> np.ndarray | None:
        if t is None:
            return None
        a = t.float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float32)
        return a if batched else a[0]

    def sigmoid(t: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        if isinstance(t, torch.Tensor):
            return torch.sigmoid(t)
        from scipy import special  # imported on first use: it adds ~0.2 s to the package import

        return special.expit(t)

    def softmax(t: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        if isinstance(t, torch.Tensor):
            return torch.softmax(t, dim=-1)
        from scipy import special

        return special.softmax(t, axis=-1)

    logits = outputs.get("prediction_logits")
    class_logits = outputs.get("class_logits")
    probe_logits = outputs.get("probe_logits")
    return StepOutput(
        next_obs=arr(sigmoid(logits)) if logits is not None else None,
        class_probs=arr(softmax(class_logits)) if class_logits is not None else None,
        groups=arr(outputs.get("groups")),
        reconstructions=arr(outputs.get("reconstructions")),
        probe=arr(sigmoid(probe_logits)) if probe_logits is not None else None,
    )


class Predictor:
    """Online inference with an :class:`RLadder` over ``n_streams`` independent streams.

    Args:
        model: the network (put in eval mode; the predictor never trains it).
        n_streams: number of independent streams stepped together (a batch).
        device: where to run (``"cpu"``, ``"cuda"``...); defaults to the model's device.
        step_mode: how the tick runs (:func:`rladder_stream.streaming.fast_step.make_step`): ``"none"`` (eager),
            ``"compile"`` (torch.compile), and on CUDA ``"graph"`` or ``"compile+graph"`` (the tick replayed as
            one CUDA graph, the state kept in its buffers on the device between calls).
        threads: torch's intra-op threads (for the whole process). ``None``: one thread when streaming at most 4
            streams on the CPU, unless ``$RLADDER_STREAM_THREADS``, ``$OMP_NUM_THREADS`` or an earlier
            ``torch.set_num_threads`` says otherwise (:func:`streaming_threads`: small ticks run several times
            faster on one thread).
    """

    def __init__(self, model: RLadder, n_streams: int = 1, device: str | torch.device | None = None,
                 step_mode: str = "none", threads: int | None = None):
        if n_streams < 1:
            raise ValueError(f"n_streams must be >= 1, got {n_streams}")
        self.model = model.eval() if device is None else model.to(device).eval()
        self.n_streams = n_streams
        param = next(self.model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.threads = streaming_threads(n_streams, self.device, threads)
        self.state: State = self.model.init_state(n_streams)
        self.ticks = np.zeros(n_streams, dtype=np.int64)
        self._step = make_step(self.model, step_mode, n_streams)

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """Shape of one observation (no batch axis)."""
        return self.model.config.obs_shape

    # ------------------------------------------------------------------------------ streaming
    def reset(self, stream_ids: Sequence[int] | None = None) -> None:
        """Forget the past of the given streams (all when ``None``); the other streams are untouched."""
        ids = validate_stream_ids(stream_ids, self.n_streams)
        fresh = self.model.init_state(len(ids), self.device, self.dtype)
        index = torch.as_tensor(ids, device=self.device, dtype=torch.long)
        self.state = {k: v.index_copy(0, index, fresh[k]) for k, v in self.state.items()}
        self.ticks[ids] = 0

    def _validated(self, obs: Any) -> tuple[torch.Tensor, bool]:
        """Check and convert an observation; raise ``ValueError`` saying what was expected."""
        obs, batched = validate_observation(obs, self.obs_shape, self.n_streams, np.float64 if self.dtype == torch.float64 else np.float32)
        return torch.as_tensor(obs, device=self.device, dtype=self.dtype), batched

    @torch.no_grad()
    def step(self, obs: Any) -> StepOutput:
        """Consume one observation per stream; return the next-observation forecast and class beliefs.

        ``obs`` is ``obs_shape`` for a single stream or ``(n_streams, *obs_shape)``; the outputs have the
        same batching. On a ``ValueError`` the state is unchanged.
        """
        x, batched = self._validated(obs)
        outputs, new_state = self._step(x, self.state)
        self.state = new_state
        self.ticks += 1
        return to_step_output(outputs, batched)

    # ------------------------------------------------------------------------------ persistence
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, n_streams: int = 1, device: str | torch.device = "cpu") -> "Predictor":
        """Load a checkpoint (no code is executed; truncated or corrupted files raise ``CheckpointError``)."""
        return cls(load_model(path, device), n_streams=n_streams)

    def save(self, path: str | os.PathLike) -> Path:
        """Save the model's configuration and weights (not the stream state) as a checkpoint."""
        return save_checkpoint(path, self.model.config, self.model.state_dict())
