"""Moving MNIST with segmentation ground truth (docs/design.md#moving-mnist): two digits bounce around a 64x64 frame."""

from __future__ import annotations

import functools
import os
from typing import Any, Sequence

import numpy as np

from .base import EpisodeSource, PredictionEnv, PredictionVectorEnv
from .drawing import INK, bounce, paste
from .randomness import BatchRandom
from .splits import mnist_pool

ENV_ID = "rladder_stream/MovingMNIST-v0"
FRAME_SIZE = 64
DIGIT_SIZE = 28
N_FRAMES = 20
LIMIT = FRAME_SIZE - DIGIT_SIZE  # top-left corners 0..36
SPEED_RANGE = (2.0, 5.0)  # px/frame
INK_THRESHOLD = 127  # uint8: a digit "inks" a pixel when its value / 255 > 0.5
AMI_IGNORE = (-1, 0)  # docs/design.md#moving-mnist: AMI over digit pixels only (overlaps and the background left out)


def draw_paths(
    rng: np.random.Generator | Sequence[np.random.Generator],
    n_digits: int,
    batch_size: int,
    choice: np.ndarray | None = None,
    n_frames: int = N_FRAMES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The random part of :func:`generate_moving_batch`: which two digits (the first unless ``choice`` is
    given), and their rounded paths. Returns ``(indices [B, 2], ys [B, 2, T], xs [B, 2, T])``, int64. The
    training's on-device renderer starts from this too, so it sees the same draws."""
    draw = BatchRandom(rng, batch_size)
    first = draw.integers(0, n_digits) if choice is None else np.asarray(choice, dtype=np.int64)
    second = draw.integers(0, n_digits)
    start = draw.uniform(0.0, LIMIT, (2, 2))
    angle = draw.uniform(0.0, 2.0 * np.pi, (2,))
    speed = draw.uniform(*SPEED_RANGE, (2,))
    velocity = speed[..., None] * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
    path = np.rint(bounce(start, velocity, n_frames, LIMIT)).astype(np.int64)  # [B, digit, yx, T]
    return np.stack([first, second], axis=1), path[:, :, 0], path[:, :, 1]


def label_groups(one: Any, two: Any, groups: Any) -> Any:
    """Fill and return ``groups`` (int8, the layers' shape) with the segmentation of two uint8 digit layers:
    0 background (neither has ink), 1 / 2 the digit whose ink is brighter, -1 where both ink the pixel above
    ``INK_THRESHOLD`` or they tie with ink. Numpy arrays or torch tensors alike: the generator's rule, written
    once for the training's on-device renderer too."""
    groups[...] = 1
    groups[two > one] = 2
    tie = one == two
    groups[tie] = 0
    groups[(tie & (one > 0)) | ((one > INK_THRESHOLD) & (two > INK_THRESHOLD))] = -1
    return groups


def generate_moving_batch(
    rng: np.random.Generator | Sequence[np.random.Generator],
    digits: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    choice: np.ndarray | None = None,
    n_frames: int = N_FRAMES,
) -> dict[str, np.ndarray]:
    """Draw ``batch_size`` two-digit Moving MNIST sequences (the environment and training both use this).

    Each digit starts at a uniform (continuous) top-left corner in [0, 36]^2, moves in a uniform random
    direction at a uniform speed of 2-5 px/frame, reflects off the edges, and is drawn at its rounded
    position; frames combine the two digits by max.

    Args:
        rng: all randomness (:func:`draw_paths`: first digits if ``choice`` is None, second digits, starts,
            directions, speeds); or one generator per row (see :class:`~rladder_stream.envs.randomness.BatchRandom`).
        digits: uint8 ``[N, 28, 28]``; ``labels``: ``[N]``.
        choice: optional ``[batch_size]`` rows of ``digits`` for the FIRST digit (the second is always drawn).
        n_frames: sequence length (20).

    Returns (``B = batch_size``, ``T = n_frames``):
        ``frames`` float32 ``[B, T, 64, 64]``.
        ``groups`` int8 ``[B, T, 64, 64]``: 0 background (neither digit has ink), 1 / 2 the digit whose ink
        is brighter there, -1 ignore: both digits ink the pixel above 0.5 (or tie with equal ink).
        ``labels`` int64 ``[B, 2]``; ``indices`` int64 ``[B, 2]``; ``positions`` int64 ``[B, 2, T, 2]``
        (digit, tick, top-left y/x).
    """
    indices, ys, xs = draw_paths(rng, len(digits), batch_size, choice, n_frames)
    size = (FRAME_SIZE, FRAME_SIZE)
    one = paste(digits[indices[:, 0]][:, None], ys[:, 0], xs[:, 0], size)  # uint8 [B, T, 64, 64]
    two = paste(digits[indices[:, 1]][:, None], ys[:, 1], xs[:, 1], size)
    return {
        "frames": INK[np.maximum(one, two)],  # k / 255 exactly, as in the other environments
        "groups": label_groups(one, two, np.empty(one.shape, np.int8)),
        "labels": np.asarray(labels)[indices].astype(np.int64),
        "indices": indices,
        "positions": np.stack([ys, xs], axis=-1),
    }


def episode_source(split: str = "train", data_dir: str | os.PathLike | None = None) -> EpisodeSource:
    """The :class:`~rladder_stream.envs.base.EpisodeSource` the environment plays (training uses it too): the generator
    bound to the split's digits; ``episodes(rng, n, indices)`` returns a batch of sequences."""
    pool = mnist_pool(split, data_dir, env_name=ENV_ID)
    generate = functools.partial(generate_moving_batch, digits=pool.images, labels=pool.labels)
    return EpisodeSource(generate, len(pool.labels), split, ENV_ID, pool.source)


class MovingMNISTEnv(PredictionEnv):
    """
    ## Description
    Two 28x28 MNIST digits move in a 64x64 frame, each with its own constant speed (2-5 px/frame) and
    direction, bouncing off the edges; where they overlap the brighter ink wins (max). The task is to
    forecast the next frame; ``info["groups"]`` gives the per-pixel segmentation the RTagger is scored on
    (AMI over non-background, non-ignored pixels; docs/design.md#moving-mnist).

    ## Action Space
    ``Box(0, 1, (64, 64), float32)``: the probability of ink at every pixel of the NEXT observation. A dict
    ``{"forecast": ..., "class_probs": ...}`` (what ``StepOutput.action()`` returns for a classifying model)
    is accepted too; the class beliefs are ignored (there is no classification task here). Malformed actions
    raise ``ValueError`` and leave the episode where it was.

    ## Observation Space
    ``Box(0, 1, (64, 64), float32)``: the current frame, 1 = ink.

    ## Rewards
    The Bernoulli log-likelihood of the next frame under the forecast, summed over pixels, forecast clipped
    to [1e-6, 1 - 1e-6] (:func:`~rladder_stream.envs.scoring.bernoulli_log_likelihood`).

    ## Starting State
    Two digits of the split (train: random; valid/test: episode i's first digit is digit i, the second digit
    and the motion come from a seed derived from (split, i)); uniform start positions, directions and speeds.

    ## Episode End
    ``reset`` returns frame 1; the 19th step returns frame 20 with ``terminated=True``. Never truncated.

    ## Arguments
    - ``split``: ``"train"`` / ``"valid"`` / ``"test"`` as in :class:`rladder_stream.envs.occluded_mnist.OccludedMovingMNISTEnv`
      (train: MNIST train 0-49,999; valid: 50,000-59,999; test: MNIST test; fixed episodes on valid/test,
      ``reset(options={"index": i})``, a seeded reset restarts the walk at 0).
    - ``data_dir``: folder with ``mnist/`` (default: ``$RLADDER_STREAM_DATA``, the cache, else embedded).
    - ``render_mode``: ``None`` or ``"rgb_array"``.

    ## Info
    Every tick: ``"t"`` (index of the returned frame, 0 at reset), ``"groups"`` (int8 ``(64, 64)``: 0
    background, 1 first digit, 2 second digit, -1 ignore where both digits have ink > 0.5), ``"labels"``
    (int64 ``(2,)``, the two digits' classes: revealed every tick since nothing is classified).

    ## Batched generator
    :func:`generate_moving_batch` (also used by training); vectorised: :class:`MovingMNISTVectorEnv`.

    ## Version History
    - v0: first version.
    """

    frame_shape = (FRAME_SIZE, FRAME_SIZE)
    classify = False
    tick_info = {"groups": "groups"}
    static_info = {"labels": "labels"}
    ami_ignore = AMI_IGNORE

    def __init__(
        self, split: str = "train", data_dir: str | os.PathLike | None = None, render_mode: str | None = None
    ) -> None:
        super().__init__(episode_source(split, data_dir), render_mode)


class MovingMNISTVectorEnv(PredictionVectorEnv):
    """``num_envs`` Moving MNIST episodes at once, from :func:`generate_moving_batch` with a batch of
    ``num_envs``; same arguments and contract as :class:`MovingMNISTEnv`, batched, with Gymnasium's
    next-step autoreset (see :class:`~rladder_stream.envs.base.PredictionVectorEnv`)."""

    frame_shape = MovingMNISTEnv.frame_shape
    classify = MovingMNISTEnv.classify
    tick_info = MovingMNISTEnv.tick_info
    static_info = MovingMNISTEnv.static_info
    ami_ignore = MovingMNISTEnv.ami_ignore

    def __init__(
        self,
        num_envs: int = 1,
        split: str = "train",
        data_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(episode_source(split, data_dir), num_envs, render_mode)
