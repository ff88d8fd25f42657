"""Occluded Moving MNIST and Moving MNIST: Gymnasium contract, determinism, the generators' ground truth."""

from __future__ import annotations

import hashlib
import warnings

import gymnasium as gym
import numpy as np
import pytest
from shared_data import find_shared_data, needs_shared
from gymnasium.utils.env_checker import check_env

import rladder_stream.envs  # noqa: F401  (registers the ids)
from rladder_stream.envs.scoring import bernoulli_log_likelihood
from rladder_stream.envs.data import load_mnist
from rladder_stream.envs.moving_mnist import INK_THRESHOLD, generate_moving_batch
from rladder_stream.envs.occluded_mnist import BARS, DIGIT_STYLES, OCCLUDED, generate_occluded_batch, resize_digits

OMM = "rladder_stream/OccludedMovingMNIST-v0"
MOVING = "rladder_stream/MovingMNIST-v0"
# sha256 of the float32 little-endian frames (6 per episode) of test episodes 0..99; computed once.
OMM_TEST_100_SHA256 = "1d0ccb3086ce28691b7c5e1c5985b6e2a0dce324b9287a8ce88958e8b0c2872b"


SHARED = find_shared_data('mnist')
needs_shared_data = needs_shared('mnist')


pytestmark = pytest.mark.usefixtures("embedded_data")  # tests pass data_dir=SHARED for the full data


def _half(shape=(32, 32)) -> np.ndarray:
    return np.full(shape, 0.5, dtype=np.float32)


def _check(env_id: str, **kwargs) -> None:
    env = gym.make(env_id, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


# ---------------------------------------------------------------------------------------------- Gymnasium API


@pytest.mark.parametrize("kwargs", [{}, {"split": "test"}, {"split": "train", "labelled": 100}, {"digit_augment": True}])
def test_check_env_occluded(kwargs):
    _check(OMM, **kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"split": "valid"}])
def test_check_env_moving(kwargs):
    _check(MOVING, **kwargs)


def _play(env, seed=None, options=None, action=None):
    obs, info = env.reset(seed=seed, options=options)
    frames, rewards, infos = [obs], [], [info]
    while True:
        obs, reward, terminated, truncated, info = env.step(_half(obs.shape) if action is None else action)
        frames.append(obs)
        rewards.append(reward)
        infos.append(info)
        assert not truncated
        if terminated:
            return np.stack(frames), rewards, infos


@pytest.mark.parametrize("env_id, length", [(OMM, 6), (MOVING, 20)])
def test_seeding(env_id, length):
    env = gym.make(env_id)
    a, _, _ = _play(env, seed=7)
    b, _, _ = _play(env, seed=7)
    c, _, _ = _play(env, seed=8)
    d, _, _ = _play(env)  # unseeded continues the stream: a new episode
    assert a.shape[0] == length
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_episode_contract_occluded():
    env = gym.make(OMM, split="test")
    obs, info = env.reset(seed=0)
    assert obs.shape == (32, 32) and obs.dtype == np.float32 and info["t"] == 0
    assert "label" not in info
    label = load_mnist("test").labels[0]
    for k in range(1, 6):
        beliefs = np.eye(10, dtype=np.float32)[label] * 0.9 + 0.01
        forecast = np.clip(info["clean_frame"], 0.05, 0.95).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step({"forecast": forecast, "class_probs": beliefs})
        assert info["t"] == k and terminated == (k == 5) and not truncated
        assert reward == pytest.approx(bernoulli_log_likelihood(obs, forecast), abs=1e-9)
        if k < 5:
            assert "label" not in info and "class_correct" not in info
    assert info["label"] == label and info["labelled"] is True
    assert info["class_correct"] is True and info["class_log_prob"] == pytest.approx(np.log(0.91), abs=1e-6)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(_half())
    # A bare forecast (no class beliefs) is accepted; nothing is scored then.
    env.reset()
    for _ in range(5):
        _, _, terminated, _, info = env.step(_half())
    assert terminated and "class_correct" not in info and "label" in info


def test_reward_hand_computed():
    target = np.array([[1.0, 0.0], [0.5, 1.0]])
    forecast = np.array([[0.9, 0.2], [0.5, 0.0]])
    expected = np.log(0.9) + np.log(0.8) + (0.5 * np.log(0.5) + 0.5 * np.log(0.5)) + np.log(1e-6)
    assert bernoulli_log_likelihood(target, forecast) == pytest.approx(expected, rel=1e-12)
    assert bernoulli_log_likelihood(np.ones(88), np.ones(88)) == pytest.approx(88 * np.log1p(-1e-6))
    np.testing.assert_allclose(
        bernoulli_log_likelihood(np.stack([target, target]), np.stack([forecast, forecast]), axis=(1, 2)),
        [expected, expected],
    )


@pytest.mark.parametrize(
    "bad",
    [
        np.full((31, 32), 0.5, np.float32),
        np.full((32, 32, 1), 0.5, np.float32),
        np.where(np.eye(32, dtype=bool), np.nan, 0.5).astype(np.float32),
        np.full((32, 32), 1.5, np.float32),
        np.full((32, 32), -0.1, np.float32),
        np.full((32, 32), "0.5"),
        {"forecast": np.full((32, 32), 0.5, np.float32), "class_probs": np.full(9, 0.1, np.float32)},
        {"forecast": np.full((32, 32), 0.5, np.float32), "class_probs": np.full(10, np.nan, np.float32)},
        {"forecast": np.full((32, 32), 0.5, np.float32), "labels": 3},
        {"class_probs": np.full(10, 0.1, np.float32)},
    ],
)
def test_bad_actions_raise_and_change_nothing(bad):
    env, twin = gym.make(OMM, split="test").unwrapped, gym.make(OMM, split="test").unwrapped
    env.reset(seed=0)
    twin.reset(seed=0)
    env.step(_half())
    twin.step(_half())
    with pytest.raises(ValueError):
        env.step(bad)
    got, expected = env.step(_half()), twin.step(_half())
    np.testing.assert_array_equal(got[0], expected[0])
    assert got[1:4] == expected[1:4] and got[4]["t"] == expected[4]["t"] == 2


def test_integer_and_float64_forecasts_are_cast():
    env = gym.make(OMM)
    env.reset(seed=0)
    _, r64, *_ = env.step(np.full((32, 32), 0.5, dtype=np.float64))
    _, r_int, *_ = env.step(np.zeros((32, 32), dtype=np.int64))
    assert np.isfinite(r64) and r_int <= 0


def test_render():
    env = gym.make(OMM, render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    env.step(np.zeros((32, 32), np.float32))
    after = env.render()
    assert before.dtype == np.uint8 and before.shape == after.shape == (128, 2 * 128 + 4, 3)
    assert (after[:, -128:] == 255).all()  # the all-background forecast is drawn white


# ---------------------------------------------------------------------------------------------- data and splits


def _episode_frames_sha(data_dir, n: int = 100) -> str:
    env = gym.make(OMM, split="test", data_dir=data_dir)
    digest = hashlib.sha256()
    env.reset(seed=0)
    for i in range(n):
        frames, _, _ = _play(env, options={"index": i})
        digest.update(frames.astype("<f4").tobytes())
    return digest.hexdigest()


def test_pinned_test_episodes_embedded():
    assert _episode_frames_sha(None) == OMM_TEST_100_SHA256


@needs_shared_data
def test_pinned_test_episodes_full_data():
    assert _episode_frames_sha(SHARED) == OMM_TEST_100_SHA256


def test_fixed_split_walk_and_index():
    env = gym.make(OMM, split="valid")
    walked = [_play(env, seed=0 if i == 0 else None)[0] for i in range(3)]
    direct = _play(gym.make(OMM, split="valid"), options={"index": 2})[0]
    np.testing.assert_array_equal(walked[2], direct)
    np.testing.assert_array_equal(_play(env, seed=123)[0], walked[0])  # a seeded reset restarts the walk
    assert not np.array_equal(walked[0], walked[1])
    with pytest.raises(ValueError, match="index"):
        env.reset(options={"index": 300})  # the embedded validation digits are 0..299
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"split": "test"})


def test_semi_supervised():
    env = gym.make(OMM, split="train", labelled=100).unwrapped
    # The pool (MNIST train < 60,000; embedded: 1,300 digits) has 10 labelled digits per class.
    rows = env.episode_source.data["labels"]
    assert np.bincount(rows[rows >= 0], minlength=10).tolist() == [10] * 10
    unlabelled = int(np.flatnonzero(rows < 0)[0])
    labelled = int(np.flatnonzero(rows >= 0)[0])
    action = {"forecast": _half(), "class_probs": np.full(10, 0.1, np.float32)}
    _, _, infos = _play(env, seed=0, options={"index": unlabelled}, action=action)
    assert infos[-1]["label"] == -1 and infos[-1]["labelled"] is False and "class_correct" not in infos[-1]
    _, _, infos = _play(env, options={"index": labelled}, action=action)
    assert infos[-1]["labelled"] is True and infos[-1]["class_log_prob"] == pytest.approx(np.log(0.1))
    with pytest.raises(ValueError):
        gym.make(OMM, split="test", labelled=100)
    with pytest.raises(ValueError, match="multiple of 10"):
        gym.make(OMM, labelled=15)


@needs_shared_data
def test_semi_supervised_full_data():
    env = gym.make(OMM, labelled=1000, data_dir=SHARED).unwrapped
    labels = env.episode_source.data["labels"]
    assert len(labels) == 60_000 and np.bincount(labels[labels >= 0]).tolist() == [100] * 10


# ---------------------------------------------------------------------------------------------- ground truth


@pytest.fixture(scope="module")
def occluded_batch():
    images, labels = load_mnist("test")
    return generate_occluded_batch(np.random.default_rng(3), images, labels, 64)


def test_digit_augment_renders_each_digit_in_one_of_the_styles_with_the_same_draws():
    """``digit_augment``: the same digits and paths as without it (the style is drawn after them), each digit in one
    of the styles, several styles in a batch; style 0 is the data set's own rendering."""
    images, labels = load_mnist("test")
    plain = generate_occluded_batch(np.random.default_rng(4), images, labels, 64)
    styled = generate_occluded_batch(np.random.default_rng(4), images, labels, 64, digit_augment=True)
    for key in ("indices", "positions", "velocities", "labels"):
        np.testing.assert_array_equal(styled[key], plain[key])
    candidates = np.stack([resize_digits(images[plain["indices"]], style=s) for s in range(len(DIGIT_STYLES))])
    np.testing.assert_array_equal(candidates[0], plain["digits"])
    matches = (candidates == styled["digits"][None]).all(axis=(2, 3))  # [styles, B]
    assert matches.any(axis=0).all()
    assert len(set(matches.argmax(axis=0).tolist())) >= 5
    assert not np.array_equal(styled["frames"], plain["frames"])
    assert (styled["frames"][..., OCCLUDED] == 0).all() and 0.0 <= styled["frames"].min() <= styled["frames"].max() <= 1.0


def test_digit_augment_leaves_valid_and_test_alone_and_refuses_what_is_not_a_bool():
    for split in ("valid", "test"):
        own = _play(gym.make(OMM, split=split), options={"index": 1})[0]
        np.testing.assert_array_equal(_play(gym.make(OMM, split=split, digit_augment=True), options={"index": 1})[0], own)
    with pytest.raises(ValueError, match="digit_augment must be True or False"):
        gym.make(OMM, digit_augment="yes")


def test_bars_and_clean_frames(occluded_batch):
    frames, clean = occluded_batch["frames"], occluded_batch["clean"]
    assert BARS.nonzero()[0].tolist() == [8, 9, 10, 11, 20, 21, 22, 23]
    assert (frames[..., OCCLUDED] == 0).all()
    np.testing.assert_array_equal(frames[..., ~OCCLUDED], clean[..., ~OCCLUDED])
    assert (clean[..., OCCLUDED] > 0).any()  # the bars do hide ink
    assert frames.dtype == np.float32 and frames.shape == (64, 6, 32, 32)
    assert 0.0 <= frames.min() and frames.max() <= 1.0


def test_digit_motion(occluded_batch):
    pos, vel = occluded_batch["positions"], occluded_batch["velocities"]
    assert {tuple(v) for v in np.abs(vel)} <= {(1, 1), (2, 2)}
    step = np.abs(np.diff(pos, axis=1))
    assert (step <= np.abs(vel)[:, None]).all()
    # Clean frame t is the resized digit at positions[t].
    for b in range(8):
        for t in range(6):
            y, x = pos[b, t]
            window = occluded_batch["clean"][b, t, y : y + 16, x : x + 16]
            np.testing.assert_array_equal(window, occluded_batch["digits"][b] / np.float32(255))


def test_optimal_reconstruction_independent(occluded_batch):
    clean, pos = occluded_batch["clean"], occluded_batch["positions"]
    optimal = occluded_batch["optimal_reconstruction"]
    differs = 0
    for b in range(16):
        known: set[tuple[int, int]] = set()  # digit-relative pixels seen so far
        for t in range(6):
            y0, x0 = pos[b, t]
            known |= {(y - y0, x - x0) for y in range(32) for x in range(32) if not OCCLUDED[y, x]}
            expected = np.zeros((32, 32), np.float32)
            for y in range(32):
                for x in range(32):
                    if (y - y0, x - x0) in known:
                        expected[y, x] = clean[b, t, y, x]
            np.testing.assert_array_equal(optimal[b, t], expected)
            differs += not np.array_equal(expected, clean[b, t])
    assert differs > 0  # the test can tell a reconstruction from the clean frame


def test_bouncing_keeps_digit_inside():
    images, labels = load_mnist("test")
    long = generate_occluded_batch(np.random.default_rng(0), images, labels, 32, n_frames=200)
    pos = long["positions"]
    assert pos.min() == 0 and pos.max() == 16  # every wall is reached and never crossed
    ink = long["clean"].sum(axis=(2, 3))
    np.testing.assert_allclose(ink, ink[:, :1].repeat(200, axis=1), rtol=1e-5)  # never clipped

    moving = generate_moving_batch(np.random.default_rng(0), images, labels, 8, n_frames=200)
    assert moving["positions"].min() == 0 and moving["positions"].max() == 36
    speeds = np.abs(np.diff(moving["positions"], axis=2)).max()
    assert speeds <= 6  # at most 5 px/frame, plus rounding


def test_moving_groups_independent():
    images, labels = load_mnist("test")
    batch = generate_moving_batch(np.random.default_rng(5), images, labels, 6)
    assert batch["frames"].shape == (6, 20, 64, 64) and batch["groups"].dtype == np.int8
    overlap_seen = False
    for b in range(6):
        for t in range(0, 20, 3):
            layers = np.zeros((2, 64, 64), np.float32)
            for k in range(2):
                y, x = batch["positions"][b, k, t]
                layers[k, y : y + 28, x : x + 28] = images[batch["indices"][b, k]] / np.float32(255)
            np.testing.assert_array_equal(batch["frames"][b, t], layers.max(axis=0))
            g = batch["groups"][b, t]
            both = (layers[0] > 0.5) & (layers[1] > 0.5)
            overlap_seen |= both.any()
            assert (g[both] == -1).all()
            assert (g[(layers[0] == 0) & (layers[1] == 0)] == 0).all()
            only_one = (layers[0] > layers[1]) & ~both
            assert (g[only_one] == 1).all() and (g[(layers[1] > layers[0]) & ~both] == 2).all()
    assert overlap_seen  # the sample does exercise the ignore rule
    assert INK_THRESHOLD == 127
    np.testing.assert_array_equal(batch["labels"], labels[batch["indices"]])


def test_moving_episode_info():
    env = gym.make(MOVING, split="test")
    _, info = env.reset(seed=0)
    assert info["groups"].shape == (64, 64) and info["labels"].shape == (2,)
    assert isinstance(env.action_space, gym.spaces.Box)
    action = {"forecast": _half((64, 64)), "class_probs": np.full(10, 0.1, np.float32)}  # beliefs ignored
    frames, rewards, infos = _play(env, action=action)
    assert len(rewards) == 19 and infos[-1]["t"] == 19


# ---------------------------------------------------------------------------------------------- vectorised


def test_make_vec_occluded_matches_single_envs():
    vec = gym.make_vec(OMM, num_envs=3, vectorization_mode="vector_entry_point", split="test")
    assert vec.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs, infos = vec.reset(seed=0)
    assert obs.shape == (3, 32, 32) and vec.observation_space.shape == (3, 32, 32)
    singles = [_play(gym.make(OMM, split="test"), options={"index": i})[0] for i in range(3)]
    frames = [obs]
    for k in range(5):
        obs, rewards, terminated, truncated, infos = vec.step(np.full((3, 32, 32), 0.5, np.float32))
        frames.append(obs)
        assert terminated.tolist() == [k == 4] * 3 and not truncated.any()
    np.testing.assert_array_equal(np.stack(frames, axis=1), np.stack(singles))
    assert infos["_label"].all() and infos["label"].tolist() == load_mnist("test").labels[:3].tolist()
    # Next-step autoreset: the step after termination starts episodes 3, 4, 5 with reward 0.
    obs, rewards, terminated, _, infos = vec.step(np.full((3, 32, 32), 0.5, np.float32))
    assert (rewards == 0).all() and not terminated.any() and (infos["t"] == 0).all()
    np.testing.assert_array_equal(obs[0], _play(gym.make(OMM, split="test"), options={"index": 3})[0][0])


def test_make_vec_train_and_sync():
    vec = gym.make_vec(OMM, num_envs=4, vectorization_mode="vector_entry_point")
    vec.reset(seed=1)
    action = vec.action_space.sample()
    obs, rewards, *_ = vec.step(action)
    assert rewards.shape == (4,) and (rewards < 0).all()
    with pytest.raises(ValueError):
        vec.step(np.full((3, 32, 32), 0.5, np.float32))
    sync = gym.make_vec(MOVING, num_envs=2, vectorization_mode="sync")
    obs, _ = sync.reset(seed=0)
    obs, rewards, *_ = sync.step(np.full((2, 64, 64), 0.5, np.float32))
    assert obs.shape == (2, 64, 64) and rewards.shape == (2,)
    moving = gym.make_vec(MOVING, num_envs=2, vectorization_mode="vector_entry_point")
    moving.reset(seed=0)
    for _ in range(19):
        obs, rewards, terminated, _, infos = moving.step(np.full((2, 64, 64), 0.5, np.float32))
    assert terminated.all() and infos["groups"].shape == (2, 64, 64)


def test_per_row_generators_equal_batch_of_one_calls():
    images, labels = load_mnist("test")
    rows = [np.random.default_rng(s) for s in (1, 2, 3)]
    batch = generate_moving_batch(rows, images, labels, 3)
    singles = [generate_moving_batch(np.random.default_rng(s), images, labels, 1) for s in (1, 2, 3)]
    for key in batch:
        np.testing.assert_array_equal(batch[key], np.concatenate([s[key] for s in singles]))
    with pytest.raises(ValueError, match="generators"):
        generate_occluded_batch(rows, images, labels, 4)


def test_vector_reset_mask():
    vec = gym.make_vec(OMM, num_envs=3, vectorization_mode="vector_entry_point", split="test")
    obs0, _ = vec.reset(seed=0)  # episodes 0, 1, 2
    vec.step(np.full((3, 32, 32), 0.5, np.float32))
    obs, infos = vec.reset(options={"reset_mask": np.array([False, True, False])})  # row 1 -> episode 3
    assert infos["t"].tolist() == [1, 0, 1]
    episode3 = _play(gym.make(OMM, split="test"), options={"index": 3})[0]
    np.testing.assert_array_equal(obs[1], episode3[0])
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.array([False, False, False])})
