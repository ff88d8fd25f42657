"""Reproduce the paper's Table 3 (docs/design.md#table-3): polyphonic music, NLL per time step on the four benchmarks.

    RLADDER_STREAM_DATA=../shared/data rladder-stream reproduce table3 --seeds 2 --size cpu --out runs/table3

Rows are the RLadder (``music-rladder``) and the same-protocol marginal baselines the paper asks for
(``music-lstm``, ``music-gru``: one dense LSTM or GRU with sigmoid note outputs, about the same number of
parameters), configurations of the same code, trained and evaluated by the same :class:`~rladder_stream.training.tasks.MusicTask`
on the same batches. Columns are the data sets in the paper's order. Each run is an ordinary
:func:`rladder_stream.training.train.train` run in ``OUT/<data set>/<config>/seed<k>``, reused when finished and
resumed when interrupted (:func:`rladder_stream.reproduce.train_runs`).

The metric is the field's (docs/design.md#polyphonic-music): test-set Bernoulli NLL summed over the 88 keys, averaged
over every time
step of the split including the first one, in nats. :func:`table3_markdown` writes the document as a pure
function of the runs' results, with the paper's printed numbers beside ours.

Defaults (:data:`DEFAULT_SETTINGS`, overridden by ``--set``): every row trains the same planned number of
steps of the same batches (150 steps of 32 crops of 25 steps); ``--budget-s`` is a per-run cap on training time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, TextIO

from rladder_stream.envs.data.music import canonical_name

from ..model.registry import get_config
from ..training.tasks import MusicTask
from ..training.train import TrainConfig, parse_overrides
from .common import (FLAGGED, NO_VALUE, Claim, Stat, checked_plan, claim_worse, doc_header, duration, format_stat,
                     format_value, group_by_cell, provenance_lines, refuse_flagged, reproduce_command,
                     reproduce_table, row_model_overrides, table_parser, timestamp)

METRIC = "prediction_nll"
DIGITS = 3  # decimals of the NLLs in the document
CLAIM_DIGITS = 5  # and of the differences the claims weigh


@dataclass(frozen=True)
class Column:
    """One data set of Table 3: its name in the data layer (:func:`rladder_stream.envs.data.music.canonical_name`) and its run folder."""

    dataset: str
    folder: str


# The paper's column order (docs/design.md#table-3).
COLUMNS = (
    Column("Piano-midi.de", "piano-midi"),
    Column("Nottingham", "nottingham"),
    Column("MuseData", "musedata"),
    Column("JSB Chorales", "jsb"),
)
DATASET_NAMES = tuple(c.dataset for c in COLUMNS)

# Our rows: registered configurations (docs/design.md#baselines-and-ablations: baselines are configurations, not copies).
ROWS = (
    ("music-rladder", "RLadder (ours)"),
    ("music-lstm", "LSTM, marginal outputs (ours, same protocol)"),
    ("music-gru", "GRU, marginal outputs (ours, same protocol)"),
)
LABELS = dict(ROWS)

# Printed in the paper (docs/design.md#table-3), columns in COLUMNS order; None where the paper has no number.
PAPER: tuple[tuple[str, tuple[str | None, ...]], ...] = (
    ("RNN", ("7.88", "3.87", "7.43", "8.76")),
    ("LSTM", ("6.866", "3.492", None, None)),
    ("MUT1", ("6.792", "3.254", None, None)),
    ("RNN-RBM (joint)", ("7.09", "2.39", "6.01", "6.27")),
    ("TP-LSTM-NADE (joint)", ("5.49", "1.64", "4.34", "5.92")),
    ("RLadder, 18 layers, 10 seeds [unverified]", ("6.19 ± 0.02", "2.42 ± 0.03", "5.69 ± 0.02", "5.64 ± 0.02")),
)
TP_LSTM_NADE = dict(zip(DATASET_NAMES, (5.49, 1.64, 4.34, 5.92)))

# Same for every row: the protocol (docs/design.md#table-3: "same-protocol" baselines). --set overrides any of them.
DEFAULT_SETTINGS: dict[str, Any] = {
    "epochs": 1,
    "train_sequences": 4800,  # 150 steps of 32 crops of 25 steps
    "batch_size": 32,
    "lr": 1e-2,
    "warmup_steps": 10,
    "valid_sequences": 4,  # the first 4 validation pieces (a progress signal only; the table is the test split)
    "eval_batch_size": 128,
    "log_every": 25,
}
TABLE3_FLAGGED = {**FLAGGED, "dataset": "--datasets"}


# ============================================================================ the document


def table3_stats(results: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Stat]:
    """``{(config, data set): Stat}`` of the test NLL per time step over seeds. A second result for the same
    (config, data set, seed) raises ``ValueError``."""
    def cell_of(r: Mapping[str, Any]) -> tuple[str, str] | None:
        dataset = (r.get("train_config") or {}).get("dataset")
        if r.get("model") not in LABELS or dataset not in DATASET_NAMES or METRIC not in r.get("test", {}):
            return None
        return r["model"], dataset

    return {cell: Stat(tuple(float(r["test"][METRIC]) for r in runs)) for cell, runs in group_by_cell(results, cell_of).items()}


def table3_markdown(
    results: Sequence[Mapping[str, Any]],
    *,
    command: str | None = None,
    budget_s: float | None = None,
    generated: str | None = None,
    machine: str | None = None,
) -> str:
    """Table 3 as markdown from the runs' results dicts (as ``train()`` returns them). Pure: no files, no clock.

    Our rows: mean ± sample standard deviation over seeds of the test NLL per time step; the paper's printed
    rows beside them; the claims judged on our numbers; every run's numbers; how they were made."""
    stats = table3_stats(results)
    found = [r for r in results if r.get("model") in LABELS and (r.get("train_config") or {}).get("dataset") in DATASET_NAMES]
    lines = doc_header("Table 3: polyphonic music, NLL per time step", "table3", generated)
    lines += [
        "Test-set negative log-likelihood per time step in nats: the Bernoulli NLL summed over the 88 keys, averaged",
        "over **all** time steps of the test split, the first step of each piece predicted from the initial state",
        "(the field's convention, docs/design.md#polyphonic-music). Ours: mean ± **sample** standard deviation over",
        f"seeds (n − 1); lower is better. {NO_VALUE}: no run, or no number in the paper. The paper's rows are as printed",
        "(docs/design.md#table-3); its RLadder row is [unverified].",
        "",
        "| Model | params | " + " | ".join(c.dataset for c in COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(COLUMNS),
    ]
    for config, label in ROWS:
        params = sorted({int(r["parameters"]) for r in found if r.get("model") == config and "parameters" in r})
        cells = [format_stat(stats.get((config, c.dataset)), DIGITS) for c in COLUMNS]
        lines.append(f"| {label} `{config}` | {', '.join(f'{p:,}' for p in params) or NO_VALUE} | " + " | ".join(cells) + " |")
    for label, numbers in PAPER:
        lines.append(f"| paper: {label} | | " + " | ".join(n or NO_VALUE for n in numbers) + " |")

    lines += [
        "",
        "## Our models and the paper's",
        "",
        "- The paper's RLadder has 18 layers: five conv-LSTMs over the pitch axis and a fully connected LSTM on top,",
        "  trained to convergence, 10 seeds. Ours (`music-rladder`, docs/design.md#the-model-and-its-state): conv-LSTM",
        "  levels with layer norm after",
        "  the input convolution, a dense LSTM on top, ConvG2 decoder cells, decoder-to-encoder connections, and the",
        "  next step read out of the bottom decoder. Size `cpu`: two conv-LSTM levels (8 and 16 channels, kernel 5",
        "  over the keys, pitch pooled by 2, then by 4 into a 64-unit top LSTM); size `gpu`: five conv-LSTM levels",
        "  (32, 32, 64, 64, 128 channels; 88 keys pooled to 11) and a 512-unit top LSTM. No non-recurrent layers",
        "  between the cells, so far fewer layers than the paper's 18.",
        "- The LSTM and GRU rows are the same code (`LadderConfig` with no spatial levels, no decoder, and a dense",
        "  sigmoid readout of the top level: `prediction_readout='top'`), sized to about the RLadder's parameter",
        "  count, trained on the same batches for the same number of steps and scored by the same evaluation.",
        "- The paper's LSTM row (6.866 / 3.492) comes from other work and other protocols; the comparison that",
        "  counts here is with our rows.",
    ]

    lines += ["", "## Claims (docs/design.md#table-3) at this budget", "",
              "A difference counts when the means differ by more than the sum of the two standard deviations;",
              "with one seed nothing can be told.", ""]
    for claim in table3_claims(stats):
        lines.append(f"- **{claim.verdict}**: {claim.text}. {claim.detail}.")

    lines += ["", "## Per run", "",
              "| Data set | Model | seed | test NLL | valid NLL (last) | steps done / planned | training time | wall time |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    order = {(c, d.dataset): i for i, (c, d) in enumerate((c, d) for d in COLUMNS for c, _ in ROWS)}
    for r in sorted(found, key=lambda r: (order[(r["model"], r["train_config"]["dataset"])], r.get("seed", 0))):
        tc = r["train_config"]
        planned = int(tc["epochs"]) * max(1, int(tc["train_sequences"]) // int(tc["batch_size"]))
        valid = (r.get("valid_history") or [{}])[-1].get(METRIC)
        lines.append(
            f"| {tc['dataset']} | `{r['model']}` | {r.get('seed')} | {format_value(r['test'][METRIC], DIGITS) if METRIC in r.get('test', {}) else NO_VALUE} | "
            f"{format_value(valid, DIGITS) if valid is not None else NO_VALUE} | {r.get('steps', NO_VALUE)} / {planned} | "
            f"{duration(float(r.get('train_time_s', 0.0)))} | {duration(float(r.get('wall_time_s', 0.0)))} |"
        )

    keys = ("epochs", "train_sequences", "batch_size", "lr", "warmup_steps", "weight_decay", "grad_clip", "valid_sequences", "test_sequences")
    settings = sorted({", ".join(f"{k}={r['train_config'].get(k)}" for k in keys) for r in found})
    lines += provenance_lines(found, command, budget_s)
    if machine:
        lines += [f"- Machine: {machine}"]
    lines += [
        (f"- Training settings (every row the same): {'; '.join(settings) or NO_VALUE}; training crops of "
         f"{MusicTask.train_steps} scored steps (`MusicTask.train_steps`), evaluation on whole pieces"),
        "- Each run's settings are in its `results.json` (`train_config`).",
        "",
    ]
    return "\n".join(lines)


def table3_claims(stats: Mapping[tuple[str, str], Stat]) -> list[Claim]:
    """The paper's Table 3 claim (docs/design.md#table-3), per data set: the RLadder is best among the marginal models (here:
    below our same-protocol LSTM and GRU), and it does not beat the joint TP-LSTM-NADE (the paper's number)."""
    claims = []
    for column in COLUMNS:
        d = column.dataset
        rladder = ("RLadder", stats.get(("music-rladder", d)))
        for config, short in (("music-lstm", "LSTM"), ("music-gru", "GRU")):
            claims.append(claim_worse(f"{d}: the RLadder's NLL is below the same-protocol {short}'s",
                                      (short, stats.get((config, d))), rladder, CLAIM_DIGITS))
    beaten = [c.dataset for c in COLUMNS if ("music-rladder", c.dataset) in stats
              and stats[("music-rladder", c.dataset)].mean < TP_LSTM_NADE[c.dataset]]
    have = [c.dataset for c in COLUMNS if ("music-rladder", c.dataset) in stats]
    text = "The RLadder (a marginal model) does not beat the joint TP-LSTM-NADE's printed numbers"
    if not have:
        claims.append(Claim(text, "cannot tell", "no RLadder runs"))
    elif beaten:
        claims.append(Claim(text, "does not hold", f"our RLadder is below TP-LSTM-NADE on {', '.join(beaten)}"))
    else:
        claims.append(Claim(text, "holds", "our RLadder is above TP-LSTM-NADE on " + ", ".join(
            f"{d} ({stats[('music-rladder', d)].mean:.3f} vs {TP_LSTM_NADE[d]})" for d in have)))
    return claims


# ============================================================================ running the rows


def plan_table3(seeds: int, size: str, budget_s: float | None, settings: Sequence[str], out: str | Path,
                datasets: Sequence[str] = DATASET_NAMES, models: Sequence[str] = tuple(LABELS)) -> list[TrainConfig]:
    """The runs of Table 3: data set by data set (paper order), row by row, seeds 0..seeds-1.

    ``settings`` are ``key=value`` training and model settings on top of :data:`DEFAULT_SETTINGS`; a model
    setting that defines a row (a field in which it differs from ``music-rladder``) is not applied to it."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    chosen = [canonical_name(d) for d in datasets]
    unknown = [d for d in chosen if d not in DATASET_NAMES]
    if unknown:
        raise ValueError(f"Table 3 data sets are {', '.join(DATASET_NAMES)}; got {unknown}")
    bad_models = [m for m in models if m not in LABELS]
    if bad_models:
        raise ValueError(f"Table 3 rows are {', '.join(LABELS)}; got {bad_models}")
    train_fields, model_fields = parse_overrides(list(settings))
    refuse_flagged(train_fields, flagged=TABLE3_FLAGGED)
    fields = {**DEFAULT_SETTINGS, **train_fields}
    runs = []
    for column in COLUMNS:
        if column.dataset not in chosen:
            continue
        for config in models:
            applied, _ = row_model_overrides(config, size, model_fields, base="music-rladder")
            get_config(config, size=size, **applied)  # fail fast on bad settings
            for seed in range(seeds):
                runs.append(TrainConfig(model=config, size=size, seed=seed, time_budget_s=budget_s, model_overrides=applied,
                                        dataset=column.dataset, out=str(Path(out) / column.folder / config / f"seed{seed}"), **fields))
    return runs


def reproduce_table3(seeds: int = 2, size: str = "cpu", budget_s: float | None = None, settings: Sequence[str] = (),
                     out: str | Path = "runs/table3", doc: str | Path = "docs/results/table3.md",
                     command: str | None = None, datasets: Sequence[str] = DATASET_NAMES,
                     models: Sequence[str] = tuple(LABELS), stream: TextIO | None = None,
                     jobs: int = 1) -> list[dict[str, Any]]:
    """Train (or reuse) every run of Table 3 (``jobs`` at a time) and write ``doc``; returns the results. Progress goes to ``stream``
    (default: standard error)."""
    runs = plan_table3(seeds, size, budget_s, settings, out, datasets, models)
    machine = f"a {os.cpu_count()}-core machine"
    document = lambda results: table3_markdown(results, command=command, budget_s=budget_s, generated=timestamp(),  # noqa: E731
                                               machine=machine)
    return reproduce_table("table3", runs, f"{len(runs) // seeds} (data set, model) cells x {seeds} seeds", budget_s, document,
                           doc, stream, jobs)


def table3_cli_main(argv: list[str]) -> int:
    """``rladder-stream reproduce table3 [--seeds N] [--size S] [--budget-s SEC] [--datasets ...] [--models ...]
    [--set key=value ...] [--out DIR] [--doc FILE]``."""
    parser = table_parser("table3", __doc__, seeds=2)
    parser.add_argument("--datasets", nargs="+", default=list(DATASET_NAMES), metavar="NAME",
                        help="data sets to run (default: all four; short forms jsb, nottingham, muse, piano)")
    parser.add_argument("--models", nargs="+", default=list(LABELS), choices=list(LABELS), help="rows to run (default: all)")
    args = parser.parse_args(argv)
    checked_plan(parser, lambda: plan_table3(args.seeds, args.size, args.budget_s, args.set, args.out, args.datasets, args.models))
    reproduce_table3(args.seeds, args.size, args.budget_s, args.set, args.out, args.doc, reproduce_command(argv, "table3"),
                     args.datasets, args.models, jobs=args.jobs)
    print(f"wrote {args.doc}")
    return 0
