"""Pictures people would rather look at than read: prediction strips, GIFs, the paper's Figures 4, 6 and 7, the
demo's figure and piano rolls (Pillow for pixels, matplotlib where text and axes must be legible)."""

from __future__ import annotations

import inspect
import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from PIL import Image, ImageDraw

import rladder_stream.envs  # noqa: F401  (registers the environments)

from ..arguments import OneLineArgumentParser
from ..errors import UsageError, one_line
from ..export.runtime import is_onnx_file
from ..model.registry import REGISTRY
from ..streaming.episode import play_episode
from ..streaming.outputs import StreamingPredictor
from .boundary import check_fits, make_env
from .loading import load_predictor, predictor_for


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

FIG4_ROWS = {  # each row of Figure 4 and what it is (the figure's legend)
    "ground truth": "ground truth: the clean frame t, without the bars (the model never sees it)",
    "observed": "observed: frame t as the model sees it; the orange bars hide the digit (0 there)",
    "predicted": "predicted: the model's forecast of frame t, made after frame t - 1 (probability of ink)",
    "probe": "probe: the clean frame t read out of the lowest decoder map with its gradient stopped,\n"
             "    i.e. what the decoder knows about the parts the bars hide (trained without changing the model)",
}
FIG4_OWN_SCALE = ("predicted", "probe")  # rows drawn on their own grey scale, black = the panel's highest value


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
    predictor with the one streaming loop (:func:`~rladder_stream.streaming.episode.play_episode`), keeping what
    Figure 4 shows."""
    ticks = list(play_episode(predictor, env, options={"index": index}))
    clean = [ticks[0].obs_info["clean_frame"], *(tick.info["clean_frame"] for tick in ticks)]
    observed = [ticks[0].obs, *(tick.next_obs for tick in ticks)]
    predicted = [tick.out.next_obs for tick in ticks]
    probe = [tick.out.probe for tick in ticks]
    beliefs = [tick.out.class_probs for tick in ticks]
    rewards = [tick.reward for tick in ticks]
    info = ticks[-1].info

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


def figure4_title(episode: EpisodeRecord, model: str = "") -> str:
    """Figure 4's title: the model (a file name), the environment, the episode and its digit."""
    who = f"{model} on " if model else ""
    return f"Figure 4: {who}OccludedMovingMNIST-v0, test episode {episode.index}, digit {episode.label}"


def build_figure4(episode: EpisodeRecord, scale: int = 3, ticks: int | None = None, occluder: np.ndarray | None = None,
                  title: str | None = None) -> Any:
    """The matplotlib ``Figure`` of :func:`figure4`: a ``rows x (T + 1)`` grid of axes (``fig.axes`` row by row,
    empty cells included), a title, and a legend saying what each row is."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows = figure4_rows(episode)
    n_cols = len(episode.clean)
    ticks = n_cols if ticks is None else ticks
    panel = 32 * scale / 90 * 1.15  # inches per panel: about ``scale`` screen pixels per image pixel
    legend_h = 0.22 * (len(rows) + 2)
    width, height = 1.3 + n_cols * panel, 0.75 + len(rows) * panel * 1.12 + legend_h
    fig = Figure(figsize=(max(width, 7.2), height), dpi=90)
    top, bottom = 1 - 0.62 / height, (legend_h + 0.05) / height
    axes = np.asarray(fig.subplots(len(rows), n_cols, squeeze=False, gridspec_kw={
        "left": 1.2 / max(width, 7.2), "right": 0.99, "top": top, "bottom": bottom, "wspace": 0.08, "hspace": 0.22}))
    for r, (name, cells) in enumerate(rows):
        for c, image in enumerate(cells):
            ax = axes[r, c]
            if image is None:  # nothing predicts frame 1; the probe reads no frame after the last
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(False)  # an empty cell; the axes stay for the row's name
                continue
            if c >= ticks:  # not streamed yet (the GIF fills in a column a tick): an empty panel of the frame's size
                ax.set_xlim(-0.5, image.shape[1] - 0.5)
                ax.set_ylim(image.shape[0] - 0.5, -0.5)
                ax.set_aspect("equal")
                ax.set_xticks([])
                ax.set_yticks([])
                continue
            if name in FIG4_OWN_SCALE:
                top_value = forecast_scale(image)
                _frame(ax, image, vmax=top_value)
                ax.set_xlabel(f"black = {top_value:.2f}", fontsize=6, labelpad=1)
            else:
                _frame(ax, image, occluder if name == "observed" else None)
        axes[r, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center", labelpad=6)
    for c in range(n_cols):
        axes[0, c].set_title(f"t = {c + 1}", fontsize=8)
    subtitle = ""
    if episode.class_probs is not None and ticks >= 1:
        t = min(ticks, len(episode.class_probs)) - 1
        guess = int(np.argmax(episode.class_probs[t]))
        subtitle = f"\nthe model's class belief after frame {t + 1}: {guess} ({episode.class_probs[t][guess]:.2f})"
    fig.suptitle((title or figure4_title(episode)) + subtitle, fontsize=9, y=1 - 0.05 / height, va="top")
    handles = [Patch(facecolor="none", edgecolor="none", label=FIG4_ROWS[name]) for name, _ in rows]
    if occluder is not None:
        handles.append(Patch(facecolor=OCCLUDER_COLOUR, alpha=0.45, label="occluding bars (the model sees 0 there)"))
    own = " and ".join(name for name, _ in rows if name in FIG4_OWN_SCALE)
    handles.append(Patch(facecolor="black", label=f"ink = 1; {own}: each panel on its own grey scale, black = its highest "
                                                  "value (stated under it)" if own else "ink = 1, background = 0"))
    fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.01, 0.005), fontsize=7, frameon=False,
               handlelength=1.2, handletextpad=0.4, labelspacing=0.3)
    return fig


def figure4(episode: EpisodeRecord, scale: int = 3, ticks: int | None = None, occluder: np.ndarray | None = None,
            title: str | None = None) -> Image.Image:
    """The paper's Figure 4 for one episode: rows ground truth (clean frames), observed (occluded) frames, with the
    ``occluder`` bars drawn over them, predicted next frames and the probe's readout of the unoccluded digit; one
    column per frame; dark digits on white; a title (default :func:`figure4_title`) and a legend saying what each
    row is.

    ``ticks`` shows only the first ``ticks`` columns (the frames seen so far; the GIF is made of these).
    """
    return figure_to_image(build_figure4(episode, scale, ticks, occluder, title))


def figure4_frames(episode: EpisodeRecord, scale: int = 3, occluder: np.ndarray | None = None,
                   title: str | None = None) -> list[Image.Image]:
    """Figure 4 filling in one frame at a time (for :func:`save_gif`); the last one is the whole figure."""
    return [figure4(episode, scale, k, occluder, title) for k in range(1, len(episode.clean) + 1)]


def figure_parser(command: str, description: str, examples: Sequence[str], out: str, out_help: str,
                  index: str) -> OneLineArgumentParser:
    """The options the figure commands share: --index, --out, --scale, --data-dir."""
    parser = OneLineArgumentParser(prog=f"rladder-stream {command}", description=description, examples=examples)
    parser.add_argument("--index", type=int, default=0, help=index)
    parser.add_argument("--out", default=out, help=out_help)
    parser.add_argument("--scale", type=int, default=3, help="how many screen pixels draw one pixel of an image")
    parser.add_argument("--data-dir", default=None, help="folder with the data sets (default: $RLADDER_STREAM_DATA, "
                                                         "else the test images that come with the package)")
    return parser


def parsed(parser: OneLineArgumentParser, argv: list[str]) -> Any:
    """The parsed arguments of a figure command; a scale below 1 is an argument error."""
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error("--scale must be >= 1")
    return args


def figure_env(parser: OneLineArgumentParser, env_id: str, index: int, data_dir: str | None, **data: Any) -> Any:
    """The test split of ``env_id`` (reading ``data_dir`` where the environment takes one; ``data``: other data
    settings, those the environment takes); an ``--index`` beyond it is an argument error (exit 2), a data folder
    without the data a user error (exit 1), like every command's."""
    env = make_env(env_id, split="test", **env_arguments(env_id, data_dir=data_dir, **data))
    try:
        env.unwrapped.episode_source.check_index(index)
    except ValueError as exc:
        env.close()
        parser.error(one_line(exc))
    return env


def figure4_cli_main(argv: list[str]) -> int:
    """``rladder-stream figure4 [--model CKPT] [--index I] [--out DIR]``: the paper's Figure 4 as PNG and GIF."""

    parser = figure_parser(
        "figure4",
        "Draw the paper's Figure 4 for one test episode of Occluded Moving MNIST: one column per frame, and rows of the "
        "digit without the bars, the frames the model saw (with the bars), its forecast of each next frame and, for a "
        "model trained with a probe, what the probe reads of the hidden digit from the model's state. Writes the whole "
        "figure as a PNG and a GIF that fills it in frame by frame.",
        ["rladder-stream figure4", "rladder-stream figure4 --model runs/omm/last.pt --index 7 --out fig"],
        "figure4_out", "folder to write figure4-test<INDEX>.png and .gif into", index="which test episode to draw")
    parser.add_argument("--model", help="the model file: a checkpoint (.pt) or an exported ONNX step (.onnx) (default: "
                                        "the pretrained model that comes with the package)")
    args = parsed(parser, argv)
    predictor, source = predictor_for(args.model, untrained="omm-rladder", seed=0)
    env = figure_env(parser, "rladder_stream/OccludedMovingMNIST-v0", args.index, args.data_dir)
    check_fits(predictor, env, args.model or "the shipped model")
    episode = record_episode(predictor, env, args.index)
    if episode.probe is None:
        print(f"note: {source} has no probe (config.probe is off): the probe row is left out", file=sys.stderr)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    png, gif = out / f"figure4-test{args.index}.png", out / f"figure4-test{args.index}.gif"
    from rladder_stream.envs.occluded_mnist import OCCLUDED

    title = figure4_title(episode, Path(source.split(" (")[0]).name)
    figure4(episode, args.scale, occluder=OCCLUDED, title=title).save(png)
    save_gif(figure4_frames(episode, args.scale, OCCLUDED, title), gif, ms_per_frame=700)
    print(f"model: {source}\nwrote {png} and {gif}")
    return 0


# ============================================================================ piano rolls (music)


def piano_roll_image(
    roll: np.ndarray,
    forecasts: np.ndarray | None = None,
    split: int | None = None,
    scale: int = 4,
    caption: str = "",
    mark_split: bool = True,
) -> Image.Image:
    """A ``[T, 88]`` piano roll as a picture: time to the right, the highest key at the top.

    Notes before ``split`` (the input) are black, notes from ``split`` on (a generated continuation) blue, with
    a red line between them. ``forecasts`` (``[T, 88]`` probabilities the model gave each step before it came)
    shade the background grey, so a reader sees where the model expected notes. Each cell is ``scale`` pixels
    wide and half as tall (minimum 1); a C key gets a faint line so octaves can be counted.
    """
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != 88:
        raise ValueError(f"roll must have shape [T, 88], got {roll.shape}")
    if forecasts is not None and np.shape(forecasts) != roll.shape:
        raise ValueError(f"forecasts must have the roll's shape {roll.shape}, got {np.shape(forecasts)}")
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    steps = roll.shape[0]
    split = steps if split is None else int(split)
    shade = np.zeros(roll.shape, np.float32) if forecasts is None else np.clip(np.nan_to_num(np.asarray(forecasts, np.float32)), 0, 1)
    grey = (255 - 110 * shade)[..., None].repeat(3, axis=-1)  # white -> grey with the forecast probability
    rgb = grey.copy()
    for key in range(88):  # C keys (MIDI 24, 36, ...): a faint octave line
        if (key + 21) % 12 == 0:
            rgb[:, key] = np.minimum(rgb[:, key], 235)
    on = roll > 0
    past = np.arange(steps)[:, None] < split
    rgb[on & past] = (0, 0, 0)
    rgb[on & ~past] = (20, 70, 220)
    image = rgb.astype(np.uint8).transpose(1, 0, 2)[::-1]  # keys vertical, highest at the top
    height = max(1, scale // 2)
    image = np.repeat(np.repeat(image, height, axis=0), scale, axis=1)
    if mark_split and 0 < split < steps:
        image[:, split * scale - 1] = (220, 30, 30)
    picture = Image.fromarray(np.ascontiguousarray(image))
    if not caption:
        return picture
    canvas = Image.new("RGB", (max(picture.width, 8 * len(caption)), picture.height + 14), "white")
    canvas.paste(picture, (0, 0))
    ImageDraw.Draw(canvas).text((2, picture.height + 1), caption, fill="black")
    return canvas


# ============================================================================ groupings (RTagger; the paper's Figures 6 and 7)

GROUP_COLOURS = np.array(
    [[230, 97, 1], [94, 60, 153], [27, 158, 119], [253, 184, 99], [178, 171, 210], [102, 102, 102]], dtype=np.float32
) / 255.0  # colour-blind-safe, one per group (cycled beyond six)


def colour_by_group(image: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """uint8 ``H x W x 3``: ``image`` (values in [0, 1]) tinted by its soft grouping ``masks`` ``(K, H, W)``.

    Each pixel's colour is the mask-weighted mix of the group colours, its brightness the image's (ink dark
    on white, as elsewhere), so a confident pixel shows one hue and an undecided one a blend.
    """
    masks = np.asarray(masks, dtype=np.float32)
    if masks.ndim != 3 or masks.shape[1:] != np.shape(image):
        raise ValueError(f"masks must be (K, *{np.shape(image)}), got {masks.shape}")
    colours = GROUP_COLOURS[np.arange(masks.shape[0]) % len(GROUP_COLOURS)]
    hue = np.einsum("khw,kc->hwc", masks, colours)
    ink = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)[..., None]
    rgb = 1.0 - ink * (1.0 - hue)  # white background, ink in the group's colour
    return (rgb * 255 + 0.5).astype(np.uint8)


def truth_masks_matched(truth: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``(K, H, W)`` one-hot masks of the ground-truth segmentation ``truth`` ``(H, W)`` (ids ``0..K-1``, ``-1``
    ignored), its ids renumbered to the model's soft ``groups`` ``(K, H, W)`` that overlap them most (the
    permutation with the largest total overlap): group ids are arbitrary, so a figure colours each true group as
    the model's group that found it, and a correct grouping shows the same colours side by side."""
    k = groups.shape[0]
    onehot = np.stack([truth == g for g in range(k)]).astype(np.float32)
    overlap = np.einsum("thw,khw->tk", onehot, np.asarray(groups, np.float32))  # true id t, model group k
    if k <= 6:
        best = max(itertools.permutations(range(k)), key=lambda perm: sum(overlap[t, perm[t]] for t in range(k)))
    else:  # greedy beyond 720 permutations
        best, free = [0] * k, set(range(k))
        for t in np.argsort(-overlap.max(axis=1)):
            best[t] = max(free, key=lambda g: overlap[t, g])
            free.remove(best[t])
    matched = np.zeros_like(onehot)
    for t in range(k):
        matched[best[t]] = onehot[t]
    return matched


def _rgb_panel(rgb: np.ndarray, scale: int) -> Image.Image:
    img = Image.fromarray(rgb, mode="RGB")
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def _grid(rows: Sequence[tuple[str, list[tuple[str, Image.Image]]]], caption: str = "", pad: int = 4, label_width: int = 76) -> Image.Image:
    """Rows of titled panels with a row label on the left and an optional caption below."""
    cell_w = max(p.width for _, row in rows for _, p in row)
    cell_h = max(p.height for _, row in rows for _, p in row)
    width = label_width + max(len(row) for _, row in rows) * (cell_w + pad) + pad
    height = len(rows) * (cell_h + pad + 12) + pad + (16 if caption else 0)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, row) in enumerate(rows):
        y = pad + r * (cell_h + pad + 12)
        draw.text((pad, y + 12 + cell_h // 2 - 6), label, fill="black")
        for c, (title, panel) in enumerate(row):
            x = label_width + c * (cell_w + pad)
            draw.text((x, y), title, fill="black")
            canvas.paste(panel, (x, y + 12))
    if caption:
        draw.text((pad, height - 14), caption, fill="black")
    return canvas


@dataclass(frozen=True)
class GroupingRecord:
    """One episode of a grouping environment streamed through an RTagger predictor.

    Attributes:
        observed: ``[T + 1, H, W]`` the observations (the last is only the target of the last forecast).
        groups, reconstructions: ``[T, K, H, W]`` after observation t: the masks and per-group reconstructions.
        predicted: ``[T, H, W]`` the forecast of observation t + 1 (the mixture Σ_k m_k z_k).
        true_groups: ``[T + 1, H, W]`` the ground-truth groups of each observation (-1 ignored), or None.
        class_probs: ``[T, n_classes]`` or None; ``label``: the episode's label (-1 when hidden or absent).
    """

    observed: np.ndarray
    groups: np.ndarray
    reconstructions: np.ndarray
    predicted: np.ndarray
    true_groups: np.ndarray | None
    class_probs: np.ndarray | None
    label: int


def record_grouping(predictor: StreamingPredictor, env: Any, index: int = 0) -> GroupingRecord:
    """Play fixed episode ``index`` of a (test-split) TexturedMNIST or MovingMNIST environment through a
    single-stream RTagger predictor with the one streaming loop (:func:`~rladder_stream.streaming.episode.play_episode`),
    keeping its groupings."""
    ticks = []
    for tick in play_episode(predictor, env, options={"index": index}):
        if tick.out.groups is None:
            raise ValueError("this predictor returns no groups (not an RTagger model)")
        ticks.append(tick)
    observed = [ticks[0].obs, *(tick.next_obs for tick in ticks)]
    truth = [ticks[0].obs_info.get("groups"), *(tick.info.get("groups") for tick in ticks)]
    groups, recon = [tick.out.groups for tick in ticks], [tick.out.reconstructions for tick in ticks]
    predicted, beliefs = [tick.out.next_obs for tick in ticks], [tick.out.class_probs for tick in ticks]
    label = ticks[-1].info.get("label", -1)
    return GroupingRecord(
        observed=np.stack(observed), groups=np.stack(groups), reconstructions=np.stack(recon), predicted=np.stack(predicted),
        true_groups=np.stack(truth) if all(t is not None for t in truth) else None,
        class_probs=None if beliefs[0] is None else np.stack(beliefs), label=int(label),
    )


def figure6(record: GroupingRecord, scale: int = 4) -> Image.Image:
    """The paper's Figure 6 for one textured digit: per iteration, the image coloured by group and what each
    group explains, its reconstruction times its mask ``m_k z_k`` (tinted with its group's colour)."""
    rows = []
    k = record.groups.shape[1]
    for t in range(len(record.groups)):
        row = [("input", _panel(record.observed[t], scale)),
               ("grouping", _rgb_panel(colour_by_group(record.observed[t], record.groups[t]), scale))]
        if record.true_groups is not None:  # ignored pixels (-1) stay uncoloured (grey)
            truth = truth_masks_matched(record.true_groups[t], record.groups[t])
            row.append(("true groups", _rgb_panel(colour_by_group(record.observed[t], truth), scale)))
        for g in range(k):
            one = np.zeros_like(record.groups[t])
            one[g] = 1.0
            # what the group explains: its reconstruction where its mask holds (a group's z_k outside its mask
            # is unconstrained: every group's z_k alone looks like the whole image)
            explained = record.reconstructions[t, g] * record.groups[t, g]
            row.append((f"group {g + 1}", _rgb_panel(colour_by_group(explained, one), scale)))
        rows.append((f"iteration {t + 1}", row))
    caption = ""
    if record.class_probs is not None:
        guess = int(np.argmax(record.class_probs[-1]))
        caption = f"label {record.label}, belief {guess} ({record.class_probs[-1][guess]:.2f}) after the last iteration"
    return _grid(rows, caption)


def figure7_frames(record: GroupingRecord, scale: int = 3) -> list[Image.Image]:
    """The paper's Figure 7, one picture per frame: the observed frame, the predicted next frame coloured by
    its predicted grouping, and the actual next frame coloured by the true segmentation."""
    frames = []
    for t in range(len(record.groups)):
        truth = record.true_groups[t + 1] if record.true_groups is not None else None
        true_masks = None if truth is None else truth_masks_matched(truth, record.groups[t])
        row = [("observed", _panel(record.observed[t], scale)),
               ("predicted next, by group", _rgb_panel(colour_by_group(record.predicted[t], record.groups[t]), scale))]
        if true_masks is not None:
            row.append(("actual next, true groups", _rgb_panel(colour_by_group(record.observed[t + 1], true_masks), scale)))
        frames.append(_grid([(f"frame {t + 1}", row)], label_width=56))
    return frames


def grouping_figures(record: GroupingRecord, out: str | os.PathLike, stem: str, scale: int = 3) -> list[Path]:
    """Write a recorded grouping episode as pictures: Figure 6 (PNG) for images, Figure 7 (PNG strip and GIF)
    for video (more than ``N`` iterations' worth of distinct frames)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    static = all(np.array_equal(record.observed[0], o) for o in record.observed[1:])
    if static:
        path = out / f"{stem}.png"
        figure6(record, scale=scale + 1).save(path)
        return [path]
    frames = figure7_frames(record, scale)
    png, gif = out / f"{stem}.png", out / f"{stem}.gif"
    stack_vertically(frames).save(png)
    save_gif(frames, gif, ms_per_frame=300)
    return [png, gif]


# The paper's figure of each grouping environment's groupings (Shapes, not in the paper, is drawn as Figure 6 is).
PAPER_FIGURES = {"rladder_stream/TexturedMNIST-v0": "figure6", "rladder_stream/MovingMNIST-v0": "figure7"}


def env_arguments(env_id: str, **wanted: Any) -> dict[str, Any]:
    """Of ``wanted``, the keyword arguments the environment's constructor takes (``None`` values left out)."""
    parameters = inspect.signature(load_env_creator(gym.spec(env_id).entry_point)).parameters
    return {k: v for k, v in wanted.items() if v is not None and k in parameters}


def training_data_settings(model: str | os.PathLike) -> dict[str, Any]:
    """The plate settings (``textures``, ``texture_scale``, ...) a checkpoint's run trained on, from the training
    settings it keeps, so a picture shows the model on its own data; ``{}`` for an ONNX file or a checkpoint that
    keeps none (weights-only files: the environment's defaults)."""
    from ..streaming.checkpoint import load_checkpoint
    from ..training.settings import TEXTURE_SETTINGS

    if is_onnx_file(Path(model)):
        return {}
    train_config = load_checkpoint(model)[2].get("train_config") or {}
    return {name: train_config[name] for name in TEXTURE_SETTINGS if name in train_config}


def groups_cli_main(argv: list[str]) -> int:
    """``rladder-stream groups --model CKPT [--index I] [--out DIR]``: an RTagger's groupings as the paper's
    Figure 6 (textured digits, Shapes: PNG) or Figure 7 (Moving MNIST: PNG strip and GIF)."""
    parser = figure_parser(
        "groups",
        "Draw how an RTagger splits what it sees into groups, one per object, for one test episode of the environment "
        "its model was trained on: the paper's Figure 6 for still images (textured digits, Shapes: at every iteration, "
        "the image coloured by group and what each group explains) as a PNG, or its Figure 7 for Moving MNIST (the "
        "same per frame) as a PNG strip and a GIF.",
        ["rladder-stream groups --model runs/tmnist/last.pt", "rladder-stream groups --model mmnist.onnx --index 3"],
        "groups_out", "folder to write the pictures into", index="which test episode to draw")
    parser.add_argument("--model", required=True,
                        help="an RTagger model file, a checkpoint (.pt) or an exported ONNX step (.onnx), of a tmnist-, "
                             "mmnist- or shapes- configuration")
    args = parsed(parser, argv)
    predictor = load_predictor(args.model)  # a checkpoint on PyTorch, an .onnx file on ONNX Runtime
    config = predictor.config if hasattr(predictor, "config") else predictor.model.config
    if not config.groups:
        raise UsageError(f"{args.model} holds a {config.name!r} model without groups (not an RTagger)")
    if config.name not in REGISTRY:
        raise UsageError(f"{args.model} holds a {config.name!r} model; no environment is registered for it")
    env_id = REGISTRY[config.name].env_id
    data = env_arguments(env_id, **training_data_settings(args.model))
    env = figure_env(parser, env_id, args.index, args.data_dir, **data)
    record = record_grouping(predictor, env, args.index)
    stem = f"{PAPER_FIGURES.get(env_id, 'figure6')}-{config.name}-test{args.index}"
    paths = grouping_figures(record, args.out, stem, args.scale)
    trained_on = " ".join(f"{k}={v}" for k, v in data.items())
    print(f"model: {args.model} ({config.name})" + (f"; data as it trained: {trained_on}" if trained_on else "")
          + f"\nwrote {' and '.join(str(p) for p in paths)}")
    return 0


# ============================================================================ matplotlib figures: titles, legends, axes
# Pillow's bitmap font is 11 px and has no axes; these pictures are read by people, so they use matplotlib
# (rendered off-screen with the Agg canvas: no display, no pyplot global state).

OCCLUDER_COLOUR = "#f28e2b"  # the bars of Occluded Moving MNIST, drawn over the frames that have them
TRUE_CLASS_COLOUR = "#2ca02c"
OTHER_CLASS_COLOUR = "#b0b0b0"
DEMO_ROWS = ("observed frame t\n(bars hide the digit)", "forecast of\nframe t+1\n(own scale:\nblack = its max p)",
             "actual\nframe t+1", "clean frame t+1\n(without bars)", "class belief\nafter frame t")
HIGHER_IS_BETTER = "higher is better"  # said wherever a log-likelihood is shown
FORECAST_FLOOR = 0.05  # the forecast's own scale never goes below this (a blank forecast stays blank)


def figure_to_image(fig: Any) -> Image.Image:
    """Render a matplotlib ``Figure`` off-screen to an RGB Pillow image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy())


def _frame(ax: Any, image: np.ndarray, occluder: np.ndarray | None = None, vmax: float = 1.0) -> None:
    """A frame dark ink on white (values in [0, ``vmax``]: ``vmax`` and above black), with the occluding bars over
    it in colour."""
    from matplotlib.colors import ListedColormap

    ax.imshow(np.clip(image, 0, vmax), cmap="gray_r", vmin=0, vmax=vmax, interpolation="nearest")
    if occluder is not None:
        ax.imshow(np.ma.masked_where(~occluder, np.ones(occluder.shape)), cmap=ListedColormap([OCCLUDER_COLOUR]),
                  alpha=0.45, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _belief(ax: Any, probs: np.ndarray | None, label: int) -> None:
    """Class beliefs as bars, the true digit's bar green."""
    if probs is None:
        ax.axis("off")
        return
    colours = [TRUE_CLASS_COLOUR if k == label else OTHER_CLASS_COLOUR for k in range(len(probs))]
    ax.bar(np.arange(len(probs)), probs, color=colours, width=0.8)
    ax.set_ylim(0, 1)
    ax.set_xticks(np.arange(len(probs)))
    ax.tick_params(labelsize=6, length=0)
    ax.set_yticks([0, 1])
    guess = int(np.argmax(probs))
    ax.set_title(f"{guess}: {probs[guess]:.2f}", fontsize=7, pad=2)


def forecast_scale(forecast: np.ndarray) -> float:
    """The top of a forecast's own grey scale: its highest probability of ink (at least :data:`FORECAST_FLOOR`),
    so a faint forecast (a model that is unsure spreads little probability over many pixels) is still seen."""
    return max(float(np.max(forecast)), FORECAST_FLOOR)


def _forecast(ax: Any, forecast: np.ndarray | None, fontsize: float = 6) -> None:
    """A forecast of ink probabilities on its own scale (black = its highest probability), that scale stated."""
    if forecast is None:
        ax.axis("off")
        return
    top = forecast_scale(forecast)
    _frame(ax, forecast, vmax=top)
    ax.set_xlabel(f"black = p {top:.2f}", fontsize=fontsize, labelpad=1)


def _legend(fig: Any, with_beliefs: bool, loc: str = "lower center") -> None:
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=OCCLUDER_COLOUR, alpha=0.45, label="occluding bars (the model sees 0 there)"),
               Patch(facecolor="black", label="ink = 1; forecast: its highest probability of ink (stated under it)"),
               Patch(facecolor="white", edgecolor="grey", label="background = 0")]
    if with_beliefs:
        handles += [Patch(facecolor=TRUE_CLASS_COLOUR, label="belief in the true digit"),
                    Patch(facecolor=OTHER_CLASS_COLOUR, label="belief in the other digits")]
    fig.legend(handles=handles, loc=loc, ncol=3, fontsize=7, frameon=False)


def _episode_title(episode: EpisodeRecord) -> str:
    text = f"test episode {episode.index}: digit {episode.label}"
    if episode.class_probs is not None:
        guess = int(np.argmax(episode.class_probs[-1]))
        verdict = "correct" if guess == episode.label else "wrong"
        text += f"; at the end the model says {guess} ({episode.class_probs[-1][guess]:.2f}, {verdict})"
    return text + f"; log-likelihood of the next frame {episode.rewards.mean():.1f} per tick ({HIGHER_IS_BETTER})"


def demo_figure(episodes: Sequence[EpisodeRecord], title: str, occluder: np.ndarray | None = None) -> Image.Image:
    """Every streamed episode of the demo, one block each: per tick (column) the observed frame with the bars
    drawn, the forecast of the next frame, the actual next frame, the clean next frame and the class belief."""
    return figure_to_image(build_demo_figure(episodes, title, occluder))


def build_demo_figure(episodes: Sequence[EpisodeRecord], title: str, occluder: np.ndarray | None = None) -> Any:
    """The matplotlib ``Figure`` of :func:`demo_figure`."""
    from matplotlib.figure import Figure

    ticks = max(len(e.rewards) for e in episodes)
    fig = Figure(figsize=(1.25 * ticks + 1.6, 6.3 * len(episodes) + 1.2), dpi=90)
    header, *blocks, footer = fig.subfigures(len(episodes) + 2, 1, height_ratios=[0.5, *[6.3] * len(episodes), 0.7])
    header.suptitle(f"{title}: each column is one tick", fontsize=10, y=0.7)
    for block, episode in zip(blocks, episodes):
        block.suptitle(_episode_title(episode), fontsize=8, x=0.02, ha="left")
        axes = block.subplots(len(DEMO_ROWS), ticks, gridspec_kw={"height_ratios": [1, 1, 1, 1, 0.75],
                                                                  "left": 0.17, "right": 0.98, "bottom": 0.06, "top": 0.9})
        axes = np.asarray(axes).reshape(len(DEMO_ROWS), ticks)
        for t in range(ticks):
            _frame(axes[0, t], episode.observed[t], occluder)
            axes[0, t].set_title(f"t = {t + 1}", fontsize=8)
            _forecast(axes[1, t], None if episode.predicted is None else episode.predicted[t])
            _frame(axes[2, t], episode.observed[t + 1], occluder)
            _frame(axes[3, t], episode.clean[t + 1])
            _belief(axes[4, t], None if episode.class_probs is None else episode.class_probs[t], episode.label)
        for row, name in enumerate(DEMO_ROWS):
            axes[row, 0].set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center", labelpad=6)
    _legend(footer, any(e.class_probs is not None for e in episodes), loc="center")
    return fig


def demo_frames(episodes: Sequence[EpisodeRecord], title: str, occluder: np.ndarray | None = None) -> list[Image.Image]:
    """The demo as an animation: one picture per tick of every episode, its panels titled, with the legend."""
    from matplotlib.figure import Figure

    frames = []
    for episode in episodes:
        for t in range(len(episode.rewards)):
            fig = Figure(figsize=(9.5, 2.9), dpi=90)
            fig.suptitle(f"{title}\ntest episode {episode.index}, digit {episode.label}: tick {t + 1} of "
                         f"{len(episode.rewards)}, log-likelihood of the next frame {episode.rewards[t]:.1f} ({HIGHER_IS_BETTER})",
                         fontsize=8)
            axes = fig.subplots(1, 5, gridspec_kw={"left": 0.02, "right": 0.98, "bottom": 0.3, "top": 0.7, "wspace": 0.25})
            _frame(axes[0], episode.observed[t], occluder)
            _forecast(axes[1], None if episode.predicted is None else episode.predicted[t], fontsize=7)
            _frame(axes[2], episode.observed[t + 1], occluder)
            _frame(axes[3], episode.clean[t + 1])
            _belief(axes[4], None if episode.class_probs is None else episode.class_probs[t], episode.label)
            names = [f"observed frame {t + 1}\n(bars hide the digit)", f"forecast of frame {t + 2}", f"actual frame {t + 2}",
                     f"clean frame {t + 2}\n(without bars)", f"class belief after frame {t + 1}"]
            if episode.predicted is not None:  # the forecast's own grey scale, stated
                names[1] += f"\n(own scale: black = p {forecast_scale(episode.predicted[t]):.2f})"
            for ax, name in zip(axes, names):
                ax.set_xlabel(name, fontsize=7)
            _legend(fig, episode.class_probs is not None)
            frames.append(figure_to_image(fig))
    return frames


ROLL_CONTEXT_STEPS = 32  # on a long piece the picture shows the continuation after the input's last 32 steps
ROLL_PITCH_MARGIN = 3  # semitones shown above the highest and below the lowest note played
ROLL_MIN_SPAN = 12  # the pitch axis shows at least an octave
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(midi: int) -> str:
    """Scientific pitch notation of a MIDI note: 60 -> C4, 69 -> A4."""
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def pitch_window(roll: np.ndarray, margin: int = ROLL_PITCH_MARGIN, min_span: int = ROLL_MIN_SPAN) -> tuple[int, int]:
    """The MIDI notes ``(lowest, highest)`` a piano-roll picture shows: those the ``[T, 88]`` roll plays, ``margin``
    semitones more on each side, at least ``min_span`` semitones in all, inside the piano (21..108); the whole
    piano for a silent roll."""
    keys = np.flatnonzero(np.asarray(roll).any(axis=0))
    if keys.size == 0:
        return 21, 108
    lo, hi = int(keys.min()) + 21 - margin, int(keys.max()) + 21 + margin
    if hi - lo < min_span:
        grow = min_span - (hi - lo)
        lo, hi = lo - grow // 2, hi + grow - grow // 2
    if lo < 21:
        lo, hi = 21, hi + 21 - lo
    if hi > 108:
        lo, hi = lo - (hi - 108), 108
    return max(lo, 21), min(hi, 108)


def roll_window(steps: int, split: int | None, context: int | None = ROLL_CONTEXT_STEPS) -> tuple[int, int]:
    """The steps ``[first, end)`` a piano-roll picture shows: everything, or, when the input before ``split`` is
    longer than ``context`` steps, the continuation after the input's last ``context`` steps (``context=None``:
    always everything)."""
    if context is None or split is None or not 0 < split < steps or split <= context:
        return 0, steps
    return split - context, steps


def piano_roll_figure(roll: np.ndarray, forecasts: np.ndarray | None = None, split: int | None = None, title: str = "",
                      steps_per_beat: int = 2, context: int | None = ROLL_CONTEXT_STEPS) -> Image.Image:
    """A ``[T, 88]`` piano roll with a pitch axis (note names, C4 = MIDI 60; zoomed to the notes played) and a time
    axis (steps and beats): the input's notes black, a continuation's (from ``split`` on) blue, the forecast
    probability as grey shading; a long input is cut to its last ``context`` steps (``None``: the whole piece)."""
    return figure_to_image(build_piano_roll_figure(roll, forecasts, split, title, steps_per_beat, context))


def build_piano_roll_figure(roll: np.ndarray, forecasts: np.ndarray | None = None, split: int | None = None,
                            title: str = "", steps_per_beat: int = 2, context: int | None = ROLL_CONTEXT_STEPS) -> Any:
    """The matplotlib ``Figure`` of :func:`piano_roll_figure`."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    picture = np.asarray(piano_roll_image(roll, forecasts, split, scale=1, mark_split=False))  # keys top-down, a pixel a cell
    steps = len(roll)
    first, end = roll_window(steps, split, context)
    lo, hi = pitch_window(np.asarray(roll)[first:end])
    picture = picture[108 - hi:108 - lo + 1, first:end]  # row r is MIDI 108 - r
    shown = end - first
    fig = Figure(figsize=(min(16.0, max(6.5, 2.5 + shown * 0.08)), 5.2), dpi=90)
    ax = fig.add_axes((0.1, 0.2, 0.88, 0.6))
    ax.imshow(picture, aspect="auto", interpolation="nearest", extent=(first, end, lo - 0.5, hi + 0.5))
    span = hi - lo
    # named: every natural note on a narrow axis, C E G on a wider one, the Cs on the whole piano; every key a minor tick
    names = {0, 2, 4, 5, 7, 9, 11} if span <= 26 else {0, 4, 7} if span <= 52 else {0}
    named = [n for n in range(lo, hi + 1) if n % 12 in names]
    if span <= 52:
        ax.set_yticks(range(lo, hi + 1), minor=True)
    ax.set_yticks(named, [note_name(n) for n in named], fontsize=6 if span <= 52 else 7)
    ax.set_ylabel("pitch (C4 = MIDI 60)", fontsize=8)
    ax.set_xlabel(f"time step ({steps_per_beat} per beat)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if steps_per_beat > 1:
        beats = ax.secondary_xaxis("top", functions=(lambda s: s / steps_per_beat, lambda b: b * steps_per_beat))
        beats.set_xlabel("beat", fontsize=8)
        beats.tick_params(labelsize=7)
    if split is not None and 0 < split < steps:
        ax.axvline(split, color=(220 / 255, 30 / 255, 30 / 255), linewidth=1.5)
    window = "" if first == 0 else f"shown: the input's last {split - first} of {split} steps, then the continuation"
    if title or window:
        fig.suptitle("\n".join(t for t in (title, window) if t), fontsize=9, y=0.985)
    handles = [Patch(facecolor="black", label="notes of the input")]
    if split is not None and split < steps:
        handles.append(Patch(facecolor=(20 / 255, 70 / 255, 220 / 255), label="notes of the continuation"))
        handles.append(Patch(facecolor=(220 / 255, 30 / 255, 30 / 255), label="where the continuation starts"))
    if forecasts is not None:
        handles.append(Patch(facecolor=(0.57, 0.57, 0.57), label="grey: the model's forecast probability"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    return fig
