"""Errors a user can cause and fix (a bad file, id, setting or folder), kept apart from bugs
(docs/design.md#one-error-surface).

The command line (:mod:`rladder_stream.apps.boundary`) prints any of them as one ``error: ...`` line and exits
with status 1; anything else is a bug and keeps its traceback. Set ``RLADDER_STREAM_DEBUG=1`` to see the
traceback of a user error too.

Library code raises these at the boundary where a user's input enters (loading a file, making an
environment, parsing a setting), so a ``ValueError`` from deep inside stays a bug report.
"""

from __future__ import annotations

import os
from pathlib import Path


class RladderStreamError(Exception):
    """Base of the errors a user causes and can fix; the message says what is wrong and, where it can, what to do."""


class UsageError(RladderStreamError, ValueError):
    """A bad value or combination of values: an unknown id, a bad split or setting, a model that does not fit
    the environment, a run folder of another configuration."""


class ModelFileError(RladderStreamError, ValueError):
    """A model file (checkpoint or ONNX) that cannot be used: missing, truncated, corrupted, tampered; names the file."""

    @classmethod
    def check_path(cls, path: str | os.PathLike, kind: str, name: str | None = None) -> Path:
        """``path`` as a ``Path`` when it names a file; else this error, naming it as ``name`` (default: the path):
        ``no such <kind> file``, or, for a folder, which model files it holds (a run folder's ``last.pt``)."""
        path = Path(path)
        name = str(path) if name is None else name
        if path.is_dir():
            held = sorted(p.name for p in path.iterdir() if p.suffix in (".pt", ".onnx") and p.is_file())
            hint = f"; it holds {', '.join(held[:4])}: name one of them" if held else ""
            raise cls(f"{name} is a folder, not a model file{hint}")
        if not path.is_file():
            raise cls(f"{name}: no such {kind} file")
        return path


class TrainingDiverged(FloatingPointError):
    """The training cost became non-finite; raised before that step changes anything (weights, optimiser,
    checkpoint), so the run's folder keeps its last good checkpoint."""

    def __init__(self, step: int, costs: dict[str, float], out: str | None):
        self.step, self.costs = step, costs
        shown = ", ".join(f"{k}={v:.4g}" for k, v in costs.items())
        super().__init__(f"training diverged at step {step + 1}: {shown}; nothing of that step was applied"
                         + (f", {out}/last.pt holds the last checkpoint" if out else ""))


class TrainingInterrupted(Exception):
    """Training stopped on SIGINT (Ctrl-C) or SIGTERM after the step in hand, with ``last.pt`` written: running the
    same command again resumes exactly there. ``exit_status`` is the shell's for that signal (130, 143)."""

    def __init__(self, step: int, total: int, out: str, signum: int):
        self.step, self.total, self.out, self.signum = step, total, out, signum
        self.exit_status = 128 + signum
        super().__init__(f"interrupted at step {step}/{total}; {out}/last.pt holds it: run the same command again to "
                         "resume from there")


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a ``KeyError`` without its quotes)."""
    text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    text = " ".join(str(text).split())
    return text or type(exc).__name__
