"""``reproduce table3``: the plan of runs, the document as a pure function of results, the command's flags."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rladder_stream.reproduce import table3
from rladder_stream.reproduce import TABLES, reproduce_cli_main
from rladder_stream.reproduce.table3 import DEFAULT_SETTINGS, plan_table3, table3_cli_main, table3_markdown


def _result(model: str, dataset: str, seed: int, nll: float, **extra) -> dict:
    """A results dict shaped like train()'s."""
    return {
        "model": model, "size": "cpu", "seed": seed, "steps": 300, "train_time_s": 61.0, "wall_time_s": 70.0,
        "hardware": "CPU test", "data": f"music: {dataset}", "parameters": 1234,
        "test": {"prediction_nll": nll, "prediction_mse": 0.01}, "valid_history": [{"step": 300, "prediction_nll": nll + 0.5}],
        "train_config": {"dataset": dataset, "epochs": 1, "train_sequences": 4800, "batch_size": 16, "lr": 0.003}, **extra,
    }


def test_document_is_a_pure_function_of_the_results():
    results = [
        _result("music-rladder", "JSB Chorales", 0, 8.10), _result("music-rladder", "JSB Chorales", 1, 8.30),
        _result("music-lstm", "JSB Chorales", 0, 9.00), _result("music-lstm", "JSB Chorales", 1, 9.20),
        _result("music-gru", "JSB Chorales", 0, 8.15), _result("music-gru", "JSB Chorales", 1, 8.35),
        _result("music-rladder", "Nottingham", 0, 4.0), _result("music-lstm", "Nottingham", 0, 3.0),
        _result("omm-rladder", "JSB Chorales", 0, 1.0),  # not a Table 3 row: left out
    ]
    text = table3_markdown(results, command="rladder-stream reproduce table3 --seeds 2", budget_s=90)
    assert text == table3_markdown(results, command="rladder-stream reproduce table3 --seeds 2", budget_s=90)
    row = next(line for line in text.splitlines() if line.startswith("| RLadder (ours)"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    # columns in the paper's order: Piano-midi.de, Nottingham, MuseData, JSB Chorales
    assert cells[2:] == ["—", "4.000", "—", "8.200 ± 0.141"]
    assert "| paper: TP-LSTM-NADE (joint) | | 5.49 | 1.64 | 4.34 | 5.92 |" in text
    assert "6.19 ± 0.02" in text and "rladder-stream reproduce table3 --seeds 2" in text
    assert "90 s of training per run" in text and "CPU test" in text and "Wall time summed over the 8 runs (training and evaluation; runs trained side by side each count): 9m 20s" in text
    claims = [line for line in text.splitlines() if line.startswith("- **")]
    assert any(c.startswith("- **holds**: JSB Chorales: the RLadder's NLL is below the same-protocol LSTM's") for c in claims)
    assert any(c.startswith("- **cannot tell with 2 seeds**: JSB Chorales: the RLadder's NLL is below the same-protocol GRU's") for c in claims)
    assert any(c.startswith("- **cannot tell with 1 seed**: Nottingham") for c in claims)
    assert any("does not hold" not in c and "TP-LSTM-NADE" in c and c.startswith("- **holds**") for c in claims)
    assert text.count("| JSB Chorales | `music-") == 6  # one line per run
    better = table3_markdown([_result("music-rladder", "JSB Chorales", 0, 5.0)])
    assert "**does not hold**: The RLadder (a marginal model) does not beat the joint TP-LSTM-NADE" in better
    with pytest.raises(ValueError, match="more than one result"):
        table3_markdown(results + [_result("music-lstm", "JSB Chorales", 1, 9.0)])


def test_plan_runs_every_row_on_every_data_set_with_the_same_protocol(tmp_path):
    runs = plan_table3(2, "cpu", 120.0, ["lr=0.001", "top_size=32"], tmp_path)
    assert len(runs) == 4 * 3 * 2
    assert [r.dataset for r in runs[::6]] == ["Piano-midi.de", "Nottingham", "MuseData", "JSB Chorales"]
    assert {r.out for r in runs} == {str(tmp_path / c.folder / m / f"seed{s}") for c in table3.COLUMNS for m in table3.LABELS for s in (0, 1)}
    for r in runs:
        assert r.lr == 0.001 and r.time_budget_s == 120.0 and r.batch_size == DEFAULT_SETTINGS["batch_size"]
        assert r.train_sequences == DEFAULT_SETTINGS["train_sequences"] and r.size == "cpu"
        assert r.model_overrides == ({"top_size": 32} if r.model == "music-rladder" else {})  # top_size defines a baseline
    some = plan_table3(1, "tiny", None, [], tmp_path, datasets=["jsb", "muse"], models=["music-lstm"])
    assert [(r.dataset, r.model) for r in some] == [("MuseData", "music-lstm"), ("JSB Chorales", "music-lstm")]
    for bad, message in (({"settings": ["seed=3"]}, "--seeds"), ({"settings": ["dataset=jsb"]}, "--datasets"),
                         ({"datasets": ["embedded"]}, "Table 3 data sets"), ({"models": ["omm-rladder"]}, "Table 3 rows"),
                         ({"settings": ["bogus=1"]}, "bogus")):
        with pytest.raises(ValueError, match=message):
            plan_table3(1, "tiny", None, bad.get("settings", []), tmp_path, bad.get("datasets", table3.DATASET_NAMES),
                        bad.get("models", tuple(table3.LABELS)))


def test_reproduce_table3_is_registered_and_its_flags_take_effect(tmp_path, monkeypatch, capsys):
    assert TABLES["table3"] == "rladder_stream.reproduce.table3:table3_cli_main"
    trained = []

    def fake_train(cfg, log=print):
        trained.append(cfg)
        result = _result(cfg.model, cfg.dataset, cfg.seed, 7.0 + cfg.seed)
        result["train_config"] = json.loads(json.dumps(dataclasses.asdict(cfg)))
        return result

    monkeypatch.setattr("rladder_stream.reproduce.common.train", fake_train)
    doc = tmp_path / "t3.md"
    argv = ["table3", "--seeds", "2", "--size", "tiny", "--budget-s", "5", "--datasets", "jsb", "nottingham",
            "--models", "music-rladder", "music-gru", "--set", "lr=0.01", "--out", str(tmp_path / "runs"), "--doc", str(doc)]
    assert reproduce_cli_main(argv) == 0
    assert [(c.dataset, c.model, c.seed) for c in trained] == [
        ("Nottingham", "music-rladder", 0), ("Nottingham", "music-rladder", 1), ("Nottingham", "music-gru", 0),
        ("Nottingham", "music-gru", 1), ("JSB Chorales", "music-rladder", 0), ("JSB Chorales", "music-rladder", 1),
        ("JSB Chorales", "music-gru", 0), ("JSB Chorales", "music-gru", 1)]
    assert all(c.size == "tiny" and c.time_budget_s == 5 and c.lr == 0.01 for c in trained)
    assert all(c.out.startswith(str(tmp_path / "runs")) for c in trained)
    text = doc.read_text()
    assert "--datasets jsb nottingham" in text and "7.500 ± 0.707" in text
    with pytest.raises(SystemExit):
        table3_cli_main(["--set", "seed=1"])
    assert "--seeds" in capsys.readouterr().err
