"""How a grouping checkpoint shares the ink between its groups: one group taking most of it, or one a shape?

For each checkpoint (a Tagger or RTagger trained on Shapes or another grouping task) it runs the test images
(clean, as the evaluation does; masks started from a generator seeded 0) and prints, at the last iteration, the mean
share of each image's ink pixels won (arg-max mask) by its largest group and by its second, and the test AMI over
the same images. Three shapes split evenly would give the largest group about a third of the ink; a model that
explains the image with one group gives it most.

    python benchmarks/group_shares.py runs/shapes/shapes-tagger-dense/seed0/last.pt --images 500
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rladder_stream.streaming.checkpoint import load_model
from rladder_stream.training.metrics import batch_grouping_ami
from rladder_stream.training.settings import DataSettings
from rladder_stream.training.tasks import TASKS, task_for


@torch.no_grad()
def ink_shares(path: Path, images: int) -> dict[str, float]:
    """Mean ink share of the largest and second-largest group at the last iteration, and the AMI there."""
    model = load_model(path).eval()
    task = TASKS[task_for(model.config)](model.config, DataSettings(test_sequences=images))
    batch = next(iter(task.eval_batches("test", images, images)))
    torch.manual_seed(0)
    outputs, _ = model(batch["inputs"])
    masks, truth = outputs["groups"][:, -1], batch["true_groups"][:, -1]
    won = masks.argmax(1)
    ink = batch["inputs"][:, -1] > 0.5
    counts = torch.stack([((won == k) & ink).flatten(1).sum(1) for k in range(masks.shape[1])], 1).float()
    shares = (counts / ink.flatten(1).sum(1, keepdim=True).clamp_min(1)).sort(1, descending=True).values
    ami, n = batch_grouping_ami(truth.numpy(), masks.numpy(), task.ami_ignore)
    return {"largest": shares[:, 0].mean().item(), "second": shares[:, 1].mean().item(), "ami": ami / max(n, 1.0)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--images", type=int, default=500, help="test images (default 500)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| checkpoint | ink share of the largest group | of the second | test AMI (last iteration) |")
    print("|---|---:|---:|---:|")
    for path in args.checkpoints:
        s = ink_shares(path, args.images)
        print(f"| {path} | {s['largest']:.3f} | {s['second']:.3f} | {s['ami']:.3f} |")


if __name__ == "__main__":
    main()
