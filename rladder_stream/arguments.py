"""The argument parser of every command (the command line's, training's, each table's): ``argparse`` whose
errors are one line, as every user error is (docs/design.md#one-error-surface). A base module, so that each room
that has a command can use it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from .errors import one_line


class OneLineArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line, ``error: ... (see 'PROG --help')``, exit status 2."""

    def _print_message(self, message: str, file: Any = None) -> None:
        """As argparse's, but a pipe closed early (``--help | head``) is not swallowed: the command line's entry point
        ends quietly with the status of every other command's output into such a pipe."""
        if message:
            (file or sys.stderr).write(message)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {one_line(Exception(message))} (see '{self.prog} --help')\n")
