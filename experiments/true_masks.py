"""Does a trained Tagger's cost reward the true grouping? Each test image is run twice from the same model: its
masks started at random (as always) and started at the true segmentation (group k = true group k, pixels not
scored shared evenly). Printed per iteration: the low-level cost (the mixture's, against the clean image), the
AMI of each start and, for a model with a class path, the class error and class cost (cross-entropy, nats) of each
start.

If the true start does not lower the cost, the cost does not prefer the true grouping to the one the model makes;
if the AMI of the true start falls back over the iterations, the model undoes a true grouping it is handed; if the
true start's class error is lower, the class cost would reward finding the true grouping.

    python experiments/true_masks.py runs/brodatz/tmnist-tagger-dense/seed0/last.pt --images 500
    python experiments/true_masks.py runs/tmnist/flat-seed0/last.pt --data textures=flat   # a run on other plates
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

import torch

from rladder_stream.model.tagger import group_mixture_bce, group_mixture_nll, masks_from_groups
from rladder_stream.reproduce.common import data_settings
from rladder_stream.training.losses import batch_metrics, classification_nll
from rladder_stream.streaming.checkpoint import load_model
from rladder_stream.training.metrics import batch_grouping_ami
from rladder_stream.training.settings import DataSettings
from rladder_stream.training.tasks import TASKS, task_for


@torch.no_grad()
def compare(path: Path, images: int, data: Mapping[str, Any] | None = None) -> dict[str, list[float]]:
    """Per iteration: the cost and the AMI from the random start and from the true one; ``data``: the data settings
    the run trained with where they are not the defaults (e.g. ``{"textures": "flat"}``)."""
    model = load_model(path).eval()
    task = TASKS[task_for(model.config)](model.config, DataSettings(test_sequences=images, **(data or {})))
    batch = next(iter(task.eval_batches("test", images, images)))
    cost = group_mixture_bce if model.config.tagger_input == "binary" else group_mixture_nll
    x, truth = batch["inputs"], batch["true_groups"]
    rows: dict[str, list[float]] = {}
    for start in ("random", "true"):
        state = model.init_state(len(x), generator=torch.Generator().manual_seed(0))
        if start == "true":
            state["m"] = masks_from_groups(truth[:, 0], model.config.groups).to(state["m"].dtype)
        outputs, _ = model(x, state)
        ticks = outputs["groups"].shape[1]
        rows[f"cost, {start} start"] = [float(cost({k: v[:, t:t + 1] for k, v in outputs.items() if v.dim() >= 2},
                                                   batch["targets"][:, t:t + 1])) for t in range(ticks)]
        amis = [batch_grouping_ami(truth[:, t].numpy(), outputs["groups"][:, t].float().numpy(), task.ami_ignore)
                for t in range(ticks)]
        rows[f"AMI, {start} start"] = [s / max(n, 1) for s, n in amis]
        if "class_logits" in outputs and "labels" in batch:  # does the true grouping help the class path?
            upto = [{"class_logits": outputs["class_logits"][:, : t + 1]} for t in range(ticks)]  # scored at its last tick
            errors = [batch_metrics(o, batch)["class_error"] for o in upto]
            rows[f"class error %, {start} start"] = [wrong / max(n, 1) for wrong, n in errors]
            rows[f"class cost, {start} start"] = [float(classification_nll(o["class_logits"], batch["labels"])) for o in upto]
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--images", type=int, default=500, help="test images (default 500)")
    parser.add_argument("--data", nargs="*", default=[], metavar="KEY=VALUE",
                        help="data settings the runs trained with (textures, texture_scale, ...)")
    args = parser.parse_args(argv)
    try:
        data = data_settings(args.data)
    except ValueError as exc:
        parser.error(str(exc))
    torch.set_num_threads(1)
    for path in args.checkpoints:
        rows = compare(path, args.images, data)
        ticks = len(next(iter(rows.values())))
        print(f"\n{path} ({args.images} test images, clean)\n")
        print("| | " + " | ".join(f"iteration {t}" for t in range(1, ticks + 1)) + " |")
        print("|---|" + "---:|" * ticks)
        for name, values in rows.items():
            digits = 3 if name.startswith(("AMI", "class cost")) else 1  # mixture costs and errors in %: one decimal
            print(f"| {name} | " + " | ".join(f"{v:.{digits}f}" for v in values) + " |")


if __name__ == "__main__":
    main()
