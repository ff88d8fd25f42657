"""The settings of a training run, in groups (the model, the data, optimisation, the schedule, Mean Teacher,
the run folder), and ``key=value`` parsing checked against the type of the field it sets, so ``epochs=abc`` is
refused when it is typed, not as a ``TypeError`` deep inside training. Every field says what it means
(:func:`setting`); ``rladder-stream train --help`` is made from those meanings (:func:`settings_help`).

:class:`~rladder_stream.training.train.TrainConfig` joins the groups into one flat dataclass: ``--set key=value``,
``results.json`` and checkpoints name every setting by its field, whatever its group.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

from ..errors import ModelFileError, UsageError
from ..model.config import LadderConfig

LR_SCHEDULES = ("cosine", "constant")
#: the data settings of the plates: only a task with textures takes them (``Task.takes_textures``)
TEXTURE_SETTINGS = ("texture_contrast", "texture_scale", "textures", "texture_augment")


def check_at_least(settings: Any, bounds: dict[str, float], optional: tuple[str, ...] = ()) -> None:
    """``ValueError`` naming the first field of ``settings`` below its lower bound (``optional`` ones may be None);
    the values were checked for type already, so each is a number."""
    for name, low in bounds.items():
        value = getattr(settings, name)
        if value is None and name in optional:
            continue
        if not (value >= low and value == value and value != float("inf")):  # NaN and inf fail too
            raise ValueError(f"{name} must be {'>= ' + format(low, 'g') if low != TINY else '> 0'}, got {value}")


TINY = 1e-300  # "greater than zero" for check_at_least
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def setting(default: Any, meaning: str, *, shown: str | None = None) -> Any:
    """A field of a settings dataclass with what it means (``metadata["help"]``), which ``rladder-stream train --help``
    shows (:func:`settings_help`); ``shown`` stands for the default there where the command line sets it otherwise."""
    metadata = {"help": meaning, **({"shown": shown} if shown is not None else {})}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ModelSettings:
    """Which model: the registered configuration ``model`` at ``size``, with ``model_overrides`` (fields of
    :class:`~rladder_stream.model.config.LadderConfig`)."""

    model: str = setting("omm-rladder", "the registered model configuration to train (see 'rladder-stream configs')",
                         shown="the CONFIG argument")
    size: str = setting("cpu", "model size: tiny (seconds, for tests), cpu (a laptop), gpu (the paper's sizes)")
    model_overrides: dict[str, Any] = setting({}, "model settings changed from the configuration's, as a JSON object; "
                                                  "--set with a model setting (listed below) fills it")
    init_from: str | None = setting(
        None, "a checkpoint to start from (another run's last.pt): every tensor of the same name and shape is copied, "
              "and a new decoder-to-encoder feedback starts at zero, so the model first computes what the source "
              "computed (docs/design.md, \"Warm starts\"); a resumed run ignores it")

    def check_model(self) -> None:
        from ..model.config import SIZES

        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {self.size!r}")
        if self.init_from is not None:
            ModelFileError.check_path(self.init_from, "checkpoint", name=f"init_from={self.init_from}")


@dataclass
class DataSettings:
    """What the model trains and is evaluated on (what a task reads; see :mod:`rladder_stream.training.tasks`)."""

    dataset: str | None = setting(None, "for tasks with several data sets (music: jsb, nottingham, muse, piano), which "
                                        "one; null: the task's default")
    data_dir: str | None = setting(None, "folder with the data sets; null: $RLADDER_STREAM_DATA, else the small samples "
                                         "that come with the package")
    train_sequences: int = setting(50_000, "training sequences per epoch (fresh trajectories every epoch; "
                                           "docs/design.md#occluded-moving-mnist)")
    valid_sequences: int = setting(2_000, "validation sequences evaluated after every epoch")
    test_sequences: int | None = setting(None, "test sequences evaluated at the end; null: the whole test split")
    eval_batch_size: int = setting(500, "sequences per batch when evaluating (memory only: the results are the same)")
    calibration_sequences: int = setting(
        2_000, "Taggers with norm=batch_tick: before every evaluation each iteration's statistics are averaged over "
               "this many clean training images, as evaluation and streaming see them (training's running averages "
               "come from noised ones; docs/design.md, \"Batch normalisation at evaluation\"); at most "
               "train_sequences; 0 keeps training's running averages")
    labelled: int | None = setting(None, "semi-supervised: how many training digits have their label (class-balanced, "
                                         "fixed); null: all of them")
    use_unlabelled: bool = setting(True, "semi-supervised: also train on the unlabelled digits (prediction, consistency)")
    labelled_fraction: float = setting(0.25, "semi-supervised with unlabelled data: the labelled share of every batch")
    iterations: int | None = setting(None, "Shapes: the iterations each image is shown for; null: the environment's (3)")
    eval_iterations: int | None = setting(None, "Shapes: the iterations of each validation and test image; null: as in "
                                                "training")
    texture_contrast: float = setting(1.0, "textured digits: each plate's deviations from its mean grey scaled by this "
                                           "(0: flat plates)")
    texture_scale: float = setting(
        1.0, "textured digits: every crop's magnification multiplied by this (training's random 0.7-1.4 and valid/test's "
             "1), so the texture is coarser at pixel scale; docs/design.md#brodatz-textured-mnist measures the grouping "
             "cues per scale")
    textures: str = setting(
        "brodatz", "textured digits: the plates, brodatz (photographed textures, each at mean grey 0.5), brodatz-scans "
                   "(the 14 whole-plate scans at their own grey levels), sinusoid (20 plane waves cropped the "
                   "same way: the positive control, whose groups a working Tagger must find), freq20 (the Tagger "
                   "authors' own 20 plane waves, periods 1.7-9.5 px) or flat (20 uniform greys: the grey-level "
                   "control); docs/design.md#brodatz-textured-mnist")
    texture_augment: bool = setting(True, "textured digits: rotate and scale training crops at random; false: cut them "
                                          "whole-pixel and unrotated, as valid/test crops (the Tagger authors' recipe)")
    digit_augment: bool = setting(False, "occluded moving digits: render each training digit in one of 8 ways (Pillow's "
                                         "bilinear, Hamming, bicubic or box filter of the whole 28x28 box or its central "
                                         "24x24) at random, so the model does not learn this generator's one rendering; "
                                         "valid/test keep the data set's own (docs/design.md#occluded-moving-mnist)")

    def check_data(self) -> None:
        check_at_least(self, {"train_sequences": 1, "valid_sequences": 0, "test_sequences": 1, "eval_batch_size": 1,
                              "labelled": 1}, optional=("test_sequences", "labelled"))
        if self.labelled is None and not self.use_unlabelled:
            raise ValueError("use_unlabelled=false needs labelled=N (which digits are the labelled ones)")
        if not 0.0 < self.labelled_fraction <= 1.0:
            raise ValueError(f"labelled_fraction must be in (0, 1], got {self.labelled_fraction}")
        if not 0.0 <= self.texture_contrast <= 1.0:
            raise ValueError(f"texture_contrast must be in [0, 1], got {self.texture_contrast}")
        if not 0.0 < self.texture_scale < float("inf"):  # whether crops fit the plates is the data's to say
            raise ValueError(f"texture_scale must be a positive number, got {self.texture_scale}")
        from rladder_stream.envs.textured_mnist import TEXTURE_KINDS

        if self.textures not in TEXTURE_KINDS:
            raise ValueError(f"textures must be one of {TEXTURE_KINDS}, got {self.textures!r}")
        if self.calibration_sequences < 0:
            raise ValueError(f"calibration_sequences must be >= 0, got {self.calibration_sequences}")
        for name in ("iterations", "eval_iterations"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class OptimisationSettings:
    """How each step is taken: batch, AdamW, clipping, seed, and where and how the arithmetic runs."""

    batch_size: int = setting(64, "sequences per training step (all processes together under torchrun)")
    lr: float = setting(2e-3, "the peak learning rate of AdamW")
    weight_decay: float = setting(0.0, "AdamW's weight decay")
    grad_clip: float = setting(5.0, "the model's gradient is clipped to this norm (0: no clipping)")
    seed: int = setting(0, "seed of the initial weights and of every batch: a run is a function of its settings")
    device: str = setting("auto", "where training runs: auto (a CUDA GPU when there is one), cpu, cuda or cuda:N")
    bf16: bool = setting(True, "autocast to bfloat16 on CUDA (ignored on CPU)")
    cpu_bf16: bool = setting(False, "autocast to bfloat16 on the CPU too (fast where it has bf16 matrix instructions)")
    compile: bool = setting(False, "torch.compile the whole training forward (every tick, costs included)")
    compile_mode: str = setting("default", "torch.compile mode: default, reduce-overhead (CUDA graphs) or max-autotune")
    channels_last: bool = setting(False, "channels-last weights and activations (faster convolutions on tensor cores)")

    def check_optimisation(self) -> None:
        check_at_least(self, {"batch_size": 1, "lr": TINY, "weight_decay": 0, "grad_clip": 0})
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")


@dataclass
class ScheduleSettings:
    """How long and in what order: epochs, the learning-rate schedule, the class cost's start, when to stop."""

    epochs: int = setting(1, "passes of train_sequences sequences")
    lr_schedule: str = setting("cosine", "cosine (warm-up, then decay to 5 % of lr) or constant (warm-up, then lr)")
    warmup_steps: int = setting(100, "steps over which the learning rate rises linearly to lr")
    class_cost_from_step: int = setting(0, "two phases (the reference Tagger): the low-level cost alone before this step")
    time_budget_s: float | None = setting(None, "stop (and evaluate) when training time exceeds this many seconds; null: "
                                                "no limit")
    step_budget: int | None = setting(None, "stop (and evaluate) after this many steps, as time_budget_s does; the "
                                            "learning-rate schedule still follows epochs; null: no limit")
    stop_after_steps: int | None = setting(None, "interrupt after this many steps, as Ctrl-C would, without the test "
                                                 "(tests of exact resume); null: never")
    true_start_steps: int = setting(0, "a diagnostic, not the paper's (docs/design.md#true-starts): over the first "
                                       "this many steps a share of the images, falling linearly from all to none, "
                                       "start the Tagger's masks at their true segmentation; 0: never")

    def check_schedule(self) -> None:
        check_at_least(self, {"epochs": 1, "warmup_steps": 0, "class_cost_from_step": 0, "time_budget_s": 0,
                              "step_budget": 1, "stop_after_steps": 1, "true_start_steps": 0},
                       optional=("time_budget_s", "step_budget", "stop_after_steps"))
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")


@dataclass
class MeanTeacherSettings:
    """Mean Teacher (docs/design.md#costs-and-mean-teacher; :mod:`rladder_stream.training.mean_teacher`): on or off, the
    consistency cost's weight and ramp-up, the teacher's averaging."""

    mean_teacher: bool = setting(False, "add the Mean Teacher consistency cost at the top: the class beliefs of a "
                                        "running average of the model (the teacher) are targets on every sequence, "
                                        "labelled or not (docs/design.md#costs-and-mean-teacher)")
    consistency_weight: float = setting(10.0, "the consistency cost's maximum weight, reached after the ramp-up")
    consistency_rampup: float = setting(0.3, "the ramp-up's length as a fraction of the planned steps")
    ema_decay_rampup: float = setting(0.99, "the teacher's averaging decay during the ramp-up")
    ema_decay: float = setting(0.999, "the teacher's averaging decay after the ramp-up")

    def check_mean_teacher(self) -> None:
        check_at_least(self, {"consistency_weight": 0})
        for name in ("ema_decay_rampup", "ema_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.consistency_rampup <= 1.0:
            raise ValueError(f"consistency_rampup must be in [0, 1], got {self.consistency_rampup}")


@dataclass
class RunSettings:
    """Where the run folder is and what goes into it when."""

    out: str = setting("runs/default", "the run folder (last.pt, log.csv, results.json), as --out sets it; one that holds "
                                       "last.pt is resumed", shown="runs/CONFIG-SIZE-seedSEED")
    checkpoint_every: int = setting(0, "write last.pt every this many steps; 0: at the end of every epoch only")
    checkpoint_minutes: float = setting(
        5.0, "also write last.pt when this many minutes passed since the last one (0: off), so that a killed run loses "
             "at most that much; Ctrl-C and SIGTERM write it at once (docs/design.md, \"Stopping and resuming\")")
    log_every: int = setting(20, "log the training costs every this many steps (also how often the GPU's costs are read "
                                 "back, the only wait for it)")
    resume_with_changes: bool = setting(False, "resume a run folder even though these settings differ from its own (as "
                                               "--resume-with-changes)")

    def check_run(self) -> None:
        check_at_least(self, {"checkpoint_every": 0, "checkpoint_minutes": 0, "log_every": 1})
        if not self.out:
            raise ValueError("out must name a folder")


#: the groups by name, in the order ``--help`` lists them
GROUPS = {"model": ModelSettings, "data": DataSettings, "optimisation": OptimisationSettings, "schedule": ScheduleSettings,
          "mean teacher": MeanTeacherSettings, "run folder": RunSettings}


MEANING_COLUMN = 30  # where a setting's meaning starts in --help


def shown_default(f: dataclasses.Field) -> str:
    """A setting's default as ``--set`` takes it: JSON (``null``, ``true``, ``0.002``, ``{}``), a string bare."""
    if "shown" in f.metadata:
        return f.metadata["shown"]
    value = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
    return value if isinstance(value, str) else json.dumps(value)


def documented_attributes(cls: type) -> dict[str, str]:
    """Name -> meaning from the ``Attributes:`` section of a class's docstring (Google style); an entry may name
    several attributes (``a, b, c: ...``)."""
    doc = inspect.getdoc(cls) or ""
    meanings: dict[str, str] = {}
    names: list[str] = []
    for line in doc.partition("Attributes:")[2].splitlines():
        entry = re.match(r"^ {4}(\w+(?:\s*[,/]\s*\w+)*):\s+(.*)$", line)
        if entry:
            names = re.split(r"\s*[,/]\s*", entry.group(1))
            meanings.update({name: entry.group(2) for name in names})
        elif line.startswith(" " * 8) and names:
            meanings.update({name: f"{meanings[name]} {line.strip()}" for name in names})
        elif line.strip() and not line.startswith(" "):
            break  # the next section
    return meanings


def settings_help() -> str:
    """Every training setting with its meaning and default, by group, and every model setting with its meaning (the
    epilog of ``rladder-stream train --help``, made from the fields themselves so the two cannot drift apart)."""
    line = lambda name, meaning: f"  {name.ljust(MEANING_COLUMN - 4)}  {meaning}"  # noqa: E731
    parts = ["Settings, changed with --set NAME=VALUE (VALUE is JSON: a number, true, false, null, a list or an object; "
             "anything else is a string)."]
    for group, cls in GROUPS.items():
        rows = [line(f.name, f"{f.metadata['help']} (default: {shown_default(f)})") for f in dataclasses.fields(cls)]
        parts.append(f"{group} settings:\n" + "\n".join(rows))
    meanings = documented_attributes(LadderConfig)
    rows = [line(f.name, meanings[f.name]) for f in dataclasses.fields(LadderConfig)]
    parts.append("The model configuration settings below change the configuration itself; their defaults are the configuration's "
                 "('rladder-stream info FILE' shows a trained model's). levels is a list such as "
                 '[{"channels": 8}, {"channels": 16, "pool": 2, "kind": "gru"}].')
    parts.append("model configuration settings:\n" + "\n".join(rows))
    return "\n\n".join(parts)


# ============================================================================ key=value


def _type_name(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    if tp in names:
        return names[tp]
    origin = get_origin(tp)
    if origin is dict:
        return 'a JSON object, e.g. {"key": 1}'
    if origin in (tuple, list):
        return "a JSON list, e.g. [1, 2]"
    return getattr(tp, "__name__", str(tp))


def get_origin(tp: Any) -> Any:
    return typing.get_origin(tp)


def matches(value: Any, tp: Any) -> bool:
    """Whether a JSON-decoded ``value`` fits the annotation ``tp`` (unknown annotations: left to the class)."""
    if tp is Any:
        return True
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return any(matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin is dict:
        return isinstance(value, dict)
    if origin in (tuple, list):
        return isinstance(value, (list, tuple))
    return True


def check_setting(cls: type, key: str, value: Any) -> None:
    """Raise :class:`UsageError` when ``value`` does not fit the type of field ``key`` of dataclass ``cls``."""
    tp = typing.get_type_hints(cls).get(key, Any)
    if not matches(value, tp):
        raise UsageError(f"setting {key}={value!r}: expected {_type_name(tp)}")


def parse_settings(pairs: list[str], settings: type) -> tuple[dict[str, Any], dict[str, Any]]:
    """``key=value`` strings -> (fields of the dataclass ``settings``, model fields). Values are JSON when they
    parse, else strings."""
    train_fields = {f.name for f in dataclasses.fields(settings)}
    model_fields = {f.name for f in dataclasses.fields(LadderConfig)}
    train, model = {}, {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"expected key=value, got {pair!r}")
        key, text = pair.split("=", 1)
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        if key in train_fields:
            check_setting(settings, key, value)
            train[key] = value
        elif key in model_fields:
            check_setting(LadderConfig, key, value)
            model[key] = value
        else:
            raise ValueError(f"unknown setting {key!r}; training settings: {sorted(train_fields)}; model settings: {sorted(model_fields)}")
    return train, model
