"""Checkpoints that load without executing code and detect truncation and corruption.

A checkpoint is a ``torch.save`` file holding only plain data and tensors, read back with
``torch.load(weights_only=True)``: the configuration as a dict, the weights, optional extra tensors
or plain data (training state), and a SHA-256 digest over all of it, so a flipped byte inside a
tensor is caught even where the zip container would not notice.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import LadderConfig
from .fileio import atomic_write_bytes

FORMAT = "rladder-stream-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a valid, intact rladder-stream checkpoint."""


def _digest_update(h: "hashlib._Hash", obj: Any, prefix: str = "") -> None:
    """Feed a nested structure of dicts, lists, tensors and JSON scalars into a hash, deterministically."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"{prefix}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            _digest_update(h, obj[k], f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        h.update(f"{prefix}:seq{len(obj)}".encode())
        for i, v in enumerate(obj):
            _digest_update(h, v, f"{prefix}[{i}]")
    else:
        h.update(f"{prefix}={json.dumps(obj, sort_keys=True)}".encode())


def _digest(payload: dict[str, Any]) -> str:
    h = hashlib.sha256()
    _digest_update(h, {k: v for k, v in payload.items() if k != "sha256"})
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, config: LadderConfig, state_dict: dict[str, torch.Tensor], extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (a crash mid-write never leaves a half file under ``path``)."""
    path = Path(path)
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "config": config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "extra": extra or {},
    }
    payload["sha256"] = _digest(payload)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[LadderConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint: ``(config, state_dict, extra)``. Raises :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, pickle and EOF errors all mean the same thing to the user
        raise CheckpointError(
            f"{path}: not a readable rladder-stream checkpoint (truncated or corrupted file?): {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rladder-stream checkpoint (missing format marker {FORMAT!r})")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {payload.get('format_version')} is not supported (expected {FORMAT_VERSION})")
    if payload.get("sha256") != _digest(payload):
        raise CheckpointError(f"{path}: checksum mismatch: the checkpoint's contents are corrupted")
    try:
        config = LadderConfig.from_dict(payload["config"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid model configuration: {exc}") from exc
    return config, payload["state_dict"], payload["extra"]


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> "torch.nn.Module":
    """Build the model a checkpoint describes and load its weights (in eval mode)."""
    from .ladder import build_model

    config, state_dict, _ = load_checkpoint(path)
    model = build_model(config)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the configuration: {exc}") from exc
    return model.to(device).eval()
