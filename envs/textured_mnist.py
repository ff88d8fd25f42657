"""Brodatz-textured MNIST (docs/design.md#brodatz-textured-mnist): a thickened digit cut out of one texture, pasted on another."""

from __future__ import annotations

import functools
import numbers
import os
from typing import Any, NamedTuple, Sequence

import numpy as np

from .base import EpisodeSource, PredictionEnv, PredictionVectorEnv
from .drawing import INK, paste
from .randomness import BatchRandom
from .splits import mnist_pool
from .data.brodatz import load_brodatz, load_brodatz_scans

ENV_ID = "rladder_stream/TexturedMNIST-v0"
IMAGE_SIZE = 32
DIGIT_SIZE = 28
N_ITERATIONS = 3  # ticks the same image is shown (the RTagger's inference iterations)
ROTATION_RANGE = (0.0, 2.0 * np.pi)
SCALE_RANGE = (0.7, 1.4)
MASK_LOW, MASK_HIGH = 0.1, 0.9  # groups: background below, digit above, ignored between
SEMI_SUPERVISED_END = 50_000  # docs/design.md#brodatz-textured-mnist: 1,000 labelled + 49,000 unlabelled
TEXTURE_KINDS = ("brodatz", "brodatz-scans", "sinusoid", "freq20", "flat")  # the plates a batch is cut from (the setting ``textures``)
# The sinusoid plates (the positive control, docs/design.md#brodatz-textured-mnist): as many as the Brodatz plates,
# of their size in the full data, each one plane wave whose std is the Brodatz plates' median (0.245; they range
# 0.122-0.283), so only the pattern differs from the Brodatz data's, not the grey levels' spread.
SINUSOID_PLATES = 20
SINUSOID_SIZE = 300
SINUSOID_STD = 0.245
SINUSOID_PERIODS = (4.0, 16.0)  # pixels per cycle of the shortest and the longest wave, geometrically spaced
SINUSOID_SEED = 27  # the waves' directions and phases
# The Tagger authors' own plates (their Freq20 textured MNIST, docs/design.md#brodatz-textured-mnist): 20 plane waves
# cos(2 pi (a y + b x) / 38 + phase) periodic on a 38-pixel grid, each min-max scaled to [0, 1]; the row frequencies a
# are FREQ20_ROWS, the column frequencies b FREQ20_COLUMNS shifted by a's index, so the periods are 1.7-9.5 pixels.
FREQ20_GRID = 38
FREQ20_ROWS = (4, 10, 21, 32, 37)
FREQ20_COLUMNS = (0, 4, 8, 12)
# The flat plates (the Gaussian Tagger's control, docs/design.md#brodatz-textured-mnist): 20 uniform greys, so digit
# and background differ in grey level alone (at least FLAT_GREYS' step apart), the cue a Gaussian mixture groups by.
FLAT_GREYS = (0.2, 0.8)  # the darkest and the lightest plate, the others evenly between


def thicken(digits: np.ndarray) -> np.ndarray:
    """3x3 grey dilation of each digit in ``[B, 28, 28]``: the max over each pixel's 3x3 neighbourhood, zero
    outside the image (SciPy's ``grey_dilation(size=(1, 3, 3), mode="constant")``, which a test compares)."""
    height, width = digits.shape[-2:]
    padded = np.pad(digits, ((0, 0), (1, 1), (1, 1)))
    return np.max([padded[:, dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)], axis=0)


# A crop's pixel centres about its centre, in crop pixels (float64; the training's renderer uses them too).
CROP_GRID = np.arange(IMAGE_SIZE, dtype=np.float64) - (IMAGE_SIZE - 1) / 2.0


class TextureDraws(NamedTuple):
    """The random part of a batch of textured digits (:func:`draw_textured`), ``B`` rows."""

    choice: np.ndarray  # int64 [B]: rows of the digits
    offsets: np.ndarray  # int64 [B, 2]: the digit's top-left y, x
    which: np.ndarray  # int64 [B, 2]: digit and background texture rows
    centre: np.ndarray  # float64 [B, 2, 2]: per texture, the crop's centre y, x
    angle: np.ndarray  # float64 [B, 2]: per texture, the crop's rotation (radians)
    scale: np.ndarray  # float64 [B, 2]: per texture, the crop's magnification


def crop_margin(scale: Any) -> Any:
    """How far from a plate's edge the centre of a crop at magnification ``scale`` must stay for every angle: the
    rotated crop's reach, plus one pixel for the bilinear sampling."""
    return (IMAGE_SIZE / 2) * np.sqrt(2.0) / scale + 1.0


def check_texture_scale(texture_scale: float, texture_size: int) -> None:
    """``ValueError`` unless ``texture_scale`` is a positive number at which every crop, the training's most shrunk
    one at any angle included, fits inside a plate of ``texture_size`` pixels."""
    if isinstance(texture_scale, bool) or not isinstance(texture_scale, numbers.Real) or not 0 < texture_scale < np.inf:
        raise ValueError(f"texture_scale must be a positive number, got {texture_scale!r}")
    smallest = SCALE_RANGE[0] * texture_scale
    if 2 * crop_margin(smallest) > texture_size - 1:
        raise ValueError(f"texture_scale={texture_scale}: a training crop at magnification {smallest:g} reaches across "
                         f"{2 * crop_margin(smallest):.0f} texture pixels, more than the {texture_size}-pixel plates hold")


def draw_textured(
    rng: np.random.Generator | Sequence[np.random.Generator],
    n_digits: int,
    n_textures: int,
    texture_size: int,
    batch_size: int,
    choice: np.ndarray | None = None,
    augment: bool = True,
    texture_scale: float = 1.0,
) -> TextureDraws:
    """The random part of :func:`generate_textured_batch` (digits unless ``choice`` is given, offsets,
    textures, then crop parameters; every crop magnified by ``texture_scale`` more). The training's on-device
    renderer starts from this too, so it sees the same draws."""
    if n_textures < 2:
        raise ValueError("need at least two textures")
    draw = BatchRandom(rng, batch_size)
    choice = draw.integers(0, n_digits) if choice is None else np.asarray(choice, dtype=np.int64)
    offsets = draw.integers(0, IMAGE_SIZE - DIGIT_SIZE + 1, (2,))
    digit_texture = draw.integers(0, n_textures)
    background_texture = (digit_texture + draw.integers(1, n_textures)) % n_textures
    which = np.stack([digit_texture, background_texture], axis=1)  # [B, 2]
    if augment:
        angle = draw.uniform(*ROTATION_RANGE, (2,))
        scale = draw.uniform(*SCALE_RANGE, (2,)) * texture_scale
        margin = crop_margin(scale)
        centre = margin[..., None] + draw.uniform(0.0, 1.0, (2, 2)) * (texture_size - 1 - 2 * margin[..., None])
    else:  # axis-aligned, the first sample point on a whole pixel (at scale 1 every one: exact copies)
        angle, scale = np.zeros((batch_size, 2)), np.full((batch_size, 2), float(texture_scale))
        reach = (IMAGE_SIZE - 1) / texture_scale  # texture pixels from the first sample point to the last
        corner = draw.integers(0, int(np.floor(texture_size - 1 - reach)) + 1, (2, 2))
        centre = corner + reach / 2.0
    return TextureDraws(choice, offsets.astype(np.int64), which, centre, angle, scale)


def crop_axes(angle: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(cos, sin)`` of each crop's ``angle`` over its ``scale``: one crop pixel's step in the texture. The
    training's renderer takes these numpy values too (another library's cos and sin may differ in the last
    bit, and move a sample point)."""
    return np.cos(angle) / scale, np.sin(angle) / scale


def crop_textures(
    textures: np.ndarray, which: np.ndarray, centre: np.ndarray, angle: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Bilinear ``32x32`` crops ``[B, 32, 32]`` of ``textures[which]`` around ``centre`` ``[B, 2]`` (y, x),
    rotated by ``angle`` (radians) and magnified by ``scale`` (``> 1`` shows a smaller texture area larger).

    With ``angle = 0``, ``scale = 1`` and ``centre = corner + 15.5`` the sample points are whole pixels, so
    the crop is an exact copy of the texture.
    """
    size = textures.shape[-1]
    dy, dx = CROP_GRID[None, :, None], CROP_GRID[None, None, :]
    cos, sin = (c[:, None, None] for c in crop_axes(angle, scale))
    y = centre[:, 0, None, None] + cos * dy - sin * dx
    x = centre[:, 1, None, None] + sin * dy + cos * dx
    y0 = np.clip(np.floor(y).astype(np.int64), 0, size - 1)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, size - 1)
    wy, wx = (y - y0).astype(np.float32), (x - x0).astype(np.float32)
    y1, x1 = np.minimum(y0 + 1, size - 1), np.minimum(x0 + 1, size - 1)
    k = which[:, None, None]
    top = textures[k, y0, x0] * (1 - wx) + textures[k, y0, x1] * wx
    bottom = textures[k, y1, x0] * (1 - wx) + textures[k, y1, x1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def compose(mask: Any, digit: Any, background: Any) -> Any:
    """The image ``m * T_digit + (1 - m) * T_background`` in [0, 1]: numpy arrays or torch tensors alike (the
    generator's, written once for the training's renderer too)."""
    return (mask * digit + (1 - mask) * background).clip(0.0, 1.0)


def label_groups(mask: Any, groups: Any) -> Any:
    """Fill and return ``groups`` (int8, the mask's shape): 0 background where ``m < MASK_LOW``, 1 digit where
    ``m > MASK_HIGH``, -1 ignored between. Numpy arrays or torch tensors alike."""
    groups[...] = -1
    groups[mask < MASK_LOW] = 0
    groups[mask > MASK_HIGH] = 1
    return groups


def generate_textured_batch(
    rng: np.random.Generator | Sequence[np.random.Generator],
    digits: np.ndarray,
    labels: np.ndarray,
    textures: np.ndarray,
    batch_size: int,
    *,
    choice: np.ndarray | None = None,
    augment: bool = True,
    n_ticks: int = N_ITERATIONS + 1,
    texture_scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """Draw ``batch_size`` textured digits (the environment and training both use this).

    The digit is thickened (3x3 grey dilation) and placed at a uniform offset in [0, 4]^2; its ink / 255 is
    the soft mask ``m``; ``image = m * T_digit + (1 - m) * T_background`` with two different textures drawn
    uniformly. With ``augment`` (training) each crop has a uniform rotation in [0, 360) degrees, a uniform
    magnification in [0.7, 1.4] times ``texture_scale`` and a uniform continuous centre; without, crops are
    axis-aligned, magnified by ``texture_scale``, from a uniform whole-pixel position (at ``texture_scale`` 1
    exact copies of the plate). The caller checks that the crops fit the plates (:func:`check_texture_scale`).

    Args:
        rng: all randomness (:func:`draw_textured`: digits if ``choice`` is None, offsets, textures, then crop
            parameters); or one generator per row (see :class:`~rladder_stream.envs.randomness.BatchRandom`).
        digits: uint8 ``[N, 28, 28]``; ``labels``: ``[N]`` (-1 = unlabelled); ``textures``: float32
            ``[K, S, S]`` in [0, 1], K >= 2 (S >= 96 leaves room for rotated, shrunk crops).
        choice: optional ``[batch_size]`` rows of ``digits``.
        n_ticks: length of ``frames`` (the image repeated: ``N_ITERATIONS`` observations + the target).
        texture_scale: every crop's magnification multiplied by this (> 1: coarser texture at pixel scale).

    Returns (``B = batch_size``):
        ``image`` float32 ``[B, 32, 32]``; ``frames`` float32 ``[B, n_ticks, 32, 32]`` (the image repeated);
        ``mask`` float32 ``[B, 32, 32]``; ``groups`` int8 ``[B, 32, 32]`` (0: m < 0.1, 1: m > 0.9, -1 else);
        ``labels`` int64 ``[B]``; ``indices`` int64 ``[B]``; ``textures`` int64 ``[B, 2]`` (digit,
        background texture rows); ``offsets`` int64 ``[B, 2]`` (digit top-left y, x); ``crop_params``
        float64 ``[B, 2, 4]`` (per texture: centre y, centre x, angle, scale; see :func:`crop_textures`).
    """
    d = draw_textured(rng, len(digits), len(textures), textures.shape[-1], batch_size, choice, augment, texture_scale)
    crops = crop_textures(
        textures, d.which.reshape(-1), d.centre.reshape(-1, 2), d.angle.reshape(-1), d.scale.reshape(-1)
    ).reshape(batch_size, 2, IMAGE_SIZE, IMAGE_SIZE)
    mask = INK[paste(thicken(digits[d.choice]), d.offsets[:, 0], d.offsets[:, 1], (IMAGE_SIZE, IMAGE_SIZE))]
    image = compose(mask, crops[:, 0], crops[:, 1])
    return {
        "image": image,
        "frames": np.repeat(image[:, None], n_ticks, axis=1),
        "mask": mask,
        "groups": label_groups(mask, np.empty(mask.shape, np.int8)),
        "labels": np.asarray(labels)[d.choice].astype(np.int64),
        "indices": d.choice,
        "textures": d.which,
        "offsets": d.offsets,
        "crop_params": np.concatenate([d.centre, d.angle[..., None], d.scale[..., None]], axis=-1),
    }


def weaken_textures(textures: np.ndarray, contrast: float) -> np.ndarray:
    """Each plate's deviations from its own mean grey scaled by ``contrast``: 1 gives the plates, 0 flat plates at
    their mean grey (what a grouping model can tell apart without modelling texture)."""
    if not 0.0 <= contrast <= 1.0:
        raise ValueError(f"texture contrast must be in [0, 1], got {contrast}")
    mean = textures.mean(axis=(1, 2), keepdims=True)
    return (mean + contrast * (textures - mean)).astype(np.float32)


def sinusoid_plates(n: int = SINUSOID_PLATES, size: int = SINUSOID_SIZE) -> np.ndarray:
    """The sinusoid plates, float32 ``[n, size, size]`` (read-only): plate ``i`` is the plane wave
    ``0.5 + a * sin(2 pi (fy * y + fx * x) + phase)`` of period ``p_i`` pixels (``SINUSOID_PERIODS``, geometrically
    spaced), direction ``theta_i`` uniform in [0, 180) degrees (``fy, fx = sin, cos theta_i / p_i``) and phase
    uniform, both from the fixed ``SINUSOID_SEED``; ``a = sqrt(2) * SINUSOID_STD`` (a sine's std is a / sqrt 2).
    The textures of the Tagger authors' textured MNIST, where telling the groups apart is easy: a positive control."""
    rng = np.random.default_rng(SINUSOID_SEED)
    period = np.geomspace(*SINUSOID_PERIODS, n)
    theta, phase = rng.uniform(0.0, np.pi, n), rng.uniform(0.0, 2.0 * np.pi, n)
    fy, fx = (np.sin(theta) / period)[:, None, None], (np.cos(theta) / period)[:, None, None]
    y, x = np.arange(size, dtype=np.float64)[:, None], np.arange(size, dtype=np.float64)[None, :]
    plates = (0.5 + np.sqrt(2.0) * SINUSOID_STD * np.sin(2.0 * np.pi * (fy * y + fx * x) + phase[:, None, None]))
    plates = plates.astype(np.float32)
    plates.setflags(write=False)
    return plates


def freq20_frequencies() -> np.ndarray:
    """int64 ``[20, 2]``: each Freq20 plate's wave numbers ``(a, b)`` on the :data:`FREQ20_GRID` (cycles per grid)."""
    return np.array([(a, b + i) for i, a in enumerate(FREQ20_ROWS) for b in FREQ20_COLUMNS], dtype=np.int64)


def freq20_plates(size: int = SINUSOID_SIZE) -> np.ndarray:
    """The Freq20 plates, float32 ``[20, size, size]`` (read-only): plate ``i`` is
    ``cos(2 pi (a_i y + b_i x) / 38 + phase_i)`` (:func:`freq20_frequencies`), min-max scaled to [0, 1] over one
    38x38 period (std about 0.35), with phases from the fixed ``SINUSOID_SEED`` (not the authors' draws). Periodic
    in 38 pixels, so any whole-pixel crop is a crop of the 38x38 texture tiled, as in the Tagger authors' data; with
    ``texture_augment=false`` training crops are whole-pixel and unrotated too, their recipe."""
    waves = freq20_frequencies().astype(np.float64)
    phase = np.random.default_rng(SINUSOID_SEED).uniform(0.0, 2.0 * np.pi, len(waves))
    y, x = np.arange(size, dtype=np.float64)[:, None], np.arange(size, dtype=np.float64)[None, :]
    angle = 2.0 * np.pi * (waves[:, 0, None, None] * y + waves[:, 1, None, None] * x) / FREQ20_GRID
    plates = np.cos(angle + phase[:, None, None])
    period = plates[:, :FREQ20_GRID, :FREQ20_GRID]  # one period holds every value the plate takes
    low, high = period.min(axis=(1, 2), keepdims=True), period.max(axis=(1, 2), keepdims=True)
    plates = ((plates - low) / (high - low)).clip(0.0, 1.0).astype(np.float32)
    plates.setflags(write=False)
    return plates


def flat_plates(n: int = SINUSOID_PLATES, size: int = SINUSOID_SIZE) -> np.ndarray:
    """The flat plates, float32 ``[n, size, size]`` (read-only): plate ``i`` is the uniform grey ``g_i``, evenly
    spaced over :data:`FLAT_GREYS`. No texture at all: digit and background differ only in grey level, which a
    Gaussian Tagger must be able to group by (the control for the grey-level code path, as Shapes is for the binary)."""
    plates = np.broadcast_to(np.linspace(*FLAT_GREYS, n, dtype=np.float32)[:, None, None], (n, size, size)).copy()
    plates.setflags(write=False)
    return plates


def load_plates(textures: str = "brodatz", data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """``(plates float32 [K, S, S], where they come from)`` for the setting ``textures`` (:data:`TEXTURE_KINDS`):
    the Brodatz plates of the data folder (:func:`~rladder_stream.envs.data.brodatz.load_brodatz`), the Brodatz
    scans at their own grey levels (:func:`~rladder_stream.envs.data.brodatz.load_brodatz_scans`), or the
    sinusoid, Freq20 or flat ones (:func:`sinusoid_plates`, :func:`freq20_plates`, :func:`flat_plates`, which need
    no data)."""
    if textures not in TEXTURE_KINDS:
        raise ValueError(f"textures must be one of {TEXTURE_KINDS}, got {textures!r}")
    if textures == "sinusoid":
        return sinusoid_plates(), f"{SINUSOID_PLATES} sinusoid plates"
    if textures == "freq20":
        return freq20_plates(), f"{len(freq20_frequencies())} Freq20 plane-wave plates"
    if textures == "flat":
        return flat_plates(), f"{SINUSOID_PLATES} flat grey plates"
    if textures == "brodatz-scans":
        plates = load_brodatz_scans(data_dir)
        return plates.textures, f"{plates.source} ({len(plates.names)} scans at their own grey levels)"
    plates = load_brodatz(data_dir=data_dir)
    return plates.textures, plates.source


def episode_source(
    split: str = "train",
    labelled: int | None = None,
    data_dir: str | os.PathLike | None = None,
    n_iterations: int = N_ITERATIONS,
    texture_contrast: float = 1.0,
    texture_scale: float = 1.0,
    textures: str = "brodatz",
    texture_augment: bool = True,
) -> EpisodeSource:
    """The :class:`~rladder_stream.envs.base.EpisodeSource` the environment plays (training uses it too): the generator
    bound to the split's digits and the plates ``textures`` (:func:`load_plates`; train crops augmented unless
    ``texture_augment`` is false, valid/test never; ``texture_contrast`` < 1 weakens every plate towards its mean
    grey, :func:`weaken_textures`; ``texture_scale`` magnifies every crop, :func:`generate_textured_batch`);
    ``episodes(rng, n, indices)`` returns a batch of sequences."""
    if n_iterations < 1:
        raise ValueError(f"n_iterations must be >= 1, got {n_iterations}")
    plates, described = load_plates(textures, data_dir)
    check_texture_scale(texture_scale, plates.shape[-1])
    if texture_contrast != 1.0:
        plates, described = weaken_textures(plates, texture_contrast), f"{described}, contrast {texture_contrast}"
    if texture_scale != 1.0:
        described = f"{described}, scale {texture_scale:g}"
    augment = split == "train" and texture_augment
    if split == "train" and not augment:
        described = f"{described}, training crops not augmented"
    pool = mnist_pool(split, data_dir, env_name=ENV_ID, labelled=labelled, semi_supervised_end=SEMI_SUPERVISED_END)
    generate = functools.partial(
        generate_textured_batch,
        digits=pool.images,
        labels=pool.labels,
        textures=plates,
        augment=augment,
        n_ticks=n_iterations + 1,
        texture_scale=texture_scale,
    )
    return EpisodeSource(generate, len(pool.labels), split, ENV_ID, f"{pool.source}; textures: {described}")


class TexturedMNISTEnv(PredictionEnv):
    """
    ## Description
    A thickened MNIST digit cut out of one Brodatz texture and pasted on another (both crops of mean
    intensity about 0.5), so only texture tells digit from background. With ``textures="sinusoid"`` the 20
    plates are plane waves instead (the positive control of docs/design.md#brodatz-textured-mnist). The same 32x32 image is offered for
    ``n_iterations`` ticks, the RTagger's inference iterations: since the next observation equals the
    current one, each forecast is a reconstruction of the image. The RTagger's grouping is scored against
    ``info["groups"]`` (AMI), its class beliefs after the last iteration (docs/design.md#brodatz-textured-mnist).

    ## Action Space
    ``Dict({"forecast": Box(0, 1, (32, 32), float32), "class_probs": Box(0, 1, (10,), float32)})``; a bare
    ``(32, 32)`` forecast array is accepted too. Malformed actions raise ``ValueError`` and change nothing.
    The forecast of a grey-level image is scored as a soft Bernoulli target, as for the other environments.

    ## Observation Space
    ``Box(0, 1, (32, 32), float32)``: the image (grey levels).

    ## Rewards
    Bernoulli log-likelihood of the next observation (the same image) under the forecast, summed over
    pixels, forecast clipped to [1e-6, 1 - 1e-6].

    ## Starting State
    A digit of the split at a uniform offset in [0, 4]^2, two different textures drawn uniformly from the
    plates, and crops of them: on train rotated (0-360 degrees) and magnified (0.7-1.4, times ``texture_scale``)
    at random; on valid/test axis-aligned and magnified by ``texture_scale``, and episode i fixed by a seed
    derived from (split, i).

    ## Episode End
    ``reset`` returns the image; step k returns it again; step ``n_iterations`` ends the episode
    (``terminated=True``) and its class beliefs are scored. Never truncated.

    ## Arguments
    - ``split``: ``"train"`` (MNIST train 0-49,999) / ``"valid"`` (50,000-59,999) / ``"test"`` (MNIST test);
      fixed episodes, ``reset(options={"index": i})`` and the walk as in
      :class:`rladder_stream.envs.occluded_mnist.OccludedMovingMNISTEnv`.
    - ``labelled``: semi-supervised training: the number of labelled digits (the paper's: 1000) among MNIST train
      0-49,999, class-balanced and fixed by a seed; the others are unlabelled.
    - ``n_iterations``: ticks per image (default 3).
    - ``data_dir``: folder with ``mnist/`` and ``brodatz/schlossvrl_300px/`` (the 20 plates of
    docs/design.md#brodatz-textured-mnist);
      default ``$RLADDER_STREAM_DATA``, the cache, else the embedded subset (4 plates, 128x128 crops).
    - ``render_mode``: ``None`` or ``"rgb_array"``.
    - ``texture_contrast``: each plate's deviations from its mean grey scaled by this (default 1; 0: flat plates),
      as the training setting of the same name.
    - ``texture_scale``: every crop's magnification multiplied by this (default 1; 2: each texture pixel spans
      about 2 image pixels, a coarser pattern), as the training setting of the same name. Crops must fit inside
      the plates: a ``ValueError`` says when the smallest training magnification (0.7 times this) does not.
    - ``textures``: ``"brodatz"`` (default), ``"brodatz-scans"``, ``"sinusoid"``, ``"freq20"`` or ``"flat"``.
      ``"brodatz-scans"``: the 14 whole-plate scans of the data folder (D1-D12, D73, D75) at their own mean
      greys (0.21-0.76; the default plates are each normalised to 0.5), area-averaged to 300x300. ``"sinusoid"``: 20 plane-wave plates of 300x300 pixels,
      ``0.5 + a sin(2 pi (fy y + fx x) + phase)`` with periods 4 to 16 pixels (geometrically spaced), directions
      and phases from a fixed seed, std 0.245 (the Brodatz plates' median), cropped as the Brodatz plates are;
      they need no data files. ``"freq20"``: the Tagger authors' own 20 plane waves (periodic on a 38-pixel grid,
      periods 1.7-9.5 pixels, min-max scaled to [0, 1]; :func:`freq20_plates`). ``"flat"``: 20 uniform greys from
      0.2 to 0.8 (no texture; the grey-level control). As the training setting of the same name.
    - ``texture_augment``: whether training crops are rotated and scaled at random (default true); false cuts them
      as valid/test crops are, whole-pixel and unrotated (the Tagger authors' recipe). As the training setting.

    ## Info
    Every tick: ``"t"``, ``"groups"`` (int8 ``(32, 32)``: 0 background where m < 0.1, 1 digit where m > 0.9,
    -1 ignore), ``"mask"`` (the soft digit mask m). At termination: ``"label"`` (-1 when unlabelled),
    ``"labelled"``, and with class beliefs for a labelled episode ``"class_correct"``, ``"class_log_prob"``.

    ## Batched generator
    :func:`generate_textured_batch` (also used by training); vectorised: :class:`TexturedMNISTVectorEnv`.

    ## Version History
    - v0: first version; ``texture_scale`` and ``textures`` added later, their defaults the first version's data.
    """

    frame_shape = (IMAGE_SIZE, IMAGE_SIZE)
    classify = True
    static_info = {"groups": "groups", "mask": "mask"}

    def __init__(
        self,
        split: str = "train",
        labelled: int | None = None,
        n_iterations: int = N_ITERATIONS,
        data_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
        texture_contrast: float = 1.0,
        texture_scale: float = 1.0,
        textures: str = "brodatz",
        texture_augment: bool = True,
    ) -> None:
        source = episode_source(split, labelled, data_dir, n_iterations, texture_contrast, texture_scale, textures,
                                texture_augment)
        super().__init__(source, render_mode)


class TexturedMNISTVectorEnv(PredictionVectorEnv):
    """``num_envs`` Textured MNIST episodes at once, from :func:`generate_textured_batch` with a batch of
    ``num_envs``; same arguments and contract as :class:`TexturedMNISTEnv`, batched, with Gymnasium's
    next-step autoreset (see :class:`~rladder_stream.envs.base.PredictionVectorEnv`)."""

    frame_shape = TexturedMNISTEnv.frame_shape
    classify = TexturedMNISTEnv.classify
    static_info = TexturedMNISTEnv.static_info

    def __init__(
        self,
        num_envs: int = 1,
        split: str = "train",
        labelled: int | None = None,
        n_iterations: int = N_ITERATIONS,
        data_dir: str | os.PathLike | None = None,
        render_mode: str | None = None,
        texture_contrast: float = 1.0,
        texture_scale: float = 1.0,
        textures: str = "brodatz",
        texture_augment: bool = True,
    ) -> None:
        source = episode_source(split, labelled, data_dir, n_iterations, texture_contrast, texture_scale, textures,
                                texture_augment)
        super().__init__(source, num_envs, render_mode)
