"""What a predictor returns for one tick, shared by every predictor (RLadder, baselines, ONNX).

Environments consume :meth:`StepOutput.action`; nothing else in the package depends on the model type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class StepOutput:
    """One tick of predictions for one stream (unbatched arrays) or many (leading batch axis).

    Attributes:
        next_obs: probabilities in [0, 1] of the next observation, same shape as the observation;
            ``None`` for a model without a prediction task.
        class_probs: class probabilities (sums to 1 over the last axis), or ``None``.
        groups: RTagger masks, groups first after the batch axis (``(K, *obs_shape)``), or ``None``. They
            group what the model was trained to reconstruct: the observation on images (denoising), the
            forecast next observation on video (next-frame prediction, paper Fig. 7).
        reconstructions: per-group reconstructions, same layout as ``groups``, or ``None``.
        probe: probabilities in [0, 1] of the clean (unoccluded) current observation read out by the probe
            (docs/design.md#baselines-and-ablations, paper Fig. 4), same shape as the observation; ``None`` for a
            model without a probe.
    """

    next_obs: np.ndarray | None = None
    class_probs: np.ndarray | None = None
    groups: np.ndarray | None = None
    reconstructions: np.ndarray | None = None
    probe: np.ndarray | None = None

    def action(self) -> np.ndarray | dict[str, np.ndarray]:
        """The action a prediction environment expects.

        A bare forecast array when the model has no class beliefs; otherwise
        ``{"forecast": next_obs, "class_probs": class_probs}``. Raises ``ValueError`` for a model
        without a prediction task, which has no forecast to offer.
        """
        if self.next_obs is None:
            raise ValueError(
                "this predictor makes no next-observation forecast (its prediction task is off); "
                "build the action yourself, e.g. np.full(obs_shape, 0.5)"
            )
        forecast = self.next_obs.astype(np.float32, copy=False)
        if self.class_probs is None:
            return forecast
        return {"forecast": forecast, "class_probs": self.class_probs.astype(np.float32, copy=False)}


@runtime_checkable
class StreamingPredictor(Protocol):
    """The interface every predictor offers: a batch of independent streams advanced one tick at a time."""

    def reset(self, stream_ids: Sequence[int] | None = None) -> None:
        """Forget the past of the given streams (all streams when ``None``)."""

    def step(self, obs: Any) -> StepOutput:
        """Consume one observation per stream and return the forecast for the next tick."""
