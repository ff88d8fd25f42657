"""experiments/shapes_cells.py: the 2 x 2 (cell x feedback) document's claims from known records."""

from __future__ import annotations

from conftest import load_experiment

shapes_cells = load_experiment("shapes_cells")


def _record(arm: str, seed: int, ami: float) -> dict:
    metrics = {"ami_1": ami / 2, "ami_2": ami * 0.8, "ami_3": ami, "ami_shuffled": 0.2, "largest_group_1": 0.6,
               "largest_group_3": 0.6}
    return {"arm": arm, "seed": seed, "steps": 1000, "train_time_s": 60.0, "size": "cpu", "test": dict(metrics),
            "valid_history": [{"step": 1000, **metrics}],
            "train_config": {"valid_sequences": 500, "test_sequences": 1000}}


def test_the_two_by_two_says_which_factor_changes_grouping():
    """Feed-forward corners far above the LSTM corners, feedback changing nothing: the cell's comparisons hold,
    the feedback's cannot tell; without all four corners there is no 2 x 2 section."""
    amis = {"lstm+feedback": (0.30, 0.32), "lstm": (0.29, 0.33), "feedforward+feedback": (0.60, 0.62),
            "feedforward": (0.61, 0.63)}
    results = [_record(arm, seed, ami) for arm, values in amis.items() for seed, ami in enumerate(values)]
    text = shapes_cells.document(results, 1000, "python experiments/shapes_cells.py run ...")
    section = text.split("## The 2 × 2 at step 1000")[1].split("\n## ")[0]
    verdicts = {line.split("`")[1] + " vs " + line.split("`")[3]: line.split("**")[1]
                for line in section.splitlines() if line.startswith("- **")}
    assert verdicts == {"feedforward+feedback vs lstm+feedback": "holds", "feedforward vs lstm": "holds",
                        "lstm+feedback vs lstm": "cannot tell with 2 seeds",
                        "feedforward+feedback vs feedforward": "cannot tell with 2 seeds"}
    three = [r for r in results if r["arm"] != "lstm"]
    assert "## The 2 × 2" not in shapes_cells.document(three, 1000, None)
