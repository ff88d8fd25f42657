"""Checkpoints that load without executing code, detect truncation and corruption, and cannot be made to
allocate more than the file holds.

A checkpoint is a `safetensors <https://github.com/huggingface/safetensors>`_ file: the weights as
``model/<name>`` tensors, training state (optimiser, RNG, ...) as ``extra/...`` tensors, and in the
header's metadata the configuration and the rest of the training state as JSON, a format marker and a
SHA-256 digest over all of it (so a flipped byte inside a tensor is caught). Reading it parses JSON and
copies tensor bytes: no pickle, no code. Any safetensors reader can open the file.

Loading checks, before any model exists, that the configuration describes exactly the stored tensors
(their names and shapes, from a model built on PyTorch's ``meta`` device, which allocates nothing), and
that one stream's state is of sane size: a tampered configuration (12,000 channels, negative sizes) is a
:class:`CheckpointError` in milliseconds, never a 20 GB allocation.

Files of the first format (``format_version`` 1, a ``torch.save`` zip read with
``torch.load(weights_only=True)``) still load; :func:`convert_legacy_checkpoint` rewrites one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelFileError
from ..fileio import atomic_write_bytes
from ..model.config import LadderConfig
from ..model.registry import build_model
from ..version import __version__

FORMAT = "rladder-stream-checkpoint"
FORMAT_VERSION = 2  # safetensors; 1 was a torch.save zip (still read)
LEGACY_FORMAT_VERSION = 1
MODEL_PREFIX = "model/"
EXTRA_PREFIX = "extra/"
#: Largest state of one stream a checkpoint's configuration may ask for (a guard against tampered
#: observation shapes: the weights do not fix them). The largest registered model needs about 6 MiB.
MAX_STATE_BYTES_PER_STREAM = 256 * 2**20
_MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit


class CheckpointError(ModelFileError):
    """A file that is not a valid, intact rladder-stream checkpoint (the message names the file)."""


# ============================================================================ extra state <-> JSON + tensors


def _split_tensors(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-able copy of ``obj`` with every tensor moved into ``tensors`` (under a path-like name) and
    replaced by ``{"__tensor__": name}``; dicts with non-string keys and tuples are tagged so they come back
    exactly (an optimiser's state is keyed by parameter index)."""
    if isinstance(obj, torch.Tensor):
        name = prefix
        tensors[name] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _split_tensors(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
        return {"__items__": [[k, _split_tensors(v, f"{prefix}/{i}", tensors)] for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_split_tensors(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_split_tensors(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint extra data at {prefix!r}: {type(obj).__name__} is not plain data or a tensor")


def _join_tensors(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`_split_tensors`."""
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__items__"}:
            return {_hashable(k): _join_tensors(v, tensors) for k, v in obj["__items__"]}
        if set(obj) == {"__tuple__"}:
            return tuple(_join_tensors(v, tensors) for v in obj["__tuple__"])
        return {k: _join_tensors(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join_tensors(v, tensors) for v in obj]
    return obj


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


# ============================================================================ digests


def _digest(metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the metadata (without the digest) and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(json.dumps({k: v for k, v in metadata.items() if k != "sha256"}, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"\n{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _legacy_digest_update(h: "hashlib._Hash", obj: Any, prefix: str = "") -> None:
    """The first format's digest: a nested structure of dicts, lists, tensors and JSON scalars."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"{prefix}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            _legacy_digest_update(h, obj[k], f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        h.update(f"{prefix}:seq{len(obj)}".encode())
        for i, v in enumerate(obj):
            _legacy_digest_update(h, v, f"{prefix}[{i}]")
    else:
        h.update(f"{prefix}={json.dumps(obj, sort_keys=True)}".encode())


def legacy_digest(payload: dict[str, Any]) -> str:
    """The digest a first-format checkpoint stores for ``payload`` (its ``sha256`` entry left out)."""
    h = hashlib.sha256()
    _legacy_digest_update(h, {k: v for k, v in payload.items() if k != "sha256"})
    return h.hexdigest()


# ============================================================================ save


def _encode(config_dict: dict[str, Any], state_dict: dict[str, torch.Tensor], extra: dict[str, Any] | None,
            package_version: str = __version__, provenance: dict[str, str] | None = None) -> bytes:
    from safetensors.torch import save

    tensors = {MODEL_PREFIX + k: v.detach().cpu().contiguous().clone() for k, v in state_dict.items()}
    skeleton = _split_tensors(extra or {}, EXTRA_PREFIX.rstrip("/"), tensors)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "package_version": package_version,
        "config": json.dumps(config_dict, sort_keys=True),
        "extra": json.dumps(skeleton, sort_keys=True),
        **(provenance or {}),
    }
    metadata["sha256"] = _digest(metadata, tensors)
    return save(tensors, metadata=metadata)


def save_checkpoint(path: str | os.PathLike, config: LadderConfig, state_dict: dict[str, torch.Tensor], extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically (a crash mid-write never leaves a half file under ``path``).

    ``extra`` holds plain data (dicts, lists, tuples, numbers, strings) and tensors, e.g. an optimiser's
    ``state_dict()``; it comes back from :func:`load_checkpoint` exactly as given.
    """
    return atomic_write_bytes(path, _encode(config.to_dict(), state_dict, extra))


# ============================================================================ load


def _read_header(data: bytes, path: Path) -> dict[str, Any]:
    """The safetensors header (tensor entries and ``__metadata__``), checked against the file's size."""
    if data[8:9] != b"{":  # a safetensors header is JSON, right after its 8-byte length (a text file fails here)
        raise CheckpointError(f"{path}: not a checkpoint (safetensors) file" + (f" ({len(data)} bytes)" if len(data) < 9 else ""))
    size = int.from_bytes(data[:8], "little")
    if size > min(len(data) - 8, _MAX_HEADER_BYTES):
        raise CheckpointError(f"{path}: not a readable rladder-stream checkpoint (truncated or corrupted file?): "
                              f"its header claims {size} bytes, the file holds {len(data)}")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable rladder-stream checkpoint (truncated or corrupted file?): {exc}") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a readable rladder-stream checkpoint (its header is not a table)")
    return header


def _parse_config(config_dict: Any, path: Path) -> LadderConfig:
    try:
        if not isinstance(config_dict, dict):
            raise TypeError(f"expected a table, got {type(config_dict).__name__}")
        return LadderConfig.from_dict(config_dict)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        text = str(exc)
        raise CheckpointError(f"{path}: invalid model configuration: {text[:300]}{'...' if len(text) > 300 else ''}") from exc


def check_config_matches(config: LadderConfig, shapes: dict[str, tuple[int, ...]], path: str | os.PathLike) -> None:
    """Refuse a configuration that does not describe exactly the stored tensors (names and shapes), or whose
    per-stream state would be absurdly large, building the model on the ``meta`` device (nothing allocated)."""
    if len(config.levels) > len(shapes):  # every level has weights: more levels than tensors is a lie
        raise CheckpointError(f"{path}: the configuration has {len(config.levels)} levels but the file holds "
                              f"{len(shapes)} tensors: weights do not match the configuration")
    try:
        with torch.device("meta"):
            model = build_model(config)
            state = model.state_spec()
    except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"{path}: invalid model configuration (a model of these sizes cannot exist): "
                              f"{type(exc).__name__}: {exc}") from exc
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(want) - set(shapes))
    unexpected = sorted(set(shapes) - set(want))
    wrong = [f"{k} {shapes[k]} (the configuration needs {want[k]})" for k in sorted(set(want) & set(shapes)) if tuple(shapes[k]) != want[k]]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing (e.g. {missing[:3]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})" if unexpected else "",
                 f"{len(wrong)} of another shape (e.g. {', '.join(wrong[:2])})" if wrong else ""]
        raise CheckpointError(f"{path}: weights do not match the configuration: " + "; ".join(p for p in parts if p))
    state_bytes = 4 * sum(_numel(shape) for shape in state.values())
    if state_bytes > MAX_STATE_BYTES_PER_STREAM:
        raise CheckpointError(f"{path}: invalid model configuration: one stream's state would take "
                              f"{state_bytes / 2**20:.0f} MiB (obs_shape {config.obs_shape}); at most "
                              f"{MAX_STATE_BYTES_PER_STREAM // 2**20} MiB is accepted")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _load_safetensors(data: bytes, path: Path) -> tuple[LadderConfig, dict[str, torch.Tensor], dict[str, Any]]:
    header = _read_header(data, path)
    metadata = header.pop("__metadata__", None) or {}
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rladder-stream checkpoint (missing format marker {FORMAT!r})")
    if metadata.get("format_version") != str(FORMAT_VERSION):
        raise CheckpointError(f"{path}: checkpoint format version {metadata.get('format_version')} is not supported "
                              f"(expected {FORMAT_VERSION}); a newer rladder-stream wrote it?")
    try:
        config_dict = json.loads(metadata["config"])
        skeleton = json.loads(metadata["extra"])
        shapes = {k[len(MODEL_PREFIX):]: tuple(int(s) for s in v["shape"]) for k, v in header.items() if k.startswith(MODEL_PREFIX)}
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupted checkpoint header: {type(exc).__name__}: {exc}") from exc
    config = _parse_config(config_dict, path)
    check_config_matches(config, shapes, path)  # before a single tensor is read
    from safetensors.torch import load

    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own SafetensorError for bad offsets, truncation, dtypes
        raise CheckpointError(f"{path}: not a readable rladder-stream checkpoint (truncated or corrupted file?): "
                              f"{type(exc).__name__}: {exc}") from exc
    if metadata.get("sha256") != _digest(metadata, tensors):
        raise CheckpointError(f"{path}: checksum mismatch: the checkpoint's contents are corrupted")
    state_dict = {k[len(MODEL_PREFIX):]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    try:
        extra = _join_tensors(skeleton, tensors)
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: corrupted training state: {type(exc).__name__}: {exc}") from exc
    return config, state_dict, extra


def _load_legacy_payload(path: Path) -> dict[str, Any]:
    """A first-format file (torch.save zip), verified; ``torch.load(weights_only=True)`` runs no code."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip, pickle and EOF errors all mean the same thing to the user
        raise CheckpointError(
            f"{path}: not a readable rladder-stream checkpoint (truncated or corrupted file?): {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rladder-stream checkpoint (missing format marker {FORMAT!r})")
    if payload.get("format_version") != LEGACY_FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {payload.get('format_version')} is not supported")
    if payload.get("sha256") != legacy_digest(payload):
        raise CheckpointError(f"{path}: checksum mismatch: the checkpoint's contents are corrupted")
    return payload


def load_checkpoint(path: str | os.PathLike) -> tuple[LadderConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint: ``(config, state_dict, extra)``. Raises :class:`CheckpointError`.

    The configuration is checked against the stored tensors (see the module docstring), so building the
    model it describes allocates what the file holds and no more.
    """
    path = CheckpointError.check_path(path, "checkpoint")
    data = path.read_bytes()
    if data[:2] == b"PK":  # the first format: a torch.save zip
        payload = _load_legacy_payload(path)
        config = _parse_config(payload.get("config"), path)
        state_dict = payload.get("state_dict")
        if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
            raise CheckpointError(f"{path}: corrupted checkpoint: no weights")
        check_config_matches(config, {k: tuple(v.shape) for k, v in state_dict.items()}, path)
        return config, state_dict, payload.get("extra") or {}
    return _load_safetensors(data, path)


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> "torch.nn.Module":
    """Build the model a checkpoint describes and load its weights (in eval mode)."""
    config, state_dict, _ = load_checkpoint(path)
    model = build_model(config)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # dtypes: shapes and names were checked on load
        raise CheckpointError(f"{path}: weights do not match the configuration: {exc}") from exc
    return model.to(device).eval()


def convert_legacy_checkpoint(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rewrite a first-format checkpoint in the current format, bit for bit the same configuration, weights and
    extra data. The target's metadata keeps the source's digest (``legacy_sha256``) and package version, so
    :func:`legacy_digest_of` can show the contents unchanged."""
    source = Path(source)
    if source.read_bytes()[:2] != b"PK":
        raise CheckpointError(f"{source}: not a first-format (torch.save) checkpoint")
    payload = _load_legacy_payload(source)
    data = _encode(payload["config"], payload["state_dict"], payload.get("extra") or {},
                   package_version=str(payload.get("package_version", "unknown")),
                   provenance={"legacy_sha256": payload["sha256"]})
    return atomic_write_bytes(target, data)


def legacy_digest_of(path: str | os.PathLike) -> tuple[str, str]:
    """For a converted checkpoint: ``(recorded legacy digest, legacy digest recomputed from its contents)``;
    equal when configuration, weights and extra data are those of the original file."""
    path = Path(path)
    header = _read_header(path.read_bytes(), path)
    metadata = header.get("__metadata__") or {}
    _, state_dict, extra = load_checkpoint(path)
    payload = {"format": FORMAT, "format_version": LEGACY_FORMAT_VERSION, "package_version": metadata.get("package_version"),
               "config": json.loads(metadata["config"]), "state_dict": state_dict, "extra": extra}
    return metadata.get("legacy_sha256", ""), legacy_digest(payload)


def describe_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """What ``rladder-stream info`` prints about a checkpoint (verified the way loading verifies it)."""
    config, state_dict, extra = load_checkpoint(path)
    return {"file": str(path), "format": "legacy torch.save (format 1)" if Path(path).read_bytes()[:2] == b"PK" else f"safetensors (format {FORMAT_VERSION})",
            "config": config.to_dict(), "tensors": len(state_dict),
            "parameters": int(sum(v.numel() for v in state_dict.values())), "extra": sorted(extra)}
