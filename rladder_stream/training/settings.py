"""The settings of a training run, in groups (the model, the data, optimisation, the schedule, Mean Teacher,
the run folder), and ``key=value`` parsing checked against the type of the field it sets, so ``epochs=abc`` is
refused when it is typed, not as a ``TypeError`` deep inside training.

:class:`~rladder_stream.training.train.TrainConfig` joins the groups into one flat dataclass: ``--set key=value``,
``results.json`` and checkpoints name every setting by its field, whatever its group.
"""

from __future__ import annotations

import dataclasses
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
TEXTURE_SETTINGS = ("texture_contrast", "texture_scale", "textures")


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


@dataclass
class ModelSettings:
    """Which model: the registered configuration ``model`` at ``size``, with ``model_overrides`` (fields of
    :class:`~rladder_stream.model.config.LadderConfig`)."""

    model: str = "omm-rladder"
    size: str = "cpu"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # a checkpoint to start from (another run's last.pt): every tensor of the same name and shape is copied, and
    # the new decoder-to-encoder feedback starts at zero, so the model first computes what the source computed
    # (docs/design.md, "Warm starts"); a resumed run ignores it
    init_from: str | None = None

    def check_model(self) -> None:
        from ..model.config import SIZES

        if self.size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {self.size!r}")
        if self.init_from is not None:
            ModelFileError.check_path(self.init_from, "checkpoint", name=f"init_from={self.init_from}")


@dataclass
class DataSettings:
    """What the model trains and is evaluated on (what a task reads; see :mod:`rladder_stream.training.tasks`)."""

    dataset: str | None = None  # tasks with several data sets (music): which one; None = the task's default
    data_dir: str | None = None
    train_sequences: int = 50_000  # per epoch (docs/design.md#occluded-moving-mnist: fresh trajectories every epoch)
    valid_sequences: int = 2_000
    test_sequences: int | None = None  # None: the whole test split
    eval_batch_size: int = 500
    # norm="batch_tick" (the Taggers): before every evaluation each iteration's statistics are averaged over this many
    # clean training images, as evaluation and streaming see them (training's running averages come from noised
    # ones; docs/design.md, "Batch normalisation at evaluation"); at most train_sequences; 0 keeps training's
    # running averages
    calibration_sequences: int = 2_000
    labelled: int | None = None  # semi-supervised: number of labelled training digits (class-balanced, fixed)
    use_unlabelled: bool = True  # semi-supervised: also train on the unlabelled digits (prediction, consistency)
    labelled_fraction: float = 0.25  # semi-supervised with unlabelled data: share of labelled sequences per batch
    iterations: int | None = None  # Shapes: the iterations each image is shown for; None: the environment's (3)
    eval_iterations: int | None = None  # Shapes: the iterations of each validation and test image; None: as in training
    texture_contrast: float = 1.0  # Brodatz: each plate's deviations from its mean grey scaled by this (0: flat plates)
    # Brodatz: every crop's magnification multiplied by this (training's random 0.7-1.4 and valid/test's 1), so the
    # texture is coarser at pixel scale; docs/design.md#brodatz-textured-mnist measures the grouping cues per scale
    texture_scale: float = 1.0
    # Brodatz: the plates, "brodatz" or "sinusoid" (20 plane waves cropped the same way: the positive control, whose
    # groups a working Tagger must find; docs/design.md#brodatz-textured-mnist)
    textures: str = "brodatz"

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

    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    bf16: bool = True  # autocast to bfloat16 on CUDA (ignored on CPU)
    cpu_bf16: bool = False  # autocast to bfloat16 on the CPU too (fast where it has bf16 matrix instructions)
    compile: bool = False  # torch.compile the whole training forward (every tick, costs included)
    compile_mode: str = "default"  # torch.compile mode: default | reduce-overhead (CUDA graphs) | max-autotune
    channels_last: bool = False  # channels-last weights and activations (faster convolutions on tensor cores)

    def check_optimisation(self) -> None:
        check_at_least(self, {"batch_size": 1, "lr": TINY, "weight_decay": 0, "grad_clip": 0})
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}")


@dataclass
class ScheduleSettings:
    """How long and in what order: epochs, the learning-rate schedule, the class cost's start, when to stop."""

    epochs: int = 1
    lr_schedule: str = "cosine"  # cosine (warm-up, then decay to 5 % of lr) | constant (warm-up, then lr)
    warmup_steps: int = 100
    class_cost_from_step: int = 0  # two phases (the reference Tagger): the low-level cost alone before this step
    time_budget_s: float | None = None  # stop (and evaluate) when training time exceeds this
    stop_after_steps: int | None = None  # interrupt after this many steps (tests of exact resume)

    def check_schedule(self) -> None:
        check_at_least(self, {"epochs": 1, "warmup_steps": 0, "class_cost_from_step": 0, "time_budget_s": TINY,
                              "stop_after_steps": 1}, optional=("time_budget_s", "stop_after_steps"))
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")


@dataclass
class MeanTeacherSettings:
    """Mean Teacher (docs/design.md#costs-and-mean-teacher; :mod:`rladder_stream.training.mean_teacher`): on or off, the
    consistency cost's weight and
    ramp-up, the teacher's averaging."""

    mean_teacher: bool = False  # Mean Teacher consistency cost at the top (docs/design.md#costs-and-mean-teacher)
    consistency_weight: float = 10.0  # its maximum weight, reached after the ramp-up
    consistency_rampup: float = 0.3  # ramp-up length as a fraction of the planned steps
    ema_decay_rampup: float = 0.99  # teacher EMA decay during the ramp-up
    ema_decay: float = 0.999  # and after it

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

    out: str = "runs/default"
    checkpoint_every: int = 0  # steps; 0 = at the end of every epoch only
    # also write last.pt when this many minutes passed since the last one (0: off), so that a killed run loses at
    # most that much; Ctrl-C and SIGTERM write it at once (docs/design.md, "Stopping and resuming")
    checkpoint_minutes: float = 5.0
    log_every: int = 20  # steps; also how often the device's costs are read back (the only host sync)
    resume_with_changes: bool = False  # resume a run folder even though these settings differ from its own

    def check_run(self) -> None:
        check_at_least(self, {"checkpoint_every": 0, "checkpoint_minutes": 0, "log_every": 1})
        if not self.out:
            raise ValueError("out must name a folder")


#: the groups by name, in the order ``--help`` lists them
GROUPS = {"model": ModelSettings, "data": DataSettings, "optimisation": OptimisationSettings, "schedule": ScheduleSettings,
          "mean teacher": MeanTeacherSettings, "run folder": RunSettings}


def settings_by_group() -> str:
    """The training settings, one line per group (for ``--help``)."""
    return "\n".join(f"  {name}: {' '.join(f.name for f in dataclasses.fields(group))}" for name, group in GROUPS.items())


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
