"""``reproduce table2``: the plan of runs, the pure markdown document, and the command line's flags."""

from __future__ import annotations

import json

import pytest

from rladder_stream.reproduce import reproduce_cli_main
from rladder_stream.reproduce.table2 import COLUMNS, TABLE2, column_of, plan_table2, table2_markdown


def _result(config: str, column: str, seed: int, error: float, teacher: float | None = None) -> dict:
    settings = next(c.settings for c in COLUMNS if c.key == column)
    test = {"class_error": error}
    if teacher is not None:
        test["teacher_class_error"] = teacher
    return {"model": config, "seed": seed, "size": "cpu", "steps": 10, "train_time_s": 5.0, "wall_time_s": 6.0,
            "hardware": "test CPU", "test": test, "train_config": {"labelled_fraction": 0.5, **settings}}


def test_plan_covers_every_cell_except_the_duplicate_columns():
    runs = plan_table2(2, "tiny", None, ["epochs=3", "batch_size=64", "train_sequences=50000", "labelled_fraction=0.25"], "out")
    cells = {(r.model, column_of({"train_config": vars(r)})) for r in runs}
    assert cells == {(row.config, c.key) for row in TABLE2 for c in COLUMNS if row.learns_from_unlabelled or c.key != "unlabelled"}
    assert len(runs) == 2 * len(cells)
    assert all(r.epochs == 3 and r.labelled == 1000 and r.model_overrides["input_noise"] == 0.1 for r in runs)
    # same steps and the same labelled sequences per step in every column
    shares = {(r.batch_size, r.train_sequences) for r in runs if not r.use_unlabelled}
    others = {(r.batch_size, r.train_sequences, r.labelled_fraction) for r in runs if r.use_unlabelled}
    assert shares == {(16, 12_500)} and others == {(64, 50_000, 0.25)}
    assert len({r.steps_per_epoch for r in runs}) == 1
    mt = [r for r in runs if r.mean_teacher]
    assert mt and all(r.use_unlabelled for r in mt)
    assert {r.out for r in runs if r.model == "omm-rladder" and r.seed == 1} == {
        f"out/omm-rladder/{c.key}/seed1" for c in COLUMNS}


@pytest.mark.parametrize("setting, message", [("labelled=50", "defines the columns"), ("seed=3", "--seeds"),
                                              ("mean_teacher=true", "defines the columns"), ("no_such=1", "unknown setting"),
                                              ("batch_size=2", "no labelled sequence")])
def test_plan_refuses_settings_that_would_undo_the_table(setting, message):
    with pytest.raises(ValueError, match=message):
        plan_table2(1, "tiny", None, [setting], "out")


def test_markdown_states_the_cells_the_claims_and_the_copied_columns():
    results = []
    for seed, (lab, unl, mt) in enumerate([(20.0, 15.0, 10.0), (22.0, 16.0, 11.0)]):
        results += [_result("omm-rladder", "labelled", seed, lab), _result("omm-rladder", "unlabelled", seed, unl),
                    _result("omm-rladder", "mean-teacher", seed, mt, teacher=mt - 1),
                    _result("omm-temporal", "labelled", seed, 30.0 + seed), _result("omm-temporal", "mean-teacher", seed, 25.0 + seed)]
    text = table2_markdown(results, command="rladder-stream reproduce table2 --seeds 2", budget_s=60)
    rladder = next(line for line in text.splitlines() if line.startswith("| RLadder |"))
    assert "21.00 ± 1.41" in rladder and "15.50 ± 0.71" in rladder and "10.50 ± 0.71 / 9.50 ± 0.71" in rladder
    temporal = next(line for line in text.splitlines() if line.startswith("| Temporal baseline |"))
    assert temporal.count("30.50 ± 0.71") == 2 and "(= 1k only)" in temporal
    static = next(line for line in text.splitlines() if line.startswith("| Optimal reconstruction"))
    assert "—" in static  # no runs: no numbers
    claims = [line for line in text.splitlines() if line.startswith("- **")]
    assert claims[0].startswith("- **holds**: The RLadder improves from unlabelled data")
    assert claims[1].startswith("- **holds**: The RLadder improves further with Mean Teacher")
    assert claims[2].startswith("- **holds**: The temporal baseline improves")
    assert claims[3].startswith("- **holds**: With Mean Teacher the temporal baseline is clearly outperformed")
    assert "rladder-stream reproduce table2 --seeds 2" in text and "60 s of training per run" in text
    # the ordering reversed: the claim is said not to hold
    flipped = [dict(r, test={"class_error": 100 - r["test"]["class_error"]}) for r in results]
    assert "- **does not hold**: The RLadder improves from unlabelled" in table2_markdown(flipped)


def test_markdown_refuses_two_results_for_one_seed():
    with pytest.raises(ValueError, match="more than one result"):
        table2_markdown([_result("omm-rladder", "labelled", 0, 1.0), _result("omm-rladder", "labelled", 0, 2.0)])


def test_cli_trains_every_cell_and_writes_the_document(tmp_path, embedded_data):
    doc = tmp_path / "table2.md"
    code = reproduce_cli_main(["table2", "--seeds", "1", "--size", "tiny", "--out", str(tmp_path / "runs"), "--doc", str(doc),
                               "--set", "train_sequences=8", "batch_size=8", "valid_sequences=8", "test_sequences=8",
                               "eval_batch_size=8", "warmup_steps=1", "labelled_fraction=0.5"])
    assert code == 0
    text = doc.read_text()
    assert "--size tiny" in text and "labelled_fraction=0.5" in text
    finished = sorted(p.parent.relative_to(tmp_path / "runs").as_posix() for p in (tmp_path / "runs").rglob("results.json"))
    assert len(finished) == 7 and "omm-rladder/mean-teacher/seed0" in finished
    mt = json.loads((tmp_path / "runs/omm-rladder/mean-teacher/seed0/results.json").read_text())
    assert mt["train_config"]["mean_teacher"] and mt["train_config"]["labelled_fraction"] == 0.5
    assert "teacher_class_error" in mt["test"]
