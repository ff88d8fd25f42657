"""Training: every config takes a step, resumed training equals uninterrupted, CLI settings take effect."""

from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
import torch
from shared_data import find_shared_data, needs_shared

from rladder_stream import load_checkpoint
from rladder_stream.model.registry import get_config, list_configs
from rladder_stream.model.registry import build_model
from rladder_stream.reproduce.common import train_runs
from rladder_stream.training.losses import bernoulli_nll, classification_nll, ladder_costs
from rladder_stream.training.tasks import TASKS, task_for
from rladder_stream.training.train import TrainConfig, parse_overrides, train, train_cli_main

SHARED = find_shared_data("mnist", "brodatz")
TRAINABLE = sorted(n for n in list_configs() if n.split("-")[0] in TASKS)


def _tiny(tmp_path, **changes) -> TrainConfig:
    base = dict(model="omm-rladder", size="tiny", epochs=1, train_sequences=24, batch_size=8, valid_sequences=16,
                test_sequences=16, eval_batch_size=16, warmup_steps=2, log_every=1, out=str(tmp_path / "run"))
    base.update(changes)
    return TrainConfig(**base)


@pytest.mark.parametrize("name", TRAINABLE)
def test_every_trainable_config_takes_a_step_and_lowers_nothing_to_nan(name, tmp_path, monkeypatch):
    from rladder_stream.training.tasks import MovingMNISTTask

    # Moving MNIST's 20 frames of 64x64 make this test slow: 5 frames exercise the same code
    to_batch = MovingMNISTTask.to_batch
    monkeypatch.setattr(MovingMNISTTask, "to_batch",
                        lambda self, seqs: to_batch(self, {**seqs, "frames": seqs["frames"][:, :5], "groups": seqs["groups"][:, :5]}))
    results = train(_tiny(tmp_path, model=name, train_sequences=8, valid_sequences=8, test_sequences=8,
                          calibration_sequences=8), log=lambda s: None)
    assert results["steps"] == 1
    assert all(np.isfinite(v) for v in results["test"].values())
    assert ("class_error" in results["test"]) == (get_config(name, size="tiny").n_classes > 0)


@pytest.mark.parametrize("model, dataset", [("omm-rladder", None), ("music-rladder", "embedded")])
def test_resumed_training_equals_uninterrupted(tmp_path, model, dataset, monkeypatch):
    quiet = lambda s: None  # noqa: E731
    monkeypatch.setattr(TASKS["music"], "train_steps", 8)  # short music crops: the same resume, faster
    run = dict(model=model, dataset=dataset, epochs=2, model_overrides={"input_noise": 0.1}, valid_sequences=4, test_sequences=8)
    whole = train(_tiny(tmp_path, out=str(tmp_path / "a"), **run), log=quiet)
    first = train(_tiny(tmp_path, out=str(tmp_path / "b"), stop_after_steps=4, **run), log=quiet)
    assert first == {"interrupted_at": 4}
    resumed = train(_tiny(tmp_path, out=str(tmp_path / "b"), **run), log=quiet)
    _, a, extra_a = load_checkpoint(tmp_path / "a" / "last.pt")
    _, b, extra_b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert extra_a["step"] == extra_b["step"] == 6
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed["test"] == whole["test"]


def test_a_non_finite_cost_stops_training_before_that_step_changes_anything(tmp_path, monkeypatch):
    from rladder_stream.reproduce.common import train_runs
    from rladder_stream.training.tasks import OccludedMNISTTask
    from rladder_stream.training.train import TrainingDiverged, TrainingRun

    cfg = _tiny(tmp_path, epochs=2, train_sequences=16)  # 2 steps per epoch: a checkpoint after step 2
    costs = OccludedMNISTTask.costs
    calls = []

    def poisoned(self, outputs, batch):  # the 4th training step's cost is NaN (evaluation calls metrics, not costs)
        calls.append(1)
        out = costs(self, outputs, batch)
        return dict(out, total=out["total"] * float("nan")) if len(calls) == 4 else out

    monkeypatch.setattr(OccludedMNISTTask, "costs", poisoned)
    # the calls are counted: no extra forward for the FLOP count at the start
    monkeypatch.setattr(TrainingRun, "measure_compute", lambda self: (0.0, 0.0))
    with pytest.raises(TrainingDiverged, match="diverged at step 4: .*total=nan.*last checkpoint"):
        train(cfg, log=lambda s: None)
    _, weights, extra = load_checkpoint(tmp_path / "run" / "last.pt")
    assert extra["step"] == 2 and all(torch.isfinite(w).all() for w in weights.values())  # the good checkpoint stays
    # reproduce records the diverged seed (no test metrics) and goes on to the next run
    calls.clear()
    second = _tiny(tmp_path, epochs=2, train_sequences=16, seed=1, out=str(tmp_path / "other"))
    results = train_runs([_tiny(tmp_path, epochs=2, train_sequences=16, out=str(tmp_path / "third")), second],
                         "test", "2 runs", None, lambda s: None)
    assert results[0]["test"] == {} and "diverged at step 4" in results[0]["diverged"] and results[0]["seed"] == 0
    assert results[1]["steps"] == 4 and np.isfinite(results[1]["test"]["class_error"])


def test_resume_refuses_a_different_model(tmp_path):
    train(_tiny(tmp_path, train_sequences=8), log=lambda s: None)
    with pytest.raises(ValueError, match="different model configuration"):
        train(_tiny(tmp_path, train_sequences=8, model="omm-hrnn"), log=lambda s: None)


def test_cli_settings_take_effect(tmp_path, capsys):
    out = tmp_path / "cli"
    code = train_cli_main(["omm-rladder", "--out", str(out), "--set", "size=tiny", "train_sequences=16", "batch_size=8",
                           "valid_sequences=8", "test_sequences=8", "eval_batch_size=8", "warmup_steps=1", "seed=3",
                           "lr=0.01", "decoder_cell=convg3", "epochs=2", "log_every=1"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 4 and results["seed"] == 3 and results["size"] == "tiny"
    assert results["train_config"]["lr"] == 0.01
    config, _, _ = load_checkpoint(out / "last.pt")
    assert config.decoder_cell == "convg3"
    rows = (out / "log.csv").read_text().splitlines()
    assert sum(r.startswith("valid,") for r in rows) >= 2  # validated every epoch
    assert any(r.startswith("test,") for r in rows)
    with pytest.raises(SystemExit):
        train_cli_main(["omm-rladder", "--set", "no_such_setting=1"])
    assert "no_such_setting" in capsys.readouterr().err


def test_time_budget_stops_training(tmp_path):
    """A budget already spent when the first step ends stops the run after that step (0 itself is refused: > 0)."""
    results = train(_tiny(tmp_path, epochs=50, time_budget_s=1e-9), log=lambda s: None)
    assert results["steps"] == 1


def test_step_budget_stops_and_tests_while_the_schedule_follows_epochs(tmp_path):
    """step_budget ends the run after that step with the test written (stop_after_steps writes none), and the
    learning rate is still the full schedule's (a cosine over 9 steps is near its start at step 4; one shortened to
    4 steps would have decayed to its floor, 5 % of lr)."""
    said: list[str] = []
    results = train(_tiny(tmp_path, epochs=3, step_budget=4, lr=0.01, lr_schedule="cosine"), log=said.append)
    assert results["steps"] == 4 and "class_error" in results["test"]
    assert any("step budget of 4 reached at step 4/9" in line for line in said)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["steps"] == 4
    rows = [r.split(",") for r in (tmp_path / "run" / "log.csv").read_text().splitlines()[1:]]
    last_lr = [float(r[4]) for r in rows if r[0] == "train" and int(r[1]) == 4][-1]
    assert 0.005 < last_lr < 0.01


def test_parse_overrides_splits_train_and_model_settings():
    train_fields, model_fields = parse_overrides(["lr=0.5", "decoder_to_encoder=false", "out=x/y"])
    assert train_fields == {"lr": 0.5, "out": "x/y"} and model_fields == {"decoder_to_encoder": False}


def test_bernoulli_nll_matches_hand_computation():
    logits = torch.tensor([[[0.0, 2.0, -1.0]]])  # one stream, one tick, three keys
    targets = torch.tensor([[[1.0, 0.0, 0.0]]])
    p = 1 / (1 + np.exp(-np.array([0.0, 2.0, -1.0])))
    hand = -(np.log(p[0]) + np.log(1 - p[1]) + np.log(1 - p[2]))
    assert bernoulli_nll(logits, targets).item() == pytest.approx(hand, rel=1e-6)
    mask = torch.tensor([[1.0]])
    assert bernoulli_nll(logits, targets, mask).item() == pytest.approx(hand, rel=1e-6)


def test_class_cost_never_sees_unlabelled_labels():
    logits = torch.randn(4, 3, 10)
    labels = torch.tensor([3, -1, 7, -1])
    poisoned = labels.clone()
    poisoned[1], poisoned[3] = -5, -9
    assert classification_nll(logits, labels) == classification_nll(logits, poisoned)
    expected = torch.nn.functional.cross_entropy(logits[[0, 2], -1], labels[[0, 2]])
    torch.testing.assert_close(classification_nll(logits, labels), expected)


def test_zero_weight_removes_a_cost_from_the_total():
    cfg = get_config("omm-rladder-no-prediction", size="tiny")
    model = build_model(cfg)
    x = torch.rand(2, 3, 32, 32)
    outputs, _ = model(x)
    batch = {"inputs": x, "next_targets": torch.rand(2, 3, 32, 32), "clean": x, "labels": torch.tensor([1, 2])}
    costs = ladder_costs(outputs, batch, cfg)
    torch.testing.assert_close(costs["total"], cfg.class_weight * costs["classification"])
    assert task_for(cfg) == "omm"


def test_evaluation_is_deterministic_and_leaves_the_training_rng_alone(embedded_data):
    from rladder_stream.training.train import evaluate

    cfg = get_config("tmnist-rtagger", size="tiny")  # draws its initial masks at random
    task = TASKS[task_for(cfg)](cfg, TrainConfig(model=cfg.name))
    model = build_model(cfg)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    first = evaluate(model, task, "valid", 8, 8, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(6)
    assert evaluate(model, task, "valid", 8, 8, torch.device("cpu")) == first


def test_static_images_get_one_noise_draw_for_all_iterations(embedded_data):
    images = torch.zeros(2, 3, 32, 32)
    textured = get_config("tmnist-rtagger", size="tiny")
    noisy = TASKS["tmnist"](textured, TrainConfig(model=textured.name)).add_input_noise(images, 0.5)
    assert torch.equal(noisy[:, 0], noisy[:, 2]) and not torch.equal(noisy[0], noisy[1])
    occluded = get_config("omm-rladder", size="tiny")
    noisy = TASKS["omm"](occluded, TrainConfig()).add_input_noise(images, 0.5)
    assert not torch.equal(noisy[:, 0], noisy[:, 2])  # video: fresh noise every frame
    assert 0.4 < noisy.std().item() < 0.6


def test_runs_trained_side_by_side_equal_runs_trained_one_after_another(tmp_path):
    threads = torch.get_num_threads()
    runs = lambda name: [_tiny(tmp_path, seed=seed, out=str(tmp_path / name / f"seed{seed}")) for seed in (0, 1)]  # noqa: E731
    said = []
    try:
        torch.set_num_threads(2)  # one thread for each of the two workers
        side_by_side = train_runs(runs("jobs2"), "test", "2 runs", None, said.append, jobs=2)
        torch.set_num_threads(1)
        one_by_one = train_runs(runs("jobs1"), "test", "2 runs", None, lambda s: None)
    finally:
        torch.set_num_threads(threads)
    assert "2 to train, 2 at a time" in said[0] and sum(": done;" in line for line in said) == 2
    assert [r["seed"] for r in side_by_side] == [0, 1]  # in the order of the runs, whichever finished first
    for a, b in zip(side_by_side, one_by_one):
        assert a["steps"] == b["steps"] == 3 and a["test"] == b["test"]
    assert side_by_side[0]["test"] != side_by_side[1]["test"]  # the seeds differ, so the comparison can fail
    # finished runs are reused, not trained again
    again = []
    assert train_runs(runs("jobs2"), "test", "2 runs", None, again.append, jobs=2) == side_by_side
    assert "0 to train" in again[0]


def test_a_failing_run_side_by_side_lets_the_others_finish_then_raises(tmp_path):
    good = _tiny(tmp_path, out=str(tmp_path / "good"))
    bad = _tiny(tmp_path, data_dir=str(tmp_path / "no-such-folder"), out=str(tmp_path / "bad"))
    said = []
    with pytest.raises(FileNotFoundError):
        train_runs([bad, good], "test", "2 runs", None, said.append, jobs=2)
    assert (tmp_path / "good" / "results.json").exists() and not (tmp_path / "bad" / "results.json").exists()
    assert any("failed: DataNotFoundError" in line for line in said) and "done; 0 runs left" in said[-1]
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        train_runs([good], "test", "1 run", None, said.append, jobs=0)


def test_the_probe_does_not_change_how_the_model_trains(tmp_path):
    """Same seed with and without the probe: bit-identical model weights after several steps (the probe reads
    the decoder with its gradient stopped, is initialised from its own generator, and is outside the clipping)."""
    quiet = lambda s: None  # noqa: E731
    run = dict(epochs=1, train_sequences=32, grad_clip=0.5)  # a clip that binds: the probe's gradient is large
    train(_tiny(tmp_path, out=str(tmp_path / "with"), **run), log=quiet)
    train(_tiny(tmp_path, out=str(tmp_path / "without"), model_overrides={"probe": False}, **run), log=quiet)
    with_cfg, with_probe, _ = load_checkpoint(tmp_path / "with" / "last.pt")
    without_cfg, without_probe, _ = load_checkpoint(tmp_path / "without" / "last.pt")
    assert with_cfg.probe and not without_cfg.probe
    assert set(with_probe) - set(without_probe) == {"probe_head.weight", "probe_head.bias"}
    for k, v in without_probe.items():
        assert torch.equal(with_probe[k], v), k


def test_per_tick_statistics_change_nothing_the_run_learns(tmp_path):
    """norm=batch_tick normalises training batches as norm=batch does; only what it keeps for evaluation differs
    (one row of running statistics per iteration): same seed, bit-identical weights after several steps."""
    quiet = lambda s: None  # noqa: E731
    run = dict(model="shapes-tagger", epochs=1, train_sequences=32)
    train(_tiny(tmp_path, out=str(tmp_path / "pooled"), **run), log=quiet)
    train(_tiny(tmp_path, out=str(tmp_path / "tick"), model_overrides={"norm": "batch_tick", "norm_ticks": 3}, **run), log=quiet)
    _, pooled, _ = load_checkpoint(tmp_path / "pooled" / "last.pt")
    tick_cfg, per_tick, _ = load_checkpoint(tmp_path / "tick" / "last.pt")
    assert tick_cfg.norm == "batch_tick"
    params = {name for name, _ in build_model(tick_cfg).named_parameters()}
    assert params and params <= set(pooled)
    for name in params:
        assert torch.equal(per_tick[name], pooled[name]), name
    rows = [v for k, v in per_tick.items() if k.endswith("running_mean")]
    assert rows and all(v.shape[0] == 3 for v in rows)


def test_calibrated_statistics_are_the_average_of_clean_training_batches(monkeypatch):
    """calibrate_norm_statistics: row t of a per-tick norm is the mean, over the calibration batches, of the batch means
    that norm saw at iteration t (recorded as it ran: a hand-computed average) of clean inputs; the weights, the
    model's mode and torch's global generator are left as they were."""
    from rladder_stream.model.cells import TickBatchNorm
    from rladder_stream.training.train import calibrate_norm_statistics

    cfg = get_config("shapes-tagger", size="tiny", norm="batch_tick", norm_ticks=5)
    task = TASKS[task_for(cfg)](cfg, TrainConfig(model="shapes-tagger", size="tiny"))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    weights = {k: v.clone() for k, v in model.named_parameters()}
    seen: list[tuple[TickBatchNorm, int, torch.Tensor, torch.Tensor]] = []
    forward = TickBatchNorm.forward

    def recording(norm: TickBatchNorm, x: torch.Tensor) -> torch.Tensor:
        assert norm.training and norm.tick.unique().numel() == 1  # a training-mode pass, one iteration at a time
        seen.append((norm, int(norm.tick[0]), x.float().mean([0, *range(2, x.dim())]), x))
        return forward(norm, x)

    monkeypatch.setattr(TickBatchNorm, "forward", recording)
    rng_before = torch.get_rng_state()
    calibrate_norm_statistics(model, task, 20, 8, 0, torch.device("cpu"))  # batches of 8, 8, 4
    monkeypatch.setattr(TickBatchNorm, "forward", forward)
    assert torch.equal(torch.get_rng_state(), rng_before) and not model.training
    assert all(torch.equal(p, weights[k]) for k, p in model.named_parameters())
    assert sorted({len(x) for *_, x in seen}) == [4 * 4, 8 * 4]  # B*K samples
    for norm in (model.tick_norms[0], model.tick_norms[-1]):
        means: dict[int, list[torch.Tensor]] = {}
        for who, tick, mean, _ in seen:
            if who is norm:
                means.setdefault(tick, []).append(mean)
        assert sorted(means) == [0, 1, 2] and all(len(m) == 3 for m in means.values())
        for tick, values in means.items():
            torch.testing.assert_close(norm.running_mean[tick], torch.stack(values).mean(0), rtol=1e-5, atol=1e-6)
        assert norm.rows_trained.item() == 3 and norm.momentum == 0.1
    noised: list[float] = []
    monkeypatch.setattr(task, "add_input_noise", lambda inputs, std: noised.append(std) or inputs)
    calibrate_norm_statistics(model, task, 8, 8, 0, torch.device("cpu"))
    calibrate_norm_statistics(model, task, 8, 8, 0, torch.device("cpu"), noise=0.2)
    assert noised == [0.2]  # clean inputs unless asked


@pytest.mark.parametrize("plates", [{"texture_contrast": 0.5}, {"texture_scale": 2.0}, {"textures": "sinusoid"},
                                    {"texture_augment": False}])
def test_the_plate_settings_are_the_textured_tasks_only(tmp_path, plates):
    with pytest.raises(ValueError, match=f"{next(iter(plates))}=.*has no textures"):
        train(_tiny(tmp_path, model="shapes-tagger", **plates), log=lambda s: None)
    assert not (tmp_path / "run").exists()


def test_digit_augment_is_the_occluded_tasks_only(tmp_path):
    with pytest.raises(ValueError, match="digit_augment=true: the shapes task"):
        train(_tiny(tmp_path, model="shapes-tagger", digit_augment=True), log=lambda s: None)
    assert not (tmp_path / "run").exists()


def test_texture_contrast_must_be_in_range(tmp_path):
    with pytest.raises(ValueError, match="texture_contrast must be in"):
        _tiny(tmp_path, model="tmnist-rtagger", texture_contrast=2.0)


def test_a_run_beyond_the_tiny_size_says_when_it_trains_on_the_embedded_subset(tmp_path, embedded_data):
    """The data falls back to the embedded subset when no data is configured: fine for tiny test runs, a trap for a
    real one, which the log then says (with what to set)."""
    said: list[str] = []
    train(_tiny(tmp_path, size="cpu", train_sequences=8, valid_sequences=8, test_sequences=8), log=said.append)
    assert any("embedded subset" in line and "RLADDER_STREAM_DATA" in line for line in said)
    said.clear()
    train(_tiny(tmp_path, out=str(tmp_path / "tiny")), log=said.append)
    assert not any("embedded subset" in line for line in said)


def test_measuring_the_peak_leaves_the_global_generator_alone():
    """The peak is measured once per process: had it drawn from torch's global generator, the first run in a process
    would train on other draws than the same run started after another (found by the test above)."""
    from rladder_stream.training.flops import measure_peak

    measure_peak.cache_clear()
    before = torch.get_rng_state()
    measure_peak(torch.device("cpu"), quick=True)
    assert torch.equal(torch.get_rng_state(), before)


def test_the_on_device_renderer_draws_the_generators_episodes():
    """The training's torch renderer gives exactly the environment generator's frames for the same draws."""
    from rladder_stream.envs.occluded_mnist import episode_source
    from rladder_stream.training.tasks import OccludedMNISTTask

    task = OccludedMNISTTask(get_config("omm-rladder", size="tiny"))
    on_device = task.train_batch(np.random.default_rng([5, 9]), 12, device=torch.device("cpu"))
    reference = task.to_batch(episode_source("train").episodes(np.random.default_rng([5, 9]), 12, None))
    assert set(on_device) == set(reference)
    for k in reference:
        assert on_device[k].dtype == reference[k].dtype and torch.equal(on_device[k], reference[k]), k


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no GPU"))])
@pytest.mark.parametrize("data_dir", [None, pytest.param(SHARED, marks=needs_shared("mnist", "brodatz"))],
                         ids=["default-data", "shared-data"])
@pytest.mark.parametrize("name, labelled, plates", [("mmnist-rtagger", None, {}), ("tmnist-rtagger", None, {}),
                                                    ("tmnist-rtagger", 100, {}), ("omm-rladder", None, {}),
                                                    ("omm-rladder", None, {"digit_augment": True}),
                                                    ("tmnist-rtagger", None, {"textures": "sinusoid", "texture_scale": 2.0})])
def test_the_renderers_draw_the_generators_episodes(name, labelled, plates, data_dir, device, monkeypatch):
    """Each task's torch renderer (Textured MNIST's rotated, scaled crops included, other plates and texture scales
    too) gives exactly the batches of the environment's generator for the same seeds, semi-supervised rows too, on
    the CPU and on a GPU where there is one; Moving and Textured MNIST training takes them off the CPU only."""
    cfg = get_config(name, size="tiny")
    task = TASKS[task_for(cfg)](cfg, TrainConfig(model=name, size="tiny", labelled=labelled,
                                                 data_dir=None if data_dir is None else str(data_dir), **plates))
    assert task.renders_on(torch.device("cuda")) and task.renders_on(torch.device("cpu")) == (name == "omm-rladder")
    references = [task.train_batch(np.random.default_rng([seed, 3]), 12) for seed in range(3)]
    monkeypatch.setattr(type(task), "renders_on", lambda self, device: device is not None)  # the renderer, anywhere
    for seed, reference in enumerate(references):
        rendered = task.train_batch(np.random.default_rng([seed, 3]), 12, torch.device(device))
        assert set(rendered) == set(reference)
        for k in reference:
            assert rendered[k].device.type == device and rendered[k].dtype == reference[k].dtype, (seed, k)
            assert torch.equal(rendered[k].cpu(), reference[k]), (seed, k)


def _train_costs(out) -> dict[tuple[int, str], float]:
    rows = [r.split(",") for r in (out / "log.csv").read_text().splitlines()[1:]]
    return {(int(r[1]), r[5]): float(r[6]) for r in rows if r[0] == "train"}


@pytest.mark.slow  # 400 s on a loaded 2-core CPU (inductor compiles training and evaluation); the default suite
# covers compile=true with test_compiled_training_path_follows_eager_training_on_aot_eager below
def test_compiled_training_follows_eager_training(tmp_path):
    """torch.compile of the whole training forward (every tick and the costs) gives the eager costs, step by
    step, to float tolerance (the kernels fuse differently, so not bit for bit)."""
    quiet = lambda s: None  # noqa: E731
    run = dict(epochs=1, train_sequences=48, model_overrides={"input_noise": 0.05})
    train(_tiny(tmp_path, out=str(tmp_path / "eager"), **run), log=quiet)
    train(_tiny(tmp_path, out=str(tmp_path / "compiled"), compile=True, **run), log=quiet)
    eager, compiled = _train_costs(tmp_path / "eager"), _train_costs(tmp_path / "compiled")
    assert set(eager) == set(compiled) and len({step for step, _ in eager}) == 6
    for key, value in eager.items():
        assert compiled[key] == pytest.approx(value, rel=2e-3, abs=1e-4), key


def test_compiled_training_path_follows_eager_training_on_aot_eager(tmp_path, monkeypatch):
    """compile=true in the default suite: the same comparison as the slow test above, for 2 steps, with
    torch.compile's ``aot_eager`` backend (dynamo's capture of the whole forward and AOT autograd's backward,
    without inductor's code generation, which is what takes minutes on a CPU)."""
    import rladder_stream.training.train as module

    real_compile = torch.compile
    monkeypatch.setattr(module.torch, "compile", lambda model, mode=None: real_compile(model, backend="aot_eager"))
    torch._dynamo.reset()
    quiet = lambda s: None  # noqa: E731
    run = dict(epochs=1, train_sequences=16, model_overrides={"input_noise": 0.05})
    train(_tiny(tmp_path, out=str(tmp_path / "eager"), **run), log=quiet)
    train(_tiny(tmp_path, out=str(tmp_path / "compiled"), compile=True, **run), log=quiet)
    eager, compiled = _train_costs(tmp_path / "eager"), _train_costs(tmp_path / "compiled")
    assert set(eager) == set(compiled) and len({step for step, _ in eager}) == 2
    for key, value in eager.items():
        assert compiled[key] == pytest.approx(value, rel=2e-3, abs=1e-4), key


def test_two_phase_schedule_trains_without_the_class_cost_first(tmp_path):
    """class_cost_from_step: before it the class head gets no gradient (its weights stay at their init), while the
    rest trains; lr_schedule=constant keeps the rate after the warm-up."""
    from rladder_stream.training.train import lr_factor

    quiet = lambda s: None  # noqa: E731
    train(_tiny(tmp_path, out=str(tmp_path / "phase1"), class_cost_from_step=100, grad_clip=0.0, weight_decay=0.0), log=quiet)
    torch.manual_seed(0)
    init = build_model(get_config("omm-rladder", size="tiny")).state_dict()
    _, trained, _ = load_checkpoint(tmp_path / "phase1" / "last.pt")
    assert torch.equal(trained["class_head.weight"], init["class_head.weight"])
    assert not torch.equal(trained["encoders.0.input_transform.weight"], init["encoders.0.input_transform.weight"])
    assert [lr_factor(s, 2, 10, "constant") for s in (0, 1, 5, 9)] == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="lr_schedule"):
        _tiny(tmp_path, lr_schedule="stepwise")


@pytest.mark.parametrize("name, overrides", [("omm-rladder", {}), ("tmnist-rtagger", {}), ("shapes-tagger", {"norm": "batch_tick"})])
def test_the_whole_training_forward_compiles_as_one_graph(name, overrides):
    """Every tick and the costs in one graph. A graph break at every tick (there was one: the state's shapes
    computed with a generator expression inside math.prod) splits the sequence into per-tick graphs, and the
    RTagger's recompiled until torch.compile gave up."""
    from rladder_stream.training.train import WithCosts

    torch._dynamo.reset()
    cfg = get_config(name, size="tiny", **overrides)
    task = TASKS[task_for(cfg)](cfg, TrainConfig(model=name, size="tiny"))
    batch = task.train_batch(np.random.default_rng(0), 4)
    explained = torch._dynamo.explain(WithCosts(build_model(cfg), task))(batch)
    assert explained.graph_break_count == 0, explained.break_reasons


@pytest.mark.counts_compute
@pytest.mark.parametrize("model", ["omm-rladder", "shapes-rtagger"])  # batch norm and random initial masks in the second
def test_counting_the_compute_changes_nothing_the_run_learns(tmp_path, model, monkeypatch, capsys):
    """The FLOPs are counted on a copy of the model, on a batch of its own, under a forked generator: the weights
    after training are bit-identical to a run that does not count, and the progress lines show the fraction."""
    from rladder_stream.training.train import TrainingRun

    lines: list[str] = []
    train(_tiny(tmp_path, model=model, out=str(tmp_path / "counted")), log=lines.append)
    assert any(line.startswith("compute: ") and "TFLOP/s" in line for line in lines)
    assert "% of peak" in capsys.readouterr().err
    monkeypatch.setattr(TrainingRun, "measure_compute", lambda self: (0.0, 0.0))
    train(_tiny(tmp_path, model=model, out=str(tmp_path / "plain")), log=lambda s: None)
    _, counted, _ = load_checkpoint(tmp_path / "counted" / "last.pt")
    _, plain, _ = load_checkpoint(tmp_path / "plain" / "last.pt")
    for k, v in plain.items():
        assert torch.equal(counted[k], v), k


def test_cpu_bf16_runs_the_training_matrix_products_in_bf16_on_the_cpu(tmp_path):
    """``cpu_bf16``: the training forward under bf16 autocast on the CPU (off by default: CPU runs stay float32);
    the weights stay float32 and a run trains to finite costs, not far from the float32 run's."""
    from rladder_stream.training.train import TrainingRun

    for on in (False, True):
        run = TrainingRun(_tiny(tmp_path, model="shapes-tagger-dense", cpu_bf16=on, out=str(tmp_path / f"ctx{on}")), log=lambda s: None)
        with run.autocast():
            product = torch.ones(2, 3) @ torch.ones(3, 2)
        assert product.dtype == (torch.bfloat16 if on else torch.float32)
    costs = {}
    for on in (False, True):
        out = tmp_path / f"run{on}"
        train(_tiny(tmp_path, model="shapes-tagger-dense", cpu_bf16=on, out=str(out)), log=lambda s: None)
        _, weights, _ = load_checkpoint(out / "last.pt")
        assert all(v.dtype != torch.bfloat16 for v in weights.values())
        costs[on] = [float(line.split(",")[-1]) for line in (out / "log.csv").read_text().splitlines()
                     if line.startswith("train,") and ",low_level," in line]
    assert all(np.isfinite(costs[True]))
    assert costs[True] != costs[False]  # the arithmetic did change
    np.testing.assert_allclose(costs[True], costs[False], rtol=0.05)


def test_an_rladder_warm_started_from_a_hierarchical_rnn_computes_what_the_rnn_computed(tmp_path):
    """init_from: an RLadder started from a trained HRNN (matching tensors copied, the new feedback at zero) gives
    the HRNN's class logits at every tick, and training then moves the feedback away from zero."""
    from rladder_stream.training.train import warm_start

    quiet = lambda s: None  # noqa: E731
    train(_tiny(tmp_path, model="omm-hrnn", out=str(tmp_path / "hrnn")), log=quiet)
    _, hrnn_weights, _ = load_checkpoint(tmp_path / "hrnn" / "last.pt")
    hrnn = build_model(get_config("omm-hrnn", size="tiny"))
    hrnn.load_state_dict(hrnn_weights)
    inputs = torch.rand(3, 5, 32, 32)
    for start in ({"decoder_to_encoder_entry": "normalised"}, {"decoder_to_encoder_entry": "gates"}, {"decoder_init": "closed"}):
        torch.manual_seed(1)
        ladder = build_model(get_config("omm-rladder", size="tiny", **start))
        warm_start(ladder, str(tmp_path / "hrnn" / "last.pt"), log=quiet)
        with torch.no_grad():
            ours, theirs = ladder.eval()(inputs)[0]["class_logits"], hrnn.eval()(inputs)[0]["class_logits"]
        assert torch.equal(ours, theirs), start
    # without zeroing the feedback the ladder would differ: the check above can fail
    torch.manual_seed(1)
    cold = build_model(get_config("omm-rladder", size="tiny")).eval()
    cold.load_state_dict({k: v for k, v in hrnn_weights.items()}, strict=False)
    with torch.no_grad():
        assert not torch.equal(cold(inputs)[0]["class_logits"], hrnn(inputs)[0]["class_logits"])
    # through the training setting: the run logs the warm start and its feedback leaves zero
    lines: list[str] = []
    train(_tiny(tmp_path, out=str(tmp_path / "ladder"), init_from=str(tmp_path / "hrnn" / "last.pt")), log=lines.append)
    assert any("warm start from" in line and "feedback starts at zero" in line for line in lines)
    _, trained, _ = load_checkpoint(tmp_path / "ladder" / "last.pt")
    assert trained["top_feedback.1.weight"].abs().sum() > 0


def test_a_warm_start_refuses_a_checkpoint_of_another_shape(tmp_path):
    from rladder_stream.training.train import warm_start

    train(_tiny(tmp_path, model="omm-hrnn", out=str(tmp_path / "hrnn")), log=lambda s: None)
    ladder = build_model(get_config("omm-rladder", size="tiny", decoder_to_encoder_entry="input"))
    before = {k: v.clone() for k, v in ladder.state_dict().items()}
    with pytest.raises(ValueError, match="tensors of another shape: encoders.0"):
        warm_start(ladder, str(tmp_path / "hrnn" / "last.pt"), log=lambda s: None)
    assert all(torch.equal(before[k], v) for k, v in ladder.state_dict().items())  # nothing copied


def test_a_detached_decoder_sends_the_encoder_no_prediction_gradient():
    """decoder_input_detach: the prediction cost trains the decoder only (no encoder gradient), the class cost
    still trains the encoder, and the forward pass is unchanged."""
    torch.manual_seed(0)
    attached = build_model(get_config("omm-rladder", size="tiny"))
    detached = build_model(get_config("omm-rladder", size="tiny", decoder_input_detach=True))
    detached.load_state_dict(attached.state_dict())
    inputs = torch.rand(2, 3, 32, 32)
    out_a, out_d = attached(inputs)[0], detached(inputs)[0]
    assert torch.equal(out_a["prediction_logits"], out_d["prediction_logits"])
    for model, out in ((attached, out_a), (detached, out_d)):
        model.zero_grad()
        out["prediction_logits"].sum().backward(retain_graph=True)
        encoder_grad = sum(p.grad.abs().sum() for n, p in model.named_parameters() if n.startswith("encoders.") and p.grad is not None)
        decoder_grad = sum(p.grad.abs().sum() for n, p in model.named_parameters() if n.startswith("decoders.") and p.grad is not None)
        assert decoder_grad > 0
        assert (encoder_grad == 0) == (model is detached)
    detached.zero_grad()
    out_d["class_logits"].sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in detached.named_parameters() if n.startswith("encoders."))


def test_ctrl_c_and_sigterm_write_a_checkpoint_and_the_same_command_resumes_with_a_continuous_log(tmp_path):
    """A real process: SIGINT during training ends it with status 130, one line saying where it stopped and how to
    resume, and last.pt at that step; the same command resumes there; SIGTERM does the same (143); the third run
    finishes. log.csv then holds every step once, in order."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    command = [sys.executable, "-m", "rladder_stream", "train", "omm-rladder", "--out", str(out), "--set", "size=tiny",
               "epochs=1", "train_sequences=240", "batch_size=8", "valid_sequences=16", "test_sequences=16",
               "eval_batch_size=16", "log_every=1", "warmup_steps=2", "calibration_sequences=16"]  # 30 steps
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def interrupt(sig: int, after_step: int) -> tuple[int, str]:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("step ") and int(line.split()[1].split("/")[0]) >= after_step:
                process.send_signal(sig)
                break
        more, _ = process.communicate(timeout=300)
        return process.returncode, "".join(lines) + more

    status, err = interrupt(signal.SIGINT, 5)
    assert status == 130 and "Traceback" not in err
    said = err.strip().splitlines()[-1]
    assert said.startswith("rladder-stream train: interrupted at step ") and "run the same command again" in said
    first_stop = int(said.split("interrupted at step ")[1].split("/")[0])
    assert first_stop >= 5 and load_checkpoint(out / "last.pt")[2]["step"] == first_stop

    status, err = interrupt(signal.SIGTERM, first_stop + 5)
    assert status == 143 and f"resumed from {out / 'last.pt'} at step {first_stop}/30" in err
    second_stop = int(err.strip().splitlines()[-1].split("interrupted at step ")[1].split("/")[0])
    assert second_stop > first_stop

    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert finished.returncode == 0 and f"at step {second_stop}/30" in finished.stdout
    with (out / "log.csv").open() as f:
        steps = [int(row["step"]) for row in csv.DictReader(f) if row["kind"] == "train" and row["metric"] == "total"]
    assert steps == list(range(1, 31))


def test_a_fresh_run_says_so_and_keeps_a_log_it_did_not_resume(tmp_path):
    """No last.pt: the run says it starts at step 0, and a log.csv already there (a run killed before its first
    checkpoint) is moved aside, not appended to."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "log.csv").write_text("kind,step,epoch,train_time_s,lr,metric,value\ntrain,7,0.1,1.0,0.001,total,3.0\n")
    lines: list[str] = []
    train(_tiny(tmp_path), log=lines.append)
    assert f"no checkpoint in {out}: starting at step 0" in lines
    kept = [p for p in out.iterdir() if p.name.startswith("log-") and p.suffix == ".csv"]
    assert len(kept) == 1 and "train,7," in kept[0].read_text()
    assert "train,7," not in (out / "log.csv").read_text()
    assert any(kept[0].name in line for line in lines)


def test_a_checkpoint_is_written_when_its_minutes_have_passed(tmp_path, monkeypatch):
    """checkpoint_minutes: last.pt is written once that much time passed since the last one, mid-epoch."""
    from rladder_stream.training import train as train_module

    clock = iter(range(0, 10**6, 60))  # every reading of the clock one minute later
    real = time.perf_counter
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: next(clock))
    saves: list[int] = []
    original = train_module.TrainingRun.save
    monkeypatch.setattr(train_module.TrainingRun, "save", lambda self: (saves.append(self.step), original(self))[1])
    train(_tiny(tmp_path, train_sequences=80, checkpoint_minutes=2.0), log=lambda s: None)
    monkeypatch.setattr(train_module.time, "perf_counter", real)
    assert len([s for s in saves if s < 10]) >= 3  # mid-epoch saves (the epoch ends at step 10)


@pytest.mark.parametrize("setting, message", [("lr=-1", "lr must be > 0"), ("batch_size=0", "batch_size must be >= 1"),
                                              ("epochs=-1", "epochs must be >= 1"), ("lr=NaN", "lr must be > 0"),
                                              ("compile_mode=fast", "compile_mode must be one of"),
                                              ("ema_decay=2", "ema_decay must be in [0, 1]")])
def test_settings_are_checked_by_value_before_anything_is_made(tmp_path, capsys, setting, message):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train_cli_main(["omm-rladder", "--set", "size=tiny", setting, "--out", str(out)])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()  # nothing made


def test_a_gpu_this_torch_cannot_use_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        train_cli_main(["omm-rladder", "--set", "size=tiny", "device=cuda", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "device=cuda: this torch" in err[0] and "sees no CUDA GPU" in err[0]


@pytest.mark.counts_compute
@pytest.mark.parametrize("bf16_faster", [False, True])
def test_cpu_bf16_warns_where_the_cpu_multiplies_bf16_slower_than_float32(tmp_path, monkeypatch, bf16_faster):
    """On a CPU without bf16 matrix instructions autocast to bf16 is emulated (measured on one such CPU: 0.57 against
    38 GFLOP/s in float32): the run says so, with the setting that trains faster; where bf16 is faster, nothing."""
    from rladder_stream.training import train as train_module

    def peak(device, quick=False, cpu_bf16=False):
        return (4e10 if bf16_faster else 1e9) if cpu_bf16 else 2e10, "fake"

    monkeypatch.setattr(train_module, "measure_peak", peak)
    lines: list[str] = []
    train_module.TrainingRun(_tiny(tmp_path, cpu_bf16=True), log=lines.append)  # measures as it starts
    warned = [line for line in lines if line.startswith("warning: cpu_bf16")]
    assert len(warned) == (0 if bf16_faster else 1)
    if warned:
        assert "1 GFLOP/s against 20 in float32" in warned[0] and "cpu_bf16=false" in warned[0]


def test_true_starts_start_the_flagged_images_at_their_true_segmentation():
    """true_start_steps (a diagnostic): a flagged image's masks start at its true segmentation, the others at the
    model's own random start, drawn from the global generator as without the setting; no flag: the model's start."""
    from rladder_stream.model.tagger import masks_from_groups
    from rladder_stream.training.train import WithCosts

    cfg = get_config("shapes-tagger", size="tiny")
    model = build_model(cfg)
    task = TASKS[task_for(cfg)](cfg, TrainConfig(model="shapes-tagger", size="tiny"))
    batch = task.train_batch(np.random.default_rng(0), 4, torch.device("cpu"))
    forward = WithCosts(model, task)
    assert forward.start_state(batch) is None
    batch["true_start"] = torch.tensor([True, False, True, False])
    torch.manual_seed(3)
    state = forward.start_state(batch)
    torch.manual_seed(3)
    own = model.init_state(4)
    true = masks_from_groups(batch["true_groups"][:, 0], cfg.groups)
    torch.testing.assert_close(state["m"][[0, 2]], true[[0, 2]])
    assert torch.equal(state["m"][[1, 3]], own["m"][[1, 3]])
    assert all(torch.equal(state[k], own[k]) for k in own if k != "m")


def test_a_run_with_true_starts_learns_otherwise_and_resumes_exactly(tmp_path):
    """true_start_steps changes what a run learns (the flags are drawn from (seed, step), so it resumes exactly) and
    is refused, with nothing made, for a model without groups."""
    quiet = lambda s: None  # noqa: E731
    run = dict(model="shapes-tagger", epochs=1, train_sequences=32, valid_sequences=4, test_sequences=4)
    train(_tiny(tmp_path, out=str(tmp_path / "own"), **run), log=quiet)
    train(_tiny(tmp_path, out=str(tmp_path / "true"), true_start_steps=3, **run), log=quiet)
    assert train(_tiny(tmp_path, out=str(tmp_path / "resumed"), true_start_steps=3, stop_after_steps=1, **run),
                 log=quiet) == {"interrupted_at": 1}
    train(_tiny(tmp_path, out=str(tmp_path / "resumed"), true_start_steps=3, **run), log=quiet)
    weights = {name: load_checkpoint(tmp_path / name / "last.pt")[1] for name in ("own", "true", "resumed")}
    assert any(not torch.equal(weights["own"][k], weights["true"][k]) for k in weights["own"])
    assert all(torch.equal(weights["true"][k], weights["resumed"][k]) for k in weights["true"])
    with pytest.raises(ValueError, match="true_start_steps=5: omm-rladder has no groups"):
        train(_tiny(tmp_path, out=str(tmp_path / "plain"), true_start_steps=5), log=quiet)
    assert not (tmp_path / "plain").exists()
