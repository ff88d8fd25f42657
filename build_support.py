"""What the build puts in a wheel besides the packages: ``rladder_stream-gymnasium.pth``, a start-up file
whose one line imports :mod:`rladder_stream.autoregister`, so that Gymnasium finds the environments with no
import (Gymnasium 1.x reads no plugin entry points). pyproject.toml names :class:`BuildPy` as ``build_py``.
"""

from __future__ import annotations

from pathlib import Path

from setuptools.command.build_py import build_py

PTH_FILE = "rladder_stream-gymnasium.pth"
PTH_LINE = "import rladder_stream.autoregister\n"


class BuildPy(build_py):
    """``build_py`` that also writes the start-up file at the root of what gets installed."""

    def run(self) -> None:
        super().run()
        # An editable wheel is made from the install folder (setuptools' editable_wheel), a wheel from build_lib.
        target = self.get_finalized_command("install").install_lib if self.editable_mode else self.build_lib
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / PTH_FILE).write_text(PTH_LINE)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), str(Path(self.build_lib) / PTH_FILE)]
