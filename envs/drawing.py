"""Drawing frames: patches pasted on canvases, and paths that bounce off the frame's edges."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# uint8 ink k -> k / 255 in float32: the generators' grey levels, and the table the training's torch renderers
# index (a GPU divides by a scalar as a multiplication by its reciprocal: 1 ulp off for half the levels).
INK = np.arange(256, dtype=np.float32) / np.float32(255.0)


def paste(patches: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Place ``patches [..., h, w]`` on zero canvases ``[..., H, W]`` with top-left corners ``(ys, xs)``.

    ``ys``/``xs`` are integer arrays of the leading shape; ``patches`` broadcasts to it (e.g. one digit
    ``[B, 1, h, w]`` at ``T`` positions ``[B, T]``). Every patch must fit inside the canvas.
    """
    lead = ys.shape
    h, w = patches.shape[-2:]
    n = int(np.prod(lead))
    flat_patches = np.broadcast_to(patches, lead + (h, w)).reshape(n, h, w)
    canvas = np.zeros((n, *size), dtype=patches.dtype)
    # A writeable view of every h x w window: [n, H-h+1, W-w+1, h, w]; one block copy per patch.
    windows = sliding_window_view(canvas, (h, w), axis=(1, 2), writeable=True)
    windows[np.arange(n), ys.reshape(n), xs.reshape(n)] = flat_patches
    return canvas.reshape(*lead, *size)


def bounce(start: np.ndarray, velocity: np.ndarray, n_steps: int, limit: float) -> np.ndarray:
    """Positions ``[..., n_steps]`` of points moving from ``start`` with ``velocity`` and reflecting off
    ``0`` and ``limit`` (exact reflection: the path is folded into ``[0, limit]``)."""
    t = np.arange(n_steps)
    raw = start[..., None] + velocity[..., None] * t
    period = 2 * limit
    folded = np.mod(raw, period)
    return np.where(folded > limit, period - folded, folded)
