"""Check on a GPU that each task's torch renderer gives exactly the batches of the environment's numpy
generator (tests/test_train.py::test_the_renderers_draw_the_generators_episodes checks it on the CPU; device
images have no pytest). Prints one line per task and exits 1 on any difference.

    python3 benchmarks/check_renderers.py [--device cuda]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from rladder_stream.model.registry import get_config
from rladder_stream.training.tasks import TASKS, task_for
from rladder_stream.training.train import TrainConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(parser.parse_args().device)
    failed = False
    for name in ("omm-rladder", "mmnist-rtagger", "tmnist-rtagger"):
        task = TASKS[task_for(get_config(name, size="tiny"))](get_config(name, size="tiny"), TrainConfig(model=name, size="tiny"))
        worst = 0.0
        for seed in range(3):
            reference = task.train_batch(np.random.default_rng([seed, 3]), 12)
            rendered = task.train_batch(np.random.default_rng([seed, 3]), 12, device) if task.renders_on(device) else reference
            for k in reference:
                worst = max(worst, float((rendered[k].cpu().double() - reference[k].double()).abs().max()))
        rendered_on = device if task.renders_on(device) else "cpu (not rendered on this device)"
        print(f"{name}: renderer on {rendered_on} vs numpy generator, 3 seeds: largest difference {worst:g}")
        failed |= worst != 0.0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
