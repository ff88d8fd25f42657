"""Is an exported model's drift from PyTorch an export error or float32 rounding its recurrence amplifies?

Streams Shapes test images (3 iterations each, back to back) through one checkpoint three ways, one stream: PyTorch
float32, PyTorch float64 and ONNX Runtime (float32), and prints the largest state difference (relative above 1) at
chosen ticks: ONNX against PyTorch float32, and PyTorch float64 against float32. When the second is as large as the
first, the runtimes differ by rounding alone (issue 27: the hour runs' seed 2).

    RLADDER_STREAM_DATA=../shared/data python experiments/onnx_drift.py CHECKPOINT [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from rladder_stream import load_model
from rladder_stream.envs.shapes import episode_source
from rladder_stream.export import OnnxPredictor, export_onnx, state_distance

REPORTED_TICKS = (1, 2, 3, 6, 11, 21, 41, 61, 90)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="seed of the RTagger's random initial masks")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    model = load_model(args.checkpoint).eval()
    model64 = copy.deepcopy(model).double()
    images = episode_source("test").episodes(None, 30, list(range(30)))["frames"][:, :3]
    frames = images.reshape(-1, *model.config.obs_shape).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        onnx = OnnxPredictor(export_onnx(model, Path(folder) / "model.onnx"), n_streams=1,
                             providers=["CPUExecutionProvider"])
        state32 = model.init_state(1)  # the RTagger's random initial masks: every runtime starts from this draw
        state64 = {k: v.double() for k, v in state32.items()}
        onnx.state = {k: v.numpy() for k, v in state32.items()}
        for tick, frame in enumerate(frames, start=1):
            obs = torch.from_numpy(frame)[None]
            with torch.no_grad():
                _, state32 = model.step(obs, state32)
                _, state64 = model64.step(obs.double(), state64)
            onnx.step(frame)
            if tick in REPORTED_TICKS:
                print(f"tick {tick}: onnx vs torch float32 {state_distance(onnx.state, state32):.2e}   "
                      f"torch float64 vs float32 {state_distance({k: v.numpy() for k, v in state64.items()}, state32):.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
