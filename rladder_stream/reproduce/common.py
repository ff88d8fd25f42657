"""What every table of ``rladder-stream reproduce`` shares: statistics over seeds, the one number formatter,
the paper's claims judged against the spread, the parts of a document, and training the runs (reusing finished
ones, resuming interrupted ones, several at a time).

A table module (``table1`` ... ``table4``) plans its runs as :class:`~rladder_stream.training.train.TrainConfig` lists,
writes its document as a pure function of the runs' results, and has a command built from :func:`table_parser`,
:func:`checked_plan` and :func:`reproduce_table`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

from ..arguments import OneLineArgumentParser
from ..errors import TrainingDiverged, one_line
from ..model.registry import get_config
from ..training.run_folder import added_at_default, differences
from ..training.train import TrainConfig, train

NO_VALUE = "—"
# Settings with their own flag in every table; --set must not change them behind the flag's back.
FLAGGED = {"seed": "--seeds", "size": "--size", "time_budget_s": "--budget-s", "out": "--out"}
# Settings that change no result: a finished run is reused whatever they were (``out`` too: a run folder moved or
# renamed holds the same run).
COSMETIC = {"log_every", "checkpoint_every", "checkpoint_minutes", "stop_after_steps", "resume_with_changes", "out"}


# ============================================================================ statistics, numbers and claims


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


def format_value(value: float, digits: int) -> str:
    """A number with ``digits`` decimals (every number of every table goes through here)."""
    return f"{value:.{digits}f}"


def format_stat(stat: Stat | None, digits: int) -> str:
    """``mean ± std`` over seeds (the mean alone with one seed; :data:`NO_VALUE` without one)."""
    if stat is None:
        return NO_VALUE
    if stat.n < 2:
        return format_value(stat.mean, digits)
    return f"{format_value(stat.mean, digits)} ± {format_value(stat.std, digits)}"


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


def claim_worse(text: str, worse: tuple[str, Stat | None], better: tuple[str, Stat | None], digits: int) -> Claim:
    """Claim "``worse`` has a higher value than ``better``": holds when the difference of the means exceeds the
    sum of the two standard deviations, fails when it exceeds it the other way, else cannot tell. Numbers are
    shown with ``digits`` decimals."""
    (a_name, a), (b_name, b) = worse, better
    missing = _missing({a_name: a, b_name: b})
    if missing:
        return dataclasses.replace(missing, text=text)
    diff, margin, n = a.mean - b.mean, a.std + b.std, min(a.n, b.n)
    numbers = f"{a_name} {format_stat(a, digits)} vs {b_name} {format_stat(b, digits)}"
    if diff > margin:
        return Claim(text, "holds", f"{numbers}: higher by {format_value(diff, digits)} > {format_value(margin, digits)} (sum of the stds)")
    if diff < -margin:
        return Claim(text, "does not hold", f"{numbers}: lower by {format_value(-diff, digits)} > {format_value(margin, digits)} (sum of the stds)")
    return Claim(text, f"cannot tell with {_seeds_phrase(n)}",
                 f"{numbers}: the difference {format_value(diff, digits)} is within the sum of the stds {format_value(margin, digits)}")


def claim_reaches(text: str, model: tuple[str, Stat | None], target: tuple[str, Stat | None], digits: int) -> Claim:
    """Claim "``model`` reaches ``target`` up to uncertainty": mean(model) <= mean(target) + std(model) + std(target)."""
    (a_name, a), (b_name, b) = model, target
    missing = _missing({a_name: a, b_name: b})
    if missing:
        return dataclasses.replace(missing, text=text)
    diff, margin = a.mean - b.mean, a.std + b.std
    numbers = f"{a_name} {format_stat(a, digits)} vs {b_name} {format_stat(b, digits)}"
    if diff <= margin:
        return Claim(text, "holds", f"{numbers}: {a_name} is {format_value(abs(diff), digits)} {'above' if diff > 0 else 'below'} "
                     f"{b_name}, within {b_name}'s mean + the sum of the stds ({format_value(margin, digits)})")
    return Claim(text, "does not hold", f"{numbers}: {format_value(diff, digits)} above, more than the sum of the stds ({format_value(margin, digits)})")


# ============================================================================ the document


def duration(seconds: float) -> str:
    """A duration for people: ``1h 02m``, ``3m 05s``, ``42s``."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s" if m else f"{s}s"


def planned_steps(result: Mapping[str, Any]) -> int | None:
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
        f"{duration(wall) if found else NO_VALUE}",
        f"- Budget: {budget}; the learning-rate schedule follows the planned steps",
        f"- Model size: {listed('size')}; seeds: {', '.join(str(s) for s in sorted({r.get('seed') for r in found if r.get('seed') is not None})) or NO_VALUE}",
        f"- Data: {listed('data', '; ')}",
    ]


def timestamp() -> str:
    """When a document was generated (UTC, to the minute)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write_document(path: str | os.PathLike, text: str) -> Path:
    """Write a table's document, making its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def records_path(doc: str | os.PathLike) -> Path:
    """Where a document's raw records go: beside it, ``.json`` for ``.md``."""
    return Path(doc).with_suffix(".json")


def write_records(doc: str | os.PathLike, results: Sequence[Mapping[str, Any]]) -> Path:
    """The runs' results records (as each run's ``results.json`` has them) as a JSON list beside the document, so
    the document can be re-derived from what is committed."""
    path = records_path(doc)
    path.write_text(json.dumps(list(results), indent=1) + "\n")
    return path


def publish(text: str, doc: str | os.PathLike | None, records: Sequence[Mapping[str, Any]]) -> None:
    """Print a generated document and, when ``doc`` names a file, write it there with its records beside it."""
    print(text)
    if doc:
        write_document(doc, text)
        write_records(doc, records)


# ============================================================================ planning and training the runs


def row_model_overrides(config: str, size: str, overrides: Mapping[str, Any], base: str = "omm-rladder") -> tuple[dict[str, Any], dict[str, Any]]:
    """Split model settings into (applied, kept out) for one row: a field in which the row's configuration
    differs from the table's RLadder (``base``) defines the row (its ablation or baseline) and is kept out."""
    base = get_config(base, size=size).to_dict()
    own = get_config(config, size=size).to_dict()
    defining = {k for k in own if k != "name" and own[k] != base[k]}
    applied = {k: v for k, v in overrides.items() if k not in defining}
    return applied, {k: v for k, v in overrides.items() if k in defining}


def training_settings(pairs: Sequence[str], option: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` pairs of training settings (typed as in ``rladder-stream train``) for experiment scripts whose
    arms set the model settings themselves: a model setting is refused, naming the option."""
    from ..training.train import parse_overrides

    train_fields, model_fields = parse_overrides(list(pairs))
    if model_fields:
        raise ValueError(f"{option} takes training settings; {', '.join(model_fields)}: model settings belong to an arm")
    return train_fields


def data_settings(pairs: Sequence[str], option: str = "--data") -> dict[str, Any]:
    """``KEY=VALUE`` pairs of data settings (:class:`~rladder_stream.training.settings.DataSettings`: the plates,
    texture scale, ...) for experiment scripts that rebuild a run's data: any other setting is refused, naming the
    option."""
    from ..training.settings import DataSettings

    fields = training_settings(pairs, option)
    others = sorted(set(fields) - {f.name for f in dataclasses.fields(DataSettings)})
    if others:
        raise ValueError(f"{option} takes data settings; not: {', '.join(others)}")
    return fields


def refuse_flagged(fields: Mapping[str, Any], option: str = "--set", flagged: Mapping[str, str] = FLAGGED) -> None:
    """``ValueError`` for a setting given with ``option`` that a table sets with a flag of its own."""
    for key, flag in flagged.items():
        if key in fields:
            raise ValueError(f"set {key} with {flag}, not {option}")


def finished_results(cfg: TrainConfig) -> dict[str, Any] | None:
    """The results of a finished run, or None; ``ValueError`` if the run was trained with other settings."""
    path = Path(cfg.out) / "results.json"
    if not path.exists():
        return None
    results = json.loads(path.read_text())
    saved = results.get("train_config", {})
    # a setting added to the package after that run counts as unchanged when it has its default (as a resume does)
    differ = differences(saved, dataclasses.asdict(cfg), frozenset(COSMETIC) | added_at_default(saved, cfg))
    if "model_config" in results:  # a registered configuration's defaults may have changed since (older runs: unknown)
        model_now = json.loads(json.dumps(dataclasses.asdict(get_config(cfg.model, cfg.size, **cfg.model_overrides))))
        differ |= {f"model {k}": (v, model_now.get(k)) for k, v in results["model_config"].items() if model_now.get(k) != v}
    if differ:
        text = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in sorted(differ.items()))
        raise ValueError(f"{path} was trained with other settings ({text}); use another --out or delete that run")
    return results


def diverged_result(cfg: TrainConfig, exc: TrainingDiverged) -> dict[str, Any]:
    """The results entry of a run whose training diverged: no test metrics (so it never counts as trained),
    the step and the message (tables show it as a seed that finished without metrics)."""
    return {"model": cfg.model, "size": cfg.size, "seed": cfg.seed, "steps": exc.step, "diverged": str(exc), "test": {},
            "train_config": json.loads(json.dumps(dataclasses.asdict(cfg)))}


def train_or_diverge(cfg: TrainConfig, say: Callable[[str], None]) -> dict[str, Any]:
    """One run's results; a seed that diverges is a result (it did not train), not the end of the table."""
    try:
        return train(cfg, log=say)
    except TrainingDiverged as exc:
        say(f"    {exc}")
        return diverged_result(cfg, exc)


def stop_with_parent(parent_pid: int) -> None:
    """Have this worker receive SIGTERM when the process that started it dies (Linux's ``PR_SET_PDEATHSIG``).

    A killed ``reproduce`` or experiment script would otherwise leave its workers training on, unseen, into the
    same run folders; SIGTERM makes each finish its step and write ``last.pt`` (:class:`StopSignals`), so a rerun
    resumes. If the parent is gone already, the signal comes at once. Elsewhere than Linux: nothing."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # died before the request: the kernel will not signal, so do it here
        os.kill(os.getpid(), signal.SIGTERM)


def train_in_subprocess(cfg: TrainConfig, threads: int, parent_pid: int | None = None) -> dict[str, Any]:
    """A worker of ``train_runs(jobs > 1)``: its log lines go to standard error, tagged with the run; it stops
    (checkpointed) when the parent dies."""
    import torch

    if parent_pid is not None:
        stop_with_parent(parent_pid)
    torch.set_num_threads(threads)
    tag = f"[{cfg.model} seed {cfg.seed}{'' if cfg.labelled is None else f' labelled {cfg.labelled}'}]"
    tag_standard_error(tag)  # the progress lines too: several runs write to one terminal
    return train_or_diverge(cfg, lambda text: print(text.strip(), file=sys.stderr, flush=True))


def tag_standard_error(tag: str) -> None:
    """Start every line this process writes to standard error with ``tag`` (the run's), in place of an earlier
    run's tag: a worker trains run after run."""
    stream = sys.stderr.stream if isinstance(sys.stderr, TaggedStream) else sys.stderr
    sys.stderr = TaggedStream(stream, tag)


class TaggedStream:
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
                eta = f"eta ~{duration(left * sum(took) / len(took))} (at the mean of {len(took)} run{'s' * (len(took) > 1)})"
            else:
                eta = f"eta >= {duration(left * budget_s)} (budget only)" if budget_s is not None else "eta after the first run"
            say(f"[{i + 1}/{len(runs)}] {cfg.model} seed {cfg.seed}: training in {cfg.out}; {left} runs left, "
                f"elapsed {duration(time.perf_counter() - started)}, {eta}")
            tick = time.perf_counter()
            results[i] = train_or_diverge(cfg, lambda text: say(f"    {text}"))
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
            submitted[pool.submit(train_in_subprocess, runs[i], threads, os.getpid())] = i
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
                f"elapsed {duration(time.perf_counter() - started)}")
    if errors:
        raise errors[0]
    return results


def reproduce_table(name: str, runs: Sequence[TrainConfig], shape: str, budget_s: float | None,
                    document: Callable[[Sequence[Mapping[str, Any]]], str], doc: str | os.PathLike,
                    stream: TextIO | None = None, jobs: int = 1) -> list[dict[str, Any]]:
    """Train (or reuse) a table's runs (``jobs`` at a time), write ``document(results)`` to ``doc``; returns the
    results. Progress (which run, elapsed time, ETA) goes to ``stream`` (default: standard error)."""
    say = lambda text: print(text, file=stream or sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    results = train_runs(runs, name, shape, budget_s, say, jobs)
    path = write_document(doc, document(results))
    records = write_records(doc, results)
    say(f"{name}: wrote {path} and its records {records.name} ({duration(time.perf_counter() - started)} this session)")
    return results


# ============================================================================ the commands


def table_parser(table: str, description: str | None, seeds: int) -> OneLineArgumentParser:
    """A table's command line with the options every table shares: --seeds, --size, --budget-s, --set, --out,
    --doc, --jobs."""
    parser = OneLineArgumentParser(prog=f"rladder-stream reproduce {table}", description=description)
    parser.add_argument("--seeds", type=int, default=seeds, help=f"seeds 0..N-1 per row (default {seeds})")
    parser.add_argument("--size", default="cpu", choices=["tiny", "cpu", "gpu"], help="model size of every row (default cpu)")
    parser.add_argument("--budget-s", type=float, default=None, help="training-time cap per run in seconds (default: none)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="training or model settings for every run, as in 'rladder-stream train'")
    parser.add_argument("--out", default=f"runs/{table}", help=f"folder of the runs (default runs/{table})")
    parser.add_argument("--doc", default=f"docs/results/{table}.md", help=f"markdown file to write (default docs/results/{table}.md)")
    parser.add_argument("--jobs", type=int, default=1, help="runs that train at once, one process each (default 1); "
                        "on a GPU several small runs share it better than one after another")
    return parser


def add_records_option(parser: argparse.ArgumentParser, add_runs: bool = True) -> None:
    """``--from-records FILE [--add-runs FOLDER ...]``: write the document from committed records instead of
    training (re-derivation), with the records of finished runs added."""
    parser.add_argument("--from-records", metavar="FILE", help="write the document from a JSON list of results records "
                                                               "(as committed beside a document); train nothing")
    if add_runs:
        parser.add_argument("--add-runs", nargs="+", default=[], metavar="FOLDER",
                            help="with --from-records: add these finished runs' results.json; a run whose folder is "
                                 "already in the records replaces that record")


def records_requested(parser: argparse.ArgumentParser, args: argparse.Namespace) -> bool:
    """Whether the command writes its document from records (``--from-records``); ``--add-runs`` without it is the
    command's one-line error rather than ignored."""
    if getattr(args, "add_runs", None) and not args.from_records:
        parser.error("--add-runs needs --from-records FILE (the committed records the runs join)")
    return bool(args.from_records)


def merge_records(records: Sequence[dict[str, Any]], added: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` then ``added``; a record of a run folder (``train_config.out``) that ``added`` holds anew is
    dropped, so a run given again replaces its committed record."""
    outs = {(r.get("train_config") or {}).get("out") for r in added} - {None}
    return [r for r in records if (r.get("train_config") or {}).get("out") not in outs] + list(added)


def rederivation_argv(argv: Sequence[str], doc: str | os.PathLike) -> list[str]:
    """The arguments that re-derive a document written with ``--add-runs``: its own records (which then hold the
    added runs) in place of the records and run folders given, since those folders need not last."""
    if "--add-runs" not in argv:
        return list(argv)
    out, words, adding = [], iter(argv), False
    for word in words:
        if word == "--add-runs" or (adding and not word.startswith("-")):
            adding = True
            continue
        adding = False
        if word == "--from-records":
            next(words, None)
            out += [word, str(records_path(doc))]
        elif word.startswith("--from-records="):
            out.append(f"--from-records={records_path(doc)}")
        else:
            out.append(word)
    return out


def read_records(parser: argparse.ArgumentParser, path: str | os.PathLike,
                 add_runs: Sequence[str | os.PathLike] = ()) -> list[dict[str, Any]]:
    """The results records in ``path`` (a JSON list of dicts) followed by those of the finished runs ``add_runs``
    (each replaces a record of the same run folder, ``train_config.out``); anything else is the command's one-line
    error."""
    try:
        results = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        parser.error(f"cannot read records {path}: {exc}")
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        parser.error(f"{path} is not a JSON list of results records")
    added = []
    for folder in add_runs:
        try:
            record = json.loads((Path(folder) / "results.json").read_text())
        except OSError:
            parser.error(f"{folder} has no results.json: not a finished run")
        except json.JSONDecodeError as exc:
            parser.error(f"cannot read {Path(folder) / 'results.json'}: {exc}")
        if not isinstance(record, dict) or not isinstance(record.get("train_config"), dict):
            parser.error(f"{Path(folder) / 'results.json'} is not a run's results record")
        added.append(record)
    return merge_records(results, added)


def checked_plan(parser: argparse.ArgumentParser, plan: Callable[[], Sequence[TrainConfig]]) -> list[TrainConfig]:
    """The planned runs; bad settings, and finished runs trained with other settings, are the command's error
    here, before anything trains."""
    try:
        runs = list(plan())
        for cfg in runs:
            finished_results(cfg)
    except (ValueError, KeyError, TypeError) as exc:
        parser.error(one_line(exc))
    return runs


def reproduce_command(argv: Sequence[str], table: str | None = None) -> str:
    """The command line that reproduces a table, with the data folder it used (for the document)."""
    data = os.environ.get("RLADDER_STREAM_DATA")
    words = ["rladder-stream", "reproduce", *([table] if table else []), *argv]
    return (f"RLADDER_STREAM_DATA={shlex.quote(data)} " if data else "") + shlex.join(words)
