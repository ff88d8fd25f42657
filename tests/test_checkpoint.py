"""Checkpoints: exact round trip, and clear errors (not crashes, not code execution) on bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from rladder_stream import CheckpointError, Predictor, build_model, get_config, load_checkpoint
from rladder_stream.streaming.checkpoint import save_checkpoint


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


# ---------------------------------------------------------------------------------------------- format and bounds

import json
import subprocess
import sys
from pathlib import Path

from rladder_stream.apps.loading import pretrained_path
from rladder_stream.streaming.checkpoint import (FORMAT, _digest, convert_legacy_checkpoint, legacy_digest,
                                                 legacy_digest_of)

PRETRAINED = Path(pretrained_path()).parent


def _tamper(source: Path, target: Path, edit) -> Path:
    """Rewrite a checkpoint's configuration with ``edit(config_dict)`` and recompute its digest, as an
    attacker who knows the format would."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    tensors = load_file(source)
    with safe_open(source, "pt") as f:
        metadata = dict(f.metadata())
    config = json.loads(metadata["config"])
    edit(config)
    metadata["config"] = json.dumps(config)
    metadata["sha256"] = _digest(metadata, tensors)
    save_file(tensors, target, metadata=metadata)
    return target


def test_the_file_is_safetensors_with_the_config_as_json(saved):
    """No pickle: any safetensors reader opens it; the configuration is plain JSON in the header."""
    from safetensors import safe_open

    model, path = saved
    assert not path.read_bytes().startswith(b"PK")  # not a torch.save zip
    with safe_open(path, "pt") as f:
        metadata = f.metadata()
        keys = set(f.keys())
    assert metadata["format"] == FORMAT
    assert json.loads(metadata["config"]) == model.config.to_dict()
    assert keys == {f"model/{k}" for k in model.state_dict()}


def test_extra_state_round_trips_exactly(tmp_path):
    model = build_model(get_config("omm-rladder", size="tiny"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(2, 2, 32, 32))[0]["class_logits"].sum().backward()
    optimizer.step()
    extra = {"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(), "step": 7, "pair": (1, 2.5), "none": None}
    save_checkpoint(tmp_path / "x.pt", model.config, model.state_dict(), extra)
    _, _, got = load_checkpoint(tmp_path / "x.pt")
    assert got["step"] == 7 and got["pair"] == (1, 2.5) and got["none"] is None
    assert torch.equal(got["torch_rng"], extra["torch_rng"])
    assert list(got["optimizer"]["state"]) == list(extra["optimizer"]["state"])  # integer keys, not strings
    for index, entry in extra["optimizer"]["state"].items():
        for name, value in entry.items():
            assert torch.equal(got["optimizer"]["state"][index][name], value)
    assert got["optimizer"]["param_groups"] == extra["optimizer"]["param_groups"]


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["levels"][0].update(channels=12_000), "do not match"),
    (lambda c: c["levels"][0].update(channels=10**9), "cannot exist|do not match"),
    (lambda c: c["levels"][0].update(channels=-8), "invalid model configuration"),
    (lambda c: c.update(top_size=-1), "invalid model configuration|do not match"),
    (lambda c: c.update(levels=c["levels"] * 200), "invalid model configuration|levels"),
    (lambda c: c.update(obs_shape=[32768, 32768]), "do not match|state would take"),
])
def test_tampered_configurations_are_refused(tmp_path, edit, message):
    bad = _tamper(PRETRAINED / "omm-rladder-cpu.pt", tmp_path / "bad.pt", edit)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(bad)


def test_tampered_12000_channel_checkpoint_is_refused_fast_and_small(tmp_path):
    """The checkpoint of the issue: 1.5 MB whose configuration asks for ~20 GB. Measured in a fresh process:
    refused in under a second, with the peak resident memory growing by under 500 MB."""
    bad = _tamper(PRETRAINED / "omm-rladder-cpu.pt", tmp_path / "huge.pt", lambda c: c["levels"][0].update(channels=12_000))
    script = (
        "import resource, sys, time\n"
        "from rladder_stream import CheckpointError, Predictor\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.perf_counter()\n"
        "try:\n"
        "    Predictor.from_checkpoint(sys.argv[1])\n"
        "    print('loaded')\n"
        "except CheckpointError as exc:\n"
        "    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024\n"
        "    print('refused', time.perf_counter() - start, grown, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(bad)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    words = done.stdout.split()
    assert words and words[0] == "refused", done.stdout + done.stderr
    seconds, grown_mb = float(words[1]), float(words[2])
    assert seconds < 1.0 and grown_mb < 500, (seconds, grown_mb)


def _legacy_save(path: Path, model) -> Path:
    """A checkpoint as the first format wrote it (torch.save of a plain payload with its digest)."""
    payload = {"format": FORMAT, "format_version": 1, "package_version": "0.1.0", "config": model.config.to_dict(),
               "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()}, "extra": {"step": 3}}
    payload["sha256"] = legacy_digest(payload)
    torch.save(payload, path)
    return path


def test_first_format_files_still_load_and_convert_unchanged(tmp_path):
    model = build_model(get_config("music-rladder", size="tiny"))
    old = _legacy_save(tmp_path / "old.pt", model)
    config, weights, extra = load_checkpoint(old)
    assert config == model.config and extra == {"step": 3}
    new = convert_legacy_checkpoint(old, tmp_path / "new.pt")
    config2, weights2, extra2 = load_checkpoint(new)
    assert config2 == config and extra2 == extra and all(torch.equal(weights2[k], weights[k]) for k in weights)
    recorded, recomputed = legacy_digest_of(new)
    assert recorded == torch.load(old, weights_only=True)["sha256"] == recomputed


def test_first_format_with_a_tampered_config_is_refused_too(tmp_path):
    model = build_model(get_config("omm-rladder", size="tiny"))
    path = tmp_path / "old.pt"
    payload = {"format": FORMAT, "format_version": 1, "package_version": "0.1.0",
               "config": {**model.config.to_dict(), "levels": [{"channels": 12_000, "kind": "lstm", "kernel": 3, "pool": 1}] + model.config.to_dict()["levels"][1:]},
               "state_dict": model.state_dict(), "extra": {}}
    payload["sha256"] = legacy_digest(payload)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(path)

