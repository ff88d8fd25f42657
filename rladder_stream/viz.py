"""Pictures people would rather look at than read: prediction strips, GIFs and the paper's Figure 4 (Pillow only)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .outputs import StreamingPredictor


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
    h = max(p.height for _, p in panels) + 2 * pad + 28
    canvas = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(canvas)
    x = pad
    for title, panel in panels:
        canvas.paste(panel, (x, pad + 12))
        draw.rectangle((x - 1, pad + 11, x + panel.width, pad + 12 + panel.height), outline=(160, 160, 160))
        draw.text((x, 1), title, fill="black")
        x += panel.width + pad
    if caption:
        draw.text((pad, h - 13), caption, fill="black")
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


# ============================================================================ the paper's Figure 4

FIG4_LABEL_WIDTH = 84  # pixels left of the grid for the row names
FIG4_HEADER = 14  # pixels above the grid for the column names
FIG4_FOOTER = 16  # pixels below the grid for the caption
FIG4_PAD = 4


@dataclass(frozen=True)
class EpisodeRecord:
    """One episode streamed through a predictor: ``T`` observed frames and the frame after them.

    Attributes:
        clean: ``[T + 1, H, W]`` the frames without occlusion (ground truth).
        observed: ``[T + 1, H, W]`` the occluded frames; the last is only the target of the last forecast.
        predicted: ``[T, H, W]``: after frame t, the forecast of frame t + 1; ``None`` without a prediction task.
        probe: ``[T, H, W]``: after frame t, the probe's readout of clean frame t; ``None`` without a probe.
        class_probs: ``[T, n_classes]`` class beliefs after each frame, or ``None``.
        rewards: ``[T]`` the environment's reward for each forecast (log-likelihood of the next frame).
        label: the digit; ``index``: the episode of the split.
    """

    clean: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray | None
    probe: np.ndarray | None
    class_probs: np.ndarray | None
    rewards: np.ndarray
    label: int
    index: int


def record_episode(predictor: StreamingPredictor, env: Any, index: int = 0) -> EpisodeRecord:
    """Play fixed episode ``index`` of a (test-split) Occluded Moving MNIST environment through a single-stream
    predictor with the one loop of SPEC 1.1, keeping what Figure 4 shows."""
    obs, info = env.reset(options={"index": index})
    predictor.reset()
    clean, observed, predicted, probe, beliefs, rewards = [info["clean_frame"]], [obs], [], [], [], []
    while True:
        out = predictor.step(obs)
        predicted.append(out.next_obs)
        probe.append(out.probe)
        beliefs.append(out.class_probs)
        if out.next_obs is not None:
            action = out.action()
        else:  # no forecast to offer (e.g. the hierarchical RNN): an uninformative one, with the beliefs
            action = {"forecast": np.full(obs.shape, 0.5, np.float32), "class_probs": out.class_probs}
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        clean.append(info["clean_frame"])
        observed.append(obs)
        if terminated or truncated:
            break

    def stacked(values: list) -> np.ndarray | None:
        return None if values[0] is None else np.stack(values).astype(np.float32)

    return EpisodeRecord(
        clean=np.stack(clean).astype(np.float32), observed=np.stack(observed).astype(np.float32),
        predicted=stacked(predicted), probe=stacked(probe), class_probs=stacked(beliefs),
        rewards=np.asarray(rewards, dtype=np.float64), label=int(info.get("label", -1)), index=int(index),
    )


def figure4_rows(episode: EpisodeRecord) -> list[tuple[str, list[np.ndarray | None]]]:
    """The rows of Figure 4, one entry per column (frame t = 1..T+1); ``None`` where a row has no panel."""
    n = len(episode.clean)
    rows = [("ground truth", list(episode.clean)), ("observed", list(episode.observed))]
    if episode.predicted is not None:  # the forecast of frame t+1 stands under frame t+1
        rows.append(("predicted", [None, *episode.predicted]))
    if episode.probe is not None:  # the readout of frame t stands under frame t
        rows.append(("probe", [*episode.probe, None]))
    return [(name, (cells + [None] * n)[:n]) for name, cells in rows]


def figure4_cell(row: int, col: int, frame_shape: tuple[int, int], scale: int) -> tuple[int, int, int, int]:
    """The box ``(left, top, right, bottom)`` of panel (row, col) in :func:`figure4`'s picture."""
    h, w = frame_shape[0] * scale, frame_shape[1] * scale
    left = FIG4_LABEL_WIDTH + FIG4_PAD + col * (w + FIG4_PAD)
    top = FIG4_HEADER + FIG4_PAD + row * (h + FIG4_PAD)
    return left, top, left + w, top + h


def figure4(episode: EpisodeRecord, scale: int = 3, ticks: int | None = None) -> Image.Image:
    """The paper's Figure 4 for one episode: rows ground truth (clean frames), observed (occluded) frames,
    predicted next frames and probe readout of the unoccluded digit; one column per frame; dark digits on white.

    ``ticks`` shows only the first ``ticks`` columns (the frames seen so far; the GIF is made of these).
    """
    rows = figure4_rows(episode)
    n_cols = len(episode.clean)
    ticks = n_cols if ticks is None else ticks
    shape = episode.clean.shape[1:]
    _, _, right, bottom = figure4_cell(len(rows) - 1, n_cols - 1, shape, scale)
    canvas = Image.new("RGB", (right + FIG4_PAD, bottom + FIG4_PAD + FIG4_FOOTER), "white")
    draw = ImageDraw.Draw(canvas)
    for c in range(n_cols):
        left, top, _, _ = figure4_cell(0, c, shape, scale)
        draw.text((left, top - FIG4_HEADER), f"t={c + 1}", fill="black")
    for r, (name, cells) in enumerate(rows):
        left, top, _, bottom_r = figure4_cell(r, 0, shape, scale)
        draw.text((FIG4_PAD, (top + bottom_r) // 2 - 5), name, fill="black")
        for c, image in enumerate(cells):
            if image is None:
                continue
            box = figure4_cell(r, c, shape, scale)
            draw.rectangle((box[0] - 1, box[1] - 1, box[2], box[3]), outline=(180, 180, 180))  # white panels on white
            if c < ticks:
                canvas.paste(_panel(image, scale), box[:2])
    caption = f"test episode {episode.index}, digit {episode.label}"
    if episode.class_probs is not None and ticks >= 1:
        t = min(ticks, len(episode.class_probs)) - 1
        guess = int(np.argmax(episode.class_probs[t]))
        caption += f"; belief after frame {t + 1}: {guess} ({episode.class_probs[t][guess]:.2f})"
    draw.text((FIG4_PAD, canvas.height - FIG4_FOOTER + 2), caption, fill="black")
    return canvas


def figure4_frames(episode: EpisodeRecord, scale: int = 3) -> list[Image.Image]:
    """Figure 4 filling in one frame at a time (for :func:`save_gif`); the last one is the whole figure."""
    return [figure4(episode, scale, ticks=k) for k in range(1, len(episode.clean) + 1)]


def figure4_cli_main(argv: list[str]) -> int:
    """``rladder-stream figure4 [--model CKPT] [--index I] [--out DIR]``: the paper's Figure 4 as PNG and GIF."""
    import argparse

    import gymnasium as gym

    import envs  # noqa: F401  (registers the environments)

    from .cli import _load_predictor

    parser = argparse.ArgumentParser(prog="rladder-stream figure4", description=figure4_cli_main.__doc__)
    parser.add_argument("--model", help="checkpoint (default: the shipped pretrained model)")
    parser.add_argument("--index", type=int, default=0, help="test episode of OccludedMovingMNIST-v0 (default 0)")
    parser.add_argument("--out", default="figure4_out", help="folder for figure4-test<I>.png and .gif (default figure4_out)")
    parser.add_argument("--scale", type=int, default=3, help="pixels per frame pixel (default 3)")
    parser.add_argument("--data-dir", default=None, help="data folder (default: $RLADDER_STREAM_DATA or the embedded test digits)")
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be >= 1")
    predictor, source = _load_predictor(args.model, seed=0)
    try:
        env = gym.make("rladder_stream/OccludedMovingMNIST-v0", split="test", data_dir=args.data_dir)
        episode = record_episode(predictor, env, args.index)
    except (ValueError, FileNotFoundError) as exc:  # an index outside the split, no data in --data-dir
        parser.error(str(exc))
    if episode.probe is None:
        print(f"note: {source} has no probe (config.probe is off): the probe row is left out", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png, gif = out / f"figure4-test{args.index}.png", out / f"figure4-test{args.index}.gif"
    figure4(episode, args.scale).save(png)
    save_gif(figure4_frames(episode, args.scale), gif, ms_per_frame=700)
    print(f"model: {source}\nwrote {png} and {gif}")
    return 0
