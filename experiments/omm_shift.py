"""How a trained Occluded Moving MNIST model fares on data another implementation of the data set would make (issue 26).

The shipped model is also checked on test sequences made by a generator this project did not write. The data set's
description (docs/design.md#occluded-moving-mnist) leaves room in a few places, and an independent implementation
may fill it differently. This script rebuilds the test sequences (the MNIST test digits in order, one trajectory
each from one seed) once per **variant**, each changing one detail the description leaves open, and reports each
checkpoint's class error after the 5th frame on every variant, on the same digits and trajectories:

- how the 28×28 digit becomes 16×16 ("antialiased bilinear"): Pillow's bilinear on 8-bit images (ours), torch's
  antialiased bilinear on floats, bilinear without antialiasing, area averaging, Pillow's bicubic and Lanczos;
- the digit's frame: the whole 28×28 (ours) or its central 20×20, where MNIST fits the digit;
- the digit's grey levels: divided by 255 (ours) or scaled so each digit's brightest pixel is 1;
- the bounce: exact reflection off the frame's edges (ours) or a velocity reversed *before* a step would leave the
  frame (the path turns one step early and never touches positions past the edge).

A model whose error rises a lot on one variant has learned a detail of this generator rather than the task.

    RLADDER_STREAM_DATA=../shared/data python experiments/omm_shift.py rladder_stream/pretrained/omm-rladder-cpu.pt \\
        --test 10000 --doc docs/results/omm_shift.md

Records (one per checkpoint and variant) go beside the document as ``.json``; ``--from-records`` that file re-derives
the document from them, measuring only checkpoints not among them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rladder_stream import load_model
from rladder_stream.envs.drawing import INK, bounce, paste
from rladder_stream.envs.occluded_mnist import DIGIT_SIZE, ENV_ID, FRAME_SIZE, LIMIT, N_OBSERVED, OCCLUDED, draw_trajectories
from rladder_stream.envs.splits import mnist_pool
from rladder_stream.reproduce.common import publish, timestamp

Resize = Callable[[np.ndarray], np.ndarray]  # uint8 [B, 28, 28] -> float32 [B, 16, 16] in [0, 1]


def pillow(method: Image.Resampling) -> Resize:
    """Pillow's resize of the 8-bit digit (ours with ``BILINEAR``), read back as k / 255."""
    def resize(digits: np.ndarray) -> np.ndarray:
        small = [np.asarray(Image.fromarray(d).resize((DIGIT_SIZE, DIGIT_SIZE), method)) for d in digits]
        return INK[np.stack(small)]
    return resize


def torch_resize(mode: str, antialias: bool) -> Resize:
    """torch's ``interpolate`` on the digit as floats in [0, 1] (no 8-bit rounding)."""
    def resize(digits: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(digits, dtype=torch.float32)[:, None] / 255.0
        kwargs = {"antialias": antialias, "align_corners": False} if mode != "area" else {}
        return F.interpolate(x, size=(DIGIT_SIZE, DIGIT_SIZE), mode=mode, **kwargs)[:, 0].clamp(0, 1).numpy()
    return resize


def cropped(resize: Resize, box: int = 20) -> Resize:
    """The central ``box`` x ``box`` of the 28 x 28 digit (MNIST's digits are fitted into 20 x 20 and centred) resized,
    so the digit fills more of its 16 x 16."""
    margin = (28 - box) // 2
    def resize_crop(digits: np.ndarray) -> np.ndarray:
        return resize(np.ascontiguousarray(digits[:, margin : margin + box, margin : margin + box]))
    return resize_crop


def max_normalised(resize: Resize) -> Resize:
    """Each resized digit scaled so its brightest pixel is 1."""
    def scaled(digits: np.ndarray) -> np.ndarray:
        small = resize(digits)
        return small / np.maximum(small.max(axis=(1, 2), keepdims=True), 1e-6)
    return scaled


def reflect(start: np.ndarray, velocity: np.ndarray, n_frames: int) -> np.ndarray:
    """Ours: exact reflection off 0 and LIMIT. ``[B, 2, T]``."""
    return bounce(start.astype(np.float64), velocity.astype(np.float64), n_frames, LIMIT).astype(np.int64)


def turn_before_edge(start: np.ndarray, velocity: np.ndarray, n_frames: int) -> np.ndarray:
    """The velocity is reversed when the next step would leave ``[0, LIMIT]``, then the step is taken. ``[B, 2, T]``."""
    position, v = start.astype(np.int64).copy(), velocity.astype(np.int64).copy()
    path = [position.copy()]
    for _ in range(n_frames - 1):
        leaving = (position + v < 0) | (position + v > LIMIT)
        v = np.where(leaving, -v, v)
        position = position + v
        path.append(position.copy())
    return np.stack(path, axis=-1)


BILINEAR = pillow(Image.Resampling.BILINEAR)
#: name -> (what changes, the resize, the path, whether training with ``digit_augment`` saw this rendering)
VARIANTS: dict[str, tuple[str, Resize, Callable[[np.ndarray, np.ndarray, int], np.ndarray], str]] = {
    "ours": ("Pillow bilinear on 8-bit digits, k / 255, exact reflection (the project's generator)", BILINEAR, reflect, "yes"),
    "torch-bilinear-antialias": ("torch bilinear with antialiasing on float digits", torch_resize("bilinear", True), reflect,
                                 "nearly (Pillow's bilinear)"),
    "torch-bilinear": ("torch bilinear without antialiasing (each pixel interpolated from the 2 x 2 source pixels around "
                       "its centre, the rest skipped)", torch_resize("bilinear", False), reflect, "no"),
    "area": ("area averaging (box filter) on float digits", torch_resize("area", False), reflect, "nearly (Pillow's box)"),
    "pillow-bicubic": ("Pillow bicubic", pillow(Image.Resampling.BICUBIC), reflect, "yes"),
    "pillow-lanczos": ("Pillow Lanczos", pillow(Image.Resampling.LANCZOS), reflect, "no"),
    "cropped-20": ("ours on the central 20 x 20 of the digit (the digit larger in its 16 x 16)", cropped(BILINEAR), reflect,
                   "no (24 x 24 crops are)"),
    "max-normalised": ("ours, each digit scaled to a brightest pixel of 1", max_normalised(BILINEAR), reflect, "no"),
    "turn-before-edge": ("ours, the velocity reversed before a step would leave the frame", BILINEAR, turn_before_edge, "no"),
}


def variant_frames(name: str, digits: np.ndarray, seed: int) -> np.ndarray:
    """The observed frames ``float32 [B, 5, 32, 32]`` of one variant: every digit of ``digits`` in order, with the
    start and velocity drawn from ``seed`` (the same in every variant), bars drawn as background."""
    _, resize, path_of, _ = VARIANTS[name]
    rng = np.random.default_rng([seed, 26])
    choice = np.arange(len(digits))
    _, ys, xs, velocity = draw_trajectories(rng, len(digits), len(digits), choice, N_OBSERVED)
    start = np.stack([ys[:, 0], xs[:, 0]], axis=-1)
    path = path_of(start, velocity, N_OBSERVED)
    ink = resize(digits).astype(np.float32)
    clean = paste(ink[:, None], path[:, 0], path[:, 1], (FRAME_SIZE, FRAME_SIZE))
    return np.where(OCCLUDED, np.float32(0.0), clean).astype(np.float32)


@torch.no_grad()
def class_error(model: torch.nn.Module, frames: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> tuple[float, np.ndarray]:
    """Class error (%) after the last frame, as training's test computes it (whole sequences, eval mode), and the
    erring sequences' flags."""
    model.eval()
    wrong = []
    for i in range(0, len(labels), batch_size):
        outputs, _ = model(torch.as_tensor(frames[i : i + batch_size]))
        wrong.append((outputs["class_logits"][:, -1].argmax(-1).numpy() != labels[i : i + batch_size]))
    flags = np.concatenate(wrong)
    return 100.0 * float(flags.mean()), flags


def measure(checkpoints: Sequence[Path], test: int, seed: int, variants: Sequence[str]) -> list[dict[str, Any]]:
    pool = mnist_pool("test", None, env_name=ENV_ID)
    digits, labels = pool.images[:test], pool.labels[:test].astype(np.int64)
    models = {path: load_model(path) for path in checkpoints}
    records = []
    for name in variants:
        frames = variant_frames(name, digits, seed)
        for path, model in models.items():
            error, flags = class_error(model, frames, labels)
            records.append({"checkpoint": str(path), "variant": name, "test_sequences": int(test), "seed": seed,
                            "class_error": error, "wrong": int(flags.sum()), "data": str(pool.source)})
            print(f"{name:26s} {path.name:28s} {error:6.2f} %", file=sys.stderr, flush=True)
    return records


def label(checkpoint: str) -> str:
    """A checkpoint's column name: its file name, with its run folder's name when it is a run's ``last.pt``."""
    path = Path(checkpoint)
    return f"{path.parent.name}/{path.name}" if path.name == "last.pt" else path.name


def document(records: Sequence[dict[str, Any]], command: str) -> str:
    checkpoints = list(dict.fromkeys(r["checkpoint"] for r in records))
    variants = list(dict.fromkeys(r["variant"] for r in records))
    error = {(r["checkpoint"], r["variant"]): r["class_error"] for r in records}
    n = records[0]["test_sequences"]
    described = {r["checkpoint"]: r["description"] for r in records if r.get("description")}
    lines = [
        "# Occluded Moving MNIST from other generators: the shipped model's error",
        "",
        f"Generated {timestamp()} by `experiments/omm_shift.py`.",
        "",
        f"The first {n:,} MNIST test digits, in order, each on one trajectory drawn from seed {records[0]['seed']} (the same "
        "start and velocity in every variant), rebuilt once per variant with one detail of the generator changed "
        "the way another implementation of the data set's description might have it. Class error (%) after the 5th "
        "frame; the sequences are not the environment's test episodes (those are seeded per episode), so the row "
        "`ours` is the reference each other row is read against.",
        "",
        *[f"- `{label(c)}`: {described[c]}" for c in checkpoints if c in described],
        *([""] if described else []),
        "| variant | what changes | among `digit_augment`'s renderings | " + " | ".join(f"`{label(c)}`" for c in checkpoints) + " |",
        "|---|---|---|" + "---:|" * len(checkpoints),
    ]
    for name in variants:
        cells = []
        for c in checkpoints:
            e = error[(c, name)]
            delta = e - error[(c, "ours")] if (c, "ours") in error and name != "ours" else None
            cells.append(f"{e:.2f}" + (f" ({delta:+.2f})" if delta is not None else ""))
        lines.append(f"| `{name}` | {VARIANTS[name][0]} | {VARIANTS[name][3]} | " + " | ".join(cells) + " |")
    worst = {c: max((error[(c, v)] - error.get((c, "ours"), error[(c, v)]), v) for v in variants) for c in checkpoints}
    lines += ["", "In brackets: the change against `ours` in points. The largest rise per checkpoint: "
              + "; ".join(f"`{label(c)}` {d:+.2f} points (`{v}`)" for c, (d, v) in worst.items()) + ".",
              "", "## How these numbers were made", "", "```", command, "```", "",
              f"- Data: {records[0]['data']} (MNIST test digits 0-{n - 1})",
              "- Per-variant records (error counts) are in the JSON list beside this document."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--from-records", type=Path, help="records of an earlier run of this script (the JSON beside its "
                        "document): kept, and only checkpoints not among them are measured")
    parser.add_argument("--test", type=int, default=2000, help="test digits (the first N, in order)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the trajectories")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--describe", nargs="*", default=[], metavar="CHECKPOINT=TEXT",
                        help="what a checkpoint is, kept in its records and listed in the document")
    parser.add_argument("--doc", help="the Markdown document to write (records beside it as .json)")
    args = parser.parse_args(argv)
    descriptions = dict(pair.split("=", 1) for pair in args.describe)
    torch.set_num_threads(1)
    records = json.loads(args.from_records.read_text()) if args.from_records else []
    done = {r["checkpoint"] for r in records}
    if records and any((r["test_sequences"], r["seed"]) != (args.test, args.seed) for r in records):
        parser.error(f"{args.from_records} holds records of another --test or --seed than {args.test} and {args.seed}")
    if not records and not args.checkpoints:
        parser.error("give checkpoints to measure, or --from-records")
    records += measure([c for c in args.checkpoints if str(c) not in done], args.test, args.seed, args.variants)
    for record in records:
        if record["checkpoint"] in descriptions:
            record["description"] = descriptions[record["checkpoint"]]
    text = document(records, "python experiments/omm_shift.py " + shlex.join(sys.argv[1:] if argv is None else argv))
    publish(text, args.doc, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
