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


@pytest.mark.parametrize("kwargs", [{}, {"split": "test"}, {"labelled": 100, "n_iterations": 2}, {"texture_contrast": 0.5},
                                    {"texture_scale": 2.0}, {"textures": "sinusoid", "split": "valid", "texture_scale": 1.5}])
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
    assert env.episode_source.data["textures"].shape == (20, 300, 300)
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


@pytest.mark.parametrize("plates", [{"texture_contrast": 0.0}, {"texture_scale": 2.0}, {"textures": "sinusoid", "texture_scale": 1.5},
                                    {"textures": "freq20", "texture_augment": False}],
                         ids=["contrast", "scale", "sinusoid", "freq20-unaugmented"])
def test_the_plate_settings_reach_the_environment_and_the_renderer_alike(plates, monkeypatch):
    """Every data setting of the plates gives the environment's images to the training task (the generator on the
    CPU) and to its torch renderer, bit for bit; the data source names it."""
    import torch

    from rladder_stream.envs.textured_mnist import episode_source
    from rladder_stream.model.registry import get_config
    from rladder_stream.training.tasks import TASKS
    from rladder_stream.training.train import TrainConfig

    cfg = get_config("tmnist-rtagger", size="tiny")
    task = TASKS["tmnist"](cfg, TrainConfig(model="tmnist-rtagger", size="tiny", **plates))
    env_images = episode_source("train", **plates).episodes(np.random.default_rng(0), 6, None)["frames"]
    batch = task.train_batch(np.random.default_rng(0), 6)
    np.testing.assert_array_equal(batch["inputs"].numpy(), env_images[:, :-1])
    named = {"texture_contrast": "contrast 0.0", "texture_scale": f"scale {plates.get('texture_scale', 1):g}",
             "textures": {"sinusoid": "sinusoid", "freq20": "Freq20"}.get(plates.get("textures")),
             "texture_augment": "training crops not augmented"}
    assert all(named[k] in task.data_source for k in plates), task.data_source
    test_image, _ = gym.make(TEXTURED, split="test", **plates).reset(options={"index": 3})
    np.testing.assert_array_equal(next(task.eval_batches("test", 4))["inputs"][3, 0].numpy(), test_image)
    monkeypatch.setattr(type(task), "renders_on", lambda self, device: device is not None)
    rendered = task.train_batch(np.random.default_rng(0), 6, torch.device("cpu"))
    for key, value in batch.items():
        assert torch.equal(rendered[key], value), key


def test_texture_scale_magnifies_every_crop_and_keeps_it_inside_the_plate(data):
    """Valid/test crops at texture_scale 2 are axis-aligned with their first sample point on a whole pixel, so every
    second crop pixel is a plate pixel; training crops at the smallest scale the embedded 128-pixel plates allow
    sample inside the plate at every angle, their magnifications 0.7-1.4 times the scale."""
    from rladder_stream.envs.textured_mnist import CROP_GRID, compose, crop_axes, crop_textures

    images, labels, textures = data
    batch = generate_textured_batch(np.random.default_rng(2), images, labels, textures, 16, augment=False, texture_scale=2.0)
    params = batch["crop_params"]
    assert (params[..., 2] == 0).all() and (params[..., 3] == 2.0).all()
    crops = crop_textures(textures, batch["textures"].reshape(-1), params[..., :2].reshape(-1, 2), params[..., 2].reshape(-1),
                          params[..., 3].reshape(-1)).reshape(16, 2, 32, 32)
    np.testing.assert_array_equal(batch["image"], compose(batch["mask"], crops[:, 0], crops[:, 1]))
    for b in range(16):
        for k in range(2):
            cy, cx = params[b, k, :2] - 15.5 / 2  # the first sample point
            assert cy == int(cy) and cx == int(cx)
            plate = textures[batch["textures"][b, k], int(cy) : int(cy) + 16, int(cx) : int(cx) + 16]
            np.testing.assert_array_equal(crops[b, k, ::2, ::2], plate)
    size, scale = textures.shape[-1], 0.52  # 2 * margin(0.7 * 0.52) = 126.3 <= 127
    train = generate_textured_batch(np.random.default_rng(3), images, labels, textures, 512, texture_scale=scale)
    centre, angle, magnification = train["crop_params"][..., :2], train["crop_params"][..., 2], train["crop_params"][..., 3]
    assert 0.7 * scale <= magnification.min() and magnification.max() <= 1.4 * scale
    cos, sin = (c[..., None, None] for c in crop_axes(angle, magnification))
    dy, dx = CROP_GRID[:, None], CROP_GRID[None, :]
    y = centre[..., 0, None, None] + cos * dy - sin * dx
    x = centre[..., 1, None, None] + sin * dy + cos * dx
    assert 0 <= min(y.min(), x.min()) and max(y.max(), x.max()) <= size - 1
    assert min(y.min(), x.min()) < 10 and max(y.max(), x.max()) > size - 11  # the plate's edges are reached


@pytest.mark.parametrize("bad, match", [({"texture_scale": 0.0}, "positive"), ({"texture_scale": -1.0}, "positive"),
                                        ({"texture_scale": float("nan")}, "positive"), ({"texture_scale": "2"}, "positive"),
                                        ({"texture_scale": 0.5}, "128-pixel plates"), ({"textures": "gabor"}, "brodatz")])
def test_bad_plate_settings_are_refused(bad, match):
    """A texture scale that is not a positive number, or whose smallest training crops (0.7 x the scale) reach past
    the (embedded, 128-pixel) plates, and unknown textures are refused when the environment is made."""
    with pytest.raises(ValueError, match=match):
        gym.make(TEXTURED, **bad)


def test_bad_plate_settings_are_refused_by_the_training_settings():
    from rladder_stream.training.train import TrainConfig

    for bad, match in (({"texture_scale": 0}, "texture_scale must be a positive"), ({"textures": "gabor"}, "textures must be one of")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(model="tmnist-rtagger", size="tiny", **bad)


def test_sinusoid_plates_are_the_documented_plane_waves():
    """20 plates of 300x300 (the full data's Brodatz size), each a plane wave: mean 0.5, std about the Brodatz
    plates' median, one peak in its spectrum at the period documented for it (4 to 16 pixels, geometrically
    spaced), in directions that differ; the same plates every time (a fixed seed)."""
    from rladder_stream.envs.textured_mnist import SINUSOID_PERIODS, SINUSOID_STD, sinusoid_plates

    plates = sinusoid_plates()
    assert plates.shape == (20, 300, 300) and plates.dtype == np.float32 and not plates.flags.writeable
    np.testing.assert_array_equal(plates, sinusoid_plates())
    np.testing.assert_allclose(plates.mean(axis=(1, 2)), 0.5, atol=0.01)
    np.testing.assert_allclose(plates.std(axis=(1, 2)), SINUSOID_STD, atol=0.01)
    spectrum = np.abs(np.fft.rfft2(plates - plates.mean(axis=(1, 2), keepdims=True)))
    fy = np.fft.fftfreq(300)[:, None] * np.ones((1, spectrum.shape[-1]))
    fx = np.fft.rfftfreq(300)[None, :] * np.ones((300, 1))
    peaks = spectrum.reshape(20, -1).argmax(axis=1)
    periods = 1.0 / np.hypot(fy.reshape(-1)[peaks], fx.reshape(-1)[peaks])
    np.testing.assert_allclose(periods, np.geomspace(*SINUSOID_PERIODS, 20), rtol=0.05)
    directions = np.degrees(np.arctan2(fy.reshape(-1)[peaks], fx.reshape(-1)[peaks])) % 180
    assert np.ptp(directions) > 90


def test_freq20_plates_are_the_tagger_authors_plane_waves():
    """20 plates of 300x300, each one plane wave periodic in 38 pixels whose 38x38 spectrum has its energy at the
    documented wave numbers only, min-max scaled to [0, 1] over a period; periods 1.7 to 9.5 pixels."""
    from rladder_stream.envs.textured_mnist import FREQ20_GRID, freq20_frequencies, freq20_plates

    plates, waves = freq20_plates(), freq20_frequencies()
    assert plates.shape == (20, 300, 300) and plates.dtype == np.float32 and not plates.flags.writeable
    assert len({tuple(w) for w in waves}) == 20 and waves.max() == FREQ20_GRID - 1
    np.testing.assert_allclose(plates.min(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(plates.max(axis=(1, 2)), 1.0, atol=1e-6)
    np.testing.assert_allclose(plates[:, 38:76, 76:114], plates[:, :38, :38], atol=1e-4)  # one period, tiled
    spectrum = np.abs(np.fft.fft2(plates[:, :38, :38] - plates[:, :38, :38].mean(axis=(1, 2), keepdims=True)))
    for plate, (a, b) in zip(spectrum, waves):
        peaks = {tuple(p) for p in np.argwhere(plate > 0.01 * plate.max())}
        assert peaks == {(a % 38, b % 38), (-a % 38, -b % 38)}
    aliased = np.minimum(waves, FREQ20_GRID - waves)  # on whole pixels a wave number k is also k - 38
    periods = FREQ20_GRID / np.hypot(aliased[:, 0], aliased[:, 1])
    assert periods.max() == pytest.approx(9.5) and periods.min() == pytest.approx(1.73, abs=0.01)


def test_unaugmented_training_crops_are_cut_as_test_crops_are():
    """texture_augment=false: training crops unrotated, unscaled and whole-pixel (exact copies of the plate), where
    the default rotates and scales them."""
    from rladder_stream.envs.textured_mnist import episode_source

    plain = episode_source("train", textures="freq20", texture_augment=False).episodes(np.random.default_rng(0), 8, None)
    crops = plain["crop_params"]  # [B, 2, (centre y, centre x, angle, scale)]
    assert np.all(crops[..., 2] == 0.0) and np.all(crops[..., 3] == 1.0)
    np.testing.assert_array_equal(crops[..., :2] - 15.5, np.round(crops[..., :2] - 15.5))
    augmented = episode_source("train", textures="freq20").episodes(np.random.default_rng(0), 8, None)["crop_params"]
    assert np.all(augmented[..., 2] != 0.0) and np.all(augmented[..., 3] != 1.0)


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


def test_flat_plates_give_two_flat_greys_that_differ():
    """textures="flat": 20 uniform plates evenly spaced from 0.2 to 0.8; a training image is then the digit's grey
    and the background's, blended by the mask, never the same grey for both (two different plates a pair)."""
    from rladder_stream.envs.textured_mnist import FLAT_GREYS, episode_source, flat_plates

    plates = flat_plates()
    assert plates.shape == (20, 300, 300) and not plates.flags.writeable
    np.testing.assert_allclose(plates[:, 0, 0], np.linspace(*FLAT_GREYS, 20), rtol=1e-6)
    assert (np.ptp(plates, axis=(1, 2)) == 0).all()
    episodes = episode_source("train", textures="flat").episodes(np.random.default_rng(0), 64, None)
    step = (FLAT_GREYS[1] - FLAT_GREYS[0]) / 19
    for img, mask in zip(episodes["image"], episodes["mask"]):
        slope, background = np.polyfit(mask.ravel(), img.ravel(), 1)  # image = background + mask * (digit - background)
        np.testing.assert_allclose(img, background + slope * mask, atol=1e-5)  # flat when rotated and scaled
        assert abs(slope) > step - 1e-4 and FLAT_GREYS[0] - 1e-4 < background < FLAT_GREYS[1] + 1e-4


@pytest.mark.parametrize("kept", [{"textures": "flat", "texture_scale": 1.5}, None])
def test_groups_draws_a_model_on_the_plates_it_trained_on(tmp_path, monkeypatch, capsys, kept):
    """``rladder-stream groups`` builds the test environment with the plate settings the checkpoint's run trained on
    (a Freq20 model shown on Brodatz plates would look as if it could not group); a checkpoint that keeps no training
    settings gets the environment's defaults."""
    from rladder_stream.apps import figures
    from rladder_stream.model.registry import build_model, get_config
    from rladder_stream.streaming.checkpoint import save_checkpoint

    made = []
    make_env = figures.make_env
    monkeypatch.setattr(figures, "make_env", lambda env_id, **kwargs: made.append(kwargs) or make_env(env_id, **kwargs))
    config = get_config("tmnist-rtagger", size="tiny")
    extra = {"train_config": {"model": "tmnist-rtagger", "lr": 0.002, **kept}} if kept else {}
    save_checkpoint(tmp_path / "m.pt", config, build_model(config).state_dict(), extra)
    assert figures.groups_cli_main(["--model", str(tmp_path / "m.pt"), "--out", str(tmp_path / "fig")]) == 0
    plates = {k: v for k, v in made[0].items() if k.startswith("texture")}
    assert plates == (kept or {})
    assert ("data as it trained: texture_scale=1.5 textures=flat" in capsys.readouterr().out) == bool(kept)
