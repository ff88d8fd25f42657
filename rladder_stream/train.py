"""Training, top to bottom: one loop a researcher can read and modify (nanoGPT style).

    rladder-stream train omm-rladder --set size=cpu epochs=2 batch_size=64 --out runs/omm
    torchrun --standalone --nproc_per_node 2 -m rladder_stream.cli train omm-rladder --set size=gpu ...

Batches come from the environments' generators (:mod:`rladder_stream.tasks`) and are a pure function of
``(seed, step)``; checkpoints hold the model, optimiser, schedule, step and torch RNG, so a run resumed
from any checkpoint ends with exactly the weights of an uninterrupted run.

Under ``torchrun`` (environment variables RANK, WORLD_SIZE, LOCAL_RANK) the model is wrapped in
DistributedDataParallel and rank r trains on rows ``r::world_size`` of the same global batch of
``batch_size`` sequences, so the run follows the single-process one (exactly, up to float rounding, for
models without batch normalisation; on CUDA batch normalisation is synchronised across ranks, on CPU each
rank normalises its own rows). Rank 0 alone evaluates and writes ``log.csv``, checkpoints and results.
Scalars also go to TensorBoard (``out/tensorboard``) when the ``tensorboard`` package is installed.

Semi-supervised runs (``labelled=N``) mix labelled and unlabelled sequences in every batch (see
:class:`rladder_stream.tasks.OccludedMNISTTask`); ``mean_teacher=true`` adds the teacher of
:mod:`rladder_stream.mean_teacher`: its class probabilities on an independently noised copy of the batch are
the targets of the consistency cost, and it is updated after every optimiser step.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from .checkpoint import load_checkpoint, save_checkpoint
from .config import LadderConfig, get_config
from .ladder import build_model
from .mean_teacher import MeanTeacher, consistency_cost
from .run_folder import check_resume, resumed_history
from .settings import check_setting
from .tasks import TASKS, Task, task_for


@dataclass
class TrainConfig:
    """Everything about a training run except the model (which is ``model`` at ``size`` plus ``model_overrides``)."""

    model: str = "omm-rladder"
    size: str = "cpu"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1
    train_sequences: int = 50_000  # per epoch (SPEC 4.1: fresh trajectories every epoch)
    batch_size: int = 64
    lr: float = 2e-3
    lr_schedule: str = "cosine"  # cosine (warm-up, then decay to 5 % of lr) | constant (warm-up, then lr)
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    time_budget_s: float | None = None  # stop (and evaluate) when training time exceeds this
    class_cost_from_step: int = 0  # two phases (the reference Tagger): the low-level cost alone before this step
    valid_sequences: int = 2_000
    test_sequences: int | None = None  # None: the whole test split
    eval_batch_size: int = 500
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    bf16: bool = True  # autocast to bfloat16 on CUDA (ignored on CPU)
    compile: bool = False  # torch.compile the whole training forward (every tick, costs included)
    compile_mode: str = "default"  # torch.compile mode: default | reduce-overhead (CUDA graphs) | max-autotune
    channels_last: bool = False  # channels-last weights and activations (faster convolutions on tensor cores)
    data_dir: str | None = None
    labelled: int | None = None  # semi-supervised: number of labelled training digits (class-balanced, fixed)
    use_unlabelled: bool = True  # semi-supervised: also train on the unlabelled digits (prediction, consistency)
    labelled_fraction: float = 0.25  # semi-supervised with unlabelled data: share of labelled sequences per batch
    mean_teacher: bool = False  # Mean Teacher consistency cost at the top (SPEC 3)
    consistency_weight: float = 10.0  # its maximum weight, reached after the ramp-up
    consistency_rampup: float = 0.3  # ramp-up length as a fraction of the planned steps
    ema_decay_rampup: float = 0.99  # teacher EMA decay during the ramp-up
    ema_decay: float = 0.999  # and after it
    dataset: str | None = None  # tasks with several data sets (music): which one; None = the task's default
    out: str = "runs/default"
    checkpoint_every: int = 0  # steps; 0 = at the end of every epoch only
    log_every: int = 20  # steps; also how often the device's costs are read back (the only host sync)
    stop_after_steps: int | None = None  # interrupt after this many steps (tests of exact resume)
    resume_with_changes: bool = False  # resume a run folder even though these settings differ from its own

    def __post_init__(self) -> None:
        if self.labelled is None and not self.use_unlabelled:
            raise ValueError("use_unlabelled=false needs labelled=N (which digits are the labelled ones)")
        if not 0.0 < self.labelled_fraction <= 1.0:
            raise ValueError(f"labelled_fraction must be in (0, 1], got {self.labelled_fraction}")
        if not 0.0 <= self.consistency_rampup <= 1.0:
            raise ValueError(f"consistency_rampup must be in [0, 1], got {self.consistency_rampup}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.train_sequences // self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def parse_overrides(pairs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``key=value`` strings -> (train fields, model fields). Values are JSON when they parse, else strings."""
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
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
            check_setting(TrainConfig, key, value)
            train[key] = value
        elif key in model_fields:
            check_setting(LadderConfig, key, value)
            model[key] = value
        else:
            raise ValueError(f"unknown setting {key!r}; training settings: {sorted(train_fields)}; model settings: {sorted(model_fields)}")
    return train, model


LR_SCHEDULES = ("cosine", "constant")


def _lr_factor(step: int, warmup: int, total: int, schedule: str = "cosine") -> float:
    """Linear warm-up, then cosine decay to 5% of the peak (or the peak, constant)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def hardware_description(device: torch.device) -> str:
    """A one-line description of where a run ran (for results tables)."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (torch {torch.__version__})"
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch {torch.__version__})"


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


class TrainingDiverged(FloatingPointError):
    """The training cost became non-finite; raised before that step changes anything (weights, optimiser,
    checkpoint), so the run's folder keeps its last good checkpoint."""

    def __init__(self, step: int, costs: dict[str, float], out: str | None):
        self.step, self.costs = step, costs
        shown = ", ".join(f"{k}={v:.4g}" for k, v in costs.items())
        super().__init__(f"training diverged at step {step + 1}: {shown}; nothing of that step was applied"
                         + (f", {out}/last.pt holds the last checkpoint" if out else ""))


class _Progress:
    """A one-line progress report every ``every`` steps: step, costs, throughput, ETA (``stream=None``: silent)."""

    def __init__(self, total: int, every: int, stream=sys.stderr, first_step: int = 0):
        self.total, self.every, self.stream = total, every, stream
        self.start = time.perf_counter()
        self.first_step = first_step

    def update(self, step: int, sequences: int, costs: dict[str, float]) -> None:
        if self.stream is None or (step % self.every and step != self.total):
            return
        elapsed = time.perf_counter() - self.start
        done = step - self.first_step
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else float("inf")
        text = " ".join(f"{k}={v:.4f}" for k, v in costs.items())
        print(f"step {step}/{self.total} {text} | {rate * sequences:.1f} seq/s | eta {eta:.0f}s", file=self.stream, flush=True)


class _Scalars:
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
        outputs, _ = self.model(batch["inputs"])
        costs = self.task.costs(outputs, batch)
        if not class_cost and "classification" in costs:  # the first phase of a two-phase schedule
            costs["total"] = costs["total"] - self.model.config.class_weight * costs["classification"]
        if teacher_probs is not None:  # Mean Teacher: on every sequence, labelled or not
            costs["consistency"] = consistency_cost(outputs["class_logits"][:, -1], teacher_probs)
            costs["total"] = costs["total"] + consistency_weight * costs["consistency"]
        return {k: v if k == "total" else v.detach() for k, v in costs.items()}


def _parameter_groups(model: torch.nn.Module) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
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
    model_params, probe_params = _parameter_groups(model)
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


def _init_distributed(device_name: str) -> tuple[int, int, torch.device, bool]:
    """Join the process group torchrun describes (NCCL on CUDA, Gloo on CPU), creating it unless the caller
    already did; returns (rank, world size, this rank's device, whether it was created here)."""
    device = _device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device, created


def train(cfg: TrainConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or resume) a model; returns the final metrics and writes ``cfg.out``/{last.pt, log.csv, results.json}.

    Under torchrun every rank calls this; rank 0 returns the results, the other ranks ``{"rank": r, "steps": n}``.
    The process group is created here and destroyed at the end, unless the caller created it (a process
    group cannot be created twice in one process: to train several runs in one launch, create it first).
    """
    started = time.perf_counter()
    ddp = int(os.environ.get("RANK", -1)) != -1  # launched by torchrun?
    rank, world, device, own_group = _init_distributed(cfg.device) if ddp else (0, 1, _device(cfg.device), False)
    master = rank == 0  # the one process that evaluates, logs and writes files
    if cfg.batch_size % world:
        raise ValueError(f"batch_size={cfg.batch_size} must be a multiple of the {world} processes")
    if not master:
        log = lambda s: None  # noqa: E731
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    model_cfg = get_config(cfg.model, size=cfg.size, **cfg.model_overrides)
    task = TASKS[task_for(model_cfg)](model_cfg, cfg)

    torch.manual_seed(cfg.seed)
    raw_model = build_model(model_cfg).to(device)
    if cfg.channels_last:
        raw_model = raw_model.to(memory_format=torch.channels_last)
    optimizer, model_params = build_optimizer(raw_model, cfg)
    total = cfg.total_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, cfg.warmup_steps, total, cfg.lr_schedule))
    step, train_time, wall_before, history = 0, 0.0, 0.0, []
    teacher = MeanTeacher(raw_model, round(cfg.consistency_rampup * total), cfg.consistency_weight,
                          cfg.ema_decay_rampup, cfg.ema_decay) if cfg.mean_teacher else None

    last = out / "last.pt"
    if last.exists():  # resume exactly where the last checkpoint left off
        saved_cfg, state_dict, extra = load_checkpoint(last)
        check_resume(last, saved_cfg, model_cfg, extra.get("train_config"), cfg, log)  # other settings: refused, listed
        raw_model.load_state_dict(state_dict)
        optimizer.load_state_dict(extra["optimizer"])
        scheduler.load_state_dict(extra["scheduler"])
        torch.set_rng_state(extra["torch_rng"])
        if teacher is not None:
            if "teacher" not in extra:
                raise ValueError(f"{last} was trained without Mean Teacher; use another --out or delete it")
            teacher.load_state_dict(extra["teacher"])
        step, train_time = int(extra["step"]), float(extra["train_time"])
        wall_before = float(extra.get("wall_time", 0.0))
        history = resumed_history(out, step) if master else []  # log rows after this checkpoint go, history stays
        log(f"resumed from {last} at step {step}/{total}")

    model = WithCosts(raw_model, task)
    if ddp:
        if device.type == "cuda":  # batch statistics over the global batch, as in one process
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        # static_graph: the same parameters get gradients every step (an ablation's zero-weighted head never does)
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True)
    forward = torch.compile(model, mode=None if cfg.compile_mode == "default" else cfg.compile_mode) if cfg.compile else model

    def save(path: Path) -> None:
        if not master:
            return
        extra = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "train_time": train_time,
            "wall_time": wall_before + time.perf_counter() - started,
            "train_config": json.loads(json.dumps(dataclasses.asdict(cfg))),
        }
        if teacher is not None:
            extra["teacher"] = teacher.state_dict()
        save_checkpoint(path, model_cfg, raw_model.state_dict(), extra)

    log(f"model {model_cfg.name} ({cfg.size}): {raw_model.num_parameters():,} parameters on {hardware_description(device)}"
        f"{f' x {world} processes' if ddp else ''}; data: {task.data_source}; {total} steps of {cfg.batch_size} sequences")
    scalars = _Scalars(out if master else None)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.bf16 and device.type == "cuda")
    progress = _Progress(total, cfg.log_every, sys.stderr if master else None, first_step=step)
    model.train()
    interrupted = False
    guard = DivergenceGuard(device)
    while step < total:
        tick = time.perf_counter()
        batch = task.train_batch(np.random.default_rng([cfg.seed, step]), cfg.batch_size, device)
        clean_inputs = batch["inputs"]
        if model_cfg.input_noise > 0:
            batch["inputs"] = task.add_input_noise(clean_inputs, model_cfg.input_noise)
        if teacher is not None:  # the teacher sees its own, independent noise
            batch["teacher_inputs"] = task.add_input_noise(clean_inputs, model_cfg.input_noise)
        if ddp:  # this rank's share of the global batch
            batch = {k: v[rank::world] for k, v in batch.items()}
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with autocast:
            class_cost = step >= cfg.class_cost_from_step
            if teacher is not None:
                costs = forward(batch, teacher.class_probs(batch.pop("teacher_inputs")), teacher.weight(step), class_cost)
            else:
                costs = forward(batch, class_cost=class_cost)
        guard.record(step, costs, all_ranks=ddp)
        optimise(costs["total"], optimizer, model_params, cfg.grad_clip, guard)
        scheduler.step()
        if teacher is not None:
            guard.check(cfg.out)  # the teacher's update is not guarded on the device
            teacher.update(raw_model, step)
        step += 1
        epoch = step / cfg.steps_per_epoch
        end_of_epoch = step % cfg.steps_per_epoch == 0
        if step % cfg.log_every == 0 or end_of_epoch or step == total:  # the step's costs come back to the host here
            values = guard.check(cfg.out, costs)
            progress.update(step, cfg.batch_size, values)
            if step % cfg.log_every == 0:
                scalars.write("train", step, epoch, time.perf_counter() - tick + train_time, scheduler.get_last_lr()[0], values)
        train_time += time.perf_counter() - tick
        out_of_time = cfg.time_budget_s is not None and train_time >= cfg.time_budget_s
        if ddp and cfg.time_budget_s is not None:  # every rank stops at the same step: rank 0's clock decides
            flag = torch.tensor([float(out_of_time)], device=device)
            dist.broadcast(flag, src=0)
            out_of_time = bool(flag.item())
        if out_of_time or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or (
                cfg.stop_after_steps is not None and step >= cfg.stop_after_steps):
            guard.check(cfg.out)  # nothing is evaluated or saved after a non-finite cost
        if master and (end_of_epoch or out_of_time or step == total):
            metrics = evaluate(raw_model, task, "valid", cfg.valid_sequences, cfg.eval_batch_size, device)
            if teacher is not None:
                metrics.update({f"teacher_{k}": v for k, v in evaluate(
                    teacher.model, task, "valid", cfg.valid_sequences, cfg.eval_batch_size, device).items()})
            history.append({"step": step, **metrics})
            scalars.write("valid", step, epoch, train_time, "", metrics)
            log(f"validation at step {step}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        if end_of_epoch or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or out_of_time:
            save(last)
        scalars.flush()
        if out_of_time:
            log(f"time budget of {cfg.time_budget_s:.0f}s reached at step {step}/{total}")
            break
        if cfg.stop_after_steps is not None and step >= cfg.stop_after_steps and step < total:
            save(last)
            interrupted = True
            break
    save(last)
    if teacher is not None and master and not interrupted:  # the teacher as a model checkpoint of its own
        save_checkpoint(out / "teacher.pt", model_cfg, teacher.model.state_dict(), {"step": step})
    if own_group:
        dist.destroy_process_group()
    if interrupted or not master:
        scalars.close()
        return {"interrupted_at": step} if interrupted else {"rank": rank, "steps": step}

    test = evaluate(raw_model, task, "test", cfg.test_sequences, cfg.eval_batch_size, device)
    if teacher is not None:
        test.update({f"teacher_{k}": v for k, v in evaluate(
            teacher.model, task, "test", cfg.test_sequences, cfg.eval_batch_size, device).items()})
    scalars.write("test", step, step / cfg.steps_per_epoch, train_time, "", test)
    scalars.close()
    log("test: " + ", ".join(f"{k}={v:.4f}" for k, v in test.items()))
    results = {
        "model": model_cfg.name,
        "size": cfg.size,
        "seed": cfg.seed,
        "steps": step,
        "train_time_s": round(train_time, 1),
        "wall_time_s": round(wall_before + time.perf_counter() - started, 1),
        "hardware": hardware_description(device) + (f" x {world} processes" if ddp else ""),
        "data": task.data_source,
        "parameters": raw_model.num_parameters(),
        "test": test,
        "valid_history": history,
        "train_config": json.loads(json.dumps(dataclasses.asdict(cfg))),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    return results


def train_cli_main(argv: list[str]) -> int:
    """``rladder-stream train CONFIG [--set key=value ...] [--out DIR]``."""
    import argparse

    from .errors import OneLineArgumentParser, one_line

    parser = OneLineArgumentParser(prog="rladder-stream train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="a registered model configuration (see 'rladder-stream configs')")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="training or model settings, e.g. epochs=3 lr=1e-3 decoder_cell=convg3")
    parser.add_argument("--out", help="run folder (checkpoints, log.csv, results.json); resumes if it holds last.pt")
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
    except (ValueError, KeyError, TypeError) as exc:
        parser.error(one_line(exc))
    results = train(cfg)
    if "rank" in results:  # a torchrun rank other than 0: rank 0 reports
        return 0
    print(json.dumps({k: results[k] for k in results if k in ("test", "steps", "train_time_s", "interrupted_at")}, indent=2))
    return 0
