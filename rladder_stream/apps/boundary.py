"""Where a user's input enters the commands (docs/design.md#one-error-surface): making an environment,
checking that a model fits it, and the one-line report of a user error.

:func:`user_errors` lists what the command line reports as one ``error: ...`` line: the project's own errors
(:mod:`rladder_stream.errors`), the data layer's and the operating system's "no such file" family.
"""

from __future__ import annotations

import sys
from typing import Any

from ..errors import RladderStreamError, TrainingDiverged, UsageError, one_line


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types the command line reports as one line: the project's own, the data layer's and
    the operating system's "no such file" family."""
    from rladder_stream.envs.data.midi import MidiError
    from rladder_stream.envs.data.mnist import IdxFormatError
    from rladder_stream.envs.data.paths import ChecksumError, DataNotFoundError

    return (RladderStreamError, DataNotFoundError, ChecksumError, IdxFormatError, MidiError, TrainingDiverged,
            FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


NAMESPACE = "rladder_stream"  # the Gymnasium namespace of this package's environments


def own_environments() -> list[str]:
    """The ids of this package's environments, without their namespace."""
    import gymnasium as gym

    import rladder_stream.envs  # noqa: F401  (registers the environments)

    return sorted(name.split("/", 1)[1] for name in gym.registry if name.startswith(f"{NAMESPACE}/"))


def make_env(env_id: str, **kwargs: Any) -> Any:
    """``gym.make(env_id, **kwargs)`` for an environment of this package, with the user's mistakes (another
    package's id, unknown id, bad argument or value) as a :class:`UsageError` naming the environment."""
    import gymnasium as gym

    known = ", ".join(own_environments())
    if not env_id.startswith(f"{NAMESPACE}/"):  # another package's (CartPole-v1): its observations are not frames
        raise UsageError(f"{env_id!r} is not an rladder-stream environment: rladder-stream streams its own "
                         f"environments, {known}")
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.Error as exc:  # unknown id or version
        raise UsageError(f"unknown environment {env_id!r} ({one_line(exc)}); this package's: {known}") from exc
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
