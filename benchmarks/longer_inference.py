"""What a longer inference gives a trained Shapes model: test AMI at every iteration when the test images are
shown for more iterations than the model trained with (the data setting ``eval_iterations``).

For each checkpoint it evaluates the first ``--images`` test images as training's own evaluation does (clean images,
batch norm's running statistics, masks started from a generator seeded 0: ``rladder_stream.training.train.evaluate``) and prints one row of
the AMI at iterations 1..N and the shuffled chance level. The first iterations equal a shorter evaluation's.

    python benchmarks/longer_inference.py runs/shapes/shapes-tagger-dense/seed0/last.pt --iterations 10
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rladder_stream.streaming.checkpoint import load_model
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--iterations", type=int, default=10, help="iterations each test image is shown for (default 10)")
    parser.add_argument("--images", type=int, default=500, help="test images (default 500)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("| checkpoint | " + " | ".join(f"AMI it. {i}" for i in range(1, args.iterations + 1)) + " | shuffled |")
    print("|---|" + "---:|" * (args.iterations + 1))
    for path in args.checkpoints:
        values = per_iteration_ami(path, args.iterations, args.images)
        print(f"| {path} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


if __name__ == "__main__":
    main()
