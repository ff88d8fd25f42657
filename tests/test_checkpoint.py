"""Checkpoints: exact round trip, and clear errors (not crashes, not code execution) on bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from rladder_stream import CheckpointError, Predictor, build_model, get_config, load_checkpoint
from rladder_stream.checkpoint import save_checkpoint


@pytest.fixture
def saved(tmp_path):
    model = build_model(get_config("omm-rladder", size="tiny")).eval()
    with torch.no_grad():
        model.class_head.bias.copy_(torch.arange(10, dtype=torch.float32) * 0.123456)
    path = Predictor(model).save(tmp_path / "model.pt")
    return model, path


def test_round_trip_reproduces_outputs(saved):
    model, path = saved
    loaded = Predictor.from_checkpoint(path)
    assert loaded.model.config == model.config
    x = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    original = Predictor(model)
    for frame in x:
        a, b = original.step(frame), loaded.step(frame)
        np.testing.assert_array_equal(a.next_obs, b.next_obs)
        np.testing.assert_array_equal(a.class_probs, b.class_probs)


def test_truncated_checkpoint_raises_clear_error(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=str(bad.name)):
            Predictor.from_checkpoint(bad)


def test_corrupted_tensor_bytes_are_detected(saved, tmp_path):
    model, path = saved
    data = bytearray(path.read_bytes())
    needle = model.class_head.bias.detach().numpy().tobytes()
    at = bytes(data).find(needle)
    assert at > 0, "the tensor's bytes should be stored verbatim"
    data[at + 5] ^= 0x40
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(bad)


def test_random_bytes_and_missing_file(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch EXPLOITED",))


def test_loading_never_executes_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "rladder-stream-checkpoint", "payload": _Exploit()}, evil)
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    assert not (tmp_path / "EXPLOITED").exists()


def test_other_torch_files_and_mismatched_weights(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, plain)
    with pytest.raises(CheckpointError, match="format marker"):
        load_checkpoint(plain)
    cfg = get_config("omm-rladder", size="tiny")
    other = build_model(get_config("omm-hrnn", size="tiny"))
    mismatched = save_checkpoint(tmp_path / "mismatch.pt", cfg, other.state_dict())
    with pytest.raises(CheckpointError, match="do not match"):
        Predictor.from_checkpoint(mismatched)


def test_save_is_atomic_and_leaves_no_temp_files(saved):
    _, path = saved
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]
