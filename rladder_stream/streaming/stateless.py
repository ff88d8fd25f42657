"""For callers who keep the state themselves: ``predict(obs, state, episode_start) -> (outputs, state)``, the
recurrent-policy call of Stable-Baselines3, over a model's pure one-tick step.

:class:`~rladder_stream.streaming.predictor.Predictor` holds each stream's state between calls. A vectorised
environment loop, a replay buffer or a server holding many sessions would rather hold it itself;
:class:`StatelessPredictor` stores nothing between calls:

    >>> import numpy as np
    >>> from rladder_stream import build_model, get_config
    >>> from rladder_stream.streaming.stateless import StatelessPredictor
    >>> policy = StatelessPredictor(build_model(get_config("omm-rladder", size="tiny")))
    >>> out, state = policy.predict(np.zeros((4, 32, 32), np.float32), None, episode_start=np.ones(4, bool))
    >>> out, state = policy.predict(np.zeros((4, 32, 32), np.float32), state, episode_start=np.zeros(4, bool))
    >>> out.class_probs.shape, sorted(state)[:2]
    ((4, 10), ['dec1.prev', 'dec2.prev'])

The state is a dict of NumPy arrays (``name -> (batch, *shape)``, the names and shapes of
``model.state_spec()``), so it can be stored, sliced, stacked and sent anywhere. Calls with the same
``(obs, state)`` give the same outputs; the ``state`` passed in is never modified.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from .outputs import StepOutput
from .predictor import to_step_output
from .validation import validate_observation

NumpyState = dict[str, np.ndarray]


class StatelessPredictor:
    """SB3-style ``predict`` over the pure step of an RLadder or RTagger (see the module docstring).

    Args:
        model: the network (put in eval mode; never trained here).
        device: where to run; defaults to the model's device.
    """

    def __init__(self, model: torch.nn.Module, device: str | torch.device | None = None):
        self.model = model.eval() if device is None else model.to(device).eval()
        param = next(self.model.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.state_spec: dict[str, tuple[int, ...]] = dict(self.model.state_spec())

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """Shape of one observation (no batch axis)."""
        return tuple(self.model.config.obs_shape)

    def initial_state(self, batch: int = 1) -> NumpyState:
        """The state of ``batch`` streams before their first tick."""
        return {k: v.cpu().numpy() for k, v in self.model.init_state(batch, self.device, self.dtype).items()}

    def _checked_state(self, state: Mapping[str, Any], batch: int) -> dict[str, torch.Tensor]:
        if not isinstance(state, Mapping):
            raise ValueError(f"state must be a mapping of name -> array (or None), got {type(state).__name__}")
        if set(state) != set(self.state_spec):
            missing, unknown = sorted(set(self.state_spec) - set(state)), sorted(set(state) - set(self.state_spec))
            raise ValueError(f"state entries do not match the model: missing {missing}, unexpected {unknown}")
        tensors = {}
        for name, shape in self.state_spec.items():
            value = state[name]
            value = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
            if tuple(value.shape) != (batch, *shape):
                raise ValueError(f"state {name!r} has shape {tuple(value.shape)}; expected {(batch, *shape)}")
            tensors[name] = value.to(self.device, self.dtype)
        return tensors

    @torch.no_grad()
    def predict(self, obs: Any, state: Mapping[str, Any] | None = None,
                episode_start: Any = None) -> tuple[StepOutput, NumpyState]:
        """One tick of every stream in ``obs``: ``(outputs, next_state)``.

        Args:
            obs: ``obs_shape`` (one stream; outputs unbatched) or ``(batch, *obs_shape)``.
            state: the ``next_state`` of the previous call for the same streams, or ``None`` to start them all.
            episode_start: ``(batch,)`` bools (or one bool): streams whose episode starts with this
                observation; their state is replaced by the initial state first (SB3's convention).
        Raises:
            ValueError: a bad observation, state or ``episode_start``; nothing is returned or changed.
        """
        shape = tuple(np.shape(obs))
        batch = 1 if shape == self.obs_shape else (shape[0] if shape else 1)
        x, batched = validate_observation(obs, self.obs_shape, batch, np.float64 if self.dtype == torch.float64 else np.float32)
        current = self.model.init_state(batch, self.device, self.dtype) if state is None else self._checked_state(state, batch)
        if episode_start is not None:
            starts = np.asarray(episode_start)
            if starts.dtype != bool or starts.shape not in ((), (batch,)):
                raise ValueError(f"episode_start must be a bool or {batch} bools, got {starts.dtype} of shape {starts.shape}")
            starts = np.broadcast_to(starts, (batch,)).copy()
            if starts.any():
                fresh = self.model.init_state(batch, self.device, self.dtype)
                mask = torch.as_tensor(starts, device=self.device)
                current = {k: torch.where(mask.view(-1, *[1] * (v.dim() - 1)), fresh[k], v) for k, v in current.items()}
        outputs, next_state = self.model.step(torch.as_tensor(x, device=self.device, dtype=self.dtype), current)
        return to_step_output(outputs, batched), {k: v.cpu().numpy() for k, v in next_state.items()}
