"""Reference predictors: the floor any learned model must beat, in every environment of the package.

Both follow :class:`~rladder_stream.streaming.outputs.StreamingPredictor`: ``n_streams`` independent streams; ``step``
takes one observation of shape ``obs_shape`` when ``n_streams == 1`` (and answers unbatched) or a batch
``(n_streams, *obs_shape)`` (and answers batched). They forecast only the next observation
(``StepOutput.next_obs``; no class beliefs, no groups).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import gymnasium as gym
import numpy as np

from .outputs import StepOutput

__all__ = ["RepeatLastPredictor", "MarginalPredictor"]


class _Streams:
    """Observation checks shared by the reference predictors (same rules as ``rladder_stream.Predictor``)."""

    name = "predictor"

    def __init__(self, obs_shape: Sequence[int], n_streams: int) -> None:
        if n_streams < 1:
            raise ValueError(f"n_streams must be >= 1, got {n_streams}")
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.n_streams = int(n_streams)

    def reset(self, stream_ids: Sequence[int] | None = None) -> None:
        """Forget the past of the given streams (all when ``None``); these predictors keep no past."""
        if stream_ids is not None:
            bad = [int(i) for i in np.atleast_1d(stream_ids) if not 0 <= int(i) < self.n_streams]
            if bad:
                raise ValueError(f"stream ids {bad} out of range for {self.n_streams} streams")

    def _batch(self, obs: Any) -> tuple[np.ndarray, bool]:
        """``(obs as float32 [n_streams, *obs_shape], batched?)``; ``ValueError`` for a wrong shape or value."""
        obs = np.asarray(obs)
        if obs.dtype.kind not in "fbiu":
            raise ValueError(f"observation must be numeric, got dtype {obs.dtype}")
        if obs.shape == self.obs_shape and self.n_streams == 1:
            obs, batched = obs[None], False
        elif obs.shape == (self.n_streams, *self.obs_shape):
            batched = True
        else:
            one = f"{self.obs_shape} or " if self.n_streams == 1 else ""
            raise ValueError(f"observation shape {obs.shape}; expected {one}{(self.n_streams, *self.obs_shape)}")
        obs = obs.astype(np.float32, copy=False)
        if not np.isfinite(obs).all() or obs.min(initial=0.0) < 0.0 or obs.max(initial=0.0) > 1.0:
            raise ValueError("observation values must be finite and lie in [0, 1]")
        return obs, batched


class RepeatLastPredictor(_Streams):
    """Forecast that the next observation equals the current one: ``eps + (1 - 2 eps) * obs``.

    The ``eps`` keeps the forecast away from 0 and 1 so a change costs ``-log(eps)`` per element instead of an
    infinite log-likelihood. ``eps=0.01`` costs 4.6 nats per changed key and 0.01 per unchanged one.
    """

    name = "repeat-last"

    def __init__(self, obs_shape: Sequence[int], n_streams: int = 1, eps: float = 0.01) -> None:
        super().__init__(obs_shape, n_streams)
        if not 0.0 < eps < 0.5:
            raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
        self.eps = float(eps)

    def step(self, obs: Any) -> StepOutput:
        """Consume one observation per stream; forecast the same observation next (softened by ``eps``)."""
        x, batched = self._batch(obs)
        forecast = (self.eps + (1.0 - 2.0 * self.eps) * x).astype(np.float32)
        return StepOutput(next_obs=forecast if batched else forecast[0])


class MarginalPredictor(_Streams):
    """Forecast every element's training-set marginal probability, ignoring the stream (the "no context" floor).

    For music this is the per-key frequency of sounding; for frames the per-pixel mean. Build it with
    :meth:`fit` (from arrays) or :meth:`from_env` (from episodes of an environment).
    """

    name = "marginal"

    def __init__(self, marginal: np.ndarray, n_streams: int = 1) -> None:
        marginal = np.asarray(marginal, dtype=np.float32)
        if not np.isfinite(marginal).all() or marginal.min() < 0.0 or marginal.max() > 1.0:
            raise ValueError("marginal must hold probabilities in [0, 1]")
        super().__init__(marginal.shape, n_streams)
        self.marginal = marginal

    @classmethod
    def fit(
        cls,
        observations: Iterable[np.ndarray],
        obs_shape: Sequence[int] | None = None,
        prior: float = 1.0,
        n_streams: int = 1,
    ) -> "MarginalPredictor":
        """Estimate ``p = (sum of observations + prior / 2) / (count + prior)`` per element.

        Each item's trailing axes are ``obs_shape``; any leading axes count as samples, so a ``[T, 88]`` roll with
        ``obs_shape=(88,)`` adds T observations. ``obs_shape=None`` takes the first item's full shape (items
        are single observations). ``prior`` is a pseudo-count split evenly between 0 and 1, so a never-seen key
        gets a small positive probability, not 0.
        """
        total: np.ndarray | None = None
        count = 0
        shape = tuple(obs_shape) if obs_shape is not None else None
        for item in observations:
            x = np.asarray(item, dtype=np.float64)
            if shape is None:
                shape = x.shape
            if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
                raise ValueError(f"observation of shape {x.shape} does not end in obs_shape {shape}")
            x = x.reshape(-1, *shape)
            total = x.sum(axis=0) if total is None else total + x.sum(axis=0)
            count += x.shape[0]
        if total is None:
            raise ValueError("no observations to fit")
        return cls((total + prior / 2.0) / (count + prior), n_streams=n_streams)

    @classmethod
    def from_env(
        cls,
        env: str | gym.Env,
        n_episodes: int | None = None,
        seed: int = 0,
        prior: float = 1.0,
        n_streams: int = 1,
        **env_kwargs: Any,
    ) -> "MarginalPredictor":
        """Fit on every observation of ``n_episodes`` episodes of an environment (an id, made with
        ``env_kwargs``, e.g. ``split="train"``, or an instance). ``n_episodes=None`` means one pass over the
        environment's sequences where it has a fixed number (``env.unwrapped.n_sequences``, music).

        Observations that stand for "nothing seen yet" (``info["t"] == -1``) are skipped.
        """
        own = isinstance(env, str)
        env = gym.make(env, **env_kwargs) if own else env
        if not own and env_kwargs:
            raise ValueError("env_kwargs apply only when env is an id")
        try:
            if n_episodes is None:
                n_episodes = getattr(env.unwrapped, "n_sequences", None)
                if n_episodes is None:
                    raise ValueError("give n_episodes: this environment has no fixed number of sequences")
            env.action_space.seed(seed)
            observations = []
            for episode in range(n_episodes):
                obs, info = env.reset(seed=seed if episode == 0 else None)
                if info.get("t", 0) != -1:
                    observations.append(np.asarray(obs))
                while True:
                    obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
                    observations.append(np.asarray(obs))
                    if terminated or truncated:
                        break
        finally:
            if own:
                env.close()
        return cls.fit(observations, prior=prior, n_streams=n_streams)

    def step(self, obs: Any) -> StepOutput:
        """Consume one observation per stream (checked, otherwise ignored); forecast the marginal."""
        _, batched = self._batch(obs)
        forecast = np.broadcast_to(self.marginal, (self.n_streams, *self.obs_shape)).copy()
        return StepOutput(next_obs=forecast if batched else forecast[0])
