"""The stateful Predictor: streaming equals the sequence forward, streams are independent, bad inputs change nothing."""

from __future__ import annotations

import numpy as np
import pytest
from bad_inputs import bad_observations
import torch

from rladder_stream import Predictor, build_model, get_config
from rladder_stream.streaming.outputs import StepOutput, StreamingPredictor


def _model(name="omm-rladder", dtype=torch.float32):
    model = build_model(get_config(name, size="tiny")).to(dtype)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def test_predictor_follows_the_streaming_protocol():
    assert isinstance(Predictor(_model()), StreamingPredictor)


@pytest.mark.parametrize("name", ["omm-rladder", "music-rladder", "omm-hrnn"])
def test_streaming_step_by_step_equals_sequence_forward_float64(name):
    model = _model(name, torch.float64)
    rng = np.random.default_rng(0)
    seq = rng.random((3, 6, *model.config.obs_shape))
    with torch.no_grad():
        outputs, _ = model(torch.as_tensor(seq))
    predictor = Predictor(model, n_streams=3)
    for t in range(seq.shape[1]):
        out = predictor.step(seq[:, t])
        if model.config.predict:
            want = torch.sigmoid(outputs["prediction_logits"][:, t]).numpy()
            assert np.abs(out.next_obs - want).max() <= 1e-6
        if model.config.n_classes:
            want = torch.softmax(outputs["class_logits"][:, t], -1).numpy()
            assert np.abs(out.class_probs - want).max() <= 1e-6


def test_state_carries_across_calls_like_one_stream():
    model = _model()
    rng = np.random.default_rng(1)
    frames = rng.random((5, 32, 32)).astype(np.float32)
    one = Predictor(model)
    carried = [one.step(f).next_obs for f in frames]
    fresh = Predictor(model)
    without_memory = fresh.step(frames[-1]).next_obs
    with torch.no_grad():
        whole = torch.sigmoid(model(torch.as_tensor(frames)[None])[0]["prediction_logits"][0]).numpy()
    np.testing.assert_allclose(np.stack(carried), whole, atol=1e-5)
    assert not np.allclose(carried[-1], without_memory, atol=1e-4)  # the state really carried something


def test_streams_are_independent_and_reset_touches_only_the_named_ones():
    model = _model()
    rng = np.random.default_rng(2)
    frames = rng.random((6, 3, 32, 32)).astype(np.float32)
    batch = Predictor(model, n_streams=3)
    singles = [Predictor(model) for _ in range(3)]
    for t in range(6):
        if t == 3:
            batch.reset([1])
            singles[1].reset()
        out = batch.step(frames[t])
        for i, single in enumerate(singles):
            np.testing.assert_allclose(out.next_obs[i], single.step(frames[t, i]).next_obs, atol=1e-5)
    assert list(batch.ticks) == [6, 3, 6]


def test_unbatched_and_batched_outputs_and_action():
    predictor = Predictor(_model())
    out = predictor.step(np.zeros((32, 32), np.float32))
    assert isinstance(out, StepOutput)
    assert out.next_obs.shape == (32, 32) and out.class_probs.shape == (10,)
    assert np.isclose(out.class_probs.sum(), 1.0, atol=1e-5)
    assert ((out.next_obs >= 0) & (out.next_obs <= 1)).all()
    action = out.action()
    assert set(action) == {"forecast", "class_probs"} and action["forecast"].dtype == np.float32
    out1 = predictor.step(np.zeros((1, 32, 32), np.float32))
    assert out1.next_obs.shape == (1, 32, 32)
    music = Predictor(_model("music-rladder")).step(np.zeros(88, np.float32))
    assert music.class_probs is None and isinstance(music.action(), np.ndarray)
    hrnn = Predictor(_model("omm-hrnn")).step(np.zeros((32, 32), np.float32))
    with pytest.raises(ValueError, match="no next-observation forecast"):
        hrnn.action()


@pytest.mark.parametrize("bad, message", bad_observations())
def test_bad_input_raises_and_leaves_state_bit_identical(bad, message):
    predictor = Predictor(_model(), n_streams=2)
    predictor.step(np.random.default_rng(0).random((2, 32, 32)).astype(np.float32))
    before = {k: v.clone() for k, v in predictor.state.items()}
    ticks = predictor.ticks.copy()
    with pytest.raises(ValueError, match=message):
        predictor.step(bad)
    assert all(torch.equal(before[k], predictor.state[k]) for k in before)
    assert (predictor.ticks == ticks).all()


def test_bad_reset_ids_raise_and_change_nothing():
    predictor = Predictor(_model(), n_streams=2)
    predictor.step(np.full((2, 32, 32), 0.3, np.float32))
    before = {k: v.clone() for k, v in predictor.state.items()}
    with pytest.raises(ValueError, match="out of range"):
        predictor.reset([0, 2])
    assert all(torch.equal(before[k], predictor.state[k]) for k in before)


def test_torch_and_bool_inputs_are_accepted():
    predictor = Predictor(_model())
    a = predictor.step(torch.ones(32, 32)).next_obs
    predictor.reset()
    b = predictor.step(np.ones((32, 32), bool)).next_obs
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64, torch.float32])
def test_every_float_tensor_is_converted_like_float16(dtype):
    """bfloat16 has no NumPy dtype; it is converted (exactly) like float16 and float64, not refused with a TypeError."""
    frames = torch.rand(3, 2, 32, 32).to(dtype)  # values representable in the dtype
    model = _model()
    reference, predictor = Predictor(model, n_streams=2), Predictor(model, n_streams=2)
    for frame in frames:
        want = reference.step(frame.float().numpy())
        got = predictor.step(frame)
        np.testing.assert_array_equal(got.next_obs, want.next_obs)
        np.testing.assert_array_equal(got.class_probs, want.class_probs)


def test_complex_and_bfloat16_out_of_range_inputs_are_value_errors():
    predictor = Predictor(_model())
    with pytest.raises(ValueError, match="dtype"):
        predictor.step(torch.zeros(32, 32, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        predictor.step(torch.full((32, 32), 2.0, dtype=torch.bfloat16))


@pytest.mark.parametrize("ids", [[1.5], [True], np.array([1.0]), ["1"], [[0, 1]]])
def test_reset_ids_must_be_integers_and_a_bad_one_changes_nothing(ids):
    predictor = Predictor(_model(), n_streams=2)
    predictor.step(np.full((2, 32, 32), 0.3, np.float32))
    before = {k: v.clone() for k, v in predictor.state.items()}
    ticks = predictor.ticks.copy()
    with pytest.raises(ValueError, match="stream ids must be"):
        predictor.reset(ids)
    assert all(torch.equal(before[k], predictor.state[k]) for k in before) and (predictor.ticks == ticks).all()


@pytest.mark.parametrize("ids", [[1], (1,), np.array([1]), torch.tensor([1]), 1, np.int64(1)])
def test_reset_accepts_integer_ids_in_any_container(ids):
    predictor = Predictor(_model(), n_streams=2)
    predictor.step(np.full((2, 32, 32), 0.3, np.float32))
    predictor.reset(ids)
    assert predictor.ticks.tolist() == [1, 0]


def test_small_cpu_streams_run_on_one_thread_unless_asked_otherwise(monkeypatch):
    """Batch-1 ticks are tiny: the thread pool costs more than it gives (and stalls beside other work), so a CPU
    Predictor of at most 4 streams sets one thread, unless threads=, $RLADDER_STREAM_THREADS, $OMP_NUM_THREADS or
    an earlier torch.set_num_threads chose otherwise; a batch of 64 streams changes nothing."""
    from rladder_stream.streaming import predictor as module

    model = build_model(get_config("omm-rladder", size="tiny"))
    before = torch.get_num_threads()
    try:
        for var in ("OMP_NUM_THREADS", module.THREADS_ENV):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setattr(module, "_TORCH_DEFAULT_THREADS", 3)
        torch.set_num_threads(3)
        assert Predictor(model, n_streams=64).threads == 3
        assert Predictor(model).threads == 1 == torch.get_num_threads()
        torch.set_num_threads(2)  # the user's own choice stays
        assert Predictor(model).threads == 2
        assert Predictor(model, threads=3).threads == 3
        monkeypatch.setenv(module.THREADS_ENV, "2")
        assert Predictor(model).threads == 2
        monkeypatch.setenv(module.THREADS_ENV, "many")
        with pytest.raises(ValueError, match="RLADDER_STREAM_THREADS"):
            Predictor(model)
    finally:
        torch.set_num_threads(before)
