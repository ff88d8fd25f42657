"""Training, top to bottom: one loop a researcher can read and modify (nanoGPT style).

    rladder-stream train omm-rladder --set size=cpu epochs=2 batch_size=64 --out runs/omm
    torchrun --standalone --nproc_per_node 2 -m rladder_stream train omm-rladder --set size=gpu ...

Batches come from the environments' generators (:mod:`rladder_stream.training.tasks`) and are a pure function of
``(seed, step)``; checkpoints hold the model, optimiser, schedule, step and torch RNG, so a run resumed
from any checkpoint ends with exactly the weights of an uninterrupted run.

Under ``torchrun`` (environment variables RANK, WORLD_SIZE, LOCAL_RANK) the model is wrapped in
DistributedDataParallel and rank r trains on rows ``r::world_size`` of the same global batch of
``batch_size`` sequences, so the run follows the single-process one (exactly, up to float rounding, for
models without batch normalisation; on CUDA batch normalisation is synchronised across ranks, on CPU each
rank normalises its own rows). Rank 0 alone evaluates and writes ``log.csv``, checkpoints and results.
Scalars also go to TensorBoard (``out/tensorboard``) when the ``tensorboard`` package is installed.

Semi-supervised runs (``labelled=N``) mix labelled and unlabelled sequences in every batch (see
:class:`rladder_stream.training.tasks.OccludedMNISTTask`); ``mean_teacher=true`` adds the teacher of
:mod:`rladder_stream.training.mean_teacher`: its class probabilities on an independently noised copy of the batch are
the targets of the consistency cost, and it is updated after every optimiser step.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import os
import platform
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from ..errors import ModelFileError, TrainingDiverged, TrainingInterrupted, UsageError
from ..model.cells import TickBatchNorm
from ..model.ladder import State
from ..model.registry import build_model, get_config
from ..model.tagger import masks_from_groups
from ..streaming.checkpoint import load_checkpoint, save_checkpoint
from .flops import count_flops, measure_peak
from .mean_teacher import MeanTeacher, consistency_cost
from .run_folder import check_resume, resumed_history
from .settings import (TEXTURE_SETTINGS, DataSettings, MeanTeacherSettings, ModelSettings, OptimisationSettings, RunSettings,
                       ScheduleSettings, parse_settings, settings_help)
from .tasks import TASKS, Task, task_for

__all__ = ["TrainConfig", "TrainingDiverged", "evaluate", "parse_overrides", "train", "train_cli_main"]


@dataclass
class TrainConfig(RunSettings, MeanTeacherSettings, ScheduleSettings, OptimisationSettings, DataSettings, ModelSettings):
    """Everything about a training run except the model's own fields (``model`` at ``size`` plus
    ``model_overrides``): the groups of :mod:`rladder_stream.training.settings` (model, data, optimisation, schedule,
    Mean Teacher, run folder), joined flat, so that ``--set key=value``, ``results.json`` and checkpoints name
    each setting by its field. (Dataclass fields come base last first: the model's settings lead.)"""

    def __post_init__(self) -> None:
        """Every setting checked by value before anything is created (a refused run leaves nothing behind)."""
        self.check_model()
        self.check_data()
        self.check_optimisation()
        self.check_schedule()
        self.check_mean_teacher()
        self.check_run()
        check_device(self.device)

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.train_sequences // self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def parse_overrides(pairs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``key=value`` strings -> (train fields, model fields). Values are JSON when they parse, else strings."""
    return parse_settings(pairs, TrainConfig)


def lr_factor(step: int, warmup: int, total: int, schedule: str = "cosine") -> float:
    """Linear warm-up, then cosine decay to 5% of the peak (or the peak, constant)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def check_device(name: str) -> None:
    """``ValueError`` for a device this torch cannot use (``cuda`` on a CPU build or a machine without a GPU, a
    GPU index past the last), so the mistake is one line, not a traceback from the first tensor moved there."""
    if not name.startswith("cuda"):
        return
    if not torch.cuda.is_available():
        raise ValueError(f"device={name}: this torch ({torch.__version__}) sees no CUDA GPU (a CPU build, or no GPU "
                         "here); use device=cpu, or device=auto to take a GPU where there is one")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise ValueError(f"device={name}: there are {torch.cuda.device_count()} GPUs (cuda:0 ... cuda:{torch.cuda.device_count() - 1})")


def device_named(name: str) -> torch.device:
    """``auto``: CUDA when there is a GPU, else the CPU; otherwise the device named."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def hardware_description(device: torch.device) -> str:
    """A one-line description of where a run ran (for results tables)."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


def training_autocast(device: torch.device, cfg: OptimisationSettings) -> torch.autocast:
    """bf16 autocast on CUDA when the settings ask for it (``bf16``), on the CPU when they ask for it there
    (``cpu_bf16``: matrix products in bf16; on a CPU with AVX512-BF16 about 5 times the float32 rate); a no-op
    context elsewhere. The training loop and the throughput benchmark both take it from here."""
    if device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.cpu_bf16)
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.bf16 and device.type == "cuda")


@torch.no_grad()
def evaluate(model: torch.nn.Module, task: Task, split: str, limit: int | None, batch_size: int, device: torch.device) -> dict[str, float]:
    """Pooled metrics over the fixed episodes of a split (eval mode, no noise). Any random draw of the model
    (the RTagger's initial masks) comes from a generator seeded 0, apart from the training's own."""
    was_training = model.training
    model.eval()
    sums: dict[str, list[float]] = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        for batch in task.eval_batches(split, batch_size, limit):
            batch = {k: v.to(device) for k, v in batch.items()}
            outputs, _ = model(batch["inputs"])
            for name, (total, count) in task.metrics(outputs, batch).items():
                acc = sums.setdefault(name, [0.0, 0.0])
                acc[0] += total
                acc[1] += count
    model.train(was_training)
    return {name: total / max(count, 1.0) for name, (total, count) in sums.items()}


@torch.no_grad()
def calibrate_norm_statistics(model: torch.nn.Module, task: Task, sequences: int, batch_size: int, seed: int,
                              device: torch.device, noise: float = 0.0) -> None:
    """Set the running statistics of ``model``'s batch norms (pooled, or per iteration with ``norm="batch_tick"``)
    to their average over ``sequences`` clean training sequences (drawn from ``seed``): the statistics of inputs as
    evaluation and streaming see them. Training's running averages come from noised inputs; on the Shapes Tagger they
    cost 0.03 AMI against these (docs/design.md, "Batch normalisation at evaluation"). Nothing else changes: the
    weights, the training's random draws (a forked generator, a data stream of its own) and the model's mode.
    ``noise``: the inputs corrupted as in training instead (to measure what that costs)."""
    norms = [m for m in model.modules() if isinstance(m, TickBatchNorm)
             or (isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats)]
    if not norms or sequences < 1:
        return
    rng = np.random.default_rng([seed, 0, 7])  # three words: no training step's [seed, step] stream
    was_training, momenta = model.training, [norm.momentum for norm in norms]
    model.train()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for norm in norms:
            if isinstance(norm, TickBatchNorm):
                norm.rows_trained.zero_()
            else:  # a cumulative average over every call, so over the iterations too (each calls it once)
                norm.reset_running_stats()
                norm.momentum = None
        for i, start in enumerate(range(0, sequences, batch_size)):
            for norm in norms:
                if isinstance(norm, TickBatchNorm):  # a row per iteration: a cumulative average over the batches
                    norm.momentum = 1.0 / (i + 1)
            inputs = task.train_batch(rng, min(batch_size, sequences - start), device)["inputs"].to(device)
            model(task.add_input_noise(inputs, noise) if noise > 0 else inputs)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)


# ============================================================================ the loop


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or resume) a model; returns the final metrics and writes ``cfg.out``/{last.pt, log.csv, results.json}.

    Under torchrun every rank calls this; rank 0 returns the results, the other ranks ``{"rank": r, "steps": n}``.
    The process group is created here and destroyed at the end, unless the caller created it (a process
    group cannot be created twice in one process: to train several runs in one launch, create it first).
    """
    run = TrainingRun(cfg, log)  # processes, model, task, optimiser, schedule, teacher; resumed from out/last.pt
    with StopSignals() as stop:  # Ctrl-C and SIGTERM: finish the step, write last.pt, raise TrainingInterrupted
        return _train_loop(run, cfg, log, stop)


def _train_loop(run: "TrainingRun", cfg: TrainConfig, log: Callable[[str], None], stop: "StopSignals") -> dict[str, Any]:
    forward = run.training_forward()  # the costs of a batch: DDP-wrapped and compiled as the settings say
    guard = DivergenceGuard(run.device)
    autocast = run.autocast()
    interrupted = False
    while run.step < run.total:
        tick = time.perf_counter()
        batch = run.training_batch()  # a pure function of (seed, step): noised inputs, this rank's rows
        with autocast:
            costs = run.costs(forward, batch)
        guard.record(run.step, costs, all_ranks=run.ddp)
        optimise(costs["total"], run.optimizer, run.model_params, cfg.grad_clip, guard)
        run.scheduler.step()
        if run.teacher is not None:
            guard.check(cfg.out)  # the teacher's update is not guarded on the device
            run.teacher.update(run.model, run.step)
        run.step += 1
        end_of_epoch = run.step % cfg.steps_per_epoch == 0
        if run.step % cfg.log_every == 0 or end_of_epoch or run.step == run.total:  # costs come back to the host here
            run.log_costs(guard.check(cfg.out, costs), tick)
        run.train_time += time.perf_counter() - tick
        out_of_time = run.out_of_time()
        checkpoint_due = (bool(cfg.checkpoint_every) and run.step % cfg.checkpoint_every == 0) or run.checkpoint_overdue()
        stop_asked = cfg.stop_after_steps is not None and run.step >= cfg.stop_after_steps
        if out_of_time or checkpoint_due or stop_asked:
            guard.check(cfg.out)  # nothing is evaluated or saved after a non-finite cost
        if end_of_epoch or out_of_time or run.step == run.total:
            run.validate()
        if end_of_epoch or checkpoint_due or out_of_time:
            run.save()
        run.scalars.flush()
        if out_of_time:
            budget = f"step budget of {cfg.step_budget}" if run.step_budget_spent() else f"time budget of {cfg.time_budget_s:.0f}s"
            log(f"{budget} reached at step {run.step}/{run.total}")
            break
        if stop_asked and run.step < run.total:
            run.save()
            interrupted = True
            break
        signum = stop.received_by_any(run)
        if signum and run.step < run.total:
            guard.check(cfg.out)
            run.save()
            run.finish(interrupted=True)
            raise TrainingInterrupted(run.step, run.total, cfg.out, signum)
    run.save()
    return run.finish(interrupted)


class StopSignals:
    """SIGINT (Ctrl-C) and SIGTERM during training ask the loop to stop after the step in hand, write ``last.pt``
    and raise :class:`TrainingInterrupted` (instead of a traceback from wherever the signal struck, with the work
    since the last checkpoint lost). A second signal acts at once, as it would without this. Handlers are
    installed in the main thread only (Python allows no other) and restored on exit."""

    def __init__(self) -> None:
        self.received = 0
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def __exit__(self, *exc: Any) -> None:
        self._restore()

    def received_by_any(self, run: "TrainingRun") -> int:
        """The signal received (0: none); under torchrun any rank's, so that every rank stops at the same step."""
        if not run.ddp:
            return self.received
        flag = torch.tensor([float(self.received)], device=run.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())


class TrainingRun:
    """One run's state and the side concerns of :func:`train`: processes under torchrun, building and resuming,
    the batches, checkpoints, logs, validation and the final results. Rank 0 (``master``) alone evaluates,
    logs and writes files."""

    def __init__(self, cfg: TrainConfig, log: Callable[[str], None]):
        self.cfg, self.started = cfg, time.perf_counter()
        self.ddp = int(os.environ.get("RANK", -1)) != -1  # launched by torchrun?
        self.rank, self.world, self.device, self.own_group = join_processes(cfg.device) if self.ddp else (0, 1, device_named(cfg.device), False)
        self.master = self.rank == 0
        if cfg.batch_size % self.world:
            raise ValueError(f"batch_size={cfg.batch_size} must be a multiple of the {self.world} processes")
        self.log = log if self.master else (lambda s: None)
        self.model_config = get_config(cfg.model, size=cfg.size, **cfg.model_overrides)
        task = TASKS[task_for(self.model_config)]
        for name in ("iterations", "eval_iterations"):
            if getattr(cfg, name) is not None and not task.takes_iterations:
                raise ValueError(f"{name}={getattr(cfg, name)}: the {task.name} task does not show its images for "
                                 "several iterations (only shapes does)")
        defaults = {f.name: f.default for f in dataclasses.fields(DataSettings)}
        for name in TEXTURE_SETTINGS:
            if getattr(cfg, name) != defaults[name] and not task.takes_textures:
                raise ValueError(f"{name}={getattr(cfg, name)!r}: the {task.name} task has no textures (only tmnist has)")
        if cfg.digit_augment and not task.takes_digit_augment:
            raise ValueError(f"digit_augment=true: the {task.name} task does not render occluded digits (only omm does)")
        if cfg.true_start_steps and not self.model_config.groups:
            raise ValueError(f"true_start_steps={cfg.true_start_steps}: {cfg.model} has no groups to start at the true "
                             "segmentation (only the Taggers have)")
        self.task = task(self.model_config, cfg)
        self.out = Path(cfg.out)  # made once the settings are known to be good: a refused run leaves nothing behind
        self.out.mkdir(parents=True, exist_ok=True)

        torch.manual_seed(cfg.seed)
        self.model = build_model(self.model_config).to(self.device)
        self.last = self.out / "last.pt"
        if cfg.init_from and not self.last.exists():  # a resumed run has its own weights
            warm_start(self.model, cfg.init_from, self.log)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer, self.model_params = build_optimizer(self.model, cfg)
        self.total = cfg.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg.warmup_steps, self.total, cfg.lr_schedule))
        self.step, self.train_time, self.wall_before, self.history = 0, 0.0, 0.0, []
        self.calibrated_at: int | None = None  # the step whose weights the batch_tick statistics were calibrated for
        self.teacher = MeanTeacher(self.model, round(cfg.consistency_rampup * self.total), cfg.consistency_weight,
                                   cfg.ema_decay_rampup, cfg.ema_decay) if cfg.mean_teacher else None
        self.saved_at = time.perf_counter()
        if self.last.exists():
            self.resume()
        elif self.master:
            self.log(f"no checkpoint in {self.out}: starting at step 0")
            self.keep_stale_log()
        self.log(f"model {self.model_config.name} ({cfg.size}): {self.model.num_parameters():,} parameters on "
                 f"{hardware_description(self.device)}{f' x {self.world} processes' if self.ddp else ''}; "
                 f"data: {self.task.data_source}; {self.total} steps of {cfg.batch_size} sequences")
        if cfg.size != "tiny" and "embedded" in self.task.data_source.replace(";", " ").replace(",", " ").split():
            self.log("note: training on the embedded subset shipped for the tests and the demo (a few thousand "
                     "digits at most, 4 texture crops); for the full data set data_dir=... or RLADDER_STREAM_DATA")
        self.scalars = Scalars(self.out if self.master else None)
        self.progress = Progress(self.total, cfg.log_every, sys.stderr if self.master else None, first_step=self.step)
        if self.master:
            self.progress.flops_per_sequence, self.progress.peak = self.measure_compute()

    def keep_stale_log(self) -> None:
        """A ``log.csv`` without a checkpoint belongs to a run that never reached one (stopped before it, or
        killed): it is moved aside, not appended to or overwritten, and the run says where it went."""
        old = self.out / "log.csv"
        if old.exists() and old.stat().st_size:
            kept = self.out / f"log-{time.strftime('%Y%m%d-%H%M%S')}.csv"
            old.rename(kept)
            self.log(f"{old} belonged to a run without a checkpoint: kept as {kept.name}")

    def checkpoint_overdue(self) -> bool:
        """Whether ``checkpoint_minutes`` passed since the last ``last.pt`` (rank 0's clock decides under torchrun)."""
        minutes = self.cfg.checkpoint_minutes
        due = bool(minutes) and time.perf_counter() - self.saved_at >= 60.0 * minutes
        if self.ddp and minutes:
            flag = torch.tensor([float(due)], device=self.device)
            dist.broadcast(flag, src=0)
            due = bool(flag.item())
        return due

    def measure_compute(self) -> tuple[float, float]:
        """(FLOPs of one training sequence, forward and backward; the device's peak FLOP/s), logged once, so the
        progress lines can say what fraction of the chip the run uses. Counted on a copy of the model, under a
        forked random generator, on a batch of its own: the run's weights, statistics and draws are untouched."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            model = copy.deepcopy(self.model).train()
            batch = self.task.train_batch(np.random.default_rng(0), 2, self.device)
            if self.model_config.input_noise > 0:
                batch["inputs"] = self.task.add_input_noise(batch["inputs"], self.model_config.input_noise)
            autocast = self.autocast()

            def step() -> None:
                with autocast:
                    costs = WithCosts(model, self.task)(batch)
                costs["total"].backward()

            flops = count_flops(step) / 2
        peak, what = measure_peak(self.device, quick=self.device.type == "cpu", cpu_bf16=self.cfg.cpu_bf16)
        self.log(f"compute: {flops / 1e9:.3g} GFLOP a training sequence (matrix work, forward and backward); "
                 f"device peak {peak / 1e12:.3g} TFLOP/s ({what}, measured now)")
        if self.cfg.cpu_bf16 and self.device.type == "cpu":
            float32_peak, _ = measure_peak(self.device, quick=True)
            if float32_peak > peak:
                self.log(f"warning: cpu_bf16: this CPU multiplies bfloat16 matrices at {peak / 1e9:.3g} GFLOP/s against "
                         f"{float32_peak / 1e9:.3g} in float32 (it lacks bf16 matrix instructions); cpu_bf16=false trains "
                         f"faster here")
        return flops, peak

    def resume(self) -> None:
        """Continue exactly where ``last.pt`` left off; other settings are refused, with the differences listed."""
        saved_cfg, state_dict, extra = load_checkpoint(self.last)
        check_resume(self.last, saved_cfg, self.model_config, extra.get("train_config"), self.cfg, self.log)
        self.model.load_state_dict(state_dict)
        self.optimizer.load_state_dict(extra["optimizer"])
        self.scheduler.load_state_dict(extra["scheduler"])
        torch.set_rng_state(extra["torch_rng"])
        if self.teacher is not None:
            if "teacher" not in extra:
                raise ValueError(f"{self.last} was trained without Mean Teacher; use another --out or delete it")
            self.teacher.load_state_dict(extra["teacher"])
        self.step, self.train_time = int(extra["step"]), float(extra["train_time"])
        self.wall_before = float(extra.get("wall_time", 0.0))
        self.history = resumed_history(self.out, self.step) if self.master else []  # later log rows go, history stays
        self.log(f"resumed from {self.last} at step {self.step}/{self.total}")

    def autocast(self) -> torch.autocast:
        """The training forward's autocast (:func:`training_autocast`)."""
        return training_autocast(self.device, self.cfg)

    def training_forward(self) -> torch.nn.Module:
        """:class:`WithCosts` around the model, in DistributedDataParallel under torchrun, compiled when asked."""
        model: torch.nn.Module = WithCosts(self.model, self.task)
        if self.ddp:
            if self.device.type == "cuda":  # batch statistics over the global batch, as in one process
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
                if getattr(self.model, "tick_norms", None):  # TickBatchNorm has no synchronised form (yet)
                    self.log("note: norm=batch_tick normalises each process's share of the batch with its own "
                             "statistics (not synchronised across processes)")
            # static_graph: the same parameters get gradients every step (an ablation's zero-weighted head never does)
            model = DDP(model, device_ids=[self.device.index] if self.device.type == "cuda" else None, static_graph=True)
        model.train()
        if self.cfg.compile:
            return torch.compile(model, mode=None if self.cfg.compile_mode == "default" else self.cfg.compile_mode)
        return model

    def training_batch(self) -> dict[str, torch.Tensor]:
        """The step's batch, a pure function of ``(seed, step)``: inputs noised as the model's config says (the
        teacher's with noise of its own), this rank's share of the global batch, on the device."""
        cfg, noise = self.cfg, self.model_config.input_noise
        batch = self.task.train_batch(np.random.default_rng([cfg.seed, self.step]), cfg.batch_size, self.device)
        clean_inputs = batch["inputs"]
        if noise > 0:
            batch["inputs"] = self.task.add_input_noise(clean_inputs, noise)
        if self.teacher is not None:  # the teacher sees its own, independent noise
            batch["teacher_inputs"] = self.task.add_input_noise(clean_inputs, noise)
        if self.step < cfg.true_start_steps:  # the diagnostic's share of true starts (docs/design.md#true-starts)
            share = 1 - self.step / cfg.true_start_steps
            batch["true_start"] = torch.as_tensor(np.random.default_rng([cfg.seed, self.step, 1]).random(len(clean_inputs)) < share)
        if self.ddp:  # this rank's share of the global batch
            batch = {k: v[self.rank :: self.world] for k, v in batch.items()}
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}

    def costs(self, forward: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The step's costs; the class cost from ``class_cost_from_step`` on, the teacher's targets with Mean Teacher."""
        class_cost = self.step >= self.cfg.class_cost_from_step
        if self.teacher is None:
            return forward(batch, class_cost=class_cost)
        return forward(batch, self.teacher.class_probs(batch.pop("teacher_inputs")), self.teacher.weight(self.step), class_cost)

    def log_costs(self, values: dict[str, float], tick: float) -> None:
        """The progress line, and every ``log_every`` steps a row of ``log.csv``."""
        self.progress.update(self.step, self.cfg.batch_size, values)
        if self.step % self.cfg.log_every == 0:
            self.scalars.write("train", self.step, self.step / self.cfg.steps_per_epoch, time.perf_counter() - tick + self.train_time,
                               self.scheduler.get_last_lr()[0], values)

    def step_budget_spent(self) -> bool:
        """Whether the run has taken ``step_budget`` steps (the same step on every rank)."""
        return self.cfg.step_budget is not None and self.step >= self.cfg.step_budget

    def out_of_time(self) -> bool:
        """Whether the training time or the step budget is spent; under torchrun rank 0's clock decides for every rank."""
        if self.step_budget_spent():
            return True
        out_of_time = self.cfg.time_budget_s is not None and self.train_time >= self.cfg.time_budget_s
        if self.ddp and self.cfg.time_budget_s is not None:  # every rank stops at the same step
            flag = torch.tensor([float(out_of_time)], device=self.device)
            dist.broadcast(flag, src=0)
            out_of_time = bool(flag.item())
        return out_of_time

    def metrics(self, split: str, limit: int | None) -> dict[str, float]:
        """The model's metrics on a split (and the teacher's, as ``teacher_...``)."""
        cfg = self.cfg
        if getattr(self.model, "tick_norms", None) and self.calibrated_at != self.step:  # norm="batch_tick" only
            calibration = min(cfg.calibration_sequences, cfg.train_sequences)  # at most an epoch's worth
            calibrate_norm_statistics(self.model, self.task, calibration, cfg.eval_batch_size, cfg.seed, self.device)
            self.calibrated_at = self.step  # the test after the last validation reuses it
        metrics = evaluate(self.model, self.task, split, limit, cfg.eval_batch_size, self.device)
        if self.teacher is not None:
            metrics.update({f"teacher_{k}": v for k, v in evaluate(
                self.teacher.model, self.task, split, limit, cfg.eval_batch_size, self.device).items()})
        return metrics

    def validate(self) -> None:
        """Rank 0: the validation metrics, into the history, ``log.csv`` and the log."""
        if not self.master:
            return
        metrics = self.metrics("valid", self.cfg.valid_sequences)
        self.history.append({"step": self.step, **metrics})
        self.scalars.write("valid", self.step, self.step / self.cfg.steps_per_epoch, self.train_time, "", metrics)
        self.log(f"validation at step {self.step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))

    def save(self) -> None:
        """Rank 0: ``last.pt``, with everything an exact resume needs."""
        if not self.master:
            return
        extra = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": self.step,
            "train_time": self.train_time,
            "wall_time": self.wall_before + time.perf_counter() - self.started,
            "train_config": json.loads(json.dumps(dataclasses.asdict(self.cfg))),
        }
        if self.teacher is not None:
            extra["teacher"] = self.teacher.state_dict()
        save_checkpoint(self.last, self.model_config, self.model.state_dict(), extra)
        self.saved_at = time.perf_counter()

    def finish(self, interrupted: bool) -> dict[str, Any]:
        """After the loop: the teacher's own checkpoint, the test metrics and ``results.json`` (rank 0)."""
        cfg, out = self.cfg, self.out
        if self.teacher is not None and self.master and not interrupted:  # the teacher as a model checkpoint of its own
            save_checkpoint(out / "teacher.pt", self.model_config, self.teacher.model.state_dict(), {"step": self.step})
        if self.own_group:
            dist.destroy_process_group()
        if interrupted or not self.master:
            self.scalars.close()
            return {"interrupted_at": self.step} if interrupted else {"rank": self.rank, "steps": self.step}
        test = self.metrics("test", cfg.test_sequences)
        self.scalars.write("test", self.step, self.step / cfg.steps_per_epoch, self.train_time, "", test)
        self.scalars.close()
        self.log("test: " + ", ".join(f"{k}={v:.4f}" for k, v in test.items()))
        results = {
            "model": self.model_config.name,
            "size": cfg.size,
            "seed": cfg.seed,
            "steps": self.step,
            "train_time_s": round(self.train_time, 1),
            "wall_time_s": round(self.wall_before + time.perf_counter() - self.started, 1),
            "hardware": hardware_description(self.device) + (f" x {self.world} processes" if self.ddp else ""),
            "data": self.task.data_source,
            "parameters": self.model.num_parameters(),
            "test": test,
            "valid_history": self.history,
            "train_config": json.loads(json.dumps(dataclasses.asdict(cfg))),
            "model_config": json.loads(json.dumps(dataclasses.asdict(self.model_config))),  # the registry's defaults change
        }
        (out / "results.json").write_text(json.dumps(results, indent=2))
        return results


# ============================================================================ helpers of the loop


def warm_start(model: torch.nn.Module, source: str, log: Callable[[str], None] = print) -> None:
    """Start ``model`` from the checkpoint ``source`` (docs/design.md, "Warm starts"): every tensor (weights and
    statistics) of the same name and shape is copied; what the source lacks keeps its initialisation, except the
    last layer of each new decoder-to-encoder feedback transform, set to zero, so that an RLadder started from a
    hierarchical RNN computes exactly what the RNN computed until training moves it. A tensor of the same name but
    another shape is an error (the two models differ in more than what is new)."""
    _, weights, _ = load_checkpoint(source)
    own = model.state_dict()
    other_shape = [f"{k} {tuple(weights[k].shape)} -> {tuple(v.shape)}" for k, v in own.items()
                   if k in weights and weights[k].shape != v.shape]
    if other_shape:
        raise UsageError(f"init_from={source}: tensors of another shape: {', '.join(other_shape)}")
    copied = {k: weights[k] for k in own if k in weights}
    if not copied:
        raise UsageError(f"init_from={source}: the checkpoint holds none of this model's tensors")
    model.load_state_dict(copied, strict=False)
    new = [k for k in own if k not in weights]
    with torch.no_grad():
        for name, module in model.named_children():
            if name not in ("feedback", "top_feedback") or module is None:
                continue
            transforms = module if isinstance(module, torch.nn.ModuleList) else [module]
            for i, transform in enumerate(transforms):
                last = transform[-1] if isinstance(transform, torch.nn.Sequential) else transform
                prefix = f"{name}.{i}." if isinstance(module, torch.nn.ModuleList) else f"{name}."
                if any(k.startswith(prefix) for k in new):  # new here: it starts silent
                    for p in last.parameters():
                        p.zero_()
    log(f"warm start from {source}: {len(copied)} tensors copied, {len(new)} new"
        + (" (the feedback starts at zero)" if any(k.startswith(("feedback.", "top_feedback.")) for k in new) else ""))



class Progress:
    """A one-line progress report every ``every`` steps: step, costs, throughput, ETA (``stream=None``: silent)."""

    def __init__(self, total: int, every: int, stream=sys.stderr, first_step: int = 0):
        self.total, self.every, self.stream = total, every, stream
        self.start = time.perf_counter()
        self.first_step = first_step
        self.flops_per_sequence = self.peak = 0.0  # set by the run once measured: then the line shows the fraction

    def update(self, step: int, sequences: int, costs: dict[str, float]) -> None:
        if self.stream is None or (step % self.every and step != self.total):
            return
        elapsed = time.perf_counter() - self.start
        done = step - self.first_step
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        text = " ".join(f"{k}={v:.4f}" for k, v in costs.items())
        compute = ""
        if self.flops_per_sequence and self.peak:
            achieved = rate * sequences * self.flops_per_sequence
            compute = f" = {achieved / 1e9:.3g} GFLOP/s, {100 * achieved / self.peak:.1f} % of peak"
        print(f"step {step}/{self.total} {text} | {rate * sequences:.1f} seq/s{compute} | eta {eta:.0f}s", file=self.stream, flush=True)


class Scalars:
    """Every logged scalar, one row each, in ``out/log.csv``; also in TensorBoard when it is installed.
    ``out=None`` discards everything (the torchrun ranks other than 0)."""

    HEADER = ["kind", "step", "epoch", "train_time_s", "lr", "metric", "value"]

    def __init__(self, out: Path | None):
        self.file = self.tensorboard = None
        if out is None:
            return
        self.file = (out / "log.csv").open("a", newline="")
        self.csv = csv.writer(self.file)
        if self.file.tell() == 0:
            self.csv.writerow(self.HEADER)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional: CSV only
            self.tensorboard = None
        else:
            self.tensorboard = SummaryWriter(log_dir=str(out / "tensorboard"))

    def write(self, kind: str, step: int, epoch: float, train_time: float, lr: float | str, values: dict[str, float]) -> None:
        if self.file is None:
            return
        for k, v in values.items():
            self.csv.writerow([kind, step, epoch, f"{train_time:.2f}", lr, k, v])
            if self.tensorboard is not None:
                self.tensorboard.add_scalar(f"{kind}/{k}", v, step)

    def flush(self) -> None:
        for sink in (self.file, self.tensorboard):
            if sink is not None:
                sink.flush()

    def close(self) -> None:
        for sink in (self.file, self.tensorboard):
            if sink is not None:
                sink.close()


class WithCosts(torch.nn.Module):
    """The training forward: a batch in, the costs out (only ``total`` carries gradients).

    DistributedDataParallel wraps this rather than the model: it must see the total cost, not every output,
    to know which parameters get gradients (an ablation's zero-weighted head gets none).
    """

    def __init__(self, model: torch.nn.Module, task: Task):
        super().__init__()
        self.model, self.task = model, task

    def forward(self, batch: dict[str, torch.Tensor], teacher_probs: torch.Tensor | None = None,
                consistency_weight: float = 0.0, class_cost: bool = True) -> dict[str, torch.Tensor]:
        outputs, _ = self.model(batch["inputs"], self.start_state(batch))
        costs = self.task.costs(outputs, batch)
        if not class_cost and "classification" in costs:  # the first phase of a two-phase schedule
            costs["total"] = costs["total"] - self.model.config.class_weight * costs["classification"]
        if teacher_probs is not None:  # Mean Teacher: on every sequence, labelled or not
            costs["consistency"] = consistency_cost(outputs["class_logits"][:, -1], teacher_probs)
            costs["total"] = costs["total"] + consistency_weight * costs["consistency"]
        return {k: v if k == "total" else v.detach() for k, v in costs.items()}

    def start_state(self, batch: dict[str, torch.Tensor]) -> State | None:
        """The model's own start (None), or with ``true_start`` in the batch its start with the flagged images'
        masks at their true segmentation (:func:`~rladder_stream.model.tagger.masks_from_groups`)."""
        if "true_start" not in batch:
            return None
        inputs = batch["inputs"]
        state = self.model.init_state(len(inputs), inputs.device, inputs.dtype)
        true = masks_from_groups(batch["true_groups"][:, 0], self.model.config.groups).to(state["m"])
        flagged = batch["true_start"].view(-1, *([1] * (true.dim() - 1)))
        return {**state, "m": torch.where(flagged, true, state["m"])}


def parameter_groups(model: torch.nn.Module) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """(the model's parameters, the probe's). The probe reads the decoder without sending it gradients; kept in
    a group of its own and out of the gradient clipping, it cannot change how the model trains."""
    model_params, probe_params = [], []
    for name, p in model.named_parameters():
        (probe_params if name.startswith("probe_head.") else model_params).append(p)
    return model_params, probe_params


class DivergenceGuard:
    """Watches the training costs on the device, without a host synchronisation per step.

    ``record`` marks a step whose total cost is not finite (on every rank at once under torchrun); from then on
    :attr:`skip` tells the fused optimiser to apply nothing, so the weights stay those before that step.
    ``check`` (every ``log_every`` steps, and before anything is evaluated or saved) brings the flag to the host
    and raises :class:`TrainingDiverged` with the first bad step and its costs.
    """

    def __init__(self, device: torch.device):
        self.skip = torch.zeros((), device=device)  # 1.0 once a non-finite cost was seen
        self.first_bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self.bad_costs: torch.Tensor | None = None
        self.names: list[str] = []

    def record(self, step: int, costs: dict[str, torch.Tensor], all_ranks: bool = False) -> None:
        self.names = list(costs)
        values = torch.stack([costs[k].detach().float().reshape(()) for k in self.names])
        bad = (~torch.isfinite(values[self.names.index("total")])).float()
        if all_ranks:  # every rank skips and stops together
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        first = (bad > 0) & (self.skip == 0)
        self.first_bad_step = torch.where(first, step, self.first_bad_step)
        self.bad_costs = values if self.bad_costs is None else torch.where(first, values, self.bad_costs)
        self.skip = torch.maximum(self.skip, bad)

    def check(self, out: str | None, costs: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
        """Raise if a step diverged; else return ``costs`` as floats (the step's logged values)."""
        first = int(self.first_bad_step.item())
        if first >= 0:
            raise TrainingDiverged(first, dict(zip(self.names, self.bad_costs.tolist())), out)
        return {k: float(v.detach()) for k, v in (costs or {}).items()}


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> tuple[torch.optim.Optimizer, list[torch.nn.Parameter]]:
    """Fused AdamW over the model's parameters and, in a group of its own, the probe's; returns it and the
    model's parameters (the ones the gradient clipping sees). Fused: one kernel for all parameters, and it
    skips a step on the device when told the step is bad (``found_inf``), so no step waits for the host."""
    model_params, probe_params = parameter_groups(model)
    optimizer = torch.optim.AdamW([{"params": model_params}, {"params": probe_params}], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay, fused=True)
    return optimizer, model_params


def optimise(total: torch.Tensor, optimizer: torch.optim.Optimizer, model_params: list[torch.nn.Parameter],
             grad_clip: float, guard: "DivergenceGuard") -> None:
    """One optimiser step on ``total``: backward, clipping of the model's gradients (not the probe's: its own
    gradient must not set the model's clip factor), and an update that changes nothing once ``guard`` saw a
    non-finite cost."""
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model_params, grad_clip, foreach=True)
    optimizer.found_inf = guard.skip
    optimizer.step()
    del optimizer.found_inf


def join_processes(device_name: str) -> tuple[int, int, torch.device, bool]:
    """Join the process group torchrun describes (NCCL on CUDA, Gloo on CPU), creating it unless the caller
    already did; returns (rank, world size, this rank's device, whether it was created here)."""
    device = device_named(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device, created


def train_cli_main(argv: list[str]) -> int:
    """``rladder-stream train CONFIG [--set key=value ...] [--out DIR]``."""
    from ..arguments import OneLineArgumentParser
    from ..errors import one_line

    parser = OneLineArgumentParser(
        prog="rladder-stream train",
        description="Train a registered model configuration (see 'rladder-stream configs') and keep everything in a run "
                    "folder: last.pt (the checkpoint, which every command's --model streams), log.csv (the costs and "
                    "validation metrics as training goes) and results.json (the test metrics at the end). Running the "
                    "same command again resumes a run folder that holds last.pt, exactly where it stopped; Ctrl-C stops "
                    "after the step in hand and saves. Every setting listed below can be changed with --set; a model "
                    "setting changes the configuration itself. Under torchrun the run is spread over several processes "
                    "or GPUs.",
        examples=["rladder-stream train omm-rladder --set size=tiny epochs=1 --out runs/try",
                  "rladder-stream train omm-rladder --set epochs=4 lr=1e-3 decoder_cell=convg3 --out runs/omm",
                  "rladder-stream train music-rladder --set dataset=nottingham data_dir=../data",
                  "torchrun --standalone --nproc_per_node 2 -m rladder_stream train omm-rladder --set size=gpu"],
        epilog=settings_help())
    parser.add_argument("config", help="the registered model configuration to train (see 'rladder-stream configs')")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="training or model settings (listed below), e.g. epochs=3 lr=1e-3 decoder_cell=convg3")
    parser.add_argument("--out", help="the run folder (default: runs/CONFIG-SIZE-seedSEED); a folder that holds last.pt "
                                      "is resumed")
    parser.add_argument("--resume-with-changes", action="store_true",
                        help="resume the --out run even though its settings differ from these (refused otherwise)")
    args = parser.parse_args(argv)
    try:
        train_fields, model_fields = parse_overrides(args.set)
        cfg = TrainConfig(model=args.config, model_overrides=model_fields, **train_fields)
        if args.out:
            cfg.out = args.out
        elif "out" not in train_fields:
            cfg.out = os.path.join("runs", f"{args.config}-{cfg.size}-seed{cfg.seed}")
        cfg.resume_with_changes = cfg.resume_with_changes or args.resume_with_changes
        get_config(cfg.model, size=cfg.size, **cfg.model_overrides)  # fail fast on bad settings
    except ModelFileError:
        raise  # a file a setting names (init_from): a user error (exit 1), as a bad --model is in every command
    except (ValueError, KeyError, TypeError) as exc:
        parser.error(one_line(exc))
    try:
        results = train(cfg)
    except TrainingInterrupted as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return exc.exit_status
    if "rank" in results:  # a torchrun rank other than 0: rank 0 reports
        return 0
    print(json.dumps({k: results[k] for k in results if k in ("test", "steps", "train_time_s", "interrupted_at")}, indent=2))
    return 0
