"""Does a model group? Taggers and RTaggers trained for several seeds on one grouping data set, then a document of
their test AMI per iteration against its chance level (docs/design.md#the-rtagger). Two data sets:

- ``shapes``: the grouping sanity test, the reference Tagger's own easiest task, which a model that groups at all
  must solve (not a table of the paper; the bar is a test AMI of 0.6 at the last iteration);
- ``brodatz``: Brodatz-textured MNIST, Table 4's images, here for the grouping alone (AMI per iteration
  against its chance level; the class error beside it).

    rladder-stream reproduce shapes --models shapes-tagger-dense --seeds 3 --budget-s 3600 --out runs/shapes \\
        --doc docs/results/shapes_cpu.md --set epochs=40 train_sequences=50000 batch_size=32 lr=0.001 \\
        lr_schedule=constant valid_sequences=500 test_sequences=1000
    rladder-stream reproduce brodatz --models tmnist-tagger-dense --seeds 3 --budget-s 1800 --out runs/brodatz \\
        --doc docs/results/brodatz.md --set class_weight=0 input_noise=0.2 lr=0.001 lr_schedule=constant

The runs are ordinary ``train()`` runs in ``OUT/<config>/seed<k>`` (reused or resumed as every table's are).
Beside the document goes ``<doc>.json``, the list of the runs' results records; ``--from-records FILE`` writes
the document from such a list without training, so a committed document can be re-derived.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

from ..model.registry import get_config
from ..training.train import TrainConfig, parse_overrides
from .common import (NO_VALUE, Claim, Stat, add_records_option, checked_plan, claim_worse, doc_header, duration,
                     format_stat, format_value, group_by_cell, provenance_lines, read_records, records_requested,
                     rederivation_argv, refuse_flagged, reproduce_command, reproduce_table, table_parser, timestamp, write_document,
                     write_records)

TARGET_AMI = 0.6  # the Shapes bar: test AMI at the last iteration
DIGITS = 3


@dataclass(frozen=True)
class Row:
    config: str
    label: str


def _shapes_intro(trained: int) -> list[str]:
    return [
        "Shapes (`envs/shapes.py`): 20×20 binary images of three shapes of equal intensity (a square outline and two",
        "triangles), each pixel flipped with probability 0.2 (one corruption per image, kept over the iterations); the",
        f"model learns to denoise it in {trained} iterations with K = 4 groups. AMI (adjusted mutual information) of each",
        "pixel's most likely group against the true shape, over the shapes' pixels (background and overlaps not scored),",
        "on the test images.",
    ]


def textured_intro(subject: str, texture: str) -> Callable[[int], list[str]]:
    """The first lines of a textured-MNIST document (trained iterations -> lines): ``subject`` names the data, and
    ``texture`` what the digit is cut out of (the Brodatz data of Table 4, or another plate setting's)."""
    def intro(trained: int) -> list[str]:
        return [
            f"{subject}: 32×32 grey-level images, a thickened",
            f"MNIST digit cut out of {texture} and pasted on another, corrupted by Gaussian noise of std",
            f"`input_noise` (one corruption per image, kept over the iterations); the model learns to denoise it in {trained}",
            "iterations with K groups (the configs' 2 unless a setting below changes it). AMI (adjusted mutual",
            "information) of each pixel's most likely group against digit / background, the digit's soft edge not",
            "scored, on the test images.",
        ]
    return intro


@dataclass(frozen=True)
class DataSet:
    """One grouping data set: its models (rows), the words that introduce its document, and the bar its test AMI
    at the last iteration must reach (None: it is judged against its chance level only)."""

    key: str
    name: str  # in the claims: "groups <name>"
    title: str
    intro: Callable[[int], list[str]]  # trained iterations -> the document's first lines
    rows: tuple[Row, ...]
    target: float | None
    default_doc: str
    iterations: int = 3  # what the environment shows an image for unless a run's ``iterations`` setting changes it

    @property
    def configs(self) -> dict[str, Row]:
        return {row.config: row for row in self.rows}


SHAPES = DataSet("shapes", "Shapes", "Shapes: does the model group?", _shapes_intro, (
    Row("shapes-tagger-dense", "Tagger, fully connected engine (the reference's)"),
    Row("shapes-rtagger-dense", "RTagger, fully connected LSTM engine"),
    Row("shapes-rtagger-sparse", "RTagger, fully connected engine of lstm_relu levels (LSTM memory, sparse output)"),
    Row("shapes-tagger", "Tagger, convolutional engine"),
    Row("shapes-rtagger", "RTagger, convolutional LSTM engine"),
), TARGET_AMI, "docs/results/shapes.md")
BRODATZ = DataSet("brodatz", "Brodatz-textured MNIST", "Brodatz-textured MNIST: does the model group?",
                  textured_intro("Brodatz-textured MNIST (`envs/textured_mnist.py`, Table 4's images)", "one Brodatz texture"), (
    Row("tmnist-tagger-dense", "Tagger, fully connected engine (the reference's)"),
    Row("tmnist-tagger", "Tagger, convolutional engine"),
    Row("tmnist-rtagger", "RTagger, convolutional LSTM engine"),
    Row("tmnist-rtagger-noclass", "RTagger, convolutional LSTM engine, no class task"),
    Row("tmnist-rtagger-sparse", "RTagger, fully connected engine of lstm_relu levels (the engine that groups Shapes)"),
    Row("tmnist-rtagger-sparse-noclass", "RTagger, fully connected engine of lstm_relu levels, no class task"),
    Row("tmnist-rtagger-conv-sparse", "RTagger, convolutional engine of lstm_relu levels (the ConvNet's levels)"),
    Row("tmnist-convnet", "ConvNet (the feed-forward encoder, class cost only; no groups)"),
), None, "docs/results/brodatz.md")


def iterations(result: Mapping[str, Any], metric: str = "ami") -> list[str]:
    """The per-iteration keys of ``metric`` in a result's test metrics, first to last (``ami_1``, ``ami_2``, ...)."""
    prefix = metric + "_"
    keys = [k for k in result.get("test", {}) if k.startswith(prefix) and k[len(prefix):].isdigit()]
    return sorted(keys, key=lambda k: int(k[len(prefix):]))


def _stat(runs: Sequence[Mapping[str, Any]], key: str) -> Stat | None:
    values = tuple(float(r["test"][key]) for r in runs if key in r.get("test", {}))
    return Stat(values) if values else None


def last_ami(runs: Sequence[Mapping[str, Any]]) -> Stat | None:
    """The test AMI at each run's last iteration, over seeds."""
    values = tuple(float(r["test"][iterations(r)[-1]]) for r in runs if iterations(r))
    return Stat(values) if values else None


def trained_iterations(runs: Sequence[Mapping[str, Any]], default: int) -> int:
    """How many iterations the runs trained with (their records' ``iterations`` setting; ``default``, the
    environment's, when unset). Runs trained with different numbers are refused: their columns would not mean one
    thing."""
    found = {(r.get("train_config") or {}).get("iterations") or default for r in runs}
    if len(found) > 1:
        raise ValueError(f"the runs trained with different numbers of iterations: {sorted(found)}")
    return found.pop() if found else default


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


def grouping_markdown(data: DataSet, results: Sequence[Mapping[str, Any]], *, command: str | None = None,
                      budget_s: float | None = None, generated: str | None = None) -> str:
    """The document from the runs' results dicts: per model the test AMI per iteration and its chance level
    (mean ± sample std over seeds; the class error where the runs classify), the claims, each seed, and the
    validation AMI over training. Pure."""
    unlisted = dict.fromkeys(str(r["model"]) for r in results if r.get("model") and r["model"] not in data.configs)
    rows = data.rows + tuple(Row(model, model) for model in unlisted)  # a config without a row still gets one
    configs = [row.config for row in rows]
    grouped = group_by_cell(results, lambda r: r.get("model") if r.get("model") in configs else None, configs)
    shown = [row for row in rows if grouped[row.config]]
    found = [r for row in shown for r in grouped[row.config]]
    n_iter = max((len(iterations(r)) for r in found), default=0)
    trained = trained_iterations(found, data.iterations)
    classifies = any("class_error" in r.get("test", {}) for r in found)
    longer = ([f"The test runs the iterations on to {n_iter} (the data setting `eval_iterations`): the columns past {trained}",
               f"show what a longer inference gives the model trained with {trained}."] if n_iter > trained else [])
    lines = doc_header(data.title, data.key, generated)
    lines += data.intro(trained) + longer + [
        "AMI corrects for chance: a grouping unrelated to the image scores 0 on average. The harder",
        "chance level is `shuffled`: each image's last-iteration grouping scored against another image's truth",
        "(what a model earns from where objects usually are, not from what it sees).",
        *(["The class error (%) is after the last iteration."] if classifies else []),
        "Values are mean ± **sample** standard deviation over seeds.",
        "",
        "| Model | config | seeds | " + " | ".join(f"AMI iteration {i}" for i in range(1, n_iter + 1))
        + " | chance (shuffled) |" + (" class error |" if classifies else "") + " steps | training time (per run) |",
        "|---|---|---:|" + "---:|" * n_iter + "---:|" + ("---:|" if classifies else "") + "---:|---:|",
    ]
    for row in shown:
        runs = grouped[row.config]
        amis = [format_stat(_stat(runs, f"ami_{i}"), DIGITS) for i in range(1, n_iter + 1)]
        steps = ", ".join(str(r.get("steps", NO_VALUE)) for r in runs)
        train_time = ", ".join(duration(float(r.get("train_time_s", 0.0))) for r in runs)
        error = f" {format_stat(_stat(runs, 'class_error'), 2)} |" if classifies else ""
        lines.append(f"| {row.label} | `{row.config}` | {len(runs)} | " + " | ".join(amis)
                     + f" | {format_stat(_stat(runs, 'ami_shuffled'), DIGITS)} |{error} {steps} | {train_time} |")

    lines += ["", "## Claims at this budget", "",
              "A difference counts when it exceeds the sum of the standard deviations; a bar counts as reached when the",
              "mean less one standard deviation reaches it.", ""]
    for row in shown:
        runs = grouped[row.config]
        last, chance = last_ami(runs), _stat(runs, "ami_shuffled")
        if last is None and not any(iterations(r) for r in runs):  # a model without groups (the ConvNet): its class error only
            lines.append(f"- `{row.config}` has no groups: its class error is beside the grouping models' for comparison.")
            continue
        bars = []
        if data.target is not None:
            bars = [claim_at_least(f"`{row.config}` groups {data.name}: test AMI at the last iteration ({n_iter}) ≥ {data.target}",
                                   row.config, last, data.target)]
            if n_iter > trained:
                bars.insert(0, claim_at_least(f"`{row.config}` groups {data.name} at the last trained iteration ({trained}): "
                                              f"test AMI ≥ {data.target}", row.config, _stat(runs, f"ami_{trained}"), data.target))
        for claim in (*bars, claim_worse(f"`{row.config}` groups above its shuffled chance level", (row.config, last),
                                         ("shuffled", chance), DIGITS)):
            lines.append(f"- **{claim.verdict}**: {claim.text}. {claim.detail}.")
        if last is not None and chance is not None and chance.mean > 0:
            lines.append(f"  Ratio of the means, last-iteration AMI over the shuffled chance level: {last.mean / chance.mean:.1f}.")

    lines += ["", "## Per seed", "",
              "| config | seed | " + " | ".join(f"AMI it. {i}" for i in range(1, n_iter + 1)) + " | shuffled |"
              + (" class error |" if classifies else "") + " steps | training time |",
              "|---|---:|" + "---:|" * n_iter + "---:|" + ("---:|" if classifies else "") + "---:|---:|"]
    for row in shown:
        for r in grouped[row.config]:
            test = r.get("test", {})
            amis = [format_value(test[f"ami_{i}"], DIGITS) if f"ami_{i}" in test else NO_VALUE for i in range(1, n_iter + 1)]
            shuffled = format_value(test["ami_shuffled"], DIGITS) if "ami_shuffled" in test else NO_VALUE
            error = (f" {format_value(test['class_error'], 2) if 'class_error' in test else NO_VALUE} |" if classifies else "")
            lines.append(f"| `{row.config}` | {r.get('seed')} | " + " | ".join(amis) + f" | {shuffled} |{error} {r.get('steps', NO_VALUE)} | "
                         f"{duration(float(r.get('train_time_s', 0.0)))} |")

    lines += _curves(shown, grouped)
    lines += provenance_lines(found, command, budget_s)
    lines += ["- Each run's settings are in its record (`train_config`) in the JSON list beside this document.", ""]
    return "\n".join(lines)


def _curves(shown: Sequence[Row], grouped: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
    """Validation AMI at the last iteration over training, one column per run (the runs' ``valid_history``)."""
    columns = [(row.config, r) for row in shown for r in grouped[row.config]
               if any(iterations({"test": h}) for h in r.get("valid_history", []))]
    if not columns:
        return []
    history = {(config, r.get("seed")): {h["step"]: h for h in r["valid_history"]} for config, r in columns}
    steps = sorted({step for per_run in history.values() for step in per_run})
    lines = ["", "## Validation AMI at the last iteration over training", "",
             "In brackets, where the run logged it, the shuffled chance level at the same step.", "",
             "| step | " + " | ".join(f"`{config}` seed {r.get('seed')}" for config, r in columns) + " |",
             "|---:|" + "---:|" * len(columns)]
    for step in steps:
        cells = []
        for config, r in columns:
            h = history[(config, r.get("seed"))].get(step)
            keys = iterations({"test": h or {}})
            chance = f" ({format_value(h['ami_shuffled'], DIGITS)})" if keys and "ami_shuffled" in h else ""
            cells.append(format_value(h[keys[-1]], DIGITS) + chance if keys else "")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines


def plan_grouping(data: DataSet, models: Sequence[str], seeds: int, size: str, budget_s: float | None,
                  settings: Sequence[str], out: str | os.PathLike) -> list[TrainConfig]:
    """The runs, model by model, seeds 0..seeds-1 within a model."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    unknown = [m for m in models if m not in data.configs]
    if unknown:
        raise ValueError(f"not a {data.name} model: {', '.join(unknown)}; choose from {', '.join(data.configs)}")
    train_fields, model_fields = parse_overrides(list(settings))
    refuse_flagged(train_fields)
    runs = []
    for model in models:
        get_config(model, size=size, **model_fields)  # fail fast on bad settings
        for seed in range(seeds):
            runs.append(TrainConfig(model=model, size=size, seed=seed, time_budget_s=budget_s, model_overrides=dict(model_fields),
                                    out=str(Path(out) / model / f"seed{seed}"), **train_fields))
    return runs


def reproduce_grouping(data: DataSet, models: Sequence[str], seeds: int = 3, size: str = "cpu",
                       budget_s: float | None = None, settings: Sequence[str] = (), out: str | os.PathLike | None = None,
                       doc: str | os.PathLike | None = None, command: str | None = None, stream: TextIO | None = None,
                       jobs: int = 1) -> list[dict[str, Any]]:
    """Train (or reuse) the runs, write the document and its records; returns the results."""
    runs = plan_grouping(data, models, seeds, size, budget_s, settings, out or f"runs/{data.key}")
    document = lambda results: grouping_markdown(data, results, command=command, budget_s=budget_s, generated=timestamp())  # noqa: E731
    return reproduce_table(data.key, runs, f"{len(models)} models x {seeds} seeds", budget_s, document, doc or data.default_doc,
                           stream, jobs)


def grouping_cli_main(data: DataSet, argv: list[str]) -> int:
    """``rladder-stream reproduce shapes|brodatz [--models M ...] [--seeds N] ... | --from-records FILE``."""
    parser = table_parser(data.key, __doc__, seeds=3)
    parser.set_defaults(doc=data.default_doc)
    parser.add_argument("--models", nargs="+", default=[data.rows[0].config], choices=list(data.configs),
                        help=f"the {data.name} configs to train (default {data.rows[0].config})")
    add_records_option(parser)
    args = parser.parse_args(argv)
    command = reproduce_command(rederivation_argv(argv, args.doc), data.key)  # argv itself unless runs were added
    if records_requested(parser, args):
        results = read_records(parser, args.from_records, args.add_runs)
        write_document(args.doc, grouping_markdown(data, results, command=command, budget_s=args.budget_s))
        write_records(args.doc, results)
    else:
        checked_plan(parser, lambda: plan_grouping(data, args.models, args.seeds, args.size, args.budget_s, args.set, args.out))
        reproduce_grouping(data, args.models, args.seeds, args.size, args.budget_s, args.set, args.out, args.doc, command,
                           jobs=args.jobs)
    print(f"wrote {args.doc}")
    return 0


def shapes_cli_main(argv: list[str]) -> int:
    """``rladder-stream reproduce shapes``: the grouping sanity test."""
    return grouping_cli_main(SHAPES, argv)


def brodatz_cli_main(argv: list[str]) -> int:
    """``rladder-stream reproduce brodatz``: grouping on Brodatz-textured MNIST."""
    return grouping_cli_main(BRODATZ, argv)
