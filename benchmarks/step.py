"""One tick of the RLadder: eager PyTorch vs ``torch.compile`` vs ONNX Runtime, side by side.

Measures, in one run and on the same model:

* per-tick latency at batch 1 (p50, p99 over individual ticks), for the raw step (``model.step`` /
  ``session.run`` with the state fed back) and for the streaming wrappers (``Predictor.step`` /
  ``OnnxPredictor.step``: input checks and output post-processing included);
* throughput at batch 1024 (ticks per second summed over the streams).

The runtimes take turns in rounds (eager, compiled, ONNX Runtime, eager, ...) so that load from other
processes falls on all of them alike; the machine's load average is recorded with the results.

Threads: one intra-op thread per library by default (``--threads``). With each library's own default
(``--threads 0``: torch and onnxruntime each use both cores) on a 2-core machine that other processes
also use, PyTorch's thread pool collapses: a run with the load average at 1-3.6 measured eager PyTorch
at 336 ms per tick at batch 1 (2.2 ms in a calmer run) while ONNX Runtime stayed near 1 ms. One thread
each measures the runtimes rather than the scheduler.
Then it prints a table and writes it, with the command, hardware, versions, thread counts and date, as the
section "## One tick: PyTorch vs ONNX Runtime" of ``docs/benchmarks.md`` (other sections are kept).

    python benchmarks/step.py                          # omm-rladder, size cpu (about 2-3 minutes on 2 cores)
    python benchmarks/step.py --config music-rladder --size tiny --no-compile --no-write
    python benchmarks/step.py --checkpoint model.pt
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np

SECTION = "## One tick: PyTorch vs ONNX Runtime"
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------ timing helpers


def _percentiles_ms(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


class Runner:
    """One runtime at one batch size: ``tick()`` advances its own state by one tick."""

    def __init__(self, name: str, tick: Callable[[], None]):
        self.name, self.tick, self.samples = name, tick, []
        self.error: str | None = None

    def run(self, n: int) -> None:
        if self.error:
            return
        try:
            for _ in range(n):
                start = time.perf_counter()
                self.tick()
                self.samples.append(time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - reported in the table, not hidden
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


def _rounds(runners: list[Runner], rounds: int, per_round: int) -> None:
    for _ in range(rounds):
        for r in runners:
            r.run(per_round)


# ------------------------------------------------------------------------------ environment facts


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        name = fields.get("Model name", "").strip()
        cpus = fields.get("CPU(s)", "").strip()
        flags = fields.get("Flags", "")
        simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
        return f"{name}, {cpus} CPU(s), {simd}"
    except (OSError, subprocess.SubprocessError, ValueError):
        return platform.processor() or platform.machine()


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# ------------------------------------------------------------------------------ the benchmark


def build(args: argparse.Namespace):
    import torch

    from rladder_stream import build_model, get_config, load_model

    if args.checkpoint:
        model = load_model(args.checkpoint, "cpu")
        source = f"checkpoint {args.checkpoint}"
    else:
        torch.manual_seed(0)
        model = build_model(get_config(args.config, size=args.size)).eval()
        source = f"{args.config} (size {args.size}, random weights)"
    return model.float().eval(), source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="omm-rladder", help="registered configuration (default omm-rladder)")
    parser.add_argument("--size", default="cpu", choices=["tiny", "cpu", "gpu"], help="configuration size (default cpu)")
    parser.add_argument("--checkpoint", default=None, help="benchmark a checkpoint's model instead of --config/--size")
    parser.add_argument("--ticks", type=int, default=600, help="timed ticks per runtime at batch 1 (default 600)")
    parser.add_argument("--batch", type=int, default=1024, help="batch for the throughput measurement (default 1024)")
    parser.add_argument("--big-ticks", type=int, default=4, help="timed ticks per runtime at the large batch (default 4)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads for torch and onnxruntime (default 1; 0: each library's own default, "
                             "which on a shared 2-core machine can collapse PyTorch's latency, see the module docstring)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"), help="markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print only; do not touch the markdown file")
    args = parser.parse_args(argv)

    import onnxruntime as ort
    import torch

    from rladder_stream.export.onnx import export_onnx
    from rladder_stream.export.runtime import OnnxPredictor
    from rladder_stream import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    session_options = ort.SessionOptions()
    if args.threads:
        session_options.intra_op_num_threads = args.threads
    started = time.perf_counter()
    load_before = _load()
    model, source = build(args)
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(0)
    tmp = tempfile.TemporaryDirectory()
    t0 = time.perf_counter()
    onnx_path = export_onnx(model, Path(tmp.name) / "step.onnx")
    export_s = time.perf_counter() - t0
    print(f"model: {source}, {params:,d} parameters; ONNX export {export_s:.1f} s", flush=True)

    compile_notes: list[str] = []

    def torch_runner(name: str, batch: int, fn) -> Runner:
        obs = torch.from_numpy(rng.random((batch, *cfg.obs_shape), dtype=np.float32))
        box = {"state": model.init_state(batch)}

        def tick() -> None:
            with torch.inference_mode():
                _, box["state"] = fn(obs, box["state"])

        return Runner(name, tick)

    def ort_runner(name: str, batch: int) -> Runner:
        """The raw tick: ``session.run`` with the state fed back, without the predictor's checks."""
        predictor = OnnxPredictor(onnx_path, n_streams=batch, providers=["CPUExecutionProvider"], session_options=session_options)
        info, session = predictor.info, predictor.session
        fetch = list(info.output_names) + [info.state_outputs[n] for n in info.state_shapes]
        feeds = {"obs": rng.random((batch, *cfg.obs_shape), dtype=np.float32)}
        feeds |= {info.state_inputs[n]: v for n, v in predictor.state.items()}
        k = len(info.output_names)

        def tick() -> None:
            values = session.run(fetch, feeds)
            feeds.update({info.state_inputs[n]: v for n, v in zip(info.state_shapes, values[k:])})

        return Runner(name, tick)

    compiled = None
    if not args.no_compile:
        compiled = torch.compile(model.step)
        try:
            from torch._inductor.runtime.cache_dir_utils import cache_dir

            cache = Path(cache_dir())
            warm = cache.is_dir() and any(cache.iterdir())
            compile_notes.append(f"inductor cache {cache} {'not empty before the run (an entry for the same graph and settings shortens the compile)' if warm else 'empty (cold compile)'}")
        except Exception:  # noqa: BLE001 - informational only
            pass

    def compile_first(batch: int) -> Runner | None:
        """Compile (and time it) outside the timed loop; a failure is reported, not hidden."""
        if compiled is None:
            return None
        runner = torch_runner("PyTorch, torch.compile (inductor)", batch, compiled)
        t = time.perf_counter()
        runner.run(1)
        runner.samples.clear()
        if runner.error:
            compile_notes.append(f"batch {batch}: torch.compile failed: {runner.error}")
        else:
            compile_notes.append(f"batch {batch}: compiled in {time.perf_counter() - t:.0f} s")
        print(compile_notes[-1], flush=True)
        return runner

    # ---- batch 1: raw step
    eager1 = torch_runner("PyTorch eager", 1, model.step)
    comp1 = compile_first(1)
    ort1 = ort_runner("ONNX Runtime (CPU provider)", 1)
    runners1 = [r for r in (eager1, comp1, ort1) if r is not None]
    _rounds(runners1, 1, 20)  # warm-up
    for r in runners1:
        r.samples.clear()
    _rounds(runners1, 6, max(1, args.ticks // 6))
    print("batch 1 done", flush=True)

    # ---- batch 1: the streaming wrappers (checks and post-processing included)
    torch_pred = Predictor(model)
    onnx_pred = OnnxPredictor(onnx_path, providers=["CPUExecutionProvider"], session_options=session_options)
    frame = rng.random(cfg.obs_shape, dtype=np.float32)
    wrap_t = Runner("Predictor.step", lambda: torch_pred.step(frame))
    wrap_o = Runner("OnnxPredictor.step", lambda: onnx_pred.step(frame))
    _rounds([wrap_t, wrap_o], 1, 20)
    wrap_t.samples.clear()
    wrap_o.samples.clear()
    _rounds([wrap_t, wrap_o], 6, max(1, args.ticks // 12))

    # ---- large batch: throughput
    big = args.batch
    eagerB = torch_runner("PyTorch eager", big, model.step)
    compB = compile_first(big)
    ortB = ort_runner("ONNX Runtime (CPU provider)", big)
    runnersB = [r for r in (eagerB, compB, ortB) if r is not None]
    _rounds(runnersB, 1, 1)  # warm-up
    for r in runnersB:
        r.samples.clear()
    _rounds(runnersB, args.big_ticks, 1)
    print(f"batch {big} done", flush=True)
    elapsed = time.perf_counter() - started
    load_after = _load()

    # ---- table
    def cell_latency(r: Runner | None) -> tuple[str, str]:
        if r is None:
            return "skipped", "skipped"
        if r.error or not r.samples:
            return "failed", "failed"
        p50, p99 = _percentiles_ms(r.samples)
        return f"{p50:.2f}", f"{p99:.2f}"

    def cell_throughput(r: Runner | None) -> str:
        if r is None:
            return "skipped"
        if r.error or not r.samples:
            return "failed"
        return f"{big * len(r.samples) / sum(r.samples):,.0f}"

    eager_p50 = _percentiles_ms(eager1.samples)[0] if eager1.samples else float("nan")
    eager_tp = big * len(eagerB.samples) / sum(eagerB.samples) if eagerB.samples else float("nan")

    def speed(r: Runner | None, big_batch: bool, baseline_p50: float | None = None) -> str:
        if r is None or r.error or not r.samples:
            return "–"
        if big_batch:
            return f"{(big * len(r.samples) / sum(r.samples)) / eager_tp:.2f}x"
        return f"{(baseline_p50 or eager_p50) / _percentiles_ms(r.samples)[0]:.2f}x"

    rows = [
        "| runtime | batch 1 p50 (ms) | batch 1 p99 (ms) | vs eager at batch 1 (p50) | "
        f"batch {big} (ticks/s, all streams) | vs eager at batch {big} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r1, rB in ((eager1, eagerB), (comp1, compB), (ort1, ortB)):
        if r1 is None:
            rows.append("| PyTorch, torch.compile (inductor): one tick (raw step) | skipped (--no-compile) | | | | |")
            continue
        p50, p99 = cell_latency(r1)
        rows.append(f"| {r1.name}: one tick (raw step) | {p50} | {p99} | {speed(r1, False)} | {cell_throughput(rB)} | {speed(rB, True)} |")
    wrap_p50 = _percentiles_ms(wrap_t.samples)[0] if wrap_t.samples else float("nan")
    for w in (wrap_t, wrap_o):
        p50, p99 = cell_latency(w)
        rows.append(f"| {w.name} (checks + post-processing) | {p50} | {p99} | {speed(w, False, wrap_p50)} vs Predictor.step | | |")
    table = "\n".join(rows)

    ort_threads = (f"onnxruntime intra-op {args.threads}" if args.threads
                   else "onnxruntime default (intra-op = physical cores; SessionOptions.intra_op_num_threads=0)")
    facts = [
        f"- command: `{' '.join(shlex.quote(a) for a in ['python', 'benchmarks/step.py', *(argv if argv is not None else sys.argv[1:])])}`",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- model: {source}, {params:,d} parameters, observation {cfg.obs_shape}; "
        f"ONNX opset {_opset(onnx_path)}, export {export_s:.1f} s",
        f"- hardware: {_cpu_model()}; {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- versions: torch {torch.__version__}, onnxruntime {ort.__version__} (providers available: "
        f"{', '.join(ort.get_available_providers())}; used: CPUExecutionProvider), numpy {np.__version__}",
        f"- threads: torch intra-op {torch.get_num_threads()}, interop {torch.get_num_interop_threads()}; "
        f"{ort_threads}"
        + (" (one thread each: with both libraries' default pools on this shared 2-core machine, PyTorch's latency "
           "collapsed by ~100x whenever another process was busy; see the docstring of benchmarks/step.py)" if args.threads == 1 else ""),
        f"- timing: batch 1 over {len(eager1.samples)} ticks per runtime, batch {big} over {len(eagerB.samples)} ticks, "
        f"runtimes in alternating rounds after warm-up; state carried tick to tick; float32; inference mode",
        f"- torch.compile: {'; '.join(compile_notes) if compile_notes else 'skipped'}",
        f"- load average (1/5/15 min) before: {load_before}; after: {load_after} (other processes share this machine)",
        f"- total run time: {elapsed:.0f} s",
    ]
    section = f"{SECTION}\n\n" + "\n".join(facts) + "\n\n" + table + "\n"
    print()
    print(section)
    if not args.no_write:
        write_section(Path(args.out), section)
        print(f"updated {args.out}")
    tmp.cleanup()
    return 0


def _opset(path: Path) -> int:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section in ``path`` (or append it); other sections stay as they are."""
    text = path.read_text() if path.is_file() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # pragma: no cover
        traceback.print_exc()
        sys.exit(130)
