"""Environment throughput: ticks/s single and vectorised, against one training step of the default model.

    python benchmarks/envs.py            # prints the table and writes it into docs/benchmarks.md

Data must not be the bottleneck of training: the last column is how many times faster the environment's
batched generator makes training sequences than the default model (``omm-rladder``, cpu size) consumes them
in a training step on this machine. Uses whatever data resolves (``$RLADDER_STREAM_DATA`` or embedded).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from markdown_sections import replace_section  # benchmarks/, beside this script

import rladder_stream.envs  # noqa: F401  (registers the environments)
from rladder_stream.model.registry import build_model, get_config
from rladder_stream.training.losses import ladder_costs
from rladder_stream.training.tasks import OccludedMNISTTask

DIGIT_ENVS = {
    "OccludedMovingMNIST-v0": {"split": "train"},
    "MovingMNIST-v0": {"split": "train"},
    "TexturedMNIST-v0": {"split": "train"},
}
MUSIC_ENV = ("PolyphonicMusic-v0", {"dataset": "embedded", "split": "train"})
SECTION = "## Environments: ticks per second"


def _random_action(space: gym.Space, rng: np.random.Generator):
    """A valid forecast (and class beliefs where the space has them) without the cost of space.sample()."""
    if isinstance(space, gym.spaces.Dict):
        return {k: _random_action(s, rng) for k, s in space.spaces.items()}
    return np.full(space.shape, 0.5, dtype=np.float32)


def single_env_ticks_per_s(env_id: str, kwargs: dict, seconds: float) -> float:
    env = gym.make(env_id, **kwargs)
    rng = np.random.default_rng(0)
    action = _random_action(env.action_space, rng)
    env.reset(seed=0)
    ticks, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(action)
        ticks += 1
        if terminated or truncated:
            env.reset()
    return ticks / (time.perf_counter() - start)


def vector_env_ticks_per_s(env_id: str, kwargs: dict, num_envs: int, seconds: float) -> float:
    env = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
    action = _random_action(env.action_space, np.random.default_rng(0))
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        env.step(action)
        steps += 1
    env.close()
    return steps * num_envs / (time.perf_counter() - start)


def generator_sequences_per_s(batch: int, seconds: float) -> float:
    task = OccludedMNISTTask(get_config("omm-rladder", size="cpu"))
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        task.train_batch(np.random.default_rng(n), batch)
        n += 1
    return n * batch / (time.perf_counter() - start)


def training_sequences_per_s(batch: int, steps: int) -> float:
    cfg = get_config("omm-rladder", size="cpu")
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    task = OccludedMNISTTask(cfg)
    data = task.train_batch(np.random.default_rng(0), batch)
    elapsed = 0.0
    for i in range(steps + 1):
        start = time.perf_counter()
        outputs, _ = model(data["inputs"])
        loss = ladder_costs(outputs, data, cfg)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first step warms up
            elapsed += time.perf_counter() - start
    return steps * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per cell")
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for the training step (default 1: on a shared 2-core machine more threads "
                             "stall when another process holds a core; the generators are single-threaded NumPy)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for name, kwargs in list(DIGIT_ENVS.items()) + [MUSIC_ENV]:
        env_id = f"rladder_stream/{name}"
        single = single_env_ticks_per_s(env_id, kwargs, args.seconds)
        spec = gym.spec(env_id)
        vec = vector_env_ticks_per_s(env_id, kwargs, args.num_envs, args.seconds) if spec.vector_entry_point else None
        rows.append((name, single, vec))
    gen = generator_sequences_per_s(256, args.seconds)
    train = training_sequences_per_s(args.train_batch, 3)
    env_ticks_per_seq = 5  # one Occluded Moving MNIST training sequence = 5 observed ticks

    lines = [
        "| environment | single env, ticks/s | vectorised x%d, ticks/s |" % args.num_envs,
        "|---|---:|---:|",
    ]
    for name, single, vec in rows:
        lines.append(f"| {name} | {single:,.0f} | {'n/a (no vector env)' if vec is None else f'{vec:,.0f}'} |")
    occluded_vec = rows[0][2] / env_ticks_per_seq
    lines += [
        "",
        f"Training data vs training (Occluded Moving MNIST, omm-rladder cpu size, batch {args.train_batch}):",
        "",
        "| source | sequences/s | ratio to the training step |",
        "|---|---:|---:|",
        f"| batched generator (batch 256), as training draws it | {gen:,.0f} | {gen / train:,.0f}x |",
        f"| vectorised environment x{args.num_envs} | {occluded_vec:,.0f} | {occluded_vec / train:,.0f}x |",
        f"| one training step (forward + backward + AdamW) | {train:,.1f} | 1x |",
    ]
    hardware = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    table = "\n".join(lines)
    print(table)
    if args.no_write:
        return
    section = (
        f"{SECTION}\n\nMeasured {datetime.date.today()} with `python benchmarks/envs.py` "
        f"(--seconds {args.seconds} --threads {args.threads}) on {hardware}; data: whatever resolved (see docs/reproducing.md, Data).\n\n{table}\n"
    )
    path = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
    replace_section(path, SECTION, section, "# Benchmarks\n\nEach section is written by the script it names.\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
