"""Run folders: resuming with other settings is refused (differences listed), and a run resumed after a kill
has no repeated log rows, keeps its validation history and ends with the weights of an uninterrupted run."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from rladder_stream import load_checkpoint
from rladder_stream.errors import UsageError
from rladder_stream.training.tasks import OccludedMNISTTask
from rladder_stream.training.train import TrainConfig, TrainingRun, parse_overrides, train

QUIET = lambda s: None  # noqa: E731


def _tiny(out, **changes) -> TrainConfig:
    base = dict(model="omm-rladder", size="tiny", epochs=2, train_sequences=12, batch_size=4, valid_sequences=4,
                test_sequences=4, eval_batch_size=4, warmup_steps=2, log_every=1, out=str(out))
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run stopped after 2 of its 6 steps (its last.pt holds step 2)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    assert train(_tiny(out, stop_after_steps=2), log=QUIET) == {"interrupted_at": 2}
    return out


@pytest.mark.parametrize("change", [{"lr": 0.5}, {"batch_size": 2}, {"seed": 7}, {"train_sequences": 48},
                                    {"lr": 0.5, "seed": 7}])
def test_resuming_with_other_settings_is_refused_and_lists_them(interrupted, change):
    before = (interrupted / "last.pt").read_bytes()
    with pytest.raises(UsageError, match="trained with other settings") as err:
        train(_tiny(interrupted, **change), log=QUIET)
    for key, value in change.items():
        assert f"{key}: " in str(err.value) and f"{value!r} now" in str(err.value)
    assert (interrupted / "last.pt").read_bytes() == before  # nothing touched


def test_settings_that_change_nothing_trained_may_differ(interrupted, tmp_path):
    """Where things go and how often they are logged do not change the run; the override accepts the rest."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(interrupted, copy)
    said = []
    results = train(_tiny(copy, log_every=3, eval_batch_size=2, time_budget_s=1e6, lr=0.004, resume_with_changes=True), log=said.append)
    assert results["steps"] == 6
    assert any("with changed settings (lr: 0.002 there, 0.004 now)" in line for line in said)


def test_a_different_model_is_refused_with_the_differences(interrupted):
    with pytest.raises(UsageError, match=r"different model configuration \(.*decoder_cell: 'convg2' there, 'convg3' now"):
        train(_tiny(interrupted, model_overrides={"decoder_cell": "convg3"}), log=QUIET)


def _rows(out) -> list[list[str]]:
    with (out / "log.csv").open(newline="") as f:
        rows = list(csv.reader(f))
    return [[r[0], r[1], r[5], r[6]] for r in rows[1:]]  # kind, step, metric, value (not the clock)


def test_resume_after_a_kill_repeats_no_rows_keeps_history_and_weights(tmp_path, monkeypatch):
    whole = train(_tiny(tmp_path / "whole", checkpoint_every=2), log=QUIET)

    real = OccludedMNISTTask.train_batch
    calls = []

    def killed_at_the_sixth_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # step 5 was done and logged; the last checkpoint is from step 4
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(OccludedMNISTTask, "train_batch", killed_at_the_sixth_batch)
    # the batches are counted: no extra batch for the FLOP count at the start
    monkeypatch.setattr(TrainingRun, "measure_compute", lambda self: (0.0, 0.0))
    with pytest.raises(KeyboardInterrupt):
        train(_tiny(tmp_path / "killed", checkpoint_every=2), log=QUIET)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")[2]["step"] == 4
    assert [r[1] for r in _rows(tmp_path / "killed") if r[0] == "train" and r[2] == "total"] == ["1", "2", "3", "4", "5"]
    monkeypatch.setattr(OccludedMNISTTask, "train_batch", real)
    resumed = train(_tiny(tmp_path / "killed", checkpoint_every=2), log=QUIET)

    assert _rows(tmp_path / "killed") == _rows(tmp_path / "whole")  # no repeated rows, the same values
    saved = json.loads((tmp_path / "killed" / "results.json").read_text())
    assert [h["step"] for h in saved["valid_history"]] == [3, 6]  # the validation before the kill is kept
    assert saved["valid_history"] == whole["valid_history"] == resumed["valid_history"]
    _, a, _ = load_checkpoint(tmp_path / "whole" / "last.pt")
    _, b, _ = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_running_a_finished_run_again_adds_no_rows(tmp_path):
    cfg = _tiny(tmp_path / "done", epochs=1)
    train(cfg, log=QUIET)
    rows = _rows(tmp_path / "done")
    again = train(cfg, log=QUIET)
    assert _rows(tmp_path / "done") == rows and len(again["valid_history"]) == 1


@pytest.mark.parametrize("pair, message", [
    ("epochs=abc", "epochs='abc': expected an integer"),
    ("lr=fast", "lr='fast': expected a number"),
    ("bf16=maybe", "bf16='maybe': expected true or false"),
    ("time_budget_s=soon", "expected a number or null"),
    ("decoder_to_encoder=3", "expected true or false"),
])
def test_settings_of_the_wrong_type_are_refused_when_typed(pair, message):
    with pytest.raises(UsageError) as err:
        parse_overrides([pair])
    assert message in str(err.value)
