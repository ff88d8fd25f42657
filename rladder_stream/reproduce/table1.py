"""Reproduce the paper's Table 1 (docs/design.md#table-1): train every row for several seeds, then write the table.

    rladder-stream reproduce table1 --seeds 3 --size cpu --budget-s 900 --out runs/table1 \\
        --doc docs/results/table1.md --set train_sequences=50000 epochs=4

Each run is an ordinary :func:`rladder_stream.training.train.train` run in ``OUT/<config>/seed<k>``. A run whose
``results.json`` exists is skipped (after checking it was trained with the same settings) and a run folder
with only ``last.pt`` resumes inside ``train()``, so an interrupted reproduction continues where it stopped.
The document is :func:`table1_markdown`, a pure function of the runs' results dicts.

``--budget-s`` caps the training time of every run (``time_budget_s``); the learning-rate schedule still
follows ``epochs`` and ``train_sequences``, so a run the budget stops early ends before its schedule does
(the per-seed table shows steps done against steps planned). ``--set`` takes the training and model
settings of ``rladder-stream train``; a model setting never undoes the ablation a row stands for (e.g.
``prediction_weight=0.05`` changes every row except "RLadder w/o prediction task").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

from ..model.registry import get_config
from ..training.train import TrainConfig, parse_overrides
from .common import (NO_VALUE, Claim, Stat, add_records_option, checked_plan, claim_reaches, claim_worse, doc_header,
                     duration, format_stat, format_value, group_by_cell, planned_steps, provenance_lines, read_records,
                     records_requested, rederivation_argv, refuse_flagged, reproduce_command, reproduce_table,
                     row_model_overrides, table_parser, timestamp, write_document, write_records)


@dataclass(frozen=True)
class Row:
    """One row of Table 1: the registered configuration that trains it and what the paper reports."""

    config: str
    label: str
    short: str  # the name the claims use
    paper: str  # classification error % in the paper [unverified], or NO_VALUE
    class_error: bool  # the row reports classification error (its class cost is on)
    prediction: bool  # the row reports prediction error (its prediction cost is on)


# The paper's row order (docs/design.md#table-1).
TABLE1 = (
    Row("omm-static", "Optimal reconstruction and static classifier (gold standard)", "gold standard", "0.71 ± 0.03", True, False),
    Row("omm-temporal", "Temporal baseline", "temporal baseline", "2.02 ± 0.16", True, False),
    Row("omm-hrnn", "Hierarchical RNN (encoder only)", "hierarchical RNN", "1.60 ± 0.05", True, False),
    Row("omm-rladder-no-prediction", "RLadder w/o prediction task", "w/o prediction", "1.51 ± 0.21", True, False),
    Row("omm-rladder-no-d2e", "RLadder w/o decoder-to-encoder connections", "w/o d2e", "1.24 ± 0.05", True, True),
    Row("omm-rladder-no-classification", "RLadder w/o classification task", "w/o classification", NO_VALUE, False, True),
    Row("omm-rladder", "RLadder", "RLadder", "0.74 ± 0.09", True, True),
)
ROWS = {row.config: row for row in TABLE1}
CLASS, PREDICTION = "class_error", "prediction_mse"
DIGITS = {CLASS: 2, PREDICTION: 5}  # decimals of each metric in the document


def table1_claims(stats: Mapping[str, Mapping[str, Stat]]) -> list[Claim]:
    """The paper's Table 1 claims (docs/design.md#table-1) judged on ``stats[config][metric]``."""

    def get(config: str, metric: str) -> tuple[str, Stat | None]:
        return ROWS[config].short, stats.get(config, {}).get(metric)

    rladder = get("omm-rladder", CLASS)
    claims = [claim_reaches("The RLadder reaches the gold standard's classification error up to uncertainty",
                            rladder, get("omm-static", CLASS), DIGITS[CLASS])]
    for config, what in (("omm-hrnn", "the decoder (hierarchical RNN)"), ("omm-rladder-no-d2e", "the decoder-to-encoder connections"),
                         ("omm-rladder-no-prediction", "the prediction task")):
        claims.append(claim_worse(f"Without {what} the classification error rises above the RLadder's",
                                  get(config, CLASS), rladder, DIGITS[CLASS]))
    claims.append(claim_worse("The temporal baseline (the level the ablations rise towards) is worse than the RLadder",
                              get("omm-temporal", CLASS), rladder, DIGITS[CLASS]))
    claims.append(claim_worse("The classification task lowers the prediction error (RLadder < RLadder w/o classification task)",
                              get("omm-rladder-no-classification", PREDICTION), get("omm-rladder", PREDICTION), DIGITS[PREDICTION]))
    return claims


def group_results(results: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Results per Table 1 configuration, sorted by seed; other models are left out. Two results for the
    same configuration and seed raise ``ValueError``."""
    return group_by_cell(results, lambda r: r.get("model") if r.get("model") in ROWS else None, [row.config for row in TABLE1])


def row_stats(grouped: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Stat]]:
    """``{config: {metric: Stat}}`` for the metrics each row reports (a metric no run has is left out)."""
    stats: dict[str, dict[str, Stat]] = {}
    for row in TABLE1:
        shown = [m for m, on in ((CLASS, row.class_error), (PREDICTION, row.prediction)) if on]
        stats[row.config] = {}
        for metric in shown:
            values = tuple(float(r["test"][metric]) for r in grouped.get(row.config, ()) if metric in r.get("test", {}))
            if values:
                stats[row.config][metric] = Stat(values)
    return stats


def validation_curve(runs: Sequence[Mapping[str, Any]]) -> list[tuple[int, Stat]]:
    """A row's validation classification error over training: ``(step, Stat over seeds)`` at every step that each
    of its runs validated at (the runs' ``valid_history``)."""
    per_run = [{int(h["step"]): float(h[CLASS]) for h in r.get("valid_history", []) if CLASS in h} for r in runs]
    if not per_run or not all(per_run):
        return []
    steps = sorted(set.intersection(*(set(errors) for errors in per_run)))
    return [(step, Stat(tuple(errors[step] for errors in per_run))) for step in steps]


def last_fifth_change(curve: Sequence[tuple[int, Stat]]) -> tuple[int, Stat, Stat] | None:
    """``(step, at that step, at the end)`` from the first validation at or after four fifths of the curve's last
    step: how much a row still learned over the last fifth of its run (None with fewer than two points there)."""
    if len(curve) < 2:
        return None
    end_step, end = curve[-1]
    start = next((point for point in curve if point[0] >= 0.8 * end_step), None)
    if start is None or start[0] == end_step:
        return None
    return start[0], start[1], end


def validation_curves(grouped: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """The learning curves (validation classification error, mean ± std over seeds) of the rows that logged them,
    and whether each was still learning over its last fifth: the convergence check of a comparison at
    convergence (a change counts when it exceeds the sum of the two standard deviations)."""
    curves = {row.config: validation_curve(grouped.get(row.config, ())) for row in TABLE1 if row.class_error}
    curves = {config: curve for config, curve in curves.items() if curve}
    if not curves:
        return []
    lines = ["## Validation classification error over training", "",
             "Mean ± sample standard deviation over a row's seeds, on the validation sequences, at the steps where every",
             "seed of the row validated.", "",
             "| step | " + " | ".join(f"`{config}`" for config in curves) + " |", "|---:|" + "---:|" * len(curves)]
    by_step = {config: dict(curve) for config, curve in curves.items()}
    for step in sorted({step for curve in curves.values() for step, _ in curve}):
        cells = [format_stat(by_step[config][step], DIGITS[CLASS]) if step in by_step[config] else "" for config in curves]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines += ["", "Over the last fifth of each run (from the first validation at or after 80 % of the last step):", ""]
    for config, curve in curves.items():
        change = last_fifth_change(curve)
        if change is None:
            lines.append(f"- `{config}`: too few validations to tell.")
            continue
        step, start, end = change
        # the docs' rule for a difference: "holds" = the start errs more than the end (still falling)
        verdict = claim_worse("", ("start", start), ("end", end), DIGITS[CLASS]).verdict
        verdict = {"holds": "still falling", "does not hold": "rising"}.get(
            verdict, verdict if verdict.endswith("1 seed") else "flat (within the seeds' spread)")
        lines.append(f"- `{config}`: {format_stat(start, DIGITS[CLASS])} at step {step}, {format_stat(end, DIGITS[CLASS])} at "
                     f"step {curve[-1][0]}: **{verdict}**.")
    return lines + [""]


def table1_markdown(
    results: Sequence[Mapping[str, Any]],
    *,
    command: str | None = None,
    budget_s: float | None = None,
    generated: str | None = None,
) -> str:
    """Table 1 as markdown from the runs' results dicts (as ``train()`` returns and writes them).

    Per row: mean ± sample standard deviation over seeds of the test classification error (%) and the
    test prediction error (MSE per pixel, docs/design.md#occluded-moving-mnist) where the row has the task, the
    paper's number, wall
    time; then every seed's values, and the paper's claims judged on these numbers. Pure: no files, no clock.
    """
    grouped = group_results(results)
    stats = row_stats(grouped)
    found = [r for runs in grouped.values() for r in runs]
    lines = doc_header("Table 1: Occluded Moving MNIST, fully supervised", "table1", generated)
    lines += [
        "Test classification error (%) after the 5th frame and test prediction error (mean squared error per pixel",
        "between the predicted and the actual next occluded frame, averaged over predicted frames;",
        "docs/design.md#occluded-moving-mnist).",
        "Values are mean ± **sample** standard deviation over seeds (n − 1 denominator); with one seed only the",
        f"value is shown. {NO_VALUE}: the row does not have the task, or no run reported it.",
        "Paper numbers are [unverified] (docs/design.md#table-1): targets, not facts.",
        "",
        "| Row | config | seeds | classification error % | prediction error (MSE/pixel) | paper: classification error % [unverified] | wall time (all seeds) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in TABLE1:
        runs = grouped[row.config]
        wall = sum(float(r.get("wall_time_s", r.get("train_time_s", 0.0))) for r in runs)
        lines.append(
            f"| {row.label} | `{row.config}` | {len(runs)} | {format_stat(stats[row.config].get(CLASS), DIGITS[CLASS])} | "
            f"{format_stat(stats[row.config].get(PREDICTION), DIGITS[PREDICTION])} | {row.paper} | {duration(wall) if runs else NO_VALUE} |"
        )

    lines += ["", "## Claims (docs/design.md#table-1) at this budget", "",
              "A difference counts when the means differ by more than the sum of the two standard deviations;",
              "with one seed there is no spread, and nothing can be told.", ""]
    for claim in table1_claims(stats):
        lines.append(f"- **{claim.verdict}**: {claim.text}. {claim.detail}.")
    lines += ["", "How close the ablations come to the temporal baseline (the paper: \"almost\") is read from the table.", ""]

    lines += validation_curves(grouped)
    lines += ["## Per seed", "",
              "| Row | seed | classification error % | prediction error (MSE/pixel) | steps done / planned | training time | wall time |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for row in TABLE1:
        for r in grouped[row.config]:
            test = r.get("test", {})
            cls = format_value(test[CLASS], DIGITS[CLASS]) if row.class_error and CLASS in test else NO_VALUE
            pred = format_value(test[PREDICTION], DIGITS[PREDICTION]) if row.prediction and PREDICTION in test else NO_VALUE
            planned = planned_steps(r)
            wall = r.get("wall_time_s")
            lines.append(f"| {row.label} | {r.get('seed')} | {cls} | {pred} | {r.get('steps', NO_VALUE)} / "
                         f"{planned if planned is not None else NO_VALUE} | {duration(float(r.get('train_time_s', 0.0)))} | "
                         f"{duration(float(wall)) if wall is not None else NO_VALUE} |")

    lines += provenance_lines(found, command, budget_s)
    lines += [
        "- Each run's settings are in its `results.json` (`train_config`); model settings given with `--set` apply to every",
        "  row except where they would undo the row's ablation.",
        "",
    ]
    return "\n".join(lines)


def plan_table1(seeds: int, size: str, budget_s: float | None, settings: Sequence[str], out: str | os.PathLike,
                models: Sequence[str] | None = None) -> list[TrainConfig]:
    """The runs of Table 1 (of the rows ``models``, default all), row by row in the paper's order, seeds
    0..seeds-1 within a row."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    unknown = [m for m in models or () if m not in ROWS]
    if unknown:
        raise ValueError(f"Table 1 rows are {', '.join(ROWS)}; got {unknown}")
    train_fields, model_fields = parse_overrides(list(settings))
    refuse_flagged(train_fields)
    runs = []
    for row in (row for row in TABLE1 if models is None or row.config in models):
        applied, _ = row_model_overrides(row.config, size, model_fields)
        get_config(row.config, size=size, **applied)  # fail fast on bad settings
        for seed in range(seeds):
            runs.append(TrainConfig(model=row.config, size=size, seed=seed, time_budget_s=budget_s, model_overrides=applied,
                                    out=str(Path(out) / row.config / f"seed{seed}"), **train_fields))
    return runs


def reproduce_table1(seeds: int = 3, size: str = "cpu", budget_s: float | None = None, settings: Sequence[str] = (),
                     out: str | os.PathLike = "runs/table1", doc: str | os.PathLike = "docs/results/table1.md",
                     command: str | None = None, stream: TextIO | None = None, jobs: int = 1,
                     models: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Train (or reuse) every run of Table 1 (of the rows ``models``, default all; ``jobs`` at a time), write the
    markdown document ``doc`` (rows without runs show dashes); returns all results. Progress (which run, elapsed
    time, ETA) goes to ``stream`` (default: standard error)."""
    runs = plan_table1(seeds, size, budget_s, settings, out, models)
    document = lambda results: table1_markdown(results, command=command, budget_s=budget_s, generated=timestamp())  # noqa: E731
    rows = len(models) if models else len(TABLE1)
    return reproduce_table("table1", runs, f"{rows} rows x {seeds} seeds", budget_s, document, doc, stream, jobs)


def table1_cli_main(argv: list[str]) -> int:
    """``rladder-stream reproduce table1 [--seeds N] [--size S] [--budget-s SEC] [--set key=value ...] [--out DIR] [--doc FILE]
    | --from-records FILE``."""
    parser = table_parser("table1", __doc__, seeds=3)
    parser.add_argument("--models", nargs="+", default=None, choices=list(ROWS), metavar="CONFIG",
                        help="train only these rows (default: all 7)")
    add_records_option(parser)
    args = parser.parse_args(argv)
    if records_requested(parser, args):  # the records of several reproductions (other rows, other seed counts) in one document
        results = read_records(parser, args.from_records, args.add_runs)
        command = reproduce_command(rederivation_argv(argv, args.doc), "table1")
        write_document(args.doc, table1_markdown(results, command=command, budget_s=args.budget_s, generated=timestamp()))
        write_records(args.doc, results)
        print(f"wrote {args.doc}")
        return 0
    checked_plan(parser, lambda: plan_table1(args.seeds, args.size, args.budget_s, args.set, args.out, args.models))
    reproduce_table1(args.seeds, args.size, args.budget_s, args.set, args.out, args.doc, reproduce_command(argv, "table1"),
                     jobs=args.jobs, models=args.models)
    print(f"wrote {args.doc}")
    return 0
