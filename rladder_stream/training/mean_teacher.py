"""Mean Teacher (Tarvainen & Valpola 2017) as an option of any model with a class head (docs/design.md#costs-and-mean-teacher).

The teacher is an exponential moving average (EMA) of the student's weights; the student is pulled towards
the teacher's class probabilities by a consistency cost, the mean squared error between the two models'
class probabilities at the last tick, each model fed its own independently noised copy of the input. The
consistency cost reads no label, so it learns from unlabelled sequences too.

Schedules, with ``t`` the optimiser step and ``T`` the ramp-up length (``rampup`` x the planned steps):

- consistency weight ``w_max * exp(-5 (1 - t/T)^2)`` while ``t < T``, ``w_max`` after;
- EMA decay ``min(1 - 1/(t + 1), 0.99)`` during ramp-up and ``min(1 - 1/(t + 1), 0.999)`` after (the
  ``1 - 1/(t + 1)`` cap makes the first steps a plain average, as in the original implementation).

The averaging is ``torch.optim.swa_utils.AveragedModel`` with an EMA whose decay follows the schedule;
buffers (batch-normalisation statistics) are copied from the student, as ``AveragedModel`` does by default.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel


def consistency_weight(step: int, w_max: float, rampup_steps: int) -> float:
    """The sigmoid-shaped ramp-up ``w_max * exp(-5 (1 - t/T)^2)`` of the consistency cost."""
    if rampup_steps <= 0 or step >= rampup_steps:
        return float(w_max)
    return float(w_max * math.exp(-5.0 * (1.0 - step / rampup_steps) ** 2))


def ema_decay(step: int, rampup_steps: int, decay_rampup: float = 0.99, decay: float = 0.999) -> float:
    """The EMA decay used after optimiser step ``step`` (0-based): 0.99 in ramp-up, 0.999 after, and never
    more than ``1 - 1/(step + 1)``."""
    target = decay_rampup if step < rampup_steps else decay
    return min(1.0 - 1.0 / (step + 1), target)


def consistency_cost(student_logits: Tensor, teacher_probs: Tensor) -> Tensor:
    """Mean squared error between the student's and the teacher's class probabilities (no gradient to the
    teacher), averaged over examples and classes."""
    return F.mse_loss(torch.softmax(student_logits.float(), dim=-1), teacher_probs.detach().float())


class MeanTeacher:
    """The teacher of one student: ``update`` after every optimiser step, ``class_probs`` for the targets.

    Args:
        student: the model being trained (not a DDP wrapper).
        rampup_steps, w_max, decay_rampup, decay: the schedules of the module docstring.
    """

    def __init__(self, student: nn.Module, rampup_steps: int, w_max: float, decay_rampup: float = 0.99, decay: float = 0.999):
        if not getattr(getattr(student, "config", None), "n_classes", 0):
            raise ValueError("Mean Teacher needs a model with a class head (n_classes > 0)")
        for name, value in (("decay_rampup", decay_rampup), ("decay", decay)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if w_max < 0:
            raise ValueError(f"the consistency weight must be >= 0, got {w_max}")
        self.rampup_steps, self.w_max = int(rampup_steps), float(w_max)
        self.decay_rampup, self.decay = float(decay_rampup), float(decay)
        self._decay_now = 0.0
        self.averaged = AveragedModel(student, avg_fn=self._ema)  # buffers (batch-norm statistics) follow the student
        self.averaged.requires_grad_(False)

    def _ema(self, averaged: Tensor, current: Tensor, num_averaged: Tensor) -> Tensor:
        return self._decay_now * averaged + (1.0 - self._decay_now) * current

    @property
    def model(self) -> nn.Module:
        """The teacher network (same class and config as the student)."""
        return self.averaged.module

    def weight(self, step: int) -> float:
        """Consistency weight at optimiser step ``step``."""
        return consistency_weight(step, self.w_max, self.rampup_steps)

    @torch.no_grad()
    def update(self, student: nn.Module, step: int) -> None:
        """Fold the student's weights after optimiser step ``step`` (0-based) into the teacher."""
        self._decay_now = ema_decay(step, self.rampup_steps, self.decay_rampup, self.decay)
        self.averaged.update_parameters(student)

    @torch.no_grad()
    def class_probs(self, inputs: Tensor) -> Tensor:
        """The teacher's class probabilities at the last tick for a batch of (noised) input sequences."""
        outputs, _ = self.model(inputs)
        return torch.softmax(outputs["class_logits"][:, -1].float(), dim=-1)

    def state_dict(self) -> dict[str, Tensor]:
        """Everything needed to resume: the teacher's weights and buffers, and how many updates it has seen."""
        return {k: v.detach().clone() for k, v in self.averaged.state_dict().items()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.averaged.load_state_dict(state)
