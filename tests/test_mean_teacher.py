"""Semi-supervised training and Mean Teacher (docs/design.md#costs-and-mean-teacher, issue #5): labelled/unlabelled
batches, the class cost
never reading an unlabelled label, the teacher as a hand-computed EMA, and exact resume of the teacher."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rladder_stream import load_checkpoint
from rladder_stream.model.registry import get_config
from rladder_stream.model.registry import build_model
from rladder_stream.streaming.predictor import Predictor
from rladder_stream.training.mean_teacher import MeanTeacher, consistency_cost, consistency_weight
from rladder_stream.training.tasks import OccludedMNISTTask
from rladder_stream.training.train import TrainConfig, train

QUIET = lambda s: None  # noqa: E731


def _semi(tmp_path, name: str = "run", **changes) -> TrainConfig:
    base = dict(model="omm-rladder", size="tiny", epochs=2, train_sequences=24, batch_size=8, valid_sequences=16,
                test_sequences=16, eval_batch_size=16, warmup_steps=2, log_every=1, labelled=100,
                out=str(tmp_path / name))
    base.update(changes)
    return TrainConfig(**base)


# ---------------------------------------------------------------------------------------- the teacher


def test_teacher_is_the_hand_computed_ema_of_the_student():
    student = build_model(get_config("omm-hrnn", size="tiny"))
    teacher = MeanTeacher(student, rampup_steps=2, w_max=1.0, decay_rampup=0.99, decay=0.999)
    # decays by hand: step 0 copies (1 - 1/1 = 0); step 1: min(1/2, 0.99); steps 2, 3 are after the ramp-up:
    # min(2/3, 0.999), min(3/4, 0.999)
    decays = [0.0, 0.5, 2 / 3, 0.75]
    expected = {k: torch.zeros_like(v) for k, v in student.state_dict().items()}
    g = torch.Generator().manual_seed(1)
    for step, d in enumerate(decays):
        with torch.no_grad():
            for p in student.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        current = student.state_dict()
        expected = {k: d * expected[k] + (1 - d) * current[k] for k in expected}
        teacher.update(student, step)
    got = teacher.model.state_dict()
    for k, v in expected.items():
        torch.testing.assert_close(got[k], v, rtol=1e-6, atol=1e-6)
    assert not torch.equal(got["class_head.weight"], student.state_dict()["class_head.weight"])


def test_consistency_weight_ramps_up_as_the_formula_says():
    assert consistency_weight(0, 10.0, 100) == pytest.approx(10 * math.exp(-5))
    assert consistency_weight(50, 10.0, 100) == pytest.approx(10 * math.exp(-1.25))
    assert consistency_weight(100, 10.0, 100) == consistency_weight(500, 10.0, 100) == 10.0
    assert consistency_weight(0, 10.0, 0) == 10.0


def test_consistency_cost_is_the_mse_of_probabilities():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax = (1/4, 3/4)
    target = torch.tensor([[0.5, 0.5]])
    assert consistency_cost(logits, target).item() == pytest.approx(((0.25 - 0.5) ** 2 + (0.75 - 0.5) ** 2) / 2)


def test_mean_teacher_refuses_a_model_without_class_head_and_bad_decays():
    with pytest.raises(ValueError, match="class head"):
        MeanTeacher(build_model(get_config("omm-rladder-no-classification", size="tiny", n_classes=0)), 10, 1.0)
    with pytest.raises(ValueError, match="decay"):
        MeanTeacher(build_model(get_config("omm-hrnn", size="tiny")), 10, 1.0, decay=1.0)


# ---------------------------------------------------------------------------------------- batches


def test_semi_supervised_batches_mix_labelled_and_unlabelled_rows(embedded_data):
    task = OccludedMNISTTask(get_config("omm-rladder", size="tiny"), TrainConfig(labelled=100, labelled_fraction=0.25))
    assert len(task.labelled_rows) == 100
    batch = task.train_batch(np.random.default_rng(0), 16)
    assert int((batch["labels"] >= 0).sum()) == 4  # 25 % of 16
    only = OccludedMNISTTask(get_config("omm-rladder", size="tiny"), TrainConfig(labelled=100, use_unlabelled=False))
    batch = only.train_batch(np.random.default_rng(0), 16)
    assert bool((batch["labels"] >= 0).all())
    assert "labelled only" in only.data_source and "unlabelled" in task.data_source


def test_poisoned_unlabelled_labels_never_reach_a_batch(embedded_data):
    """Writing the true labels into the pool's unlabelled rows changes nothing: labelled-ness is the row's."""
    task = OccludedMNISTTask(get_config("omm-rladder", size="tiny"), TrainConfig(labelled=100))
    clean = task.train_batch(np.random.default_rng(3), 32)
    pool_labels = task.train_source.data["labels"]
    pool_labels[task.unlabelled_rows] = np.arange(len(task.unlabelled_rows)) % 10  # poison
    poisoned = task.train_batch(np.random.default_rng(3), 32)
    for k in clean:
        assert torch.equal(clean[k], poisoned[k]), k


def test_poisoned_labels_give_the_same_training_run(tmp_path, embedded_data, monkeypatch):
    a = train(_semi(tmp_path, "a", epochs=1), log=QUIET)
    original = OccludedMNISTTask.__init__

    def poisoning_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.train_source.data["labels"][self.unlabelled_rows] = 7

    monkeypatch.setattr(OccludedMNISTTask, "__init__", poisoning_init)
    b = train(_semi(tmp_path, "b", epochs=1), log=QUIET)
    assert a["test"] == b["test"]
    _, wa, _ = load_checkpoint(tmp_path / "a" / "last.pt")
    _, wb, _ = load_checkpoint(tmp_path / "b" / "last.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_train_config_rejects_inconsistent_semi_supervised_settings():
    with pytest.raises(ValueError, match="labelled=N"):
        TrainConfig(use_unlabelled=False)
    with pytest.raises(ValueError, match="labelled_fraction"):
        TrainConfig(labelled=100, labelled_fraction=0.0)


# ---------------------------------------------------------------------------------------- training


def test_mean_teacher_run_resumes_exactly_with_its_teacher(tmp_path, embedded_data):
    settings = dict(mean_teacher=True, consistency_rampup=0.5, model_overrides={"input_noise": 0.1})
    whole = train(_semi(tmp_path, "a", **settings), log=QUIET)
    assert train(_semi(tmp_path, "b", stop_after_steps=4, **settings), log=QUIET) == {"interrupted_at": 4}
    resumed = train(_semi(tmp_path, "b", **settings), log=QUIET)
    _, _, extra_a = load_checkpoint(tmp_path / "a" / "last.pt")
    _, _, extra_b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert extra_a["step"] == extra_b["step"] == 6
    for k, v in extra_a["teacher"].items():
        assert torch.equal(v, extra_b["teacher"][k]), k
    assert resumed["test"] == whole["test"]
    assert "teacher_class_error" in whole["test"] and "teacher_class_error" in whole["valid_history"][-1]
    # the teacher also stands alone as a model checkpoint that streams like any other
    _, teacher_weights, _ = load_checkpoint(tmp_path / "a" / "teacher.pt")
    for k, v in teacher_weights.items():
        assert torch.equal(v, extra_a["teacher"][f"module.{k}"]), k
    Predictor.from_checkpoint(tmp_path / "a" / "teacher.pt").step(np.zeros((32, 32), np.float32))


def test_mean_teacher_changes_training_and_refuses_to_resume_a_plain_run(tmp_path, embedded_data):
    plain = train(_semi(tmp_path, "plain", epochs=1, model_overrides={"input_noise": 0.1}), log=QUIET)
    mt = train(_semi(tmp_path, "mt", epochs=1, mean_teacher=True, consistency_weight=100.0, consistency_rampup=0.0,
                     model_overrides={"input_noise": 0.1}), log=QUIET)
    assert "teacher_class_error" in mt["test"] and (tmp_path / "mt" / "teacher.pt").exists()
    assert not (tmp_path / "plain" / "teacher.pt").exists()
    _, w_plain, _ = load_checkpoint(tmp_path / "plain" / "last.pt")
    _, w_mt, _ = load_checkpoint(tmp_path / "mt" / "last.pt")
    assert any(not torch.equal(w_plain[k], w_mt[k]) for k in w_plain)
    assert plain["test"]["class_error"] >= 0 and "teacher_class_error" not in plain["test"]
    with pytest.raises(ValueError, match="mean_teacher: False there, True now"):  # the run folder's settings differ
        train(_semi(tmp_path, "plain", epochs=2, mean_teacher=True, model_overrides={"input_noise": 0.1}), log=QUIET)
    with pytest.raises(ValueError, match="without Mean Teacher"):  # and even when told to go on, there is no teacher
        train(_semi(tmp_path, "plain", epochs=2, mean_teacher=True, resume_with_changes=True,
                    model_overrides={"input_noise": 0.1}), log=QUIET)
