"""Errors a user can cause and fix (a bad file, id, setting or folder), kept apart from bugs.

The command line prints any of :func:`user_errors` as one ``error: ...`` line and exits with status 1;
anything else is a bug and keeps its traceback. Set ``RLADDER_STREAM_DEBUG=1`` to see the traceback of a
user error too.

Library code raises these at the boundary where a user's input enters (loading a file, making an
environment, parsing a setting), so a ``ValueError`` from deep inside stays a bug report.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn


class RladderStreamError(Exception):
    """Base of the errors a user causes and can fix; the message says what is wrong and, where it can, what to do."""


class UsageError(RladderStreamError, ValueError):
    """A bad value or combination of values: an unknown id, a bad split or setting, a model that does not fit
    the environment, a run folder of another configuration."""


class ModelFileError(RladderStreamError, ValueError):
    """A model file (checkpoint or ONNX) that cannot be used: missing, truncated, corrupted, tampered; names the file."""


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


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types the command line reports as one line: the project's own, the data layer's and
    the operating system's "no such file" family."""
    from rladder_stream.envs.data.midi import MidiError
    from rladder_stream.envs.data.mnist import IdxFormatError
    from rladder_stream.envs.data.paths import ChecksumError, DataNotFoundError

    return (RladderStreamError, DataNotFoundError, ChecksumError, IdxFormatError, MidiError, TrainingDiverged,
            FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (a ``KeyError`` without its quotes)."""
    text = exc.args[0] if isinstance(exc, KeyError) and len(exc.args) == 1 else str(exc)
    text = " ".join(str(text).split())
    return text or type(exc).__name__


class OneLineArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line, ``error: ... (see 'PROG --help')``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {one_line(Exception(message))} (see '{self.prog} --help')\n")


def make_env(env_id: str, **kwargs: Any) -> Any:
    """``gym.make(env_id, **kwargs)`` with the user's mistakes (unknown id, bad argument or value) as a
    :class:`UsageError` naming the environment."""
    import gymnasium as gym

    import rladder_stream.envs  # noqa: F401  (registers the environments)

    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:  # unknown id or version
        known = sorted(name.split("/", 1)[1] for name in gym.registry if name.startswith("rladder_stream/"))
        raise UsageError(f"unknown environment {env_id!r} ({one_line(exc)}); this package's: {', '.join(known)}") from exc
    except (ValueError, TypeError) as exc:  # a bad split, dataset, index or keyword
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise UsageError(f"environment {env_id} ({shown}): {one_line(exc)}") from exc


def check_fits(predictor: Any, env: Any, model: str) -> None:
    """Refuse a predictor whose observation shape differs from the environment's, before any tick runs."""
    want = tuple(getattr(predictor, "obs_shape", ()) or ())
    have = tuple(env.observation_space.shape or ())
    if want and want != have:
        env_id = env.spec.id if getattr(env, "spec", None) is not None else type(env.unwrapped).__name__
        raise UsageError(f"{model} takes observations of shape {want}, but {env_id} gives {have}: "
                         "choose a model trained for this environment")


def report(exc: BaseException, stream: Any = None) -> int:
    """Print ``error: <message>`` for a user error; returns the exit status (1)."""
    print(f"error: {one_line(exc)}", file=stream or sys.stderr)
    return 1
