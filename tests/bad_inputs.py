"""Malformed observations every streaming predictor must reject (with the message each should match)."""

from __future__ import annotations

import numpy as np


def bad_observations(n_streams: int = 2, shape: tuple[int, int] = (32, 32)) -> list[tuple[np.ndarray, str]]:
    """``(observation, regex its ValueError must match)`` for a predictor of ``n_streams`` (>= 2) streams."""
    good = np.full((n_streams, *shape), 0.5, np.float32)
    nan, inf, neg, big = good.copy(), good.copy(), good.copy(), good.copy()
    nan[1, 3, 4] = np.nan
    inf[0, 0, 0] = np.inf
    neg[0, 5, 5] = -0.01
    big[1, 0, 0] = 1.5
    return [
        (np.zeros((n_streams, shape[0], shape[1] - 1), np.float32), "shape"),
        (np.zeros((n_streams + 1, *shape), np.float32), "shape"),
        (np.zeros((n_streams, 1, *shape), np.float32), "shape"),
        (np.zeros(shape, np.float32), f"{n_streams} streams"),
        (np.zeros((n_streams, *shape), np.uint8), "dtype"),
        (np.zeros((n_streams, *shape), np.int64), "divide by 255"),
        (np.array("not an image"), "dtype"),
        (nan, "NaN"),
        (inf, "infinite"),
        (neg, r"\[0, 1\]"),
        (big, r"\[0, 1\]"),
    ]
