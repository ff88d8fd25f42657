"""The grouping sanity test (docs/design.md#the-rtagger): Taggers and RTaggers on Shapes, several seeds, then the
document. Not a table of the paper: the reference Tagger's own easiest task, which a model that groups at all
must solve.

    rladder-stream reproduce shapes --models shapes-tagger-dense --seeds 3 --budget-s 3600 --out runs/shapes \\
        --doc docs/results/shapes_cpu.md --set epochs=40 train_sequences=50000 batch_size=32 lr=0.001 \\
        lr_schedule=constant valid_sequences=500 test_sequences=1000

The runs are ordinary ``train()`` runs in ``OUT/<config>/seed<k>`` (reused or resumed as every table's are).
Beside the document goes ``<doc>.json``, the list of the runs' results records; ``--from-records FILE`` writes
the document from such a list without training, so a committed document can be re-derived.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

from ..registry import get_config
from ..train import TrainConfig, parse_overrides
from .common import (NO_VALUE, Claim, Stat, checked_plan, claim_worse, doc_header, duration, format_stat, format_value,
                     group_by_cell, provenance_lines, refuse_flagged, reproduce_command, reproduce_table, table_parser,
                     timestamp, write_document)

TARGET_AMI = 0.6  # the bar: test AMI at the last iteration
DIGITS = 3


@dataclass(frozen=True)
class Row:
    config: str
    label: str


ROWS = (
    Row("shapes-tagger-dense", "Tagger, fully connected engine (the reference's)"),
    Row("shapes-rtagger-dense", "RTagger, fully connected LSTM engine"),
    Row("shapes-tagger", "Tagger, convolutional engine"),
    Row("shapes-rtagger", "RTagger, convolutional LSTM engine"),
)
CONFIGS = {row.config: row for row in ROWS}


def iterations(result: Mapping[str, Any]) -> list[str]:
    """The per-iteration AMI keys of a result's test metrics, first to last (``ami_1``, ``ami_2``, ...)."""
    keys = [k for k in result.get("test", {}) if k.startswith("ami_") and k[4:].isdigit()]
    return sorted(keys, key=lambda k: int(k[4:]))


def _stat(runs: Sequence[Mapping[str, Any]], key: str) -> Stat | None:
    values = tuple(float(r["test"][key]) for r in runs if key in r.get("test", {}))
    return Stat(values) if values else None


def last_ami(runs: Sequence[Mapping[str, Any]]) -> Stat | None:
    """The test AMI at each run's last iteration, over seeds."""
    values = tuple(float(r["test"][iterations(r)[-1]]) for r in runs if iterations(r))
    return Stat(values) if values else None


def trained_iterations(runs: Sequence[Mapping[str, Any]]) -> int:
    """How many iterations the runs trained with (their records' ``iterations`` setting; the environment's 3 when
    unset). Runs trained with different numbers are refused: their columns would not mean one thing."""
    from rladder_stream.envs.shapes import N_ITERATIONS

    found = {(r.get("train_config") or {}).get("iterations") or N_ITERATIONS for r in runs}
    if len(found) > 1:
        raise ValueError(f"the runs trained with different numbers of iterations: {sorted(found)}")
    return found.pop() if found else N_ITERATIONS


def claim_at_least(text: str, name: str, stat: Stat | None, bar: float) -> Claim:
    """``stat`` reaches ``bar``: holds when mean − std >= bar, fails when mean + std < bar (the docs' rule: a
    difference counts when it exceeds the spread), else cannot tell; one seed cannot tell."""
    if stat is None:
        return Claim(text, "cannot tell", f"no results for {name}")
    shown = f"{name} {format_stat(stat, DIGITS)} against {format_value(bar, DIGITS)}"
    if stat.n < 2:
        return Claim(text, "cannot tell with 1 seed", shown)
    if stat.mean - stat.std >= bar:
        return Claim(text, "holds", shown)
    if stat.mean + stat.std < bar:
        return Claim(text, "does not hold", shown)
    return Claim(text, f"cannot tell with {stat.n} seeds", f"{shown}: the bar is within one std of the mean")


def shapes_markdown(results: Sequence[Mapping[str, Any]], *, command: str | None = None, budget_s: float | None = None,
                    generated: str | None = None) -> str:
    """The document from the runs' results dicts: per model the test AMI per iteration and its chance level
    (mean ± sample std over seeds), the claims, each seed, and the validation AMI over training. Pure."""
    grouped = group_by_cell(results, lambda r: r.get("model") if r.get("model") in CONFIGS else None, list(CONFIGS))
    shown = [row for row in ROWS if grouped[row.config]]
    found = [r for row in shown for r in grouped[row.config]]
    n_iter = max((len(iterations(r)) for r in found), default=0)
    trained = trained_iterations(found)
    longer = (f" The test runs the iterations on to {n_iter} (the data setting `eval_iterations`): the columns past {trained}"
              f" show what a longer inference gives the model trained with {trained}.") if n_iter > trained else ""
    lines = doc_header("Shapes: does the model group?", "shapes", generated)
    lines += [
        "Shapes (`envs/shapes.py`): 20×20 binary images of three shapes of equal intensity (a square outline and two",
        "triangles), each pixel flipped with probability 0.2 (one corruption per image, kept over the iterations); the",
        f"model learns to denoise it in {trained} iterations with K = 4 groups.{longer} AMI (adjusted mutual information) of each pixel's most",
        "likely group against the true shape, over the shapes' pixels (background and overlaps not scored), on the",
        "test images. AMI corrects for chance: a grouping unrelated to the image scores 0 on average. The harder",
        "chance level is `shuffled`: each image's last-iteration grouping scored against another image's truth",
        "(what a model earns from where shapes usually are, not from what it sees).",
        "Values are mean ± **sample** standard deviation over seeds.",
        "",
        "| Model | config | seeds | " + " | ".join(f"AMI iteration {i}" for i in range(1, n_iter + 1))
        + " | chance (shuffled) | steps | training time (per run) |",
        "|---|---|---:|" + "---:|" * n_iter + "---:|---:|---:|",
    ]
    for row in shown:
        runs = grouped[row.config]
        amis = [format_stat(_stat(runs, f"ami_{i}"), DIGITS) for i in range(1, n_iter + 1)]
        steps = ", ".join(str(r.get("steps", NO_VALUE)) for r in runs)
        train_time = ", ".join(duration(float(r.get("train_time_s", 0.0))) for r in runs)
        lines.append(f"| {row.label} | `{row.config}` | {len(runs)} | " + " | ".join(amis)
                     + f" | {format_stat(_stat(runs, 'ami_shuffled'), DIGITS)} | {steps} | {train_time} |")

    lines += ["", f"## Claims at this budget", "",
              "A difference counts when it exceeds the sum of the standard deviations; a bar counts as reached when the",
              "mean less one standard deviation reaches it.", ""]
    for row in shown:
        runs = grouped[row.config]
        last, chance = last_ami(runs), _stat(runs, "ami_shuffled")
        at_trained = ([claim_at_least(f"`{row.config}` groups Shapes at the last trained iteration ({trained}): test AMI ≥ {TARGET_AMI}",
                                      row.config, _stat(runs, f"ami_{trained}"), TARGET_AMI)] if n_iter > trained else [])
        for claim in (*at_trained,
                      claim_at_least(f"`{row.config}` groups Shapes: test AMI at the last iteration ({n_iter}) ≥ {TARGET_AMI}",
                                     row.config, last, TARGET_AMI),
                      claim_worse(f"`{row.config}` groups above its shuffled chance level", (row.config, last),
                                  ("shuffled", chance), DIGITS)):
            lines.append(f"- **{claim.verdict}**: {claim.text}. {claim.detail}.")
        if last is not None and chance is not None and chance.mean > 0:
            lines.append(f"  Ratio of the means, last-iteration AMI over the shuffled chance level: {last.mean / chance.mean:.1f}.")

    lines += ["", "## Per seed", "",
              "| config | seed | " + " | ".join(f"AMI it. {i}" for i in range(1, n_iter + 1)) + " | shuffled | steps | training time |",
              "|---|---:|" + "---:|" * n_iter + "---:|---:|---:|"]
    for row in shown:
        for r in grouped[row.config]:
            test = r.get("test", {})
            amis = [format_value(test[f"ami_{i}"], DIGITS) if f"ami_{i}" in test else NO_VALUE for i in range(1, n_iter + 1)]
            shuffled = format_value(test["ami_shuffled"], DIGITS) if "ami_shuffled" in test else NO_VALUE
            lines.append(f"| `{row.config}` | {r.get('seed')} | " + " | ".join(amis) + f" | {shuffled} | {r.get('steps', NO_VALUE)} | "
                         f"{duration(float(r.get('train_time_s', 0.0)))} |")

    lines += _curves(shown, grouped)
    lines += provenance_lines(found, command, budget_s)
    lines += ["- Each run's settings are in its record (`train_config`) in the JSON list beside this document.", ""]
    return "\n".join(lines)


def _curves(shown: Sequence[Row], grouped: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Validation AMI at the last iteration over training, one column per run (the runs' ``valid_history``)."""
    columns = [(row.config, r) for row in shown for r in grouped[row.config] if r.get("valid_history")]
    if not columns:
        return []
    history = {(config, r.get("seed")): {h["step"]: h for h in r["valid_history"]} for config, r in columns}
    steps = sorted({step for per_run in history.values() for step in per_run})
    lines = ["", "## Validation AMI at the last iteration over training", "",
             "| step | " + " | ".join(f"`{config}` seed {r.get('seed')}" for config, r in columns) + " |",
             "|---:|" + "---:|" * len(columns)]
    for step in steps:
        cells = []
        for config, r in columns:
            h = history[(config, r.get("seed"))].get(step)
            keys = iterations({"test": h or {}})
            cells.append(format_value(h[keys[-1]], DIGITS) if keys else "")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines


def plan_shapes(models: Sequence[str], seeds: int, size: str, budget_s: float | None, settings: Sequence[str],
                out: str | os.PathLike) -> list[TrainConfig]:
    """The runs, model by model, seeds 0..seeds-1 within a model."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    unknown = [m for m in models if m not in CONFIGS]
    if unknown:
        raise ValueError(f"not a Shapes model: {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    train_fields, model_fields = parse_overrides(list(settings))
    refuse_flagged(train_fields)
    runs = []
    for model in models:
        get_config(model, size=size, **model_fields)  # fail fast on bad settings
        for seed in range(seeds):
            runs.append(TrainConfig(model=model, size=size, seed=seed, time_budget_s=budget_s, model_overrides=dict(model_fields),
                                    out=str(Path(out) / model / f"seed{seed}"), **train_fields))
    return runs


def reproduce_shapes(models: Sequence[str], seeds: int = 3, size: str = "cpu", budget_s: float | None = None,
                     settings: Sequence[str] = (), out: str | os.PathLike = "runs/shapes",
                     doc: str | os.PathLike = "docs/results/shapes.md", command: str | None = None,
                     stream: TextIO | None = None, jobs: int = 1) -> list[dict[str, Any]]:
    """Train (or reuse) the runs, write the document and its records; returns the results."""
    runs = plan_shapes(models, seeds, size, budget_s, settings, out)
    document = lambda results: shapes_markdown(results, command=command, budget_s=budget_s, generated=timestamp())  # noqa: E731
    return reproduce_table("shapes", runs, f"{len(models)} models x {seeds} seeds", budget_s, document, doc, stream, jobs)


def shapes_cli_main(argv: list[str]) -> int:
    """``rladder-stream reproduce shapes [--models M ...] [--seeds N] ... | --from-records FILE``."""
    parser = table_parser("shapes", __doc__, seeds=3)
    parser.set_defaults(doc="docs/results/shapes.md")
    parser.add_argument("--models", nargs="+", default=[ROWS[0].config], choices=list(CONFIGS),
                        help=f"the Shapes configs to train (default {ROWS[0].config})")
    parser.add_argument("--from-records", metavar="FILE", help="write the document from a JSON list of results records; train nothing")
    args = parser.parse_args(argv)
    if args.from_records:
        try:
            results = json.loads(Path(args.from_records).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            parser.error(f"cannot read records {args.from_records}: {exc}")
        if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
            parser.error(f"{args.from_records} is not a JSON list of results records")
        write_document(args.doc, shapes_markdown(results, command=reproduce_command(argv, "shapes"), budget_s=args.budget_s))
    else:
        checked_plan(parser, lambda: plan_shapes(args.models, args.seeds, args.size, args.budget_s, args.set, args.out))
        reproduce_shapes(args.models, args.seeds, args.size, args.budget_s, args.set, args.out, args.doc,
                         reproduce_command(argv, "shapes"), jobs=args.jobs)
    print(f"wrote {args.doc}")
    return 0
