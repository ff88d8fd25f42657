"""docs/errors.md, run: every mistake in its table prints one ``error:`` line with the message shown and exits
with the status shown (the table and the program cannot drift apart)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path

import pytest

import rladder_stream.envs.data.paths as paths
from rladder_stream.apps.cli import main
from rladder_stream.apps.loading import pretrained_path
from rladder_stream.apps.stream_midi import music_pretrained_path
from rladder_stream.training.train import TrainConfig, train

TABLE = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def _rows() -> list[tuple[str, str, int, str]]:
    rows = []
    for line in TABLE.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[1].startswith("`rladder-stream"):
            mistake, command, status, message = cells
            rows.append((mistake, command.strip("`"), int(status), message.strip("`")))
    return rows


ROWS = _rows()


def test_the_table_covers_the_mistakes_of_the_issue():
    commands = " ".join(command for _, command, _, _ in ROWS)
    for needed in ("missing.pt", "{truncated.pt}", "{tampered.pt}", "Nope-v0", "split=tst", "{omm.pt}", "{music.pt}",
                   "no-such-folder", "epochs=abc", "omm-hrnn", "lr=0.5", "{truncated.onnx}", "CartPole-v1", "{text.pt}",
                   "{badmeta.onnx}", "--model {empty}"):
        assert needed in commands, needed
    assert len(ROWS) >= 25


def test_a_bad_model_is_the_same_mistake_in_every_command():
    """A model file that does not exist exits 1 in every command that takes one (issue 28: it was 2 in some)."""
    statuses = {command.split()[1]: status for _, command, status, _ in ROWS if "missing.pt" in command}
    assert set(statuses) >= {"demo", "benchmark", "figure4", "groups", "stream-midi", "info", "export", "train"}
    assert set(statuses.values()) == {1}


def _damaged_metadata_onnx(path: Path) -> None:
    """An ONNX step whose metadata has one byte that is not UTF-8 (the digest was right before the damage)."""
    import onnx
    from onnx import TensorProto, helper

    from rladder_stream.export.onnx import DIGEST_KEY, FORMAT, META_PREFIX, model_digest

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "step",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    helper.set_model_props(model, {f"{META_PREFIX}format": FORMAT})
    helper.set_model_props(model, {f"{META_PREFIX}format": FORMAT, DIGEST_KEY: model_digest(model)})
    data = model.SerializeToString()
    at = data.index(FORMAT.encode()) + 3
    path.write_bytes(data[:at] + b"\xff" + data[at + 1:])
    onnx.load_model_from_string(path.read_bytes())  # still parses: only reading the metadata can tell


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The files the table's commands name in braces."""
    from test_checkpoint import _tamper

    root = tmp_path_factory.mktemp("mistakes")
    shipped = Path(pretrained_path())
    made = {"omm.pt": shipped, "music.pt": Path(music_pretrained_path())}
    data = shipped.read_bytes()
    (root / "truncated.pt").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[-100] ^= 0x01  # inside the last tensor's bytes
    (root / "flipped.pt").write_bytes(bytes(flipped))
    _tamper(shipped, root / "tampered.pt", lambda c: c["levels"][0].update(channels=12_000))
    (root / "junk.pt").write_bytes(b"\x00" * 64)
    (root / "text.pt").write_text("a text file, not a model: what a person might pass by mistake\n" * 3)
    (root / "truncated.onnx").write_bytes(b"\x08\x07\x12\x05abc")
    _damaged_metadata_onnx(root / "badmeta.onnx")
    (root / "not-midi.mid").write_bytes(b"hello")
    (root / "empty").mkdir()
    run = root / "run"
    train(TrainConfig(model="omm-rladder", size="tiny", train_sequences=8, batch_size=8, valid_sequences=8, test_sequences=8,
                      eval_batch_size=8, stop_after_steps=1, epochs=2, out=str(run)), log=lambda s: None)
    for name in ("truncated.pt", "flipped.pt", "tampered.pt", "junk.pt", "text.pt", "truncated.onnx", "badmeta.onnx",
                 "not-midi.mid", "empty", "run"):
        made[name] = root / name
    return made


@pytest.mark.parametrize("mistake, command, status, message", ROWS, ids=[r[0] for r in ROWS])
def test_each_mistake_is_one_error_line(mistake, command, status, message, files, tmp_path, monkeypatch, capsys, embedded_data):
    def offline(url, timeout=None):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(paths, "_urlopen", offline)
    monkeypatch.chdir(tmp_path)
    original_run = files["run"]
    if "{run}" in command:  # a fresh copy: a failed resume must not depend on an earlier row
        shutil.copytree(original_run, tmp_path / "run")
        files = {**files, "run": tmp_path / "run"}
    argv = [re.sub(r"\{([^}]+)\}", lambda m: str(files[m.group(1)]), word) for word in shlex.split(command)[1:]]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse exits
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], (message, lines[0])
    assert code == status
    if "{run}" in command:  # refused before anything was trained or written
        for name in ("last.pt", "log.csv"):
            assert (tmp_path / "run" / name).read_bytes() == (original_run / name).read_bytes()
        assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.parametrize("argv", [["info", str(pretrained_path())], ["train", "--help"]], ids=["info", "help"])
def test_output_into_a_pipe_closed_early_ends_quietly(argv):
    """``rladder-stream info FILE | head``: a reader that closes its end before the command writes (the worst case of
    ``head``) ends the command without a word and with the shell's status for SIGPIPE, not a BrokenPipeError."""
    read, write = os.pipe()
    reader = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.close()"], stdin=read)
    os.close(read)
    assert reader.wait(timeout=60) == 0  # gone: nobody reads the pipe any more
    try:
        done = subprocess.run([sys.executable, "-m", "rladder_stream", *argv], stdout=write, stderr=subprocess.PIPE,
                              env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    finally:
        os.close(write)
    assert done.stderr.decode() == "" and done.returncode == 141


def test_output_into_head_is_cut_quietly():
    """The same with a real ``head -n 1`` that reads a line first."""
    command = subprocess.Popen([sys.executable, "-m", "rladder_stream", "info", str(pretrained_path())],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    head = subprocess.run(["head", "-n", "1"], stdin=command.stdout, capture_output=True, timeout=300)
    command.stdout.close()
    err = command.stderr.read().decode()
    assert command.wait(timeout=300) in (0, 141) and err == ""  # 0 when all of it fitted into the pipe before head left
    assert head.stdout.decode() == "{\n"
