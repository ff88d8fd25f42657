"""Reproduce the paper's Table 4 (docs/design.md#table-4) and the RTagger's Moving MNIST AMI
(docs/design.md#moving-mnist-grouping).

    rladder-stream reproduce table4 --seeds 2 --size cpu --budget-s 300 --out runs/table4 \\
        --set train_sequences=6400 batch_size=32

Table 4 trains the RTagger, the Tagger and the ConvNet on Brodatz-textured MNIST in two blocks, fully
labelled (50k) and semi-supervised (1k labelled + 49k unlabelled), and reports test AMI and classification
error: the RTagger after each of its iterations, the Tagger and the ConvNet after the last. The Moving MNIST
runs (``--moving-seeds``) train the RTagger and the Tagger on two-digit Moving MNIST and report their AMI
beside the paper's 0.75. Runs are ordinary :func:`rladder_stream.training.train.train` runs in ``OUT/<block>/<config>/seed<k>``, reused
when finished and resumed when interrupted (see :mod:`rladder_stream.reproduce`); the documents are
:func:`table4_markdown` and :func:`moving_mnist_markdown`, pure functions of the runs' results dicts.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..model.registry import get_config
from ..training.train import TrainConfig, parse_overrides
from .common import (FLAGGED, NO_VALUE, Claim, Stat, add_records_option, checked_plan, claim_worse, doc_header, duration,
                     format_stat, group_by_cell, provenance_lines, read_records, records_requested, rederivation_argv,
                     refuse_flagged, reproduce_command, table_parser, timestamp, train_runs, write_document, write_records)

SEMI_SUPERVISED_LABELLED = 1000  # docs/design.md#brodatz-textured-mnist: 1,000 labelled + 49,000 unlabelled
N_CLASSES = 10
# A run "trained" (the paper: the Tagger trained in 2 of 5 seeds) when its test class error is at least 10
# points below chance (90 %) and, for a grouping model, its last-iteration test AMI is above 0.1 (chance: 0).
TRAINED_MAX_CLASS_ERROR = 80.0
TRAINED_MIN_AMI = 0.1
PAPER_MOVING_MNIST_AMI = 0.75
TABLE4_FLAGGED = {**FLAGGED, "labelled": "the blocks"}
DIGITS = {"ami": 3, "class_error": 2, "prediction_mse": 5}  # decimals in the tables
CLAIM_DIGITS = {"ami": 5, "class_error": 2}  # and in the claims' differences


@dataclass(frozen=True)
class Block:
    """One block of Table 4: how many training digits keep their label (None: all 50,000)."""

    key: str
    label: str
    labelled: int | None


@dataclass(frozen=True)
class Model:
    """One model of Table 4 and the test metrics of its columns; ``role`` is its part in the claims (``rtagger``,
    ``tagger``, ``convnet``, ``rtagger-noclass``; the video models' is their config)."""

    role: str
    config: str
    label: str
    iterations: tuple[int, ...]  # iterations reported, one row each (a single one: the model's last)
    grouping: bool  # reports AMI
    classifies: bool = True  # has a class task (the Moving MNIST models and the RTagger without it do not)
    blocks: tuple[str, ...] | None = None  # the blocks it is trained in (None: all)

    def in_block(self, block: str) -> bool:
        return self.blocks is None or block in self.blocks


BLOCKS = (Block("labelled-50k", "50k labelled", None),
          Block("labelled-1k", "1k labelled + 49k unlabelled", SEMI_SUPERVISED_LABELLED))

def _engine_models(rtagger: str, tagger: str, noclass: str, engine: str) -> tuple[Model, ...]:
    return (Model("rtagger", rtagger, f"RTagger{engine}", (1, 2, 3), True), Model("tagger", tagger, f"Tagger{engine}", (3,), True),
            Model("convnet", "tmnist-convnet", "ConvNet", (3,), False),
            # "the classification task speeds up training": the RTagger without it, fully labelled block only
            # (its runs would be identical in the semi-supervised block: it reads no label)
            Model("rtagger-noclass", noclass, f"RTagger{engine} without class task", (3,), True, classifies=False,
                  blocks=("labelled-50k",)))


#: engine -> Table 4's models (docs/design.md#table-4): ``conv``, the convolutional Ladder engines (the paper's
#: description of the RTagger); ``dense``, the fully connected engines, the reference Tagger's and the RTagger's
#: that groups Shapes (docs/design.md#the-rtagger)
ENGINES: dict[str, tuple[Model, ...]] = {
    "conv": _engine_models("tmnist-rtagger", "tmnist-tagger", "tmnist-rtagger-noclass", ""),
    "dense": _engine_models("tmnist-rtagger-sparse", "tmnist-tagger-dense", "tmnist-rtagger-sparse-noclass",
                           ", fully connected engine"),
}
MODELS = ENGINES["conv"]
# Moving MNIST: AMI over all predicted frames ("ami"; the last iteration of a video model is its last frame)
MOVING_MODELS = (Model("mmnist-rtagger", "mmnist-rtagger", "RTagger", (), True, classifies=False),
                 Model("mmnist-tagger", "mmnist-tagger", "Tagger", (), True, classifies=False))


def engine_of(results: Sequence[Mapping[str, Any]]) -> str:
    """The engine (:data:`ENGINES`) whose configs the results' models are; ``conv`` for none. Results of both are
    a ``ValueError``: one table compares one engine's models."""
    engines = {name for r in results for name, models in ENGINES.items()
               if r.get("model") in {m.config for m in models} - {"tmnist-convnet"}}
    if len(engines) > 1:
        raise ValueError(f"the results mix the {' and the '.join(sorted(engines))} engines' models; one table holds one engine's")
    return engines.pop() if engines else "conv"


def block_of(result: Mapping[str, Any]) -> str:
    """The block a result belongs to, from its training settings."""
    labelled = (result.get("train_config") or {}).get("labelled")
    return next((b.key for b in BLOCKS if b.labelled == labelled), f"labelled-{labelled}")


def _metric_names(model: Model) -> list[tuple[str, str, str]]:
    """``(row suffix, AMI metric, class-error metric)`` per reported iteration of a model."""
    suffix = lambda t: f"after iteration {t}" if len(model.iterations) > 1 else ""  # noqa: E731
    return [(suffix(t), f"ami_{t}", f"class_error_{t}") for t in model.iterations]


def _tick_amis(test: Mapping[str, Any]) -> dict[int, float]:
    """The per-tick AMIs of a test dict (``ami_1``, ``ami_2``, ...), in tick order."""
    ticks = {int(k[4:]): float(v) for k, v in test.items() if k.startswith("ami_") and k[4:].isdigit()}
    return dict(sorted(ticks.items()))


def _last_ami(result: Mapping[str, Any], model: Model) -> float | None:
    value = result.get("test", {}).get(f"ami_{model.iterations[-1]}" if model.iterations else "ami")
    return None if value is None else float(value)


def trained(result: Mapping[str, Any], model: Model) -> bool:
    """Whether a run trained (see :data:`TRAINED_MAX_CLASS_ERROR`, :data:`TRAINED_MIN_AMI`); NaN never does.
    A model without a class task is judged by its AMI alone."""
    error = result.get("test", {}).get("class_error")
    if model.classifies and (error is None or not math.isfinite(float(error)) or float(error) >= TRAINED_MAX_CLASS_ERROR):
        return False
    if model.grouping:
        ami = _last_ami(result, model)
        return ami is not None and math.isfinite(ami) and ami > TRAINED_MIN_AMI
    return True


def _stat(results: Sequence[Mapping[str, Any]], metric: str) -> Stat | None:
    values = tuple(float(r["test"][metric]) for r in results if metric in r.get("test", {}) and math.isfinite(float(r["test"][metric])))
    return Stat(values) if values else None


def group_table4(results: Sequence[Mapping[str, Any]], models: Sequence[Model] = MODELS) -> dict[tuple[str, str], list[Mapping[str, Any]]]:
    """Results per (block, model config), sorted by seed; two results for one seed raise ``ValueError``."""
    cells = [(b.key, m.config) for b in BLOCKS for m in models if m.in_block(b.key)]
    return group_by_cell(results, lambda r: (block_of(r), r.get("model")) if (block_of(r), r.get("model")) in cells else None, cells)


def table4_claims(grouped: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]], block: str,
                  table_models: Sequence[Model] = MODELS) -> list[Claim]:
    """The paper's Table 4 claims (docs/design.md#table-4) in one block. AMI comparisons are "higher is better": the claim
    holds when the better model's mean exceeds the other's by more than the sum of the stds. The claims are
    about models that trained: where no seed of a model trained (see :func:`trained`), the claim cannot be told."""
    models = {m.role: m for m in table_models}
    runs = {role: list(grouped.get((block, m.config), [])) for role, m in models.items()}
    untrained = {role for role, rs in runs.items() if not any(trained(r, models[role]) for r in rs)}
    rt, tg, cn, nc = runs["rtagger"], runs["tagger"], runs["convnet"], runs["rtagger-noclass"]
    # (roles that must have trained, claim, the worse side, the better side, metric, roles whose chance level an
    # AMI claim shows beside it when no seed trained)
    checks = [
        (("rtagger",), "The RTagger improves over iterations: AMI after iteration 3 above iteration 1",
         ("iteration 3", _stat(rt, "ami_3")), ("iteration 1", _stat(rt, "ami_1")), "ami", ("rtagger",)),
        (("rtagger",), "The RTagger improves over iterations: class error after iteration 1 above iteration 3",
         ("iteration 1", _stat(rt, "class_error_1")), ("iteration 3", _stat(rt, "class_error_3")), "class_error", ()),
        (("rtagger", "tagger"), "The RTagger beats the Tagger: higher AMI",
         ("RTagger", _stat(rt, "ami_3")), ("Tagger", _stat(tg, "ami_3")), "ami", ("rtagger", "tagger")),
        (("rtagger", "tagger"), "The RTagger beats the Tagger: lower class error",
         ("Tagger", _stat(tg, "class_error")), ("RTagger", _stat(rt, "class_error")), "class_error", ()),
        (("rtagger", "convnet"), "The RTagger beats the ConvNet (by far): lower class error",
         ("ConvNet", _stat(cn, "class_error")), ("RTagger", _stat(rt, "class_error")), "class_error", ()),
        (("tagger", "convnet"), "The Tagger beats the ConvNet (by far): lower class error",
         ("ConvNet", _stat(cn, "class_error")), ("Tagger", _stat(tg, "class_error")), "class_error", ()),
    ]
    if models["rtagger-noclass"].in_block(block):  # the same steps of training: a higher AMI is a faster start
        checks.append((("rtagger",), "The classification task speeds up training: higher AMI at the same steps",
                       ("RTagger", _stat(rt, "ami_3")), ("RTagger without class task", _stat(nc, "ami_3")), "ami",
                       ("rtagger", "rtagger-noclass")))
    claims = []
    for roles, text, first, second, metric, chance_roles in checks:
        idle = [models[r].label for r in roles if r in untrained]
        if idle:  # the paper's claims are about models that trained; what all finished seeds show is said beside
            everyone = claim_worse(text, first, second, CLAIM_DIGITS[metric])
            seen = (f"; over all finished seeds, untrained ones included: {everyone.verdict}, {everyone.detail}"
                    if first[1] is not None and second[1] is not None else "")
            chances = [f"{models[r].label} {format_stat(_stat(runs[r], 'ami_shuffled'), CLAIM_DIGITS['ami'])}"
                       for r in chance_roles if _stat(runs[r], "ami_shuffled") is not None]
            seen += f"; their chance levels (shuffled truth): {', '.join(chances)}" if seen and chances else ""
            claims.append(Claim(text, "cannot tell", f"no seed of the {' or the '.join(idle)} trained{seen}"))
        else:
            claims.append(claim_worse(text, first, second, CLAIM_DIGITS[metric]))
    return claims


def table4_markdown(results: Sequence[Mapping[str, Any]], *, command: str | None = None, budget_s: float | None = None,
                    generated: str | None = None) -> str:
    """Table 4 as markdown from the runs' results dicts (one engine's, :func:`engine_of`; a block without runs is
    left out unless no block has any). Pure: no files, no clock."""
    table_models = ENGINES[engine_of(results)]
    grouped = group_table4(results, table_models)
    blocks = [b for b in BLOCKS if any(grouped[(b.key, m.config)] for m in table_models if m.in_block(b.key))] or list(BLOCKS)
    lines = doc_header("Table 4: Brodatz-textured MNIST (AMI and classification error %)", "table4", generated)
    lines += [
        "Test-set AMI (docs/design.md#ami: max normalisation, ignored pixels dropped, mean over test images) and classification",
        "error (%), mean ± **sample** standard deviation over the seeds that finished; with one seed only the value.",
        f"\"trained\": seeds whose test class error is below {TRAINED_MAX_CLASS_ERROR:g} % and, for grouping models, whose",
        f"last-iteration AMI is above {TRAINED_MIN_AMI:g} (chance level is 0). The paper gives no numbers for this table",
        "(docs/design.md#table-4), only claims.",
        "",
    ]
    models = {m.config: m for m in table_models}
    finished = [(r, models[config]) for (_, config), runs in grouped.items() for r in runs]
    steps = sorted({int(r["steps"]) for r, _ in finished if "steps" in r})
    lines += [f"**{sum(trained(r, m) for r, m in finished)} of {len(finished)} runs trained**"
              + (f" (steps of training per run: {', '.join(map(str, steps))})." if steps else "."), ""]
    for block in blocks:
        lines += [f"## {block.label}", "",
                  "| Model | config | seeds trained / finished | AMI | AMI by chance (shuffled truth) | class error % |",
                  "|---|---|---:|---:|---:|---:|"]
        for model in (m for m in table_models if m.in_block(block.key)):
            runs = grouped[(block.key, model.config)]
            ok = sum(trained(r, model) for r in runs)
            for column, ami_key, error_key in _metric_names(model):
                name = f"{model.label} {column}".strip()
                ami = format_stat(_stat(runs, ami_key), DIGITS["ami"]) if model.grouping else NO_VALUE
                last = model.grouping and ami_key == f"ami_{model.iterations[-1]}"
                chance = format_stat(_stat(runs, "ami_shuffled"), DIGITS["ami"]) if last else NO_VALUE
                error = format_stat(_stat(runs, error_key), DIGITS["class_error"]) if model.classifies else NO_VALUE
                lines.append(f"| {name} | `{model.config}` | {ok} / {len(runs)} | {ami} | {chance} | {error} |")
        lines += ["", f"Claims (docs/design.md#table-4), {block.label}: a difference counts when the means differ by",
                  "more than the sum of the two standard deviations.", ""]
        lines += [f"- **{c.verdict}**: {c.text}. {c.detail}." for c in table4_claims(grouped, block.key, table_models)] + [""]

    lines += ["## Per seed", "", "| Block | Model | seed | trained | AMI per iteration | class error % | steps | wall time |",
              "|---|---|---:|---|---|---:|---:|---:|"]
    for block in blocks:
        for model in (m for m in table_models if m.in_block(block.key)):
            for r in grouped[(block.key, model.config)]:
                test = r.get("test", {})
                amis = ", ".join(f"{v:.3f}" for v in _tick_amis(test).values()) or NO_VALUE
                error = f"{test['class_error']:.2f}" if "class_error" in test and model.classifies else NO_VALUE
                wall = r.get("wall_time_s")
                lines.append(f"| {block.label} | {model.label} | {r.get('seed')} | {'yes' if trained(r, model) else 'no'} | {amis} | "
                             f"{error} | {r.get('steps', NO_VALUE)} | {duration(float(wall)) if wall is not None else NO_VALUE} |")
    lines.append("")
    found = [r for runs in grouped.values() for r in runs]
    return "\n".join(lines + provenance_lines(found, command, budget_s) + ["- Each run's settings are in its `results.json` (`train_config`).", ""])


def _moving_outcome(result: Mapping[str, Any]) -> str:
    """``AMI 0.123``; or that training diverged; or from which frame on the model's outputs went non-finite."""
    if "diverged" in result:
        return "training diverged"
    test = result.get("test", {})
    ami = float(test.get("ami", math.nan))
    if math.isfinite(ami):
        return f"AMI {ami:.3f}"
    frames = [t for t, v in _tick_amis(test).items() if not math.isfinite(v)]
    return f"diverged: non-finite outputs from frame {frames[0]} on" if frames else "AMI not finite"


def moving_mnist_markdown(results: Sequence[Mapping[str, Any]], *, command: str | None = None, budget_s: float | None = None,
                          generated: str | None = None) -> str:
    """The RTagger's and the Tagger's Moving MNIST AMI (docs/design.md#moving-mnist-grouping) beside the paper's 0.75
    (RTagger) and its
    count of Tagger seeds that trained (1 of 3). Pure: no files, no clock."""
    cells = [m.config for m in MOVING_MODELS]
    grouped = group_by_cell(results, lambda r: r.get("model") if r.get("model") in cells else None, cells)
    lines = doc_header("RTagger on two-digit Moving MNIST (docs/design.md#moving-mnist-grouping)", "table4", generated)
    lines += [
        "Test-set AMI of the predicted grouping of each next frame against that frame's segmentation, over digit pixels",
        "(background and overlaps ignored; docs/design.md#moving-mnist, #ami), averaged over the 19 predicted frames and",
        "the test sequences;",
        f"mean ± sample standard deviation over seeds. \"trained\": seeds with AMI above {TRAINED_MIN_AMI} (chance: 0).",
        "",
        "| Model | config | seeds trained / finished | AMI (all frames) | AMI (last frame) | AMI by chance (last frame, "
        "shuffled truth) | prediction MSE/pixel | paper |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    paper = {"mmnist-rtagger": f"AMI {PAPER_MOVING_MNIST_AMI}", "mmnist-tagger": "trained in 1 of 3 seeds"}
    for model in MOVING_MODELS:
        runs = grouped[model.config]
        last = max((t for r in runs for t in _tick_amis(r.get("test", {}))), default=None)
        lines.append(f"| {model.label} | `{model.config}` | {sum(trained(r, model) for r in runs)} / {len(runs)} | "
                     f"{format_stat(_stat(runs, 'ami'), DIGITS['ami'])} | {format_stat(_stat(runs, f'ami_{last}'), DIGITS['ami']) if last else NO_VALUE} | "
                     f"{format_stat(_stat(runs, 'ami_shuffled'), DIGITS['ami'])} | {format_stat(_stat(runs, 'prediction_mse'), DIGITS['prediction_mse'])} | {paper[model.config]} |")
    lines += ["", "Per seed:", ""]
    for model in MOVING_MODELS:
        lines += [f"- {model.label}: " + ("; ".join(f"seed {r.get('seed')}: {_moving_outcome(r)} after {r.get('steps', NO_VALUE)} steps"
                                                     for r in grouped[model.config]) or NO_VALUE)]
    lines.append("")
    found = [r for runs in grouped.values() for r in runs]
    return "\n".join(lines + provenance_lines(found, command, budget_s) + ["- Each run's settings are in its `results.json` (`train_config`).", ""])


# ============================================================================ running


def plan_table4(seeds: int, size: str, budget_s: float | None, settings: Sequence[str], out: str | os.PathLike,
                moving_seeds: int = 0, moving_settings: Sequence[str] = (), engine: str = "conv",
                blocks: Sequence[str] | None = None) -> tuple[list[TrainConfig], list[TrainConfig]]:
    """The runs of Table 4 (block by block, model by model, seeds 0..seeds-1) with the ``engine``'s models
    (:data:`ENGINES`), in the ``blocks`` named (default both) and of Moving MNIST;
    ``moving_settings`` apply to the Moving MNIST runs only, after ``settings`` (its sequences are 19 frames
    of 64x64 and K = 3 groups: at the gpu size about 1.5 GB of activations per sequence in float32)."""
    if seeds < 1 or moving_seeds < 0:
        raise ValueError(f"--seeds must be >= 1 and --moving-seeds >= 0, got {seeds} and {moving_seeds}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    keys = [b.key for b in BLOCKS]
    unknown = sorted(set(blocks or ()) - set(keys))
    if unknown or (blocks is not None and not blocks):
        raise ValueError(f"blocks must be some of {', '.join(keys)}, got {', '.join(unknown) or 'none'}")
    for option, pairs in (("--set", settings), ("--moving-set", moving_settings)):
        refuse_flagged(parse_overrides(list(pairs))[0], option, TABLE4_FLAGGED)
    train_fields, model_fields = parse_overrides(list(settings))
    table, moving = [], []
    for block in (b for b in BLOCKS if blocks is None or b.key in blocks):
        for model in (m for m in ENGINES[engine] if m.in_block(block.key)):
            get_config(model.config, size=size, **model_fields)  # fail fast on bad settings
            for seed in range(seeds):
                table.append(TrainConfig(model=model.config, size=size, seed=seed, time_budget_s=budget_s, labelled=block.labelled,
                                         model_overrides=dict(model_fields), out=str(Path(out) / block.key / model.config / f"seed{seed}"),
                                         **train_fields))
    moving_train, moving_model = parse_overrides(list(settings) + list(moving_settings))
    for model in MOVING_MODELS if moving_seeds else ():
        get_config(model.config, size=size, **moving_model)
        for seed in range(moving_seeds):
            moving.append(TrainConfig(model=model.config, size=size, seed=seed, time_budget_s=budget_s, model_overrides=dict(moving_model),
                                      out=str(Path(out) / "moving-mnist" / model.config / f"seed{seed}"), **moving_train))
    return table, moving


def table4_cli_main(argv: Sequence[str]) -> int:
    """``rladder-stream reproduce table4 [--seeds N] [--moving-seeds M] [--size S] [--budget-s SEC] [--set k=v ...]
    [--engine E] [--blocks B ...] | --from-records FILE``."""
    parser = table_parser("table4", __doc__, seeds=5)  # 5 seeds, as the paper
    parser.add_argument("--engine", choices=list(ENGINES), default="conv",
                        help="the RTagger's and the Tagger's engine: conv (convolutional levels, default) or dense (fully "
                             "connected: the reference Tagger's and the RTagger's that groups Shapes)")
    parser.add_argument("--blocks", nargs="+", choices=[b.key for b in BLOCKS], default=None,
                        help="the blocks to train (default both)")
    add_records_option(parser)
    parser.add_argument("--moving-seeds", type=int, default=None, help="Moving MNIST seeds per model (default: --seeds; 0 skips)")
    parser.add_argument("--moving-doc", default="docs/results/moving_mnist.md", help="Moving MNIST document")
    parser.add_argument("--moving-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="settings for the Moving MNIST runs only, after --set (e.g. batch_size=16: a gpu-size video "
                             "model needs about 1.5 GB per sequence)")
    args = parser.parse_args(list(argv))
    moving_seeds = args.seeds if args.moving_seeds is None else args.moving_seeds
    command = reproduce_command(rederivation_argv(argv, args.doc), "table4")
    if records_requested(parser, args):
        results = read_records(parser, args.from_records, args.add_runs)
        try:
            text = table4_markdown(results, command=command, budget_s=args.budget_s, generated=timestamp())
        except ValueError as error:
            parser.error(str(error))
        print(f"wrote {write_document(args.doc, text)}")
        write_records(args.doc, results)
        return 0
    planned: dict[str, list[TrainConfig]] = {}

    def plan() -> list[TrainConfig]:
        planned["table"], planned["moving"] = plan_table4(args.seeds, args.size, args.budget_s, args.set, args.out,
                                                          moving_seeds, args.moving_set, args.engine, args.blocks)
        return planned["table"] + planned["moving"]

    checked_plan(parser, plan)
    table, moving = planned["table"], planned["moving"]
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    started = time.perf_counter()
    shape = f"{len(table) // args.seeds} (block, model) cells x {args.seeds} seeds"
    if args.jobs > 1 and moving:  # one pool for both, so that the Moving MNIST runs share the machine too
        both = train_runs(table + moving, "table4 + moving-mnist", f"{shape} + {len(MOVING_MODELS)} models x {moving_seeds} seeds",
                          args.budget_s, say, args.jobs)
        results, moving_results = both[:len(table)], both[len(table):]
    else:
        results = train_runs(table, "table4", shape, args.budget_s, say, args.jobs)
    print(f"wrote {write_document(args.doc, table4_markdown(results, command=command, budget_s=args.budget_s, generated=timestamp()))}")
    write_records(args.doc, results)
    if moving:
        if args.jobs == 1:
            moving_results = train_runs(moving, "moving-mnist", f"{len(MOVING_MODELS)} models x {moving_seeds} seeds", args.budget_s, say)
        text = moving_mnist_markdown(moving_results, command=command, budget_s=args.budget_s, generated=timestamp())
        print(f"wrote {write_document(args.moving_doc, text)}")
    say(f"table4: done in {duration(time.perf_counter() - started)}")
    return 0
