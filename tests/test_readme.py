"""Every code block in README.md works as written.

The rule:

- Every ```python block runs as written, on its own (the README's blocks are self-contained: none relies on an
  earlier one), in a fresh interpreter of this environment, with a temporary folder as the working directory, no
  ``$RLADDER_STREAM_DATA`` (so the embedded data) and a temporary ``$XDG_CACHE_HOME``; it must exit 0.
- Every ```bash block is read line by line (comments dropped, ``\\`` continuations joined). Each
  ``.venv/bin/rladder-stream SUBCOMMAND ...`` (or ``rladder-stream ...``) either
  - **runs** as written, when its subcommand is cheap (:data:`RUN`: demo, benchmark, stream-midi, configs, info): in a
    temporary folder where the repository paths the README uses (``rladder_stream/pretrained/``,
    ``envs/embedded/``) are links to the repository's, with ``OMP_NUM_THREADS=1``; it must exit 0; or
  - **is checked to parse**, when it starts a long job or repeats a python block (:data:`PARSE_ONLY`: train,
    reproduce, groups and figure4, which need a trained run; export, whose 20-30 s the ONNX python block already
    spends in the same ``export_onnx``):
    the same arguments plus ``--help`` must exit 0 (the parser read every argument before ``--help``), and a
    ``--set key=value`` must name a real setting and hold a valid value (checked by the settings parser the
    command itself uses) for ``train``.
  ``export VAR=...`` lines are passed over; a ``VAR=value`` prefix is set for its command (a relative path that
  does not exist here, like ``../shared/data``, is dropped: the embedded data stands in).
- The Quick start block (the install and the test command) is left to CI itself: ``.ci/run`` runs exactly those
  two commands. Any other command in a bash block fails this test, so a new kind must be given a rule here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
RUN = {"demo", "benchmark", "stream-midi", "configs", "info"}
PARSE_ONLY = {"train", "reproduce", "groups", "figure4", "export"}
QUICK_START = ("python3 -m venv .venv", ".venv/bin/python -m pytest -q")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def _commands(block: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = (line.split(" #")[0].strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


PYTHON = _blocks("python")
BASH = [(i, command) for i, block in enumerate(_blocks("bash")) for command in _commands(block)]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RLADDER_STREAM_DATA"}
    return {**env, "OMP_NUM_THREADS": "1", "XDG_CACHE_HOME": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}


def test_ci_runs_the_readme_test_command():
    """CI must run the test command a reader is told to run, not another one."""
    quick_start = _commands(_blocks("bash")[0])
    test_command = next(c for c in quick_start if " -m pytest" in c)
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci, f"README's test command {test_command!r} is not a line of .ci/run"


def test_the_readme_has_code_blocks_to_run():
    assert len(PYTHON) >= 2 and len(BASH) >= 5


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_every_python_block_runs_as_written(tmp_path, index):
    script = tmp_path / "scripts" / f"block{index}.py"
    script.parent.mkdir()
    script.write_text(PYTHON[index])
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, str(script)], cwd=work, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"README python block {index}:\n{PYTHON[index]}\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("block, command", BASH, ids=[f"{i}-{c.split()[1] if ' ' in c else c}"[:40] for i, c in BASH])
def test_every_bash_command_runs_or_parses(tmp_path, block, command):
    if command.startswith(QUICK_START):
        pytest.skip("the Quick start commands are run by CI itself (.ci/run)")
    env = _env(tmp_path)
    work = tmp_path / "work"
    (work / "rladder_stream").mkdir(parents=True)
    (work / "envs").mkdir()
    (work / "rladder_stream" / "pretrained").symlink_to(ROOT / "rladder_stream" / "pretrained")
    (work / "envs" / "embedded").symlink_to(ROOT / "envs" / "embedded")
    words = shlex.split(command)
    if words[0] == "export":
        return  # sets a variable for the reader's shell; nothing to run
    while "=" in words[0] and not words[0].startswith("-"):
        key, value = words.pop(0).split("=", 1)
        if not (value.startswith(("/", ".")) and not (work / value).exists()):
            env[key] = value
    program, args = words[0], words[1:]
    assert program in (".venv/bin/rladder-stream", "rladder-stream"), f"no rule for this README command: {command}"
    assert args and args[0] in RUN | PARSE_ONLY, f"no rule for the subcommand of: {command}"
    executable = str(BIN / "rladder-stream")
    if args[0] in RUN:
        done = subprocess.run([executable, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return
    done = subprocess.run([executable, *args, "--help"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "usage:" in done.stdout, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    if args[0] == "train":
        _check_train_settings(args)


def _check_train_settings(args: list[str]) -> None:
    """The ``--set`` values of a README ``train`` command are real settings with valid values (what
    ``train_cli_main`` checks before it trains)."""
    from rladder_stream.model.registry import get_config
    from rladder_stream.training.train import TrainConfig, parse_overrides

    config, rest = args[1], args[2:]
    values = rest[rest.index("--set") + 1:] if "--set" in rest else []
    values = values[: next((i for i, v in enumerate(values) if v.startswith("--")), len(values))]
    train_fields, model_fields = parse_overrides(values)
    cfg = TrainConfig(model=config, model_overrides=model_fields, **train_fields)
    get_config(cfg.model, size=cfg.size, **cfg.model_overrides)
