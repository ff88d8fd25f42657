"""MIDI -> piano roll: the eighth-note grid, the two grid rules (start sampling, the default, and overlap), track/channel
folding, percussion, malformed files, round trip."""

from __future__ import annotations

import time
from pathlib import Path

import mido
import numpy as np
import pytest

from rladder_stream.envs.data.midi import MidiError, midi_to_piano_roll, piano_roll_to_midi
from rladder_stream.envs.data.music import load_music

EMBEDDED_MIDI = Path(__file__).resolve().parents[1] / "envs" / "embedded" / "music" / "jsb_chorale_test0.mid"


def roll_from(notes: dict[int, list[int]], n_steps: int) -> np.ndarray:
    """Expected roll from {step: [midi notes]}."""
    roll = np.zeros((n_steps, 88), np.uint8)
    for step, pitches in notes.items():
        for p in pitches:
            roll[step, p - 21] = 1
    return roll


def track_from(events: list[tuple[int, mido.Message | mido.MetaMessage]]) -> mido.MidiTrack:
    """A track from (absolute tick, message) pairs."""
    track, now = mido.MidiTrack(), 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - now))
        now = tick
    return track


def on(note, ch=0, vel=64):
    return mido.Message("note_on", note=note, channel=ch, velocity=vel)


def off(note, ch=0, zero_velocity=False):
    if zero_velocity:
        return mido.Message("note_on", note=note, channel=ch, velocity=0)
    return mido.Message("note_off", note=note, channel=ch, velocity=0)


def test_type0_eighth_note_grid(tmp_path):
    tpb = 96  # an eighth note = 48 ticks
    events = [
        (0, on(60)), (96, off(60)),  # C4, a quarter: steps 0-1
        (96, on(64)), (144, off(64)),  # E4, an eighth: step 2
        (240, on(67)), (288, off(67)),  # G4 after a rest: step 5
        (264, on(72)), (270, off(72, zero_velocity=True)),  # C5 inside step 5 (velocity-0 note_on ends it)
        (300, on(48)), (300, off(48)),  # zero-length note: dropped, as pretty_midi drops it
        (330, on(50)), (331, off(50)),  # one tick long: on in its step (6)
        (384, mido.MetaMessage("end_of_track")),  # 4 beats = 8 steps, the last two silent
    ]
    midi = mido.MidiFile(type=0, ticks_per_beat=tpb)
    midi.tracks.append(track_from(events))
    midi.save(tmp_path / "t0.mid")
    roll = midi_to_piano_roll(tmp_path / "t0.mid")
    # the default samples each step's first instant: C5 (264-270) and the one-tick note (330-331) sound at none
    np.testing.assert_array_equal(roll, roll_from({0: [60], 1: [60], 2: [64], 5: [67]}, 8))
    assert roll.dtype == np.uint8 and roll.shape == (8, 88)
    overlap = midi_to_piano_roll(tmp_path / "t0.mid", grid_rule="overlap")  # the rule before issue 28
    np.testing.assert_array_equal(overlap, roll_from({0: [60], 1: [60], 2: [64], 5: [67, 72], 6: [50]}, 8))


def test_note_counts_in_every_step_it_touches(tmp_path):
    """The overlap rule: a note is on in each step it sounds during, even briefly; start sampling keeps only the
    step whose first instant (tick 48) it sounds at."""
    midi = mido.MidiFile(type=0, ticks_per_beat=96)
    midi.tracks.append(track_from([(30, on(60)), (50, off(60)), (200, mido.MetaMessage("end_of_track"))]))
    midi.save(tmp_path / "overlap.mid")
    roll = midi_to_piano_roll(tmp_path / "overlap.mid", grid_rule="overlap")
    np.testing.assert_array_equal(roll, roll_from({0: [60], 1: [60]}, 5))  # ceil(200 / 48) = 5 steps
    np.testing.assert_array_equal(midi_to_piano_roll(tmp_path / "overlap.mid"), roll_from({1: [60]}, 5))


def _chorale_bar(path: Path, tpb: int = 480) -> Path:
    """Four voices on a quarter-note grid, one bar of 4/4 (issue 28's case): the soprano has a passing note
    inside beat 1 (two eighths), the alto a note tied over beats 1-3 written as two notes of one key back to back,
    the tenor a dotted quarter then an eighth (its second note starts inside beat 2), the bass a note starting
    exactly on beat 3 after a rest."""
    q, e = tpb, tpb // 2
    events = [
        (0, on(72)), (e, off(72)), (e, on(74)), (q, off(74)), (q, on(76)), (4 * q, off(76)),  # soprano
        (0, on(67, ch=1)), (2 * q, off(67, ch=1)), (2 * q, on(67, ch=1)), (3 * q, off(67, ch=1)),  # alto: tie
        (3 * q, on(65, ch=1)), (4 * q, off(65, ch=1)),
        (0, on(64, ch=2)), (q + e, off(64, ch=2)), (q + e, on(62, ch=2)), (2 * q, off(62, ch=2)),  # tenor
        (2 * q, on(60, ch=2)), (4 * q, off(60, ch=2)),
        (2 * q, on(48, ch=3)), (4 * q, off(48, ch=3)),  # bass: rest, then exactly on beat 3
        (4 * q, mido.MetaMessage("end_of_track")),
    ]
    midi = mido.MidiFile(type=0, ticks_per_beat=tpb)
    midi.tracks.append(track_from(events))
    midi.save(path)
    return path


def test_start_rule_samples_each_voice_at_the_beat(tmp_path):
    """At most one key a voice per step under the default; the overlap rule adds the notes inside a beat."""
    path = _chorale_bar(tmp_path / "bar.mid")
    start = midi_to_piano_roll(path, steps_per_beat=1)
    np.testing.assert_array_equal(start, roll_from({0: [72, 67, 64], 1: [76, 67, 64], 2: [76, 67, 60, 48],
                                                    3: [76, 65, 60, 48]}, 4))
    assert start.sum(1).max() <= 4
    overlap = midi_to_piano_roll(path, steps_per_beat=1, grid_rule="overlap")
    np.testing.assert_array_equal(overlap, roll_from({0: [72, 74, 67, 64], 1: [76, 67, 64, 62], 2: [76, 67, 60, 48],
                                                      3: [76, 65, 60, 48]}, 4))
    # on the eighth-note grid every note covers a grid instant: the two rules agree
    np.testing.assert_array_equal(midi_to_piano_roll(path, 2), midi_to_piano_roll(path, 2, grid_rule="overlap"))
    with pytest.raises(ValueError, match="grid_rule"):
        midi_to_piano_roll(path, grid_rule="beat")


@pytest.mark.parametrize("grid_rule", ["start", "overlap"])
def test_notes_on_the_grid_read_the_same_under_both_rules(tmp_path, grid_rule):
    """A note starting exactly on a step and ending exactly on one is on in exactly those steps; a note held
    across steps (a tie) is on in each; the shipped test chorale, written on its grid, reads the same both ways."""
    path = tmp_path / "grid.mid"
    midi = mido.MidiFile(type=0, ticks_per_beat=96)
    midi.tracks.append(track_from([(48, on(60)), (192, off(60)), (192, on(62)), (240, off(62)),
                                   (288, mido.MetaMessage("end_of_track"))]))
    midi.save(path)
    np.testing.assert_array_equal(midi_to_piano_roll(path, grid_rule=grid_rule),
                                  roll_from({1: [60], 2: [60], 3: [60], 4: [62]}, 6))
    shipped = midi_to_piano_roll(EMBEDDED_MIDI, 1, grid_rule=grid_rule)
    np.testing.assert_array_equal(shipped, load_music("embedded")["test"][0])


def test_type1_tracks_channels_tempo_changes_percussion(tmp_path):
    tpb = 480  # eighth = 240 ticks
    tempo = track_from([
        (0, mido.MetaMessage("set_tempo", tempo=500_000)),
        (480, mido.MetaMessage("set_tempo", tempo=250_000)),  # twice as fast: the beat grid must not move
        (1200, mido.MetaMessage("set_tempo", tempo=1_000_000)),
    ])
    melody = track_from([(0, on(72)), (480, off(72)), (480, on(74)), (720, off(74)), (1440, on(76)), (1920, off(76))])
    bass = track_from(
        [(0, on(48, ch=1)), (960, off(48, ch=1, zero_velocity=True)), (960, on(50, ch=2)), (1920, off(50, ch=2))]
    )
    beats = range(0, 1920, 240)
    drums = track_from(
        [(t, on(36, ch=9)) for t in beats] + [(t + 10, off(36, ch=9)) for t in beats]
        + [(0, on(42, ch=9))]  # an unclosed hi-hat: must not show either
    )
    midi = mido.MidiFile(type=1, ticks_per_beat=tpb)
    midi.tracks.extend([tempo, melody, bass, drums])
    midi.save(tmp_path / "t1.mid")
    roll = midi_to_piano_roll(tmp_path / "t1.mid")
    expected = roll_from(
        {0: [72, 48], 1: [72, 48], 2: [74, 48], 3: [48], 4: [50], 5: [50], 6: [76, 50], 7: [76, 50]}, 8
    )
    np.testing.assert_array_equal(roll, expected)
    assert roll[:, 36 - 21].sum() == 0 and roll[:, 42 - 21].sum() == 0  # percussion ignored


def test_unclosed_note_is_dropped_and_steps_per_beat(tmp_path):
    midi = mido.MidiFile(type=1, ticks_per_beat=120)
    midi.tracks.append(track_from([(0, on(60)), (60, on(62)), (90, off(62))]))  # 60 never closed: dropped (pretty_midi)
    midi.tracks.append(track_from([(480, mido.MetaMessage("end_of_track"))]))  # other track ends later
    midi.save(tmp_path / "open.mid")
    roll = midi_to_piano_roll(tmp_path / "open.mid", steps_per_beat=4)  # sixteenths: 30 ticks
    assert roll.shape == (16, 88)
    assert roll[:, 60 - 21].tolist() == [0] * 16
    assert roll[:, 62 - 21].tolist() == [0, 0, 1] + [0] * 13


def test_out_of_range_notes(tmp_path):
    midi = mido.MidiFile(type=0, ticks_per_beat=2)
    midi.tracks.append(track_from([(0, on(12)), (0, on(120)), (0, on(9)), (1, off(12)), (1, off(120)), (1, off(9))]))
    midi.save(tmp_path / "range.mid")
    folded = midi_to_piano_roll(tmp_path / "range.mid")
    np.testing.assert_array_equal(folded, roll_from({0: [24, 108, 21]}, 1))  # by octaves into 21..108
    assert midi_to_piano_roll(tmp_path / "range.mid", out_of_range="drop").sum() == 0
    with pytest.raises(MidiError, match="range.mid"):
        midi_to_piano_roll(tmp_path / "range.mid", out_of_range="error")


def test_smpte_time_honours_the_tempo_map(tmp_path):
    """SMPTE division: ticks are seconds (25 fps x 40 = 1000 ticks/s), beats come from the tempo map."""
    division = -((25 << 8) - 40)  # high byte -25, low byte 40, as a signed 16-bit value
    assert (-(division >> 8), division & 0xFF) == (25, 40)
    events = [
        (0, on(60)), (500, off(60)),  # 0.5 s at 120 BPM = 1 beat = steps 0-1
        (1000, mido.MetaMessage("set_tempo", tempo=1_000_000)),  # from 1 s (beat 2): 60 BPM
        (1000, on(64)), (2000, off(64)),  # 1 s at 60 BPM = 1 beat = steps 4-5
        (2000, mido.MetaMessage("end_of_track")),
    ]
    midi = mido.MidiFile(type=0, ticks_per_beat=division)
    midi.tracks.append(track_from(events))
    midi.save(tmp_path / "smpte.mid")
    roll = midi_to_piano_roll(tmp_path / "smpte.mid")
    np.testing.assert_array_equal(roll, roll_from({0: [60], 1: [60], 4: [64], 5: [64]}, 6))
    # a note from 0.6 s to 0.7 s (beats 1.2-1.4 at 120 BPM, inside step 2): on only under the overlap rule
    events[2:2] = [(600, on(67)), (700, off(67))]
    midi = mido.MidiFile(type=0, ticks_per_beat=division)
    midi.tracks.append(track_from(events))
    midi.save(tmp_path / "smpte2.mid")
    np.testing.assert_array_equal(midi_to_piano_roll(tmp_path / "smpte2.mid"), roll)
    np.testing.assert_array_equal(midi_to_piano_roll(tmp_path / "smpte2.mid", grid_rule="overlap"),
                                  roll_from({0: [60], 1: [60], 2: [67], 4: [64], 5: [64]}, 6))


def _valid_bytes(tmp_path) -> bytes:
    roll = np.zeros((64, 88), np.uint8)
    roll[::3, 40] = 1
    roll[1::2, 50] = 1
    return piano_roll_to_midi(roll, tmp_path / "valid.mid").read_bytes()


def _absurd_ticks() -> bytes:
    """A valid-looking file with 4 delta times of 0x0FFFFFFF ticks at 1 tick per beat: ~2 billion steps."""
    body = b"".join(b"\xff\xff\xff\x7f\x90\x3c\x40" for _ in range(4)) + b"\x00\xff\x2f\x00"
    return b"MThd" + (6).to_bytes(4, "big") + b"\x00\x00\x00\x01\x00\x01" + b"MTrk" + len(body).to_bytes(4, "big") + body


def _absurd_silence() -> bytes:
    """No notes at all, only an end_of_track ~268 million beats in: the length cap alone must catch it."""
    body = b"\xff\xff\xff\x7f\xff\x2f\x00"
    return b"MThd" + (6).to_bytes(4, "big") + b"\x00\x00\x00\x01\x00\x01" + b"MTrk" + len(body).to_bytes(4, "big") + body


MALFORMED = {
    "absurd_silence": lambda tmp: _absurd_silence(),
    "empty": lambda tmp: b"",
    "truncated": lambda tmp: _valid_bytes(tmp)[: len(_valid_bytes(tmp)) // 2],
    "header_only": lambda tmp: _valid_bytes(tmp)[:14],
    "random": lambda tmp: np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "random_after_header": lambda tmp: (
        _valid_bytes(tmp)[:22] + np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    ),
    "absurd_length": lambda tmp: _absurd_ticks(),
    "huge_chunk_claim": lambda tmp: b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk\xff\xff\xff\xf0\x00\x90\x3c",
    "type2": lambda tmp: _valid_bytes(tmp)[:8] + b"\x00\x02" + _valid_bytes(tmp)[10:],
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_malformed_files_raise_midi_error_quickly(tmp_path, kind):
    bad_dir = tmp_path / "in"
    bad_dir.mkdir()
    path = bad_dir / f"bad-{kind}.mid"
    path.write_bytes(MALFORMED[kind](tmp_path))
    before = sorted(p.name for p in bad_dir.iterdir())
    result = None
    start = time.perf_counter()
    with pytest.raises(MidiError, match=f"bad-{kind}.mid"):
        result = midi_to_piano_roll(path)
    assert time.perf_counter() - start < 2.0
    assert result is None  # nothing returned
    assert sorted(p.name for p in bad_dir.iterdir()) == before  # nothing written
    assert isinstance(MidiError("x"), ValueError)


def test_step_cap_is_configurable(tmp_path):
    roll = np.zeros((40, 88), np.uint8)
    roll[0, 0] = 1
    path = piano_roll_to_midi(roll, tmp_path / "long.mid")
    assert midi_to_piano_roll(path, max_steps=40).shape == (40, 88)
    with pytest.raises(MidiError, match="max_steps"):
        midi_to_piano_roll(path, max_steps=39)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        midi_to_piano_roll(tmp_path / "nope.mid")


@pytest.mark.parametrize("ticks_per_beat,steps_per_beat", [(480, 2), (96, 4), (1, 1)])
def test_round_trip(tmp_path, ticks_per_beat, steps_per_beat):
    rng = np.random.default_rng(ticks_per_beat)
    roll = (rng.random((200, 88)) < 0.1).astype(np.uint8)
    roll[:3] = 0  # leading and trailing rests survive
    roll[-5:] = 0
    roll[10:40, 0] = 1  # held notes at both ends of the keyboard
    roll[10:40, 87] = 1
    path = piano_roll_to_midi(roll, tmp_path / "rt.mid", ticks_per_beat=ticks_per_beat, steps_per_beat=steps_per_beat)
    assert mido.MidiFile(path).type == 0
    np.testing.assert_array_equal(midi_to_piano_roll(path, steps_per_beat=steps_per_beat), roll)


def test_piano_roll_to_midi_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        piano_roll_to_midi(np.zeros((4, 87)), tmp_path / "a.mid")
    with pytest.raises(ValueError):
        piano_roll_to_midi(np.full((4, 88), 2), tmp_path / "a.mid")
    with pytest.raises(ValueError):
        piano_roll_to_midi(np.zeros((4, 88)), tmp_path / "a.mid", ticks_per_beat=5)
    assert not (tmp_path / "a.mid").exists()


def test_embedded_midi_is_the_first_embedded_test_chorale():
    roll = midi_to_piano_roll(EMBEDDED_MIDI, steps_per_beat=1)  # JSB Chorales steps are quarter notes
    np.testing.assert_array_equal(roll, load_music("embedded")["test"][0])


def test_parse_speed_is_reasonable(tmp_path):
    """About 4,000 notes (a few minutes of piano) parse well under a second."""
    rng = np.random.default_rng(0)
    roll = (rng.random((2000, 88)) < 0.03).astype(np.uint8)
    path = piano_roll_to_midi(roll, tmp_path / "speed.mid")
    start = time.perf_counter()
    midi_to_piano_roll(path)
    assert time.perf_counter() - start < 1.0


# ---------------------------------------------------------------------------------------------- against pretty_midi

pretty_midi = pytest.importorskip("pretty_midi", reason="the comparison with pretty_midi needs the dev extra")


def _fold(pitch: int) -> int:
    while pitch < 21:
        pitch += 12
    while pitch > 108:
        pitch -= 12
    return pitch


def pretty_midi_roll(path: Path, n_steps: int, steps_per_beat: int = 2, grid_rule: str = "start") -> np.ndarray:
    """The roll pretty_midi's notes give on our grid: each non-drum note from its start tick to its end tick,
    on in every step whose first instant it sounds at (``start``) or that it overlaps (``overlap``); pretty_midi
    times are converted back to the file's ticks."""
    pm = pretty_midi.PrettyMIDI(str(path))
    tpb = pm.resolution
    roll = np.zeros((n_steps, 88), np.uint8)
    for instrument in pm.instruments:
        if instrument.is_drum:
            continue
        for note in instrument.notes:
            start, end = pm.time_to_tick(note.start), pm.time_to_tick(note.end)
            first = start * steps_per_beat // tpb if grid_rule == "overlap" else -(-start * steps_per_beat // tpb)
            last = -(-end * steps_per_beat // tpb)
            assert last <= n_steps, "pretty_midi has a note beyond our roll's length"
            roll[first:last, _fold(note.pitch) - 21] = 1
    return roll


def _save(path: Path, tracks: list[list[tuple[int, mido.Message | mido.MetaMessage]]], tpb: int = 96) -> Path:
    midi = mido.MidiFile(type=0 if len(tracks) == 1 else 1, ticks_per_beat=tpb)
    for events in tracks:
        track, now = mido.MidiTrack(), 0
        for tick, msg in events:  # in the given order (ties keep it: note_off before or after note_on matters)
            track.append(msg.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    midi.save(path)
    return path


def _assert_same_as_pretty_midi(path: Path, steps_per_beat: int = 2, grid_rule: str = "overlap") -> np.ndarray:
    import warnings

    ours = midi_to_piano_roll(path, steps_per_beat, grid_rule=grid_rule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pretty_midi warns about tempo events outside track 0
        theirs = pretty_midi_roll(path, len(ours), steps_per_beat, grid_rule)
    np.testing.assert_array_equal(ours, theirs)
    return ours


END = mido.MetaMessage("end_of_track")


def test_a_key_struck_again_and_released_once_ends_both_notes(tmp_path):
    """The issue's bug: a second note_on of a sounding key, then one note_off. pretty_midi ends both notes at that
    note_off; pairing it with one note only left the other sounding to the end of the piece."""
    path = _save(tmp_path / "retrigger.mid", [[(0, on(60)), (48, on(60)), (96, off(60)), (480, END)]])
    roll = _assert_same_as_pretty_midi(path)
    assert roll[:, 60 - 21].tolist() == [1, 1] + [0] * 8


def test_overlapping_notes_of_one_key_end_at_the_first_release(tmp_path):
    path = _save(tmp_path / "overlap.mid", [[(0, on(60)), (48, on(60)), (96, off(60)), (192, off(60)), (288, END)]])
    roll = _assert_same_as_pretty_midi(path)
    assert roll[:, 60 - 21].tolist() == [1, 1, 0, 0, 0, 0]  # the second note_off finds nothing open


@pytest.mark.parametrize("order", ["off-then-on", "on-then-off"])
def test_release_and_strike_at_the_same_tick(tmp_path, order):
    """A note that starts at the tick of a note_off is not ended by it (pretty_midi keeps it open)."""
    at_96 = [(96, off(60)), (96, on(60))] if order == "off-then-on" else [(96, on(60)), (96, off(60))]
    path = _save(tmp_path / "same-tick.mid", [[(0, on(60)), *at_96, (192, off(60)), (288, END)]])
    roll = _assert_same_as_pretty_midi(path)
    assert roll[:, 60 - 21].tolist() == [1, 1, 1, 1, 0, 0]


def test_channels_and_tracks_pair_separately_with_running_status(tmp_path):
    """The same key on two channels and in two tracks: each (track, channel) pairs its own notes. mido writes
    running status (one status byte for consecutive events of one kind and channel), which is read back."""
    path = _save(tmp_path / "multi.mid", [
        [(0, mido.MetaMessage("set_tempo", tempo=400_000)), (0, on(60, ch=0)), (10, on(60, ch=1)), (20, on(60, ch=0)),
         (48, off(60, ch=1, zero_velocity=True)), (96, off(60, ch=0, zero_velocity=True)),
         (200, mido.MetaMessage("set_tempo", tempo=900_000)), (300, END)],
        [(0, on(64)), (144, on(64)), (240, off(64)), (380, END)],
    ])
    data = path.read_bytes()
    note_ons = sum(m.type in ("note_on", "note_off") for t in mido.MidiFile(path).tracks for m in t)
    assert data.count(b"\x90") + data.count(b"\x91") < note_ons  # running status in the file
    roll = _assert_same_as_pretty_midi(path)
    assert roll[:, 60 - 21].tolist()[:3] == [1, 1, 0] and roll[:, 64 - 21].tolist()[:6] == [1, 1, 1, 1, 1, 0]


def _random_events(rng: np.random.Generator, tpb: int, with_tempo: bool) -> list[tuple[int, mido.Message | mido.MetaMessage]]:
    """Notes on a few keys and channels with every awkward case: overlaps, retriggers, same-tick release and
    strike, zero-length and never-ended notes, stray note_offs, velocity-0 note_ons, out-of-range pitches."""
    events = []
    horizon = 8 * tpb
    for _ in range(int(rng.integers(5, 40))):
        ch = int(rng.choice([0, 0, 1, 2, 9]))
        pitch = int(rng.choice([60, 61, 62, 64, 12, 120])) if rng.random() < 0.9 else int(rng.integers(0, 128))
        start = int(rng.integers(0, horizon))
        length = int(rng.choice([0, 1, tpb // 4, tpb // 2, tpb, 3 * tpb]))
        kind = rng.random()
        events.append((start, on(pitch, ch, vel=int(rng.integers(1, 128)))))
        if kind < 0.75:  # ended (sometimes by a velocity-0 note_on)
            events.append((start + length, off(pitch, ch, zero_velocity=bool(rng.random() < 0.5))))
        elif kind < 0.85:  # a stray note_off as well
            events.append((int(rng.integers(0, horizon)), off(pitch, ch)))
        # else: never ended
    if with_tempo:
        for _ in range(int(rng.integers(1, 4))):
            events.append((int(rng.integers(0, horizon)), mido.MetaMessage("set_tempo", tempo=int(rng.integers(200_000, 1_500_000)))))
    order = rng.permutation(len(events))  # ties in a random order, then a stable sort by tick
    events = sorted((events[i] for i in order), key=lambda e: e[0])
    return events + [(max(e[0] for e in events) + int(rng.integers(0, 2 * tpb)), END)]


@pytest.mark.parametrize("seed", range(60))
def test_random_files_read_as_pretty_midi_reads_them(tmp_path, seed):
    rng = np.random.default_rng(seed)
    tpb = int(rng.choice([24, 96, 120, 480]))
    tracks = [_random_events(rng, tpb, with_tempo=(i == 0)) for i in range(int(rng.integers(1, 4)))]
    path = _save(tmp_path / f"random{seed}.mid", tracks, tpb)
    for steps_per_beat in (1, 2, 4):
        for grid_rule in ("start", "overlap"):
            _assert_same_as_pretty_midi(path, steps_per_beat, grid_rule)
