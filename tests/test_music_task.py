"""Music training task (docs/design.md#polyphonic-music, #table-3): the field's NLL convention, agreement with
PolyphonicMusic-v0, the
same-protocol LSTM/GRU baselines as configurations of the same code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rladder_stream import Predictor
from rladder_stream.envs.data.music import load_music
from rladder_stream.envs.polyphonic_music import PolyphonicMusicEnv, nll_per_step
from rladder_stream.model.registry import get_config
from rladder_stream.model.registry import build_model
from rladder_stream.training.losses import batch_metrics, bernoulli_nll
from rladder_stream.training.tasks import TASKS, MusicTask, task_for
from rladder_stream.training.train import TrainConfig, evaluate


def _perturbed(name: str, size: str = "tiny", seed: int = 0) -> torch.nn.Module:
    """A tiny model moved off its init, so that its forecasts differ from key to key and from step to step."""
    gen = torch.Generator().manual_seed(seed)
    model = build_model(get_config(name, size=size))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


def _task(dataset: str = "embedded") -> MusicTask:
    return MusicTask(get_config("music-rladder", size="tiny"), TrainConfig(model="music-rladder", dataset=dataset))


def test_nll_per_step_is_the_fields_convention_by_hand(embedded_data):
    """Two pieces of 2 and 3 steps in one padded batch: 5 scored steps, the first of each from silence."""
    a = np.zeros((2, 88), np.uint8)
    a[0, [39, 43]] = 1  # C4 + E4, then silence
    b = np.zeros((3, 88), np.uint8)
    b[:, 46] = 1  # G4 held for three steps
    task = _task()
    task._splits["test"] = [np.concatenate([np.zeros((1, 88), np.uint8), r]) for r in (a, b)]
    (batch,) = task.eval_batches("test", batch_size=8)
    assert batch["inputs"].shape == (2, 3, 88) and int(batch["mask"].sum()) == 5
    assert not batch["inputs"][:, 0].any()  # the first input is silence
    np.testing.assert_array_equal(batch["next_targets"][0].numpy(), b)  # longest first: b, then a (padded)
    np.testing.assert_array_equal(batch["next_targets"][1, :2].numpy(), a)
    rng = np.random.default_rng(0)
    logits = torch.as_tensor(rng.normal(size=(2, 3, 88)), dtype=torch.float32)
    # By hand: p = sigmoid(logit); per step -sum_k [y log p + (1 - y) log(1 - p)]; mean over the 5 real steps.
    p = 1 / (1 + np.exp(-logits.double().numpy()))
    y = batch["next_targets"].double().numpy()
    per_step = -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(-1)
    real = batch["mask"].numpy()
    hand = per_step[real].sum() / 5
    assert per_step[real].shape == (5,)
    assert bernoulli_nll(logits, batch["next_targets"], batch["mask"]).item() == pytest.approx(hand, rel=1e-5)
    total, count = batch_metrics({"prediction_logits": logits}, batch)["prediction_nll"]
    assert count == 5 and total / count == pytest.approx(hand, rel=1e-5)
    logits[1, 0, 3] = float("nan")  # a diverged model: NaN metrics, not an exception in the middle of a run
    metrics = batch_metrics({"prediction_logits": logits}, batch)
    assert np.isnan(metrics["prediction_nll"][0]) and np.isnan(metrics["prediction_mse"][0])
    assert task.eval_size("test") == 2


def test_training_batches_are_a_pure_function_of_the_rng_and_score_the_first_step(embedded_data):
    task = _task()
    one, two = task.train_batch(np.random.default_rng([3, 7]), 6), task.train_batch(np.random.default_rng([3, 7]), 6)
    for key in one:
        assert torch.equal(one[key], two[key]), key
    assert one["inputs"].shape == (6, task.train_steps, 88) == one["next_targets"].shape
    # Each input is the previous step's target: the model forecasts what comes next.
    torch.testing.assert_close(one["inputs"][:, 1:], one["next_targets"][:, :-1])
    draws = [task.train_batch(np.random.default_rng([3, s]), 64) for s in range(4)]
    starts_with_silence = [bool((~d["inputs"][:, 0].bool().any(-1)).any()) for d in draws]
    assert any(starts_with_silence)  # crops at the start of a piece learn the first-step forecast too


@pytest.mark.parametrize("name", ["music-rladder", "music-lstm"])
def test_environment_rewards_equal_the_training_metric(name, embedded_data):
    """Streaming each test piece through PolyphonicMusic-v0 (score_first_step=True) and summing the rewards gives
    the NLL per time step that training's evaluate() reports for the same model on the same pieces."""
    model = _perturbed(name)
    task = MusicTask(model.config, TrainConfig(model=name, dataset="embedded"))
    metric = evaluate(model, task, "test", limit=None, batch_size=3, device=torch.device("cpu"))["prediction_nll"]
    env = PolyphonicMusicEnv("embedded", split="test", score_first_step=True)
    predictor = Predictor(model)
    total, steps = 0.0, 0
    for index in range(env.n_sequences):
        obs, _ = env.reset(options={"index": index})
        predictor.reset()
        terminated = False
        while not terminated:
            obs, reward, terminated, _, _ = env.step(predictor.step(obs).action())
            total += reward
            steps += 1
    assert steps == sum(len(r) for r in load_music("embedded")["test"])
    assert nll_per_step(total, steps) == pytest.approx(metric, rel=1e-5)
    assert metric > 10  # an untrained model: far from a trained one


def test_music_configs_pick_the_music_task_and_the_named_data_set(embedded_data):
    for name in ("music-rladder", "music-lstm", "music-gru"):
        assert task_for(get_config(name, size="tiny")) == "music" and TASKS["music"] is MusicTask
    task = _task("EMBEDDED")
    assert task.dataset == "embedded" and "12/4/4" in task.data_source
    with pytest.raises(ValueError, match="unknown music data set"):
        _task("bach")
    with pytest.raises(ValueError, match="88"):
        MusicTask(get_config("omm-rladder", size="tiny"), TrainConfig())


@pytest.mark.parametrize("size", ["tiny", "cpu", "gpu"])
def test_baselines_are_the_same_code_with_about_the_rladders_size(size):
    rladder = build_model(get_config("music-rladder", size=size))
    for name, cell in (("music-lstm", "LSTMCell"), ("music-gru", "GRUCell")):
        cfg = get_config(name, size=size)
        model = build_model(cfg)
        assert type(model) is type(rladder)  # one model class: a configuration, not a copy
        assert cfg.levels == () and not cfg.decoder and cfg.prediction_readout == "top"
        assert type(model.top_encoder).__name__ == cell and not hasattr(model, "decoders")
        assert set(model.state_spec()) <= {"top.h", "top.c"}
        assert abs(model.num_parameters() / rladder.num_parameters() - 1) < 0.1, (name, size)
    assert rladder.config.decoder and rladder.config.prediction_readout == "decoder"


@pytest.mark.parametrize("name", ["music-rladder", "music-lstm", "music-gru"])
def test_untrained_music_models_forecast_the_base_rate(name):
    """prediction_bias: every music model starts at about 4 of 88 keys on, not at 0.5."""
    from rladder_stream.model.registry import MUSIC_PREDICTION_BIAS

    model = build_model(get_config(name, size="tiny")).eval()
    probs = Predictor(model).step(np.zeros(88, np.float32)).next_obs
    assert np.allclose(probs, 1 / (1 + np.exp(-MUSIC_PREDICTION_BIAS)), atol=0.03) and 0.03 < probs.mean() < 0.07
    assert get_config("omm-rladder", size="tiny").prediction_bias == 0.0  # other configs unchanged


def test_top_readout_is_rejected_where_it_makes_no_sense():
    with pytest.raises(ValueError, match="prediction_readout"):
        get_config("music-lstm", size="tiny", prediction_readout="middle")
    with pytest.raises(ValueError, match="decoder"):
        get_config("music-lstm", size="tiny", decoder_to_encoder=True)
