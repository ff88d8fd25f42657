"""Shared fixtures: every registered configuration at the tiny size (timm-style parametrisation)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import pytest
import torch

from rladder_stream.model.registry import get_config, list_configs

ALL_CONFIGS = sorted(list_configs())

if os.environ.get("PYTEST_XDIST_WORKER"):
    # README's test command spreads the tests over one worker per core (pytest-xdist): one torch thread a worker,
    # so that the workers do not fight over the cores (each test's models are small; threads buy them little)
    torch.set_num_threads(1)


def load_experiment(name: str) -> ModuleType:
    """A script of experiments/ (not a package) as a module, for its tests."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=ALL_CONFIGS)
def tiny_config(request):
    """Each registered configuration, tiny size: adding a config adds it to every test using this."""
    return get_config(request.param, size="tiny")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _torch_threads():
    """A Predictor of a few CPU streams sets torch to one thread, process-wide (streaming.predictor.streaming_threads):
    each test gets back the count it started with, so no test runs on what an earlier one left."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_compute_count(request, monkeypatch):
    """Training runs in tests skip the FLOP count (a forward and backward under FlopCounterMode, and a timed large
    matrix product: a third of a tiny run's time); tests of the count itself are marked ``counts_compute``."""
    if request.node.get_closest_marker("counts_compute") is None:
        from rladder_stream.training.train import TrainingRun

        monkeypatch.setattr(TrainingRun, "measure_compute", lambda self: (0.0, 0.0))


@pytest.fixture
def embedded_data(tmp_path, monkeypatch):
    """No user data folder and an empty cache location: the package falls back to its embedded data."""
    monkeypatch.delenv("RLADDER_STREAM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
