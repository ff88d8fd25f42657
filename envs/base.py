"""The two classes that play out sequences made by a batched generator: one environment, or a vector of them.

Every environment module defines a pure batched generator ``generate_*_batch(rng, ..., batch_size, ...)``
that returns whole sequences (``frames [B, T, H, W]`` plus ground truth). :class:`PredictionEnv` calls it
with a batch of one at ``reset`` and plays the sequence out one tick per ``step``; :class:`PredictionVectorEnv`
calls it with a batch of ``num_envs``; training calls it with its own batch size. One code path for all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .actions import parse_action
from .randomness import episode_rng
from .rendering import to_rgb
from .scoring import N_CLASSES, bernoulli_log_likelihood, score_classes


@dataclass
class EpisodeSource:
    """Where an environment's episodes come from: a batched generator bound to its data, and the split.

    ``generate(rng=, batch_size=, choice=)`` (keywords: a ``functools.partial`` of a module's generator with
    its data bound, :attr:`data`, which the training's on-device renderers read too) returns a batch of
    sequences; ``choice`` (row indices into the pool, or ``None`` for rows drawn with ``rng``) picks the digits. On the
    train split episodes are drawn from the environment's generator; on valid/test, episode ``i`` is row ``i``
    with a trajectory from :func:`episode_rng` ``(env_name, split, i)``, identical on every run and machine.
    """

    generate: Callable[..., dict[str, np.ndarray]]
    pool_size: int
    split: str
    env_name: str
    source: str
    labelled_rows: np.ndarray | None = None  # semi-supervised train split: the pool rows whose label is given

    @property
    def fixed(self) -> bool:
        return self.split != "train"

    @property
    def data(self) -> Mapping[str, Any]:
        """The data the generator is bound to (its keyword arguments: ``digits``, ``labels``, ...)."""
        return self.generate.keywords

    def check_index(self, index: int) -> int:
        if not (isinstance(index, (int, np.integer)) and 0 <= index < self.pool_size):
            raise ValueError(
                f"episode index must be an int in [0, {self.pool_size}) for split {self.split!r} "
                f"(digits from {self.source}), got {index!r}"
            )
        return int(index)

    def episodes(self, rng: np.random.Generator | None, n: int, indices: Sequence[int] | None) -> dict[str, np.ndarray]:
        """``n`` episodes: fixed ones for ``indices`` on valid/test; on train, digits ``indices`` (or random
        digits when ``None``) with trajectories drawn from ``rng`` (unused on valid/test)."""
        if not self.fixed:
            choice = None if indices is None else np.asarray(indices, dtype=np.int64)
            return self.generate(rng=rng, batch_size=n, choice=choice)
        assert indices is not None and len(indices) == n
        rngs = [episode_rng(self.env_name, self.split, i) for i in indices]
        return self.generate(rng=rngs, batch_size=n, choice=np.asarray(indices, dtype=np.int64))


def reset_option(options: Mapping[str, Any] | None, name: str) -> Any:
    """The one ``reset`` option an environment knows (``None`` when not given); ``ValueError`` for any other."""
    options = dict(options or {})
    value = options.pop(name, None)
    if options:
        raise ValueError(f"unknown reset options {sorted(options)}; known: {name!r}")
    return value


def rows_to_reset(mask: Any, num_envs: int, started: bool) -> np.ndarray:
    """The sub-environments a vector ``reset`` starts again: all of them, or the rows ``reset_mask`` marks once
    every sub-environment has started."""
    if mask is None or not started:
        return np.arange(num_envs)
    mask = np.asarray(mask)
    if mask.shape != (num_envs,) or mask.dtype != np.bool_ or not mask.any():
        raise ValueError(f"reset_mask must be a bool array of shape ({num_envs},) with a True")
    return np.flatnonzero(mask)


class PredictionSpec:
    """What an environment declares: frame shape, which generator keys go into ``info``, whether it classifies."""

    frame_shape: tuple[int, int]
    classify: bool = True  # a digit label per episode; class beliefs scored at the last step
    tick_info: Mapping[str, str] = {}  # info key -> generator key [B, T, ...]: the value at the current tick
    static_info: Mapping[str, str] = {}  # info key -> generator key [B, ...]: the same value every tick
    ami_ignore: tuple[int, ...] = (-1,)  # ground-truth groups that AMI leaves out (docs/design.md#ami): -1 = ignore

    def _spaces(self) -> tuple[spaces.Space, spaces.Space]:
        obs = spaces.Box(0.0, 1.0, self.frame_shape, np.float32)
        forecast = spaces.Box(0.0, 1.0, self.frame_shape, np.float32)
        if not self.classify:
            return obs, forecast
        return obs, spaces.Dict({"forecast": forecast, "class_probs": spaces.Box(0.0, 1.0, (N_CLASSES,), np.float32)})


class PredictionEnv(PredictionSpec, gym.Env):
    """Plays one generated sequence per episode: observation = frame ``t``, action = forecast of frame ``t+1``.

    ``reset`` returns frame 0; step ``k`` scores the forecast against frame ``k``, returns it, and terminates
    at the last frame. Subclasses set the :class:`PredictionSpec` attributes and build the :class:`EpisodeSource`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, source: EpisodeSource, render_mode: str | None = None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.episode_source = source
        self.observation_space, self.action_space = self._spaces()
        self.render_mode = render_mode
        self._seq: dict[str, np.ndarray] | None = None
        self._t = 0
        self._next_index = 0  # valid/test: the episode reset() plays next
        self._last_forecast: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return 0 if self._seq is None else len(self._seq["frames"])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        index = reset_option(options, "index")
        src = self.episode_source
        if seed is not None:
            self._next_index = 0  # a seeded reset restarts the walk through a fixed split
        if index is not None:
            index = src.check_index(index)
        if src.fixed:
            index = self._next_index if index is None else index
            self._next_index = (index + 1) % src.pool_size
        batch = src.episodes(self.np_random, 1, None if index is None else [index])
        self._seq = {k: v[0] for k, v in batch.items()}
        self._t = 0
        self._last_forecast = None
        return self._seq["frames"][0].copy(), self._info(terminal=False)

    def step(self, action: Any):
        forecast, class_probs = self._checked(action)
        self._t += 1
        self._last_forecast = forecast
        frame = self._seq["frames"][self._t]
        reward = bernoulli_log_likelihood(frame, forecast)
        terminated = self._t == self.n_frames - 1
        return frame.copy(), reward, terminated, False, self._info(terminated, class_probs)

    def _checked(self, action: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """The action's forecast and class beliefs; ``RuntimeError`` outside an episode, ``ValueError`` if malformed."""
        if self._seq is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= self.n_frames - 1:
            raise RuntimeError("the episode has ended (terminated=True was returned); call reset()")
        return parse_action(action, self.frame_shape, self.classify)

    def _info(self, terminal: bool, class_probs: np.ndarray | None = None) -> dict[str, Any]:
        """The current tick's ``info``; at the end, the label and the score of the class beliefs."""
        seq, t = self._seq, self._t
        info: dict[str, Any] = {"t": t}
        info.update({key: seq[name][t].copy() for key, name in self.tick_info.items()})
        info.update({key: seq[name].copy() for key, name in self.static_info.items()})
        if terminal and self.classify:
            info["label"] = int(seq["labels"])
            info["labelled"] = info["label"] >= 0
            if class_probs is not None and info["labelled"]:
                correct, log_prob = score_classes(np.array([info["label"]]), class_probs[None])
                info["class_correct"], info["class_log_prob"] = bool(correct[0]), float(log_prob[0])
        return info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the current observation and, beside it, the last forecast of it (grey before one)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array' to the constructor")
            return None
        frame = None if self._seq is None else self._seq["frames"][self._t]
        return to_rgb([frame, self._last_forecast], self.frame_shape)


class PredictionVectorEnv(PredictionSpec, VectorEnv):
    """``num_envs`` episodes advanced together, drawn from the batched generator with a batch of ``num_envs``.

    Autoreset follows Gymnasium 1.x's default, ``AutoresetMode.NEXT_STEP``: the step after a sub-environment
    terminates resets it; that step ignores its action and returns its first frame with reward 0,
    ``terminated=False`` and its reset info. ``info`` holds one array per key with a boolean mask ``_key``.
    On the train split all episodes come from one generator seeded by ``reset(seed=...)`` (this is not the
    same stream as ``num_envs`` single environments with seeds ``seed + i``); on valid/test the
    sub-environments take the fixed episodes 0, 1, 2 ... in turn. ``reset(options={"reset_mask": mask})``
    resets only the masked sub-environments.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, source: EpisodeSource, num_envs: int, render_mode: str | None = None) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.episode_source = source
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.single_observation_space, self.single_action_space = self._spaces()
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._seq: dict[str, np.ndarray] | None = None
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._next_index = 0
        self._last_forecast: np.ndarray | None = None

    def _new_episodes(self, rows: np.ndarray) -> None:
        src, n = self.episode_source, len(rows)
        indices = None
        if src.fixed:
            indices = [(self._next_index + k) % src.pool_size for k in range(n)]
            self._next_index = (self._next_index + n) % src.pool_size
        batch = src.episodes(self.np_random, n, indices)
        if self._seq is None:
            self._seq = {k: np.zeros((self.num_envs, *v.shape[1:]), v.dtype) for k, v in batch.items()}
        for k, v in batch.items():
            self._seq[k][rows] = v
        self._t[rows] = 0
        self._autoreset[rows] = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        mask = reset_option(options, "reset_mask")
        if seed is not None:
            self._next_index = 0
        self._new_episodes(rows_to_reset(mask, self.num_envs, started=self._seq is not None))
        all_rows = np.arange(self.num_envs)
        obs = self._seq["frames"][all_rows, self._t].copy()
        return obs, self._infos(np.zeros(self.num_envs, dtype=bool), None)

    def step(self, actions: Any):
        if self._seq is None:
            raise RuntimeError("call reset() before step()")
        forecast, class_probs = parse_action(actions, self.frame_shape, self.classify, batch=self.num_envs)
        live = self._advance()
        frames = self._seq["frames"][np.arange(self.num_envs), self._t]
        rewards = np.where(live, bernoulli_log_likelihood(frames, forecast, axis=(1, 2)), 0.0)
        terminated = live & (self._t == self._seq["frames"].shape[1] - 1)
        self._autoreset = terminated.copy()
        self._last_forecast = np.where(live[:, None, None], forecast, np.nan)
        return frames.copy(), rewards, terminated, np.zeros(self.num_envs, dtype=bool), self._infos(terminated, class_probs)

    def _advance(self) -> np.ndarray:
        """Start new episodes where the last step ended one (next-step autoreset), move the others one frame on;
        returns which sub-environments moved (their forecast is scored)."""
        resetting = self._autoreset.copy()
        if resetting.any():
            self._new_episodes(np.flatnonzero(resetting))
        live = ~resetting
        self._t[live] += 1
        return live

    def _infos(self, terminal: np.ndarray, class_probs: np.ndarray | None) -> dict[str, Any]:
        seq, rows = self._seq, np.arange(self.num_envs)
        every = np.ones(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {"t": self._t.copy(), "_t": every.copy()}
        for key, name in self.tick_info.items():
            infos[key], infos[f"_{key}"] = seq[name][rows, self._t].copy(), every.copy()
        for key, name in self.static_info.items():
            infos[key], infos[f"_{key}"] = seq[name].copy(), every.copy()
        if terminal.any() and self.classify:
            labels = seq["labels"]
            infos["label"] = np.where(terminal, labels, 0)
            infos["_label"] = terminal.copy()
            infos["labelled"] = terminal & (labels >= 0)
            infos["_labelled"] = terminal.copy()
            scored = terminal & (labels >= 0)
            if class_probs is not None and scored.any():
                correct, log_prob = score_classes(np.maximum(labels, 0), class_probs)
                infos["class_correct"], infos["_class_correct"] = correct & scored, scored.copy()
                infos["class_log_prob"] = np.where(scored, log_prob, 0.0)
                infos["_class_log_prob"] = scored.copy()
        return infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """``rgb_array``: one image per sub-environment (current observation beside the last forecast)."""
        if self.render_mode is None or self._seq is None:
            return None
        rows = np.arange(self.num_envs)
        frames = self._seq["frames"][rows, self._t]
        out = []
        for i in rows:
            last = self._last_forecast[i] if self._last_forecast is not None else None
            if last is not None and np.isnan(last).any():  # the row was reset this step: no forecast yet
                last = None
            out.append(to_rgb([frames[i], last], self.frame_shape))
        return tuple(out)
