"""What a run folder remembers between invocations of ``train``: guards for resuming, and the log of a run
that was interrupted.

A run folder's ``last.pt`` keeps the settings it was trained with. Resuming with other settings would
silently give a run that is neither the old one nor the new one, so :func:`check_resume` refuses it and
lists the differences (``resume_with_changes=true`` / ``--resume-with-changes`` accepts them).
:func:`resumed_history` drops the ``log.csv`` rows an interrupted run wrote after its last checkpoint (the
resumed run writes them again) and gives back the validation history up to that checkpoint, so
``results.json`` keeps the whole of it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any, Mapping

from ..errors import UsageError
from ..fileio import atomic_write_bytes

#: Settings that may change between invocations without changing what is trained: where things go, how often
#: they are logged or saved, when to stop, the evaluation batch size and where the data files are found.
FREE_TO_CHANGE = frozenset({"out", "log_every", "checkpoint_every", "checkpoint_minutes", "stop_after_steps", "time_budget_s",
                            "step_budget", "eval_batch_size", "data_dir", "resume_with_changes"})


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def differences(saved: Mapping[str, Any], now: Mapping[str, Any], ignore: frozenset[str] = frozenset()) -> dict[str, tuple[Any, Any]]:
    """``key -> (saved value, value now)`` for every key whose values differ (JSON-normalised)."""
    saved, now = _plain(dict(saved)), _plain(dict(now))
    return {k: (saved.get(k), now.get(k)) for k in sorted(set(saved) | set(now)) if k not in ignore and saved.get(k) != now.get(k)}


def _listed(diff: Mapping[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())


def added_at_default(saved_settings: Mapping[str, Any], settings: Any) -> frozenset[str]:
    """The settings (fields of the dataclass ``settings``) that ``saved_settings`` lacks and that have their
    default now: added to the package after that run was saved, they count as unchanged."""
    return frozenset(f.name for f in dataclasses.fields(settings) if f.name not in saved_settings
                     and f.default is not dataclasses.MISSING and _plain(getattr(settings, f.name)) == _plain(f.default))


def check_resume(last: Path, saved_model: Any, model: Any, saved_settings: Mapping[str, Any] | None, settings: Any,
                 log: Any = print) -> None:
    """Refuse to resume ``last`` with another model configuration (always) or other training settings (unless
    ``settings.resume_with_changes``); the message lists every difference."""
    model_diff = differences(saved_model.to_dict(), model.to_dict())
    if model_diff:
        raise UsageError(f"{last} holds a different model configuration ({_listed(model_diff)}); "
                         "use another --out or delete it")
    if saved_settings is None:  # a checkpoint written before settings were kept: nothing to compare
        return
    now = dataclasses.asdict(settings)
    diff = differences(saved_settings, now, FREE_TO_CHANGE | added_at_default(saved_settings, settings))
    if not diff:
        return
    if getattr(settings, "resume_with_changes", False):
        log(f"resuming {last} with changed settings ({_listed(diff)}), as resume_with_changes asks")
        return
    raise UsageError(f"{last} was trained with other settings ({_listed(diff)}); resuming would mix the two runs: "
                     "use another --out, delete the folder, or pass --resume-with-changes to continue anyway")


def resumed_history(out: Path, step: int) -> list[dict[str, Any]]:
    """Trim ``out/log.csv`` to the rows of steps up to ``step`` (test rows go too: they are written again at
    the end) and return the validation history it holds, ``[{"step": s, metric: value, ...}, ...]``."""
    path = out / "log.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    col = {name: i for i, name in enumerate(header)}
    kept = [r for r in body if len(r) == len(header) and int(r[col["step"]]) <= step and r[col["kind"]] != "test"]
    if len(kept) != len(body):
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header, *kept])
        atomic_write_bytes(path, buffer.getvalue().encode())
    history: dict[int, dict[str, Any]] = {}
    for r in kept:
        if r[col["kind"]] == "valid":
            s = int(r[col["step"]])
            history.setdefault(s, {"step": s})[r[col["metric"]]] = float(r[col["value"]])
    return [history[s] for s in sorted(history)]
