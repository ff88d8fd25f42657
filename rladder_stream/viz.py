"""Pictures people would rather look at than read: prediction strips and GIFs (Pillow only)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw


def to_uint8(image: np.ndarray, dark_on_light: bool = True) -> np.ndarray:
    """Map values in [0, 1] to uint8 grey levels; ``dark_on_light`` draws ink dark on white, as in the paper."""
    image = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    if dark_on_light:
        image = 1.0 - image
    return (image * 255 + 0.5).astype(np.uint8)


def _panel(image: np.ndarray, scale: int) -> Image.Image:
    img = Image.fromarray(to_uint8(image), mode="L").convert("RGB")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def prediction_frame(columns: Sequence[tuple[str, np.ndarray | None]], caption: str = "", scale: int = 4, pad: int = 4) -> Image.Image:
    """One tick as a row of labelled panels, e.g. observed | predicted next | actual next."""
    panels = [(title, _panel(img, scale)) for title, img in columns if img is not None]
    w = sum(p.width for _, p in panels) + pad * (len(panels) + 1)
    h = max(p.height for _, p in panels) + 2 * pad + 24
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    x = pad
    for title, panel in panels:
        canvas.paste(panel, (x, pad + 12))
        draw.text((x, 1), title, fill="black")
        x += panel.width + pad
    if caption:
        draw.text((pad, h - 12), caption, fill="black")
    return canvas


def save_gif(frames: Sequence[Image.Image], path: str | os.PathLike, ms_per_frame: int = 500) -> Path:
    """Write an animated GIF (loops forever)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=list(frames[1:]), duration=ms_per_frame, loop=0)
    return path


def stack_vertically(frames: Sequence[Image.Image], pad: int = 2) -> Image.Image:
    """All ticks in one PNG, one row per tick."""
    w = max(f.width for f in frames)
    canvas = Image.new("RGB", (w, sum(f.height for f in frames) + pad * (len(frames) - 1)), "white")
    y = 0
    for f in frames:
        canvas.paste(f, (0, y))
        y += f.height + pad
    return canvas
