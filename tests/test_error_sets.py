"""experiments/error_sets.py: which test sequences checkpoints get wrong and how the sets overlap (issue 26)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import load_experiment
import torch

@pytest.fixture(scope="module")
def error_sets():
    return load_experiment("error_sets")


def _record(wrong: list[int], n: int = 10, run_n: int = 6) -> dict:
    return {"checkpoint": "c.pt", "model": "omm-hrnn", "seed": 0, "step": 1, "test_sequences": n, "errors": len(wrong),
            "class_error": 100.0 * len(wrong) / n, "reported_class_error": None, "run_test_sequences": run_n,
            "run_test_errors": sum(i < run_n for i in wrong), "errors_per_block": [len(wrong)], "wrong": wrong}


def test_overlaps_count_shared_and_disagreeing_sequences_over_the_runs_own_test(error_sets):
    a, b = _record([0, 1, 2, 7]), _record([1, 2, 3, 4, 8, 9])  # the runs tested sequences 0-5
    (pair,) = error_sets.overlaps([a, b])
    assert pair["shared"] == 2 and pair["independent"] == pytest.approx(4 * 6 / 10)
    assert pair["run_shared"] == 2 and pair["run_disagree"] == 3  # 0 (a only), 3 and 4 (b only)
    assert pair["tie_chance"] == pytest.approx(1 / math.sqrt(2 * math.pi * 3))
    doc = error_sets.document([a, b], "cmd")
    assert "Sequences every checkpoint gets wrong: 2." in doc and "| 0–1 | 2 | 2 | 2 of 6 | 3 | 0.230 |" in doc


def test_wrong_flags_mark_the_last_ticks_wrong_classes(error_sets):
    class Fixed(torch.nn.Module):  # class 0 at every tick but the last, where it says class 3
        def forward(self, inputs):
            logits = torch.zeros(*inputs.shape[:2], 10)
            logits[:, -1, 3] = 1.0
            return {"class_logits": logits}, None

    class Task:
        def eval_batches(self, split, batch_size, limit):
            labels = torch.tensor([3, 0, 3, 5, 3])[:limit]
            for start in range(0, limit, batch_size):
                yield {"inputs": torch.zeros(len(labels[start:start + batch_size]), 4, 2), "labels": labels[start:start + batch_size]}

    np.testing.assert_array_equal(error_sets.wrong_flags(Fixed(), Task(), 5, batch_size=2), [False, True, False, True, False])
