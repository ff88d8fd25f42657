"""The installed package, as a user gets it: a fresh virtual environment with the repository installed (a wheel
built from it) beside PyPI's ``envs`` and ``export`` distributions, used from a folder that has ``envs/`` and
``export/`` folders of its own. Needs the package index; ``-m slow``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"  # the pinned CPU build of README's install line


def run(args: list[str], cwd: Path, timeout: float = 1800) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RLADDER_STREAM_DATA")}
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_installed_beside_pypis_envs_and_export(tmp_path):
    run([sys.executable, "-m", "venv", str(tmp_path / "venv")], tmp_path)
    bin_dir = tmp_path / "venv" / ("Scripts" if os.name == "nt" else "bin")
    python = str(bin_dir / "python")
    run([python, "-m", "pip", "install", "-q", TORCH, str(ROOT), "envs", "export"], tmp_path)
    work = tmp_path / "work"  # a user's folder with its own envs/ and export/ packages
    for name in ("envs", "export"):
        (work / name).mkdir(parents=True)
        (work / name / "__init__.py").write_text("MINE = True\n")

    # the other distributions are there, and are not ours
    out = run([python, "-c", "import importlib.metadata as m; print(m.version('envs'), m.version('export'))"], work)
    assert len(out.split()) == 2

    out = run([str(bin_dir / "rladder-stream"), "demo", "--episodes", "1", "--out", str(tmp_path / "demo")], work, timeout=600)
    assert "classification error" in out and (tmp_path / "demo" / "demo.png").is_file()

    out = run([python, "-c", "import gymnasium as gym\n"
               "env = gym.make('rladder_stream/OccludedMovingMNIST-v0', split='test')\n"
               "obs, info = env.reset(seed=0)\n"
               "vec = gym.make_vec('rladder_stream/PolyphonicMusic-v0', num_envs=2, dataset='embedded')\n"
               "print(obs.shape, vec.reset(seed=0)[0].shape)"], work)
    assert out.split() == ["(32,", "32)", "(2,", "88)"]

    out = run([python, "-c", "from rladder_stream import OnnxPredictor, Predictor, export_onnx, get_config, load_predictor\n"
               "import rladder_stream.envs, rladder_stream.export, envs, export\n"
               "print(OnnxPredictor.__module__, rladder_stream.envs.__file__, envs.MINE, export.MINE)"], work)
    module, envs_file, mine, also_mine = out.split()
    assert module == "rladder_stream.export.runtime" and "site-packages" in envs_file and mine == also_mine == "True"
