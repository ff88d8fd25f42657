"""Training costs and evaluation metrics of the RLadder tasks (docs/design.md#costs-and-mean-teacher, #occluded-moving-mnist).

All costs read the outputs of ``RLadder.forward`` (a time axis after the batch axis) and a batch dict:
``inputs`` ``[B, T, *obs]``, optional ``next_targets`` ``[B, T, *obs]`` (the observation after each input),
``clean`` ``[B, T, *obs]`` (probe target), ``labels`` ``[B]`` (-1 = unlabelled) and ``mask`` ``[B, T]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model.config import LadderConfig


def _masked_mean(per_tick: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return per_tick.mean()
    mask = mask.to(per_tick.dtype)
    return (per_tick * mask).sum() / mask.sum().clamp_min(1.0)


def bernoulli_nll(logits: Tensor, targets: Tensor, mask: Tensor | None = None) -> Tensor:
    """Bernoulli negative log-likelihood summed over the observation, averaged over (batch, time) ticks.

    For music this is the field's "NLL per time step" (nats, summed over the 88 keys).
    """
    per_element = F.binary_cross_entropy_with_logits(logits.float(), targets.float(), reduction="none")
    return _masked_mean(per_element.flatten(2).sum(-1), mask)


def classification_nll(class_logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy at the last tick over the labelled examples only (labels < 0 never reach the cost; a batch
    without labels costs 0). Written without data-dependent shapes or branches, so a compiled training step
    needs no host synchronisation here."""
    per_example = F.cross_entropy(class_logits[:, -1].float(), labels.clamp_min(0), reduction="none")
    labelled = labels >= 0
    return torch.where(labelled, per_example, 0.0).sum() / labelled.sum().clamp_min(1).to(per_example.dtype)


def ladder_costs(outputs: dict[str, Tensor], batch: dict[str, Tensor], config: LadderConfig) -> dict[str, Tensor]:
    """The weighted costs of the enabled tasks and their sum under ``"total"``."""
    costs: dict[str, Tensor] = {}
    mask = batch.get("mask")
    if "prediction_logits" in outputs and "next_targets" in batch:
        costs["prediction"] = bernoulli_nll(outputs["prediction_logits"], batch["next_targets"], mask)
    if "class_logits" in outputs and "labels" in batch:
        costs["classification"] = classification_nll(outputs["class_logits"], batch["labels"])
    if "probe_logits" in outputs and "clean" in batch:
        costs["probe"] = bernoulli_nll(outputs["probe_logits"], batch["clean"], mask)
    weights = {"prediction": config.prediction_weight, "classification": config.class_weight, "probe": config.probe_weight}
    total = sum(weights[k] * v for k, v in costs.items() if weights[k])
    costs["total"] = total if isinstance(total, Tensor) else next(iter(outputs.values())).sum() * 0.0
    return costs


@torch.no_grad()
def batch_metrics(outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> dict[str, tuple[float, float]]:
    """Sums and counts for evaluation: ``{metric: (sum, count)}`` so batches can be pooled exactly.

    ``class_error``: % wrong at the last tick (labelled examples). ``prediction_mse``: mean squared error per
    pixel between the forecast and the actual next (occluded) observation. ``prediction_nll``: per tick.
    Non-finite forecasts (a diverged model) give NaN metrics.
    """
    out: dict[str, tuple[float, float]] = {}
    if "class_logits" in outputs and "labels" in batch:
        labelled = batch["labels"] >= 0
        wrong = outputs["class_logits"][:, -1].argmax(-1) != batch["labels"]
        out["class_error"] = (100.0 * (wrong & labelled).sum().item(), float(labelled.sum().item()))
    if "prediction_logits" in outputs and "next_targets" in batch:
        probs = torch.sigmoid(outputs["prediction_logits"].float())
        targets = batch["next_targets"].float()
        mask = batch.get("mask")
        per_tick_se = (probs - targets).square().flatten(2).mean(-1)
        # written out, not F.binary_cross_entropy: a diverged model's NaN must become a NaN metric, not an error
        p = probs.clamp(1e-6, 1 - 1e-6)
        per_tick_nll = -(targets * p.log() + (1 - targets) * (1 - p).log()).flatten(2).sum(-1)
        m = torch.ones_like(per_tick_se) if mask is None else mask.float()
        out["prediction_mse"] = ((per_tick_se * m).sum().item(), m.sum().item())
        out["prediction_nll"] = ((per_tick_nll * m).sum().item(), m.sum().item())
    return out
