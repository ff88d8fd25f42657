"""The one-tick step made fast for a fixed number of streams: compiled, captured as a CUDA graph, or both.

The model's step is a pure function ``(obs, state) -> (outputs, state)``; streaming calls it with the same
shapes every tick. Two things make that cheap on a GPU:

* ``compile``: ``torch.compile`` fuses the element-wise work of the cells (gates, normalisations) into few kernels;
* ``graph``: the whole tick is recorded once as a CUDA graph and replayed, so a tick costs one launch instead of
  hundreds (at batch 1 a tick is launch-bound). The state then lives in the graph's own input buffers on the
  device between calls; a tick copies the observation in, replays, and copies the new state over the old.

    >>> import torch
    >>> from rladder_stream import build_model, get_config
    >>> model = build_model(get_config("omm-rladder", size="tiny")).eval()
    >>> step = make_step(model, "none", batch=2)
    >>> out, state = step(torch.zeros(2, 32, 32), model.init_state(2))
    >>> out["prediction_logits"].shape
    torch.Size([2, 32, 32])
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

State = dict[str, Tensor]
StepFn = Callable[[Tensor, State], tuple[dict[str, Tensor], State]]
STEP_MODES = ("none", "compile", "graph", "compile+graph")


class GraphedStep:
    """``step`` recorded as a CUDA graph for one batch size, shape and dtype.

    Calls take and return ``(obs, state)`` like the step itself. The returned outputs are the graph's static
    buffers (read them before the next call), and the returned state is the graph's input buffers, updated in
    place: passing it back, as streaming does, costs no copy.
    """

    def __init__(self, step: StepFn, obs: Tensor, state: State, warmup: int = 3):
        if obs.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {obs.device}")
        self.obs = obs.clone()
        self.state = {k: v.clone() for k, v in state.items()}
        side = torch.cuda.Stream(device=obs.device)
        side.wait_stream(torch.cuda.current_stream(obs.device))
        with torch.cuda.stream(side), torch.inference_mode():  # warm-up: allocator pools, compiled kernels, cuDNN plans
            for _ in range(warmup):
                step(self.obs, self.state)
        torch.cuda.current_stream(obs.device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.outputs, self.next_state = step(self.obs, self.state)
        self._inputs = list(self.state.values())
        self._results = [self.next_state[k] for k in self.state]

    def __call__(self, obs: Tensor, state: State) -> tuple[dict[str, Tensor], State]:
        self.obs.copy_(obs)
        for k, buffer in self.state.items():
            if state[k].data_ptr() != buffer.data_ptr():  # a state from elsewhere (init, reset): copy it in
                buffer.copy_(state[k])
        self.graph.replay()
        torch._foreach_copy_(self._inputs, self._results)
        return self.outputs, self.state


def make_step(model: torch.nn.Module, mode: str = "none", batch: int = 1, device: torch.device | str | None = None,
              dtype: torch.dtype | None = None) -> StepFn:
    """``model.step`` for ``batch`` streams, made fast as ``mode`` says (one of :data:`STEP_MODES`).

    ``graph`` modes record the step on first use at this batch size; ``compile`` compiles with static shapes.
    """
    if mode not in STEP_MODES:
        raise ValueError(f"unknown step mode {mode!r}; expected one of {STEP_MODES}")
    step: StepFn = model.step
    if "compile" in mode:
        step = torch.compile(model.step, dynamic=False)
    if "graph" not in mode:
        return step
    p = next(model.parameters())
    device, dtype = torch.device(device or p.device), dtype or p.dtype
    obs = torch.zeros((batch, *model.config.obs_shape), device=device, dtype=dtype)
    return GraphedStep(step, obs, model.init_state(batch, device, dtype))
