"""Reproduce the paper's Table 1 (SPEC 6.1): train every row for several seeds, then write the table.

    rladder-stream reproduce table1 --seeds 3 --size cpu --budget-s 900 --out runs/table1 \\
        --doc docs/results/table1.md --set train_sequences=50000 epochs=4

Each run is an ordinary :func:`rladder_stream.train.train` run in ``OUT/<config>/seed<k>``. A run whose
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

import argparse
import dataclasses
import datetime
import importlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

from .registry import get_config
from .train import TrainConfig, TrainingDiverged, parse_overrides, train
from .errors import OneLineArgumentParser, one_line

NO_VALUE = "—"


@dataclass(frozen=True)
class Row:
    """One row of Table 1: the registered configuration that trains it and what the paper reports."""

    config: str
    label: str
    short: str  # the name the claims use
    paper: str  # classification error % in the paper [unverified], or NO_VALUE
    class_error: bool  # the row reports classification error (its class cost is on)
    prediction: bool  # the row reports prediction error (its prediction cost is on)


# The paper's row order (SPEC 6.1).
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
# Settings with their own flag; --set must not change them behind the flag's back.
FLAGGED = {"seed": "--seeds", "size": "--size", "time_budget_s": "--budget-s", "out": "--out"}
# The other tables of SPEC 6, each in its own module: name -> "module:cli_main(argv)".
OTHER_TABLES: dict[str, str] = {
    "table2": "rladder_stream.table2:table2_cli_main",
    "table3": "rladder_stream.table3:table3_cli_main",
    "table4": "rladder_stream.table4:table4_cli_main",
}
# Settings that change no result: a finished run is reused whatever they were.
COSMETIC = {"log_every", "checkpoint_every", "stop_after_steps", "resume_with_changes"}


# ============================================================================ statistics and claims


@dataclass(frozen=True)
class Stat:
    """Values of one metric over seeds: mean and sample standard deviation (n - 1 denominator)."""

    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n

    @property
    def std(self) -> float:
        """Sample standard deviation; NaN with fewer than 2 seeds."""
        if self.n < 2:
            return math.nan
        return math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (self.n - 1))


def _fmt(value: float, metric: str) -> str:
    return f"{value:.2f}" if metric == CLASS else f"{value:.5f}"


def _fmt_stat(stat: Stat | None, metric: str) -> str:
    if stat is None:
        return NO_VALUE
    if stat.n < 2:
        return _fmt(stat.mean, metric)
    return f"{_fmt(stat.mean, metric)} ± {_fmt(stat.std, metric)}"


@dataclass(frozen=True)
class Claim:
    """One of the paper's claims and whether this reproduction supports it."""

    text: str
    verdict: str  # "holds", "does not hold" or "cannot tell ..."
    detail: str


def _seeds_phrase(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _missing(stats: Mapping[str, Stat | None]) -> Claim | None:
    """``cannot tell`` when a row has no value or a single seed (no spread to compare against)."""
    absent = [name for name, s in stats.items() if s is None]
    if absent:
        return Claim("", "cannot tell", f"no results for {', '.join(absent)}")
    n = min(s.n for s in stats.values())
    if n < 2:
        values = ", ".join(f"{name} {s.mean:.4g}" for name, s in stats.items())
        return Claim("", f"cannot tell with {_seeds_phrase(n)}", f"{values}; judging a difference needs a spread, so at least 2 seeds per row")
    return None


def claim_worse(text: str, worse: tuple[str, Stat | None], better: tuple[str, Stat | None], metric: str) -> Claim:
    """Claim "``worse`` has a higher ``metric`` than ``better``": holds when the difference of the means
    exceeds the sum of the two standard deviations, fails when it exceeds it the other way, else cannot tell."""
    (a_name, a), (b_name, b) = worse, better
    missing = _missing({a_name: a, b_name: b})
    if missing:
        return dataclasses.replace(missing, text=text)
    diff, margin, n = a.mean - b.mean, a.std + b.std, min(a.n, b.n)
    numbers = f"{a_name} {_fmt_stat(a, metric)} vs {b_name} {_fmt_stat(b, metric)}"
    if diff > margin:
        return Claim(text, "holds", f"{numbers}: higher by {_fmt(diff, metric)} > {_fmt(margin, metric)} (sum of the stds)")
    if diff < -margin:
        return Claim(text, "does not hold", f"{numbers}: lower by {_fmt(-diff, metric)} > {_fmt(margin, metric)} (sum of the stds)")
    return Claim(text, f"cannot tell with {_seeds_phrase(n)}",
                 f"{numbers}: the difference {_fmt(diff, metric)} is within the sum of the stds {_fmt(margin, metric)}")


def claim_reaches(text: str, model: tuple[str, Stat | None], target: tuple[str, Stat | None], metric: str) -> Claim:
    """Claim "``model`` reaches ``target`` up to uncertainty": mean(model) <= mean(target) + std(model) + std(target)."""
    (a_name, a), (b_name, b) = model, target
    missing = _missing({a_name: a, b_name: b})
    if missing:
        return dataclasses.replace(missing, text=text)
    diff, margin = a.mean - b.mean, a.std + b.std
    numbers = f"{a_name} {_fmt_stat(a, metric)} vs {b_name} {_fmt_stat(b, metric)}"
    if diff <= margin:
        return Claim(text, "holds", f"{numbers}: {a_name} is {_fmt(abs(diff), metric)} {'above' if diff > 0 else 'below'} "
                     f"{b_name}, within {b_name}'s mean + the sum of the stds ({_fmt(margin, metric)})")
    return Claim(text, "does not hold", f"{numbers}: {_fmt(diff, metric)} above, more than the sum of the stds ({_fmt(margin, metric)})")


def table1_claims(stats: Mapping[str, Mapping[str, Stat]]) -> list[Claim]:
    """The paper's Table 1 claims (SPEC 6.1) judged on ``stats[config][metric]``."""

    def get(config: str, metric: str) -> tuple[str, Stat | None]:
        return ROWS[config].short, stats.get(config, {}).get(metric)

    rladder = get("omm-rladder", CLASS)
    claims = [claim_reaches("The RLadder reaches the gold standard's classification error up to uncertainty",
                            rladder, get("omm-static", CLASS), CLASS)]
    for config, what in (("omm-hrnn", "the decoder (hierarchical RNN)"), ("omm-rladder-no-d2e", "the decoder-to-encoder connections"),
                         ("omm-rladder-no-prediction", "the prediction task")):
        claims.append(claim_worse(f"Without {what} the classification error rises above the RLadder's",
                                  get(config, CLASS), rladder, CLASS))
    claims.append(claim_worse("The temporal baseline (the level the ablations rise towards) is worse than the RLadder",
                              get("omm-temporal", CLASS), rladder, CLASS))
    claims.append(claim_worse("The classification task lowers the prediction error (RLadder < RLadder w/o classification task)",
                              get("omm-rladder-no-classification", PREDICTION), get("omm-rladder", PREDICTION), PREDICTION))
    return claims


# ============================================================================ the document


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s" if m else f"{s}s"


def _planned_steps(result: Mapping[str, Any]) -> int | None:
    tc = result.get("train_config") or {}
    try:
        return int(tc["epochs"]) * max(1, int(tc["train_sequences"]) // int(tc["batch_size"]))
    except (KeyError, TypeError, ValueError):
        return None


def group_by_cell(results: Sequence[Mapping[str, Any]], cell_of: Callable[[Mapping[str, Any]], Any],
                  cells: Sequence[Any] = ()) -> dict[Any, list[Mapping[str, Any]]]:
    """The results of each table cell (``cell_of(result)``; ``None``: not in the table), sorted by seed, with
    every cell of ``cells`` present even when empty. Two results for one cell and seed raise ``ValueError``."""
    grouped: dict[Any, list[Mapping[str, Any]]] = {cell: [] for cell in cells}
    for result in results:
        cell = cell_of(result)
        if cell is not None:
            grouped.setdefault(cell, []).append(result)
    for cell, runs in grouped.items():
        seeds = [r.get("seed") for r in runs]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"{cell}: more than one result for a seed ({sorted(seeds)})")
        runs.sort(key=lambda r: r.get("seed", 0))
    return grouped


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


def doc_header(title: str, table: str, generated: str | None) -> list[str]:
    """The first lines of a table document: its title and, when given, when ``reproduce <table>`` wrote it."""
    lines = [f"# {title}", ""]
    return lines + ([f"Generated {generated} by `rladder-stream reproduce {table}`.", ""] if generated else [])


def provenance_lines(found: Sequence[Mapping[str, Any]], command: str | None, budget_s: float | None) -> list[str]:
    """The "How these numbers were made" section every table document ends with: the command, then the
    hardware, budget, model sizes, seeds and data of the runs ``found`` (a table adds its own lines after)."""
    def listed(key: str, sep: str = ", ") -> str:
        return sep.join(sorted({str(r.get(key)) for r in found if r.get(key) is not None})) or NO_VALUE

    lines = ["", "## How these numbers were made", ""]
    if command:
        lines += ["```", command, "```", ""]
    budget = f"{budget_s:g} s of training per run" if budget_s is not None else "none (each run trains its planned steps)"
    wall = sum(float(r.get("wall_time_s", r.get("train_time_s", 0.0))) for r in found)
    return lines + [
        f"- Hardware: {listed('hardware', '; ')}",
        f"- Wall time summed over the {len(found)} runs (training and evaluation; runs trained side by side each count): "
        f"{_duration(wall) if found else NO_VALUE}",
        f"- Budget: {budget}; the learning-rate schedule follows the planned steps",
        f"- Model size: {listed('size')}; seeds: {', '.join(str(s) for s in sorted({r.get('seed') for r in found if r.get('seed') is not None})) or NO_VALUE}",
        f"- Data: {listed('data', '; ')}",
    ]


def table1_markdown(
    results: Sequence[Mapping[str, Any]],
    *,
    command: str | None = None,
    budget_s: float | None = None,
    generated: str | None = None,
) -> str:
    """Table 1 as markdown from the runs' results dicts (as ``train()`` returns and writes them).

    Per row: mean ± sample standard deviation over seeds of the test classification error (%) and the
    test prediction error (MSE per pixel, SPEC 4.1) where the row has the task, the paper's number, wall
    time; then every seed's values, and the paper's claims judged on these numbers. Pure: no files, no clock.
    """
    grouped = group_results(results)
    stats = row_stats(grouped)
    found = [r for runs in grouped.values() for r in runs]
    lines = doc_header("Table 1: Occluded Moving MNIST, fully supervised", "table1", generated)
    lines += [
        "Test classification error (%) after the 5th frame and test prediction error (mean squared error per pixel",
        "between the predicted and the actual next occluded frame, averaged over predicted frames; SPEC 4.1).",
        "Values are mean ± **sample** standard deviation over seeds (n − 1 denominator); with one seed only the",
        f"value is shown. {NO_VALUE}: the row does not have the task, or no run reported it.",
        "Paper numbers are [unverified] (SPEC 6.1): targets, not facts.",
        "",
        "| Row | config | seeds | classification error % | prediction error (MSE/pixel) | paper: classification error % [unverified] | wall time (all seeds) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in TABLE1:
        runs = grouped[row.config]
        wall = sum(float(r.get("wall_time_s", r.get("train_time_s", 0.0))) for r in runs)
        lines.append(
            f"| {row.label} | `{row.config}` | {len(runs)} | {_fmt_stat(stats[row.config].get(CLASS), CLASS)} | "
            f"{_fmt_stat(stats[row.config].get(PREDICTION), PREDICTION)} | {row.paper} | {_duration(wall) if runs else NO_VALUE} |"
        )

    lines += ["", "## Claims (SPEC 6.1) at this budget", "",
              "A difference counts when the means differ by more than the sum of the two standard deviations;",
              "with one seed there is no spread, and nothing can be told.", ""]
    for claim in table1_claims(stats):
        lines.append(f"- **{claim.verdict}**: {claim.text}. {claim.detail}.")
    lines += ["", "How close the ablations come to the temporal baseline (the paper: \"almost\") is read from the table.", ""]

    lines += ["## Per seed", "",
              "| Row | seed | classification error % | prediction error (MSE/pixel) | steps done / planned | training time | wall time |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for row in TABLE1:
        for r in grouped[row.config]:
            test = r.get("test", {})
            cls = _fmt(test[CLASS], CLASS) if row.class_error and CLASS in test else NO_VALUE
            pred = _fmt(test[PREDICTION], PREDICTION) if row.prediction and PREDICTION in test else NO_VALUE
            planned = _planned_steps(r)
            wall = r.get("wall_time_s")
            lines.append(f"| {row.label} | {r.get('seed')} | {cls} | {pred} | {r.get('steps', NO_VALUE)} / "
                         f"{planned if planned is not None else NO_VALUE} | {_duration(float(r.get('train_time_s', 0.0)))} | "
                         f"{_duration(float(wall)) if wall is not None else NO_VALUE} |")

    lines += provenance_lines(found, command, budget_s)
    lines += [
        "- Each run's settings are in its `results.json` (`train_config`); model settings given with `--set` apply to every",
        "  row except where they would undo the row's ablation.",
        "",
    ]
    return "\n".join(lines)


# ============================================================================ running the rows


def row_model_overrides(config: str, size: str, overrides: Mapping[str, Any], base: str = "omm-rladder") -> tuple[dict[str, Any], dict[str, Any]]:
    """Split model settings into (applied, kept out) for one row: a field in which the row's configuration
    differs from the table's RLadder (``base``) defines the row (its ablation or baseline) and is kept out."""
    base = get_config(base, size=size).to_dict()
    own = get_config(config, size=size).to_dict()
    defining = {k for k in own if k != "name" and own[k] != base[k]}
    applied = {k: v for k, v in overrides.items() if k not in defining}
    return applied, {k: v for k, v in overrides.items() if k in defining}


def plan_table1(seeds: int, size: str, budget_s: float | None, settings: Sequence[str], out: str | os.PathLike) -> list[TrainConfig]:
    """The runs of Table 1, row by row (paper order), seeds 0..seeds-1 within a row."""
    if seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {seeds}")
    train_fields, model_fields = parse_overrides(list(settings))
    for key, flag in FLAGGED.items():
        if key in train_fields:
            raise ValueError(f"set {key} with {flag}, not --set")
    runs = []
    for row in TABLE1:
        applied, _ = row_model_overrides(row.config, size, model_fields)
        get_config(row.config, size=size, **applied)  # fail fast on bad settings
        for seed in range(seeds):
            runs.append(TrainConfig(model=row.config, size=size, seed=seed, time_budget_s=budget_s, model_overrides=applied,
                                    out=str(Path(out) / row.config / f"seed{seed}"), **train_fields))
    return runs


def _comparable(train_config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in json.loads(json.dumps(dict(train_config))).items() if k not in COSMETIC}


def finished_results(cfg: TrainConfig) -> dict[str, Any] | None:
    """The results of a finished run, or None; ``ValueError`` if the run was trained with other settings."""
    path = Path(cfg.out) / "results.json"
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    want, got = _comparable(dataclasses.asdict(cfg)), _comparable(results.get("train_config", {}))
    differ = {k: (got.get(k), want.get(k)) for k in set(want) | set(got) if got.get(k) != want.get(k)}
    if differ:
        text = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in sorted(differ.items()))
        raise ValueError(f"{path} was trained with other settings ({text}); use another --out or delete that run")
    return results


def diverged_result(cfg: TrainConfig, exc: TrainingDiverged) -> dict[str, Any]:
    """The results entry of a run whose training diverged: no test metrics (so it never counts as trained),
    the step and the message (tables show it as a seed that finished without metrics)."""
    return {"model": cfg.model, "size": cfg.size, "seed": cfg.seed, "steps": exc.step, "diverged": str(exc), "test": {},
            "train_config": json.loads(json.dumps(dataclasses.asdict(cfg)))}


def _train_or_diverge(cfg: TrainConfig, say: Callable[[str], None]) -> dict[str, Any]:
    """One run's results; a seed that diverges is a result (it did not train), not the end of the table."""
    try:
        return train(cfg, log=say)
    except TrainingDiverged as exc:
        say(f"    {exc}")
        return diverged_result(cfg, exc)


def _train_in_subprocess(cfg: TrainConfig, threads: int) -> dict[str, Any]:
    """A worker of ``train_runs(jobs > 1)``: its log lines go to standard error, tagged with the run."""
    import torch

    torch.set_num_threads(threads)
    tag = f"[{cfg.model} seed {cfg.seed}{'' if cfg.labelled is None else f' labelled {cfg.labelled}'}]"
    sys.stderr = _Tagged(sys.stderr, tag)  # the progress lines too: several runs write to one terminal
    return _train_or_diverge(cfg, lambda text: print(text.strip(), file=sys.stderr, flush=True))


class _Tagged:
    """A text stream that starts every line it writes with ``tag``."""

    def __init__(self, stream: TextIO, tag: str):
        self.stream, self.tag, self.at_line_start = stream, tag, True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            self.stream.write(f"{self.tag} {piece}" if self.at_line_start else piece)
            self.at_line_start = piece.endswith(("\n", "\r"))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def train_runs(runs: Sequence[TrainConfig], name: str, shape: str, budget_s: float | None, say: Callable[[str], None],
               jobs: int = 1) -> list[dict[str, Any]]:
    """Train every run of a table, reusing finished ones; returns their results in order.

    ``jobs`` runs train at once, each in its own process (spawned, so CUDA works; this process's torch threads
    split between them): small models leave most of a GPU idle, and several runs share it better than one after
    another. Every run's settings, seed and results are the same as when they train one after another.
    Every finished run is checked (same settings) before anything trains; progress goes to ``say``: which
    run, runs left, elapsed time and an ETA from the mean of the runs trained so far."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    if int(os.environ.get("RANK", -1)) != -1:
        raise RuntimeError("reproduce trains its runs in processes of its own; to use several GPUs, "
                           "launch 'rladder-stream train' under torchrun for each run")
    results = [finished_results(cfg) for cfg in runs]
    todo = [i for i, r in enumerate(results) if r is None]
    say(f"{name}: {len(runs)} runs ({shape}), {len(runs) - len(todo)} finished, {len(todo)} to train"
        f"{f', {min(jobs, len(todo))} at a time' if jobs > 1 and todo else ''}; "
        f"budget {'none' if budget_s is None else f'{budget_s:g} s per run'}")
    for i, cfg in enumerate(runs):
        if results[i] is not None:
            say(f"[{i + 1}/{len(runs)}] {cfg.model} seed {cfg.seed}: finished earlier, skipped ({cfg.out})")
    started, took = time.perf_counter(), []
    if jobs == 1 or len(todo) <= 1:
        for n, i in enumerate(todo):
            cfg, left = runs[i], len(todo) - n
            if took:
                eta = f"eta ~{_duration(left * sum(took) / len(took))} (at the mean of {len(took)} run{'s' * (len(took) > 1)})"
            else:
                eta = f"eta >= {_duration(left * budget_s)} (budget only)" if budget_s is not None else "eta after the first run"
            say(f"[{i + 1}/{len(runs)}] {cfg.model} seed {cfg.seed}: training in {cfg.out}; {left} runs left, "
                f"elapsed {_duration(time.perf_counter() - started)}, {eta}")
            tick = time.perf_counter()
            results[i] = _train_or_diverge(cfg, lambda text: say(f"    {text}"))
            took.append(time.perf_counter() - tick)
        return results

    import concurrent.futures
    import multiprocessing

    import torch

    threads = max(1, torch.get_num_threads() // min(jobs, len(todo)))  # this process's threads, shared out
    errors = []
    with concurrent.futures.ProcessPoolExecutor(min(jobs, len(todo)), mp_context=multiprocessing.get_context("spawn")) as pool:
        submitted = {}
        for i in todo:
            say(f"[{i + 1}/{len(runs)}] {runs[i].model} seed {runs[i].seed}: queued, trains in {runs[i].out}")
            submitted[pool.submit(_train_in_subprocess, runs[i], threads)] = i
        for future in concurrent.futures.as_completed(submitted):
            i = submitted[future]
            where = f"[{i + 1}/{len(runs)}] {runs[i].model} seed {runs[i].seed}"
            try:
                results[i] = future.result()
            except Exception as exc:  # the other runs go on and keep their results; the first error is raised at the end
                errors.append(exc)
                say(f"{where}: failed: {type(exc).__name__}: {exc}")
                continue
            say(f"{where}: done; {sum(r is None for r in results) - len(errors)} runs left, "
                f"elapsed {_duration(time.perf_counter() - started)}")
    if errors:
        raise errors[0]
    return results


def reproduce_table1(
    seeds: int = 3,
    size: str = "cpu",
    budget_s: float | None = None,
    settings: Sequence[str] = (),
    out: str | os.PathLike = "runs/table1",
    doc: str | os.PathLike = "docs/results/table1.md",
    command: str | None = None,
    stream: TextIO | None = None,
    jobs: int = 1,
) -> list[dict[str, Any]]:
    """Train (or reuse) every run of Table 1 (``jobs`` at a time), write the markdown document ``doc``; returns
    all results. Progress (which run, elapsed time, ETA) goes to ``stream`` (default: standard error)."""
    runs = plan_table1(seeds, size, budget_s, settings, out)
    say = lambda text: print(text, file=stream or sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    results = train_runs(runs, "table1", f"{len(TABLE1)} rows x {seeds} seeds", budget_s, say, jobs)
    generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = table1_markdown(results, command=command, budget_s=budget_s, generated=generated)
    doc = Path(doc)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
    say(f"table1: wrote {doc} ({_duration(time.perf_counter() - started)} this session)")
    return results


def add_table_arguments(parser: argparse.ArgumentParser, table: str, seeds: int = 3) -> None:
    """The options every ``reproduce`` table shares: --seeds, --size, --budget-s, --set, --out, --doc, --jobs."""
    parser.add_argument("--seeds", type=int, default=seeds, help=f"seeds 0..N-1 per row (default {seeds})")
    parser.add_argument("--size", default="cpu", choices=["tiny", "cpu", "gpu"], help="model size of every row (default cpu)")
    parser.add_argument("--budget-s", type=float, default=None, help="training-time cap per run in seconds (default: none)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="training or model settings for every run, as in 'rladder-stream train'")
    parser.add_argument("--out", default=f"runs/{table}", help=f"folder of the runs (default runs/{table})")
    parser.add_argument("--doc", default=f"docs/results/{table}.md", help=f"markdown file to write (default docs/results/{table}.md)")
    parser.add_argument("--jobs", type=int, default=1, help="runs that train at once, one process each (default 1); "
                        "on a GPU several small runs share it better than one after another")


def reproduce_command(argv: Sequence[str], table: str | None = None) -> str:
    """The command line that reproduces a table, with the data folder it used (for the document)."""
    data = os.environ.get("RLADDER_STREAM_DATA")
    words = ["rladder-stream", "reproduce", *([table] if table else []), *argv]
    return (f"RLADDER_STREAM_DATA={shlex.quote(data)} " if data else "") + shlex.join(words)


def reproduce_cli_main(argv: list[str]) -> int:
    """``rladder-stream reproduce table1 [--seeds N] [--size S] [--budget-s SEC] [--set key=value ...] [--out DIR] [--doc FILE]``."""
    if argv and argv[0] in OTHER_TABLES:  # each other table has its own module and parser
        module, function = OTHER_TABLES[argv[0]].split(":")
        return int(getattr(importlib.import_module(module), function)(argv[1:]) or 0)
    parser = OneLineArgumentParser(prog="rladder-stream reproduce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=["table1", *OTHER_TABLES], help="which table of the paper (SPEC 6)")
    add_table_arguments(parser, "table1")
    args = parser.parse_args(argv)
    command = reproduce_command(argv)
    try:  # bad settings and finished runs with other settings fail here, before any training
        for cfg in plan_table1(args.seeds, args.size, args.budget_s, args.set, args.out):
            finished_results(cfg)
    except (ValueError, KeyError, TypeError) as exc:
        parser.error(one_line(exc))
    reproduce_table1(args.seeds, args.size, args.budget_s, args.set, args.out, args.doc, command, jobs=args.jobs)
    print(f"wrote {args.doc}")
    return 0
