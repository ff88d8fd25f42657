"""Checks every streaming predictor applies to its input (PyTorch ``Predictor`` and ``OnnxPredictor`` alike).

One function, so that a bad observation is rejected with the same message whichever runtime steps the model,
and before any state is touched.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch


def validate_observation(obs: Any, obs_shape: tuple[int, ...], n_streams: int, dtype: np.dtype | type = np.float32) -> tuple[np.ndarray, bool]:
    """Check and convert one tick of observations; raise ``ValueError`` saying what was expected.

    Args:
        obs: ``obs_shape`` (one stream; only when ``n_streams == 1``) or ``(n_streams, *obs_shape)``;
            a NumPy array, anything ``np.asarray`` accepts, or a torch tensor; floating point of any width
            (float16, bfloat16 and float64 are converted to ``dtype``) or bool, finite, with values in [0, 1].
        obs_shape: shape of one observation.
        n_streams: number of streams the predictor steps together.
        dtype: floating dtype of the returned array.
    Returns:
        ``(batch, batched)``: the observations as a ``(n_streams, *obs_shape)`` array of ``dtype``, and
        whether the input had the batch axis (outputs follow the same convention).
    """
    obs_shape = tuple(obs_shape)
    if isinstance(obs, torch.Tensor):
        obs = obs.detach()
        if obs.is_floating_point() and obs.dtype not in (torch.float16, torch.float32, torch.float64):
            obs = obs.float()  # bfloat16, float8: NumPy has no such dtype; float32 holds their values exactly
        obs = obs.cpu().numpy()
    obs = np.asarray(obs)
    expected = f"{obs_shape}" + (f" or ({n_streams}, *{obs_shape})" if n_streams > 1 else f" or (1, *{obs_shape})")
    if obs.dtype.kind not in "fb":
        hint = " (integer images: divide by 255 first)" if obs.dtype.kind in "iu" else ""
        raise ValueError(f"observation dtype must be floating point or bool with values in [0, 1], got {obs.dtype}{hint}")
    if obs.shape == obs_shape:
        if n_streams != 1:
            raise ValueError(f"observation shape {obs.shape}: this predictor has {n_streams} streams, expected ({n_streams}, *{obs_shape})")
        batched = False
        obs = obs[None]
    elif obs.shape == (n_streams, *obs_shape):
        batched = True
    else:
        raise ValueError(f"observation shape {obs.shape} does not match the model; expected {expected}")
    obs = obs.astype(dtype, copy=False)
    if not np.isfinite(obs).all():
        raise ValueError("observation contains NaN or infinite values")
    if obs.min(initial=0.0) < 0.0 or obs.max(initial=0.0) > 1.0:
        raise ValueError(f"observation values must lie in [0, 1], got range [{obs.min()}, {obs.max()}]")
    return obs, batched


def validate_stream_ids(stream_ids: Sequence[int] | None, n_streams: int) -> list[int]:
    """The stream indices a ``reset`` names (all when ``None``); ``ValueError`` for any that is not an integer
    (``1.5`` is not rounded to a stream, ``True`` is not stream 1) or is out of range."""
    if stream_ids is None:
        return list(range(n_streams))
    if isinstance(stream_ids, torch.Tensor):
        stream_ids = stream_ids.detach().cpu().numpy()
    values = np.atleast_1d(np.asarray(stream_ids, dtype=object if isinstance(stream_ids, (list, tuple)) else None))
    if values.ndim != 1:
        raise ValueError(f"stream ids must be a flat sequence of integers, got shape {values.shape}")
    bad_type = [v for v in values.tolist() if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
    if bad_type:
        raise ValueError(f"stream ids must be integers, got {bad_type}")
    ids = [int(i) for i in values.tolist()]
    bad = [i for i in ids if not 0 <= i < n_streams]
    if bad:
        raise ValueError(f"stream ids {bad} out of range for {n_streams} streams")
    return ids
