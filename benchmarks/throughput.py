"""Training and streaming throughput against the device's limit: FLOPs counted, peak measured in the same run.

For each configuration it counts the FLOPs of one training sample (forward and backward of the whole sequence,
costs included) and of one streamed tick (``torch.utils.flop_counter``), measures the device's peak on a large
matrix product (bf16 on a GPU, float32 on a CPU), and times

* training steps (the training loop's own pieces: the on-device batch, ``WithCosts``, fused AdamW with the
  divergence guard, bf16 autocast on CUDA), eager and ``torch.compile``d;
* streaming ticks: latency at batch 1 (p50 / p99 over single ticks) and throughput at a large batch, for each
  step mode of :func:`rladder_stream.streaming.fast_step.make_step` that the device supports.

It prints a table and writes the rows to ``docs/benchmarks.json`` (rows of other devices are kept) and the
section "## Throughput against the device's peak: DEVICE" of ``docs/benchmarks.md`` (other sections kept).

    python benchmarks/throughput.py --size cpu --configs omm-rladder      # CPU, a few minutes
    python benchmarks/throughput.py --size gpu                            # on a GPU
    python benchmarks/throughput.py --size tiny --quick --no-write        # a smoke test
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from markdown_sections import replace_section  # benchmarks/, beside this script
from rladder_stream.model.registry import build_model, get_config
from rladder_stream.streaming.fast_step import make_step
from rladder_stream.training.flops import count_flops, measure_peak, synchronize, timed
from rladder_stream.training.tasks import TASKS, task_for
from rladder_stream.training.train import (DivergenceGuard, TrainConfig, WithCosts, build_optimizer, optimise,
                                           training_autocast)

ROOT = Path(__file__).resolve().parents[1]

SECTION = "## Throughput against the device's peak"
DEFAULT_CONFIGS = ("omm-rladder", "omm-hrnn", "tmnist-rtagger")


def training_setup(name: str, size: str, batch: int, device: torch.device, compile_mode: str | None, cpu_bf16: bool = False):
    """A model, task, optimiser and one-step closure built as ``train`` builds them (``cpu_bf16``: the training
    setting of that name, bf16 autocast on the CPU)."""
    cfg = TrainConfig(model=name, size=size, batch_size=batch, device=str(device), lr=1e-4, cpu_bf16=cpu_bf16)
    model_cfg = get_config(name, size=size)
    task = TASKS[task_for(model_cfg)](model_cfg, cfg)
    torch.manual_seed(0)
    model = build_model(model_cfg).to(device).train()
    optimizer, model_params = build_optimizer(model, cfg)
    with_costs = WithCosts(model, task)
    forward = with_costs if compile_mode is None else torch.compile(with_costs, mode=None if compile_mode == "default" else compile_mode)
    guard = DivergenceGuard(device)
    autocast = training_autocast(device, cfg)
    counter = {"step": 0}

    def step(batch_size: int = batch) -> None:
        rng = np.random.default_rng([0, counter["step"]])
        counter["step"] += 1
        data = task.train_batch(rng, batch_size, device)
        if model_cfg.input_noise > 0:
            data["inputs"] = task.add_input_noise(data["inputs"], model_cfg.input_noise)
        with autocast:
            costs = forward(data)
        guard.record(counter["step"], costs)
        optimise(costs["total"], optimizer, model_params, cfg.grad_clip, guard)

    def flops_per_sample(n: int = 2) -> float:
        data = task.train_batch(np.random.default_rng(0), n, device)

        def once() -> None:
            with autocast:
                costs = with_costs(data)
            costs["total"].backward()

        return count_flops(once) / n

    return model, step, flops_per_sample


def bench_training(name: str, size: str, batch: int, device: torch.device, modes: list[str], steps: int, peak: float,
                   say: Callable[[str], None], record: Callable[[list[dict[str, Any]]], None],
                   bf16_peak: float = 0.0) -> list[dict[str, Any]]:
    """Training rows, one per mode; a mode ending in ``+bf16`` trains under bf16 autocast on the CPU and is
    measured against the CPU's bf16 peak (``bf16_peak``)."""
    rows = []
    for mode in modes:
        base, bf16 = mode.removesuffix("+bf16"), mode.endswith("+bf16") and device.type == "cpu"
        compile_mode = None if base == "eager" else ("default" if base == "compile" else base.removeprefix("compile:"))
        t0 = time.perf_counter()
        model, step, flops_per_sample = training_setup(name, size, batch, device, compile_mode, cpu_bf16=bf16)
        flops = flops_per_sample()
        for _ in range(3):  # warm-up (and the compile)
            step()
        synchronize(device)
        warm = time.perf_counter() - t0
        seconds = timed(step, device, steps)
        rate = batch / seconds
        rows.append(row(device, name, size, "train", batch, rate, flops, bf16_peak if bf16 else peak, variant=mode, setup_s=round(warm, 1),
                        parameters=sum(p.numel() for p in model.parameters())))
        record([rows[-1]])
        say(format_row(rows[-1]))
        del model, step
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def bench_streaming(name: str, size: str, batches: list[int], device: torch.device, modes: list[str], ticks: int,
                    peak: float, say: Callable[[str], None], record: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    model = build_model(get_config(name, size=size)).to(device).eval()
    rows = []
    for batch in batches:
        obs = torch.rand(batch, *model.config.obs_shape, device=device)
        with torch.inference_mode():
            pair = torch.rand(2, *model.config.obs_shape, device=device)
            flops = count_flops(lambda: model.step(pair, model.init_state(2, device))) / 2
        for mode in modes:
            t0 = time.perf_counter()
            try:
                step = make_step(model, mode, batch, device)
                box = {"state": model.init_state(batch, device)}

                def tick() -> None:
                    with torch.inference_mode():
                        _, box["state"] = step(obs, box["state"])

                for _ in range(3):
                    tick()
                synchronize(device)
            except Exception as exc:  # noqa: BLE001 - reported in the table, not hidden
                say(f"{name} stream {mode} batch {batch}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                continue
            warm = time.perf_counter() - t0
            n = ticks if batch == 1 else max(3, ticks // 50)
            samples = []
            for _ in range(n):
                start = time.perf_counter()
                tick()
                synchronize(device)
                samples.append(time.perf_counter() - start)
            ms = np.asarray(samples) * 1e3
            rate = batch / float(np.mean(samples))
            extra = {"p50_ms": round(float(np.percentile(ms, 50)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}
            rows.append(row(device, name, size, "stream", batch, rate, flops, peak, variant=mode, setup_s=round(warm, 1), **extra))
            record([rows[-1]])
            say(format_row(rows[-1]))
    return rows


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def row(device: torch.device, config: str, size: str, mode: str, batch: int, samples_per_s: float, flops: float,
        peak: float, **extra: Any) -> dict[str, Any]:
    achieved = samples_per_s * flops
    return {"device": device_name(device), "config": config, "size": size, "mode": mode, "batch": batch,
            "samples_per_s": round(samples_per_s, 2), "flops_per_sample": int(flops),
            "achieved_tflops": round(achieved / 1e12, 4), "fraction_of_peak": round(achieved / peak, 5),
            "mean_ms": round(1e3 * batch / samples_per_s, 4), **extra}


def format_row(r: dict[str, Any]) -> str:
    lat = f" mean {r['mean_ms']:.3f} ms p50 {r['p50_ms']:.3f} ms p99 {r['p99_ms']:.3f} ms" if "p50_ms" in r else ""
    return (f"{r['config']:<16} {r['size']:<4} {r['mode']:<6} {r.get('variant', ''):<22} batch {r['batch']:>5}: "
            f"{r['samples_per_s']:>10.1f}/s x {r['flops_per_sample'] / 1e9:.3f} GFLOP = {r['achieved_tflops']:.3f} TFLOP/s, "
            f"{100 * r['fraction_of_peak']:.2f} % of peak{lat} (setup {r.get('setup_s', 0):.0f} s)")


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [f"{SECTION}: {meta['device']}", "", f"- command: `{meta['command']}`", f"- date: {meta['date']}", f"- device: {meta['device']}",
             f"- peak: {meta['peak_tflops']:.2f} TFLOP/s measured on a {meta['peak_kind']} in the same run"
             + (f"; rows `+bf16`: against {meta['bf16_peak_tflops']:.2f} TFLOP/s, a {meta['bf16_peak_kind']}"
                if "bf16_peak_tflops" in meta else ""),
             f"- versions: torch {meta.get('torch', torch.__version__)}; training under bf16 autocast on CUDA, float32 on CPU "
             "(bf16 autocast in the `+bf16` rows: the `cpu_bf16` setting); "
             "streaming in float32, inference mode",
             "- FLOPs: `torch.utils.flop_counter` (matrix products and convolutions; element-wise work is not counted), "
             "per training sample (forward + backward of the whole sequence) or per streamed tick", "",
             "| config | size | mode | variant | batch | samples/s | GFLOP/sample | TFLOP/s | % of peak | mean ms | p50 ms | p99 ms |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['config']} | {r['size']} | {r['mode']} | {r.get('variant', '')} | {r['batch']} | "
                     f"{r['samples_per_s']:,.1f} | {r['flops_per_sample'] / 1e9:.3f} | {r['achieved_tflops']:.3f} | "
                     f"{100 * r['fraction_of_peak']:.2f} | {r['mean_ms']:.3f} | {r.get('p50_ms', '')} | {r.get('p99_ms', '')} |")
    return "\n".join(lines) + "\n"


def write_docs(rows: list[dict[str, Any]], meta: dict[str, Any], json_path: Path, md_path: Path) -> None:
    """Replace this device's rows in the JSON list (others kept) and this section of the markdown file."""
    old = json.loads(json_path.read_text()) if json_path.exists() else []
    kept = [r for r in old if r.get("device") != meta["device"]]
    json_path.write_text(json.dumps(kept + [dict(r, date=meta["date"], command=meta["command"]) for r in rows], indent=1) + "\n")
    replace_section(md_path, f"{SECTION}: {meta['device']}", markdown(rows, meta))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="cpu", choices=["tiny", "cpu", "gpu"])
    parser.add_argument("--configs", nargs="*", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--train-batch", type=int, nargs="*", default=None, help="training batch sizes (default: 256 on GPU, 32 on CPU)")
    parser.add_argument("--train-modes", nargs="*", default=["eager", "compile"],
                        help="eager, compile, compile:reduce-overhead, compile:max-autotune-no-cudagraphs; on a CPU "
                             "each may end in +bf16 (the cpu_bf16 training setting), measured against the bf16 peak")
    parser.add_argument("--stream-configs", nargs="*", default=None, help="configs to stream (default: the first of --configs; given with no names: none)")
    parser.add_argument("--stream-batch", type=int, nargs="*", default=None, help="streaming batch sizes (default: 1 and 4096 on GPU, 1 and 256 on CPU)")
    parser.add_argument("--stream-modes", nargs="*", default=None, help="step modes (default: all the device supports)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per measurement")
    parser.add_argument("--ticks", type=int, default=300, help="timed ticks at batch 1")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="small peak matmul (smoke tests)")
    parser.add_argument("--json", default=str(ROOT / "docs" / "benchmarks.json"))
    parser.add_argument("--md", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    say = lambda s: print(s, flush=True)  # noqa: E731
    peak, peak_kind = measure_peak(device, args.quick)
    meta = {"command": "python benchmarks/throughput.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "device": device_name(device),
            "peak_tflops": peak / 1e12, "peak_kind": peak_kind}
    bf16_peak = 0.0
    if not cuda and any(m.endswith("+bf16") for m in args.train_modes):
        bf16_peak, bf16_kind = measure_peak(device, args.quick, cpu_bf16=True)
        meta |= {"bf16_peak_tflops": bf16_peak / 1e12, "bf16_peak_kind": bf16_kind}
    say(f"device {meta['device']}: peak {peak / 1e12:.1f} TFLOP/s ({peak_kind})"
        + (f", bf16 peak {bf16_peak / 1e12:.2f} TFLOP/s" if bf16_peak else ""))
    rows: list[dict[str, Any]] = []

    def record(new: list[dict[str, Any]]) -> None:  # each row written as it comes: a run cut short keeps its rows
        rows.extend(new)
        if not args.no_write and new:
            write_docs(rows, meta, Path(args.json), Path(args.md))

    stream_configs = args.configs[:1] if args.stream_configs is None else args.stream_configs  # given empty: none
    modes = args.stream_modes or (["none", "compile", "graph", "compile+graph"] if cuda else ["none", "compile"])
    for name in args.configs:  # a config's training, then its streaming
        for batch in args.train_batch or ([256] if cuda else [32]):
            try:
                bench_training(name, args.size, batch, device, args.train_modes, args.steps, peak, say, record, bf16_peak)
            except Exception as exc:  # noqa: BLE001 - one failing config must not lose the others' rows
                say(f"{name} train batch {batch}: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
        if name in stream_configs:
            bench_streaming(name, args.size, args.stream_batch or ([1, 4096] if cuda else [1, 256]), device, modes,
                            args.ticks, peak, say, record)
    if not args.no_write:
        say(f"wrote {args.json} and the section of {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
