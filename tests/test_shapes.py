"""Shapes: the templates, the generator's images and ground truth, the fixed splits, the Gymnasium contract,
the task and its configurations."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import rladder_stream.envs  # noqa: F401  (registers the ids)
from rladder_stream.envs.randomness import episode_rng
from rladder_stream.envs.scoring import bernoulli_log_likelihood
from rladder_stream.envs.shapes import (AMI_IGNORE, ENV_ID, SQUARE, TEMPLATES, TRIANGLE_DOWN, TRIANGLE_UP, ShapesEnv,
                                        episode_source, generate_shapes_batch)
from rladder_stream.model.registry import get_config
from rladder_stream.model.registry import build_model
from rladder_stream.training.tasks import TASKS, ShapesTask, task_for


def _footprints(shapes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """bool ``[3, 20, 20]``: each shape's template stamped at its position, one pixel at a time."""
    out = np.zeros((len(shapes), 20, 20), bool)
    for k, (kind, (y, x)) in enumerate(zip(shapes, positions)):
        template = TEMPLATES[kind]
        for i, j in zip(*np.nonzero(template)):
            out[k, y + i, x + j] = True
    return out


# ------------------------------------------------------------------------------ templates and generator


def test_the_templates_are_the_reference_shapes():
    assert SQUARE.shape == (7, 7) and SQUARE.sum() == 40  # 49 minus the 3x3 hole
    assert (SQUARE[2:5, 2:5] == 0).all() and SQUARE[[0, 1, 5, 6]].all() and SQUARE[:, [0, 1, 5, 6]].all()
    assert TRIANGLE_UP.shape == (7, 12) and TRIANGLE_UP.sum() == 48
    np.testing.assert_array_equal(TRIANGLE_UP, TRIANGLE_UP[:, ::-1])  # symmetric about the vertical axis
    ink_columns = [tuple(np.flatnonzero(row)) for row in TRIANGLE_UP]
    assert ink_columns[:3] == [(5, 6), (4, 5, 6, 7), (3, 4, 5, 6, 7, 8)]  # the solid apex, pointing up
    assert ink_columns[3] == (2, 3, 4, 7, 8, 9) and ink_columns[4] == (1, 2, 3, 8, 9, 10)  # the outline: 3 px sides
    assert TRIANGLE_UP[5:].all()  # the two bottom rows solid
    np.testing.assert_array_equal(TRIANGLE_DOWN, TRIANGLE_UP[::-1])
    assert TRIANGLE_DOWN[:2].all() and TRIANGLE_DOWN[-1].sum() == 2  # flipped: the base on top
    assert all(t.dtype == np.uint8 and set(np.unique(t)) == {0, 1} for t in TEMPLATES)


def test_images_and_groups_are_the_shapes_at_their_positions():
    batch = generate_shapes_batch(np.random.default_rng(0), 64)
    assert batch["image"].shape == (64, 20, 20) and batch["image"].dtype == np.float32
    assert batch["groups"].dtype == np.int8 and batch["frames"].shape == (64, 4, 20, 20)
    assert set(np.unique(batch["image"])) == {0.0, 1.0}
    for b in range(64):
        feet = _footprints(batch["shapes"][b], batch["positions"][b])
        count = feet.sum(0)
        groups = batch["groups"][b]
        np.testing.assert_array_equal(batch["image"][b], count > 0)  # ink wherever any shape is
        np.testing.assert_array_equal(groups != 0, batch["image"][b] > 0)  # ink == (groups != 0)
        np.testing.assert_array_equal(groups == -1, count > 1)  # overlaps: ink, in no group
        for k in range(3):
            np.testing.assert_array_equal(groups == k + 1, feet[k] & (count == 1))  # shape k alone is group k + 1
        np.testing.assert_array_equal(batch["frames"][b], np.broadcast_to(batch["image"][b], (4, 20, 20)))
    assert (batch["groups"] == -1).any() and {1, 2, 3} <= set(np.unique(batch["groups"]))
    assert (batch["indices"] == -1).all()


def test_shapes_and_positions_are_uniform_where_they_fit():
    batch = generate_shapes_batch(np.random.default_rng(1), 6000)
    shapes, ys, xs = batch["shapes"].ravel(), batch["positions"][..., 0].ravel(), batch["positions"][..., 1].ravel()
    counts = np.bincount(shapes, minlength=3)
    assert len(counts) == 3 and np.abs(counts / len(shapes) - 1 / 3).max() < 0.02  # with replacement, uniform
    assert (batch["shapes"][:, 0] == batch["shapes"][:, 1]).any()  # the same shape twice in an image happens
    assert set(np.unique(ys)) == set(range(14))  # 7 high: top rows 0..13
    for kind, width in ((0, 7), (1, 12), (2, 12)):
        places = xs[shapes == kind]
        assert set(np.unique(places)) == set(range(20 - width + 1))  # every place where it fits whole, no other
        freq = np.bincount(places) / len(places)
        assert np.abs(freq - 1 / (21 - width)).max() < 0.025
    assert 0.25 < batch["image"].mean() < 0.32  # about 0.28 of the pixels inked


def test_a_batch_equals_its_rows_drawn_alone():
    rngs = [episode_rng(ENV_ID, "test", i) for i in range(4)]
    whole = generate_shapes_batch(rngs, 4, choice=np.arange(4))
    for i in range(4):
        alone = generate_shapes_batch([episode_rng(ENV_ID, "test", i)], 1, choice=[i])
        for key in whole:
            np.testing.assert_array_equal(whole[key][i], alone[key][0])
    np.testing.assert_array_equal(whole["indices"], np.arange(4))


def test_valid_and_test_episodes_are_fixed_and_train_is_fresh():
    test = episode_source("test")
    a, b = test.episodes(None, 3, [0, 1, 2]), episode_source("test").episodes(None, 2, [2, 5])
    np.testing.assert_array_equal(a["image"][2], b["image"][0])  # episode 2 whatever batch it is drawn in
    assert not np.array_equal(a["image"][0], a["image"][1])
    valid = episode_source("valid").episodes(None, 3, [0, 1, 2])
    assert not np.array_equal(valid["image"], a["image"])  # the splits are different images
    assert (test.pool_size, episode_source("valid").pool_size, episode_source("train").pool_size) == (10_000, 10_000, 50_000)
    train = episode_source("train")
    one = train.episodes(np.random.default_rng(7), 3, None)
    np.testing.assert_array_equal(one["image"], train.episodes(np.random.default_rng(7), 3, None)["image"])
    assert not np.array_equal(one["image"], train.episodes(np.random.default_rng(8), 3, None)["image"])
    with pytest.raises(ValueError, match="split"):
        episode_source("training")
    with pytest.raises(ValueError, match="n_iterations"):
        episode_source("test", n_iterations=0)


# ------------------------------------------------------------------------------ environments


@pytest.mark.parametrize("kwargs", [{}, {"split": "test"}, {"n_iterations": 2}])
def test_check_env(kwargs):
    env = gym.make(ENV_ID, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


def test_episode():
    env = gym.make(ENV_ID, split="test")
    obs, info = env.reset(seed=0)
    assert obs.shape == (20, 20) and obs.dtype == np.float32 and set(np.unique(obs)) <= {0.0, 1.0}
    assert info["groups"].shape == (20, 20) and info["groups"].dtype == np.int8 and info["shapes"].shape == (3,)
    np.testing.assert_array_equal(info["groups"] != 0, obs > 0)
    assert type(env.unwrapped).ami_ignore == AMI_IGNORE and set(AMI_IGNORE) == {0, -1}
    first_groups = info["groups"]
    for k in range(1, 4):
        forecast = np.clip(obs * 0.8 + 0.1, 0, 1).astype(np.float32)
        new_obs, reward, terminated, truncated, info = env.step(forecast)
        np.testing.assert_array_equal(new_obs, obs)  # the same image every tick
        np.testing.assert_array_equal(info["groups"], first_groups)
        assert reward == pytest.approx(bernoulli_log_likelihood(obs, forecast))
        assert terminated == (k == 3) and not truncated and "label" not in info
    with pytest.raises(RuntimeError, match="ended"):
        env.step(forecast)
    # the fixed walk: a seeded reset restarts at episode 0, an index plays that episode
    direct, _ = gym.make(ENV_ID, split="test").reset(options={"index": 1})
    walked, _ = env.reset()
    np.testing.assert_array_equal(walked, direct)
    np.testing.assert_array_equal(env.reset(seed=5)[0], obs)
    train = gym.make(ENV_ID)
    a, _ = train.reset(seed=3)
    assert np.array_equal(a, gym.make(ENV_ID).reset(seed=3)[0]) and not np.array_equal(a, train.reset(seed=4)[0])
    with pytest.raises(ValueError):
        env.step(np.full((32, 32), 0.5, np.float32))


def test_make_vec():
    vec = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", split="test")
    obs, infos = vec.reset(seed=0)
    assert obs.shape == (3, 20, 20) and infos["groups"].shape == (3, 20, 20) and infos["_groups"].all()
    single = gym.make(ENV_ID, split="test")
    np.testing.assert_array_equal(obs[2], single.reset(options={"index": 2})[0])
    for _ in range(3):
        frames, rewards, terminated, _, infos = vec.step(np.full((3, 20, 20), 0.5, np.float32))
    assert terminated.all() and rewards.shape == (3,)
    np.testing.assert_allclose(rewards, 400 * np.log(0.5), rtol=1e-6)
    obs, rewards, terminated, _, infos = vec.step(np.full((3, 20, 20), 0.5, np.float32))  # next-step autoreset
    assert not terminated.any() and (rewards == 0).all()
    np.testing.assert_array_equal(obs[0], single.reset(options={"index": 3})[0])
    np.testing.assert_array_equal(infos["groups"][0], single.reset(options={"index": 3})[1]["groups"])
    assert len(gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync").reset(seed=0)[0]) == 2


# ------------------------------------------------------------------------------ task and configurations


def test_configs_pick_the_shapes_task():
    for name, recurrent in (("shapes-rtagger", True), ("shapes-tagger", False)):
        for size in ("tiny", "cpu", "gpu"):
            cfg = get_config(name, size=size)
            assert cfg.obs_shape == (20, 20) and cfg.groups == 4 and cfg.n_classes == 0 and cfg.class_weight == 0
            assert cfg.norm == "batch_tick" and cfg.input_noise > 0 and cfg.recurrent == recurrent
            assert cfg.level_spatial(len(cfg.levels)) == ((10, 10) if size == "tiny" else (5, 5)) and cfg.top_pool == 1
        assert task_for(cfg) == "shapes" and TASKS["shapes"] is ShapesTask
    assert set(build_model(get_config("shapes-tagger", size="tiny")).state_spec()) == {"z", "m", "tick"}


def test_task_batches_costs_and_ami():
    cfg = get_config("shapes-rtagger", size="tiny")
    task = ShapesTask(cfg)
    assert task.ami_ignore == AMI_IGNORE == ShapesEnv.ami_ignore  # the benchmark scores the same pixels
    a, b = task.train_batch(np.random.default_rng([0, 7]), 4), task.train_batch(np.random.default_rng([0, 7]), 4)
    assert all(torch.equal(a[k], b[k]) for k in a) and "labels" not in a  # a pure function of the rng; no labels
    assert a["inputs"].shape == a["true_groups"].shape == (4, 3, 20, 20)
    torch.testing.assert_close(a["targets"], a["inputs"])  # denoising: the clean image (noise is added later)
    torch.testing.assert_close((a["true_groups"] != 0).float(), a["inputs"])
    noisy = task.add_input_noise(a["inputs"], 0.2)
    torch.testing.assert_close(noisy[:, 1:], noisy[:, :1].expand(-1, 2, -1, -1))  # one noisy image for all iterations
    assert not torch.equal(noisy, a["inputs"])
    test = next(task.eval_batches("test", 3))
    np.testing.assert_array_equal(test["inputs"][:, 0].numpy(), episode_source("test").episodes(None, 3, [0, 1, 2])["image"])
    assert task.eval_size("test") == 10_000

    outputs, _ = build_model(cfg)(a["inputs"])
    costs = task.costs(outputs, a)
    assert set(costs) == {"low_level", "total"} and torch.isfinite(costs["total"])
    metrics = task.metrics(outputs, a)
    assert {"ami_1", "ami_2", "ami_3", "ami", "ami_shuffled"} <= set(metrics) and "class_error" not in metrics
    # masks that put the background in shape 1's group and the overlaps anywhere score AMI 1: only the
    # shapes' own pixels count
    truth = a["true_groups"].long()
    masks = torch.stack([(truth == 1) | (truth == 0), truth == 2, truth == 3, truth == -1], dim=2).float()
    total, count = task.metrics({"groups": masks}, a)["ami"]
    assert count == 12 and total == pytest.approx(count)
    total, _ = task.metrics({"groups": masks[:, :, [1, 0, 2, 3]].roll(1, dims=-1)}, a)["ami"]
    assert total < 0.9 * count  # and a wrong grouping does not
    from rladder_stream.training.train import TrainConfig

    with pytest.raises(ValueError, match="labelled"):
        ShapesTask(cfg, TrainConfig(model="shapes-rtagger", labelled=1000))


def test_a_tiny_rtagger_trains_on_shapes(tmp_path):
    from rladder_stream import load_checkpoint
    from rladder_stream.training.train import TrainConfig, train

    cfg = TrainConfig(model="shapes-rtagger", size="tiny", epochs=1, train_sequences=24, batch_size=8, valid_sequences=16,
                      test_sequences=16, eval_batch_size=16, warmup_steps=2, log_every=1, out=str(tmp_path / "run"))
    results = train(cfg, log=lambda s: None)
    assert results["steps"] == 3
    test = results["test"]
    assert {"ami_1", "ami_2", "ami_3", "ami", "ami_shuffled"} <= set(test) and "class_error" not in test
    assert all(np.isfinite(v) for v in test.values())
    config, weights, _ = load_checkpoint(tmp_path / "run" / "last.pt")
    fresh = build_model(config).state_dict()
    assert config.name == "shapes-rtagger" and any(not torch.equal(fresh[k], weights[k]) for k in fresh)  # it learnt


def test_groups_cli_draws_a_shapes_model(tmp_path, capsys):
    from PIL import Image

    from rladder_stream.apps.figures import groups_cli_main
    from rladder_stream.streaming.checkpoint import save_checkpoint

    cfg = get_config("shapes-rtagger", size="tiny")
    save_checkpoint(tmp_path / "m.pt", cfg, build_model(cfg).state_dict())
    assert groups_cli_main(["--model", str(tmp_path / "m.pt"), "--index", "2", "--out", str(tmp_path / "fig")]) == 0
    assert Image.open(tmp_path / "fig" / "figure6-shapes-rtagger-test2.png").size[0] > 100


def test_the_cost_of_the_last_iteration_alone_is_that_iterations_mixture_cost():
    """tagger_cost_iterations: ``all`` averages the mixture cost over the iterations (the reference), ``last``
    keeps the last iteration's alone; the same outputs give each by hand."""
    from rladder_stream.model.tagger import group_mixture_bce

    cfg = get_config("shapes-tagger-dense", size="tiny")
    batch = ShapesTask(cfg).train_batch(np.random.default_rng(3), 4)
    torch.manual_seed(0)
    outputs, _ = build_model(cfg)(batch["inputs"])
    per_tick = [group_mixture_bce({k: outputs[k][:, t : t + 1] for k in ("groups", "reconstructions")}, batch["targets"][:, t : t + 1])
                for t in range(3)]
    every = ShapesTask(cfg).costs(outputs, batch)["low_level"]
    last = ShapesTask(cfg.replace(tagger_cost_iterations="last")).costs(outputs, batch)["low_level"]
    torch.testing.assert_close(every, torch.stack(per_tick).mean())
    torch.testing.assert_close(last, per_tick[-1])
    assert not torch.allclose(every, last)
    with pytest.raises(ValueError, match="tagger_cost_iterations"):
        cfg.replace(tagger_cost_iterations="first")


def test_a_binary_mixture_cost_does_not_see_how_the_ink_is_grouped():
    """Per pixel a mixture of Bernoullis is one Bernoulli of the mixture's mean, so the binary cost depends on
    Σ_k m_k z_k alone: one group carrying the whole image costs exactly what a split into groups costs. (The
    Gaussian mixture's cost does depend on the split.) Grouping pays only through the later iterations."""
    from rladder_stream.model.tagger import group_mixture_bce, group_mixture_nll

    gen = torch.Generator().manual_seed(0)
    targets = (torch.rand(2, 1, 20, 20, generator=gen) < 0.3).float()
    masks = torch.softmax(torch.randn(2, 1, 4, 20, 20, generator=gen), dim=2)
    recon = torch.rand(2, 1, 4, 20, 20, generator=gen)
    one_group = torch.zeros_like(masks)
    one_group[:, :, 0] = 1.0
    mean = (masks * recon).sum(2, keepdim=True).expand_as(recon)
    split, whole = {"groups": masks, "reconstructions": recon}, {"groups": one_group, "reconstructions": mean}
    torch.testing.assert_close(group_mixture_bce(split, targets), group_mixture_bce(whole, targets))
    log_var = torch.full((2, 1), math.log(0.04))
    assert not torch.allclose(group_mixture_nll(split | {"log_variance": log_var}, targets),
                              group_mixture_nll(whole | {"log_variance": log_var}, targets))


def test_shapes_can_show_each_image_for_more_iterations(tmp_path):
    """The data setting ``iterations`` sets how many ticks Shapes shows each image for, in training and
    evaluation alike (every iteration scored); tasks whose images are not shown repeatedly refuse it."""
    from rladder_stream.training.train import TrainConfig, train

    cfg = get_config("shapes-tagger-dense", size="tiny")
    task = ShapesTask(cfg, TrainConfig(model=cfg.name, iterations=5))
    batch = task.train_batch(np.random.default_rng(0), 2)
    assert batch["inputs"].shape == batch["true_groups"].shape == (2, 5, 20, 20)
    assert next(task.eval_batches("valid", 2))["inputs"].shape == (2, 5, 20, 20)
    assert ShapesTask(cfg).train_batch(np.random.default_rng(0), 2)["inputs"].shape[1] == 3  # the default
    run = TrainConfig(model=cfg.name, size="tiny", iterations=4, epochs=1, train_sequences=16, batch_size=8, valid_sequences=8,
                      test_sequences=8, eval_batch_size=8, warmup_steps=1, log_every=1, out=str(tmp_path / "run"))
    assert {"ami_4"} <= set(train(run, log=lambda s: None)["test"])
    with pytest.raises(ValueError, match="iterations"):
        TrainConfig(model=cfg.name, iterations=0).check_data()
    for setting in ("iterations", "eval_iterations"):
        omm = TrainConfig(model="omm-rladder", size="tiny", out=str(tmp_path / "omm"), **{setting: 5})
        with pytest.raises(ValueError, match=f"^{setting}=5: the omm task"):
            train(omm, log=lambda s: None)
        assert not (tmp_path / "omm").exists()  # refused before its folder is made


def test_shapes_can_be_evaluated_for_more_iterations_than_trained(tmp_path):
    """``eval_iterations``: validation and test images are shown for that many iterations while training keeps
    its own; the first iterations of a longer evaluation are the shorter evaluation's (same masks, same AMI)."""
    from rladder_stream.training.train import TrainConfig, evaluate, train

    cfg = get_config("shapes-tagger-dense", size="tiny")
    task = ShapesTask(cfg, TrainConfig(model=cfg.name, eval_iterations=6))
    assert task.train_batch(np.random.default_rng(0), 2)["inputs"].shape[1] == 3
    assert next(task.eval_batches("test", 2))["inputs"].shape == (2, 6, 20, 20)
    with pytest.raises(ValueError, match="eval_iterations"):
        TrainConfig(model=cfg.name, eval_iterations=0).check_data()
    settings = dict(model=cfg.name, size="tiny", epochs=1, train_sequences=16, batch_size=8, valid_sequences=8, test_sequences=16,
                    eval_batch_size=16, warmup_steps=1, log_every=1)
    result = train(TrainConfig(**settings, eval_iterations=6, out=str(tmp_path / "run")), log=lambda s: None)
    assert {f"ami_{i}" for i in range(1, 7)} <= set(result["test"])
    from rladder_stream.streaming.checkpoint import load_model

    model = load_model(tmp_path / "run" / "last.pt")
    short = evaluate(model, ShapesTask(model.config, TrainConfig(model=cfg.name, test_sequences=16)), "test", 16, 16, torch.device("cpu"))
    assert "ami_4" not in short
    for i in (1, 2, 3):
        assert short[f"ami_{i}"] == pytest.approx(result["test"][f"ami_{i}"], abs=1e-6)
