"""What batch norm's statistics at evaluation cost a trained Tagger (docs/design.md, "Batch normalisation at
evaluation"): test AMI per iteration with the running statistics (pooled over the iterations, the registered
configurations' ``norm="batch"``) against the statistics of the evaluated batch itself (``norm="batch_stats"``).

With ``--batches`` equal to ``--images`` the batch is the whole test set, so every normalisation sees the
population statistics of its own iteration: what statistics kept per iteration would give. Otherwise the
evaluation is as training's own (clean images, masks started from a generator seeded 0:
``rladder_stream.train.evaluate``).

    python benchmarks/eval_norm.py runs/shapes/shapes-tagger-dense/seed0/last.pt --images 1000 --batches 250 1000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from rladder_stream.checkpoint import load_model
from rladder_stream.reproduce.grouping import iterations
from rladder_stream.settings import DataSettings
from rladder_stream.tasks import TASKS, task_for
from rladder_stream.train import evaluate


def use_batch_statistics(model: torch.nn.Module) -> None:
    """Every batch norm of ``model`` normalises with the batch's own statistics from now on, in eval mode too."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.track_running_stats, module.running_mean, module.running_var = False, None, None


def amis(model: torch.nn.Module, images: int, batch_size: int) -> list[float]:
    """Test AMI at every iteration, then the shuffled chance level at the last."""
    task = TASKS[task_for(model.config)](model.config, DataSettings(test_sequences=images))
    metrics = evaluate(model, task, "test", images, batch_size, torch.device("cpu"))
    return [metrics[key] for key in iterations({"test": metrics})] + [metrics["ami_shuffled"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--images", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--batch-size", type=int, default=250, help="evaluation batch with running statistics (default 250)")
    parser.add_argument("--batches", type=int, nargs="+", default=[250, 1000],
                        help="batch sizes evaluated with the batch's own statistics (default 250 1000)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for path in args.checkpoints:
        model = load_model(path)
        rows.append((path, "running", amis(model, args.images, args.batch_size)))
        use_batch_statistics(model)
        rows += [(path, f"batch of {b}", amis(model, args.images, b)) for b in args.batches]
    n = len(rows[0][2]) - 1
    print("| checkpoint | statistics | " + " | ".join(f"AMI it. {i}" for i in range(1, n + 1)) + " | shuffled |")
    print("|---|---|" + "---:|" * (n + 1))
    for path, mode, values in rows:
        print(f"| {path} | {mode} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


if __name__ == "__main__":
    main()
