"""Which test sequences each Occluded Moving MNIST checkpoint gets wrong, and how much the sets overlap (issue 26).

In docs/results/table1-cpu-3000.json four runs (the three w/o-prediction seeds and the RLadder's seed 2) erred on
exactly 521 of 5,000 test sequences while their validation errors and forecasts differed. Independent models tie
like that rarely; a block of sequences every model misses, or an evaluation that does not depend on the model,
would make it common. This script recomputes each checkpoint's test error as training does (whole sequences,
eval mode, the class at the last tick), checks the count against the run's ``results.json``, and tabulates:

- per checkpoint: errors, over the sequences the run itself tested too, and per 1,000 sequences; how many
  errors every checkpoint shares;
- per pair: the shared errors against the count independent models would share (``n1 * n2 / N``), the sequences
  on which exactly one errs (``D``) and the chance of equal counts for two models that err equally often.

    RLADDER_STREAM_DATA=../shared/data python experiments/error_sets.py runs/check521/*/seed*/last.pt \\
        --test 10000 --doc docs/results/error_sets-cpu-3000.md

Records (one per checkpoint, with the erring sequences' indices) go beside the document as ``.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from rladder_stream import load_checkpoint, load_model
from rladder_stream.reproduce.common import timestamp, write_document, write_records
from rladder_stream.training.settings import DataSettings
from rladder_stream.training.tasks import TASKS, task_for

BLOCK = 1000  # test sequences per block in the per-block error counts (is there a block every model misses?)


@torch.no_grad()
def wrong_flags(model: torch.nn.Module, task: Any, limit: int, batch_size: int = 500) -> np.ndarray:
    """``bool [limit]``: whether the class at the last tick is wrong for each test sequence (as training's test)."""
    model.eval()
    flags = []
    for batch in task.eval_batches("test", batch_size, limit):
        outputs, _ = model(batch["inputs"])
        flags.append((outputs["class_logits"][:, -1].argmax(-1) != batch["labels"]).numpy())
    return np.concatenate(flags)


def record_for(path: Path, test: int) -> dict[str, Any]:
    """One checkpoint's erring test sequences, with the run's own reported test error beside them (when its
    ``results.json`` sits in the checkpoint's folder)."""
    torch.manual_seed(0)
    model = load_model(path)
    _, _, extra = load_checkpoint(path)
    task = TASKS[task_for(model.config)](model.config, DataSettings(test_sequences=test))
    wrong = wrong_flags(model, task, test)
    results = path.parent / "results.json"
    run = json.loads(results.read_text()) if results.exists() else {}
    reported = run.get("test", {}).get("class_error")
    run_test = min((run.get("train_config") or {}).get("test_sequences") or test, test)  # the sequences the run tested
    return {"checkpoint": str(path), "model": model.config.name, "seed": (extra.get("train_config") or {}).get("seed"),
            "step": extra.get("step"), "test_sequences": int(wrong.size), "errors": int(wrong.sum()),
            "class_error": 100.0 * float(wrong.mean()), "reported_class_error": reported,
            "run_test_sequences": int(run_test), "run_test_errors": int(wrong[:run_test].sum()),
            "errors_per_block": [int(b.sum()) for b in np.array_split(wrong, -(-wrong.size // BLOCK))],
            "wrong": np.flatnonzero(wrong).tolist()}


def overlaps(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every pair's shared errors, the count expected if their errors were independent draws, and over the sequences
    both runs tested: the shared errors, the sequences on which exactly one errs (``D``) and how likely equal counts
    are for two models that err equally often with that disagreement (the sum of ``D`` signs: ``1 / sqrt(2 pi D)``)."""
    rows = []
    for a, b in itertools.combinations(range(len(records)), 2):
        ra, rb = records[a], records[b]
        n = ra["test_sequences"]
        run_n = min(ra["run_test_sequences"], rb["run_test_sequences"])
        wa, wb = set(ra["wrong"]), set(rb["wrong"])
        wa_run, wb_run = {i for i in wa if i < run_n}, {i for i in wb if i < run_n}
        disagree = len(wa_run ^ wb_run)
        rows.append({"a": a, "b": b, "shared": len(wa & wb), "independent": ra["errors"] * rb["errors"] / n,
                     "run_sequences": run_n, "run_shared": len(wa_run & wb_run), "run_disagree": disagree,
                     "tie_chance": 1.0 / math.sqrt(2.0 * math.pi * disagree) if disagree else 1.0})
    return rows


def document(records: Sequence[dict[str, Any]], command: str) -> str:
    common = set.intersection(*(set(r["wrong"]) for r in records)) if records else set()
    lines = [
        "# Which test sequences the Occluded Moving MNIST checkpoints get wrong",
        "",
        f"Generated {timestamp()} by `{command}` (experiments/error_sets.py). Test error recomputed from each "
        "checkpoint as training's test does (whole sequences, eval mode, the class at the last tick); over the sequences "
        "the run itself tested it must equal the run's results.json.",
        "",
        "| # | checkpoint | model | seed | step | errors | test error % | errors in the run's own test (%) | "
        "results.json % | errors per 1,000 sequences |",
        "|---:|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for i, r in enumerate(records):
        reported = "—" if r["reported_class_error"] is None else f"{r['reported_class_error']:.2f}"
        lines.append(f"| {i} | `{r['checkpoint']}` | `{r['model']}` | {r['seed']} | {r['step']} | {r['errors']} | "
                     f"{r['class_error']:.2f} | {r['run_test_errors']} of {r['run_test_sequences']} "
                     f"({100.0 * r['run_test_errors'] / r['run_test_sequences']:.2f}) | {reported} | "
                     f"{', '.join(map(str, r['errors_per_block']))} |")
    lines += ["", f"Sequences every checkpoint gets wrong: {len(common)}.", "",
              "| pair | shared errors | expected if independent (n1 n2 / N) | in the runs' own test: shared | "
              "exactly one errs (D) | chance of equal counts, 1/√(2πD) |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {o['a']}–{o['b']} | {o['shared']} | {o['independent']:.0f} | {o['run_shared']} of {o['run_sequences']} | "
              f"{o['run_disagree']} | {o['tie_chance']:.3f} |" for o in overlaps(records)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--test", type=int, default=5000, help="test sequences (the runs' test_sequences)")
    parser.add_argument("--doc", type=Path, default=Path("docs/results/error_sets.md"))
    args = parser.parse_args(argv)
    records = [record_for(path, args.test) for path in args.checkpoints]
    for r in records:
        print(f"{r['checkpoint']}: {r['errors']} wrong of {r['test_sequences']} ({r['class_error']:.2f} %; "
              f"results.json {r['reported_class_error']})")
    command = "python experiments/error_sets.py " + " ".join(sys.argv[1:] if argv is None else argv)
    write_document(args.doc, document(records, command))
    write_records(args.doc, records)
    print(document(records, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
