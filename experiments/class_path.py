"""Can a Tagger's class path learn alone? (issue 27; docs/design.md#table-4)

In Table 4 at the paper's recipe (docs/results/table4-dense-cpu.md) the Tagger and the RTagger err on 77-80 % of the
test digits after 15 minutes of a core while the ConvNet errs on 13 %, and the RTagger trained with the class cost
alone (the Tagger's denoising weight 0) stays at chance. This script asks why, on the same data and noise: each arm
trains one model with the class cost alone (cross-entropy after the last iteration, Adam, gradient norm clipped at 5,
fresh training images every step), and the table gives the mean class cost over stretches of steps (ln 10 = 2.303 is
chance). Arms differ in the model (the ConvNet, the Tagger with the convolutional or the fully connected engine) and,
for a Tagger, in the masks it starts from: ``random`` (softmax over the groups of standard-normal noise, the
reference's and this package's start, which breaks the groups' symmetry and multiplies the error signal
``m (x - z)`` the engine reads by a random factor per pixel) or ``uniform`` (1/K everywhere: the groups stay
identical, so nothing is grouped; a diagnostic only).

    RLADDER_STREAM_DATA=/path/to/data OMP_NUM_THREADS=1 python experiments/class_path.py --doc docs/results/class_path.md

The document and its raw records (``.json`` beside it) are written together.
"""

from __future__ import annotations

import argparse
import math
import platform
import shlex
import sys
import time
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from rladder_stream.envs.textured_mnist import episode_source
from rladder_stream.model.registry import build_model, get_config
from rladder_stream.reproduce.common import publish, records_path, timestamp

#: arm name -> (config, the masks a Tagger starts from; None for the ConvNet)
ARMS: dict[str, tuple[str, str | None]] = {
    "convnet": ("tmnist-convnet", None),
    "tagger-conv, random masks": ("tmnist-tagger", "random"),
    "tagger-conv, uniform masks": ("tmnist-tagger", "uniform"),
    "tagger-dense, random masks": ("tmnist-tagger-dense", "random"),
    "tagger-dense, uniform masks": ("tmnist-tagger-dense", "uniform"),
}
STEPS, BATCH, LR, CLIP = 400, 32, 2e-3, 5.0
WINDOW = 100  # steps per reported stretch
TEXTURE_SCALE = 2.0  # Table 4's data (docs/results/table4-dense-cpu.md)
CHANCE = math.log(10)


def train_class_only(config: str, masks: str | None, size: str, steps: int, seed: int,
                     data_dir: str | None = None) -> list[float]:
    """The class cost at every step of training ``config`` with the class cost alone (see the module docstring)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = get_config(config, size=size, prediction_weight=0.0)
    model = build_model(cfg)
    optimiser = torch.optim.Adam(model.parameters(), LR)
    source = episode_source("train", data_dir=data_dir, texture_scale=TEXTURE_SCALE)
    costs = []
    for _ in range(steps):
        seqs = source.episodes(rng, BATCH, None)
        images, labels = torch.as_tensor(seqs["frames"][:, :-1]), torch.as_tensor(seqs["labels"])
        noisy = images + cfg.input_noise * torch.randn_like(images[:, :1])  # one corruption per image, as training
        state = model.init_state(BATCH)
        if masks == "uniform":
            state["m"] = torch.full_like(state["m"], 1.0 / cfg.groups)
        outputs, _ = model(noisy, state)
        cost = torch.nn.functional.cross_entropy(outputs["class_logits"][:, -1].float(), labels)
        optimiser.zero_grad()
        cost.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimiser.step()
        costs.append(cost.item())
    return costs


def markdown(records: Sequence[Mapping[str, Any]], command: str, meta: Mapping[str, Any]) -> str:
    """The document: the mean class cost per stretch of steps, an arm a row."""
    steps = max(len(r["costs"]) for r in records)
    stretches = [(a, min(a + WINDOW, steps)) for a in range(0, steps, WINDOW)]
    lines = ["# Can a Tagger's class path learn alone? (issue 27)", "",
             f"Generated {meta['generated']} by `experiments/class_path.py`; raw records: "
             f"[{records_path(meta['doc']).name}]({records_path(meta['doc']).name}).", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| arm | config | size | " + " | ".join(f"steps {a + 1}-{b}" for a, b in stretches) + " |",
             "|---|---|---|" + "---:|" * len(stretches)]
    for r in records:
        means = [f"{np.mean(r['costs'][a:b]):.3f}" for a, b in stretches]
        lines.append(f"| {r['arm']} | `{r['config']}` | {r['size']} | " + " | ".join(means) + " |")
    lines += ["", f"Chance: ln 10 = {CHANCE:.3f}.", "", "## How these numbers were made", "", "```", command, "```", "",
              f"- {steps} steps of {BATCH} images a run, Adam {LR:g}, gradient norm clipped "
              f"at {CLIP:g}; Brodatz plates at texture scale {TEXTURE_SCALE:g}, the config's training noise; seed {meta['seed']}",
              f"- Hardware: {meta['hardware']}; {meta['wall_s']:.0f} s of wall time", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS), metavar="ARM")
    parser.add_argument("--size", default="tiny", help="model size of every arm (default tiny)")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--doc", default=None, help="markdown file to write (its records beside it); default: print")
    args = parser.parse_args(argv)
    started, records = time.perf_counter(), []
    for arm in args.arms:
        config, masks = ARMS[arm]
        begun = time.perf_counter()
        costs = train_class_only(config, masks, args.size, args.steps, args.seed, args.data_dir)
        records.append({"arm": arm, "config": config, "masks": masks, "size": args.size, "seed": args.seed, "costs": costs})
        print(f"{arm}: last {WINDOW} steps {np.mean(costs[-WINDOW:]):.3f} ({time.perf_counter() - begun:.0f} s)",
              file=sys.stderr, flush=True)
    meta = {"generated": timestamp(), "doc": args.doc or "class_path.md", "seed": args.seed,
            "hardware": f"CPU {platform.machine()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}",
            "wall_s": time.perf_counter() - started}
    text = markdown(records, "python experiments/class_path.py " + shlex.join(list(argv if argv is not None else sys.argv[1:])), meta)
    publish(text, args.doc, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
