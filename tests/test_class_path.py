"""experiments/class_path.py: the class cost alone trains the model asked for, from the masks asked for, and the
document gives its mean per stretch of steps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import load_experiment

pytestmark = pytest.mark.usefixtures("embedded_data")


@pytest.fixture(scope="module")
def class_path():
    return load_experiment("class_path")


def test_uniform_masks_start_every_group_alike(class_path, monkeypatch):
    """With ``uniform`` masks the state the model starts from holds 1/K in every mask; with ``random`` it holds the
    model's own noisy start; the costs are finite, one per step, and start near chance (ln 10)."""
    from rladder_stream.model.tagger import RTagger

    seen = []
    step = RTagger.step

    def recording_step(self, obs, state):
        seen.append(state["m"].clone())
        return step(self, obs, state)

    monkeypatch.setattr(RTagger, "step", recording_step)
    costs = class_path.train_class_only("tmnist-tagger-dense", "uniform", "tiny", 2, seed=0)
    assert len(costs) == 2 and all(math.isfinite(c) and abs(c - math.log(10)) < 1.0 for c in costs)
    starts = seen[::3]  # the first of each step's 3 iterations
    assert all(torch.all(m == 0.5) for m in starts)
    seen.clear()
    class_path.train_class_only("tmnist-tagger-dense", "random", "tiny", 1, seed=0)
    assert not torch.all(seen[0] == 0.5) and torch.allclose(seen[0].sum(1), torch.ones(()))


def test_the_document_averages_each_stretch(class_path):
    records = [{"arm": "convnet", "config": "tmnist-convnet", "masks": None, "size": "tiny", "seed": 0,
                "costs": list(np.arange(250, dtype=float))}]
    text = class_path.markdown(records, "python experiments/class_path.py", {
        "generated": "now", "doc": "x.md", "seed": 0, "hardware": "test machine", "wall_s": 1.0})
    row = next(line for line in text.splitlines() if line.startswith("| convnet"))
    assert row.split(" | ")[3:] == ["49.500", "149.500", "224.500 |"]  # steps 1-100, 101-200, 201-250
    assert "| steps 1-100 | steps 101-200 | steps 201-250 |" in text and "250 steps of 32 images" in text
