"""Registers the environments with Gymnasium as soon as Gymnasium is imported, so that
``gym.make("rladder_stream/OccludedMovingMNIST-v0")`` needs no other import.

Gymnasium 1.x reads no plugin entry points, so the installed package carries a start-up file,
``rladder_stream-gymnasium.pth`` in site-packages (written by ``build_support.py``), whose one line imports this
module. Until Gymnasium is imported nothing else happens: the module puts a finder on ``sys.meta_path`` that
waits for ``gymnasium`` and, once Gymnasium has finished loading, imports :mod:`rladder_stream.envs` (string entry
points: no environment module is loaded). Where Gymnasium is not installed, nothing happens at all.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from typing import Any

ENVS_PACKAGE = "rladder_stream.envs"


class RegisteringLoader(importlib.abc.Loader):
    """Gymnasium's own loader, which imports :mod:`rladder_stream.envs` once Gymnasium's package has loaded."""

    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        importlib.import_module(ENVS_PACKAGE)

    def __getattr__(self, name: str) -> Any:  # resource readers and the like: Gymnasium's loader answers
        return getattr(self.loader, name)


class GymnasiumWatcher(importlib.abc.MetaPathFinder):
    """Steps aside at the first import of ``gymnasium``, handing it a :class:`RegisteringLoader`."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "gymnasium":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = RegisteringLoader(spec.loader)
        return spec


def install() -> None:
    """Register now if Gymnasium is already loaded, else when it is imported."""
    if "gymnasium" in sys.modules:
        importlib.import_module(ENVS_PACKAGE)
    elif not any(isinstance(finder, GymnasiumWatcher) for finder in sys.meta_path):
        sys.meta_path.insert(0, GymnasiumWatcher())


install()
