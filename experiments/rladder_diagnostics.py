"""What an Occluded Moving MNIST RLadder's decoder gives its encoder (issue 26): two diagnostics per checkpoint.

1. **The gradients in the encoder.** On training batches, the gradient that the weighted class cost and the weighted
   prediction cost each send into the encoder's parameters (the levels and the top: what the two tasks share), their
   norms, and the cosine between them: a negative cosine means the prediction task pulls the shared encoder against
   the classes; near 0, past each other; positive, the same way.
2. **What the feedback carries.** Test class error with the decoder-to-encoder feedback as trained, with each
   stream fed another stream's feedback (``d^{t-1}`` rolled by one along the batch at every tick), and with the
   feedback set to zero. If swapping costs little, the classes hardly use what the feedback says about this sequence.

    RLADDER_STREAM_DATA=../shared/data python experiments/rladder_diagnostics.py runs/warm/*/last.pt \\
        --doc docs/results/rladder_diagnostics.md

Records (one per checkpoint) go beside the document as ``.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from rladder_stream import load_checkpoint, load_model
from rladder_stream.training.losses import ladder_costs
from rladder_stream.reproduce.common import publish, timestamp
from rladder_stream.training.settings import DataSettings
from rladder_stream.training.tasks import TASKS, task_for

SHARED = ("encoders.", "top_encoder.")  # the parameters both tasks train: the encoder's levels and its top


def encoder_gradients(model: torch.nn.Module, task: Any, batches: int, batch_size: int, seed: int = 0) -> dict[str, float]:
    """Norms of the weighted class and prediction costs' gradients in the shared encoder, and their cosine,
    accumulated over ``batches`` training batches (drawn from ``seed``; training mode, as in training)."""
    cfg = model.config
    params = [p for n, p in model.named_parameters() if n.startswith(SHARED)]
    sums = {"classification": [torch.zeros_like(p) for p in params], "prediction": [torch.zeros_like(p) for p in params]}
    weights = {"classification": cfg.class_weight, "prediction": cfg.prediction_weight}
    model.train()
    rng = np.random.default_rng([seed, 99])
    for _ in range(batches):
        batch = task.train_batch(rng, batch_size)
        outputs, _ = model(batch["inputs"])
        costs = ladder_costs(outputs, batch, cfg)
        for name in sums:
            if name not in costs or not weights[name]:
                continue
            grads = torch.autograd.grad(weights[name] * costs[name], params, retain_graph=True, allow_unused=True)
            for acc, g in zip(sums[name], grads):
                if g is not None:
                    acc += g / batches
    flat = {name: torch.cat([g.flatten() for g in grads]) for name, grads in sums.items()}
    norms = {name: float(v.norm()) for name, v in flat.items()}
    denominator = norms["classification"] * norms["prediction"]
    cosine = float(flat["classification"] @ flat["prediction"]) / denominator if denominator > 0 else float("nan")
    return {"class_grad_norm": norms["classification"], "prediction_grad_norm": norms["prediction"], "cosine": cosine}


@torch.no_grad()
def class_error(model: torch.nn.Module, task: Any, limit: int, change: Callable[[dict], dict] | None = None) -> float:
    """Test class error (%) over ``limit`` test sequences, stepping tick by tick; ``change`` rewrites the state
    between ticks (the feedback swapped or zeroed)."""
    model.eval()
    wrong = total = 0
    for batch in task.eval_batches("test", 500, limit):
        state = model.init_state(batch["inputs"].shape[0])
        for t in range(batch["inputs"].shape[1]):
            if change is not None and t > 0:
                state = change(state)
            outputs, state = model.step(batch["inputs"][:, t], state)
        labelled = batch["labels"] >= 0
        wrong += int(((outputs["class_logits"].argmax(-1) != batch["labels"]) & labelled).sum())
        total += int(labelled.sum())
    return 100.0 * wrong / max(total, 1)


def feedback_swapped(state: dict) -> dict:
    return {k: torch.roll(v, 1, dims=0) if k.endswith(".prev") else v for k, v in state.items()}


def feedback_zeroed(state: dict) -> dict:
    return {k: torch.zeros_like(v) if k.endswith(".prev") else v for k, v in state.items()}


def diagnose(path: Path, batches: int, batch_size: int, test: int) -> dict[str, Any]:
    torch.manual_seed(0)
    model = load_model(path)
    _, _, extra = load_checkpoint(path)
    cfg = model.config
    task = TASKS[task_for(cfg)](cfg, DataSettings(test_sequences=test))
    record: dict[str, Any] = {"checkpoint": str(path), "model": cfg.name, "step": extra.get("step"),
                              "prediction_weight": cfg.prediction_weight,
                              "decoder_input_detach": getattr(cfg, "decoder_input_detach", False),
                              "train_config": extra.get("train_config")}
    if cfg.decoder and cfg.predict:
        record.update(encoder_gradients(model, task, batches, batch_size))
    record["test_error"] = class_error(model, task, test)
    if cfg.decoder and cfg.decoder_to_encoder:
        record["test_error_feedback_swapped"] = class_error(model, task, test, feedback_swapped)
        record["test_error_feedback_zeroed"] = class_error(model, task, test, feedback_zeroed)
    return record


def document(records: Sequence[dict[str, Any]], command: str) -> str:
    def cell(r: dict, key: str, digits: int) -> str:
        return f"{r[key]:.{digits}f}" if key in r and r[key] == r[key] else "—"

    lines = ["# What the RLadder's decoder gives its encoder (Occluded Moving MNIST)", "",
             f"Generated {timestamp()} by `experiments/rladder_diagnostics.py`.", "",
             "Gradients: the weighted class and prediction costs' gradients in the shared encoder (levels and top), "
             "averaged over training batches, their norms and the cosine between them (negative: the prediction task "
             "pulls the encoder against the classes). Feedback: test class error as trained, with each stream fed "
             "another stream's decoder feedback, and with the feedback zeroed.", "",
             "| checkpoint | step | prediction weight | decoder reads encoder detached | class grad norm | prediction grad norm | cosine | "
             "test error % | feedback swapped | feedback zeroed |",
             "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| `{Path(r['checkpoint']).parent.name}` | {r.get('step', '—')} | {r['prediction_weight']:g} | "
                     f"{'yes' if r['decoder_input_detach'] else 'no'} | {cell(r, 'class_grad_norm', 3)} | "
                     f"{cell(r, 'prediction_grad_norm', 3)} | {cell(r, 'cosine', 3)} | {cell(r, 'test_error', 2)} | "
                     f"{cell(r, 'test_error_feedback_swapped', 2)} | {cell(r, 'test_error_feedback_zeroed', 2)} |")
    lines += ["", "## How these numbers were made", "", "```", command, "```", ""]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--batches", type=int, default=8, help="training batches the gradients are averaged over")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--test", type=int, default=2000, help="test sequences for the class errors")
    parser.add_argument("--doc", help="the Markdown document to write (records beside it as .json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    records = []
    for path in args.checkpoints:
        print(f"{path} ...", file=sys.stderr, flush=True)
        records.append(diagnose(path, args.batches, args.batch_size, args.test))
    text = document(records, "python experiments/rladder_diagnostics.py " + " ".join(sys.argv[1:] if argv is None else argv))
    publish(text, args.doc, records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
