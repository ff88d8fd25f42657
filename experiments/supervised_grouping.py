"""How well can any model group textured MNIST? A supervised ceiling (issue 27; docs/design.md#brodatz-textured-mnist).

The Taggers must find digit and background without being told them. This script tells a model: a small
convolutional segmenter (dilated 3x3 convolutions whose receptive field covers the whole 32x32 image) is trained
with the true segmentation as its target (binary cross-entropy on the pixels of definite group, noise of std sigma
added to fresh training images each step, as the Taggers see them), and its two-group masks (p, 1 - p) are scored
on the fixed test images with the AMI the Taggers are scored with (``rladder_stream.training.metrics``), beside the
shuffled chance level (each image's masks against another image's truth: what a digit-shaped prior earns).

What it reaches is what the data lets a model of this size read from one noisy image in this many steps when it is
told the answer: not a bound on every model (a larger one, or more steps, may do better; the learning curve says
whether it had stopped rising), but a measurement of whether an AMI bar is within reach of the data at all. The
variants are texture_cues.py's (the same generator and plates):

    RLADDER_STREAM_DATA=/path/to/data OMP_NUM_THREADS=1 python experiments/supervised_grouping.py \\
        --doc docs/results/supervised_grouping.md
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from rladder_stream.envs.textured_mnist import episode_source
from rladder_stream.reproduce.common import timestamp
from rladder_stream.training.metrics import batch_grouping_ami

_spec = importlib.util.spec_from_file_location("texture_cues", Path(__file__).with_name("texture_cues.py"))
texture_cues = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(texture_cues)

DILATIONS = (1, 2, 4, 8, 4, 2, 1)  # receptive field 3 + 2 * sum = 47 px: the whole image from every pixel
STEPS, BATCH, LR, WIDTH = 3000, 32, 2e-3, 32
EVAL_EVERY, TEST_IMAGES = 500, 1000
SHARED = ("steps", "batch", "width", "test_images")  # what every row of one document was trained and scored with
AMI_BAR = 0.3  # the RTagger's bar on Brodatz (issue 27)
#: the variants measured by default (texture_cues.VARIANTS names) and the noises each is trained at
DEFAULT_RUNS = (("brodatz, scale 2", 0.1), ("brodatz, scale 2", 0.2), ("brodatz-scans, scale 2", 0.1),
                ("freq20, unaugmented", 0.2), ("sinusoid, scale 1", 0.1), ("flat, scale 1", 0.1))

Render = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def rendered_image(episodes: Mapping[str, np.ndarray]) -> np.ndarray:
    """The clean image an episode shows (what the Taggers denoise)."""
    return episodes["image"]


class Segmenter(nn.Module):
    """Per-pixel logit of "digit": a 3x3 convolution, then dilated 3x3 convolutions with batch norm and ReLU, then a
    1x1 convolution. Padding keeps the 32x32 grid."""

    def __init__(self, width: int = WIDTH, dilations: Sequence[int] = DILATIONS) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1), nn.ReLU()]
        for d in dilations:
            layers += [nn.Conv2d(width, width, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        layers.append(nn.Conv2d(width, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images[:, None]).squeeze(1)


def receptive_field(dilations: Sequence[int]) -> int:
    """The side in pixels of what one output pixel of a :class:`Segmenter` sees: 3 for the first convolution, and
    ``2 d`` more for each 3x3 convolution of dilation ``d``."""
    return 3 + 2 * sum(dilations)


def group_masks(logits: torch.Tensor) -> np.ndarray:
    """``[B, H, W]`` logits -> ``[B, 2, H, W]`` masks (background, digit), as a Tagger's groups are scored."""
    p = torch.sigmoid(logits.float()).numpy()
    return np.stack([1.0 - p, p], axis=1)


def segmentation_loss(logits: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy against "digit" over the pixels of definite group (the soft edge, -1, is not scored)."""
    scored = groups >= 0
    return nn.functional.binary_cross_entropy_with_logits(logits[scored], (groups[scored] == 1).float())


@torch.no_grad()
def evaluate(model: Segmenter, noisy: np.ndarray, groups: np.ndarray, batch: int = 250) -> dict[str, float]:
    """Test AMI of the model's masks, its shuffled chance level and the pixel accuracy on definite pixels."""
    model.eval()
    masks = np.concatenate([group_masks(model(torch.from_numpy(noisy[i:i + batch]))) for i in range(0, len(noisy), batch)])
    model.train()
    ami, n = batch_grouping_ami(groups, masks)
    shuffled, m = batch_grouping_ami(np.roll(groups, 1, axis=0), masks)
    scored = groups >= 0
    right = (masks.argmax(1) == groups)[scored]
    return {"ami": ami / n, "ami_shuffled": shuffled / m, "pixel_accuracy": float(right.mean())}


def train_segmenter(settings: Mapping[str, Any], sigma: float, seed: int = 0, steps: int = STEPS, batch: int = BATCH,
                    width: int = WIDTH, eval_every: int = EVAL_EVERY, test_images: int = TEST_IMAGES,
                    data_dir: str | None = None, render: Render = rendered_image, say: Any = None,
                    dilations: Sequence[int] = DILATIONS) -> dict[str, Any]:
    """Train a :class:`Segmenter` on fresh noisy training images of the plates ``settings`` (environment arguments of
    textured MNIST; ``dilations``: its dilated layers) and score it on the first ``test_images`` test images (one fixed noise draw). Returns the final
    scores, the learning curve (``[{"step", "ami", "ami_shuffled", "pixel_accuracy"}]``), the data source and timing."""
    started = time.perf_counter()
    train, test = episode_source("train", None, data_dir, **settings), episode_source("test", None, data_dir, **settings)
    rng = np.random.default_rng([seed, 5])
    held_out = test.episodes(None, test_images, list(range(test_images)))
    test_groups = held_out["groups"].astype(np.int64)
    test_noisy = (render(held_out) + sigma * rng.standard_normal(test_groups.shape)).astype(np.float32)
    torch.manual_seed(seed)
    model = Segmenter(width, dilations)
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    curve, losses = [], []
    for step in range(1, steps + 1):
        episodes = train.episodes(rng, batch, None)
        noisy = render(episodes) + sigma * rng.standard_normal(episodes["groups"].shape)
        loss = segmentation_loss(model(torch.from_numpy(noisy.astype(np.float32))),
                                 torch.from_numpy(episodes["groups"].astype(np.int64)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        if step % eval_every == 0 or step == steps:
            curve.append({"step": step, "train_loss": float(np.mean(losses[-eval_every:])),
                          **evaluate(model, test_noisy, test_groups)})
            if say:
                say(f"  step {step}: test AMI {curve[-1]['ami']:.3f} (shuffled {curve[-1]['ami_shuffled']:.3f}), "
                    f"pixel accuracy {100 * curve[-1]['pixel_accuracy']:.1f} %")
    return {**{k: v for k, v in curve[-1].items() if k != "step"}, "curve": curve, "steps": steps, "batch": batch,
            "width": width, "dilations": list(dilations), "receptive_field": receptive_field(dilations), "sigma": sigma, "test_images": test_images, "data": train.source,
            "wall_s": time.perf_counter() - started}


def table(records: Sequence[Mapping[str, Any]]) -> str:
    """A row per variant, noise and seed: the final scores and the test AMI over training."""
    steps = sorted({c["step"] for r in records for c in r["curve"]})
    lines = ["| data | σ | receptive field | seed | test AMI | chance (shuffled) | pixel accuracy | "
             + " | ".join(f"AMI at {s:,}" for s in steps) + " |", "|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(steps)]
    for r in records:
        at = {c["step"]: c["ami"] for c in r["curve"]}
        lines.append(f"| {r['variant']} | {r['sigma']:g} | {r['receptive_field']} px | {r['seed']} | **{r['ami']:.3f}** | {r['ami_shuffled']:.3f} | "
                     f"{100 * r['pixel_accuracy']:.1f} % | " + " | ".join(f"{at[s]:.3f}" if s in at else "" for s in steps) + " |")
    return "\n".join(lines)


def by_run(records: Sequence[Mapping[str, Any]]) -> dict[tuple[str, float, int], list[Mapping[str, Any]]]:
    """(variant, sigma, receptive field) -> its records (one per seed), in first-seen order."""
    runs: dict[tuple[str, float, int], list[Mapping[str, Any]]] = {}
    for r in records:
        runs.setdefault((r["variant"], r["sigma"], r["receptive_field"]), []).append(r)
    return runs


def spread(values: Sequence[float]) -> str:
    """``mean ± sample std`` (the value alone for one)."""
    return f"{np.mean(values):.3f}" + (f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else "")


def verdict(records: Sequence[Mapping[str, Any]], bar: float = AMI_BAR) -> str:
    """Which variants' supervised AMI reaches ``bar`` and twice its shuffled chance level in every seed."""
    def reaches(r: Mapping[str, Any]) -> bool:
        return r["ami"] >= bar and r["ami"] >= 2 * r["ami_shuffled"]
    lines = [f"Told the answer, does the segmenter reach the bar the issue sets the RTagger on Brodatz (test AMI ≥ {bar:g} "
             "and ≥ 2× its shuffled chance level, in every seed)?", ""]
    for (variant, sigma, field), rs in by_run(records).items():
        ami, shuffled = [r["ami"] for r in rs], [r["ami_shuffled"] for r in rs]
        seen = "" if field == receptive_field(DILATIONS) else f", receptive field {field} px"
        lines.append(f"- {variant}, σ {sigma:g}{seen}: **{'yes' if all(map(reaches, rs)) else 'no'}**, AMI {spread(ami)} against "
                     f"{spread(shuffled)} shuffled ({len(rs)} seed{'s' if len(rs) > 1 else ''}; "
                     f"ratio of the means {np.mean(ami) / np.mean(shuffled):.1f})")
    return "\n".join(lines)


def document(meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    json_name = Path(meta["doc"]).with_suffix(".json").name
    return "\n".join([
        "# A supervised ceiling for grouping textured MNIST (issue 27)",
        "",
        f"Generated {meta['generated']} by `experiments/supervised_grouping.py`; raw records: [{json_name}]({json_name}).",
        "",
        "The Taggers must find digit and background without being told them. Here a model is told: a convolutional "
        f"segmenter ({len(DILATIONS) + 1} 3×3 convolutions of {meta['width']} channels, dilations {', '.join(map(str, DILATIONS))} "
        f"after the first, so every pixel sees the whole image, a receptive field of {receptive_field(DILATIONS)} px; "
        "batch norm, ReLU; rows with a smaller receptive field keep the first convolution and fewer dilated ones, "
        "their dilations in the records) is trained on the true segmentation "
        "(binary cross-entropy on the pixels of definite group) of fresh noisy training images, "
        f"{meta['steps']:,} steps of {meta['batch']} (Adam {LR:g}), and its masks (p, 1 − p) are scored on the first "
        f"{meta['test_images']:,} test images (one noise draw) with the Taggers' AMI (docs/design.md#ami). The shuffled "
        "chance level scores each image's masks against another image's truth: what a digit-shaped prior earns without "
        "reading the textures. What it reaches is what the data lets a model of this size find when it is told the "
        "answer, a measurement of whether an AMI bar is within reach of the data, not a bound on every model (a "
        "larger one, or longer training, may do better: the columns on the right are the learning curve). The "
        "variants and plates are [texture_cues.md](texture_cues.md)'s.",
        "",
        table(records),
        "",
        verdict(records),
        "",
        "## How these numbers were made",
        "",
        "```",
        *meta["commands"],
        "```",
        "",
        f"- Seeds {', '.join(str(s) for s in sorted({r['seed'] for r in records}))}; "
        f"data: {'; '.join(sorted({r['data'] for r in records}))}",
        f"- Hardware: {meta['hardware']}; {meta['wall_s'] / 60:.0f} min of wall time, all runs together",
    ]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=None, metavar="VARIANT@SIGMA",
                        help="variant (a texture_cues.py variant name) and noise, e.g. 'brodatz, scale 2@0.1'; "
                             "default: " + "; ".join(f"{v}@{s:g}" for v, s in DEFAULT_RUNS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--width", type=int, default=WIDTH)
    parser.add_argument("--dilations", type=int, nargs="*", default=list(DILATIONS),
                        help="the dilated 3x3 layers after the first convolution (default: %(default)s); fewer or "
                             "smaller ones shrink the receptive field, e.g. '1 1' sees 7x7")
    parser.add_argument("--eval-every", type=int, default=EVAL_EVERY)
    parser.add_argument("--test-images", type=int, default=TEST_IMAGES)
    parser.add_argument("--data-dir", default=None, help="default: $RLADDER_STREAM_DATA, else the embedded data")
    parser.add_argument("--doc", default=None, help="write the Markdown document here and the records beside it (.json)")
    parser.add_argument("--add-records", nargs="+", default=[], metavar="FILE",
                        help="records of other runs of this script (the .json beside their documents) to tabulate with "
                             "these; with --runs none, train nothing")
    args = parser.parse_args(argv)
    runs = DEFAULT_RUNS if args.runs is None else [] if args.runs == ["none"] else [parse_run(r) for r in args.runs]
    started = time.perf_counter()
    records, earlier = [], [load_records(f) for f in args.add_records]
    planned = [{"steps": args.steps, "batch": BATCH, "width": args.width, "test_images": args.test_images}] if runs else []
    settings = {tuple(r[k] for k in SHARED) for r in [*planned, *(r for _, rs in earlier for r in rs)]}
    if len(settings) > 1:  # refused before anything trains
        raise SystemExit("the added records were made with other steps, batch, width or test images than these")
    for variant, sigma in runs:
        print(f"{variant}, sigma {sigma:g}, seed {args.seed}:", file=sys.stderr)
        result = train_segmenter(texture_cues.VARIANTS[variant], sigma, args.seed, args.steps, BATCH, args.width,
                                 args.eval_every, args.test_images, args.data_dir, say=lambda s: print(s, file=sys.stderr),
                                 dilations=args.dilations)
        records.append({"variant": variant, "settings": dict(texture_cues.VARIANTS[variant]), "seed": args.seed, **result})
    records = [r for rs in by_run([*(r for _, rs in earlier for r in rs), *records]).values()
               for r in sorted(rs, key=lambda r: r["seed"])]
    if not records:
        raise SystemExit("nothing to tabulate: no runs and no --add-records")
    print(table(records))
    print(verdict(records))
    if args.doc:
        meta = {"generated": timestamp(), "doc": args.doc,
                "commands": [c for m, _ in earlier for c in m["commands"]]
                + [texture_cues.command_line("supervised_grouping.py", argv)],
                **dict(zip(SHARED, settings.pop())),
                "hardware": f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), "
                            f"torch {torch.__version__}",
                "wall_s": time.perf_counter() - started + sum(m["wall_s"] for m, _ in earlier)}
        texture_cues.write_document_and_records(args.doc, meta, records, document)
        print(f"wrote {args.doc}", file=sys.stderr)
    return 0


def load_records(path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(meta, records)`` of an earlier run's JSON (the ``.json`` beside its document)."""
    data = json.loads(Path(path).read_text())
    return data["meta"], data["records"]


def parse_run(text: str) -> tuple[str, float]:
    """``"VARIANT@SIGMA"`` -> ``(variant, sigma)``, the variant one of texture_cues.py's."""
    variant, _, sigma = text.rpartition("@")
    if variant not in texture_cues.VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; known: {', '.join(texture_cues.VARIANTS)}")
    try:
        return variant, float(sigma)
    except ValueError:
        raise SystemExit(f"noise must be a number after '@', got {sigma!r} in {text!r}") from None


if __name__ == "__main__":
    raise SystemExit(main())
