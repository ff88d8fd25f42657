"""Pictures of an environment for ``render_mode="rgb_array"``: frames side by side, dark ink on white."""

from __future__ import annotations

from typing import Sequence

import numpy as np

RENDER_SCALE = 4


def to_rgb(panels: Sequence[np.ndarray | None], shape: tuple[int, int], scale: int = RENDER_SCALE) -> np.ndarray:
    """uint8 ``H x W x 3`` image: the given [0, 1] frames side by side, dark ink on white, upscaled
    ``scale`` times, separated by a grey line; ``None`` panels are drawn grey (e.g. no forecast yet)."""
    h, w = shape
    gap = np.full((h * scale, scale, 3), 160, dtype=np.uint8)
    tiles = []
    for i, panel in enumerate(panels):
        if i:
            tiles.append(gap)
        if panel is None:
            tiles.append(np.full((h * scale, w * scale, 3), 200, dtype=np.uint8))
            continue
        grey = np.round(255.0 * (1.0 - np.clip(panel, 0.0, 1.0))).astype(np.uint8)
        big = np.repeat(np.repeat(grey, scale, axis=0), scale, axis=1)
        tiles.append(np.repeat(big[:, :, None], 3, axis=2))
    return np.concatenate(tiles, axis=1)
