"""The Recurrent Ladder network (docs/design.md#one-tick): one tick as a pure function of (observation, state).

Reading one tick top to bottom (``RLadder.step``):

1. ``e_0 = x`` (the observation with a channel axis added).
2. Bottom-up, level l = 1..L: ``e_l = cell_l([pool(e_{l-1}), d_l^{t-1}], s_l^{t-1})``; then the top
   level: ``e_top = cell_top([flatten(pool(e_L)), d_top^{t-1}])``. ``d^{t-1}`` are the previous tick's
   decoder outputs (the decoder-to-encoder connection), part of the state. They join the cell's input
   (docs/design.md#encoder-cells), or with ``decoder_to_encoder_entry="gates"`` enter through their own transform after the
   normalisation; ``decoder_to_encoder_detach`` stops their gradient.
3. Top-down: ``d_top = g_top(e_top, e_top)``, ``d_l = g_l(d_{l+1}, e_l)`` for l = L..1, and the bottom
   ``d_0 = g_0(d_1, e_0)``, whose per-pixel affine readout is the logit of the next observation;
   ``decoder_input_detach`` has the decoder read ``e`` without sending it gradients.
4. Heads: class logits from ``e_top``; the probe from ``d_1`` with its gradient stopped. A config with
   ``prediction_readout="top"`` (the plain LSTM/GRU baselines: no levels, no decoder) reads the next
   observation's logits from ``e_top`` with a dense layer instead.

The state is a flat ``dict[str, Tensor]`` with a fixed key order (:meth:`RLadder.state_spec`), so that
streaming (``Predictor``), training (a loop over ``step``) and ONNX export all run this one function.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn

from .cells import DenseToMap, conv, make_decoder_cell, make_encoder_cell, max_pool, norm_layer, upsample
from .config import LadderConfig

State = dict[str, Tensor]
Outputs = dict[str, Tensor]


class Affine(nn.Module):
    """Per-channel scale and shift (the readout of the bottom decoder map, so logits are not range-bound)."""

    def __init__(self, channels: int, dims: int):
        super().__init__()
        shape = (channels,) + (1,) * dims
        self.scale = nn.Parameter(torch.ones(shape))
        self.shift = nn.Parameter(torch.zeros(shape))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class RLadder(nn.Module):
    """Recurrent Ladder network built from a :class:`LadderConfig`.

    Outputs of :meth:`step` (present when the config enables them):
        ``prediction_logits`` ``(B, *obs_shape)``: logits of the next observation (with ``in_channels > 1``,
        ``(B, in_channels, *obs_shape)``: the affine readout of the bottom decoder, which the RTagger reads).
        ``class_logits`` ``(B, n_classes)``.
        ``probe_logits`` ``(B, *obs_shape)``: stopped-gradient readout of the clean current input.
    """

    def __init__(self, config: LadderConfig):
        super().__init__()
        self.config = config
        cfg, dims = config, config.dims
        d2e = cfg.decoder and cfg.decoder_to_encoder
        concat = d2e and cfg.decoder_to_encoder_entry == "input"  # d^{t-1} joins the cell's input
        channels = [cfg.in_channels] + [lv.channels for lv in cfg.levels]

        self.pools = nn.ModuleList(max_pool(dims, lv.pool) for lv in cfg.levels)
        self.encoders = nn.ModuleList(
            make_encoder_cell(lv.kind, channels[l] + (channels[l + 1] if concat else 0), lv.channels, lv.kernel, dims, cfg.norm)
            for l, lv in enumerate(cfg.levels)
        )
        self.top_pool = max_pool(dims, cfg.top_pool)
        top_in = cfg.top_input_features + (cfg.top_size if concat else 0)
        self.top_encoder = make_encoder_cell(cfg.top_kind, top_in, cfg.top_size, 1, None, cfg.norm)
        # entries "gates" and "normalised": d^{t-1}'s own transform (normalised or not) into each cell's gates
        into_gates = d2e and not concat
        normalised = cfg.decoder_to_encoder_entry == "normalised"

        def feedback(transform: nn.Module, gate_channels: int, map_dims: int | None) -> nn.Module:
            return nn.Sequential(transform, norm_layer(cfg.norm, gate_channels, map_dims)) if normalised else transform

        self.feedback = nn.ModuleList(
            feedback(conv(dims, lv.channels, cell.gate_channels, lv.kernel, bias=False), cell.gate_channels, dims)
            for lv, cell in zip(cfg.levels, self.encoders)
        ) if into_gates else None
        self.top_feedback = feedback(
            nn.Linear(cfg.top_size, self.top_encoder.gate_channels, bias=False), self.top_encoder.gate_channels, None
        ) if into_gates else None

        if cfg.decoder:
            n = len(cfg.levels)
            top_spatial = tuple(s // cfg.top_pool for s in cfg.level_spatial(n))
            self.top_decoder = make_decoder_cell("g1", nn.Linear(cfg.top_size, cfg.top_size), cfg.top_size, None, cfg.norm,
                                                 init=cfg.decoder_init)
            # decoders[l] combines the signal from level l+1 with e_l, for l = 0..L (0 = observation).
            decoders = []
            for l in range(n + 1):
                if l == n:  # from the dense top down to the highest map
                    project = nn.Sequential(
                        DenseToMap(cfg.top_size, channels[n], top_spatial), upsample(dims, channels[n], channels[n], cfg.top_pool, cfg.upsampling)
                    ) if cfg.top_pool > 1 else DenseToMap(cfg.top_size, channels[n], top_spatial)
                else:
                    project = upsample(dims, channels[l + 1], channels[l], cfg.levels[l].pool, cfg.upsampling)
                kernel = cfg.levels[l].kernel if l < n else cfg.levels[-1].kernel
                decoders.append(make_decoder_cell(cfg.decoder_cell, project, channels[l], dims, cfg.norm, kernel, cfg.decoder_init))
            self.decoders = nn.ModuleList(decoders)
            if cfg.predict and cfg.prediction_readout == "decoder":
                self.prediction_head = Affine(cfg.in_channels, dims)
                nn.init.constant_(self.prediction_head.shift, cfg.prediction_bias)
            if cfg.probe:  # drawn from a forked generator: the model's other weights are the same with or without it
                with torch.random.fork_rng(devices=[]):
                    self.probe_head = upsample(dims, channels[1], 1, cfg.levels[0].pool)
        if cfg.n_classes:
            self.class_head = nn.Linear(cfg.top_size, cfg.n_classes)
        if cfg.predict and cfg.prediction_readout == "top":
            self.top_prediction_head = nn.Linear(cfg.top_size, math.prod(cfg.obs_shape))
            nn.init.constant_(self.top_prediction_head.bias, cfg.prediction_bias)

    # ------------------------------------------------------------------------------ state
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """Names and per-sample shapes of the state tensors, in the order export and checkpoints use."""
        cfg, spec = self.config, {}
        for l, (lv, cell) in enumerate(zip(cfg.levels, self.encoders), start=1):
            for name in cell.state_names:
                spec[f"enc{l}.{name}"] = (lv.channels, *cfg.level_spatial(l))
        for name in self.top_encoder.state_names:
            spec[f"top.{name}"] = (cfg.top_size,)
        if cfg.decoder and cfg.decoder_to_encoder:
            for l, lv in enumerate(cfg.levels, start=1):
                spec[f"dec{l}.prev"] = (lv.channels, *cfg.level_spatial(l))
            spec["top_dec.prev"] = (cfg.top_size,)
        return spec

    def init_state(self, batch: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> State:
        """The state before the first tick: all zeros."""
        p = next(self.parameters())
        device, dtype = device or p.device, dtype or p.dtype
        return {k: torch.zeros((batch, *shape), device=device, dtype=dtype) for k, shape in self.state_spec().items()}

    # ------------------------------------------------------------------------------ one tick
    def step(self, obs: Tensor, state: State) -> tuple[Outputs, State]:
        """Advance every stream of the batch by one tick. Pure: ``state`` is not modified.

        Args:
            obs: ``(B, *obs_shape)`` observations.
            state: as returned by :meth:`init_state` or a previous ``step``.
        Returns:
            ``(outputs, new_state)``.
        """
        cfg = self.config
        d2e = cfg.decoder and cfg.decoder_to_encoder
        new_state: State = {}

        # bottom-up
        laterals = [obs.unsqueeze(1) if cfg.in_channels == 1 else obs]  # e_0: (B, in_channels, *obs_shape)
        e = laterals[0]
        for l, (pool, cell) in enumerate(zip(self.pools, self.encoders), start=1):
            transform = self.feedback[l - 1] if self.feedback is not None else None
            x, side = self._with_feedback(pool(e), state, f"dec{l}.prev", transform)
            e, cell_state = cell(x, tuple(state[f"enc{l}.{n}"] for n in cell.state_names), side)
            new_state.update({f"enc{l}.{n}": s for n, s in zip(cell.state_names, cell_state)})
            laterals.append(e)
        x, side = self._with_feedback(self.top_pool(e).flatten(1), state, "top_dec.prev", self.top_feedback)
        top, top_state = self.top_encoder(x, tuple(state[f"top.{n}"] for n in self.top_encoder.state_names), side)
        new_state.update({f"top.{n}": s for n, s in zip(self.top_encoder.state_names, top_state)})

        outputs: Outputs = {}
        if cfg.n_classes:
            outputs["class_logits"] = self.class_head(top)

        # top-down
        if cfg.decoder:
            if cfg.decoder_input_detach:  # the decoder's costs train the decoder only (config docstring)
                top_in, laterals = top.detach(), [e.detach() for e in laterals]
            else:
                top_in = top
            d = self.top_decoder(top_in, top_in)
            if d2e:
                new_state["top_dec.prev"] = d
            for l in range(len(self.decoders) - 1, -1, -1):
                d = self.decoders[l](d, laterals[l])
                if d2e and l >= 1:
                    new_state[f"dec{l}.prev"] = d
                if l == 1 and cfg.probe:
                    outputs["probe_logits"] = self.probe_head(d.detach()).squeeze(1)
            if cfg.predict and cfg.prediction_readout == "decoder":
                readout = self.prediction_head(d)
                outputs["prediction_logits"] = readout.squeeze(1) if cfg.in_channels == 1 else readout
        if cfg.predict and cfg.prediction_readout == "top":
            outputs["prediction_logits"] = self.top_prediction_head(top).reshape(top.shape[0], *cfg.obs_shape)

        # keep the declared key order (export and checkpoints rely on it)
        return outputs, {k: new_state[k] for k in self.state_spec()}

    def _with_feedback(self, x: Tensor, state: State, key: str, transform: nn.Module | None) -> tuple[Tensor, Tensor | None]:
        """An encoder cell's input and its optional gate-side term, with the decoder-to-encoder connection
        ``d^{t-1} = state[key]`` entered as the config says (none, concatenated, or transformed into the gates)."""
        cfg = self.config
        if not (cfg.decoder and cfg.decoder_to_encoder):
            return x, None
        feedback = state[key].detach() if cfg.decoder_to_encoder_detach else state[key]
        if transform is None:  # entry "input"
            return torch.cat([x, feedback], dim=1), None
        return x, transform(feedback)

    def forward(self, obs_seq: Tensor, state: Optional[State] = None) -> tuple[Outputs, State]:
        """Run a whole sequence ``(B, T, *obs_shape)``: the loop over :meth:`step`. Outputs get a time axis."""
        if state is None:
            state = self.init_state(obs_seq.shape[0], obs_seq.device, obs_seq.dtype)
        per_tick: list[Outputs] = []
        for t in range(obs_seq.shape[1]):
            out, state = self.step(obs_seq[:, t], state)
            per_tick.append(out)
        outputs = {k: torch.stack([o[k] for o in per_tick], dim=1) for k in per_tick[0]} if per_tick else {}
        return outputs, state

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
