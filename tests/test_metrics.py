"""AMI (docs/design.md#ami): equal to scikit-learn's max-normalised AMI, invariant to relabelling, blind to ignored pixels."""

from __future__ import annotations

import numpy as np
import pytest

from rladder_stream.training.metrics import adjusted_mutual_info, batch_grouping_ami, grouping_ami

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def test_equals_scikit_learn_max_normalisation_on_random_labelings():
    rng = np.random.default_rng(0)
    for trial in range(60):
        n = int(rng.integers(2, 1200))
        true = rng.integers(0, int(rng.integers(1, 5)), n)
        if trial % 3 == 0:  # correlated labelings, not only independent ones
            pred = np.where(rng.random(n) < 0.7, true, rng.integers(0, 4, n))
        else:
            pred = rng.integers(0, int(rng.integers(1, 6)), n) + 7  # labels need not start at 0
        want = sklearn_metrics.adjusted_mutual_info_score(true, pred, average_method="max")
        assert adjusted_mutual_info(true, pred) == pytest.approx(want, abs=1e-9), (trial, n)


def test_max_normalisation_differs_from_the_arithmetic_default():
    true, pred = np.array([0, 0, 0, 1, 1, 1, 2, 2]), np.array([0, 0, 1, 1, 1, 1, 1, 0])
    assert adjusted_mutual_info(true, pred) != pytest.approx(sklearn_metrics.adjusted_mutual_info_score(true, pred), abs=1e-3)


def test_a_permutation_of_the_truth_scores_one():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, (32, 32))
    permuted = np.array([2, 0, 1])[truth]
    masks = np.stack([permuted == k for k in range(4)]).astype(np.float32)  # a 4th, empty group is harmless
    assert grouping_ami(truth, masks) == pytest.approx(1.0)
    assert adjusted_mutual_info(truth, permuted) == pytest.approx(1.0)


def test_ignored_pixels_are_ignored():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, (16, 16))
    masks = np.stack([truth == 1, truth == 0]).astype(np.float32)
    truth_with_holes = truth.copy()
    truth_with_holes[::3] = -1
    scrambled = masks.copy()
    scrambled[:, ::3] = rng.random((2, 6, 16))  # anything where the truth is ignored
    assert grouping_ami(truth_with_holes, scrambled) == pytest.approx(1.0)
    # the background (group 0) dropped too, as on Moving MNIST: only the two digits are scored
    three = rng.integers(0, 3, (16, 16))
    digits_only = np.stack([three == 1, three == 2, np.zeros_like(three)]).astype(np.float32)
    assert grouping_ami(three, digits_only, ignore=(-1, 0)) == pytest.approx(1.0)
    assert grouping_ami(three, digits_only) < 1.0
    assert grouping_ami(np.full((4, 4), -1), np.ones((2, 4, 4))) is None


def test_degenerate_labelings_follow_scikit_learn():
    for true, pred in (([1, 1, 1], [0, 0, 0]), ([0, 1, 2], [0, 0, 0]), ([0, 0, 0], [0, 1, 1])):
        want = sklearn_metrics.adjusted_mutual_info_score(true, pred, average_method="max")
        assert adjusted_mutual_info(np.array(true), np.array(pred)) == pytest.approx(want)


def test_batch_sum_and_count():
    truth = np.array([[[0, 1], [1, 0]], [[-1, -1], [-1, -1]], [[0, 0], [1, 1]]])
    masks = np.stack([np.stack([t == 0, t != 0]) for t in truth]).astype(np.float32)
    total, count = batch_grouping_ami(truth, masks)
    assert count == 2 and total == pytest.approx(2.0)


def test_non_finite_masks_score_nan_not_an_arbitrary_grouping():
    truth = np.array([[0, 1], [1, 0]])
    masks = np.stack([truth == 0, truth != 0]).astype(np.float32)
    assert grouping_ami(truth, masks) == pytest.approx(1.0)
    masks[0, 0, 1] = np.nan  # a diverged model
    assert np.isnan(grouping_ami(truth, masks))
    total, count = batch_grouping_ami(truth[None], masks[None])
    assert np.isnan(total) and count == 1


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="pixels"):
        grouping_ami(np.zeros((3, 3), int), np.ones((2, 4, 4)))
    with pytest.raises(ValueError, match="length"):
        adjusted_mutual_info(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="ground-truth"):
        batch_grouping_ami(np.zeros((2, 3, 3), int), np.ones((3, 2, 3, 3)))


def test_the_largest_groups_share_of_the_scored_pixels_by_hand():
    from rladder_stream.training.metrics import largest_group_share

    truth = np.array([[[0, 0, 1, 1, -1]], [[-1, -1, -1, -1, -1]], [[2, 2, 2, 0, 1]]])  # (3 images, 1 x 5 pixels)
    won = np.array([[[0, 1, 1, 1, 0]], [[0, 0, 0, 0, 0]], [[0, 0, 0, 0, 0]]])  # each pixel's group
    masks = np.stack([(won == k) * 0.9 + 0.05 for k in range(2)], axis=1)  # (3, 2 groups, 1, 5)
    total, count = largest_group_share(truth, masks)
    # image 0: 4 scored pixels, group 1 wins 3 -> 0.75; image 1: nothing scored (left out); image 2: 5 of 5 -> 1
    assert count == 2 and total == pytest.approx(0.75 + 1.0)
    # the background ignored too: image 2 keeps 4 pixels, all group 0's
    total, count = largest_group_share(truth, masks, ignore=(-1, 0))
    assert count == 2 and total == pytest.approx(1.0 + 1.0)  # image 0: both ink pixels are group 1's
