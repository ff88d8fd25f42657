"""Reproducing Table 1: the table and claims from hand-made results, the planned runs, and the command end to end."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rladder_stream.apps.cli import main as cli_main
from rladder_stream.model.registry import get_config
from rladder_stream.reproduce.common import NO_VALUE, Stat, row_model_overrides
from rladder_stream.reproduce.table1 import TABLE1, plan_table1, table1_claims, table1_markdown
from rladder_stream.training.train import train

CONFIGS = [row.config for row in TABLE1]
HAS_CLASS = {row.config: row.class_error for row in TABLE1}
HAS_PREDICTION = {row.config: row.prediction for row in TABLE1}


def _result(config: str, seed: int, class_error: float | None, mse: float | None) -> dict:
    """A results dict shaped like train()'s, with every metric the model computes (even an ablated one)."""
    test = {}
    if class_error is not None:
        test["class_error"] = class_error
    if mse is not None:
        test["prediction_mse"] = mse
        test["prediction_nll"] = 1000 * mse
    return {"model": config, "seed": seed, "size": "cpu", "steps": 90, "train_time_s": 60.0, "wall_time_s": 75.0,
            "hardware": "test machine", "data": "full MNIST", "test": test,
            "train_config": {"epochs": 2, "train_sequences": 3200, "batch_size": 64}}


def _results(class_errors: dict[str, list[float]], mses: dict[str, list[float]]) -> list[dict]:
    out = []
    for config in CONFIGS:
        errors, preds = class_errors.get(config), mses.get(config)
        if errors is None and preds is None:
            continue
        n = len(errors if errors is not None else preds)
        for seed in range(n):
            out.append(_result(config, seed, errors[seed] if errors else 50.0, preds[seed] if preds else None))
    return out


def _table_row(markdown: str, label: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == label and len(cells) == 7:
            return cells
    raise AssertionError(f"no main-table row {label!r}")


def _verdicts(markdown: str) -> list[str]:
    section = markdown.split("## Claims")[1].split("##")[0]
    return re.findall(r"^- \*\*(.+?)\*\*", section, flags=re.MULTILINE)


GOOD = {  # the paper's picture: RLadder at the gold standard, the rest clearly worse, classification helps prediction
    "class": {"omm-static": [0.70, 0.74, 0.69], "omm-temporal": [2.0, 2.2, 1.9], "omm-hrnn": [1.6, 1.55, 1.65],
              "omm-rladder-no-prediction": [1.5, 1.3, 1.7], "omm-rladder-no-d2e": [1.24, 1.20, 1.29],
              "omm-rladder": [0.74, 0.80, 0.66]},
    "mse": {"omm-rladder-no-prediction": [0.2, 0.2, 0.2], "omm-rladder-no-d2e": [0.011, 0.012, 0.011],
            "omm-rladder-no-classification": [0.0150, 0.0152, 0.0149], "omm-rladder": [0.0101, 0.0100, 0.0102]},
}


def test_stat_is_mean_and_sample_std():
    values = (1.0, 2.5, 4.0, 3.0)
    stat = Stat(values)
    assert stat.n == 4 and stat.mean == pytest.approx(np.mean(values))
    assert stat.std == pytest.approx(np.std(values, ddof=1))  # sample std, not population (ddof=0)
    assert np.isnan(Stat((2.0,)).std)


def test_table_shows_mean_and_sample_std_per_row_and_dashes_for_missing_metrics():
    results = _results(GOOD["class"], GOOD["mse"])
    md = table1_markdown(results, command="rladder-stream reproduce table1 --seeds 3", budget_s=600, generated="today")
    for row in TABLE1:
        cells = _table_row(md, row.label)
        assert cells[1] == f"`{row.config}`"
        class_values = GOOD["class"].get(row.config) if row.class_error else None
        want_class = f"{np.mean(class_values):.2f} ± {np.std(class_values, ddof=1):.2f}" if class_values else NO_VALUE
        assert cells[3] == want_class
        mse_values = GOOD["mse"].get(row.config) if row.prediction else None
        want_mse = f"{np.mean(mse_values):.5f} ± {np.std(mse_values, ddof=1):.5f}" if mse_values else NO_VALUE
        assert cells[4] == want_mse
        assert cells[5] == row.paper
    # the ablated task's metric is not shown even when the model computes it
    assert _table_row(md, "RLadder w/o prediction task")[4] == NO_VALUE
    assert _table_row(md, "RLadder w/o classification task")[3] == NO_VALUE
    assert _table_row(md, "RLadder")[6] == "3m 45s"  # wall time of the three seeds together
    for text in ("sample", "[unverified]", "rladder-stream reproduce table1 --seeds 3", "600 s of training per run",
                 "test machine", "full MNIST", "Generated today"):
        assert text in md
    # per-seed values, with steps done against steps planned
    assert "| RLadder | 1 | 0.80 | 0.01000 | 90 / 100 |" in md


def test_a_row_without_results_is_all_dashes():
    classes = {k: v for k, v in GOOD["class"].items() if k != "omm-temporal"}
    md = table1_markdown(_results(classes, GOOD["mse"]))
    cells = _table_row(md, "Temporal baseline")
    assert cells[2] == "0" and cells[3] == cells[4] == cells[6] == NO_VALUE
    assert "**cannot tell**: The temporal baseline" in md and "no results for temporal baseline" in md


def test_claims_hold_where_the_numbers_say_so():
    assert _verdicts(table1_markdown(_results(GOOD["class"], GOOD["mse"]))) == ["holds"] * 6


def test_claims_fail_where_the_numbers_say_so():
    bad_class = {"omm-static": [0.70, 0.74, 0.69], "omm-temporal": [0.5, 0.52, 0.51], "omm-hrnn": [0.5, 0.55, 0.45],
                 "omm-rladder-no-prediction": [0.4, 0.42, 0.41], "omm-rladder-no-d2e": [0.3, 0.32, 0.31],
                 "omm-rladder": [3.0, 3.2, 2.9]}
    bad_mse = {"omm-rladder-no-classification": [0.010, 0.0101, 0.0099], "omm-rladder": [0.020, 0.021, 0.019]}
    assert _verdicts(table1_markdown(_results(bad_class, bad_mse))) == ["does not hold"] * 6


def test_claims_cannot_be_told_with_one_seed_or_overlapping_spreads():
    one_seed = {k: v[:1] for k, v in GOOD["class"].items()}
    one_mse = {k: v[:1] for k, v in GOOD["mse"].items()}
    assert _verdicts(table1_markdown(_results(one_seed, one_mse))) == ["cannot tell with 1 seed"] * 6

    wide = {k: [1.0, 3.0, 2.0] for k in GOOD["class"]}  # every row: mean 2, std 1
    stats = {k: {"class_error": Stat(tuple(v))} for k, v in wide.items()}
    stats["omm-rladder"]["prediction_mse"] = Stat((0.010, 0.020))
    stats["omm-rladder-no-classification"] = {"prediction_mse": Stat((0.012, 0.022))}
    verdicts = [c.verdict for c in table1_claims(stats)]
    assert verdicts[0] == "holds"  # equal means: the RLadder reaches the gold standard
    assert verdicts[1:] == ["cannot tell with 2 seeds" if i == 4 else "cannot tell with 3 seeds" for i in range(5)]


def test_learning_curves_say_which_row_still_learned_over_its_last_fifth():
    def run(config: str, seed: int, errors: list[float]) -> dict:
        return {"model": config, "seed": seed, "test": {"class_error": errors[-1]},
                "valid_history": [{"step": 100 * (i + 1), "class_error": e} for i, e in enumerate(errors)]}

    # ten validations; the last fifth starts at step 800: the HRNN is flat there, the RLadder falls 3 points
    hrnn = [[50, 30, 20, 15, 12, 11, 10.5, 10.0, 10.2, 10.1], [52, 31, 21, 14, 12, 11, 10.4, 10.4, 10.0, 10.3]]
    rladder = [[60, 40, 30, 25, 20, 18, 16, 14.0, 12.5, 11.0], [61, 41, 31, 24, 21, 17, 16, 14.2, 12.4, 11.1]]
    results = [run("omm-hrnn", s, e) for s, e in enumerate(hrnn)] + [run("omm-rladder", s, e) for s, e in enumerate(rladder)]
    md = table1_markdown(results)
    section = md.split("## Validation classification error over training")[1].split("## Per seed")[0]
    assert "| 500 | 12.00 ± 0.00 | 20.50 ± 0.71 |" in section  # mean ± sample std over the seeds at each step
    assert "`omm-hrnn`: 10.20 ± 0.28 at step 800, 10.20 ± 0.14 at step 1000: **flat" in section
    assert "`omm-rladder`: 14.10 ± 0.14 at step 800, 11.05 ± 0.07 at step 1000: **still falling**" in section
    rising = [run("omm-hrnn", s, [20, 10, 10, 10, 10, 10, 10, 10, 12, 14 + s]) for s in range(2)]
    assert "**rising**" in table1_markdown(rising)
    assert "cannot tell with 1 seed" in table1_markdown(rising[:1])
    assert "## Validation classification error" not in table1_markdown(_results(GOOD["class"], GOOD["mse"]))


def test_two_results_for_one_seed_are_refused():
    results = _results(GOOD["class"], GOOD["mse"])
    with pytest.raises(ValueError, match="more than one result"):
        table1_markdown(results + [results[0]])


def test_model_settings_never_undo_a_rows_ablation():
    overrides = {"prediction_weight": 0.1, "decoder_to_encoder": True, "decoder_cell": "convg3", "input_noise": 0.1}
    applied, kept_out = row_model_overrides("omm-rladder-no-prediction", "tiny", overrides)
    assert "prediction_weight" in kept_out and applied["decoder_to_encoder"] is True and applied["decoder_cell"] == "convg3"
    applied, kept_out = row_model_overrides("omm-hrnn", "tiny", overrides)
    assert set(kept_out) == {"decoder_to_encoder"} and applied["input_noise"] == 0.1
    applied, _ = row_model_overrides("omm-rladder", "tiny", overrides)
    assert applied == overrides


def test_plan_covers_every_row_and_seed_in_the_papers_order(tmp_path):
    runs = plan_table1(2, "tiny", 30.0, ["lr=0.01", "prediction_weight=0.1"], tmp_path)
    assert [(r.model, r.seed) for r in runs] == [(c, s) for c in CONFIGS for s in (0, 1)]
    assert all(r.size == "tiny" and r.time_budget_s == 30.0 and r.lr == 0.01 for r in runs)
    assert {r.out for r in runs} == {str(tmp_path / c / f"seed{s}") for c in CONFIGS for s in (0, 1)}
    no_pred = next(r for r in runs if r.model == "omm-rladder-no-prediction")
    assert "prediction_weight" not in no_pred.model_overrides
    for flagged in ("seed=3", "size=gpu", "time_budget_s=4", "out=x"):
        with pytest.raises(ValueError, match="not --set"):
            plan_table1(1, "tiny", None, [flagged], tmp_path)
    some = plan_table1(1, "tiny", None, [], tmp_path, models=["omm-rladder", "omm-hrnn"])
    assert [r.model for r in some] == ["omm-hrnn", "omm-rladder"]  # the paper's order, whatever the order asked
    with pytest.raises(ValueError, match="Table 1 rows"):
        plan_table1(1, "tiny", None, [], tmp_path, models=["music-lstm"])


SMALL = ["train_sequences=16", "batch_size=8", "valid_sequences=8", "test_sequences=8", "eval_batch_size=8"]


def test_reproduce_end_to_end_writes_all_rows_and_resumes_without_retraining(tmp_path, embedded_data, capsys):
    out, doc = tmp_path / "runs", tmp_path / "docs" / "table1.md"
    args = ["reproduce", "table1", "--seeds", "1", "--size", "tiny", "--budget-s", "1e-9", "--out", str(out), "--doc", str(doc),
            "--set", *SMALL]
    # an interrupted run of the RLadder row: last.pt but no results.json
    (interrupted,) = [r for r in plan_table1(1, "tiny", 1e-9, SMALL, out) if r.model == "omm-rladder"]
    interrupted.stop_after_steps = 1
    interrupted.time_budget_s = None
    assert train(interrupted, log=lambda s: None) == {"interrupted_at": 1}

    assert cli_main(args) == 0
    err = capsys.readouterr().err
    assert "resumed from" in err and "[7/7] omm-rladder seed 0" in err and "eta" in err
    md = doc.read_text()
    for row in TABLE1:
        cells = _table_row(md, row.label)
        assert cells[2] == "1"
        assert (cells[3] != NO_VALUE) == row.class_error and (cells[4] != NO_VALUE) == row.prediction
        results = json.loads((out / row.config / "seed0" / "results.json").read_text())
        assert results["size"] == "tiny" and results["seed"] == 0 and results["train_config"]["train_sequences"] == 16
        assert results["train_config"]["time_budget_s"] == 1e-9
        # --budget-s 1e-9 (0 is refused: > 0) stops every run after its first step (2 planned); the resumed run had one step already
        assert results["steps"] == (2 if row.config == "omm-rladder" else 1)
    assert "--budget-s 1e-9" in md and "cannot tell with 1 seed" in md

    finished = {p: p.stat().st_mtime_ns for p in out.glob("*/seed0/results.json")}
    assert len(finished) == 7
    doc.unlink()
    assert cli_main(args) == 0
    err = capsys.readouterr().err
    assert "7 finished, 0 to train" in err and err.count("skipped") == 7
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/seed0/results.json")} == finished  # nothing retrained
    assert doc.exists()

    with pytest.raises(SystemExit):  # finished runs made with other settings are not silently reused
        cli_main(args[:-len(SMALL)] + [*SMALL[:-1], "eval_batch_size=4"])
    assert "other settings" in capsys.readouterr().err


def test_a_finished_run_is_reused_only_with_the_same_model_and_settings(tmp_path):
    """finished_results: a setting the package gained after the run counts as unchanged at its default; a run whose
    recorded model configuration differs from the registry's now (a default changed since) is refused, naming it."""
    import dataclasses

    from rladder_stream.reproduce.common import finished_results
    from rladder_stream.training.train import TrainConfig

    cfg = TrainConfig(model="shapes-tagger", size="tiny", out=str(tmp_path))
    settings = json.loads(json.dumps(dataclasses.asdict(cfg)))
    model = json.loads(json.dumps(dataclasses.asdict(get_config("shapes-tagger", "tiny"))))
    path = tmp_path / "results.json"

    def results(**changes) -> dict:
        record = {"model": cfg.model, "test": {"ami_3": 0.5}, "train_config": settings, "model_config": model, **changes}
        path.write_text(json.dumps(record))
        return finished_results(cfg)

    assert results()["test"] == {"ami_3": 0.5}
    older = {k: v for k, v in settings.items() if k != "calibration_sequences"}
    assert results(train_config=older)["test"]  # written before the setting existed, which has its default now
    path.write_text(json.dumps({"model": cfg.model, "test": {}, "train_config": settings}))  # before models were recorded
    assert finished_results(cfg) is not None
    assert results(train_config={**settings, "out": "/elsewhere/run"})["test"]  # trained there, then moved here
    with pytest.raises(ValueError, match="model norm: 'batch' there, 'batch_tick' now"):
        results(model_config={**model, "norm": "batch"})
    with pytest.raises(ValueError, match="calibration_sequences: 10 there, 2000 now"):
        results(train_config={**settings, "calibration_sequences": 10})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_stops_when_the_process_that_started_it_is_killed(tmp_path):
    """train_runs(jobs > 1) workers must not train on, orphaned, into the run folders after their parent dies."""
    import signal
    import subprocess

    worker = ("import os, sys, time; from rladder_stream.reproduce.common import stop_with_parent; "
              "stop_with_parent(int(sys.argv[1])); print('ready', flush=True); time.sleep(60)")
    parent = (f"import os, subprocess, sys; child = subprocess.Popen([sys.executable, '-c', {worker!r}, str(os.getpid())]); "
              "print(child.pid, flush=True); child.wait()")
    started = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    lines = sorted(started.stdout.readline().strip() for _ in range(2))  # the child's pid; "ready": it has asked
    assert lines[1] == "ready", lines
    child_pid = int(lines[0])
    os.kill(started.pid, signal.SIGKILL)
    started.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return
        if open(f"/proc/{child_pid}/stat").read().split()[2] == "Z":  # a zombie: dead, waiting for init to reap it
            return
        time.sleep(0.05)
    os.kill(child_pid, signal.SIGKILL)
    raise AssertionError("the worker outlived its parent")


def test_a_worker_tags_its_lines_with_the_run_in_hand_only(monkeypatch):
    """A worker of train_runs(jobs > 1) trains run after run: each line carries the current run's tag, not a pile."""
    import io

    from rladder_stream.reproduce.common import tag_standard_error

    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    tag_standard_error("[run a]")
    print("first", file=sys.stderr)
    tag_standard_error("[run b]")
    print("second\nthird", file=sys.stderr)
    assert terminal.getvalue().splitlines() == ["[run a] first", "[run b] second", "[run b] third"]


def test_a_committed_table1_document_is_re_derived_from_its_records(tmp_path, capsys):
    """``--from-records`` rebuilds docs/results/table1-tiny-converged.md from the records beside it: every line but
    the time and the command that made it; bad records are the command's one-line error."""
    committed = Path(__file__).parents[1] / "docs" / "results" / "table1-tiny-converged.md"
    doc = tmp_path / "table1.md"
    assert cli_main(["reproduce", "table1", "--from-records", str(committed.with_suffix(".json")), "--doc", str(doc)]) == 0
    made = lambda text: [line for line in text.splitlines() if "Generated" not in line and "reproduce table1" not in line]  # noqa: E731
    assert made(doc.read_text()) == made(committed.read_text())
    assert json.loads(doc.with_suffix(".json").read_text()) == json.loads(committed.with_suffix(".json").read_text())
    (tmp_path / "bad.json").write_text('{"not": "a list"}')
    with pytest.raises(SystemExit):
        cli_main(["reproduce", "table1", "--from-records", str(tmp_path / "bad.json"), "--doc", str(doc)])
    assert "is not a JSON list of results records" in capsys.readouterr().err


def test_runs_added_to_committed_records_make_one_document_that_its_own_command_re_derives(tmp_path, capsys):
    """``--add-runs``: finished run folders join the committed records (a folder already among them replaces its
    record, so nothing counts twice); the document's command re-derives it from its own records alone, and a folder
    without results.json is the command's one-line error with nothing written."""
    committed = json.loads((Path(__file__).parents[1] / "docs" / "results" / "table1-tiny-converged.json").read_text())
    records = tmp_path / "records.json"
    records.write_text(json.dumps(committed[:3]))  # three seeds of one row
    again = tmp_path / "again"  # the first record's run, given anew with another result
    again.mkdir()
    changed = json.loads(json.dumps(committed[0]))
    changed["test"] = {k: (v + 1.0 if isinstance(v, (int, float)) else v) for k, v in changed["test"].items()}
    (again / "results.json").write_text(json.dumps(changed))
    new = tmp_path / "new"  # a run of another row
    new.mkdir()
    (new / "results.json").write_text(json.dumps(committed[-1]))
    doc = tmp_path / "out" / "table1.md"
    doc.parent.mkdir()
    assert cli_main(["reproduce", "table1", "--from-records", str(records), "--add-runs", str(again), str(new),
                     "--doc", str(doc)]) == 0
    merged = json.loads(doc.with_suffix(".json").read_text())
    assert merged == committed[1:3] + [changed, committed[-1]]
    text = doc.read_text()
    command = next(line for line in text.splitlines() if "reproduce table1 --" in line)
    assert "--add-runs" not in command and f"--from-records {doc.with_suffix('.json')}" in command
    rederived = tmp_path / "out" / "again.md"
    assert cli_main(["reproduce", "table1", "--from-records", str(doc.with_suffix(".json")), "--doc", str(rederived)]) == 0
    made = lambda text: [line for line in text.splitlines() if "Generated" not in line and "reproduce table1" not in line]  # noqa: E731
    assert made(rederived.read_text()) == made(text)
    before = doc.read_text()
    with pytest.raises(SystemExit):
        cli_main(["reproduce", "table1", "--from-records", str(records), "--add-runs", str(tmp_path / "gone"),
                  "--doc", str(doc)])
    assert "has no results.json: not a finished run" in capsys.readouterr().err
    assert doc.read_text() == before
    with pytest.raises(SystemExit):  # runs to add but no records to add them to: an error, not a training run
        cli_main(["reproduce", "table1", "--add-runs", str(new), "--doc", str(doc), "--out", str(tmp_path / "runs")])
    assert "--add-runs needs --from-records" in capsys.readouterr().err
    assert doc.read_text() == before and not (tmp_path / "runs").exists()
