"""How much reason textured MNIST gives a denoising cost to group (issue 27; docs/design.md#brodatz-textured-mnist).

Two measurements per data variant, on clean training images (augmented as training augments them) with Gaussian
noise added, at the Taggers' training noise (``TAGGER_INPUT_NOISE``) and at 0.2:

- **Oracle-segmentation denoiser gain**: ridge regression from a pixel's 7x7 noisy patch to its clean value, (a)
  from the patch alone, (b) told the true segmentation: the patch values split by whether each neighbour is in the
  centre's group, in the other one or unassigned (mask between 0.1 and 0.9), plus those indicators, so the model can
  weigh same-texture neighbours differently. Fitted on the first half of the images, scored on the second, on the
  pixels with a definite group (0 or 1) whose patch lies inside the image. ``gain = MSE(a) / MSE(b)``: what knowing
  the groups is worth to a denoiser, the reason a Tagger's denoising cost has to split the image. The gain over the
  pixels near a boundary (a pixel of another group or unassigned in the patch) is reported too, with their share:
  elsewhere the two regressions see the same features.
- **Adaptive gain**: the same question for denoisers fitted within each image (5x5 patch, one checkerboard colour
  fitted, the other scored): one fit for the image against one fit per true group. A linear filter fixed across
  images cannot use a texture of unknown frequency and direction; fitted to the image's own group it can.
- **k-means AMI**: per image, two-cluster k-means on local-energy features (5x5 local mean and std, and the 5x5
  mean of the squared gradient in four directions), AMI against the true groups over the pixels with a definite
  group (``rladder_stream.training.metrics.grouping_ami``): how far low-level texture statistics alone separate the groups.

    RLADDER_STREAM_DATA=/path/to/data OMP_NUM_THREADS=1 python experiments/texture_cues.py --images 300 \\
        --doc docs/results/texture_cues.md

The document and its raw records (``.json`` beside it) are written together; every variant sees the same digits,
placements, texture pairs, crop angles and noise (one seed), so the variants differ only in the plates and scale.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy.ndimage import uniform_filter

from rladder_stream.envs.textured_mnist import episode_source
from rladder_stream.training.metrics import grouping_ami
from rladder_stream.model.registry import TAGGER_INPUT_NOISE

#: variant -> the data settings of the plates (environment arguments): Brodatz at texture scales 1-8 (at 6 and 8 a
#: digit-sized crop spans 4-8 plate pixels: a smooth blob rather than a texture), the sinusoid positive control and
#: the flat greys (no texture: what a Gaussian mixture groups by); "unaugmented"/"augmented" move one property (the
#: training crops' rotation and scaling) between Brodatz, the sinusoids and the Tagger authors' Freq20
VARIANTS: dict[str, dict[str, Any]] = {
    "brodatz, scale 1": {"texture_scale": 1.0},
    "brodatz, scale 2": {"texture_scale": 2.0},
    "brodatz, scale 3": {"texture_scale": 3.0},
    "brodatz, scale 4": {"texture_scale": 4.0},
    "brodatz, scale 6": {"texture_scale": 6.0},
    "brodatz, scale 8": {"texture_scale": 8.0},
    "brodatz, scale 2, unaugmented": {"texture_scale": 2.0, "texture_augment": False},
    "brodatz-scans, scale 1": {"textures": "brodatz-scans"},
    "brodatz-scans, scale 2": {"textures": "brodatz-scans", "texture_scale": 2.0},
    "brodatz-scans, scale 4": {"textures": "brodatz-scans", "texture_scale": 4.0},
    "sinusoid, scale 1": {"textures": "sinusoid"},
    "sinusoid, unaugmented": {"textures": "sinusoid", "texture_augment": False},
    "freq20, augmented": {"textures": "freq20"},
    "freq20, unaugmented": {"textures": "freq20", "texture_augment": False},  # the Tagger authors' own plates and crops
    "flat, scale 1": {"textures": "flat"},
}
NOISES = (0.0, TAGGER_INPUT_NOISE, 0.2)  # k-means runs at each; the denoisers at the noisy ones
PATCH = 7  # the denoisers' patch side
ADAPTIVE_PATCH = 5  # the per-image denoisers' patch side (26 weights fitted on a few hundred pixels of one group)
WINDOW = 5  # the k-means features' window side
RIDGE = 1e-3  # ridge penalty per fitted pixel
KMEANS_STARTS, KMEANS_STEPS = 5, 30
GAIN_BAR = 2.0  # the oracle gain a texture scale should reach at the training noise (issue 27)


def patches(images: np.ndarray, size: int = PATCH) -> np.ndarray:
    """Every ``size x size`` patch lying inside the images: ``[N, H, W]`` -> ``[N, H - size + 1, W - size + 1, size**2]``
    (centre pixel ``r, r`` of the image for patch ``0, 0``, ``r = size // 2``)."""
    n, h, w = images.shape
    view = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))
    return view.reshape(n, h - size + 1, w - size + 1, size * size)


def denoiser_features(noisy: np.ndarray, groups: np.ndarray, oracle: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(features [P, F] float32, scored [N, h, w] bool)`` of the pixels whose patch is inside the image: the noisy
    patch and a constant (plain), or with ``oracle`` the patch split into the centre's group, the other group and
    unassigned neighbours, plus the two indicators of same and unassigned, and a constant. ``scored``: the centre
    has a definite group (0 or 1); only those rows are returned."""
    r = PATCH // 2
    values = patches(noisy)
    centre = groups[:, r:-r, r:-r]
    scored = centre >= 0
    values = values[scored]
    ones = np.ones((len(values), 1), np.float32)
    if not oracle:
        return np.concatenate([values, ones], axis=1).astype(np.float32), scored
    near = patches(groups)[scored]
    same = (near == centre[scored][:, None]).astype(np.float32)
    unassigned = (near < 0).astype(np.float32)
    other = 1.0 - same - unassigned
    parts = [values * same, values * other, values * unassigned, same, unassigned, ones]
    return np.concatenate(parts, axis=1).astype(np.float32), scored


def ridge_fit(features: np.ndarray, targets: np.ndarray, penalty: float = RIDGE, chunk: int = 20_000) -> np.ndarray:
    """Ridge regression weights (float64) for ``features @ w ~ targets``, the normal equations summed in chunks, the
    penalty ``penalty * rows`` on every weight."""
    width = features.shape[1]
    gram, moment = np.zeros((width, width)), np.zeros(width)
    for start in range(0, len(features), chunk):
        x = features[start : start + chunk].astype(np.float64)
        gram += x.T @ x
        moment += x.T @ targets[start : start + chunk]
    return np.linalg.solve(gram + penalty * len(features) * np.eye(width), moment)


def denoiser_errors(clean: np.ndarray, noisy: np.ndarray, groups: np.ndarray, oracle: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(squared errors, near a boundary)`` of the ridge denoiser (plain or ``oracle``) fitted on the first half of
    the images, on the second half's pixels with a definite group whose patch lies inside the image; a pixel is near
    a boundary when its patch holds a pixel outside its group (the only pixels the segmentation can help)."""
    half, r = len(clean) // 2, PATCH // 2
    x, scored = denoiser_features(noisy[:half], groups[:half], oracle)
    weights = ridge_fit(x, clean[:half, r:-r, r:-r][scored].astype(np.float64))
    x, scored = denoiser_features(noisy[half:], groups[half:], oracle)
    errors = (x.astype(np.float64) @ weights - clean[half:, r:-r, r:-r][scored]) ** 2
    centre = groups[half:, r:-r, r:-r][scored]
    return errors, (patches(groups[half:])[scored] != centre[:, None]).any(axis=1)


def adaptive_denoiser_errors(clean: np.ndarray, noisy: np.ndarray, groups: np.ndarray,
                             size: int = ADAPTIVE_PATCH) -> tuple[np.ndarray, np.ndarray]:
    """``(squared errors of one fit per image, of one fit per image and group)``: ridge denoisers from a pixel's
    ``size x size`` noisy patch to its clean value, fitted **within each image** on the pixels of one checkerboard
    colour and scored on the other colour's, over the pixels with a definite group whose patch lies inside the image.
    What a denoiser that learns the image's own textures gains from knowing which pixels share one: where each
    group is a pattern its neighbours predict (a plane wave), one fit per group predicts it and one fit for both
    mixes two patterns; where the textures are white noise at pixel scale, neither predicts anything."""
    r = size // 2
    values = patches(noisy, size).astype(np.float64)
    values = np.concatenate([values, np.ones(values.shape[:-1] + (1,))], axis=-1)
    target = clean[:, r:-r, r:-r].astype(np.float64)
    centre = groups[:, r:-r, r:-r]
    rows, cols = np.indices(centre.shape[1:])
    fit_colour = (rows + cols) % 2 == 0
    plain, oracle = [], []
    for x, y, g in zip(values, target, centre):
        definite = g >= 0
        fit, score = definite & fit_colour, definite & ~fit_colour
        plain.append((x[score] @ ridge_fit(x[fit], y[fit]) - y[score]) ** 2)
        for group in np.unique(g[definite]):
            fit_g, score_g = fit & (g == group), score & (g == group)
            oracle.append((x[score_g] @ ridge_fit(x[fit_g], y[fit_g]) - y[score_g]) ** 2)
    return np.concatenate(plain), np.concatenate(oracle)


def energy_features(images: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Local-energy features ``[N, H * W, 6]`` of every pixel, each standardised per image: the ``window`` mean and
    std of the grey levels and the ``window`` mean of the squared gradient along 0, 45, 90 and 135 degrees (central
    differences; edges reflected)."""
    smooth = lambda a: uniform_filter(a, size=(1, window, window), mode="reflect")  # noqa: E731
    mean = smooth(images)
    std = np.sqrt(np.maximum(smooth(images**2) - mean**2, 0.0))
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    gy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2
    gx = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2
    directional = [gx, (gx + gy) / np.sqrt(2), gy, (gx - gy) / np.sqrt(2)]
    stack = np.stack([mean, std, *(smooth(g**2) for g in directional)], axis=-1).reshape(len(images), -1, 6)
    spread = stack.std(axis=1, keepdims=True)
    return (stack - stack.mean(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)


def two_means(features: np.ndarray, rng: np.random.Generator, starts: int = KMEANS_STARTS,
              steps: int = KMEANS_STEPS) -> np.ndarray:
    """Two-cluster k-means (Lloyd) of each image's pixels at once, ``[N, P, F]`` -> labels ``[N, P]`` (0 or 1):
    ``starts`` starts from two distinct random pixels each, the one of least within-cluster sum of squares kept per
    image. A pixel is nearer centre 1 when ``x . (c1 - c0) > (|c1|^2 - |c0|^2) / 2``."""
    n, p, _ = features.shape
    rows, total = np.arange(n), features.sum(1)
    best_labels, best_cost = np.zeros((n, p), bool), np.full(n, np.inf)
    for _ in range(starts):
        first = rng.integers(0, p, n)
        c0, c1 = features[rows, first], features[rows, (first + rng.integers(1, p, n)) % p]  # [N, F]
        for _ in range(steps):
            labels = np.einsum("npf,nf->np", features, c1 - c0) > ((c1**2).sum(-1) - (c0**2).sum(-1))[:, None] / 2
            ones = labels.sum(1)[:, None]
            sums = np.einsum("np,npf->nf", labels.astype(features.dtype), features)
            c1 = np.where(ones > 0, sums / np.maximum(ones, 1), c1)
            c0 = np.where(ones < p, (total - sums) / np.maximum(p - ones, 1), c0)
        cost = ((features - np.where(labels[..., None], c1[:, None], c0[:, None])) ** 2).sum((1, 2))
        better = cost < best_cost
        best_labels[better], best_cost[better] = labels[better], cost[better]
    return best_labels.astype(np.int64)


def kmeans_ami(noisy: np.ndarray, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per image, the AMI of two-cluster k-means on :func:`energy_features` against the true groups (pixels of group
    -1 left out): ``[N]``."""
    labels = two_means(energy_features(noisy), rng).reshape(groups.shape)
    masks = np.stack([labels == 0, labels == 1], axis=1).astype(np.float32)
    return np.array([grouping_ami(g, m) for g, m in zip(groups, masks)])


def measure(clean: np.ndarray, groups: np.ndarray, noises: Sequence[float], seed: int) -> list[dict[str, Any]]:
    """Both measurements of one data variant at each noise level: a record per level (denoisers at noise > 0)."""
    records = []
    for i, sigma in enumerate(noises):
        noisy = clean + sigma * np.random.default_rng([seed, 1, i]).standard_normal(clean.shape).astype(np.float32)
        ami = kmeans_ami(noisy, groups, np.random.default_rng([seed, 2, i]))
        record = {"sigma": sigma, "kmeans_ami": float(np.mean(ami)), "kmeans_ami_sem": float(np.std(ami) / np.sqrt(len(ami)))}
        if sigma > 0:
            (plain, near), (oracle, _) = (denoiser_errors(clean, noisy, groups, o) for o in (False, True))
            record.update(mse_plain=float(plain.mean()), mse_oracle=float(oracle.mean()), gain=float(plain.mean() / oracle.mean()),
                          gain_near=float(plain[near].mean() / oracle[near].mean()), near_share=float(near.mean()))
            per_image, per_group = adaptive_denoiser_errors(clean, noisy, groups)
            record.update(mse_per_image=float(per_image.mean()), mse_per_group=float(per_group.mean()),
                          adaptive_gain=float(per_image.mean() / per_group.mean()))
        records.append(record)
    return records


def variant_images(settings: Mapping[str, Any], n: int, seed: int, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(clean images [n, 32, 32], groups [n, 32, 32], data source)``: ``n`` training images of the environment
    with the plate ``settings``, drawn as training draws them (the same draws for every variant)."""
    source = episode_source("train", None, data_dir, **settings)
    episodes = source.episodes(np.random.default_rng([seed, 0]), n, None)
    return episodes["image"], episodes["groups"], source.source


def run(variants: Mapping[str, Mapping[str, Any]], n: int, seed: int, noises: Sequence[float] = NOISES,
        data_dir: str | None = None, say: Any = print) -> list[dict[str, Any]]:
    """Every variant's records (:func:`measure`), each with its variant, settings, data source and image count."""
    records = []
    for name, settings in variants.items():
        started = time.perf_counter()
        clean, groups, source = variant_images(settings, n, seed, data_dir)
        for record in measure(clean, groups, noises, seed):
            records.append({"variant": name, "settings": dict(settings), **record, "images": n,
                            "scored_pixels": int((groups >= 0).sum()), "data": source})
        say(f"{name}: {time.perf_counter() - started:.1f} s")
    return records


def training_noise_gains(records: Sequence[Mapping[str, Any]], noise: float = TAGGER_INPUT_NOISE) -> dict[str, float]:
    """variant -> oracle gain at ``noise``."""
    return {r["variant"]: r["gain"] for r in records if r["sigma"] == noise and "gain" in r}


def chosen_scale(records: Sequence[Mapping[str, Any]], noise: float = TAGGER_INPUT_NOISE, bar: float = GAIN_BAR) -> float | None:
    """The smallest Brodatz texture scale (full contrast) whose oracle gain at ``noise`` reaches ``bar``, or None."""
    scales = sorted(r["settings"].get("texture_scale", 1.0) for r in records
                    if r["sigma"] == noise and r.get("gain", 0.0) >= bar
                    and r["settings"].get("textures", "brodatz") == "brodatz" and r["settings"].get("texture_contrast", 1.0) == 1.0)
    return scales[0] if scales else None


def table(records: Sequence[Mapping[str, Any]]) -> str:
    """The Markdown table: a row per variant and noise."""
    lines = ["| data | σ | MSE plain | MSE oracle | oracle gain | near a boundary: gain (share) | per-image fits: MSE one | "
             "MSE per group | adaptive gain | k-means AMI |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        mse = (f"{r['mse_plain']:.5f} | {r['mse_oracle']:.5f} | **{r['gain']:.2f}×** | {r['gain_near']:.2f}× "
               f"({r['near_share']:.0%})" if "gain" in r else "— | — | — | —")
        mse += (f" | {r['mse_per_image']:.5f} | {r['mse_per_group']:.5f} | **{r['adaptive_gain']:.2f}×**"
                if "adaptive_gain" in r else " | — | — | —")
        lines.append(f"| {r['variant']} | {r['sigma']:g} | {mse} | {r['kmeans_ami']:.3f} ± {r['kmeans_ami_sem']:.3f} |")
    return "\n".join(lines)


def document(meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    """The results document (a pure function of the records file's contents)."""
    scale, noise = chosen_scale(records), TAGGER_INPUT_NOISE
    verdict = (f"the smallest Brodatz texture scale whose oracle gain at the training noise (σ = {noise:g}) reaches "
               f"{GAIN_BAR:g}× is **{scale:g}**" if scale is not None else
               f"**no Brodatz texture scale measured reaches an oracle gain of {GAIN_BAR:g}× at the training noise "
               f"(σ = {noise:g})**")
    sources = sorted({r["data"].split(", scale")[0] for r in records})
    at_noise = {r["variant"]: r for r in records if r["sigma"] == noise and "gain" in r}
    controls = [f"{name}: oracle gain {r['gain']:.2f}×, adaptive gain {r['adaptive_gain']:.2f}×, k-means AMI "
                f"{r['kmeans_ami']:.3f}" for name, r in at_noise.items() if r["settings"].get("textures") in ("sinusoid", "flat")]
    return "\n".join([
        "# Grouping cues of textured MNIST (issue 27)",
        "",
        f"Generated {meta['generated']} by `experiments/texture_cues.py`; raw records: "
        f"[{Path(meta['doc']).with_suffix('.json').name}]({Path(meta['doc']).with_suffix('.json').name}).",
        "",
        "How much a denoising cost gains from the true segmentation, and how far local texture statistics alone "
        "separate the groups, per data variant. **Oracle gain**: test MSE of a ridge denoiser from the 7×7 noisy "
        "patch to the clean centre pixel, divided by that of the same regression told the segmentation (the patch "
        "split into the centre's group, the other group and unassigned neighbours, plus the indicators), fitted on "
        "half the images and scored on the other half, on pixels with a definite group; also over the pixels near a "
        "boundary alone (another group or an unassigned pixel in the patch; their share of the scored pixels in "
        "brackets), the only ones where the two regressions see different features. **Adaptive gain**: a ridge "
        "denoiser from the 5×5 noisy patch fitted within each image (on one checkerboard colour of its pixels, scored "
        "on the other), once for the whole image and once per true group: what a denoiser that learns the image's "
        "own textures gains from knowing which pixels share one. **k-means AMI**: per image, "
        "two-cluster k-means on local-energy features (5×5 mean and std, 5×5 mean squared gradient in four "
        "directions), AMI against the true groups (mean ± standard error over images). σ = 0 is clean; "
        f"σ = {noise:g} is the Taggers' training noise (`TAGGER_INPUT_NOISE`).",
        "",
        table(records),
        "",
        f"Verdict: {verdict}."
        + (f" The controls at the training noise: {'; '.join(controls)}." if controls else ""),
        "",
        "## How these numbers were made",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"- Images: {meta['images']} clean training images per variant (the train split's generator, augmented as in "
        f"training: crops rotated 0–360°, magnified 0.7–1.4 × the texture scale), the same digits, placements, texture "
        f"pairs, angles and noise in every variant; seed {meta['seed']}",
        f"- Data: {'; '.join(sources)}",
        f"- Hardware: {meta['hardware']}; {meta['wall_s']:.0f} s of wall time",
    ]) + "\n"


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that made a document, with the data folder and thread count it ran with."""
    data = os.environ.get("RLADDER_STREAM_DATA")
    words = ["python", f"experiments/{script}", *(sys.argv[1:] if argv is None else argv)]
    return (f"RLADDER_STREAM_DATA={shlex.quote(data)} " if data else "") + "OMP_NUM_THREADS=1 " + shlex.join(words)


def write_document_and_records(doc: str | os.PathLike, meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                               render: Any) -> None:
    """``render(meta, records)`` to ``doc`` and ``{"meta", "records"}`` beside it (``.json``)."""
    doc = Path(doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.with_suffix(".json").write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    doc.write_text(render(meta, records))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300, help="training images per variant (half fit, half scored)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS), metavar="VARIANT")
    parser.add_argument("--data-dir", default=None, help="default: $RLADDER_STREAM_DATA, else the embedded data")
    parser.add_argument("--doc", default=None, help="write the Markdown document here and the records beside it (.json)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    records = run({v: VARIANTS[v] for v in args.variants}, args.images, args.seed, data_dir=args.data_dir,
                  say=lambda s: print(s, file=sys.stderr))
    print(table(records))
    gains = training_noise_gains(records)
    print(f"oracle gain at the training noise {TAGGER_INPUT_NOISE:g}: " + ", ".join(f"{k} {v:.2f}" for k, v in gains.items()))
    print(f"smallest Brodatz scale with gain >= {GAIN_BAR:g}: {chosen_scale(records)}")
    if args.doc:
        meta = {"generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "doc": args.doc,
                "command": command_line("texture_cues.py", argv),
                "images": args.images, "seed": args.seed, "noises": list(NOISES), "patch": PATCH, "window": WINDOW,
                "ridge": RIDGE, "kmeans_starts": KMEANS_STARTS, "kmeans_steps": KMEANS_STEPS,
                "hardware": f"CPU {platform.processor() or platform.machine()}, {os.environ.get('OMP_NUM_THREADS', 'all')} "
                            f"thread(s), numpy {np.__version__}", "wall_s": time.perf_counter() - started}
        write_document_and_records(args.doc, meta, records, document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
