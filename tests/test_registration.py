"""Every registered environment, made the ways the README shows: ``gym.make`` and ``gym.make_vec`` with the
vector entry point (the batched generator), on the embedded data."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rladder_stream.envs import env_ids
from rladder_stream.envs.polyphonic_music import PolyphonicMusicEnv

KWARGS = {"rladder_stream/PolyphonicMusic-v0": {"dataset": "embedded"}}


def forecast(space: gym.Space) -> object:
    if isinstance(space, gym.spaces.Dict):
        return {k: forecast(s) for k, s in space.spaces.items()}
    return np.full(space.shape, 0.5, np.float32)


@pytest.mark.parametrize("env_id", env_ids())
def test_every_id_makes_a_single_and_a_vector_environment(env_id, embedded_data):
    env = gym.make(env_id, split="test", **KWARGS.get(env_id, {}))
    obs, _ = env.reset(seed=0)
    vec = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", split="test", **KWARGS.get(env_id, {}))
    batch, infos = vec.reset(seed=0)
    assert batch.shape == (3, *obs.shape) and np.array_equal(batch[0], obs)
    assert "t" in infos and infos["_t"].all()
    batch, rewards, terminated, truncated, _ = vec.step(forecast(vec.action_space))
    assert batch.shape == (3, *obs.shape) and rewards.shape == (3,) and np.isfinite(rewards).all()
    assert terminated.dtype == bool and not truncated.any()
    vec.close()
    env.close()


@pytest.mark.parametrize("score_first_step", [False, True])
def test_music_vector_environment_plays_the_sequences_in_turn_as_single_environments_do(score_first_step, embedded_data):
    """Sub-environment k of 2 plays sequences k, k + 2, ...; its rewards equal a single environment's, and the
    step after a sequence ends starts the next one with reward 0 (next-step autoreset)."""
    vec = gym.make_vec("rladder_stream/PolyphonicMusic-v0", num_envs=2, vectorization_mode="vector_entry_point",
                       dataset="embedded", split="valid", score_first_step=score_first_step)
    single = PolyphonicMusicEnv("embedded", "valid", score_first_step=score_first_step)
    rng = np.random.default_rng(0)
    obs, infos = vec.reset(seed=3)
    assert list(infos["index"]) == [0, 1]
    for k in range(2):
        assert np.array_equal(obs[k], single.reset(options={"index": k})[0])
    rewards_seen, restarted = {0: [], 1: []}, {0: None, 1: None}
    while None in restarted.values():
        action = rng.uniform(0.05, 0.95, (2, 88)).astype(np.float32)
        before = vec.unwrapped._autoreset.copy()
        obs, rewards, terminated, _, infos = vec.step(action)
        for k in range(2):
            if before[k]:
                assert rewards[k] == 0.0 and restarted[k] is None
                restarted[k] = int(infos["index"][k])
            elif restarted[k] is None:
                rewards_seen[k].append((action[k], rewards[k]))
    assert restarted == {0: 2, 1: 3}
    for k in range(2):
        single.reset(options={"index": k})
        for action, reward in rewards_seen[k]:
            assert single.step(action)[1] == pytest.approx(reward, rel=1e-12)


def test_music_vector_environment_refuses_what_it_cannot_do(embedded_data):
    with pytest.raises(ValueError, match="render"):
        gym.make_vec("rladder_stream/PolyphonicMusic-v0", num_envs=2, vectorization_mode="vector_entry_point",
                     dataset="embedded", render_mode="rgb_array")
    vec = gym.make_vec("rladder_stream/PolyphonicMusic-v0", num_envs=2, vectorization_mode="vector_entry_point",
                       dataset="embedded")
    with pytest.raises(RuntimeError, match="reset"):
        vec.step(np.full((2, 88), 0.5, np.float32))
    vec.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.full((3, 88), 0.5, np.float32))
