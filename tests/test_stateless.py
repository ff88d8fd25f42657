"""The SB3-style adapter: predict(obs, state, episode_start) -> (outputs, state) equals the stateful Predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rladder_stream import Predictor, build_model, get_config
from rladder_stream.streaming.stateless import StatelessPredictor


def _model(name: str = "omm-rladder"):
    model = build_model(get_config(name, size="tiny"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("name", ["omm-rladder", "music-rladder"])
def test_predict_with_episode_starts_equals_the_predictor_with_resets(name):
    model = _model(name)
    shape = model.config.obs_shape
    rng = np.random.default_rng(0)
    frames = rng.random((8, 3, *shape)).astype(np.float32)
    starts = np.zeros((8, 3), bool)
    starts[0] = True
    starts[3, 1] = starts[5, 0] = True  # episodes that start again mid-stream
    stateful, stateless = Predictor(model, n_streams=3), StatelessPredictor(model)
    state = None
    for t in range(8):
        if t and starts[t].any():
            stateful.reset(list(np.flatnonzero(starts[t])))
        want = stateful.step(frames[t])
        got, state = stateless.predict(frames[t], state, starts[t])
        np.testing.assert_array_equal(got.next_obs, want.next_obs)
        if want.class_probs is not None:
            np.testing.assert_array_equal(got.class_probs, want.class_probs)
        assert set(state) == set(model.state_spec()) and all(isinstance(v, np.ndarray) for v in state.values())


def test_predict_is_pure_and_keeps_the_batching_convention():
    policy = StatelessPredictor(_model())
    obs = np.random.default_rng(1).random((32, 32)).astype(np.float32)
    out, state = policy.predict(obs)  # one stream, unbatched
    assert out.next_obs.shape == (32, 32) and all(v.shape[0] == 1 for v in state.values())
    copy = {k: v.copy() for k, v in state.items()}
    first, next_a = policy.predict(obs, state)
    second, next_b = policy.predict(obs, state)
    assert all(np.array_equal(copy[k], state[k]) for k in state)  # the state passed in is not modified
    np.testing.assert_array_equal(first.next_obs, second.next_obs)
    assert all(np.array_equal(next_a[k], next_b[k]) for k in next_a)
    fresh, _ = policy.predict(obs, state, episode_start=True)  # a start ignores the state given
    np.testing.assert_array_equal(fresh.next_obs, out.next_obs)


@pytest.mark.parametrize("state, start, message", [
    ({"nope": np.zeros(1)}, None, "do not match"),
    ("wrong", None, "mapping"),
    (None, np.array([1, 0]), "episode_start"),
    (None, np.ones(3, bool), "episode_start"),
])
def test_bad_state_or_episode_start_are_value_errors(state, start, message):
    policy = StatelessPredictor(_model())
    with pytest.raises(ValueError, match=message):
        policy.predict(np.zeros((2, 32, 32), np.float32), state, start)


def test_a_state_of_the_wrong_batch_is_refused():
    policy = StatelessPredictor(_model())
    _, state = policy.predict(np.zeros((2, 32, 32), np.float32))
    with pytest.raises(ValueError, match="shape"):
        policy.predict(np.zeros((3, 32, 32), np.float32), state)
