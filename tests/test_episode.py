"""The one streaming loop (:func:`rladder_stream.streaming.episode.play_episode`): each tick is the contract's loop
step by step, and a predictor without a forecast gets the uninformative one, in the benchmark and in MIDI
streaming alike (the figures' case: tests/test_viz.py streams the hierarchical RNN)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import rladder_stream.envs  # noqa: F401  (registers the environment ids)
from rladder_stream.apps.benchmark import benchmark
from rladder_stream.apps.stream_midi import stream_midi
from rladder_stream.envs.data.midi import piano_roll_to_midi
from rladder_stream.streaming.baselines import RepeatLastPredictor
from rladder_stream.streaming.episode import action_for, play_episode
from rladder_stream.streaming.outputs import StepOutput

ENV_ID = "rladder_stream/PolyphonicMusic-v0"
ROLL = (np.random.default_rng(0).random((6, 88)) < 0.1).astype(np.uint8)
KNOWING_NOTHING = 88 * math.log(0.5)  # the log-likelihood of any 88-key step under the forecast 0.5


class NoForecast:
    """A predictor that makes no forecast, as the hierarchical RNN: class beliefs at most."""

    obs_shape = (88,)

    def __init__(self, class_probs: np.ndarray | None = None):
        self.class_probs = class_probs

    def reset(self, stream_ids=None) -> None:
        pass

    def step(self, obs: np.ndarray) -> StepOutput:
        return StepOutput(class_probs=self.class_probs)


def test_ticks_are_the_contract_loop_step_by_step():
    ticks = list(play_episode(RepeatLastPredictor((88,), eps=0.01), gym.make(ENV_ID, sequences=[ROLL]), seed=0))
    env, predictor = gym.make(ENV_ID, sequences=[ROLL]), RepeatLastPredictor((88,), eps=0.01)
    obs, _ = env.reset(seed=0)  # docs/design.md#the-environments-contract, by hand
    predictor.reset()
    observed, rewards, actions = [obs], [], []
    while True:
        actions.append(predictor.step(obs).action())
        obs, reward, terminated, truncated, _ = env.step(actions[-1])
        observed.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    assert [tick.index for tick in ticks] == list(range(len(rewards))) and len(rewards) == len(ROLL) - 1
    assert [tick.reward for tick in ticks] == rewards
    assert [tick.last for tick in ticks] == [False] * (len(rewards) - 1) + [True]
    for tick, before, after, action in zip(ticks, observed, observed[1:], actions):
        np.testing.assert_array_equal(tick.obs, before)
        np.testing.assert_array_equal(tick.next_obs, after)
        np.testing.assert_array_equal(tick.action, action)
        np.testing.assert_array_equal(tick.forecast, tick.out.next_obs)


def test_a_predictor_without_forecast_gets_the_uninformative_one():
    ticks = list(play_episode(NoForecast(), gym.make(ENV_ID, sequences=[ROLL])))
    assert len(ticks) == len(ROLL) - 1
    for tick in ticks:
        assert tick.out.next_obs is None and tick.forecast.dtype == np.float32 and (tick.forecast == 0.5).all()
        assert tick.reward == pytest.approx(KNOWING_NOTHING, rel=1e-6)
    beliefs = np.full(10, 0.1, np.float32)
    action = action_for(StepOutput(class_probs=beliefs), (32, 32))  # the digit environments: beliefs go along
    assert action["class_probs"] is beliefs and action["forecast"].shape == (32, 32) and (action["forecast"] == 0.5).all()
    forecast = StepOutput(next_obs=np.full(88, 0.2, np.float32), class_probs=beliefs)
    assert action_for(forecast, (88,)).keys() == forecast.action().keys()


def test_the_benchmark_and_midi_streaming_follow_the_same_rule(tmp_path):
    result = benchmark(ENV_ID, NoForecast(), 1, sequences=[ROLL])
    assert result.n_steps == len(ROLL) - 1 and result.nll_per_step == pytest.approx(-KNOWING_NOTHING, rel=1e-6)
    midi = piano_roll_to_midi(ROLL, tmp_path / "song.mid")
    record = stream_midi(NoForecast(), midi, continue_steps=3)
    assert record.nll_per_step == pytest.approx(-KNOWING_NOTHING, rel=1e-6)
    assert (record.forecasts == 0.5).all() and (record.continuation_forecasts == 0.5).all()
