"""Make a shipped checkpoint from a training run's ``last.pt``: weights and configuration only (no optimiser), the
matrices (tensors of two or more axes) stored as bfloat16 to halve the file, everything else (biases, scales,
normalisation statistics) as float32; then the test metrics of both files side by side, so the conversion's cost
is measured, not assumed (loading casts the weights back to float32).

    RLADDER_STREAM_DATA=../shared/data python experiments/ship_checkpoint.py runs/cells/lstm_relu+feedback-seed0/last.pt \\
        rladder_stream/pretrained/shapes-rtagger-sparse-cpu.pt --test 1000
"""

from __future__ import annotations

import argparse
from typing import Sequence

import torch

from rladder_stream import load_checkpoint, load_model
from rladder_stream.streaming.checkpoint import save_checkpoint
from rladder_stream.training.settings import DataSettings
from rladder_stream.training.tasks import TASKS, task_for
from rladder_stream.training.train import evaluate


def ship(source: str, target: str) -> None:
    """``target``: ``source``'s configuration and weights, matrices in bfloat16."""
    config, weights, _ = load_checkpoint(source)
    save_checkpoint(target, config, {k: v.to(torch.bfloat16) if v.is_floating_point() and v.dim() >= 2 else v
                                     for k, v in weights.items()})


def test_metrics(path: str, sequences: int) -> dict[str, float]:
    """The task's test metrics of a checkpoint (as training reports them: its stored statistics, masks seeded 0)."""
    model = load_model(path)
    task = TASKS[task_for(model.config)](model.config, DataSettings(test_sequences=sequences))
    return evaluate(model, task, "test", sequences, 500, torch.device("cpu"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a run's last.pt")
    parser.add_argument("target", help="the checkpoint to write")
    parser.add_argument("--test", type=int, default=1000, help="test sequences to compare the two files on")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    ship(args.source, args.target)
    for name, path in (("source", args.source), ("shipped", args.target)):
        metrics = test_metrics(path, args.test)
        print(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
