"""The one streaming loop of docs/design.md#the-environments-contract: any predictor meets any environment here.

:func:`play_episode` plays one episode and yields a :class:`Tick` for each ``env.step``; the demo, the benchmark,
the figures and MIDI streaming all read their episodes from it, so they agree on what a tick is. Its one rule for
a predictor that makes no forecast (``next_obs is None``, e.g. the hierarchical RNN): the environment gets the
uninformative forecast, probability 0.5 everywhere, with the predictor's class beliefs (:func:`action_for`). The
reward is then the log-likelihood of knowing nothing, and the tick's ``out.next_obs`` stays ``None``.

    >>> for tick in play_episode(predictor, env, seed=0):  # doctest: +SKIP
    ...     print(tick.index, tick.reward)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from .outputs import StepOutput, StreamingPredictor


@dataclass(frozen=True)
class Tick:
    """One ``env.step`` of an episode: what the predictor saw and returned, what the environment got and gave back.

    Attributes:
        index: the tick's place in the episode, from 0.
        obs, obs_info: the observation the predictor stepped on and the ``info`` that came with it (``reset``'s
            for the first tick).
        out: what the predictor returned.
        forecast: the forecast of the next observation the environment got (:func:`action_for`).
        action: all the environment got (the forecast, or ``{"forecast": ..., "class_probs": ...}``).
        reward, next_obs, info, terminated, truncated: what ``env.step`` returned.
    """

    index: int
    obs: Any
    obs_info: dict[str, Any]
    out: StepOutput
    forecast: np.ndarray
    action: np.ndarray | dict[str, np.ndarray]
    reward: float
    next_obs: Any
    info: dict[str, Any]
    terminated: bool
    truncated: bool

    @property
    def last(self) -> bool:
        """Whether the episode ended with this tick."""
        return self.terminated or self.truncated


def forecast_for(out: StepOutput, obs_shape: tuple[int, ...]) -> np.ndarray:
    """The forecast of the next observation in a predictor's output (float32), or without one the uninformative
    forecast: 0.5 for every value of an observation of ``obs_shape``."""
    if out.next_obs is None:
        return np.full(obs_shape, 0.5, np.float32)
    return np.asarray(out.next_obs, dtype=np.float32)


def action_for(out: StepOutput, obs_shape: tuple[int, ...]) -> np.ndarray | dict[str, np.ndarray]:
    """The action for a predictor's output: :meth:`StepOutput.action`, or, without a forecast, the uninformative
    one (:func:`forecast_for`) with the class beliefs if there are any."""
    if out.next_obs is not None:
        return out.action()
    forecast = forecast_for(out, obs_shape)
    return forecast if out.class_probs is None else {"forecast": forecast, "class_probs": out.class_probs}


def play_episode(predictor: StreamingPredictor, env: Any, *, seed: int | None = None,
                 options: dict[str, Any] | None = None) -> Iterator[Tick]:
    """Play one episode of ``env`` (reset with ``seed`` and ``options``) through a single-stream ``predictor``
    (reset first), yielding each tick as it happens; the episode ends at ``terminated`` or ``truncated``."""
    obs, obs_info = env.reset(seed=seed, options=options)
    predictor.reset()
    index = 0
    while True:
        out = predictor.step(obs)
        action = action_for(out, np.shape(obs))
        next_obs, reward, terminated, truncated, info = env.step(action)
        forecast = action["forecast"] if isinstance(action, dict) else action
        tick = Tick(index, obs, obs_info, out, forecast, action, reward, next_obs, info, bool(terminated), bool(truncated))
        yield tick
        if tick.last:
            return
        obs, obs_info, index = next_obs, info, index + 1
