"""Stream a MIDI file through a music predictor, one step of the note grid at a time, and let it continue the piece.

    rladder-stream stream-midi song.mid                                   # per-step NLL with the shipped model
    rladder-stream stream-midi song.mid --continue 32 --out more.mid --seed 0   # then 32 sampled steps

The file is read into an 88-key piano roll (:func:`rladder_stream.envs.data.midi.midi_to_piano_roll`: a grid of
``--steps-per-beat`` steps per beat, 2 = eighth notes as docs/design.md#polyphonic-music, 1 = quarter notes as this
project's JSB Chorales
data and so the shipped model's default; every track and channel folded, percussion left out; ``--grid-rule start``,
the default, sounds a key in a step when a note sounds at the step's first instant, as the JSB benchmark was
sampled, ``--grid-rule overlap`` when one sounds at any time during the step) and played through
``PolyphonicMusic-v0`` with ``score_first_step=True``: the predictor first hears silence, forecasts step 1,
hears step 1, forecasts step 2, and so on (the one streaming loop of docs/design.md#the-environments-contract), so
the NLL per time step printed at the end is
the field's number for this piece (docs/design.md#polyphonic-music), the same the training code reports. Every
forecast goes through
the predictor's ``step`` (:class:`~rladder_stream.streaming.predictor.Predictor`, or ONNX Runtime with ``--runtime onnx``).

With ``--continue N`` the predictor then runs free for N steps: each step's notes are drawn from its forecast
(independent Bernoulli draws per key, seeded with ``--seed``) or, with ``--threshold P``, every key with
probability at least P sounds; the notes are fed back as the next observation. The continuation is written as
a MIDI file (``--out``; with ``--include-input`` the input comes first) and the input and continuation as a
piano-roll picture (``--png``: the pitch axis spans the notes played; a piece longer than 32 steps is shown by its
last 32 steps before the continuation, the whole of it with ``--png-full``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rladder_stream.envs.data.midi import GRID_RULES, LOWEST_NOTE, N_KEYS, MidiError, midi_to_piano_roll, piano_roll_to_midi
from rladder_stream.envs.polyphonic_music import PolyphonicMusicEnv

from ..arguments import OneLineArgumentParser
from ..errors import UsageError
from ..streaming.episode import forecast_for, play_episode
from .loading import MUSIC_PRETRAINED, add_runtime_argument, pretrained_path, predictor_for

JSB_STEPS_PER_BEAT = 1  # this project's JSB Chorales data is on quarter notes (shared/data/music/SOURCE.md)


def music_pretrained_path() -> Path | None:
    """The music RLadder checkpoint shipped with the package, if this installation has one."""
    return pretrained_path(MUSIC_PRETRAINED)


@dataclass(frozen=True)
class StreamRecord:
    """A MIDI file streamed through a predictor, and what it generated after it.

    Attributes:
        roll: ``[T, 88]`` the file's piano roll.
        forecasts: ``[T, 88]`` the probability of each key the predictor gave each step before hearing it.
        nll: ``[T]`` the NLL of each step under its forecast (nats, summed over the keys; minus the reward).
        continuation: ``[N, 88]`` the generated steps (``N = 0`` without ``--continue``).
        continuation_forecasts: ``[N, 88]`` the forecasts they were drawn from.
        seconds: wall time of the ``T + N`` predictor steps.
    """

    roll: np.ndarray
    forecasts: np.ndarray
    nll: np.ndarray
    continuation: np.ndarray
    continuation_forecasts: np.ndarray
    seconds: float

    @property
    def nll_per_step(self) -> float:
        """The field's NLL per time step of the file (docs/design.md#polyphonic-music): mean over all T steps."""
        return float(self.nll.mean())

    @property
    def ticks_per_second(self) -> float:
        ticks = len(self.roll) + len(self.continuation)
        return ticks / self.seconds if self.seconds > 0 else float("inf")


def stream_midi(
    predictor: Any,
    midi_path: str | Path,
    continue_steps: int = 0,
    *,
    seed: int | None = 0,
    threshold: float | None = None,
    on_step: Callable[[int, np.ndarray, float], None] | None = None,
    steps_per_beat: int = 2,
    grid_rule: str = "start",
) -> StreamRecord:
    """Stream ``midi_path`` through ``predictor`` (field-convention scoring), then generate ``continue_steps`` steps.

    Args:
        predictor: a one-stream music predictor (``obs_shape == (88,)``), e.g. :class:`~rladder_stream.Predictor`
            or :class:`rladder_stream.export.runtime.OnnxPredictor`; it is reset first.
        midi_path: a type-0 or type-1 MIDI file; a malformed one raises :class:`rladder_stream.envs.data.midi.MidiError`.
        continue_steps: how many steps to generate after the file.
        seed: seed of the Bernoulli draws of the continuation.
        threshold: instead of drawing, sound every key whose forecast is at least this (in (0, 1]).
        on_step: called as ``on_step(t, notes, nll)`` after each step of the file is scored.
        steps_per_beat: the grid the file is read on: 2 = eighth notes (docs/design.md#polyphonic-music), 1 = quarter notes (the
            grid of this project's JSB Chorales data, on which the shipped music model was trained).
        grid_rule: when a note is on in a step: ``"start"`` (it sounds at the step's first instant, as the JSB
            benchmark was sampled) or ``"overlap"`` (at any time during the step); envs/data/midi.py.
    """
    check_music_model(predictor)  # before the file is read: a model mistake is said first
    roll = midi_to_piano_roll(midi_path, steps_per_beat, grid_rule=grid_rule)
    return stream_roll(predictor, roll, continue_steps, seed=seed, threshold=threshold, on_step=on_step)


def check_music_model(predictor: Any) -> None:
    """Refuse a predictor that does not observe the 88 piano keys (a digit model)."""
    if tuple(getattr(predictor, "obs_shape", ())) != (N_KEYS,):
        raise UsageError(f"a music model observes 88 keys; this one observes {getattr(predictor, 'obs_shape', None)}")


def stream_roll(
    predictor: Any,
    roll: np.ndarray,
    continue_steps: int = 0,
    *,
    seed: int | None = 0,
    threshold: float | None = None,
    on_step: Callable[[int, np.ndarray, float], None] | None = None,
) -> StreamRecord:
    """:func:`stream_midi` for a ``[T, 88]`` {0,1} piano roll already read (or taken from a data set)."""
    check_music_model(predictor)
    if continue_steps < 0:
        raise ValueError(f"continue_steps must be >= 0, got {continue_steps}")
    if threshold is not None and not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    env = PolyphonicMusicEnv(sequences=[roll], score_first_step=True)
    roll = env.sequences[0].astype(np.float32)
    rng = np.random.default_rng(seed)
    forecasts, nll = np.zeros_like(roll), np.zeros(len(roll))
    started = time.perf_counter()
    # the one streaming loop of docs/design.md#the-environments-contract; the first observation is silence:
    # "nothing heard yet"
    for tick in play_episode(predictor, env, options={"index": 0}):
        forecasts[tick.index], nll[tick.index] = tick.forecast, -tick.reward
        if on_step is not None:
            on_step(tick.index, tick.next_obs, nll[tick.index])
        obs = tick.next_obs
    continuation = np.zeros((continue_steps, N_KEYS), np.float32)
    continuation_forecasts = np.zeros_like(continuation)
    for n in range(continue_steps):  # free running: the model hears its own notes
        p = forecast_for(predictor.step(obs), obs.shape)
        notes = p >= threshold if threshold is not None else rng.random(N_KEYS) < p
        continuation_forecasts[n], continuation[n] = p, notes
        obs = continuation[n]
    return StreamRecord(roll, forecasts, nll, continuation, continuation_forecasts, time.perf_counter() - started)


def _first_tempo(path: Path) -> int:
    """The file's first ``set_tempo`` (microseconds per beat), 500000 (120 BPM) without one."""
    import mido

    for track in mido.MidiFile(path).tracks:
        for msg in track:
            if msg.type == "set_tempo":
                return int(msg.tempo)
    return 500_000


def _notes(row: np.ndarray) -> str:
    keys = np.flatnonzero(row) + LOWEST_NOTE
    return " ".join(str(k) for k in keys) if keys.size else "-"


def stream_midi_cli_main(argv: list[str]) -> int:
    """``rladder-stream stream-midi FILE.mid [--model CKPT] [--runtime torch|onnx] [--continue N --out out.mid]``."""
    from .figures import ROLL_CONTEXT_STEPS, piano_roll_figure

    parser = OneLineArgumentParser(
        prog="rladder-stream stream-midi",
        description="Stream a MIDI file through a music model, one step of a note grid at a time. Before each step the "
                    "model gives each of the 88 piano keys a probability of sounding; the negative log-likelihood "
                    "(NLL) of the notes that then come says how well it predicted them. The command prints each step's "
                    "NLL and notes, and the NLL per time step of the whole piece, the number the music benchmarks "
                    "report. With --continue N the model then plays on by itself for N steps, hearing its own notes, "
                    "and the continuation is written as a MIDI file and a piano-roll picture.",
        examples=["rladder-stream stream-midi song.mid",
                  "rladder-stream stream-midi song.mid --continue 32 --out more.mid --seed 1",
                  "rladder-stream stream-midi song.mid --model runs/jsb/last.pt --steps-per-beat 2 --every 0"])
    parser.add_argument("midi", help="the MIDI file to stream (type 0 or 1; every track and channel is played, "
                                     "percussion left out)")
    parser.add_argument("--model", help=f"a music model file: a checkpoint (.pt) or an exported ONNX step (.onnx) "
                                        f"(default: {MUSIC_PRETRAINED}, which comes with the package, trained on Bach "
                                        "chorales)")
    add_runtime_argument(parser)
    parser.add_argument("--continue", dest="continue_steps", type=int, default=0, metavar="N",
                        help="generate N steps (of the --steps-per-beat grid) after the file (default 0)")
    parser.add_argument("--out", help="MIDI file for the continuation (default: <FILE>-continued.mid when --continue is given)")
    parser.add_argument("--png", help="piano-roll picture of input and continuation (default: --out with .png)")
    parser.add_argument("--png-full", action="store_true",
                        help="draw the whole piece in --png (default: on a piece longer than 32 steps, the input's last "
                             "32 steps and the continuation; the pitch axis always spans the notes played)")
    parser.add_argument("--include-input", action="store_true", help="write the input before the continuation in --out")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--seed", type=int, default=0, help="seed of the sampled continuation (default 0)")
    how.add_argument("--threshold", type=float, default=None, metavar="P",
                     help="no sampling: sound every key with forecast probability >= P")
    parser.add_argument("--steps-per-beat", type=int, default=None, metavar="S",
                        help="grid of the piano roll: 2 = eighth notes, 1 = quarter notes (default: 1 for the shipped JSB "
                             "model, whose training data is on quarter notes; 2 for any other model)")
    parser.add_argument("--grid-rule", choices=GRID_RULES, default="start",
                        help="when a key is on in a step: 'start' when a note sounds at the step's first instant, as "
                             "the JSB benchmark was sampled (default; passing notes inside a step are left out), "
                             "'overlap' when one sounds at any time during the step")
    parser.add_argument("--every", type=int, default=1, metavar="K", help="print every K-th step (default 1; 0: summary only)")
    args = parser.parse_args(argv)
    if args.continue_steps < 0:
        parser.error(f"--continue must be >= 0, got {args.continue_steps}")
    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
        parser.error(f"--threshold must be in (0, 1], got {args.threshold}")
    if args.steps_per_beat is not None and args.steps_per_beat < 1:
        parser.error(f"--steps-per-beat must be >= 1, got {args.steps_per_beat}")
    steps_per_beat = args.steps_per_beat or (JSB_STEPS_PER_BEAT if args.model is None else 2)
    if args.every < 0:
        parser.error(f"--every must be >= 0, got {args.every}")
    if (args.out or args.png or args.png_full or args.include_input) and not args.continue_steps:
        parser.error("--out, --png, --png-full and --include-input need --continue N")
    midi = Path(args.midi)
    if not midi.is_file():  # said before the model loads; a bad file or model is a user error (exit 1)
        raise MidiError(f"{midi} is a folder, not a MIDI file" if midi.is_dir() else f"{midi}: no such file")
    predictor, source = predictor_for(args.model, args.runtime, shipped=MUSIC_PRETRAINED)
    print(f"model: {source}\nfile: {midi} ({steps_per_beat} step{'s' * (steps_per_beat > 1)} per beat, "
          f"{args.grid_rule} rule)")

    def show(t: int, notes: np.ndarray, nll: float) -> None:
        if args.every and t % args.every == 0:
            print(f"step {t:5d}  nll {nll:7.3f}  notes {_notes(notes)}")

    record = stream_midi(predictor, midi, args.continue_steps, seed=args.seed, threshold=args.threshold, on_step=show,
                         steps_per_beat=steps_per_beat, grid_rule=args.grid_rule)
    print(f"{len(record.roll)} steps: NLL per time step {record.nll_per_step:.4f} nats (88-key Bernoulli, first step "
          f"from silence); {len(record.roll) + len(record.continuation)} ticks in {record.seconds:.2f} s = "
          f"{record.ticks_per_second:.0f} ticks/s")
    if not args.continue_steps:
        return 0
    how = f"threshold {args.threshold}" if args.threshold is not None else f"sampled, seed {args.seed}"
    print(f"continuation: {args.continue_steps} steps ({how}), {record.continuation.sum(1).mean():.2f} notes per step")
    out = Path(args.out) if args.out else midi.with_name(f"{midi.stem}-continued.mid")
    written = np.concatenate([record.roll, record.continuation]) if args.include_input else record.continuation
    out.parent.mkdir(parents=True, exist_ok=True)
    piano_roll_to_midi(written.astype(np.uint8), out, tempo=_first_tempo(midi), steps_per_beat=steps_per_beat)
    png = Path(args.png) if args.png else out.with_suffix(".png")
    picture = piano_roll_figure(
        np.concatenate([record.roll, record.continuation]),
        np.concatenate([record.forecasts, record.continuation_forecasts]),
        split=len(record.roll),
        title=f"{midi.name} streamed through {Path(source.split(' (')[0]).name}, then {args.continue_steps} steps "
              f"continued ({how})",
        steps_per_beat=steps_per_beat,
        context=None if args.png_full else ROLL_CONTEXT_STEPS,
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    picture.save(png)
    print(f"wrote {out} ({len(written)} steps{', input first' if args.include_input else ''}) and {png}")
    return 0
