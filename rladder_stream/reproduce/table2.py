"""Reproduce the paper's Table 2 (docs/design.md#table-2): semi-supervised Occluded Moving MNIST, with and without Mean Teacher.

    rladder-stream reproduce table2 --seeds 2 --size cpu --budget-s 300 --out runs/table2

Rows: the static classifier on the optimal reconstruction, the temporal baseline and the RLadder. Columns:

- ``labelled``: the 1,000 labelled training sequences only (``labelled=1000 use_unlabelled=false``);
- ``unlabelled``: 1,000 labelled + 59,000 unlabelled, no Mean Teacher; ``labelled_fraction`` of every batch
  labelled, the rest unlabelled;
- ``mean-teacher``: the same data with the Mean Teacher consistency cost (``mean_teacher=true``).

Every column takes the same number of steps with the same number of labelled sequences per step: the
``labelled`` column's batch is the labelled share of the others' (``batch_size x labelled_fraction``, and
``train_sequences`` scaled alike). The class cost thus gets the same labelled data per step in every
column, and the other columns only add unlabelled sequences for the costs that read them.

In the static classifier and the temporal baseline no cost reads an unlabelled sequence, so their
``unlabelled`` column is their ``labelled`` column (as in the paper, whose two numbers are equal): it is not
trained again and the document says so. Every run adds Gaussian input noise of std ``NOISE`` (Mean Teacher
needs independently noised inputs; the other columns get the same noise so that only the data and the
consistency cost differ). Runs live in ``OUT/<config>/<column>/seed<k>`` and are reused or resumed as in
``reproduce table1``. The document is :func:`table2_markdown`, a pure function of the runs' results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..model.registry import get_config
from ..training.train import TrainConfig, parse_overrides
from .common import (NO_VALUE, Stat, checked_plan, claim_worse, doc_header, duration, format_stat, format_value,
                     group_by_cell, provenance_lines, refuse_flagged, reproduce_command, reproduce_table,
                     table_parser, timestamp)

LABELLED = 1000
NOISE = 0.1
CLASS, DIGITS = "class_error", 2  # the metric of every cell, and its decimals


@dataclass(frozen=True)
class Column:
    """One column of Table 2: the training settings that define it."""

    key: str
    label: str
    settings: Mapping[str, Any]


COLUMNS = (
    Column("labelled", "1k labelled only", {"labelled": LABELLED, "use_unlabelled": False, "mean_teacher": False}),
    Column("unlabelled", "1k labelled + 59k unlabelled, w/o Mean Teacher", {"labelled": LABELLED, "use_unlabelled": True, "mean_teacher": False}),
    Column("mean-teacher", "1k + 59k with Mean Teacher", {"labelled": LABELLED, "use_unlabelled": True, "mean_teacher": True}),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)


@dataclass(frozen=True)
class Row:
    """One row: its configuration, whether any of its costs reads unlabelled data, the paper's numbers."""

    config: str
    label: str
    learns_from_unlabelled: bool  # False: the "unlabelled" column equals the "labelled" one
    paper: tuple[str, str, str]  # [unverified], one per column


TABLE2 = (
    Row("omm-static", "Optimal reconstruction + static classifier", False, ("3.50 ± 0.28", "3.50 ± 0.28", "1.34 ± 0.04")),
    Row("omm-temporal", "Temporal baseline", False, ("10.86 ± 0.43", "10.86 ± 0.43", "3.14 ± 0.16")),
    Row("omm-rladder", "RLadder", True, ("10.49 ± 0.81", "5.20 ± 0.77", "1.69 ± 0.14")),
)
ROWS = {row.config: row for row in TABLE2}
# Settings a column defines: --set must not change them.
COLUMN_SETTINGS = {"labelled", "use_unlabelled", "mean_teacher"}


def column_of(result: Mapping[str, Any]) -> str | None:
    """Which column a run belongs to, read from its training settings."""
    tc = result.get("train_config") or {}
    for column in COLUMNS:
        if all(tc.get(k) == v for k, v in column.settings.items()):
            return column.key
    return None


def plan_table2(seeds: int, size: str, budget_s: float | None, settings: Sequence[str], out: str | Path) -> list[TrainConfig]:
    """The runs of Table 2, row by row and column by column, seeds 0..seeds-1 in each cell."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    train_fields, model_fields = parse_overrides(list(settings))
    refuse_flagged(train_fields)
    for key in train_fields:
        if key in COLUMN_SETTINGS:
            raise ValueError(f"{key} defines the columns of Table 2 and cannot be set")
    model_fields = {"input_noise": NOISE, **model_fields}
    defaults = TrainConfig()
    share = float(train_fields.get("labelled_fraction", defaults.labelled_fraction))
    batch, sequences = (int(train_fields.get(k, getattr(defaults, k))) for k in ("batch_size", "train_sequences"))
    if round(batch * share) < 1:
        raise ValueError(f"batch_size={batch} x labelled_fraction={share} leaves no labelled sequence per batch")
    # the labelled-only column: the labelled share of every batch, for as many steps
    labelled_only = {"batch_size": round(batch * share), "train_sequences": sequences * round(batch * share) // batch}
    runs = []
    for row in TABLE2:
        get_config(row.config, size=size, **model_fields)  # fail fast on bad settings
        for column in COLUMNS:
            if column.key == "unlabelled" and not row.learns_from_unlabelled:
                continue
            fields = {**train_fields, **(labelled_only if column.key == "labelled" else {})}
            for seed in range(seeds):
                runs.append(TrainConfig(model=row.config, size=size, seed=seed, time_budget_s=budget_s,
                                        model_overrides=dict(model_fields), out=str(Path(out) / row.config / column.key / f"seed{seed}"),
                                        **column.settings, **fields))
    return runs


def cell_stats(results: Sequence[Mapping[str, Any]], metric: str = CLASS) -> dict[tuple[str, str], Stat]:
    """``{(config, column): Stat}`` of a test metric; Table-2 runs only, one result per seed."""
    def cell_of(r: Mapping[str, Any]) -> tuple[str, str] | None:
        column, config = column_of(r), r.get("model")
        return None if column is None or config not in ROWS or metric not in r.get("test", {}) else (config, column)

    grouped = group_by_cell(results, cell_of)
    stats = {cell: Stat(tuple(float(r["test"][metric]) for r in runs)) for cell, runs in grouped.items()}
    for row in TABLE2:  # no cost reads unlabelled data: the column is the labelled-only one
        if not row.learns_from_unlabelled and (row.config, "labelled") in stats:
            stats.setdefault((row.config, "unlabelled"), stats[(row.config, "labelled")])
    return stats


def table2_markdown(results: Sequence[Mapping[str, Any]], *, command: str | None = None, budget_s: float | None = None,
                    generated: str | None = None) -> str:
    """Table 2 as markdown from the runs' results dicts: test classification error (%) per row and column,
    mean ± sample std over seeds, the paper's numbers, the claims of docs/design.md#table-2, every seed. Pure."""
    student, teacher = cell_stats(results), cell_stats(results, f"teacher_{CLASS}")
    lines = doc_header("Table 2: semi-supervised Occluded Moving MNIST", "table2", generated)
    lines += [
        "Test classification error (%) after the 5th frame; mean ± **sample** standard deviation over seeds. The",
        "Mean Teacher column gives the student (the trained network) and, after the slash, its teacher (the",
        "exponential moving average of the student's weights). Paper numbers are [unverified] (docs/design.md#table-2).",
        "",
        "| Row | " + " | ".join(c.label for c in COLUMNS) + " | paper: " + " / ".join(c.key for c in COLUMNS) + " [unverified] |",
        "|---|" + "---:|" * len(COLUMNS) + "---:|",
    ]
    for row in TABLE2:
        cells = []
        for column in COLUMNS:
            text = format_stat(student.get((row.config, column.key)), DIGITS)
            if column.key == "mean-teacher" and (row.config, column.key) in teacher:
                text += f" / {format_stat(teacher[(row.config, column.key)], DIGITS)}"
            if column.key == "unlabelled" and not row.learns_from_unlabelled and text != NO_VALUE:
                text += " (= 1k only)"
            cells.append(text)
        lines.append(f"| {row.label} | " + " | ".join(cells) + f" | {' / '.join(row.paper)} |")

    def cell(config: str, column: str) -> tuple[str, Stat | None]:
        return f"{ROWS[config].label.split(' +')[0]} [{column}]", student.get((config, column))

    claims = [
        claim_worse("The RLadder improves from unlabelled data through its prediction task alone",
                    cell("omm-rladder", "labelled"), cell("omm-rladder", "unlabelled"), DIGITS),
        claim_worse("The RLadder improves further with Mean Teacher",
                    cell("omm-rladder", "unlabelled"), cell("omm-rladder", "mean-teacher"), DIGITS),
        claim_worse("The temporal baseline improves with Mean Teacher",
                    cell("omm-temporal", "labelled"), cell("omm-temporal", "mean-teacher"), DIGITS),
        claim_worse("With Mean Teacher the temporal baseline is clearly outperformed by the RLadder",
                    cell("omm-temporal", "mean-teacher"), cell("omm-rladder", "mean-teacher"), DIGITS),
    ]
    lines += ["", "## Claims (docs/design.md#table-2) at this budget", "",
              "Judged on the students. A difference counts when the means differ by more than the sum of the two",
              "standard deviations; with one seed nothing can be told.", ""]
    lines += [f"- **{c.verdict}**: {c.text}. {c.detail}." for c in claims]

    lines += ["", "## Per seed", "", "| Row | column | seed | error % (student) | error % (teacher) | steps | training time | wall time |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    order = {(row.config, c): i for i, (row, c) in enumerate((r, c) for r in TABLE2 for c in COLUMN_KEYS)}
    found = sorted((r for r in results if column_of(r) and r.get("model") in ROWS),
                   key=lambda r: (order[(r["model"], column_of(r))], r.get("seed", 0)))
    for r in found:
        test = r.get("test", {})
        t = f"teacher_{CLASS}"
        lines.append(f"| {ROWS[r['model']].label} | {column_of(r)} | {r.get('seed')} | "
                     f"{format_value(test[CLASS], DIGITS) if CLASS in test else NO_VALUE} | {format_value(test[t], DIGITS) if t in test else NO_VALUE} | "
                     f"{r.get('steps', NO_VALUE)} | {duration(float(r.get('train_time_s', 0.0)))} | "
                     f"{duration(float(r['wall_time_s'])) if 'wall_time_s' in r else NO_VALUE} |")

    lines += provenance_lines(found, command, budget_s)
    lines += [
        f"- Labelled subset: {LABELLED} training digits, class-balanced, fixed by a seed (the same in every run); the",
        "  labelled-only column's batch is the labelled share of the others' batches, for as many steps;",
        f"  input noise std {NOISE} in every run unless the command sets `input_noise`",
        "- The static classifier and the temporal baseline have no cost that reads unlabelled data, so their",
        "  middle column is their first (not trained again). Each run's settings are in its `results.json`.",
        "",
    ]
    return "\n".join(lines)


def reproduce_table2(seeds: int = 2, size: str = "cpu", budget_s: float | None = None, settings: Sequence[str] = (),
                     out: str | Path = "runs/table2", doc: str | Path = "docs/results/table2.md", command: str | None = None,
                     stream=None, jobs: int = 1) -> list[dict[str, Any]]:
    """Train (or reuse) every run of Table 2 (``jobs`` at a time) and write ``doc``; returns all results."""
    runs = plan_table2(seeds, size, budget_s, settings, out)
    document = lambda results: table2_markdown(results, command=command, budget_s=budget_s, generated=timestamp())  # noqa: E731
    return reproduce_table("table2", runs, f"{len(TABLE2)} rows x {len(COLUMNS)} columns x {seeds} seeds", budget_s, document,
                           doc, stream, jobs)


def table2_cli_main(argv: list[str]) -> int:
    """``rladder-stream reproduce table2 [--seeds N] [--size S] [--budget-s SEC] [--set k=v ...] [--out DIR] [--doc FILE]``."""
    parser = table_parser("table2", __doc__, seeds=2)
    args = parser.parse_args(argv)
    checked_plan(parser, lambda: plan_table2(args.seeds, args.size, args.budget_s, args.set, args.out))
    reproduce_table2(args.seeds, args.size, args.budget_s, args.set, args.out, args.doc, reproduce_command(argv, "table2"), jobs=args.jobs)
    print(f"wrote {args.doc}")
    return 0
