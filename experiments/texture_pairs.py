"""Learned local grouping cue of textured MNIST (issue 27; docs/design.md#grouping-cues-and-the-texture-scale).

texture_cues.py measures the cue with fixed features (k-means on local energies) and linear denoisers. This script
asks a learned, nonlinear question of the same data: shown two noisy patches of one image, a few pixels apart, can a
small network tell whether their centres lie in the same group (digit or background)? A pair classifier (a shared
convolutional patch encoder, a head on the two codes) is trained on pairs from training images and scored on pairs
from other images, half of them same-group. 50 % is chance: no local evidence of which pixels belong together. It is
an upper bound of sorts on what a grouping model can read from patches of this size (it is told the answer in
training, which a Tagger is not), and a lower bound on the cue in the data (a bigger network might find more):

    python experiments/texture_pairs.py --doc docs/results/texture_pairs.md

The variants and their draws are texture_cues.py's (the same generator, seed and images per variant).
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

_spec = importlib.util.spec_from_file_location("texture_cues", Path(__file__).with_name("texture_cues.py"))
texture_cues = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(texture_cues)

PATCH = 9  # the side of each patch (a digit stroke, thickened, is 4-7 pixels wide)
DISTANCES = (3, 10)  # the centres' distance, in pixels (uniform in this range, inclusive)
NOISE = 0.1  # the Taggers' training noise (TAGGER_INPUT_NOISE)
STEPS, BATCH, LR = 1000, 256, 2e-3


class PairClassifier(nn.Module):
    """Whether two patches' centres share a group: one encoder for both patches, a head on (|a - b|, a * b)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.encode = nn.Sequential(
            nn.Conv2d(1, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU(), nn.Conv2d(width, width, 3), nn.ReLU(),
            nn.Flatten(), nn.LazyLinear(2 * width), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(4 * width, 2 * width), nn.ReLU(), nn.Linear(2 * width, 1))

    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        a, b = self.encode(first), self.encode(second)
        return self.head(torch.cat([(a - b).abs(), a * b], dim=1)).squeeze(1)


def draw_pairs(images: np.ndarray, groups: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``n`` pairs of ``PATCH``-sided patches (centres at a definite group, patches inside the image, centres
    ``DISTANCES`` apart), half same-group: ``(first [n, 1, P, P], second, same [n])``."""
    half, side = PATCH // 2, images.shape[-1]
    firsts, seconds, same = [], [], []
    want = rng.permutation(np.arange(n) % 2 == 0)  # the label each pair must have: balanced
    i = 0
    while i < n:
        k = rng.integers(len(images))
        y, x = rng.integers(half, side - half, size=2)
        angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(*DISTANCES)
        y2, x2 = int(round(y + distance * np.sin(angle))), int(round(x + distance * np.cos(angle)))
        if not (half <= y2 < side - half and half <= x2 < side - half):
            continue
        g1, g2 = groups[k, y, x], groups[k, y2, x2]
        if g1 < 0 or g2 < 0 or (g1 == g2) != want[i]:
            continue
        firsts.append(images[k, y - half:y + half + 1, x - half:x + half + 1])
        seconds.append(images[k, y2 - half:y2 + half + 1, x2 - half:x2 + half + 1])
        same.append(g1 == g2)
        i += 1
    return np.stack(firsts)[:, None], np.stack(seconds)[:, None], np.array(same, np.float32)


def pair_accuracy(clean: np.ndarray, groups: np.ndarray, noise: float, seed: int, steps: int = STEPS,
                  train_pairs: int = 40_000, test_pairs: int = 4_000, width: int = 32, batch: int = BATCH) -> dict[str, float]:
    """Train a :class:`PairClassifier` on pairs of the first 80 % of the images (noisy, one draw of the noise per
    image) and score it on pairs of the rest: test accuracy, its standard error and the final training accuracy."""
    rng = np.random.default_rng([seed, 3])
    noisy = (clean + noise * rng.standard_normal(clean.shape)).astype(np.float32)
    cut = int(0.8 * len(clean))
    train = [torch.from_numpy(a) for a in draw_pairs(noisy[:cut], groups[:cut], train_pairs, rng)]
    test = [torch.from_numpy(a) for a in draw_pairs(noisy[cut:], groups[cut:], test_pairs, rng)]
    torch.manual_seed(seed)
    model = PairClassifier(width)
    model(train[0][:2], train[1][:2])  # sizes the lazy layer
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.BCEWithLogitsLoss()
    order = torch.Generator().manual_seed(seed)
    hits = []
    for _ in range(steps):
        pick = torch.randint(len(train[2]), (batch,), generator=order)
        logits = model(train[0][pick], train[1][pick])
        loss = loss_fn(logits, train[2][pick])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        hits.append(float(((logits > 0).float() == train[2][pick]).float().mean()))
    with torch.no_grad():
        right = ((model(test[0], test[1]) > 0).float() == test[2]).float().numpy()
    return {"accuracy": float(right.mean()), "accuracy_sem": float(right.std() / np.sqrt(len(right))),
            "train_accuracy": float(np.mean(hits[-100:]))}


def table(records: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| data | σ | same-group accuracy on held-out images (%) | training accuracy, last 100 steps (%) |",
             "|---|---|---:|---:|"]
    for r in records:
        lines.append(f"| {r['variant']} | {r['sigma']:g} | {100 * r['accuracy']:.1f} ± {100 * r['accuracy_sem']:.1f} | "
                     f"{100 * r['train_accuracy']:.1f} |")
    return "\n".join(lines)


def document(meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join([
        "# A learned local grouping cue of textured MNIST (issue 27)",
        "",
        f"Generated {meta['generated']} by `experiments/texture_pairs.py`; raw records: "
        f"[{Path(meta['doc']).with_suffix('.json').name}]({Path(meta['doc']).with_suffix('.json').name}).",
        "",
        f"Two noisy {PATCH}×{PATCH} patches of one image, their centres {DISTANCES[0]}–{DISTANCES[1]} pixels apart, each "
        "centre on a pixel of definite group: does a small network trained for it tell whether the two centres lie in "
        "the same group (digit or background)? Half the pairs are same-group, so **50 % is chance**: no local evidence "
        "of which pixels belong together. The network (three 3×3 convolutions of 32 channels and a dense layer, shared "
        "by both patches; a head on the codes' absolute difference and product) trains on pairs of 80 % of the images "
        f"({meta['train_pairs']:,} pairs, {meta['steps']:,} steps of {BATCH}, Adam {LR:g}) and is scored on "
        f"{meta['test_pairs']:,} pairs of the other 20 % (± the standard error over pairs). It is told the answer while "
        "training, which a Tagger is not: what it reaches is what local patches offer a model, not what a Tagger will "
        "find; and a larger network might find more. The variants and images are "
        "[texture_cues.md](texture_cues.md)'s (same generator, seed and draws).",
        "",
        table(records),
        "",
        "## How these numbers were made",
        "",
        "```",
        meta["command"],
        "```",
        "",
        f"- Images: {meta['images']} training images per variant; seed {meta['seed']}",
        f"- Hardware: {meta['hardware']}; {meta['wall_s']:.0f} s of wall time",
    ]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="training images per variant (80 %% for training pairs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noises", type=float, nargs="+", default=[0.0, NOISE], help="noise std of the images")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--train-pairs", type=int, default=40_000)
    parser.add_argument("--test-pairs", type=int, default=4_000)
    parser.add_argument("--variants", nargs="+", choices=sorted(texture_cues.VARIANTS), metavar="VARIANT",
                        default=["brodatz, scale 1", "brodatz, scale 2", "brodatz-scans, scale 1", "brodatz-scans, scale 2",
                                 "sinusoid, scale 1", "freq20, unaugmented", "flat, scale 1"])
    parser.add_argument("--data-dir", default=None, help="default: $RLADDER_STREAM_DATA, else the embedded data")
    parser.add_argument("--doc", default=None, help="write the Markdown document here and the records beside it (.json)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    records = []
    for name in args.variants:
        clean, groups, source = texture_cues.variant_images(texture_cues.VARIANTS[name], args.images, args.seed, args.data_dir)
        for sigma in args.noises:
            began = time.perf_counter()
            result = pair_accuracy(clean, groups, sigma, args.seed, args.steps, args.train_pairs, args.test_pairs)
            records.append({"variant": name, "settings": dict(texture_cues.VARIANTS[name]), "sigma": sigma, **result,
                            "images": args.images, "data": source})
            print(f"{name}, sigma {sigma:g}: accuracy {100 * result['accuracy']:.1f} % "
                  f"({time.perf_counter() - began:.0f} s)", file=sys.stderr)
    print(table(records))
    if args.doc:
        meta = {"generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "doc": args.doc,
                "command": texture_cues.command_line("texture_pairs.py", argv),
                "images": args.images, "seed": args.seed, "steps": args.steps, "train_pairs": args.train_pairs,
                "test_pairs": args.test_pairs, "patch": PATCH, "distances": list(DISTANCES),
                "hardware": f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), "
                            f"torch {torch.__version__}", "wall_s": time.perf_counter() - started}
        texture_cues.write_document_and_records(args.doc, meta, records, document)
        print(f"wrote {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
