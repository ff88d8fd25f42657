"""Checking an action: a forecast of the next observation, optionally with class beliefs; a malformed one raises
``ValueError`` before anything changes."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .scoring import N_CLASSES


def _check_probabilities(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be an array of shape {shape} with values in [0, 1]: {exc}") from exc
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{name} must be a numeric array of shape {shape}, got dtype {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if array.min(initial=0.0) < 0.0 or array.max(initial=0.0) > 1.0:
        raise ValueError(
            f"{name} must be probabilities in [0, 1], got values in [{array.min()}, {array.max()}]"
        )
    return array


def parse_action(
    action: Any, frame_shape: tuple[int, ...], with_classes: bool, batch: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check an action and return ``(forecast float32, class_probs float32 or None)``.

    Accepted forms: a bare forecast array, or a dict ``{"forecast": ..., "class_probs": ...}`` (the output of
    ``StepOutput.action()``; ``class_probs`` optional). With ``batch`` set, every array has that leading
    batch axis. Raises ``ValueError`` naming what was expected; nothing is modified, so the caller's state
    stays as it was.
    """
    lead = () if batch is None else (batch,)
    if isinstance(action, Mapping):
        unknown = set(action) - {"forecast", "class_probs"}
        if unknown or "forecast" not in action:
            raise ValueError(
                f"a dict action needs the key 'forecast' and optionally 'class_probs'; got keys {sorted(action)}"
            )
        forecast = _check_probabilities("forecast", action["forecast"], lead + tuple(frame_shape))
        class_probs = action.get("class_probs")
        if class_probs is not None:
            if not with_classes:
                class_probs = None  # this environment scores no class beliefs: ignored, as documented
            else:
                class_probs = _check_probabilities("class_probs", class_probs, lead + (N_CLASSES,))
        return forecast, class_probs
    return _check_probabilities("forecast", action, lead + tuple(frame_shape)), None
