"""Polyphonic music as a prediction stream: ``rladder_stream/PolyphonicMusic-v0`` (docs/design.md#polyphonic-music)."""

from __future__ import annotations

import os
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .actions import parse_action
from .base import reset_option, rows_to_reset
from .data.midi import N_KEYS, midi_to_piano_roll
from .data.music import EMBEDDED, SPLITS, canonical_name, load_music, music_batches
from .data.paths import resolve_data_dir
from .scoring import bernoulli_log_likelihood

__all__ = ["PolyphonicMusicEnv", "PolyphonicMusicVectorEnv", "nll_per_step", "scored_steps"]


def scored_steps(lengths: Sequence[int], score_first_step: bool = False) -> int:
    """How many time steps an episode per sequence scores: ``sum(T - 1)``, or ``sum(T)`` with the
    ``score_first_step`` convention (see :class:`PolyphonicMusicEnv`)."""
    return int(sum(int(t) - (0 if score_first_step else 1) for t in lengths))


def nll_per_step(total_reward: float, n_scored_steps: int) -> float:
    """NLL per time step in nats from summed rewards: ``-total_reward / n_scored_steps``.

    ``n_scored_steps`` is the number of ``env.step`` calls (each scores one step), i.e.
    :func:`scored_steps` of the sequence lengths. With ``score_first_step=False`` (default) the first step of
    each sequence is not scored, so the number is not exactly the field's convention, which averages over all
    T steps including the first one predicted from an empty context; ``score_first_step=True`` reproduces it.
    """
    if n_scored_steps <= 0:
        raise ValueError("no scored steps")
    return -float(total_reward) / n_scored_steps


class PolyphonicMusicEnv(gym.Env[np.ndarray, np.ndarray]):
    """
    ## Description

    Streams a piece of polyphonic music one time step at a time (an eighth note in the paper, a quarter note in
    this project's JSB Chorales data), as an 88-key piano-roll row
    (column k = MIDI note 21 + k, A0..C8). The agent is a predictor: after each step it forecasts the
    probability that each key sounds in the next step, and is rewarded with the log-likelihood of what comes.
    The pieces are the four benchmarks of Boulanger-Lewandowski et al. (ICML 2012), Piano-midi.de,
    Nottingham, MuseData and JSB Chorales, with their train/valid/test splits, or any MIDI file.

    An episode is one sequence of T steps (or, in ``shuffle`` mode with ``seq_len``, a random crop of one).

    ## Action Space

    ``Box(0, 1, (88,), float32)``: the forecast probability of each key in the next step. A dict
    ``{"forecast": array, "class_probs": ...}`` (the form ``StepOutput.action()`` takes for models with class
    beliefs) is accepted too; class beliefs are ignored here (``rladder_stream.envs.actions.parse_action``). An action of the
    wrong shape, with NaN, or outside [0, 1] raises ``ValueError`` and leaves the environment unchanged.

    ## Observation Space

    ``Box(0, 1, (88,), float32)`` with values in {0, 1}: the keys sounding in the current step.

    ## Rewards

    The Bernoulli log-likelihood of the next step under the forecast, summed over the 88 keys (probabilities
    clipped to [1e-6, 1 - 1e-6]; ``rladder_stream.envs.scoring.bernoulli_log_likelihood``, the same for every environment of
    the package). The sum of rewards over an episode is minus the NLL of the scored steps.

    **Which steps are scored (the NLL convention).** ``reset`` returns step 1, so by default the forecasts
    score steps 2..T: T - 1 rewards per sequence, and ``nll_per_step(sum of rewards, number of steps)`` is
    the NLL per predicted step. The field's number (docs/design.md#polyphonic-music; Boulanger-Lewandowski et al. and the RLadder
    paper) averages the 88-key Bernoulli NLL over *all* T steps of every sequence of the split, the first one
    predicted from an empty context. ``score_first_step=True`` reproduces that exactly: ``reset`` then returns
    an all-zero observation standing for "nothing heard yet" (``info["t"] == -1``) and the episode scores
    all T steps.

    ## Starting State

    Step 1 of the episode's sequence (all zeros with ``score_first_step=True``). Which sequence: with
    ``reset(options={"index": i})`` sequence i of the split; otherwise, in the default sequential mode, the
    split's sequences in order 0, 1, 2, ... (cycling); ``reset(seed=...)`` restarts the walk at sequence 0, so
    ``reset(seed=s)`` then ``n`` more resets visit sequences 0..n in order whatever ``s`` is. With
    ``shuffle=True`` each reset draws a sequence (and, with ``seq_len``, a crop) with ``self.np_random``
    through :func:`rladder_stream.envs.data.music.music_batches`, the generator training uses; then the seed decides.

    ## Episode End

    Terminated after the last step of the sequence has been forecast (T - 1 steps, or T with
    ``score_first_step``). Never truncated. Calling ``step`` after the end, or before ``reset``, raises
    ``RuntimeError``.

    ## Arguments

    ```python
    gymnasium.make("rladder_stream/PolyphonicMusic-v0", dataset=None, split="test", data_dir=None,
                   midi_path=None, steps_per_beat=2, grid_rule="start", sequences=None, shuffle=False,
                   seq_len=None, score_first_step=False, form="auto", render_mode=None, render_steps=64)
    ```

    * ``dataset``: ``"JSB Chorales"``, ``"Nottingham"``, ``"MuseData"``, ``"Piano-midi.de"`` (short forms
      ``jsb``, ``muse``, ``piano`` accepted), ``"embedded"`` (a 12/4/4-sequence JSB excerpt shipped in the
      package), or ``None``: JSB Chorales if a data folder resolves, else the embedded excerpt.
    * ``split``: ``"train"``, ``"valid"`` or ``"test"``.
    * ``data_dir``: folder holding ``music/`` (default ``$RLADDER_STREAM_DATA``, then the cache folder; see
      ``rladder_stream.envs.data.paths``).
    * ``midi_path``: stream this MIDI file instead (one sequence; ``rladder_stream.envs.data.midi.midi_to_piano_roll``).
      ``steps_per_beat`` is its grid (2: eighth notes; 1: quarter notes, the JSB data's and the shipped model's);
      ``grid_rule`` when a note is on in a step: ``"start"`` (default) when it sounds at the step's first instant,
      the rule the JSB Chorales benchmark was sampled with (passing notes inside a beat are left out), or
      ``"overlap"`` when it sounds at any time during the step. Both only for ``midi_path``.
    * ``sequences``: stream these ``[T, 88]`` {0,1} rolls instead.
    * ``shuffle``: draw random sequences with ``self.np_random`` (training); ``seq_len``: crop length in that
      mode (``None``: whole sequences).
    * ``score_first_step``: score step 1 too (the field's convention, see Rewards).
    * ``form``: ``"auto"``, ``"pickle"`` or ``"mat"``: which file form of the data set to read.
    * ``render_mode``: ``"rgb_array"`` or ``None``; ``render_steps``: how many steps the image shows.

    ## Info

    ``reset``: ``dataset``, ``split``, ``index`` (sequence number in the split), ``start`` (crop start in
    the sequence, 0 for whole sequences), ``length`` (steps in this episode, T), ``t`` (position of the
    observation within the episode: 0, or -1 for the silent pre-step). ``step``: ``index`` and ``t`` (the
    same keys' meaning; ``t`` is the digit environments' name too).
    Nothing is hidden from the predictor here: the observation is the ground truth.

    ## Rendering

    ``rgb_array``: an ``(2 * 88, 4 * render_steps, 3)`` uint8 strip of the last ``render_steps`` steps, time
    to the right, high keys at the top. A sounding key is black, turning green the more probability the
    forecast gave it; a silent key is white, turning red the more probability the forecast wasted on it.

    ## Vectorised

    ``gym.make_vec(..., vectorization_mode="vector_entry_point")``: :class:`PolyphonicMusicVectorEnv`.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 8}

    def __init__(
        self,
        dataset: str | None = None,
        split: str = "test",
        *,
        data_dir: str | os.PathLike[str] | None = None,
        midi_path: str | os.PathLike[str] | None = None,
        steps_per_beat: int = 2,
        grid_rule: str = "start",
        sequences: Sequence[np.ndarray] | None = None,
        shuffle: bool = False,
        seq_len: int | None = None,
        score_first_step: bool = False,
        form: str = "auto",
        render_mode: str | None = None,
        render_steps: int = 64,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if sum(x is not None for x in (dataset, midi_path, sequences)) > 1:
            raise ValueError("give at most one of dataset, midi_path and sequences")
        if seq_len is not None and (not shuffle or seq_len < 2):
            raise ValueError("seq_len (random crops of at least 2 steps) needs shuffle=True")
        if midi_path is None and (steps_per_beat != 2 or grid_rule != "start"):
            raise ValueError("steps_per_beat and grid_rule set how a MIDI file is read; they need midi_path")
        if midi_path is not None:
            rolls = [midi_to_piano_roll(midi_path, steps_per_beat, grid_rule=grid_rule)]
            self.dataset, self.split = f"midi:{os.fspath(midi_path)}", "file"
        elif sequences is not None:
            rolls = [self._check_roll(np.asarray(r), i) for i, r in enumerate(sequences)]
            self.dataset, self.split = "sequences", "given"
        else:
            if dataset is None:
                dataset = "JSB Chorales" if resolve_data_dir(data_dir) is not None else EMBEDDED
            self.dataset, self.split = canonical_name(dataset), split
            rolls = load_music(self.dataset, data_dir=data_dir, form=form)[split]
        min_len = 1 if score_first_step else 2
        if not rolls:
            raise ValueError(f"{self.dataset}/{self.split}: no sequences")
        short = [i for i, r in enumerate(rolls) if len(r) < min_len]
        if short:
            raise ValueError(f"{self.dataset}/{self.split}: sequences {short[:10]} have fewer than {min_len} steps")
        self.sequences: list[np.ndarray] = list(rolls)
        self.shuffle = bool(shuffle)
        self.seq_len = seq_len
        self.score_first_step = bool(score_first_step)
        self.render_mode = render_mode
        self.render_steps = int(render_steps)

        self.observation_space = spaces.Box(0.0, 1.0, (N_KEYS,), np.float32)
        self.action_space = spaces.Box(0.0, 1.0, (N_KEYS,), np.float32)

        self._cursor = 0  # next sequence in sequential mode
        self._roll: np.ndarray | None = None  # float32 [T, 88] of the current episode
        self._t = 0  # position of the current observation (-1: the silent pre-step)
        self._index = -1
        self._forecasts: np.ndarray | None = None  # [T, 88] forecast made for each step (rendering only)

    @staticmethod
    def _check_roll(roll: np.ndarray, i: int) -> np.ndarray:
        if roll.ndim != 2 or roll.shape[1] != N_KEYS or not np.isin(roll, (0, 1)).all():
            raise ValueError(f"sequences[{i}] must be a [T, 88] array of 0 and 1, got shape {roll.shape}")
        return roll.astype(np.uint8)

    @property
    def n_sequences(self) -> int:
        """Number of sequences in the stream's split."""
        return len(self.sequences)

    def choose_sequence(self, rng: np.random.Generator, index: int | None = None,
                        restart: bool = False) -> tuple[int, int, np.ndarray]:
        """The next episode's ``(index, crop start, roll)``: sequence ``index`` when given; else, with
        ``shuffle``, a draw from ``rng`` (:func:`~rladder_stream.envs.data.music.music_batches`); else the next
        sequence of the walk 0, 1, 2, ... (from 0 again after ``restart``)."""
        if index is not None:
            if not (isinstance(index, (int, np.integer)) and 0 <= index < len(self.sequences)):
                raise ValueError(f"index must be an int in [0, {len(self.sequences)}), got {index!r}")
            self._cursor = int(index) + 1
            return int(index), 0, self.sequences[int(index)]
        if self.shuffle:
            batch = music_batches(rng, self.sequences, 1, self.seq_len)
            index, start, length = int(batch["index"][0]), int(batch["start"][0]), int(batch["length"][0])
            return index, start, self.sequences[index][start : start + length]
        if restart:
            self._cursor = 0
        index = self._cursor % len(self.sequences)
        self._cursor = index + 1
        return index, 0, self.sequences[index]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        requested = reset_option(options, "index")
        index, start, roll = self.choose_sequence(self.np_random, requested, restart=seed is not None)
        self._roll = roll.astype(np.float32)
        self._index = index
        self._t = -1 if self.score_first_step else 0
        self._forecasts = np.full(self._roll.shape, np.nan, np.float32) if self.render_mode else None
        info = {
            "dataset": self.dataset,
            "split": self.split,
            "index": index,
            "start": start,
            "length": len(roll),
            "t": self._t,
        }
        return self._obs(), info

    def _obs(self) -> np.ndarray:
        if self._t < 0:
            return np.zeros(N_KEYS, dtype=np.float32)
        return self._roll[self._t].copy()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._roll is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= len(self._roll) - 1:
            raise RuntimeError("the episode has ended; call reset()")
        forecast, _ = parse_action(action, (N_KEYS,), with_classes=False)
        target = self._roll[self._t + 1]
        reward = float(bernoulli_log_likelihood(target, forecast))
        self._t += 1
        if self._forecasts is not None:
            self._forecasts[self._t] = forecast
        terminated = self._t == len(self._roll) - 1
        return self._obs(), reward, terminated, False, {"index": self._index, "t": self._t}

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called with render_mode=None; create the env with render_mode='rgb_array'")
            return None
        n = self.render_steps
        notes = np.zeros((n, N_KEYS), np.float32)
        probs = np.zeros((n, N_KEYS), np.float32)
        if self._roll is not None:
            hi = self._t + 1
            lo = max(0, hi - n)
            notes[n - (hi - lo) :] = self._roll[lo:hi]
            if self._forecasts is not None:
                probs[n - (hi - lo) :] = np.nan_to_num(self._forecasts[lo:hi], nan=0.0)
        on = notes[..., None] > 0
        p = probs[..., None]
        heard = np.concatenate([np.zeros_like(p), 200 * p, np.zeros_like(p)], axis=-1)  # black -> green
        silent = np.concatenate([np.full_like(p, 255), 255 - 200 * p, 255 - 200 * p], axis=-1)  # white -> red
        img = np.where(on, heard, silent).astype(np.uint8)  # [time, key, rgb]
        img = img.transpose(1, 0, 2)[::-1]  # keys vertical, highest at the top
        return np.repeat(np.repeat(img, 2, axis=0), 4, axis=1)


class PolyphonicMusicVectorEnv(VectorEnv):
    """``num_envs`` music streams advanced together: the arguments and contract of :class:`PolyphonicMusicEnv`
    (the sequences, the reward, which steps are scored), batched, with Gymnasium's next-step autoreset as the
    digit vector environments have it: the step after a sub-environment terminates starts its next sequence,
    ignores its action and returns the first observation with reward 0. In the default sequential mode the
    sub-environments take the split's sequences 0, 1, 2, ... in turn (``reset(seed=...)`` restarts at 0); with
    ``shuffle=True`` every sequence is drawn from the vector environment's generator. ``info`` holds ``index``
    and ``t`` per sub-environment, each with its ``_key`` mask. No rendering.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, dataset: str | None = None, split: str = "test", **kwargs: Any) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if kwargs.get("render_mode") is not None:
            raise ValueError("the vector music environment does not render; make single environments to render")
        self.stream = PolyphonicMusicEnv(dataset, split, **kwargs)  # checks the arguments, holds the sequences
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = self.stream.observation_space, self.stream.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._rolls: list[np.ndarray] = [np.zeros((0, N_KEYS), np.float32)] * num_envs
        self._index = np.full(num_envs, -1, dtype=np.int64)
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._started = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rows = rows_to_reset(reset_option(options, "reset_mask"), self.num_envs, self._started)
        for k, row in enumerate(rows):
            self._new_episode(row, restart=seed is not None and k == 0)
        self._started = True
        return self._observations(), self._infos()

    def step(self, actions: Any):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        forecasts, _ = parse_action(actions, (N_KEYS,), with_classes=False, batch=self.num_envs)
        rewards, terminated = np.zeros(self.num_envs), np.zeros(self.num_envs, dtype=bool)
        for row in range(self.num_envs):
            if self._autoreset[row]:
                self._new_episode(row)
                continue
            rewards[row] = bernoulli_log_likelihood(self._rolls[row][self._t[row] + 1], forecasts[row])
            self._t[row] += 1
            terminated[row] = self._t[row] == len(self._rolls[row]) - 1
        self._autoreset = terminated.copy()
        return self._observations(), rewards, terminated, np.zeros(self.num_envs, dtype=bool), self._infos()

    def _new_episode(self, row: int, restart: bool = False) -> None:
        index, _, roll = self.stream.choose_sequence(self.np_random, restart=restart)
        self._rolls[row] = roll.astype(np.float32)
        self._index[row] = index
        self._t[row] = -1 if self.stream.score_first_step else 0
        self._autoreset[row] = False

    def _observations(self) -> np.ndarray:
        silent = np.zeros(N_KEYS, np.float32)
        return np.stack([silent if t < 0 else roll[t] for roll, t in zip(self._rolls, self._t)])

    def _infos(self) -> dict[str, Any]:
        every = np.ones(self.num_envs, dtype=bool)
        return {"index": self._index.copy(), "_index": every, "t": self._t.copy(), "_t": every.copy()}
