"""``rladder-stream stream-midi``: real MIDI files stream through Predictor.step, the continuation is a valid MIDI
file of the requested length, and every flag takes effect."""

from __future__ import annotations

import re

import mido
import numpy as np
import pytest
import torch
from PIL import Image

from rladder_stream import Predictor, build_model, get_config, save_checkpoint
from rladder_stream.apps.cli import main
from rladder_stream.apps.stream_midi import MUSIC_PRETRAINED, music_pretrained_path, stream_midi
from rladder_stream.envs.data.midi import MidiError, midi_to_piano_roll, piano_roll_to_midi
from rladder_stream.envs.data.music import load_music

TPB = 96  # ticks per beat: an eighth-note step is 48 ticks


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny music RLadder moved off its init (forecasts away from 0.5, different per key)."""
    gen = torch.Generator().manual_seed(0)
    model = build_model(get_config("music-rladder", size="tiny"))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "music-tiny.pt", model.config, model.state_dict())


def _track(events) -> mido.MidiTrack:
    """A track from (absolute tick, message) pairs."""
    track, now = mido.MidiTrack(), 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def _note(tick, length, note, channel=0):
    return [(tick, mido.Message("note_on", note=note, channel=channel, velocity=70)),
            (tick + length, mido.Message("note_off", note=note, channel=channel, velocity=0))]


def type1_file(path):
    """Type 1: a tempo track with two tempo changes, a melody (channel 0), a bass (channel 1) and drums (channel 10).
    16 beats = 32 steps; the drums (MIDI 35/38, also inside the piano range) must not appear."""
    tempo = _track([(0, mido.MetaMessage("set_tempo", tempo=500_000)), (8 * TPB, mido.MetaMessage("set_tempo", tempo=375_000)),
                    (12 * TPB, mido.MetaMessage("set_tempo", tempo=600_000)), (16 * TPB, mido.MetaMessage("end_of_track"))])
    melody = _track([e for k in range(16) for e in _note(k * TPB, TPB // 2, 72 + (k % 5))] + [(16 * TPB, mido.MetaMessage("end_of_track"))])
    bass = _track([e for k in range(4) for e in _note(4 * k * TPB, 4 * TPB, 48 + 2 * k, channel=1)] + [(16 * TPB, mido.MetaMessage("end_of_track"))])
    drums = _track([e for k in range(32) for e in _note(k * TPB // 2, 10, 35 if k % 2 else 38, channel=9)] + [(16 * TPB, mido.MetaMessage("end_of_track"))])
    midi = mido.MidiFile(type=1, ticks_per_beat=TPB)
    midi.tracks.extend([tempo, melody, bass, drums])
    midi.save(path)
    return path


def type0_file(path):
    """Type 0: everything in one track, channels 0 and 9 interleaved, a tempo change; 10 beats = 20 steps."""
    events = [(0, mido.MetaMessage("set_tempo", tempo=450_000)), (5 * TPB, mido.MetaMessage("set_tempo", tempo=700_000))]
    events += [e for k in range(10) for e in _note(k * TPB, TPB, 60 + k)]
    events += [e for k in range(10) for e in _note(k * TPB, 20, 42, channel=9)]
    events += [(10 * TPB, mido.MetaMessage("end_of_track"))]
    midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
    midi.tracks.append(_track(events))
    midi.save(path)
    return path


def _steps(out: str) -> list[tuple[int, float, str]]:
    return [(int(m[1]), float(m[2]), m[3]) for m in re.finditer(r"^step +(\d+) +nll +([\d.]+) +notes (.*)$", out, re.M)]


def _summary_nll(out: str) -> float:
    return float(re.search(r"NLL per time step ([\d.]+)", out)[1])


@pytest.mark.parametrize("make, n_steps", [(type1_file, 32), (type0_file, 20)], ids=["type1", "type0"])
def test_real_midi_files_stream_step_by_step(make, n_steps, checkpoint, tmp_path, capsys):
    path = make(tmp_path / "song.mid")
    assert main(["stream-midi", str(path), "--model", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    steps = _steps(out)
    assert [t for t, _, _ in steps] == list(range(n_steps))
    roll = midi_to_piano_roll(path)
    for t, _, notes in steps:
        printed = [] if notes == "-" else [int(n) for n in notes.split()]
        assert printed == (np.flatnonzero(roll[t]) + 21).tolist()
        assert not {35, 38, 42} & set(printed)  # percussion is left out
    assert f"{n_steps} steps: NLL per time step" in out and re.search(r"= \d+ ticks/s", out)
    assert _summary_nll(out) == pytest.approx(np.mean([nll for _, nll, _ in steps]), abs=2e-3)


def test_streamed_nll_is_the_training_metric_of_the_piece(checkpoint, tmp_path, embedded_data):
    """A test chorale written as MIDI and streamed scores what training's evaluation gives that one piece."""
    from rladder_stream import load_model
    from rladder_stream.training.tasks import MusicTask
    from rladder_stream.training.train import TrainConfig, evaluate

    model = load_model(checkpoint)
    roll = load_music("embedded")["test"][2]
    path = piano_roll_to_midi(roll, tmp_path / "chorale.mid")
    record = stream_midi(Predictor(model), path)
    task = MusicTask(model.config, TrainConfig(model="music-rladder", dataset="embedded"))
    task._splits["test"] = task._splits["test"][2:3]
    metric = evaluate(model, task, "test", None, 4, torch.device("cpu"))["prediction_nll"]
    assert record.nll.shape == (len(roll),)
    assert record.nll_per_step == pytest.approx(metric, rel=1e-5)


def test_continuation_is_valid_midi_of_the_requested_length(checkpoint, tmp_path, capsys):
    song = type0_file(tmp_path / "song.mid")
    out, png = tmp_path / "out" / "more.mid", tmp_path / "pics" / "roll.png"
    assert main(["stream-midi", str(song), "--model", str(checkpoint), "--continue", "24", "--out", str(out),
                 "--png", str(png), "--every", "0"]) == 0
    text = capsys.readouterr().out
    assert "continuation: 24 steps (sampled, seed 0)" in text and not _steps(text)  # --every 0: summary only
    midi = mido.MidiFile(out)  # re-reads with mido
    assert midi.type == 0 and sum(msg.time for msg in midi.tracks[0]) == 24 * midi.ticks_per_beat // 2
    assert [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"] == [450_000]  # the input's first tempo
    assert midi_to_piano_roll(out).shape == (24, 88)
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    reddish = (r > 180) & (g < 140) & (b < 140)
    red = reddish.sum(0)  # the line where the continuation starts: one or two columns
    assert red.max() > 150 and (red > 150).sum() <= 3
    plot_rows = np.flatnonzero(reddish[:, np.argmax(red)])  # the plot's height (the legend lies below it)
    inside = image[plot_rows.min() : plot_rows.max()]
    blue = np.flatnonzero(((inside[..., 2] > 180) & (inside[..., 0] < 100) & (inside[..., 1] < 130)).any(0))
    assert blue.size and blue.min() > np.argmax(red)  # continuation notes are blue, right of the line
    # --include-input: the input first, then the same continuation (same seed).
    both = tmp_path / "both.mid"
    assert main(["stream-midi", str(song), "--model", str(checkpoint), "--continue", "24", "--out", str(both),
                 "--include-input", "--every", "0"]) == 0
    roll = midi_to_piano_roll(both)
    assert roll.shape == (44, 88)
    np.testing.assert_array_equal(roll[:20], midi_to_piano_roll(song))
    np.testing.assert_array_equal(roll[20:], midi_to_piano_roll(out))
    assert (tmp_path / "both.png").is_file()  # --png defaults to --out with .png


def test_piano_roll_of_a_long_piece_shows_its_last_steps_unless_png_full(checkpoint, tmp_path, capsys):
    roll = np.zeros((90, 88), np.uint8)
    roll[::2, 60 - 21] = roll[1::3, 67 - 21] = 1
    song = piano_roll_to_midi(roll, tmp_path / "long.mid")
    widths = {}
    for flags in ([], ["--png-full"]):
        png = tmp_path / f"roll{len(flags)}.png"
        assert main(["stream-midi", str(song), "--model", str(checkpoint), "--continue", "8", "--out",
                     str(tmp_path / "more.mid"), "--png", str(png), "--every", "0", *flags]) == 0
        widths[bool(flags)] = Image.open(png).size[0]
    assert widths[True] > widths[False]  # 98 steps drawn against 32 + 8


def test_seed_and_threshold_decide_the_continuation(checkpoint, tmp_path):
    from rladder_stream import load_model

    song = type0_file(tmp_path / "song.mid")
    predictor = Predictor(load_model(checkpoint))
    a, b, c = (stream_midi(predictor, song, 16, seed=s).continuation for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    record = stream_midi(predictor, song, 16, threshold=0.5)
    np.testing.assert_array_equal(record.continuation, record.continuation_forecasts >= 0.5)
    assert stream_midi(predictor, song, 8, threshold=1.0).continuation.sum() <= 8 * 88 * 0.01
    rolls = []
    for flags in (["--seed", "1"], ["--seed", "2"], ["--threshold", "0.5"]):
        out = tmp_path / f"c{'-'.join(flags)}.mid"
        assert main(["stream-midi", str(song), "--model", str(checkpoint), "--continue", "16", "--out", str(out), "--every", "0", *flags]) == 0
        rolls.append(midi_to_piano_roll(out))
    np.testing.assert_array_equal(rolls[0], a)
    np.testing.assert_array_equal(rolls[1], c)
    np.testing.assert_array_equal(rolls[2], record.continuation)


def test_every_prints_every_kth_step(checkpoint, tmp_path, capsys):
    song = type1_file(tmp_path / "song.mid")
    assert main(["stream-midi", str(song), "--model", str(checkpoint), "--every", "5"]) == 0
    assert [t for t, _, _ in _steps(capsys.readouterr().out)] == list(range(0, 32, 5))


def test_runtime_flag_reaches_the_loader(checkpoint, tmp_path, monkeypatch, capsys):
    import rladder_stream.apps.loading

    seen = []

    def loader(path, runtime="torch", n_streams=1):
        seen.append((str(path), runtime))
        return Predictor.from_checkpoint(path)

    monkeypatch.setattr(rladder_stream.apps.loading, "load_predictor", loader)
    song = type0_file(tmp_path / "song.mid")
    for runtime in ("onnx", "torch"):
        assert main(["stream-midi", str(song), "--model", str(checkpoint), "--runtime", runtime, "--every", "0"]) == 0
    assert seen == [(str(checkpoint), "onnx"), (str(checkpoint), "torch")]
    assert "(onnx runtime)" in capsys.readouterr().out


@pytest.mark.slow
def test_onnx_runtime_streams_the_same_numbers(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    song = type0_file(tmp_path / "song.mid")
    results = {}
    for runtime in ("torch", "onnx"):
        assert main(["stream-midi", str(song), "--model", str(checkpoint), "--runtime", runtime]) == 0
        out = capsys.readouterr().out
        assert f"({runtime} runtime)" in out
        results[runtime] = _summary_nll(out)
    assert results["onnx"] == pytest.approx(results["torch"], abs=1e-3)


def test_without_model_the_shipped_checkpoint_streams(tmp_path, capsys):
    shipped = music_pretrained_path()
    assert shipped is not None and shipped.name == MUSIC_PRETRAINED and shipped.stat().st_size < 5e6
    assert main(["stream-midi", str(type0_file(tmp_path / "song.mid")), "--every", "0"]) == 0
    out = capsys.readouterr().out
    assert MUSIC_PRETRAINED in out and _summary_nll(out) < 20  # trained: far below an untrained model's ~61


def test_steps_per_beat_sets_the_grid_of_input_and_continuation(checkpoint, tmp_path, capsys):
    song = type0_file(tmp_path / "song.mid")  # 10 beats
    for grid, n_steps in ((1, 10), (2, 20), (4, 40)):
        out_mid = tmp_path / f"grid{grid}.mid"
        assert main(["stream-midi", str(song), "--model", str(checkpoint), "--steps-per-beat", str(grid), "--every", "0",
                     "--continue", "6", "--out", str(out_mid)]) == 0
        assert f"{n_steps} steps: NLL per time step" in capsys.readouterr().out
        assert midi_to_piano_roll(out_mid, grid).shape[0] == 6  # the continuation keeps the grid it was made on
    # without --model the shipped JSB model streams on quarter notes (its training data's grid)
    assert main(["stream-midi", str(song), "--every", "0"]) == 0
    assert "10 steps: NLL per time step" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["stream-midi", str(song), "--steps-per-beat", "0"])
    assert "--steps-per-beat" in capsys.readouterr().err


def passing_notes_file(path):
    """Two voices on quarter notes, the upper one with a passing eighth inside every other beat (8 beats)."""
    events = [e for k in range(8) for e in _note(k * TPB, TPB, 48 + (k % 3), channel=1)]
    for k in range(8):
        events += _note(k * TPB, TPB // 2, 72, channel=0) + _note(k * TPB + TPB // 2, TPB // 2, 74, channel=0) if k % 2 \
            else _note(k * TPB, TPB, 76, channel=0)
    midi = mido.MidiFile(type=0, ticks_per_beat=TPB)
    midi.tracks.append(_track(events + [(8 * TPB, mido.MetaMessage("end_of_track"))]))
    midi.save(path)
    return path


def test_grid_rule_decides_when_a_note_is_on(checkpoint, tmp_path, capsys):
    """--grid-rule start (the default) leaves out the passing notes inside a beat; overlap puts them in."""
    song = passing_notes_file(tmp_path / "passing.mid")
    printed = {}
    for flags, rule in (([], "start"), (["--grid-rule", "overlap"], "overlap"), (["--grid-rule", "start"], "start")):
        assert main(["stream-midi", str(song), "--model", str(checkpoint), "--steps-per-beat", "1", *flags]) == 0
        out = capsys.readouterr().out
        assert f"1 step per beat, {rule} rule" in out
        roll = midi_to_piano_roll(song, 1, grid_rule=rule)
        notes = [[] if n == "-" else [int(x) for x in n.split()] for _, _, n in _steps(out)]
        assert notes == [(np.flatnonzero(row) + 21).tolist() for row in roll]
        printed[rule] = notes
    assert max(len(n) for n in printed["start"]) == 2 and max(len(n) for n in printed["overlap"]) == 3
    assert printed["overlap"][1] == [49, 72, 74] and printed["start"][1] == [49, 72]
    with pytest.raises(SystemExit):
        main(["stream-midi", str(song), "--grid-rule", "beat"])
    assert "--grid-rule" in capsys.readouterr().err


def _truncated(path):
    data = type0_file(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("spoil", [
    lambda p: p.write_bytes(b""),
    lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x04WAVE"),
    _truncated,
], ids=["empty", "not-midi", "truncated"])
def test_malformed_files_fail_with_a_clear_error(spoil, checkpoint, tmp_path, capsys):
    path = tmp_path / "bad.mid"
    spoil(path)
    assert main(["stream-midi", str(path), "--model", str(checkpoint)]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "bad.mid" in err
    with pytest.raises(MidiError, match="bad.mid"):
        stream_midi(Predictor(build_model(get_config("music-rladder", size="tiny"))), path)


@pytest.mark.parametrize("argv, message", [
    (["--continue", "-1"], "--continue"),
    (["--threshold", "0"], "--threshold"),
    (["--every", "-2"], "--every"),
    (["--out", "x.mid"], "need --continue"),
    (["--seed", "1", "--threshold", "0.5"], "not allowed"),
])
def test_bad_flags_are_refused(argv, message, checkpoint, tmp_path, capsys):
    song = type0_file(tmp_path / "song.mid")
    with pytest.raises(SystemExit):
        main(["stream-midi", str(song), "--model", str(checkpoint), *argv])
    assert message in capsys.readouterr().err


def test_a_model_that_is_not_for_music_or_not_a_checkpoint_is_refused(tmp_path, capsys):
    omm = get_config("omm-rladder", size="tiny")
    ckpt = save_checkpoint(tmp_path / "omm.pt", omm, build_model(omm).state_dict())
    song = str(type0_file(tmp_path / "song.mid"))
    assert main(["stream-midi", song, "--model", str(ckpt)]) == 1
    assert "88 keys" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for model, message in ((tmp_path / "junk.pt", "not a checkpoint (safetensors) file"),
                           (tmp_path / "missing.pt", "no such checkpoint"), (tmp_path, "is a folder, not a model file")):
        assert main(["stream-midi", song, "--model", str(model)]) == 1  # as a bad model is in every command
        assert message in capsys.readouterr().err


def test_piano_roll_image_draws_keys_top_down_and_refuses_bad_input():
    from rladder_stream.apps.figures import piano_roll_image

    roll = np.zeros((10, 88), np.uint8)
    roll[2, 87] = roll[7, 0] = 1  # C8 in the input, A0 in the continuation
    forecasts = np.full((10, 88), 0.5, np.float32)
    image = np.asarray(piano_roll_image(roll, forecasts, split=5, scale=4))
    assert image.shape == (2 * 88, 40, 3)
    assert (image[0:2, 8:12] == 0).all()  # the highest key at the top, black (input)
    assert (image[174:176, 28:32] == (20, 70, 220)).all()  # the lowest key at the bottom, blue (continuation)
    assert (image[100, 0] == 200).all()  # grey where the model gave 0.5 (255 - 110 * 0.5)
    with pytest.raises(ValueError, match="88"):
        piano_roll_image(np.zeros((4, 87)))
    with pytest.raises(ValueError, match="forecasts"):
        piano_roll_image(roll, forecasts[:3])
