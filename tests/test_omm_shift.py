"""experiments/omm_shift.py: Occluded Moving MNIST rebuilt with one generator detail changed (issue 26)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import load_experiment

from rladder_stream.envs.occluded_mnist import LIMIT, OCCLUDED, generate_occluded_batch


@pytest.fixture(scope="module")
def omm_shift():
    return load_experiment("omm_shift")


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(3)
    box = np.zeros((64, 28, 28), dtype=np.uint8)
    box[:, 4:24, 4:24] = rng.integers(0, 256, (64, 20, 20), dtype=np.uint8)  # ink inside MNIST's 20 x 20 box
    return box


def test_the_reference_variant_is_the_projects_own_generator(omm_shift, digits):
    """The row every other is read against must be exactly what the environment and training draw."""
    frames = omm_shift.variant_frames("ours", digits, seed=5)
    library = generate_occluded_batch(np.random.default_rng([5, 26]), digits, np.zeros(len(digits)), len(digits),
                                      choice=np.arange(len(digits)), n_frames=5)
    np.testing.assert_array_equal(frames, library["frames"])


def test_every_variant_changes_something_and_keeps_the_bars(omm_shift, digits):
    ours = omm_shift.variant_frames("ours", digits, seed=1)
    for name in omm_shift.VARIANTS:
        frames = omm_shift.variant_frames(name, digits, seed=1)
        assert frames.shape == ours.shape and frames.dtype == np.float32
        assert frames.min() >= 0.0 and frames.max() <= 1.0 + 1e-6
        assert not frames[..., OCCLUDED].any()  # bars are background in every variant
        assert np.array_equal(frames, ours) == (name == "ours"), name


def test_turning_before_the_edge_stays_inside_and_differs_from_reflection_only_at_edges(omm_shift):
    start = np.array([[15, 0], [8, 8], [1, 16]])
    velocity = np.array([[2, -2], [1, 1], [-2, 2]])
    turned = omm_shift.turn_before_edge(start, velocity, 5)
    reflected = omm_shift.reflect(start, velocity, 5)
    assert turned.min() >= 0 and turned.max() <= LIMIT
    np.testing.assert_array_equal(turned[1], reflected[1])  # never near an edge: the same path
    np.testing.assert_array_equal(turned[0, 0], [15, 13, 11, 9, 7])  # turns at 15 (15 + 2 > 16): never reaches 16
    np.testing.assert_array_equal(reflected[0, 0], [15, 15, 13, 11, 9])  # reflection: 17 folds back to 15


def test_max_normalising_and_cropping_do_what_they_say(omm_shift, digits):
    small = omm_shift.max_normalised(omm_shift.BILINEAR)(digits)
    np.testing.assert_allclose(small.max(axis=(1, 2)), 1.0, rtol=1e-6)
    crop = omm_shift.cropped(lambda d: d.astype(np.float32), box=20)(digits)
    np.testing.assert_array_equal(crop, digits[:, 4:24, 4:24])


def test_class_error_counts_the_last_ticks_wrong_classes(omm_shift):
    class Fixed(torch.nn.Module):  # says class 3 at the last tick
        def forward(self, inputs):
            logits = torch.zeros(*inputs.shape[:2], 10)
            logits[:, -1, 3] = 1.0
            return {"class_logits": logits}, None

    labels = np.array([3, 1, 3, 0])
    error, flags = omm_shift.class_error(Fixed(), np.zeros((4, 5, 32, 32), np.float32), labels, batch_size=3)
    assert error == 50.0 and flags.tolist() == [False, True, False, True]


def test_document_reads_each_variant_against_ours(omm_shift):
    records = [{"checkpoint": "m.pt", "variant": v, "test_sequences": 100, "seed": 0, "class_error": e, "wrong": int(e),
                "data": "d"} for v, e in (("ours", 5.0), ("area", 6.5), ("torch-bilinear", 9.0))]
    doc = omm_shift.document(records, "cmd")
    assert "| `area` | area averaging (box filter) on float digits | nearly (Pillow's box) | 6.50 (+1.50) |" in doc
    assert "9.00 (+4.00)" in doc
    assert "`m.pt` +4.00 points (`torch-bilinear`)" in doc
    records[0]["description"] = "the model under test"
    assert "- `m.pt`: the model under test" in omm_shift.document(records, "cmd")


def test_a_runs_checkpoint_is_named_by_its_folder(omm_shift):
    assert omm_shift.label("runs/ft/aug-true/last.pt") == "aug-true/last.pt"
    assert omm_shift.label("rladder_stream/pretrained/omm-rladder-cpu.pt") == "omm-rladder-cpu.pt"
