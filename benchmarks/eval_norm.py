"""What batch norm's statistics at evaluation cost a trained Tagger (docs/design.md, "Batch normalisation at
evaluation"): test AMI per iteration with the checkpoint's own running statistics against other statistics with
the same weights.

- ``batch of B``: the statistics of the evaluated batch itself (``norm="batch_stats"``); with B equal to
  ``--images`` the batch is the whole test set, so every normalisation sees its iteration's population statistics.
- ``--calibrate N``: statistics pooled over the iterations (``norm="batch"``), the average over N training images
  noised as in training (what training's running averages estimate), and statistics kept per iteration
  (``norm="batch_tick"``: each iteration's mean, the variance pooled over the iterations), averaged over N training
  images, clean (what training does before every evaluation) or noised as in training. A model trained with pooled statistics
  (``norm="batch"``) is so scored as its per-iteration twin would be: training is the same for both
  (tests/test_train.py).

The evaluation is training's own (clean images, masks started from a generator seeded 0:
``rladder_stream.training.train.evaluate``).

    python benchmarks/eval_norm.py runs/shapes/shapes-tagger-dense/seed0/last.pt --images 1000 --batches 250 1000 --calibrate 12500
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rladder_stream.model.registry import build_model
from rladder_stream.reproduce.grouping import iterations
from rladder_stream.streaming.checkpoint import load_model
from rladder_stream.training.settings import DataSettings
from rladder_stream.training.tasks import TASKS, task_for
from rladder_stream.training.train import calibrate_norm_statistics, evaluate


RUNNING = ("running_mean", "running_var", "num_batches_tracked", "rows_trained")


def twin(model: torch.nn.Module, **fields: object) -> torch.nn.Module:
    """A copy of ``model`` with its config's ``fields`` changed (a normalisation): the same weights, running
    statistics of its own (none, or not yet trained)."""
    copy = build_model(model.config.replace(**fields))
    weights = {k: v for k, v in model.state_dict().items() if not k.endswith(RUNNING)}
    missing, unexpected = copy.load_state_dict(weights, strict=False)
    assert not unexpected and all(k.endswith(RUNNING) for k in missing), (missing, unexpected)
    return copy.train(model.training)


def use_batch_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """``model``'s twin that normalises with the batch's own statistics, in eval mode too (``norm="batch_stats"``)."""
    return twin(model, norm="batch_stats")


def per_tick_statistics(model: torch.nn.Module, images: int, batch_size: int, noised: bool = False) -> torch.nn.Module:
    """``model``'s twin with statistics kept per iteration (``norm="batch_tick"``), each iteration's the average over
    ``images`` training images, clean (as training's calibration before every evaluation) or noised as in training."""
    config = model.config
    task = TASKS[task_for(config)](config, DataSettings())
    ticks = task.train_batch(np.random.default_rng(0), 1)["inputs"].shape[1]
    copy = twin(model, norm="batch_tick", norm_ticks=ticks)
    calibrate_norm_statistics(copy, task, images, batch_size, 0, torch.device("cpu"), config.input_noise if noised else 0.0)
    return copy.eval()


def pooled_statistics(model: torch.nn.Module, images: int, batch_size: int) -> torch.nn.Module:
    """``model``'s twin with statistics pooled over the iterations (``norm="batch"``), the average over ``images``
    training images noised as in training: what training's own running averages estimate (a model trained with
    per-iteration statistics keeps none pooled)."""
    config = model.config
    task = TASKS[task_for(config)](config, DataSettings())
    copy = twin(model, norm="batch")
    calibrate_norm_statistics(copy, task, images, batch_size, 0, torch.device("cpu"), config.input_noise)
    return copy.eval()


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
    parser.add_argument("--calibrate", type=int, default=0, metavar="N",
                        help="also score statistics kept per iteration, averaged over N training images (default: not)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for path in args.checkpoints:
        model = load_model(path)
        rows.append((path, "running", amis(model, args.images, args.batch_size)))
        if args.calibrate:
            pooled = pooled_statistics(model, args.calibrate, args.batch_size)
            rows.append((path, f"pooled ({args.calibrate} noised training images)", amis(pooled, args.images, args.batch_size)))
            for noised in (True, False):
                per_tick = per_tick_statistics(model, args.calibrate, args.batch_size, noised=noised)
                what = f"per iteration ({args.calibrate} {'noised' if noised else 'clean'} training images)"
                rows.append((path, what, amis(per_tick, args.images, args.batch_size)))
        batch_stats = use_batch_statistics(model)
        rows += [(path, f"batch of {b}", amis(batch_stats, args.images, b)) for b in args.batches]
    n = len(rows[0][2]) - 1
    print("| checkpoint | statistics | " + " | ".join(f"AMI it. {i}" for i in range(1, n + 1)) + " | shuffled |")
    print("|---|---|" + "---:|" * (n + 1))
    for path, mode, values in rows:
        print(f"| {path} | {mode} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


if __name__ == "__main__":
    main()
