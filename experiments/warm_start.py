"""Table 1's comparison without the learning-speed confound (issue 26; docs/design.md, "Warm starts").

A hierarchical RNN (the RLadder's encoder alone) trains first; then every arm continues from its weights for the
same number of steps, with a fresh optimiser and its own seed: the HRNN itself, and RLadders whose new decoder and
feedback start so that the model computes exactly what the HRNN computed (``init_from``). What each arm then
gains over the HRNN is what its decoder, feedback and prediction task add, not how fast it learns from scratch.

    RLADDER_STREAM_DATA=../shared/data python experiments/warm_start.py run --out runs/warm --seeds 3 --jobs 2 \\
        --doc docs/results/warm_start-cpu.md
    # Table 1's rows without an HRNN inside (the temporal baseline, the gold standard) train bases of their own:
    ... run --out runs/warm --arms hrnn rladder temporal gold-standard --arm-set lr_schedule=cosine
    python experiments/warm_start.py doc --out runs/warm --doc docs/results/warm_start-cpu.md   # re-derive the doc
    # the same arms from scratch (no base; --steps each): how the decoder starts and where its feedback enters
    ... run --out runs/start --base-steps 0 --seeds 2 --arms hrnn rladder rladder-gates rladder-closed-input ...

Every arm validates every ``--valid-every`` steps (the learning curves) and is tested on the whole test split.
The document is a pure function of the runs' ``results.json`` (committed beside it as ``.json``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from rladder_stream.reproduce.common import (Stat, claim_reaches, claim_worse, duration, format_stat, provenance_lines, publish,
                                             timestamp, train_runs, training_settings)
from rladder_stream.training.train import TrainConfig

#: arm -> (registered configuration, model settings): ablations are configurations plus settings, not copies
ARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "hrnn": ("omm-hrnn", {}),
    "rladder": ("omm-rladder", {}),
    "rladder-no-prediction": ("omm-rladder-no-prediction", {}),
    "rladder-detached-0.3": ("omm-rladder", {"decoder_input_detach": True, "prediction_weight": 0.3}),
    "rladder-0.3": ("omm-rladder", {"prediction_weight": 0.3}),
    "rladder-gates": ("omm-rladder", {"decoder_to_encoder_entry": "gates"}),
    "rladder-closed": ("omm-rladder", {"decoder_init": "closed"}),
    "rladder-closed-input": ("omm-rladder", {"decoder_init": "closed", "decoder_to_encoder_entry": "input"}),
    "rladder-input": ("omm-rladder", {"decoder_to_encoder_entry": "input"}),
    "rladder-no-d2e": ("omm-rladder-no-d2e", {}),
    "rladder-no-classification": ("omm-rladder-no-classification", {}),
    "temporal": ("omm-temporal", {}),
    "gold-standard": ("omm-static", {}),
}
#: arms that are not the HRNN plus something: each trains its own base (its own model, the same base recipe), so every
#: row of Table 1 sees the same schedule (base steps at the base's rate, then the continuation's steps)
OWN_BASE = ("temporal", "gold-standard")
#: arms whose feedback enters the input transform: its shape differs from the HRNN's, so they train from scratch only
SCRATCH_ONLY = ("rladder-closed-input", "rladder-input")
#: arms trained without the class cost: Table 1 gives their prediction error only (their class head is the base's, untrained
#: since, so its error says nothing)
NO_CLASS = ("rladder-no-classification",)
DEFAULT_ARMS = ("hrnn", "rladder", "rladder-no-prediction", "rladder-detached-0.3")
WHAT = {
    "hrnn": "the hierarchical RNN continued",
    "rladder": "RLadder, default prediction weight",
    "rladder-no-prediction": "RLadder without the prediction cost (decoder and feedback trained by the class cost)",
    "rladder-detached-0.3": "RLadder, prediction weight 0.3, the decoder reading the encoder detached "
                            "(the prediction cost trains the decoder only)",
    "rladder-0.3": "RLadder, prediction weight 0.3",
    "rladder-gates": "RLadder, the feedback entering the gates through its own transform without normalisation",
    "rladder-closed": "RLadder, decoder started closed (the start this project first used, there with the `input` entry, which cannot be warm-started: "
                      "its input transform has another shape than the HRNN's)",
    "rladder-closed-input": "RLadder, decoder started closed and the feedback concatenated with the bottom-up input (the "
                            "shipped models' start before 2026-12-06)",
    "rladder-input": "RLadder, decoder started open and the feedback concatenated with the bottom-up input",
    "rladder-no-d2e": "RLadder without decoder-to-encoder connections",
    "rladder-no-classification": "RLadder without the classification cost (its prediction error only)",
    "temporal": "temporal baseline (feed-forward encoder, recurrent top only), continued from its own base",
    "gold-standard": "static classifier on the optimal reconstruction (gold standard), continued from its own base",
}


class Plan:
    """The runs of one experiment: every base is seed 0, the continuations seeds 1..seeds.

    ``base_steps`` 0: no base; every arm trains from scratch for ``steps`` (the same seeds 1..seeds).

    The base ``"hrnn"`` (folder OUT/base-hrnn, or ``base_out``, so several experiments can share it) starts every arm
    built on the HRNN; an arm in ``OWN_BASE`` continues from a base of its own model (OUT/base-ARM) trained with the
    same recipe. ``arm_settings`` apply to the continuations only (e.g. a cosine schedule after a constant-rate base).
    The continuations are planned once their bases have trained (a run's ``init_from`` must exist).
    """

    def __init__(self, out: str, size: str, seeds: int, base_steps: int, steps: int, valid_every: int,
                 arms: Sequence[str], common: Mapping[str, Any], arm_settings: Mapping[str, Any] | None = None,
                 base_out: str | None = None):
        self.out, self.size, self.seeds, self.steps, self.valid_every = out, size, seeds, steps, valid_every
        self.arms, self.common, self.arm_settings = list(arms), dict(common), dict(arm_settings or {})
        self.bases: dict[str, TrainConfig] = {}
        self.from_scratch = base_steps == 0
        scratch_only = [arm for arm in arms if arm in SCRATCH_ONLY]
        if scratch_only and not self.from_scratch:
            raise ValueError(f"arms {scratch_only} cannot start from an HRNN (the feedback's input transform has another "
                             "shape): run them with --base-steps 0 (from scratch)")
        for arm in arms if not self.from_scratch else ():
            key = self.base_of(arm)
            if key not in self.bases:
                self.bases[key] = self.run("omm-hrnn" if key == "hrnn" else ARMS[arm][0], 0, base_steps, f"base-{key}", {})
                if key == "hrnn" and base_out is not None:
                    self.bases[key] = replace(self.bases[key], out=str(base_out))

    @staticmethod
    def base_of(arm: str) -> str:
        return arm if arm in OWN_BASE else "hrnn"

    def run(self, model: str, seed: int, n_steps: int, folder: str, overrides: Mapping[str, Any], **extra: Any) -> TrainConfig:
        if n_steps % self.valid_every:
            raise ValueError(f"steps ({n_steps}) must be a multiple of --valid-every ({self.valid_every})")
        settings = {**self.common, **extra}
        batch = int(settings.pop("batch_size", 32))
        return TrainConfig(model=model, size=self.size, seed=seed, out=str(Path(self.out) / folder), batch_size=batch,
                           train_sequences=self.valid_every * batch, epochs=n_steps // self.valid_every,
                           model_overrides=dict(overrides), **settings)

    def continuations(self, only_seeds: Sequence[int] | None = None) -> list[tuple[str, TrainConfig]]:
        """[(arm, run), ...] for the arms whose base has trained, seed by seed (stopped early, every arm has as many
        seeds as the others); ``only_seeds``: these seeds alone."""
        runs = []
        for seed in range(1, self.seeds + 1):
            if only_seeds and seed not in only_seeds:
                continue
            for arm in self.arms:
                model, overrides = ARMS[arm]
                if self.from_scratch:
                    runs.append((arm, self.run(model, seed, self.steps, f"{arm}-seed{seed}", overrides, **self.arm_settings)))
                    continue
                start = Path(self.bases[self.base_of(arm)].out) / "last.pt"
                if start.exists():
                    runs.append((arm, self.run(model, seed, self.steps, f"{arm}-seed{seed}", overrides,
                                               init_from=str(start), **self.arm_settings)))
        return runs


def curve(result: Mapping[str, Any], offset: int = 0) -> list[tuple[int, float]]:
    return [(offset + int(h["step"]), float(h["class_error"])) for h in result.get("valid_history", []) if "class_error" in h]


def document(bases: Mapping[str, Mapping[str, Any]], results: Sequence[Mapping[str, Any]], command: str | None,
             from_scratch: bool = False) -> str:
    """The Markdown document: the arms' test errors, the claims by the docs' rule, learning curves, per seed.
    ``from_scratch``: the arms trained without a base (``--base-steps 0``)."""
    by_arm: dict[str, list[Mapping[str, Any]]] = {}
    for r in results:
        by_arm.setdefault(r["arm"], []).append(r)

    def stat(arm: str, metric: str) -> Stat | None:
        if metric == "class_error" and arm in NO_CLASS:
            return None
        values = tuple(float(r["test"][metric]) for r in by_arm.get(arm, []) if metric in r.get("test", {}))
        return Stat(values) if values else None

    base = bases.get("hrnn")
    base_steps = int(next(iter(bases.values()))["steps"]) if bases else 0
    title = "Table 1's arms from scratch at equal steps" if from_scratch else "Warm-started Table 1"
    lines = [f"# {title} on Occluded Moving MNIST", "", f"Generated {timestamp()} by `experiments/warm_start.py`.", ""]
    if from_scratch and results:
        lines += [f"No warm start: every arm trained from scratch for {results[0]['steps']} steps with its own seeds, "
                  "the same seeds in every arm (so the same training sequences in the same order).", ""]
    if base:
        lines += [f"A hierarchical RNN (`omm-hrnn`, seed {base['seed']}) trained {base_steps} steps "
                  f"(test error {base['test']['class_error']:.2f} % on {base['train_config']['test_sequences'] or 'all'} "
                  "test sequences); then every arm continued from its weights for the same steps with a fresh optimiser "
                  "and its own seed. The RLadders start as that exact HRNN (matching tensors copied, the new feedback "
                  "at zero: `init_from`, docs/design.md, \"Warm starts\").", ""]
    for key, own in bases.items():
        if key != "hrnn":
            lines += [f"`{key}` has no HRNN inside: it continued from a base of its own model (`{own['model']}`, seed "
                      f"{own['seed']}, {own['steps']} steps with the same recipe as the HRNN's base, test error "
                      f"{own['test']['class_error']:.2f} %), so it sees the same schedule as every other row.", ""]
    if results:
        tc = results[0]["train_config"]
        recipe = (f"batch {tc['batch_size']}, AdamW at lr {tc['lr']:g}, `{tc['lr_schedule']}` schedule "
                  f"({tc['warmup_steps']} warm-up steps)")
        lines += [f"Every run: {recipe}." if from_scratch else
                  f"The continuations: {recipe}; the base: `{base['train_config']['lr_schedule']}`." if base else
                  f"The continuations: {recipe}.", ""]
    lines += ["| arm | what | seeds | test class error % | forecast NLL (nats/frame) | forecast MSE/pixel | training time (mean) |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for arm, rows in by_arm.items():
        mean_time = sum(float(r["train_time_s"]) for r in rows) / len(rows)
        what = "the hierarchical RNN (the RLadder's encoder alone)" if from_scratch and arm == "hrnn" else WHAT.get(arm, arm)
        lines.append(f"| `{arm}` | {what} | {len(rows)} | {format_stat(stat(arm, 'class_error'), 2)} | "
                     f"{format_stat(stat(arm, 'prediction_nll'), 2)} | {format_stat(stat(arm, 'prediction_mse'), 5)} | "
                     f"{duration(mean_time)} |")
    hrnn = "the HRNN" if from_scratch else "the HRNN continued"
    lines += ["", "## Against the hierarchical RNN", "",
              "A difference counts when the means differ by more than the sum of the two standard deviations; "
              "\"does not hold\" means the reverse order counts: the HRNN errs less.", ""]
    for arm in by_arm:
        if arm == "hrnn" or arm in OWN_BASE or arm in NO_CLASS:  # their claims follow below
            continue
        c = claim_worse(f"`{arm}` errs less than {hrnn}", ("HRNN", stat("hrnn", "class_error")),
                        (arm, stat(arm, "class_error")), 2)
        lines.append(f"- **{c.verdict}**: {c.text}. {c.detail}.")
    variants = [arm for arm in by_arm if arm.startswith("rladder-") and arm not in NO_CLASS]
    if "rladder" in by_arm and variants:  # how the decoder starts, where the feedback enters, the prediction weight
        lines += ["", "## Against the default RLadder", "",
                  "Each variant against `rladder` (today's defaults), by the same rule; \"does not hold\" means the "
                  "default errs less.", ""]
        for arm in variants:
            for metric, claim, digits in (("class_error", "errs less", 2), ("prediction_nll", "forecasts better (lower NLL)", 2)):
                c = claim_worse(f"`{arm}` {claim} than `rladder`", ("`rladder`", stat("rladder", metric)),
                                (f"`{arm}`", stat(arm, metric)), digits)
                lines.append(f"- **{c.verdict}**: {c.text}. {c.detail}.")
    paper = []  # Table 1's claims beyond the HRNN comparison (docs/design.md#table-1)
    if "temporal" in by_arm:
        paper.append(claim_worse("the temporal baseline errs more than the HRNN (paper 2.02 against 1.60)",
                                 ("temporal", stat("temporal", "class_error")), ("HRNN", stat("hrnn", "class_error")), 2))
        paper.append(claim_worse("the temporal baseline errs more than the RLadder (paper 2.02 against 0.74)",
                                 ("temporal", stat("temporal", "class_error")), ("RLadder", stat("rladder", "class_error")), 2))
    for arm, text in (("rladder-no-prediction", "without the prediction task the RLadder errs more (paper 1.51 against 0.74)"),
                      ("rladder-no-d2e", "without decoder-to-encoder connections the RLadder errs more (paper 1.24 against 0.74)")):
        if arm in by_arm:
            paper.append(claim_worse(text, (arm, stat(arm, "class_error")), ("RLadder", stat("rladder", "class_error")), 2))
    if "rladder-no-classification" in by_arm:
        paper.append(claim_worse("the classification task lowers the prediction error: the RLadder without it forecasts "
                                 "worse (higher MSE a pixel)",
                                 ("w/o classification", stat("rladder-no-classification", "prediction_mse")),
                                 ("RLadder", stat("rladder", "prediction_mse")), 5))
    if "gold-standard" in by_arm:
        paper.append(claim_reaches("the RLadder reaches the gold standard up to uncertainty (paper 0.74 against 0.71)",
                                   ("RLadder", stat("rladder", "class_error")),
                                   ("gold standard", stat("gold-standard", "class_error")), 2))
    if paper:
        lines += ["", "## Table 1's other claims", ""] + [f"- **{c.verdict}**: {c.text}. {c.detail}." for c in paper]
    counted = "from scratch" if from_scratch else "counted from the HRNN's start"
    lines += ["", f"## Learning curves (validation class error %, mean over seeds; steps {counted})", ""]
    steps = sorted({s for rows in by_arm.values() for r in rows for s, _ in curve(r, base_steps)})
    if base:
        base_curve = dict(curve(base))
        lines += ["Base HRNN: " + ", ".join(f"{s}: {e:.1f}" for s, e in sorted(base_curve.items())), ""]
    lines += ["| arm | " + " | ".join(str(s) for s in steps) + " |", "|---|" + "---:|" * len(steps)]
    for arm, rows in by_arm.items():
        if arm in NO_CLASS:  # its class head is untrained: no class error to follow
            continue
        cells = []
        for s in steps:
            values = [e for r in rows for step, e in curve(r, base_steps) if step == s]
            cells.append(f"{sum(values) / len(values):.2f}" if values else "—")
        lines.append(f"| `{arm}` | " + " | ".join(cells) + " |")
    lines += ["", "## Per seed", "", "| arm | seed | test class error % | forecast NLL | steps | training time |", "|---|---:|---:|---:|---:|---:|"]
    for arm, rows in by_arm.items():
        for r in sorted(rows, key=lambda r: r["seed"]):
            nll = r["test"].get("prediction_nll")
            error = "—" if arm in NO_CLASS else f"{r['test']['class_error']:.2f}"
            lines.append(f"| `{arm}` | {r['seed']} | {error} | {'—' if nll is None else f'{nll:.2f}'} | "
                         f"{r['steps']} | {duration(float(r['train_time_s']))} |")
    found = list(bases.values()) + list(results)
    lines += provenance_lines(found, command, None)
    return "\n".join(lines) + "\n"


def collect(base_cfgs: Mapping[str, TrainConfig], runs: Sequence[tuple[str, TrainConfig]]) -> tuple[dict[str, dict], list[dict]]:
    def read(cfg: TrainConfig) -> dict | None:
        path = Path(cfg.out) / "results.json"
        return json.loads(path.read_text()) if path.exists() else None

    results = []
    for arm, cfg in runs:
        r = read(cfg)
        if r is not None:
            results.append({"arm": arm, **r})
    bases = {key: read(cfg) for key, cfg in base_cfgs.items()}
    return {key: r for key, r in bases.items() if r is not None}, results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("run", "doc"))
    parser.add_argument("--out", required=True, help="folder of the runs")
    parser.add_argument("--doc", help="the Markdown document to write (its records go beside it as .json)")
    parser.add_argument("--size", default="cpu")
    parser.add_argument("--seeds", type=int, default=3, help="continuations per arm (seeds 1..N; the base is seed 0)")
    parser.add_argument("--arms", nargs="+", default=list(DEFAULT_ARMS), choices=sorted(ARMS))
    parser.add_argument("--base-steps", type=int, default=3000,
                        help="steps of the base HRNN; 0: no base, every arm trains from scratch for --steps")
    parser.add_argument("--steps", type=int, default=2000, help="steps of every continuation")
    parser.add_argument("--valid-every", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="training settings for every run")
    parser.add_argument("--arm-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="training settings for the continuations only (e.g. lr_schedule=cosine)")
    parser.add_argument("--only-seeds", nargs="+", type=int, metavar="SEED",
                        help="run: train only these continuation seeds (another process trains the others); the doc "
                             "reads every seed of --seeds")
    parser.add_argument("--base", help="an existing base run's folder to continue from (default OUT/base-hrnn)")
    args = parser.parse_args(argv)
    common: dict[str, Any] = {"batch_size": 32, "lr": 0.002, "lr_schedule": "constant", "valid_sequences": 1000,
                              "test_sequences": None, "log_every": 100}
    try:
        common.update(training_settings(args.set))
        arm_settings = training_settings(args.arm_set, "--arm-set")
    except ValueError as exc:
        parser.error(str(exc))
    try:
        plan = Plan(args.out, args.size, args.seeds, args.base_steps, args.steps, args.valid_every, args.arms, common,
                    arm_settings, args.base)
    except ValueError as exc:
        parser.error(str(exc))
    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    if args.action == "run":
        train_runs(list(plan.bases.values()), "warm start: bases", ", ".join(plan.bases), None, say)
        train_runs([cfg for _, cfg in plan.continuations(args.only_seeds)], "warm start: arms", f"{len(args.arms)} arms x {args.seeds} seeds",
                   None, say, jobs=args.jobs)
    base_results, results = collect(plan.bases, plan.continuations())  # the doc reads every seed
    text = document(base_results, results, "python experiments/warm_start.py " + shlex.join(["run", *(argv if argv is not None else sys.argv[1:])[1:]]),
                    from_scratch=plan.from_scratch)
    publish(text, args.doc, [{"arm": "base" if key == "hrnn" else f"base-{key}", **r} for key, r in base_results.items()]
            + results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
