"""How a forecast is scored: the Bernoulli log-likelihood every environment rewards, and the class beliefs the
digit environments score at the end of an episode."""

from __future__ import annotations

import numpy as np

EPS = 1e-6  # forecasts are clipped to [EPS, 1 - EPS] before the log
N_CLASSES = 10


def bernoulli_log_likelihood(
    target: np.ndarray, forecast: np.ndarray, axis: int | tuple[int, ...] | None = None
) -> float | np.ndarray:
    """``sum(y log p + (1 - y) log(1 - p))`` with ``p`` clipped to ``[1e-6, 1 - 1e-6]``.

    Works for any shape (frames, piano-roll rows). ``target`` may be soft (values in [0, 1]): antialiased
    frames are. Sums over everything (returns a float) or over ``axis`` (returns an array, e.g. one value per
    row of a batch). Computed in float64.
    """
    y = np.asarray(target, dtype=np.float64)
    p = np.clip(np.asarray(forecast, dtype=np.float64), EPS, 1.0 - EPS)
    ll = y * np.log(p) + (1.0 - y) * np.log1p(-p)
    return float(ll.sum()) if axis is None else ll.sum(axis=axis)


def score_classes(labels: np.ndarray, class_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``(correct, log_prob)`` of class beliefs ``[B, 10]`` against ``labels [B]`` (all >= 0).

    The beliefs are normalised to sum to 1 first (a Box(0, 1) sample need not); ``log_prob`` is the log of
    the normalised probability of the true class, floored at ``log(1e-6)``.
    """
    probs = class_probs.astype(np.float64)
    total = probs.sum(axis=-1, keepdims=True)
    probs = np.where(total > 0, probs / np.where(total > 0, total, 1.0), 1.0 / N_CLASSES)
    rows = np.arange(len(labels))
    correct = probs.argmax(axis=-1) == labels
    log_prob = np.log(np.maximum(probs[rows, labels], EPS))
    return correct, log_prob
