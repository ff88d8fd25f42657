"""experiments/texture_pairs.py: the learned same-group test gives known answers on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_experiment

pytestmark = pytest.mark.usefixtures("embedded_data")


def test_two_flat_greys_are_told_apart_and_one_white_noise_is_not():
    """Digit and background two flat greys: the pair classifier tells same-group pairs from mixed ones well above
    chance; both groups the same white noise: no local evidence, so it stays near 50 % on held-out images (while
    the balanced pairs, drawn at definite-group centres, are what the doc says)."""
    from rladder_stream.envs.textured_mnist import episode_source

    pairs = load_experiment("texture_pairs")
    episodes = episode_source("train").episodes(np.random.default_rng(0), 60, None)
    mask, groups = episodes["mask"], episodes["groups"]
    first, second, same = pairs.draw_pairs(mask, groups, 400, np.random.default_rng(1))
    assert same.mean() == 0.5 and first.shape == (400, 1, pairs.PATCH, pairs.PATCH)
    centre = pairs.PATCH // 2
    assert np.all(same == ((first[:, 0, centre, centre] > 0.5) == (second[:, 0, centre, centre] > 0.5)))  # mask: digit > 0.9
    flat = 0.25 + 0.5 * mask
    noise = np.random.default_rng(2).uniform(size=mask.shape).astype(np.float32)
    told = pairs.pair_accuracy(flat, groups, 0.05, seed=0, steps=60, train_pairs=1500, test_pairs=600, width=8, batch=64)
    blind = pairs.pair_accuracy(noise, groups, 0.05, seed=0, steps=60, train_pairs=1500, test_pairs=600, width=8, batch=64)
    assert told["accuracy"] > 0.8
    assert abs(blind["accuracy"] - 0.5) < 0.06
