"""experiments/supervised_grouping.py: the supervised segmenter gives known answers on synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import load_experiment

pytestmark = pytest.mark.usefixtures("embedded_data")


def test_flat_greys_are_segmented_and_white_noise_only_earns_the_prior():
    """Digit and background two flat greys: told the answer, the segmenter finds the digit (AMI far above its
    shuffled chance level). Both groups one white noise: nothing in the image says where the digit is, so its AMI
    is what its prior earns, its shuffled chance level."""
    grouping = load_experiment("supervised_grouping")
    settings = {"textures": "flat"}
    kwargs = dict(sigma=0.05, seed=0, steps=80, batch=16, width=8, eval_every=40, test_images=100)
    told = grouping.train_segmenter(settings, render=lambda e: 0.25 + 0.5 * e["mask"], **kwargs)
    noise = lambda e: np.random.default_rng(len(e["mask"])).uniform(size=e["mask"].shape)  # noqa: E731
    blind = grouping.train_segmenter(settings, render=noise, **kwargs)
    assert [c["step"] for c in told["curve"]] == [40, 80]
    assert told["ami"] > 0.7 and told["ami"] > 2 * told["ami_shuffled"] and told["pixel_accuracy"] > 0.95
    assert abs(blind["ami"] - blind["ami_shuffled"]) < 0.05


def test_masks_and_loss_follow_the_true_groups():
    """The masks are (background, digit) = (1 - p, p); the loss ignores the soft edge (-1): a logit map that is
    right wherever a group is definite costs nearly nothing whatever it says on the edge."""
    grouping = load_experiment("supervised_grouping")
    groups = torch.tensor([[[0, 1, -1], [1, 0, -1]]])
    logits = torch.where(groups == 1, 20.0, -20.0)
    logits[groups < 0] = 20.0
    masks = grouping.group_masks(logits)
    assert masks.shape == (1, 2, 2, 3) and np.allclose(masks.sum(1), 1.0)
    assert np.array_equal(masks.argmax(1)[groups.numpy() >= 0], groups.numpy()[groups.numpy() >= 0])
    assert grouping.segmentation_loss(logits, groups) < 1e-6
    assert grouping.segmentation_loss(-logits, groups) > 10


def test_a_run_names_a_known_variant_and_a_number():
    grouping = load_experiment("supervised_grouping")
    assert grouping.parse_run("brodatz, scale 2@0.1") == ("brodatz, scale 2", 0.1)
    with pytest.raises(SystemExit, match="unknown variant"):
        grouping.parse_run("brodatz, scale 9@0.1")
    with pytest.raises(SystemExit, match="noise must be a number"):
        grouping.parse_run("brodatz, scale 2@high")


@pytest.mark.parametrize("dilations", [(1, 1), (1, 2, 3), (1, 2, 4, 8, 4, 2, 1)])
def test_the_receptive_field_is_what_one_output_pixel_sees(dilations):
    """The gradient of one output pixel reaches exactly ``receptive_field`` input pixels a side (clipped at the
    image's edge for the whole-image default)."""
    grouping = load_experiment("supervised_grouping")
    torch.manual_seed(0)
    model = grouping.Segmenter(4, dilations).eval()
    side = 64
    image = torch.rand(1, side, side, requires_grad=True)
    model(image)[0, side // 2, side // 2].backward()
    rows = image.grad[0].abs().sum(1).nonzero().flatten()
    assert int(rows.max() - rows.min()) + 1 == grouping.receptive_field(dilations)
