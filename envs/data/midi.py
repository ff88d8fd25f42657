"""MIDI files <-> 88-key piano rolls (docs/design.md#polyphonic-music: "any MIDI file can be streamed too").

Reading rules (what :func:`midi_to_piano_roll` does, and why):

* **Grid.** One step is ``1 / steps_per_beat`` of a beat; with the default ``steps_per_beat=2`` a step is an
  eighth note, the paper's time step (this project's JSB Chorales data, and so the shipped model, is on quarter
  notes: ``steps_per_beat=1``). For the usual metrical files (the header gives ticks per beat) the grid is fixed
  in ticks, ``ticks_per_beat / steps_per_beat`` ticks a step, so tempo changes do not move it: an eighth note
  stays an eighth note however fast it is played, which is what the benchmarks encode. The tempo map matters
  only for files timed in SMPTE frames (negative division), whose ticks are seconds: there each tick is
  converted to seconds and then to beats through the file's ``set_tempo`` events (120 BPM before the first one).
* **Which notes.** Every track and every channel is folded onto one 88-key roll, except percussion (MIDI channel
  10, mido's ``channel == 9``), whose note numbers name drums, not pitches. ``note_on`` with velocity 0 is a
  ``note_off``. Notes are paired exactly as pretty_midi pairs them (``PrettyMIDI._load_instruments``), so a
  roll equals the one pretty_midi's notes give on the same grid: within one track, a ``note_off`` ends *every*
  still-open note of its channel and pitch that started at an earlier tick (a key struck again before it was
  released, then released once, ends both notes there); a note started at the same tick as the ``note_off``
  stays open if an earlier note was ended with it, and is dropped otherwise (a zero-length note). A
  ``note_off`` with nothing open is ignored, and a note still open at the end of its track is dropped.
* **When a note is on** (``grid_rule``). A note sounds during ``[start, end)``. With ``grid_rule="start"``, the
  default, each step is sampled at its first instant: a key is on in step t when one of its notes sounds at
  ``t * step`` (``start <= t * step < end``), so a voice gives at most one key a step. This is how the JSB
  Chorales benchmark was made: read this way, real chorales give the data set's sequences but for differences
  of edition (at most 4 keys a step; docs/design.md#midi-reading-the-grid). A note that covers no grid instant
  (a passing note inside a beat) is then not in the roll at all, and neither is a performed, unquantised note
  that starts just after the beat and ends before the next. ``grid_rule="overlap"``, the rule before, keeps
  every note: a key is on in every step whose interval one of its notes overlaps by a positive amount (a note
  active at any point during a step counts as on for that step), which puts every passing note of a chorale
  into its beat. Under either rule consecutive steps of one key cannot show a re-articulation: a roll is a set
  of sounding keys per step.
* **Length.** ``ceil(last event tick / ticks per step)`` steps, the last event usually being the
  ``end_of_track``, so rests at the start and at the end are kept.
* **Range.** Notes outside 21..108 (A0..C8) are moved by whole octaves into the range by default
  (``out_of_range="fold"``); ``"drop"`` discards them and ``"error"`` raises :class:`MidiError`.
* **Malformed input.** Anything that is not a readable type-0 or type-1 MIDI file (empty, truncated, random
  bytes, bad header, type 2, a time axis longer than ``max_steps`` steps, a file larger than ``max_bytes``)
  raises :class:`MidiError` naming the file, before any output exists. The file size, the chunk structure
  (a truncated file fails before mido parses any event) and the length in steps are checked before anything
  large is parsed or allocated, so a hostile file fails in milliseconds. A valid file parses at roughly
  0.4 MB/s (about 100,000 MIDI messages a second, mostly inside mido).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import mido
import numpy as np

__all__ = [
    "MidiError",
    "midi_to_piano_roll",
    "piano_roll_to_midi",
    "LOWEST_NOTE",
    "HIGHEST_NOTE",
    "N_KEYS",
    "DEFAULT_MAX_STEPS",
    "DEFAULT_MAX_BYTES",
    "GRID_RULES",
]

LOWEST_NOTE = 21  # A0, column 0 of a piano roll
HIGHEST_NOTE = 108  # C8, column 87
N_KEYS = HIGHEST_NOTE - LOWEST_NOTE + 1
PERCUSSION_CHANNEL = 9  # "channel 10" counted from 1
DEFAULT_MAX_STEPS = 1_000_000  # about 69 hours of eighth notes at 120 BPM
DEFAULT_MAX_BYTES = 32 * 2**20  # real MIDI files are rarely above a few MiB
_SMPTE_FPS = {24: 24.0, 25: 25.0, 29: 29.97, 30: 30.0}
GRID_RULES = ("start", "overlap")  # when a note is on in a step: module docstring


class MidiError(ValueError):
    """A MIDI file that cannot be read into a piano roll; the message names the file."""


def _fold(pitch: np.ndarray, mode: str, path: Path) -> np.ndarray:
    """Bring MIDI note numbers into 21..108 (see the module docstring); returns the kept pitches."""
    low, high = pitch < LOWEST_NOTE, pitch > HIGHEST_NOTE
    if not (low.any() or high.any()):
        return pitch
    if mode == "error":
        bad = sorted(set(pitch[low | high].tolist()))
        raise MidiError(f"{path}: notes {bad} lie outside the piano range 21..108 (out_of_range='error')")
    if mode == "drop":
        return np.where(low | high, -1, pitch)
    pitch = pitch.copy()
    pitch[low] += 12 * -((pitch[low] - LOWEST_NOTE) // 12)  # ceil((21 - p) / 12) octaves up
    pitch[high] -= 12 * -((HIGHEST_NOTE - pitch[high]) // 12)  # ceil((p - 108) / 12) octaves down
    return pitch


def _smpte_beats(ticks: np.ndarray, tempo_map: list[tuple[int, int]], ticks_per_second: float) -> np.ndarray:
    """Beats elapsed at each tick of an SMPTE-timed file, integrating the tempo map (tick, us per beat)."""
    changes = sorted(tempo_map)
    bounds = [0] + [t for t, _ in changes]
    tempos = [500_000] + [tempo for _, tempo in changes]
    # Beats at each segment start, then a linear piece inside each segment.
    seg_beats = [0.0]
    for i in range(1, len(bounds)):
        seg_beats.append(seg_beats[-1] + (bounds[i] - bounds[i - 1]) / ticks_per_second / (tempos[i - 1] / 1e6))
    seg = np.searchsorted(np.asarray(bounds), ticks, side="right") - 1
    start = np.asarray(bounds, dtype=np.float64)[seg]
    per_beat = np.asarray(tempos, dtype=np.float64)[seg] / 1e6
    return np.asarray(seg_beats)[seg] + (ticks - start) / ticks_per_second / per_beat


def _check_chunks(data: bytes, path: Path) -> None:
    """Walk the chunk headers (no events): a truncated or mislabelled file fails here in microseconds,
    before mido spends time parsing megabytes of events."""
    if data[:4] != b"MThd" or len(data) < 14:
        raise MidiError(f"{path}: no MIDI header (MThd) at the start; not a MIDI file")
    header_len = int.from_bytes(data[4:8], "big")
    n_tracks = int.from_bytes(data[10:12], "big")
    pos, found = 8 + header_len, 0
    while found < n_tracks:
        if pos + 8 > len(data):
            raise MidiError(f"{path}: truncated: the header announces {n_tracks} tracks, the file holds {found}")
        size = int.from_bytes(data[pos + 4 : pos + 8], "big")
        if pos + 8 + size > len(data):
            raise MidiError(f"{path}: truncated: a chunk claims {size} bytes, {len(data) - pos - 8} remain")
        found += data[pos : pos + 4] == b"MTrk"
        pos += 8 + size


def midi_to_piano_roll(
    path: str | os.PathLike[str],
    steps_per_beat: int = 2,
    *,
    grid_rule: str = "start",
    out_of_range: str = "fold",
    max_steps: int = DEFAULT_MAX_STEPS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Read a type-0 or type-1 MIDI file into a ``[T, 88]`` uint8 piano roll (column k = MIDI note 21 + k).

    The rules (grid, tempo map, percussion, ``grid_rule``: ``"start"`` samples each step at its first instant as
    the JSB Chorales benchmark was made, ``"overlap"`` counts any note sounding during the step; range) are in
    the module docstring. Raises :class:`MidiError` (a ``ValueError``) naming the file for anything malformed,
    ``FileNotFoundError`` for a missing file.
    """
    path = Path(path)
    if steps_per_beat < 1:
        raise ValueError(f"steps_per_beat must be a positive integer, got {steps_per_beat}")
    if grid_rule not in GRID_RULES:
        raise ValueError(f"grid_rule must be 'start' or 'overlap', got {grid_rule!r}")
    if out_of_range not in ("fold", "drop", "error"):
        raise ValueError(f"out_of_range must be 'fold', 'drop' or 'error', got {out_of_range!r}")
    size = path.stat().st_size  # FileNotFoundError for a missing file: not a malformed one
    if size == 0:
        raise MidiError(f"{path}: empty file, not a MIDI file")
    if size > max_bytes:
        raise MidiError(f"{path}: {size} bytes is larger than max_bytes={max_bytes}; refusing to parse")
    data = path.read_bytes()
    _check_chunks(data, path)
    try:
        # From memory: mido's reads of a claimed chunk length then cannot over-allocate.
        midi = mido.MidiFile(file=io.BytesIO(data))
    except Exception as exc:  # mido raises OSError, EOFError, KeyError, ValueError, ... on bad bytes
        raise MidiError(f"{path}: not a readable MIDI file ({type(exc).__name__}: {exc})") from exc
    if midi.type == 2:
        raise MidiError(f"{path}: type-2 MIDI files (independent sequential patterns) are not supported")

    division = midi.ticks_per_beat
    if division == 0:
        raise MidiError(f"{path}: the header's time division is 0")

    starts: list[int] = []
    ends: list[int] = []  # -1: never ended (dropped)
    pitches: list[int] = []
    tempo_map: list[tuple[int, int]] = []
    end_tick = 0
    for track in midi.tracks:
        tick = 0
        open_notes: dict[tuple[int, int], list[int]] = {}  # (channel, pitch) -> indices of notes still sounding
        for msg in track:
            tick += msg.time
            kind = msg.type
            if kind == "note_on" or kind == "note_off":
                if msg.channel == PERCUSSION_CHANNEL:
                    continue
                key = (msg.channel, msg.note)
                if kind == "note_on" and msg.velocity > 0:
                    open_notes.setdefault(key, []).append(len(starts))
                    starts.append(tick)
                    ends.append(-1)
                    pitches.append(msg.note)
                elif key in open_notes:  # pretty_midi's rule (module docstring): end every earlier note of the key
                    ended = [i for i in open_notes[key] if starts[i] != tick]
                    same_tick = [i for i in open_notes[key] if starts[i] == tick]
                    for i in ended:
                        ends[i] = tick
                    if ended and same_tick:
                        open_notes[key] = same_tick
                    else:
                        del open_notes[key]
            elif kind == "set_tempo":
                tempo_map.append((tick, msg.tempo))
        end_tick = max(end_tick, tick)
    closed = [i for i, e in enumerate(ends) if e >= 0]
    starts = [starts[i] for i in closed]
    ends = [ends[i] for i in closed]
    pitches = [pitches[i] for i in closed]

    if division > 0:  # metrical time: the grid is fixed in ticks (exact integer arithmetic)
        # Python ints first, so an absurd tick count is refused before any array exists.
        n_steps = -((-end_tick * steps_per_beat) // division)
        if n_steps > max_steps:
            raise MidiError(f"{path}: {n_steps} steps (last event at tick {end_tick}) exceed max_steps={max_steps}")
        start = np.asarray(starts, dtype=np.int64) * steps_per_beat
        end = np.asarray(ends, dtype=np.int64) * steps_per_beat
        # Step t begins at tick t * division / steps_per_beat: "start" takes the steps whose beginning lies in
        # [start, end), "overlap" also the step the note starts inside.
        first = -((-start) // division) if grid_rule == "start" else start // division
        last = -((-end) // division)
    else:  # SMPTE: ticks are fractions of a second, the tempo map gives beats
        fps_code, ticks_per_frame = -(division >> 8), division & 0xFF
        if fps_code not in _SMPTE_FPS or ticks_per_frame == 0:
            raise MidiError(f"{path}: invalid SMPTE time division ({fps_code} fps, {ticks_per_frame} ticks/frame)")
        ticks_per_second = _SMPTE_FPS[fps_code] * ticks_per_frame
        total = float(_smpte_beats(np.asarray([end_tick], dtype=np.float64), tempo_map, ticks_per_second)[0])
        n_steps = int(np.ceil(total * steps_per_beat - 1e-9))
        if n_steps > max_steps:
            raise MidiError(f"{path}: {n_steps} steps exceed max_steps={max_steps}")
        start_b = _smpte_beats(np.asarray(starts, dtype=np.float64), tempo_map, ticks_per_second) * steps_per_beat
        end_b = _smpte_beats(np.asarray(ends, dtype=np.float64), tempo_map, ticks_per_second) * steps_per_beat
        first = np.ceil(start_b - 1e-9) if grid_rule == "start" else np.floor(start_b + 1e-9)
        first = first.astype(np.int64)
        last = np.ceil(end_b - 1e-9).astype(np.int64)

    if grid_rule == "overlap":
        last = np.maximum(last, first + 1)  # every kept note lasts at least one tick: it is on in its first step
    pitch = _fold(np.asarray(pitches, dtype=np.int64), out_of_range, path)
    keep = (pitch >= 0) & (last > first)  # "start": a note between two grid instants sounds at none
    # Difference array: +1 where a note starts, -1 after it ends; a key is on where the running sum is > 0.
    diff = np.zeros((n_steps + 1, N_KEYS), dtype=np.int32)
    cols = pitch[keep] - LOWEST_NOTE
    np.add.at(diff, (first[keep], cols), 1)
    np.add.at(diff, (last[keep], cols), -1)
    return (np.cumsum(diff[:-1], axis=0) > 0).astype(np.uint8)


def piano_roll_to_midi(
    roll: np.ndarray,
    path: str | os.PathLike[str],
    ticks_per_beat: int = 480,
    tempo: int = 500_000,
    velocity: int = 80,
    steps_per_beat: int = 2,
) -> Path:
    """Write a ``[T, 88]`` {0,1} piano roll as a type-0 MIDI file that reads back to the same roll.

    A run of consecutive on-steps of a key becomes one note spanning exactly those steps; the
    ``end_of_track`` sits at step T so trailing rests survive. ``tempo`` is in microseconds per beat
    (500000 = 120 BPM). Returns the path written.
    """
    roll = np.asarray(roll)
    if roll.ndim != 2 or roll.shape[1] != N_KEYS:
        raise ValueError(f"roll must have shape [T, {N_KEYS}], got {roll.shape}")
    if not np.isin(roll, (0, 1)).all():
        raise ValueError("roll must hold only 0 and 1")
    if ticks_per_beat % steps_per_beat:
        raise ValueError(f"ticks_per_beat={ticks_per_beat} must be a multiple of steps_per_beat={steps_per_beat}")
    if not 0 < velocity < 128:
        raise ValueError(f"velocity must be in 1..127, got {velocity}")
    step_ticks = ticks_per_beat // steps_per_beat
    on = roll.astype(np.int8)
    padded = np.zeros((on.shape[0] + 2, N_KEYS), dtype=np.int8)
    padded[1:-1] = on
    change = np.diff(padded, axis=0)  # +1: a note starts at that step; -1: it ended before that step
    events = [(int(t) * step_ticks, 0, int(k)) for t, k in zip(*np.nonzero(change == -1))]
    events += [(int(t) * step_ticks, 1, int(k)) for t, k in zip(*np.nonzero(change == 1))]
    events.sort()  # by tick, note_offs before note_ons at the same tick
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    now = 0
    for tick, is_on, key in events:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=LOWEST_NOTE + key, velocity=velocity if is_on else 0, time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=on.shape[0] * step_ticks - now))
    midi = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    path = Path(path)
    midi.save(path)
    return path
