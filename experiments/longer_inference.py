"""What a longer inference gives a trained Shapes model: test AMI at every iteration when the test images are
shown for more iterations than the model trained with (the data setting ``eval_iterations``).

For each checkpoint it evaluates the first ``--images`` test images as training's own evaluation does (clean images,
batch norm's running statistics, masks started from a generator seeded 0: ``rladder_stream.training.train.evaluate``) and prints one row of
the AMI at iterations 1..N and the shuffled chance level. The first iterations equal a shorter evaluation's.

    python experiments/longer_inference.py runs/shapes/shapes-tagger-dense/seed0/last.pt --iterations 10

``--stream`` runs any Tagger (textured digits too) as a user streaming a static image does: the first test images,
clean, each fed for ``--iterations`` ticks to one ``forward`` from the masks' seeded start, and prints per tick the
AMI and the largest reconstruction |ẑ| (a Gaussian Tagger's iteration map can grow past the iterations it trained
for: docs/design.md#bounded-gaussian-reconstructions).

    python experiments/longer_inference.py runs/flat/last.pt --stream --iterations 20 --data textures=flat
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

import torch

from rladder_stream.reproduce.common import data_settings
from rladder_stream.streaming.checkpoint import load_model
from rladder_stream.training.metrics import batch_grouping_ami
from rladder_stream.training.settings import DataSettings
from rladder_stream.training.tasks import TASKS, task_for
from rladder_stream.training.train import evaluate


def per_iteration_ami(path: Path, iterations: int, images: int) -> list[float]:
    """Test AMI at iterations 1..``iterations``, then the shuffled chance level at the last."""
    model = load_model(path)
    task_type = TASKS[task_for(model.config)]
    if not task_type.takes_iterations:
        raise SystemExit(f"{path}: the {task_type.name} task does not show its images for several iterations")
    task = task_type(model.config, DataSettings(eval_iterations=iterations, test_sequences=images))
    metrics = evaluate(model, task, "test", images, images, torch.device("cpu"))
    return [metrics[f"ami_{i}"] for i in range(1, iterations + 1)] + [metrics["ami_shuffled"]]


@torch.no_grad()
def streamed(path: Path, ticks: int, images: int, data: Mapping[str, Any] | None = None) -> dict[str, list[float]]:
    """Per tick of a static image streamed ``ticks`` times: the AMI and the largest |ẑ| over the images (NaN
    counted as infinite)."""
    model = load_model(path).eval()
    task = TASKS[task_for(model.config)](model.config, DataSettings(test_sequences=images, **(data or {})))
    batch = next(iter(task.eval_batches("test", images, images)))
    x = batch["inputs"][:, :1].expand(-1, ticks, *batch["inputs"].shape[2:])
    outputs, _ = model(x, model.init_state(len(x), generator=torch.Generator().manual_seed(0)))
    truth = batch["true_groups"][:, 0].numpy()
    amis = [batch_grouping_ami(truth, outputs["groups"][:, t].float().numpy(), task.ami_ignore) for t in range(ticks)]
    z = outputs["reconstructions"].float().abs().nan_to_num(nan=float("inf"))
    return {"AMI": [s / max(n, 1) for s, n in amis], "largest |z|": [float(z[:, t].max()) for t in range(ticks)]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--iterations", type=int, default=10, help="iterations each test image is shown for (default 10)")
    parser.add_argument("--images", type=int, default=500, help="test images (default 500)")
    parser.add_argument("--stream", action="store_true", help="stream each static test image for --iterations ticks")
    parser.add_argument("--data", nargs="*", default=[], metavar="KEY=VALUE",
                        help="with --stream: data settings the runs trained with (textures, texture_scale, ...)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.stream:
        try:
            data = data_settings(args.data)
        except ValueError as exc:
            parser.error(str(exc))
        print("| checkpoint | per tick | " + " | ".join(f"tick {i}" for i in range(1, args.iterations + 1)) + " |")
        print("|---|---|" + "---:|" * args.iterations)
        for path in args.checkpoints:
            for name, values in streamed(path, args.iterations, args.images, data).items():
                print(f"| {path} | {name} | " + " | ".join(f"{v:.3g}" for v in values) + " |")
        return
    print("| checkpoint | " + " | ".join(f"AMI it. {i}" for i in range(1, args.iterations + 1)) + " | shuffled |")
    print("|---|" + "---:|" * (args.iterations + 1))
    for path in args.checkpoints:
        values = per_iteration_ami(path, args.iterations, args.images)
        print(f"| {path} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


if __name__ == "__main__":
    main()
