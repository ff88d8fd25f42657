"""Occluded Moving MNIST (docs/design.md#occluded-moving-mnist): a small digit moves behind a fixed grid of bars."""

from __future__ import annotations

import functools
import os
from typing import Sequence

import numpy as np
from PIL import Image

from .base import EpisodeSource, PredictionEnv, PredictionVectorEnv
from .drawing import INK, bounce, paste
from .randomness import BatchRandom
from .splits import mnist_pool

ENV_ID = "rladder_stream/OccludedMovingMNIST-v0"
FRAME_SIZE = 32
DIGIT_SIZE = 16
N_OBSERVED = 5  # observed frames; the frame after them is the target of the last forecast
LIMIT = FRAME_SIZE - DIGIT_SIZE  # top-left corners 0..16
BARS = (np.arange(FRAME_SIZE) % 12) >= 8  # rows / columns 8-11 and 20-23
OCCLUDED = BARS[:, None] | BARS[None, :]  # [32, 32] True under a bar
VELOCITIES = np.array([(s * dy, s * dx) for s in (1, 2) for dy in (1, -1) for dx in (1, -1)])  # (vy, vx)
SEMI_SUPERVISED_END = 60_000  # docs/design.md#occluded-moving-mnist: 1,000 labelled + 59,000 unlabelled training sequences


#: Renderings of a 28x28 digit at 16x16 that ``digit_augment`` draws among for training sequences: Pillow filters x
#: how much of the 28x28 box is resized (all of it, or its central 24x24, which makes the digit larger). Style 0
#: is the data set's own (docs/design.md#occluded-moving-mnist): Pillow bilinear of the whole box.
DIGIT_STYLES = tuple(
    (resample, box)
    for box in (28, 24)
    for resample in (Image.Resampling.BILINEAR, Image.Resampling.HAMMING, Image.Resampling.BICUBIC, Image.Resampling.BOX)
)


def resize_digits(digits: np.ndarray, size: int = DIGIT_SIZE, style: int = 0) -> np.ndarray:
    """uint8 ``[B, 28, 28]`` -> uint8 ``[B, size, size]`` with Pillow's antialiased bilinear resize (``style`` 0),
    or another of :data:`DIGIT_STYLES`.

    8-bit Pillow resampling is integer arithmetic, so the result is the same on every machine.
    """
    resample, box = DIGIT_STYLES[style]
    margin = (digits.shape[-1] - box) // 2
    out = np.empty((len(digits), size, size), dtype=np.uint8)
    for i, digit in enumerate(digits):
        image = Image.fromarray(np.ascontiguousarray(digit[margin : margin + box, margin : margin + box]))
        out[i] = np.asarray(image.resize((size, size), resample))
    return out


def draw_styles(rng: np.random.Generator | Sequence[np.random.Generator], batch_size: int, augment: bool) -> np.ndarray:
    """Which of :data:`DIGIT_STYLES` renders each sequence's digit: int64 ``[B]``, drawn after the trajectories
    (so sequences without ``augment``, all style 0, keep their draws)."""
    if not augment:
        return np.zeros(batch_size, dtype=np.int64)
    return BatchRandom(rng, batch_size).integers(0, len(DIGIT_STYLES)).astype(np.int64)


def styled_digits(digits: np.ndarray, styles: np.ndarray) -> np.ndarray:
    """``digits [B, 28, 28]`` each resized in its own style ``styles [B]`` -> uint8 ``[B, 16, 16]``."""
    out = np.empty((len(digits), DIGIT_SIZE, DIGIT_SIZE), dtype=np.uint8)
    for style in np.unique(styles):
        rows = styles == style
        out[rows] = resize_digits(digits[rows], style=int(style))
    return out


def draw_trajectories(
    rng: np.random.Generator | Sequence[np.random.Generator],
    n_digits: int,
    batch_size: int,
    choice: np.ndarray | None = None,
    n_frames: int = N_OBSERVED + 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The random part of :func:`generate_occluded_batch`: which digits (unless ``choice`` is given), and
    their paths. Returns ``(choice [B], ys [B, T], xs [B, T], velocity [B, 2])``, int64. Renderers of the
    same episodes elsewhere (the training's on-device one) start from this, so they see the same draws."""
    draw = BatchRandom(rng, batch_size)
    choice = draw.integers(0, n_digits) if choice is None else np.asarray(choice, dtype=np.int64)
    start = draw.integers(0, LIMIT + 1, (2,))
    velocity = VELOCITIES[draw.integers(0, len(VELOCITIES))]
    path = bounce(start.astype(np.float64), velocity.astype(np.float64), n_frames, LIMIT)  # [B, 2, T]
    return choice, path[:, 0].astype(np.int64), path[:, 1].astype(np.int64), velocity.astype(np.int64)


def generate_occluded_batch(
    rng: np.random.Generator | Sequence[np.random.Generator],
    digits: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    choice: np.ndarray | None = None,
    n_frames: int = N_OBSERVED + 1,
    digit_augment: bool = False,
) -> dict[str, np.ndarray]:
    """Draw ``batch_size`` occluded moving-digit sequences (the environment and training both use this).

    Args:
        rng: all randomness comes from here (digit choice if ``choice`` is None, then start, then velocity);
            or one generator per row (see :class:`~rladder_stream.envs.randomness.BatchRandom`).
        digits: uint8 ``[N, 28, 28]`` MNIST digits to draw from; ``labels``: ``[N]`` (-1 = unlabelled).
        choice: optional ``[batch_size]`` rows of ``digits`` to use instead of random ones.
        n_frames: sequence length, 5 observed + 1 target by default.
        digit_augment: render each digit in one of :data:`DIGIT_STYLES` drawn at random (after the trajectory),
            instead of the data set's own rendering; for training a model that does not rely on how this
            generator resizes digits (docs/design.md#occluded-moving-mnist).

    Returns (``B = batch_size``, ``T = n_frames``):
        ``frames`` float32 ``[B, T, 32, 32]``: what is observed (bars = 0).
        ``clean`` float32 ``[B, T, 32, 32]``: the same without bars.
        ``optimal_reconstruction`` float32 ``[B, T, 32, 32]``: at tick t, the digit at its tick-t position
        showing only the digit pixels visible in at least one of frames 0..t, background elsewhere.
        ``labels`` int64 ``[B]``; ``indices`` int64 ``[B]`` (rows of ``digits``); ``positions`` int64
        ``[B, T, 2]`` (top-left y, x); ``velocities`` int64 ``[B, 2]`` (vy, vx at tick 0); ``digits`` uint8
        ``[B, 16, 16]`` (the resized digit).
    """
    choice, ys, xs, velocity = draw_trajectories(rng, len(digits), batch_size, choice, n_frames)
    small = styled_digits(digits[choice], draw_styles(rng, batch_size, digit_augment))
    ink = INK[small]
    clean = paste(ink[:, None], ys, xs, (FRAME_SIZE, FRAME_SIZE))
    frames = np.where(OCCLUDED, np.float32(0.0), clean)
    # Which digit pixels are visible in each frame, in the digit's own coordinates: [B, T, 16, 16].
    offsets = np.arange(DIGIT_SIZE)
    visible = ~(BARS[ys[..., None] + offsets][..., :, None] | BARS[xs[..., None] + offsets][..., None, :])
    seen = np.logical_or.accumulate(visible, axis=1)
    optimal = paste(ink[:, None] * seen, ys, xs, (FRAME_SIZE, FRAME_SIZE))
    return {
        "frames": frames,
        "clean": clean,
        "optimal_reconstruction": optimal,
        "labels": np.asarray(labels)[choice].astype(np.int64),
        "indices": choice,
        "positions": np.stack([ys, xs], axis=-1),
        "velocities": velocity,
        "digits": small,
    }


def episode_source(
    split: str = "train", labelled: int | None = None, data_dir: str | os.PathLike | None = None,
    digit_augment: bool = False,
) -> EpisodeSource:
    """The :class:`~rladder_stream.envs.base.EpisodeSource` the environment plays (training uses it too): the generator
    bound to the split's digits; ``episodes(rng, n, indices)`` returns a batch of sequences. ``digit_augment``
    (train split only; valid/test are always the data set's own rendering) draws each digit's rendering."""
    if not isinstance(digit_augment, (bool, np.bool_)):
        raise ValueError(f"digit_augment must be True or False, got {digit_augment!r}")
    augment = bool(digit_augment) and split == "train"
    pool = mnist_pool(split, data_dir, env_name=ENV_ID, labelled=labelled, semi_supervised_end=SEMI_SUPERVISED_END)
    generate = functools.partial(generate_occluded_batch, digits=pool.images, labels=pool.labels, digit_augment=augment)
    source = pool.source + (", training digits in random renderings" if augment else "")
    return EpisodeSource(generate, len(pool.labels), split, ENV_ID, source, pool.labelled_rows)


class OccludedMovingMNISTEnv(PredictionEnv):
    """
    ## Description
    A 16x16 MNIST digit moves with constant velocity in a 32x32 frame, bouncing off the edges, behind a fixed
    grid of horizontal and vertical bars 4 px wide with 8 visible px between them (row or column i is
    hidden when ``i % 12`` is 8, 9, 10 or 11). The predictor sees 5 frames, forecasts each next frame, and
    says which digit it is after the 5th (RLadder paper, section 3; docs/design.md#occluded-moving-mnist).

    ## Action Space
    ``Dict({"forecast": Box(0, 1, (32, 32), float32), "class_probs": Box(0, 1, (10,), float32)})``: the
    probability of ink at every pixel of the NEXT observation, and beliefs over the 10 classes (normalised
    to sum 1 before scoring). A bare ``(32, 32)`` forecast array is accepted too (no class beliefs).
    Malformed actions (wrong shape, NaN, outside [0, 1], non-numeric) raise ``ValueError`` and leave the
    episode where it was.

    ## Observation Space
    ``Box(0, 1, (32, 32), float32)``: the current frame, 1 = ink, bars = 0 (background).

    ## Rewards
    The Bernoulli log-likelihood of the next observation under the forecast, summed over pixels, with the
    forecast clipped to [1e-6, 1 - 1e-6] (:func:`~rladder_stream.envs.scoring.bernoulli_log_likelihood`). The return is
    minus the paper's prediction cost. Class beliefs are scored in ``info``, not in the reward.

    ## Starting State
    A digit of the split (train: drawn at random; valid/test: the next fixed episode), a top-left corner
    uniform over the 17x17 positions that fit, and a velocity from {(+-1, +-1), (+-2, +-2)} px/frame.

    ## Episode End
    ``reset`` returns frame 1; step k returns frame k+1. The 5th step returns frame 6 (the target of the
    last forecast) with ``terminated=True``; the class beliefs given with that step (made after seeing frame
    5) are the ones scored. Never truncated. Stepping after termination raises ``RuntimeError``.

    ## Arguments
    - ``split``: ``"train"`` (MNIST train 0-49,999, fresh random trajectories from the env's generator),
      ``"valid"`` (MNIST train 50,000-59,999) or ``"test"`` (MNIST test). On valid/test episode i is always
      digit i with a trajectory seeded only by (split, i); ``reset()`` walks 0, 1, 2, ... (wrapping), a
      seeded ``reset(seed=...)`` restarts the walk at 0, and ``reset(options={"index": i})`` picks one (on
      train it picks the digit, the trajectory stays random).
    - ``labelled``: semi-supervised training (train only): the number of labelled digits (the paper's: 1000), a
      class-balanced subset fixed by a seed; the pool is then MNIST train 0-59,999 and all other episodes
      are unlabelled.
    - ``digit_augment``: train split only: each episode's digit rendered in one of 8 ways (Pillow's bilinear,
      Hamming, bicubic or box filter, of the whole 28x28 box or its central 24x24) drawn at random, instead of the
      data set's own bilinear of the whole box; valid/test ignore it. Default ``False``.
    - ``data_dir``: folder with ``mnist/``; default ``$RLADDER_STREAM_DATA``, the cache, else the embedded
      subset (test digits 0-299, valid digits 0-299, 1,000 train digits; see :mod:`rladder_stream.envs.data.mnist`).
    - ``render_mode``: ``None`` or ``"rgb_array"`` (observation beside the last forecast, 4x, dark on white).

    ## Info
    Every tick: ``"t"`` (index of the returned frame, 0 at reset), ``"clean_frame"`` (the frame without
    bars), ``"optimal_reconstruction"`` (the digit at its current position showing only the pixels visible
    in at least one frame so far, background elsewhere). At termination only: ``"label"`` (-1 when
    unlabelled), ``"labelled"``, and, when class beliefs were given for a labelled episode,
    ``"class_correct"`` (argmax equals the label) and ``"class_log_prob"``.

    ## Batched generator
    :func:`generate_occluded_batch` (also used by training); vectorised: :class:`OccludedMovingMNISTVectorEnv`.

    ## Version History
    - v0: first version.
    """

    frame_shape = (FRAME_SIZE, FRAME_SIZE)
    classify = True
    tick_info = {"clean_frame": "clean", "optimal_reconstruction": "optimal_reconstruction"}

    def __init__(
        self,
        split: str = "train",
        labelled: int | None = None,
        data_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
        digit_augment: bool = False,
    ) -> None:
        super().__init__(episode_source(split, labelled, data_dir, digit_augment), render_mode)


class OccludedMovingMNISTVectorEnv(PredictionVectorEnv):
    """``num_envs`` Occluded Moving MNIST episodes at once, from :func:`generate_occluded_batch` with a batch
    of ``num_envs``; same arguments and contract as :class:`OccludedMovingMNISTEnv`, batched, with
    Gymnasium's next-step autoreset (see :class:`~rladder_stream.envs.base.PredictionVectorEnv`)."""

    frame_shape = OccludedMovingMNISTEnv.frame_shape
    classify = OccludedMovingMNISTEnv.classify
    tick_info = OccludedMovingMNISTEnv.tick_info

    def __init__(
        self,
        num_envs: int = 1,
        split: str = "train",
        labelled: int | None = None,
        data_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
        digit_augment: bool = False,
    ) -> None:
        super().__init__(episode_source(split, labelled, data_dir, digit_augment), num_envs, render_mode)
