"""experiments/texture_cues.py: the grouping-cue benchmark of the textured data gives known answers on synthetic images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import load_experiment

pytestmark = pytest.mark.usefixtures("embedded_data")

@pytest.fixture(scope="module")
def cues():
    return load_experiment("texture_cues")


@pytest.fixture
def digits():
    """The soft masks and groups of 40 training images of the embedded data (real thickened digits)."""
    from rladder_stream.envs.textured_mnist import episode_source

    episodes = episode_source("train").episodes(np.random.default_rng(0), 40, None)
    return episodes["mask"], episodes["groups"]


def test_two_flat_greys_are_worth_grouping_and_one_white_noise_is_not(cues, digits):
    """Digit and background two flat greys (0.25, 0.75): a denoiser told the segmentation averages within its group
    only, several times better than one that is not, and k-means on local energies finds the groups well above
    chance. Both groups the same white noise: the segmentation tells a denoiser nothing (gain about 1) and k-means
    finds nothing (AMI about 0)."""
    mask, groups = digits
    flat = (mask * 0.25 + (1 - mask) * 0.75).astype(np.float32)
    white = np.random.default_rng(5).uniform(0.0, 1.0, mask.shape).astype(np.float32)
    (grey,) = cues.measure(flat, groups, (0.1,), seed=0)
    (noise,) = cues.measure(white, groups, (0.1,), seed=0)
    assert grey["gain"] > 3.0 and grey["gain_near"] > 3.0, grey
    assert 0.9 < noise["gain"] < 1.1 and 0.9 < noise["gain_near"] < 1.1, noise
    assert grey["mse_plain"] < 0.1**2  # the plain denoiser does denoise
    assert grey["kmeans_ami"] > 0.2 and abs(noise["kmeans_ami"]) < 0.05, (grey, noise)
    assert 0.3 < grey["near_share"] < 1.0
    assert grey["adaptive_gain"] > 3.0 and 0.8 < noise["adaptive_gain"] < 1.1, (grey, noise)  # per-image fits agree


def test_per_image_fits_gain_from_the_groups_where_each_group_is_its_own_plane_wave(cues, digits):
    """Digit and background two plane waves of different frequency and direction, the same in every image: one
    denoiser fitted per group within an image predicts each wave from its neighbours better than one fitted to
    both (adaptive gain well above 1); the same wave in both groups gives the groups nothing to add."""
    mask, groups = digits
    rows, cols = np.indices(mask.shape[1:])
    wave = lambda fx, fy: 0.5 + 0.3 * np.sin(2 * np.pi * (fx * cols + fy * rows))  # noqa: E731
    two = (mask * wave(0.11, 0.05) + (1 - mask) * wave(-0.04, 0.21)).astype(np.float32)
    one = np.broadcast_to(wave(0.11, 0.05), mask.shape).astype(np.float32)
    (two_waves,) = cues.measure(two, groups, (0.1,), seed=0)
    (one_wave,) = cues.measure(one, groups, (0.1,), seed=0)
    assert two_waves["adaptive_gain"] > 1.3 and one_wave["adaptive_gain"] < 1.05, (two_waves, one_wave)
    assert two_waves["mse_per_group"] < 0.1**2 / 3  # the per-group fits do denoise


def test_the_benchmark_writes_its_table_and_records(cues, tmp_path, capsys):
    """A tiny run on the embedded data: a record per variant and noise level (the denoisers at the noisy ones), the
    document with its table, verdict and command, the records beside it."""
    doc = tmp_path / "cues.md"
    assert cues.main(["--images", "12", "--variants", "brodatz, scale 2", "sinusoid, scale 1", "--doc", str(doc)]) == 0
    saved = json.loads(doc.with_suffix(".json").read_text())
    records = saved["records"]
    assert [(r["variant"], r["sigma"]) for r in records] == [(v, s) for v in ("brodatz, scale 2", "sinusoid, scale 1")
                                                             for s in cues.NOISES]
    assert all(("gain" in r) == (r["sigma"] > 0) for r in records)
    assert records[0]["settings"] == {"texture_scale": 2.0} and "scale 2" in records[0]["data"]
    assert "sinusoid" in records[-1]["data"] and saved["meta"]["images"] == 12
    text = doc.read_text()
    assert "| brodatz, scale 2 | 0.1 |" in text and "Verdict:" in text and "texture_cues.py --images 12" in text
    assert "| sinusoid, scale 1 |" in capsys.readouterr().out
