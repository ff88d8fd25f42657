"""Shapes (the reference Tagger's easiest grouping task): three binary shapes on a 20x20 image."""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np

from .base import EpisodeSource, PredictionEnv, PredictionVectorEnv
from .drawing import paste
from .randomness import BatchRandom
from .splits import SPLITS
from .textured_mnist import N_ITERATIONS

ENV_ID = "rladder_stream/Shapes-v0"
IMAGE_SIZE = 20
N_SHAPES = 3  # shapes per image, drawn with replacement from the templates
SPLIT_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}  # the reference's sizes
AMI_IGNORE = (-1, 0)  # AMI over the shapes' pixels only (the background and overlaps left out)


def _template(art: str) -> np.ndarray:
    """A uint8 template from rows of ``#`` (ink) and ``.`` (none)."""
    rows = art.split()
    return np.array([[c == "#" for c in row] for row in rows], dtype=np.uint8)


SQUARE = _template("""
    #######
    #######
    ##...##
    ##...##
    ##...##
    #######
    #######
""")  # a 7x7 outline, 2 px thick, with a 3x3 hole: 40 px
TRIANGLE_UP = _template("""
    .....##.....
    ....####....
    ...######...
    ..###..###..
    .###....###.
    ############
    ############
""")  # 12 wide, 7 high, an outline whose two bottom rows are solid: 48 px
TRIANGLE_DOWN = TRIANGLE_UP[::-1].copy()
TEMPLATES = (SQUARE, TRIANGLE_UP, TRIANGLE_DOWN)
TEMPLATE_NAMES = ("square", "triangle up", "triangle down")
SHAPE_HEIGHT = 7  # every template's height
_WIDTHS = np.array([t.shape[1] for t in TEMPLATES])
_MAX_WIDTH = int(_WIDTHS.max())
_PLACES = IMAGE_SIZE - _WIDTHS + 1  # top-left columns where each template fits whole
_COLUMN_DRAWS = math.lcm(*_PLACES.tolist())
# Every template padded on the right to the widest; drawn on a canvas that wide past the image, then cropped.
_PADDED = np.stack([np.pad(t, ((0, 0), (0, _MAX_WIDTH - t.shape[1]))) for t in TEMPLATES])


def generate_shapes_batch(
    rng: np.random.Generator | Sequence[np.random.Generator],
    batch_size: int,
    *,
    choice: np.ndarray | None = None,
    n_ticks: int = N_ITERATIONS + 1,
) -> dict[str, np.ndarray]:
    """Draw ``batch_size`` Shapes images (the environment and training both use this).

    Each image holds ``N_SHAPES`` shapes, each a uniform draw of the three templates (with replacement) at a
    uniform whole-pixel position where it fits whole. A pixel is 1 where any shape has ink. Shape k (0, 1, 2)
    is group k + 1; pixels inked by more than one shape are ink but in no group (-1).

    Args:
        rng: all randomness (templates, then rows, then columns of the top-left corners); or one generator
            per row (see :class:`~rladder_stream.envs.randomness.BatchRandom`).
        choice: optional ``[batch_size]`` episode numbers, returned as ``indices``; they choose nothing
            (every image comes from ``rng``).
        n_ticks: length of ``frames`` (the image repeated: ``N_ITERATIONS`` observations + the target).

    Returns (``B = batch_size``):
        ``image`` float32 ``[B, 20, 20]`` in {0, 1}; ``frames`` float32 ``[B, n_ticks, 20, 20]`` (the image
        repeated); ``groups`` int8 ``[B, 20, 20]`` (0 background, k + 1 shape k alone, -1 overlap);
        ``shapes`` int64 ``[B, 3]`` (each shape's template: 0 square, 1 triangle up, 2 triangle down);
        ``positions`` int64 ``[B, 3, 2]`` (each shape's top-left y, x); ``indices`` int64 ``[B]`` (``choice``,
        or -1).
    """
    draw = BatchRandom(rng, batch_size)
    shapes = draw.integers(0, len(TEMPLATES), (N_SHAPES,))
    ys = draw.integers(0, IMAGE_SIZE - SHAPE_HEIGHT + 1, (N_SHAPES,))
    # Columns: exactly uniform over each template's own places (their count divides _COLUMN_DRAWS).
    xs = draw.integers(0, _COLUMN_DRAWS, (N_SHAPES,)) % _PLACES[shapes]

    canvas = (IMAGE_SIZE, IMAGE_SIZE + _MAX_WIDTH - int(_WIDTHS.min()))  # room for the padding of a shape at the edge
    layers = paste(_PADDED[shapes], ys, xs, canvas)[..., :IMAGE_SIZE]  # uint8 [B, 3, 20, 20]
    count = layers.sum(axis=1)
    groups = (np.argmax(layers, axis=1) + 1).astype(np.int8)
    groups[count == 0] = 0
    groups[count > 1] = -1
    image = (count > 0).astype(np.float32)
    indices = np.full(batch_size, -1, np.int64) if choice is None else np.asarray(choice, dtype=np.int64)
    return {
        "image": image,
        "frames": np.repeat(image[:, None], n_ticks, axis=1),
        "groups": groups,
        "shapes": shapes.astype(np.int64),
        "positions": np.stack([ys, xs], axis=-1).astype(np.int64),
        "indices": indices,
    }


def episode_source(split: str = "train", n_iterations: int = N_ITERATIONS) -> EpisodeSource:
    """The :class:`~rladder_stream.envs.base.EpisodeSource` the environment plays (training uses it too): the generator
    with the split's size (50,000 / 10,000 / 10,000); ``episodes(rng, n, indices)`` returns a batch. No data
    files: every image is drawn, valid/test episode i from a seed derived from (split, i)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n_iterations < 1:
        raise ValueError(f"n_iterations must be >= 1, got {n_iterations}")
    generate = functools.partial(generate_shapes_batch, n_ticks=n_iterations + 1)
    return EpisodeSource(generate, SPLIT_SIZES[split], split, ENV_ID, "Shapes (generated: 3 shapes on 20x20)")


class ShapesEnv(PredictionEnv):
    """
    ## Description
    Three binary shapes on a 20x20 image, each a 7x7 square outline, a triangle pointing up or one pointing
    down (12 wide, 7 high), drawn with replacement and placed anywhere they fit whole; they may overlap. All
    shapes have the same intensity, so only their form tells them apart: the reference Tagger's easiest
    grouping task. The same image is offered for ``n_iterations`` ticks, the RTagger's inference
    iterations: since the next observation equals the current one, each forecast is a reconstruction of
    the image. The grouping is scored against ``info["groups"]`` (AMI over the shapes' pixels; the
    background and overlaps are left out: ``ami_ignore = (-1, 0)``).

    ## Action Space
    ``Box(0, 1, (20, 20), float32)``: the probability of ink at every pixel of the next observation. A dict
    ``{"forecast": ..., "class_probs": ...}`` is accepted too; the class beliefs are ignored (there is no
    class task). Malformed actions raise ``ValueError`` and change nothing.

    ## Observation Space
    ``Box(0, 1, (20, 20), float32)``: the image, 1 = ink, 0 elsewhere.

    ## Rewards
    Bernoulli log-likelihood of the next observation (the same image) under the forecast, summed over
    pixels, forecast clipped to [1e-6, 1 - 1e-6].

    ## Starting State
    Three templates drawn uniformly, each at a uniform top-left corner where it fits whole: on train fresh
    draws from the environment's generator; on valid/test episode i fixed by a seed derived from (split, i).

    ## Episode End
    ``reset`` returns the image; step k returns it again; step ``n_iterations`` ends the episode
    (``terminated=True``). Never truncated.

    ## Arguments
    - ``split``: ``"train"`` (50,000 episodes an epoch, each a fresh draw) / ``"valid"`` (10,000 fixed) /
      ``"test"`` (10,000 fixed); on valid/test ``reset(options={"index": i})`` plays episode i, and without
      an index the episodes 0, 1, 2 ... in turn (a seeded reset restarts at 0). On train an index is
      accepted and draws a fresh image like any other reset.
    - ``n_iterations``: ticks per image (default 3).
    - ``render_mode``: ``None`` or ``"rgb_array"``.

    ## Info
    Every tick: ``"t"``, ``"groups"`` (int8 ``(20, 20)``: 0 background, k + 1 for pixels of shape k alone,
    -1 where shapes overlap), ``"shapes"`` (int64 ``(3,)``: shape k's template, 0 square, 1 triangle up,
    2 triangle down).

    ## Batched generator
    :func:`generate_shapes_batch` (also used by training); vectorised: :class:`ShapesVectorEnv`.

    ## Version History
    - v0: first version.
    """

    frame_shape = (IMAGE_SIZE, IMAGE_SIZE)
    classify = False
    static_info = {"groups": "groups", "shapes": "shapes"}
    ami_ignore = AMI_IGNORE

    def __init__(self, split: str = "train", n_iterations: int = N_ITERATIONS, render_mode: str | None = None) -> None:
        super().__init__(episode_source(split, n_iterations), render_mode)


class ShapesVectorEnv(PredictionVectorEnv):
    """``num_envs`` Shapes episodes at once, from :func:`generate_shapes_batch` with a batch of ``num_envs``;
    same arguments and contract as :class:`ShapesEnv`, batched, with Gymnasium's next-step autoreset (see
    :class:`~rladder_stream.envs.base.PredictionVectorEnv`)."""

    frame_shape = ShapesEnv.frame_shape
    classify = ShapesEnv.classify
    static_info = ShapesEnv.static_info
    ami_ignore = ShapesEnv.ami_ignore

    def __init__(
        self, num_envs: int = 1, split: str = "train", n_iterations: int = N_ITERATIONS, render_mode: str | None = None
    ) -> None:
        super().__init__(episode_source(split, n_iterations), num_envs, render_mode)
