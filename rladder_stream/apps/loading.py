"""The one way to load a model file: :func:`load_predictor` picks the runtime from the file itself.

A checkpoint (``.pt``, safetensors) streams on PyTorch (:class:`~rladder_stream.streaming.predictor.Predictor`), an
exported step (``.onnx``) on ONNX Runtime (:class:`~rladder_stream.export.runtime.OnnxPredictor`); asked for
``runtime="onnx"``, a checkpoint is exported once and the export cached. Every command (``demo``,
``benchmark``, ``figure4``, ``groups``, ``stream-midi``) and every example loads through here::

    >>> from rladder_stream import load_predictor
    >>> predictor = load_predictor("omm.onnx")          # doctest: +SKIP
    >>> out = predictor.step(frame)                     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from ..errors import UsageError
from ..export.onnx import export_onnx
from ..export.runtime import OnnxPredictor, describe_onnx, is_onnx_file
from ..model.registry import build_model, get_config
from ..streaming.checkpoint import describe_checkpoint, load_checkpoint
from ..streaming.outputs import StreamingPredictor
from ..streaming.predictor import Predictor

RUNTIMES = ("auto", "torch", "onnx")
#: the models shipped in rladder_stream/pretrained/
PRETRAINED = "omm-rladder-cpu.pt"
MUSIC_PRETRAINED = "music-rladder-jsb-cpu.pt"


def pretrained_path(name: str = PRETRAINED) -> Path | None:
    """A checkpoint shipped with the package (default: the Occluded Moving MNIST RLadder), if installed."""
    path = Path(str(resources.files("rladder_stream") / "pretrained" / name))
    return path if path.is_file() else None


def resolve_runtime(path: str | os.PathLike, runtime: str | None = "auto") -> str:
    """The runtime a model file runs on: ``onnx`` for an ONNX file (the only runtime that can run one), else
    ``runtime`` (``auto``/``None``: ``torch``)."""
    if runtime is not None and runtime not in RUNTIMES:
        raise UsageError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if is_onnx_file(path):
        return "onnx"
    return "torch" if runtime in (None, "auto") else runtime


def add_runtime_argument(parser: Any) -> None:
    """A command's ``--runtime`` option (the same meaning in every command that streams a model file)."""
    parser.add_argument("--runtime", choices=list(RUNTIMES), default="auto",
                        help="what steps a checkpoint: auto or torch for PyTorch, onnx for ONNX Runtime (the checkpoint is "
                             "exported once and the export kept in ~/.cache/rladder-stream-onnx); an .onnx file always "
                             "runs on ONNX Runtime")


def onnx_cache_dir() -> Path:
    """Where checkpoints exported for ONNX Runtime are kept: ``$XDG_CACHE_HOME/rladder-stream-onnx``
    (default ``~/.cache/rladder-stream-onnx``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rladder-stream-onnx"


def tell(message: str) -> None:
    """A progress line on standard error."""
    print(message, file=sys.stderr, flush=True)


def load_predictor(path: str | os.PathLike, runtime: str | None = "auto", n_streams: int = 1, *,
                   device: str = "cpu", progress: Callable[[str], None] | None = tell) -> StreamingPredictor:
    """A streaming predictor for a checkpoint or an exported step (``.onnx``), on the runtime the file asks for.

    ``runtime="auto"`` (or ``None``) picks by file: ONNX Runtime for an ONNX file, PyTorch (on ``device``) for a
    checkpoint. ``runtime="onnx"`` with a checkpoint exports it first (5-20 s), once: the export is kept in
    :func:`onnx_cache_dir` under the checkpoint's content hash; ``progress`` (default: a line on stderr) is told
    when an export starts and where it goes. An ONNX file runs on ONNX Runtime only. Damaged files raise
    :class:`~rladder_stream.streaming.checkpoint.CheckpointError` or :class:`~rladder_stream.export.runtime.OnnxModelError`.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise UsageError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    path = Path(path)
    if is_onnx_file(path):
        if runtime == "torch":
            raise UsageError(f"{path} is an ONNX model: it runs on ONNX Runtime (runtime='onnx' or 'auto'), "
                             "or pass the .pt checkpoint to run on PyTorch")
        return OnnxPredictor(path, n_streams=n_streams)
    if runtime != "onnx":
        return Predictor.from_checkpoint(path, n_streams=n_streams, device=device)
    load_checkpoint(path)  # a bad checkpoint fails here, with its own message, before any export
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    target = onnx_cache_dir() / f"{path.stem}-{digest}.onnx"
    if not target.exists():
        if progress is not None:
            progress(f"exporting {path} to ONNX for ONNX Runtime (first use only, takes 5-20 s); cached as {target}")
        export_onnx(path, target)
    return OnnxPredictor(target, n_streams=n_streams)


def predictor_for(model: str | os.PathLike | None, runtime: str | None = "auto", *, shipped: str = PRETRAINED,
                  untrained: str | None = None, seed: int = 0) -> tuple[StreamingPredictor, str]:
    """What a command's ``--model`` option loads: the file it names, else the shipped model ``shipped``; returns
    the predictor and ``"<path> (<runtime> runtime)"``. Without either file: an untrained tiny model of the
    registered configuration ``untrained`` (with a note on stderr), or a :class:`UsageError`."""
    path = Path(model) if model else pretrained_path(shipped)
    if path is not None:
        runtime = resolve_runtime(path, runtime)
        return load_predictor(path, runtime), f"{path} ({runtime} runtime)"
    if untrained is None:
        raise UsageError(f"no shipped {shipped} is installed; pass --model CKPT")
    if runtime == "onnx":
        raise UsageError("no pretrained checkpoint is installed: pass --model CKPT to stream on ONNX Runtime")
    import torch

    torch.manual_seed(seed)
    print(f"note: no pretrained checkpoint is installed; streaming an UNTRAINED tiny {untrained}", file=sys.stderr)
    return Predictor(build_model(get_config(untrained, size="tiny"))), f"untrained {untrained} (tiny)"


def describe_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """What ``rladder-stream info`` prints: a checkpoint's or an exported step's contents, verified as loading
    verifies them."""
    return describe_onnx(path) if is_onnx_file(path) else describe_checkpoint(path)
