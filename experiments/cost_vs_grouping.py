"""Does the training cost reward grouping? Runs' denoising cost and validation AMI side by side, by step window.

Reads the ``log.csv`` of grouping runs (``rladder-stream train`` writes one into every run folder) and prints,
for each window of ``--window`` steps, each run's mean training cost (the ``low_level`` rows: the mixture's
cross-entropy of the clean image, nats an image) and its validation AMI at the last iteration (the last
validation inside the window). If runs that group very differently train to the same cost, the cost is blind to
the grouping at that stage, and when a run starts to group is left to chance.

    python experiments/cost_vs_grouping.py docs/results/shapes_cpu/dense-s0-log.csv \\
        docs/results/shapes_cpu/dense-s1-log.csv docs/results/shapes_cpu/dense-s2-log.csv --window 4000
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path


def read_log(path: Path, metric: str = "ami_3") -> tuple[dict[int, float], dict[int, float]]:
    """``(train cost by step, validation <metric> by step)`` from one run's ``log.csv``."""
    cost, ami = {}, {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["kind"] == "train" and row["metric"] == "low_level":
                cost[int(row["step"])] = float(row["value"])
            elif row["kind"] == "valid" and row["metric"] == metric:
                ami[int(row["step"])] = float(row["value"])
    return cost, ami


def windows(cost: dict[int, float], ami: dict[int, float], window: int) -> dict[int, tuple[float, float | None]]:
    """Window start -> (mean training cost in the window, last validation AMI in it or None)."""
    out: dict[int, tuple[float, float | None]] = {}
    last = max(cost) if cost else 0
    for start in range(0, last, window):
        costs = [v for s, v in cost.items() if start < s <= start + window]
        amis = [(s, v) for s, v in ami.items() if start < s <= start + window]
        if costs:
            out[start] = (sum(costs) / len(costs), max(amis)[1] if amis else None)
    return out


def table(paths: list[Path], window: int, ami_only: bool = False) -> str:
    """The markdown table: one row per window, a cost and an AMI column per run (the AMI only with ``ami_only``)."""
    names = [p.parent.name if p.stem == "log" else p.stem.removesuffix("-log") for p in paths]  # run folder or file
    runs = {name: windows(*read_log(p), window) for name, p in zip(names, paths)}
    starts = sorted({s for w in runs.values() for s in w})
    columns = ("AMI",) if ami_only else ("cost", "AMI")
    head = "| steps | " + " | ".join(f"{name}: {c}" for name in runs for c in columns) + " |"
    lines = [head, "|---:|" + "---:|" * len(columns) * len(runs)]
    for s in starts:
        cells = []
        for w in runs.values():
            c, a = w.get(s, (math.nan, None))
            cells += [] if ami_only else [f"{c:.1f}" if not math.isnan(c) else ""]
            cells += [f"{a:.3f}" if a is not None else ""]
        lines.append(f"| {s + 1}-{s + window} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logs", nargs="+", type=Path, help="log.csv files of grouping runs")
    parser.add_argument("--window", type=int, default=4000, help="steps a window (default 4000)")
    parser.add_argument("--ami-only", action="store_true", help="leave out the cost (runs that logged it rarely)")
    args = parser.parse_args(argv)
    print(table(args.logs, args.window, args.ami_only))


if __name__ == "__main__":
    main()
