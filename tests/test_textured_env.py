"""Brodatz-textured MNIST: Gymnasium contract, the composition, crops, splits."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from shared_data import find_shared_data, needs_shared
from gymnasium.utils.env_checker import check_env
from scipy.ndimage import grey_dilation

import rladder_stream.envs  # noqa: F401  (registers the ids)
from rladder_stream.envs.data import load_brodatz, load_mnist
from rladder_stream.envs.scoring import bernoulli_log_likelihood
from rladder_stream.envs.textured_mnist import crop_textures, generate_textured_batch

TEXTURED = "rladder_stream/TexturedMNIST-v0"


SHARED = find_shared_data('brodatz', 'mnist')
needs_shared_data = needs_shared('brodatz', 'mnist')


pytestmark = pytest.mark.usefixtures("embedded_data")  # tests pass data_dir=SHARED for the full data


@pytest.fixture(scope="module")
def data():
    images, labels = load_mnist("test")
    return images, labels, load_brodatz().textures


@pytest.mark.parametrize("kwargs", [{}, {"split": "test"}, {"labelled": 100, "n_iterations": 2}, {"texture_contrast": 0.5}])
def test_check_env(kwargs):
    env = gym.make(TEXTURED, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_episode(data):
    env = gym.make(TEXTURED, split="test", n_iterations=3)
    obs, info = env.reset(seed=0)
    assert obs.shape == (32, 32) and obs.dtype == np.float32 and "label" not in info
    assert info["groups"].dtype == np.int8 and set(np.unique(info["groups"])) <= {-1, 0, 1}
    label = int(data[1][0])
    for k in range(1, 4):
        forecast = np.clip(obs * 0.8 + 0.1, 0, 1).astype(np.float32)
        beliefs = np.eye(10, dtype=np.float32)[(label + 1) % 10]
        new_obs, reward, terminated, _, info = env.step({"forecast": forecast, "class_probs": beliefs})
        np.testing.assert_array_equal(new_obs, obs)  # the same image every tick
        assert reward == pytest.approx(bernoulli_log_likelihood(obs, forecast))
        assert terminated == (k == 3) and ("label" in info) == (k == 3)
    assert info["label"] == label and info["class_correct"] is False
    assert info["class_log_prob"] == pytest.approx(np.log(1e-6))


def test_seeding_and_fixed_splits():
    env = gym.make(TEXTURED)
    a, _ = env.reset(seed=3)
    b, _ = env.reset(seed=3)
    c, _ = env.reset(seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    first = gym.make(TEXTURED, split="valid")
    second = gym.make(TEXTURED, split="valid")
    first.reset(seed=0)
    walked, _ = first.reset()
    direct, _ = second.reset(seed=99, options={"index": 1})
    np.testing.assert_array_equal(walked, direct)


def test_composition_on_test_crops(data):
    images, labels, textures = data
    batch = generate_textured_batch(np.random.default_rng(0), images, labels, textures, 16, augment=False)
    mask, image = batch["mask"], batch["image"]
    assert (batch["crop_params"][..., 2] == 0).all() and (batch["crop_params"][..., 3] == 1).all()
    assert (batch["textures"][:, 0] != batch["textures"][:, 1]).all()
    for b in range(16):
        y, x = batch["offsets"][b]
        thick = grey_dilation(images[batch["indices"][b]], size=(3, 3)) / np.float32(255)
        expected_mask = np.zeros((32, 32), np.float32)
        expected_mask[y : y + 28, x : x + 28] = thick
        np.testing.assert_array_equal(mask[b], expected_mask)
        crops = []
        for k in range(2):
            cy, cx = batch["crop_params"][b, k, :2] - 15.5  # axis-aligned: whole-pixel corner
            assert cy == int(cy) and cx == int(cx)
            crops.append(textures[batch["textures"][b, k], int(cy) : int(cy) + 32, int(cx) : int(cx) + 32])
        np.testing.assert_allclose(image[b], mask[b] * crops[0] + (1 - mask[b]) * crops[1], atol=1e-6)
        groups = batch["groups"][b]
        assert (groups[mask[b] < 0.1] == 0).all() and (groups[mask[b] > 0.9] == 1).all()
        assert (groups[(mask[b] >= 0.1) & (mask[b] <= 0.9)] == -1).all()
    assert (batch["groups"] == -1).any() and (batch["groups"] == 1).any()
    np.testing.assert_array_equal(batch["frames"][:, 3], image)


def test_train_crops_are_rotated_and_scaled(data):
    images, labels, textures = data
    batch = generate_textured_batch(np.random.default_rng(1), images, labels, textures, 256)
    angle, scale = batch["crop_params"][..., 2], batch["crop_params"][..., 3]
    assert 0 <= angle.min() and angle.max() < 2 * np.pi and angle.std() > 1.0
    assert 0.7 <= scale.min() and scale.max() <= 1.4 and scale.std() > 0.1
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0


def test_crop_geometry(data):
    textures = data[2]
    which = np.array([0, 0, 1])
    centre = np.array([[60.5, 50.5], [60.5, 50.5], [60.0, 50.0]])
    plain, quarter, zoomed_out = crop_textures(
        textures, which, centre, np.array([0.0, np.pi / 2, 0.0]), np.array([1.0, 1.0, 0.5])
    )
    np.testing.assert_array_equal(plain, textures[0, 45:77, 35:67])
    np.testing.assert_allclose(np.rot90(quarter, k=1), plain, atol=1e-5)  # rotation by 90 degrees
    # Magnification 0.5: every second texture pixel (rows 60 - 31 + 2i, columns 50 - 31 + 2j).
    np.testing.assert_allclose(zoomed_out, textures[1, 29:93:2, 19:83:2], atol=1e-6)


def test_bad_actions():
    env = gym.make(TEXTURED).unwrapped
    env.reset(seed=0)
    for bad in (np.full((28, 28), 0.5), np.full((32, 32), np.inf), {"forecast": np.full((32, 32), 2.0)}):
        with pytest.raises(ValueError):
            env.step(bad)
    _, _, _, _, info = env.step(np.full((32, 32), 0.5, np.float32))
    assert info["t"] == 1


def test_make_vec():
    vec = gym.make_vec(TEXTURED, num_envs=3, vectorization_mode="vector_entry_point", split="test")
    obs, infos = vec.reset(seed=0)
    assert obs.shape == (3, 32, 32) and infos["groups"].shape == (3, 32, 32)
    for _ in range(3):
        obs, rewards, terminated, _, infos = vec.step(
            {"forecast": np.full((3, 32, 32), 0.5, np.float32), "class_probs": np.full((3, 10), 0.1, np.float32)}
        )
    assert terminated.all() and infos["_class_log_prob"].all()
    np.testing.assert_allclose(infos["class_log_prob"], np.log(0.1))
    single, _ = gym.make(TEXTURED, split="test").reset(options={"index": 2})
    np.testing.assert_array_equal(obs[2], single)
    # SyncVectorEnv splits actions by the (Dict) action space, so it needs the dict form.
    sync = gym.make_vec(TEXTURED, num_envs=2, vectorization_mode="sync")
    sync.reset(seed=0)
    assert sync.step(sync.action_space.sample())[1].shape == (2,)


@needs_shared_data
def test_full_data():
    env = gym.make(TEXTURED, split="test", data_dir=SHARED).unwrapped
    assert "schlossvrl_300px" in env.episode_source.source
    assert env.episode_source.generate.keywords["textures"].shape == (20, 300, 300)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 32)


def test_weakened_textures_keep_each_plates_mean_and_scale_its_deviations(data):
    """texture_contrast (a data setting): every plate keeps its mean grey and its deviations from it shrink by the
    factor; 0 leaves flat plates; outside [0, 1] is refused."""
    from rladder_stream.envs.textured_mnist import weaken_textures

    textures = data[2]
    mean = textures.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(weaken_textures(textures, 0.5) - mean, 0.5 * (textures - mean), atol=1e-6)
    flat = weaken_textures(textures, 0.0)
    np.testing.assert_allclose(flat, np.broadcast_to(mean, textures.shape), atol=1e-6)
    assert weaken_textures(textures, 1.0).dtype == np.float32
    with pytest.raises(ValueError, match="contrast"):
        weaken_textures(textures, 1.5)


def test_texture_contrast_reaches_the_training_batches_on_every_renderer(monkeypatch):
    """With texture_contrast=0 every training image is two flat greys blended by the digit's mask: the background
    (mask < 0.1) barely varies, where the textures' varies widely; the torch renderer draws the same batches as the
    generator."""
    import torch

    from rladder_stream.model.registry import get_config
    from rladder_stream.training.tasks import TASKS
    from rladder_stream.training.train import TrainConfig

    cfg = get_config("tmnist-rtagger", size="tiny")

    def task_and_spread(contrast: float):
        task = TASKS["tmnist"](cfg, TrainConfig(model="tmnist-rtagger", size="tiny", texture_contrast=contrast))
        batch = task.train_batch(np.random.default_rng(0), 6)
        images, groups = batch["inputs"][:, 0], batch["true_groups"][:, 0]
        return task, batch, max(float(image[group == 0].std()) for image, group in zip(images, groups))

    _, _, textured = task_and_spread(1.0)
    task, batch, flat = task_and_spread(0.0)
    assert flat < 0.02 < textured, (flat, textured)
    assert "contrast 0.0" in task.data_source
    monkeypatch.setattr(type(task), "renders_on", lambda self, device: device is not None)
    rendered = task.train_batch(np.random.default_rng(0), 6, torch.device("cpu"))
    for key, value in batch.items():
        assert torch.equal(rendered[key], value), key
