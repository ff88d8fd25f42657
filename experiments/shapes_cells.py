"""Which part of the RTagger's engine stops it grouping Shapes (issue 27; docs/results/shapes_cells.md)?

The 2 x 2 of the engine's cell {LSTM, feed-forward} x the decoder-to-encoder feedback {on, off}, all with the
reference's fully connected engine (the RTagger and the Tagger are two corners), and the RTagger whose LSTM levels
pass a sparse ReLU output up (``shapes-rtagger-sparse``, the ``lstm_relu`` cell). Every arm trains the same steps
with the same recipe; each validation records the AMI of every iteration, its shuffled chance level and the share of
the scored pixels that the largest group wins (``largest_group_t``: about a third when each group takes one of the
three shapes, near 1 when one group takes everything).

    python experiments/shapes_cells.py run --out runs/cells --seeds 3 --steps 2000 --jobs 2 --doc docs/results/shapes_cells.md
    python experiments/shapes_cells.py doc --out runs/cells --doc docs/results/shapes_cells.md   # re-derive the doc

The document is a pure function of the runs' ``results.json`` (committed beside it as ``.json``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from rladder_stream.reproduce.common import (Stat, claim_worse, duration, format_stat, provenance_lines, publish, timestamp,
                                             train_runs, training_settings)
from rladder_stream.reproduce.grouping import TARGET_AMI
from rladder_stream.training.train import TrainConfig

#: arm -> (registered configuration, model settings): the corners are configurations plus one switch
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "lstm_relu+feedback": ("shapes-rtagger-sparse", {}),
    "lstm+feedback": ("shapes-rtagger-dense", {}),
    "lstm": ("shapes-rtagger-dense", {"decoder_to_encoder": False}),
    "feedforward+feedback": ("shapes-tagger-dense", {"decoder_to_encoder": True}),
    "feedforward": ("shapes-tagger-dense", {}),
}
WHAT = {
    "lstm+feedback": "the RTagger (LSTM engine, feedback)",
    "lstm": "LSTM engine, no feedback",
    "feedforward+feedback": "feed-forward engine with feedback",
    "feedforward": "the Tagger (feed-forward engine, no feedback)",
    "lstm_relu+feedback": "LSTM memory, sparse ReLU output, feedback (`shapes-rtagger-sparse`)",
}
#: the 2 x 2's corners, and its four one-factor comparisons (first arm claimed to group better, second, what differs)
CORNERS = ("lstm+feedback", "lstm", "feedforward+feedback", "feedforward")
COMPARISONS = (("feedforward+feedback", "lstm+feedback", "the cell, feedback on"),
               ("feedforward", "lstm", "the cell, feedback off"),
               ("lstm+feedback", "lstm", "the feedback, LSTM cell"),
               ("feedforward+feedback", "feedforward", "the feedback, feed-forward cell"))
BAR_RATIO = 2.0  # issue 27: the last iteration's test AMI at least TARGET_AMI and this many times the shuffled level
RECIPE = {"batch_size": 32, "lr": 0.001, "lr_schedule": "constant", "cpu_bf16": True, "valid_sequences": 500,
          "test_sequences": 1000, "log_every": 100}  # docs/results/shapes-cpu-bf16.md's recipe


def plan(out: str, size: str, seeds: int, steps: int, valid_every: int, arms: Sequence[str], common: Mapping[str, Any],
         arm_steps: Mapping[str, int] | None = None) -> list[tuple[str, TrainConfig]]:
    """[(arm, run), ...], seeds 0..seeds-1; ``arm_steps``: seed 0 of these arms trains on to more steps (with a
    constant learning rate its first ``steps`` are those of the shorter runs; the curve shows what follows)."""
    runs = []
    for arm in arms:
        model, overrides = ARMS[arm]
        settings = dict(common)
        batch = int(settings.pop("batch_size"))
        for seed in range(seeds):
            n = (arm_steps or {}).get(arm, steps) if seed == 0 else steps
            if n % valid_every:
                raise ValueError(f"steps ({n}) must be a multiple of --valid-every ({valid_every})")
            runs.append((arm, TrainConfig(model=model, size=size, seed=seed, out=str(Path(out) / f"{arm}-seed{seed}"),
                                          batch_size=batch, train_sequences=valid_every * batch, epochs=n // valid_every,
                                          model_overrides=dict(overrides), **settings)))
    return runs


def at_step(result: Mapping[str, Any], step: int) -> Mapping[str, float] | None:
    """The validation metrics at ``step`` (or the test's, when ``step`` is the run's last)."""
    for h in result.get("valid_history", []):
        if int(h["step"]) == step:
            return h
    return None


def document(results: Sequence[Mapping[str, Any]], compare_step: int, command: str | None,
             budget_s: float | None = None) -> str:
    by_arm: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        by_arm.setdefault(r["arm"], []).append(r)
    iterations = sorted({int(k.split("_")[1]) for r in results for k in r["test"] if k.startswith("ami_") and k[4:].isdigit()})

    def stat(rows: Sequence[Mapping[str, Any]], metric: str, step: int | None = None) -> Stat | None:
        found = [(at_step(r, step) if step is not None else r["test"]) for r in rows]
        values = tuple(float(m[metric]) for m in found if m is not None and metric in m)
        return Stat(values) if values else None

    lines = ["# Shapes: which part of the engine keeps the RTagger from grouping?", "",
             f"Generated {timestamp()} by `experiments/shapes_cells.py`.", "",
             "Shapes (20×20 binary images of three shapes, each pixel flipped with probability 0.2, 4 groups, 3 "
             "iterations), the reference's fully connected engine in every arm. AMI: each pixel's most likely group "
             "against the true shape, over the shapes' pixels; `shuffled`: the last iteration's grouping scored against "
             "another image's truth (the chance level a position prior earns). `largest group`: the share of the "
             "shapes' pixels won by the largest group (three shapes split evenly: about 0.33; one group holding "
             "everything: 1). Values are mean ± sample standard deviation over seeds.", "",
             f"## At step {compare_step} (validation, {results[0]['train_config']['valid_sequences'] if results else '—'} images), every arm", "",
             "| arm | what | seeds | " + " | ".join(f"AMI it. {t}" for t in iterations) + " | shuffled | largest group it. 1 | "
             f"largest group it. {iterations[-1] if iterations else ''} |",
             "|---|---|---:|" + "---:|" * (len(iterations) + 3)]
    for arm, rows in by_arm.items():
        cells = [format_stat(stat(rows, f"ami_{t}", compare_step), 3) for t in iterations]
        lines.append(f"| `{arm}` | {WHAT.get(arm, arm)} | {len(rows)} | " + " | ".join(cells) +
                     f" | {format_stat(stat(rows, 'ami_shuffled', compare_step), 3)} | "
                     f"{format_stat(stat(rows, 'largest_group_1', compare_step), 3)} | "
                     f"{format_stat(stat(rows, f'largest_group_{iterations[-1]}', compare_step), 3) if iterations else '—'} |")
    lines += ["", "A difference counts when it exceeds the sum of the standard deviations.", ""]
    last = f"ami_{iterations[-1]}" if iterations else "ami"
    for arm, rows in by_arm.items():
        c = claim_worse(f"`{arm}` groups above its shuffled chance level at step {compare_step}",
                        (arm, stat(rows, last, compare_step)), ("shuffled", stat(rows, "ami_shuffled", compare_step)), 3)
        lines.append(f"- **{c.verdict}**: {c.text}. {c.detail}.")
    if all(arm in by_arm for arm in CORNERS):
        lines += ["", f"## The 2 × 2 at step {compare_step}: cell × feedback", "",
                  f"Each corner's validation AMI at the last iteration against the corner that differs from it in one "
                  f"factor, the other held (a claim holds when the first is higher by more than the sum of the stds)."]
        for better, other, factor in COMPARISONS:
            c = claim_worse(f"`{better}` groups better than `{other}` ({factor})",
                            (better, stat(by_arm[better], last, compare_step)), (other, stat(by_arm[other], last, compare_step)), 3)
            lines.append(f"- **{c.verdict}**: {c.text}. {c.detail}.")
    lines += ["", f"## Test ({results[0]['train_config']['test_sequences'] if results else '—'} images) at each run's end", "",
              "| arm | seeds | steps | " + " | ".join(f"AMI it. {t}" for t in iterations) + " | shuffled | largest group it. 1 | training time (mean) |",
              "|---|---:|---|" + "---:|" * (len(iterations) + 3)]
    by_length: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in results:
        by_length.setdefault((r["arm"], int(r["steps"])), []).append(r)
    for (arm, steps), rows in by_length.items():
        mean_time = sum(float(r["train_time_s"]) for r in rows) / len(rows)
        lines.append(f"| `{arm}` | {len(rows)} | {steps} | " + " | ".join(format_stat(stat(rows, f"ami_{t}"), 3) for t in iterations) +
                     f" | {format_stat(stat(rows, 'ami_shuffled'), 3)} | {format_stat(stat(rows, 'largest_group_1'), 3)} | {duration(mean_time)} |")
    lines += ["", f"Issue 27's bar, per seed: test AMI at the last trained iteration ({last}) at least {TARGET_AMI} and at least "
              f"{BAR_RATIO:g} times the seed's shuffled chance level.", "",
              "| arm | seed | steps | training time | AMI | shuffled | ratio | bar |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for arm, rows in by_arm.items():
        for r in sorted(rows, key=lambda r: r["seed"]):
            ami, chance = r["test"].get(last), r["test"].get("ami_shuffled")
            if ami is None or chance is None:
                continue
            ratio = ami / chance if chance > 0 else float("inf")
            met = "met" if ami >= TARGET_AMI and ratio >= BAR_RATIO else "not met"
            lines.append(f"| `{arm}` | {r['seed']} | {r['steps']} | {duration(float(r['train_time_s']))} | {ami:.3f} | "
                         f"{chance:.3f} | {ratio:.2f} | {met} |")
    lines += ["", "## Validation over training: AMI at the last iteration / largest group's share at iteration 1 (per seed)", ""]
    steps = sorted({int(h["step"]) for r in results for h in r.get("valid_history", [])})
    columns = [(arm, r) for arm, rows in by_arm.items() for r in sorted(rows, key=lambda r: r["seed"])]
    lines += ["| step | " + " | ".join(f"`{arm}` s{r['seed']}" for arm, r in columns) + " |", "|---:|" + "---:|" * len(columns)]
    for s in steps:
        cells = []
        for _, r in columns:
            h = at_step(r, s)
            cells.append(f"{h[last]:.3f} / {h['largest_group_1']:.2f}" if h and last in h and "largest_group_1" in h else "—")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += provenance_lines(results, command, budget_s)
    return "\n".join(lines) + "\n"


def collect(runs: Sequence[tuple[str, TrainConfig]]) -> list[dict]:
    found = []
    for arm, cfg in runs:
        path = Path(cfg.out) / "results.json"
        if path.exists():
            found.append({"arm": arm, **json.loads(path.read_text())})
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "doc"))
    parser.add_argument("--out", required=True, help="folder of the runs")
    parser.add_argument("--doc", help="the Markdown document to write (its records go beside it as .json)")
    parser.add_argument("--size", default="cpu")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--steps", type=int, default=2000, help="steps of every arm (the comparison's step)")
    parser.add_argument("--compare-step", type=int, help="the validation step the doc compares the arms at (default: --steps)")
    parser.add_argument("--long", nargs="*", default=[], metavar="ARM=STEPS", help="seed 0 of ARM trains on to STEPS, e.g. lstm_relu+feedback=12000")
    parser.add_argument("--valid-every", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="training settings for every run")
    args = parser.parse_args(argv)
    try:
        common: dict[str, Any] = {**RECIPE, **training_settings(args.set)}
    except ValueError as exc:
        parser.error(str(exc))
    arm_steps = {arm: int(n) for arm, n in (pair.split("=", 1) for pair in args.long)}
    runs = plan(args.out, args.size, args.seeds, args.steps, args.valid_every, args.arms, common, arm_steps)
    if args.action == "run":
        say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
        train_runs([cfg for _, cfg in runs], "shapes cells", f"{len(args.arms)} arms x {args.seeds} seeds", None, say, jobs=args.jobs)
    results = collect(runs)
    text = document(results, args.compare_step or args.steps, "python experiments/shapes_cells.py " + shlex.join(["run", *(argv if argv is not None else sys.argv[1:])[1:]]),
                    common.get("time_budget_s"))
    publish(text, args.doc, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
