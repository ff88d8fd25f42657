"""What an installed package offers besides its API: ``python -m rladder_stream``, ``--version``, ``py.typed``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import rladder_stream

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_python_dash_m_runs_the_command_line_and_version_is_the_packages():
    done = subprocess.run([sys.executable, "-m", "rladder_stream", "--version"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"rladder-stream {rladder_stream.__version__}"
    metadata = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert metadata["project"]["version"] == rladder_stream.__version__


@pytest.mark.parametrize("package, folder", [("rladder_stream", "rladder_stream"), ("rladder_stream.envs", "envs"),
                                             ("rladder_stream.export", "export")])
def test_every_package_is_marked_typed_and_ships_the_marker(package, folder):
    assert (ROOT / folder / "py.typed").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data[package]


def test_the_wheel_lists_every_package_folder():
    """pyproject's ``packages`` names every folder with an ``__init__.py`` (a new room would otherwise be missing
    from the wheel, while an editable install still found it), and ``package-dir`` maps envs and export."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"rladder_stream.envs": "envs", "rladder_stream.export": "export"}
    roots = {"rladder_stream": ROOT / "rladder_stream",
             **{name: ROOT / folder for name, folder in setuptools["package-dir"].items()}}
    found = set()
    for name, folder in roots.items():
        for init in folder.rglob("__init__.py"):
            parts = init.parent.relative_to(folder).parts
            if all((folder.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(len(parts) + 1)):
                found.add(".".join((name, *parts)))
    assert sorted(setuptools["packages"]) == sorted(found)
