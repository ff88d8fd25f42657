"""Reference predictors and the benchmark loop, checked against hand and independent numpy computations."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import rladder_stream.envs  # noqa: F401  (registers the environment ids)
from rladder_stream.apps.benchmark import BenchmarkResult, benchmark, benchmark_cli_main, format_table
from rladder_stream.envs.data.music import load_music
from rladder_stream.streaming.baselines import MarginalPredictor, RepeatLastPredictor
from rladder_stream.streaming.outputs import StepOutput, StreamingPredictor
from rladder_stream.training.metrics import grouping_ami as _ami

ENV_ID = "rladder_stream/PolyphonicMusic-v0"
C4, E4 = 60 - 21, 64 - 21


def _ll(target: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Independent Bernoulli log-likelihood per row (no clipping needed for p inside (0, 1))."""
    return np.sum(target * np.log(p) + (1 - target) * np.log(1 - p), axis=-1)


# ----------------------------------------------------------------------------------------- predictors


def test_repeat_last_forecast_and_batching():
    p = RepeatLastPredictor((88,), eps=0.05)
    assert isinstance(p, StreamingPredictor)
    obs = np.zeros(88, np.float32)
    obs[[3, 50]] = 1
    out = p.step(obs)
    assert isinstance(out, StepOutput) and out.class_probs is None and out.groups is None
    assert out.next_obs.shape == (88,) and out.next_obs.dtype == np.float32
    np.testing.assert_allclose(out.next_obs, 0.05 + 0.9 * obs)
    assert out.action() is not None
    batch = RepeatLastPredictor((4, 4), n_streams=3)
    frames = np.random.default_rng(0).random((3, 4, 4))
    np.testing.assert_allclose(batch.step(frames).next_obs, 0.01 + 0.98 * frames, rtol=1e-6)
    with pytest.raises(ValueError):
        batch.step(frames[0])  # unbatched only for one stream
    with pytest.raises(ValueError):
        p.step(np.zeros(87))
    with pytest.raises(ValueError):
        p.step(np.full(88, 2.0))
    with pytest.raises(ValueError):
        batch.reset([3])
    with pytest.raises(ValueError):
        RepeatLastPredictor((88,), eps=0.5)


def test_marginal_fit_with_prior():
    rows = np.array([[1, 0, 1], [1, 0, 0], [1, 0, 0], [1, 0, 1]], np.float32)
    m = MarginalPredictor.fit([rows[:2], rows[2:]], obs_shape=(3,), prior=1.0)
    np.testing.assert_allclose(m.marginal, [(4 + 0.5) / 5, 0.5 / 5, 2.5 / 5], rtol=1e-6)
    out = m.step(np.zeros(3))
    np.testing.assert_allclose(out.next_obs, m.marginal)
    out.next_obs[0] = 0  # a copy, not the model
    assert m.marginal[0] > 0
    single = MarginalPredictor.fit(list(rows))  # items are single observations
    np.testing.assert_allclose(single.marginal, m.marginal)
    with pytest.raises(ValueError):
        MarginalPredictor.fit([np.zeros((2, 3)), np.zeros((2, 4))], obs_shape=(3,))
    with pytest.raises(ValueError):
        MarginalPredictor.fit([])
    assert MarginalPredictor(np.full((2, 2), 0.5), n_streams=2).step(np.zeros((2, 2, 2))).next_obs.shape == (2, 2, 2)


def test_marginal_from_env_equals_fit_on_the_rolls():
    from_env = MarginalPredictor.from_env(ENV_ID, dataset="embedded", split="train")
    direct = MarginalPredictor.fit(load_music("embedded")["train"], obs_shape=(88,))
    np.testing.assert_allclose(from_env.marginal, direct.marginal, rtol=1e-6)
    # score_first_step's silent pre-step is not an observation of the data
    skipped = MarginalPredictor.from_env(ENV_ID, dataset="embedded", split="train", score_first_step=True)
    np.testing.assert_allclose(skipped.marginal, direct.marginal, rtol=1e-6)


@pytest.mark.parametrize("score_first_step", [False, True])
def test_marginal_nll_per_step_matches_numpy(score_first_step):
    """The env's rewards, summed by benchmark(), against a direct computation on the piano rolls."""
    data = load_music("embedded")
    predictor = MarginalPredictor.fit(data["train"], obs_shape=(88,))
    test = data["test"]
    result = benchmark(ENV_ID, predictor, len(test), dataset="embedded", split="test", score_first_step=score_first_step)
    p = predictor.marginal.astype(np.float64)
    scored = [roll if score_first_step else roll[1:] for roll in test]  # field convention: all T steps
    expected_total = sum(float(_ll(r.astype(np.float64), p).sum()) for r in scored)
    n = sum(len(r) for r in scored)
    assert result.n_steps == n
    assert result.nll_per_step == pytest.approx(-expected_total / n, rel=1e-9)
    assert result.mean_reward * len(test) == pytest.approx(expected_total, rel=1e-9)
    expected_mse = np.mean([np.mean((p - row) ** 2) for r in scored for row in r])
    assert result.mse_per_pixel == pytest.approx(expected_mse, rel=1e-9)


# ----------------------------------------------------------------------------------------- benchmark


def test_benchmark_repeat_last_by_hand():
    """Steps C4, C4, E4: forecasts from C4 twice. Step 2 is all right; step 3 misses C4 (on) and E4 (off)."""
    roll = np.zeros((3, 88), np.uint8)
    roll[0, C4] = roll[1, C4] = roll[2, E4] = 1
    eps = 0.01
    result = benchmark(ENV_ID, RepeatLastPredictor((88,), eps=eps), 1, sequences=[roll])
    total = 174 * math.log(1 - eps) + 2 * math.log(eps)
    assert result.n_episodes == 1 and result.n_steps == 2
    assert result.mean_reward == pytest.approx(total, rel=1e-6) and result.std_reward == 0
    assert result.nll_per_step == pytest.approx(-total / 2, rel=1e-6)
    mse = (eps**2 + (2 * (1 - eps) ** 2 + 86 * eps**2) / 88) / 2
    assert result.mse_per_pixel == pytest.approx(mse, rel=1e-5)
    assert result.class_error_pct is None and result.ami is None and result.ticks_per_s > 0
    # Two episodes: the sequence above, then a constant one (all steps predicted right).
    still = np.zeros((4, 88), np.uint8)
    two = benchmark(ENV_ID, RepeatLastPredictor((88,), eps=eps), 2, sequences=[roll, still])
    rewards = [total, 3 * 88 * math.log(1 - eps)]
    assert two.episode_rewards == pytest.approx(rewards, rel=1e-6)
    assert two.std_reward == pytest.approx(np.std(rewards), rel=1e-6)
    assert two.nll_per_step == pytest.approx(-sum(rewards) / 5, rel=1e-6)


class _GroupsEnv(gym.Env):
    """Two-step toy environment with ground-truth groups and a class check at the end."""

    def __init__(self):
        self.observation_space = spaces.Box(0, 1, (2, 2), np.float32)
        self.action_space = spaces.Box(0, 1, (2, 2), np.float32)
        # the groups of the observation at reset (columns), after step 1 (rows), after step 2 (with an ignored pixel)
        self.truth = [np.array([[0, 1], [0, 1]]), np.array([[0, 0], [1, 1]]), np.array([[0, 1], [-1, 1]])]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros((2, 2), np.float32), {"groups": self.truth[0]}

    def step(self, action):
        self.t += 1
        done = self.t == 2
        info = {"groups": self.truth[self.t]}
        if done:
            info["class_correct"] = self.correct
        return np.ones((2, 2), np.float32), 0.0, done, False, info


class _GroupsPredictor:
    def __init__(self):
        # tick 1 forecasts the rows of the next observation exactly (AMI 1; against the current observation's
        # columns it would be 0); tick 2 puts every pixel in one group (AMI 0)
        rows = np.array([[[1, 1], [0, 0]], [[0, 0], [1, 1]]], np.float32)
        self.masks = [rows, np.stack([np.ones((2, 2)), np.zeros((2, 2))]).astype(np.float32)]

    def reset(self, stream_ids=None):
        self.t = 0

    def step(self, obs):
        self.t += 1
        return StepOutput(next_obs=np.full((2, 2), 0.5, np.float32), groups=self.masks[self.t - 1])


def test_benchmark_ami_and_classification():
    env = _GroupsEnv()
    env.correct = False
    result = benchmark(env, _GroupsPredictor(), 2)
    assert result.ami == pytest.approx(0.5)  # mean of 1 and 0 per tick: scored against the forecast frame's groups
    assert result.class_error_pct == 100.0
    assert result.mse_per_pixel == pytest.approx(0.25)
    env.correct = True
    assert benchmark(env, _GroupsPredictor(), 3).class_error_pct == 0.0


def test_ami_helper():
    truth = np.array([[0, 0, 1], [1, -1, 2]])
    perfect = np.stack([truth == k for k in (2, 0, 1)]).astype(np.float32)  # permuted labels
    perfect[:, 1, 1] = [1, 0, 0]  # the ignored pixel may be anything
    assert _ami(truth, perfect) == pytest.approx(1.0)
    assert _ami(np.full((2, 2), -1), np.ones((1, 2, 2))) is None
    # docs/design.md#ami: max normalisation, which differs from scikit-learn's default (arithmetic) on a partial match
    from sklearn.metrics import adjusted_mutual_info_score

    true, pred = np.array([0, 0, 0, 1, 1, 1, 2, 2]), np.array([0, 0, 1, 1, 1, 1, 1, 0])
    masks = np.stack([pred == k for k in range(2)]).astype(np.float32)
    expected = adjusted_mutual_info_score(true, pred, average_method="max")
    assert expected != pytest.approx(adjusted_mutual_info_score(true, pred), abs=1e-3)
    assert _ami(true, masks) == pytest.approx(expected)
    with pytest.raises(ValueError):
        _ami(truth, np.ones((2, 3, 3)))


def test_format_table_and_cli(capsys):
    result = benchmark(ENV_ID, RepeatLastPredictor((88,)), 2, dataset="embedded")
    table = format_table([result, result])
    assert table.count("\n") == 3 and "repeat-last" in table and "NLL/step" in table
    assert isinstance(result, BenchmarkResult)
    assert benchmark_cli_main(["PolyphonicMusic-v0", "--episodes", "2", "--env-arg", "dataset=embedded"]) == 0
    assert f"{result.nll_per_step:.4f}" in capsys.readouterr().out  # same episodes, same number
    assert benchmark_cli_main(["PolyphonicMusic-v0", "--predictor", "marginal", "--episodes", "4", "--json",
                               "--env-arg", "dataset=embedded"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["predictor"] == "marginal" and out["n_episodes"] == 4
    loaded = []
    benchmark_cli_main(["PolyphonicMusic-v0", "--predictor", "some.ckpt", "--episodes", "1", "--env-arg",
                        "dataset=embedded"], load_checkpoint=lambda path: loaded.append(path) or RepeatLastPredictor((88,)))
    assert loaded == ["some.ckpt"] and "some.ckpt" in capsys.readouterr().out
