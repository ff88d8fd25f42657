"""What the prediction environments share: the reward, action checking, splits and seeds, rendering, and the
two classes that play out sequences made by a batched generator (one env, or a vector of them).

Every environment module defines a pure batched generator ``generate_*_batch(rng, ..., batch_size, ...)``
that returns whole sequences (``frames [B, T, H, W]`` plus ground truth). :class:`PredictionEnv` calls it
with a batch of one at ``reset`` and plays the sequence out one tick per ``step``; :class:`PredictionVectorEnv`
calls it with a batch of ``num_envs``; training calls it with its own batch size. One code path for all three.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from numpy.lib.stride_tricks import sliding_window_view

from .data.mnist import load_mnist

EPS = 1e-6  # forecasts are clipped to [EPS, 1 - EPS] before the log
N_CLASSES = 10
RENDER_SCALE = 4

# --------------------------------------------------------------------------------------------- reward


def bernoulli_log_likelihood(
    target: np.ndarray, forecast: np.ndarray, axis: int | tuple[int, ...] | None = None
) -> float | np.ndarray:
    """``sum(y log p + (1 - y) log(1 - p))`` with ``p`` clipped to ``[1e-6, 1 - 1e-6]``.

    Works for any shape (frames, piano-roll rows). ``target`` may be soft (values in [0, 1]): antialiased
    frames are. Sums over everything (returns a float) or over ``axis`` (returns an array, e.g. one value per
    row of a batch). Computed in float64.
    """
    y = np.asarray(target, dtype=np.float64)
    p = np.clip(np.asarray(forecast, dtype=np.float64), EPS, 1.0 - EPS)
    ll = y * np.log(p) + (1.0 - y) * np.log1p(-p)
    return float(ll.sum()) if axis is None else ll.sum(axis=axis)


# --------------------------------------------------------------------------------------------- actions


def _check_probabilities(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be an array of shape {shape} with values in [0, 1]: {exc}") from exc
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"{name} must be a numeric array of shape {shape}, got dtype {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if array.min(initial=0.0) < 0.0 or array.max(initial=0.0) > 1.0:
        raise ValueError(
            f"{name} must be probabilities in [0, 1], got values in [{array.min()}, {array.max()}]"
        )
    return array


def parse_action(
    action: Any, frame_shape: tuple[int, ...], with_classes: bool, batch: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check an action and return ``(forecast float32, class_probs float32 or None)``.

    Accepted forms: a bare forecast array, or a dict ``{"forecast": ..., "class_probs": ...}`` (the output of
    ``StepOutput.action()``; ``class_probs`` optional). With ``batch`` set, every array has that leading
    batch axis. Raises ``ValueError`` naming what was expected; nothing is modified, so the caller's state
    stays as it was.
    """
    lead = () if batch is None else (batch,)
    if isinstance(action, Mapping):
        unknown = set(action) - {"forecast", "class_probs"}
        if unknown or "forecast" not in action:
            raise ValueError(
                f"a dict action needs the key 'forecast' and optionally 'class_probs'; got keys {sorted(action)}"
            )
        forecast = _check_probabilities("forecast", action["forecast"], lead + tuple(frame_shape))
        class_probs = action.get("class_probs")
        if class_probs is not None:
            if not with_classes:
                class_probs = None  # this environment scores no class beliefs: ignored, as documented
            else:
                class_probs = _check_probabilities("class_probs", class_probs, lead + (N_CLASSES,))
        return forecast, class_probs
    return _check_probabilities("forecast", action, lead + tuple(frame_shape)), None


def score_classes(labels: np.ndarray, class_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``(correct, log_prob)`` of class beliefs ``[B, 10]`` against ``labels [B]`` (all >= 0).

    The beliefs are normalised to sum to 1 first (a Box(0, 1) sample need not); ``log_prob`` is the log of
    the normalised probability of the true class, floored at ``log(1e-6)``.
    """
    probs = class_probs.astype(np.float64)
    total = probs.sum(axis=-1, keepdims=True)
    probs = np.where(total > 0, probs / np.where(total > 0, total, 1.0), 1.0 / N_CLASSES)
    rows = np.arange(len(labels))
    correct = probs.argmax(axis=-1) == labels
    log_prob = np.log(np.maximum(probs[rows, labels], EPS))
    return correct, log_prob


# --------------------------------------------------------------------------------------------- splits, seeds


def stable_hash(text: str) -> int:
    """A 32-bit hash of a string that is the same on every machine and run (unlike ``hash``)."""
    return zlib.crc32(text.encode())


def episode_rng(env_name: str, split: str, index: int) -> np.random.Generator:
    """The generator for fixed episode ``index`` of a validation/test split: depends on nothing else."""
    return np.random.default_rng(np.random.SeedSequence([stable_hash(env_name), stable_hash(split), int(index)]))


def labelled_subset(labels: np.ndarray, n_labelled: int, seed_name: str) -> np.ndarray:
    """Sorted row indices of a class-balanced labelled subset (``n_labelled / 10`` per class), fixed by a seed."""
    if n_labelled <= 0 or n_labelled % N_CLASSES:
        raise ValueError(f"labelled must be a positive multiple of {N_CLASSES}, got {n_labelled}")
    rng = np.random.default_rng(np.random.SeedSequence([stable_hash(seed_name), n_labelled]))
    per_class = n_labelled // N_CLASSES
    chosen = []
    for c in range(N_CLASSES):
        rows = np.flatnonzero(labels == c)
        if len(rows) < per_class:
            raise ValueError(f"only {len(rows)} digits of class {c} available, {per_class} requested")
        chosen.append(rng.choice(rows, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


@dataclass(frozen=True)
class DigitPool:
    """The MNIST digits of one environment split, with original indices and where they came from."""

    images: np.ndarray  # uint8 [N, 28, 28]
    labels: np.ndarray  # int64 [N]; -1 for digits whose label is withheld (semi-supervised)
    indices: np.ndarray  # int64 [N], index in the MNIST file
    source: str
    labelled_rows: np.ndarray | None = None  # semi-supervised: the rows whose label is given (sorted); else None


SPLITS = ("train", "valid", "test")


def mnist_pool(
    split: str,
    data_dir: str | os.PathLike | None,
    *,
    env_name: str,
    labelled: int | None = None,
    train_end: int = 50_000,
    semi_supervised_end: int = 50_000,
) -> DigitPool:
    """The digits of an environment split (SPEC 4.1): train = MNIST train ``[0, train_end)``, valid = MNIST
    train ``[50000, 60000)``, test = MNIST test. With ``labelled=n`` (train only) the pool is MNIST train
    ``[0, semi_supervised_end)`` and all but a class-balanced ``n`` of them have label -1."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if labelled is not None and split != "train":
        raise ValueError("labelled (semi-supervised) applies to the train split only")
    data = load_mnist("test" if split == "test" else "train", data_dir)
    if split == "test":
        keep = np.ones(len(data.indices), dtype=bool)
    elif split == "valid":
        keep = (data.indices >= 50_000) & (data.indices < 60_000)
    else:
        keep = data.indices < (train_end if labelled is None else semi_supervised_end)
    if not keep.any():
        raise ValueError(f"no digits for split {split!r} in MNIST from {data.source}")
    labels = data.labels[keep].astype(np.int64)
    chosen = None
    if labelled is not None:
        chosen = labelled_subset(labels, labelled, f"{env_name}/labelled")
        withheld = np.full(len(labels), -1, dtype=np.int64)
        withheld[chosen] = labels[chosen]
        labels = withheld
    return DigitPool(data.images[keep], labels, data.indices[keep], data.source, chosen)


class BatchRandom:
    """Random draws with a leading batch axis, from one generator or from one generator per row.

    With a sequence of generators, row i's draws come from ``rng[i]`` in the order the generator function
    makes them, so a batch equals the concatenation of batch-1 calls: this is how the fixed valid/test
    episodes (one seed each) are generated as one vectorised batch.
    """

    def __init__(self, rng: np.random.Generator | Sequence[np.random.Generator], batch_size: int) -> None:
        self.batch_size = batch_size
        self.rows = None if isinstance(rng, np.random.Generator) else list(rng)
        self.rng = rng if self.rows is None else None
        if self.rows is not None and len(self.rows) != batch_size:
            raise ValueError(f"got {len(self.rows)} generators for a batch of {batch_size}")

    def _draw(self, method: str, low: Any, high: Any, shape: tuple[int, ...]) -> np.ndarray:
        if self.rows is None:
            return getattr(self.rng, method)(low, high, size=(self.batch_size, *shape))
        return np.concatenate([getattr(r, method)(low, high, size=(1, *shape)) for r in self.rows])

    def integers(self, low: int, high: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Uniform ints in ``[low, high)``, shape ``[B, *shape]``."""
        return self._draw("integers", low, high, shape)

    def uniform(self, low: float, high: float, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Uniform floats in ``[low, high)``, shape ``[B, *shape]``."""
        return self._draw("uniform", low, high, shape)


# --------------------------------------------------------------------------------------------- drawing


def paste(patches: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Place ``patches [..., h, w]`` on zero canvases ``[..., H, W]`` with top-left corners ``(ys, xs)``.

    ``ys``/``xs`` are integer arrays of the leading shape; ``patches`` broadcasts to it (e.g. one digit
    ``[B, 1, h, w]`` at ``T`` positions ``[B, T]``). Every patch must fit inside the canvas.
    """
    lead = ys.shape
    h, w = patches.shape[-2:]
    n = int(np.prod(lead))
    flat_patches = np.broadcast_to(patches, lead + (h, w)).reshape(n, h, w)
    canvas = np.zeros((n, *size), dtype=patches.dtype)
    # A writeable view of every h x w window: [n, H-h+1, W-w+1, h, w]; one block copy per patch.
    windows = sliding_window_view(canvas, (h, w), axis=(1, 2), writeable=True)
    windows[np.arange(n), ys.reshape(n), xs.reshape(n)] = flat_patches
    return canvas.reshape(*lead, *size)


def bounce(start: np.ndarray, velocity: np.ndarray, n_steps: int, limit: float) -> np.ndarray:
    """Positions ``[..., n_steps]`` of points moving from ``start`` with ``velocity`` and reflecting off
    ``0`` and ``limit`` (exact reflection: the path is folded into ``[0, limit]``)."""
    t = np.arange(n_steps)
    raw = start[..., None] + velocity[..., None] * t
    period = 2 * limit
    folded = np.mod(raw, period)
    return np.where(folded > limit, period - folded, folded)


def to_rgb(panels: Sequence[np.ndarray | None], shape: tuple[int, int], scale: int = RENDER_SCALE) -> np.ndarray:
    """uint8 ``H x W x 3`` image: the given [0, 1] frames side by side, dark ink on white, upscaled
    ``scale`` times, separated by a grey line; ``None`` panels are drawn grey (e.g. no forecast yet)."""
    h, w = shape
    gap = np.full((h * scale, scale, 3), 160, dtype=np.uint8)
    tiles = []
    for i, panel in enumerate(panels):
        if i:
            tiles.append(gap)
        if panel is None:
            tiles.append(np.full((h * scale, w * scale, 3), 200, dtype=np.uint8))
            continue
        grey = np.round(255.0 * (1.0 - np.clip(panel, 0.0, 1.0))).astype(np.uint8)
        big = np.repeat(np.repeat(grey, scale, axis=0), scale, axis=1)
        tiles.append(np.repeat(big[:, :, None], 3, axis=2))
    return np.concatenate(tiles, axis=1)


# --------------------------------------------------------------------------------------------- episodes

@dataclass
class EpisodeSource:
    """Where an environment's episodes come from: a batched generator bound to its data, and the split.

    ``generate(rng=, batch_size=, choice=)`` (keywords: a ``functools.partial`` of a module's generator
    with its data bound) returns a batch of sequences; ``choice`` (row indices into the pool,
    or ``None`` for rows drawn with ``rng``) picks the digits. On the train split episodes are drawn from the
    environment's generator; on valid/test, episode ``i`` is row ``i`` with a trajectory from
    :func:`episode_rng` ``(env_name, split, i)``, identical on every run and machine.
    """

    generate: Callable[..., dict[str, np.ndarray]]
    pool_size: int
    split: str
    env_name: str
    source: str
    labelled_rows: np.ndarray | None = None  # semi-supervised train split: the pool rows whose label is given
    pool: DigitPool | None = None  # the digits drawn from, for renderers of the same episodes elsewhere

    @property
    def fixed(self) -> bool:
        return self.split != "train"

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


class _Spec:
    """What a subclass declares: frame shape, which generator keys go into ``info``, whether it classifies."""

    frame_shape: tuple[int, int]
    classify: bool = True  # a digit label per episode; class beliefs scored at the last step
    tick_info: Mapping[str, str] = {}  # info key -> generator key [B, T, ...]: the value at the current tick
    static_info: Mapping[str, str] = {}  # info key -> generator key [B, ...]: the same value every tick
    ami_ignore: tuple[int, ...] = (-1,)  # ground-truth groups that AMI leaves out (SPEC 5): -1 = ignore

    def _spaces(self) -> tuple[spaces.Space, spaces.Space]:
        obs = spaces.Box(0.0, 1.0, self.frame_shape, np.float32)
        forecast = spaces.Box(0.0, 1.0, self.frame_shape, np.float32)
        if not self.classify:
            return obs, forecast
        return obs, spaces.Dict({"forecast": forecast, "class_probs": spaces.Box(0.0, 1.0, (N_CLASSES,), np.float32)})


class PredictionEnv(_Spec, gym.Env):
    """Plays one generated sequence per episode: observation = frame ``t``, action = forecast of frame ``t+1``.

    ``reset`` returns frame 0; step ``k`` scores the forecast against frame ``k``, returns it, and terminates
    at the last frame. Subclasses set the :class:`_Spec` attributes and build the :class:`EpisodeSource`.
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
        options = dict(options or {})
        index = options.pop("index", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; known: 'index'")
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
        if self._seq is None:
            raise RuntimeError("call reset() before step()")
        if self._t >= self.n_frames - 1:
            raise RuntimeError("the episode has ended (terminated=True was returned); call reset()")
        forecast, class_probs = parse_action(action, self.frame_shape, self.classify)
        self._t += 1
        self._last_forecast = forecast
        frame = self._seq["frames"][self._t]
        reward = bernoulli_log_likelihood(frame, forecast)
        terminated = self._t == self.n_frames - 1
        info = self._info(terminal=terminated)
        if terminated and self.classify and class_probs is not None and info["labelled"]:
            correct, log_prob = score_classes(np.array([info["label"]]), class_probs[None])
            info["class_correct"], info["class_log_prob"] = bool(correct[0]), float(log_prob[0])
        return frame.copy(), reward, terminated, False, info

    def _info(self, terminal: bool) -> dict[str, Any]:
        seq, t = self._seq, self._t
        info: dict[str, Any] = {"t": t}
        info.update({key: seq[name][t].copy() for key, name in self.tick_info.items()})
        info.update({key: seq[name].copy() for key, name in self.static_info.items()})
        if terminal and self.classify:
            info["label"] = int(seq["labels"])
            info["labelled"] = info["label"] >= 0
        return info

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the current observation and, beside it, the last forecast of it (grey before one)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array' to the constructor")
            return None
        frame = None if self._seq is None else self._seq["frames"][self._t]
        return to_rgb([frame, self._last_forecast], self.frame_shape)


class PredictionVectorEnv(_Spec, VectorEnv):
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
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; known: 'reset_mask'")
        if seed is not None:
            self._next_index = 0
        if mask is None or self._seq is None:
            rows = np.arange(self.num_envs)
        else:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(f"reset_mask must be a bool array of shape ({self.num_envs},) with a True")
            rows = np.flatnonzero(mask)
        self._new_episodes(rows)
        all_rows = np.arange(self.num_envs)
        obs = self._seq["frames"][all_rows, self._t].copy()
        return obs, self._infos(np.zeros(self.num_envs, dtype=bool), None)

    def step(self, actions: Any):
        if self._seq is None:
            raise RuntimeError("call reset() before step()")
        forecast, class_probs = parse_action(actions, self.frame_shape, self.classify, batch=self.num_envs)
        resetting = self._autoreset.copy()
        if resetting.any():
            self._new_episodes(np.flatnonzero(resetting))
        live = ~resetting
        self._t[live] += 1
        rows = np.arange(self.num_envs)
        frames = self._seq["frames"][rows, self._t]
        rewards = np.where(live, bernoulli_log_likelihood(frames, forecast, axis=(1, 2)), 0.0)
        terminated = live & (self._t == self._seq["frames"].shape[1] - 1)
        self._autoreset = terminated.copy()
        self._last_forecast = np.where(live[:, None, None], forecast, np.nan)
        infos = self._infos(terminated, class_probs)
        return frames.copy(), rewards, terminated, np.zeros(self.num_envs, dtype=bool), infos

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
