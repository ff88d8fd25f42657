"""RTagger (docs/design.md#the-rtagger): perceptual grouping with K copies of one RLadder engine, one tick as a pure step.

Reading one tick (iteration on a static image, frame on video) top to bottom (``RTagger.step``):

1. The state holds every group's current reconstruction ``z_k`` and mask ``m_k`` (Σ_k m_k = 1 per pixel),
   the engine's state for the ``B*K`` group-streams and, with ``norm="batch_tick"`` (the registered Taggers),
   each stream's tick, which selects the batch norms' statistics of that iteration (docs/design.md, "Batch
   normalisation at evaluation").
2. Tagger inputs per group, from the observation ``x``: ``z_k``, ``m_k``, the error signal ``δz_k`` and the mask
   likelihood ``L(m_k) = softmax_k(-ℓ_k)``. Gaussian inputs: ``δz_k = m_k (x - z_k)``,
   ``ℓ_k = ½ log(σ² + v²) + (z_k - x)² / (2(σ² + v²))`` (σ: the config's ``input_noise``; v: a learned std).
   Binary inputs with flip noise n: ``q_k = z_k (1 - 2n) + n`` (the chance group k sees ink), ``ℓ_k`` the
   cross-entropy of x under ``q_k``, and ``δz_k = m_k (1 - 2n) / (ξ - 1 + x)`` with ``ξ = Σ_k m_k q_k``: the
   gradient of the mixture's log-likelihood of x in ``z_k``.
3. The K groups are folded into the batch and the engine (an :class:`~rladder_stream.model.ladder.RLadder` over
   these 4 input channels, and the group's one-hot index with ``tagger_group_roles``) takes one step; its bottom
   decoder output h gives ``ẑ_k = c_1 Norm(W_z h) + b_1`` and ``m̂_k = softmax_k(c_2 Norm(W_m h))``, the next state's z and m.
   The engine's combinators start open (``y = 0.5 z + 0.25 u``), so from the first iteration h differs
   between groups; an engine started closed gets a pass-through bottom combinator (:func:`pass_bottom_through`).
4. Class beliefs: each group's class probabilities over the classes plus a "none" class are summed over
   groups; "none" is dropped and the rest renormalised.

The RTagger is the Tagger when its engine has feed-forward levels and no decoder-to-encoder connection (the
state then holds z and m, and the tick, only): one code path, two configurations. It has the interface of ``RLadder``
(``state_spec``, ``init_state``, pure ``step``, ``forward`` = the loop over ``step``), so ``Predictor``,
training and export use it unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .cells import TickBatchNorm, conv, norm_layer, ticks_set
from .config import LadderConfig
from .ladder import Outputs, RLadder, State

TAGGER_INPUTS = 4  # z, m, δz, L(m) per group and pixel
# The forecast Σ_k m̂_k ẑ_k is clipped to [ε, 1 - ε] before its logit: a logit's slope 1/(p(1-p)) near 0 or 1
# would amplify float rounding (ONNX vs PyTorch) a thousandfold at ε = 1e-3 and ten-thousandfold at 1e-4.
FORECAST_EPS = 1e-3
ENGINE_PREFIX = "engine."
# The Gaussian groups reconstruct grey levels in [0, 1]; a reconstruction is kept within one image range of them.
# Streamed past the iterations it was trained for, a trained Gaussian Tagger's iteration map can grow geometrically
# (up to x2 a tick; one reached NaN by the 16th tick of a static test image); bounded, it saturates and stays finite, and
# within the bounds nothing changes (docs/design.md#bounded-gaussian-reconstructions).
GAUSSIAN_Z_RANGE = (-1.0, 2.0)


def tagger_input_channels(config: LadderConfig) -> int:
    """Input maps per group: z, m, δz and L(m), and with ``tagger_group_roles`` the one-hot of the group's index."""
    return TAGGER_INPUTS + (config.groups if config.tagger_group_roles else 0)


def engine_config(config: LadderConfig) -> LadderConfig:
    """The configuration of the RLadder shared by the groups: the 4 Tagger inputs (or their learned projection's
    ``tagger_projection`` channels), one extra "none" class, its bottom-level readout kept (the RTagger's heads
    read it), no probe."""
    if config.groups < 2:
        raise ValueError(f"an RTagger needs groups >= 2, got {config.groups}")
    dense = config.tagger_engine == "dense"  # one vector per group: the image a length-1 map of many channels
    inputs = tagger_input_channels(config) * (math.prod(config.obs_shape) if dense else 1)
    return config.replace(
        name=f"{config.name}/engine", groups=0, in_channels=config.tagger_projection or inputs, predict=True, probe=False,
        n_classes=config.n_classes + 1 if config.n_classes else 0, **({"obs_shape": (1,)} if dense else {}),
    )


def pass_bottom_through(engine: RLadder) -> None:
    """Initialise the engine's bottom combinator ``d_0 = g_0(d_1, e_0)`` to pass its lateral input through
    (``v``'s constant a10 = 1, so ``y = (e_0 - μ) ⊙ 1 + μ = e_0`` at init: the Ladder's alternative init).

    With the default init (a1 = a4 = a5 = a6 = a9 = a10 = 0, docs/design.md#decoder-cells) ConvG1/ConvG2 output exactly zero, so
    the heads' input h is the same constant for every group and pixel: every m̂ after the first iteration is
    uniform (0.5) and every ẑ equal, the initial mask noise is erased, the groups are identical from then on
    and the mixture cost gives the masks no gradient (docs/results/rtagger_textured_cpu.md). Passed through,
    h starts as the group's own inputs (z, m, δz, L(m)), so the groups stay apart and the decoder learns to
    refine them. ConvG3 (a gate between e_0 and a candidate) already reads e_0 at init and is left alone."""
    bottom = engine.decoders[0]
    v = getattr(bottom, "v", None)
    if v is not None:
        with torch.no_grad():
            v.a[4].fill_(1.0)


def _norm_without_affine(kind: str, dims: int, channels: int = 1) -> nn.Module:
    """Norm of the head maps (one channel; for a dense engine one channel per pixel, normalised per pixel as the
    reference does); the scales and shifts of docs/design.md#the-rtagger are explicit parameters."""
    if kind == "batch_tick":
        return TickBatchNorm(channels, affine=False)
    if kind in ("batch", "batch_stats"):
        return {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims](channels, affine=False, track_running_stats=kind == "batch")
    if kind == "layer":
        return nn.GroupNorm(1, channels, affine=False)
    return nn.Identity()


class RTagger(nn.Module):
    """Tagger / RTagger built from a :class:`LadderConfig` with ``groups = K >= 2``.

    Outputs of :meth:`step` (``B`` streams, ``K`` groups):
        ``groups`` ``(B, K, *obs_shape)``: the masks m̂ (sum to 1 over K).
        ``reconstructions`` ``(B, K, *obs_shape)``: ẑ per group (of the current image, or of the next frame
        on video, whichever the training task asked for).
        ``prediction_logits`` ``(B, *obs_shape)``: logit of the mixture mean Σ_k m̂_k ẑ_k, clipped to
        [1e-3, 1 - 1e-3] (the forecast environments score; see :data:`FORECAST_EPS`).
        ``class_logits`` ``(B, n_classes)``: log class beliefs (groups summed, "none" dropped).
        ``log_variance`` ``(B,)``: log v², the variance of each group's Gaussian (the denoising cost).
    """

    def __init__(self, config: LadderConfig):
        super().__init__()
        self.config = config
        self.engine = RLadder(engine_config(config))
        if config.decoder_init == "closed":
            pass_bottom_through(self.engine)
        # a dense engine sees each group's inputs as one vector (a length-1 map of 4 * pixels channels) and its
        # heads give one channel per pixel; a conv engine sees maps of the image's shape and its heads one channel
        self.dense = config.tagger_engine == "dense"
        dims = self.engine.config.dims
        pixels = math.prod(config.obs_shape) if self.dense else 1
        bottom = self.engine.config.in_channels
        # the reference's learned projection of the inputs: the engine's bottom lateral gets parameters of its own
        self.projection = nn.Sequential(
            conv(dims, tagger_input_channels(config) * pixels, bottom, 1, bias=False), norm_layer(config.norm, bottom, dims), nn.ReLU()
        ) if config.tagger_projection else None
        self.z_head = conv(dims, bottom, pixels, 1, bias=False)
        self.m_head = conv(dims, bottom, pixels, 1, bias=False)
        self.z_norm = _norm_without_affine(config.norm, dims, pixels)
        self.m_norm = _norm_without_affine(config.norm, dims, pixels)
        self.binary = config.tagger_input == "binary"
        z0 = config.tagger_z_init
        affine_shape = config.obs_shape if config.tagger_affine == "pixel" else ()
        self.z_scale = nn.Parameter(torch.full(affine_shape, 1.0 if self.binary else 0.2))  # c_1
        self.z_shift = nn.Parameter(torch.full(affine_shape, math.log(z0 / (1 - z0)) if self.binary else z0))  # b_1 (a logit if binary)
        self.feed_logit = self.binary and config.tagger_z_feed == "logit"
        self.m_scale = nn.Parameter(torch.tensor(1.0))  # c_2
        self.log_variance = nn.Parameter(torch.tensor(math.log(config.tagger_variance_init)))  # log v²
        # norm="batch_tick": statistics kept per tick, selected by a tick counter in the state
        self.tick_norms = [m for m in self.modules() if isinstance(m, TickBatchNorm)]
        for norm in self.tick_norms:
            norm.set_rows(config.norm_ticks)

    @property
    def groups(self) -> int:
        return self.config.groups

    # ------------------------------------------------------------------------------ state
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """Per-stream state shapes: the engine's (one copy per group), then ``z`` and ``m`` ``(K, *obs_shape)``."""
        k, obs = self.groups, self.config.obs_shape
        spec = {ENGINE_PREFIX + name: (k, *shape) for name, shape in self.engine.state_spec().items()}
        spec["z"] = (k, *obs)
        spec["m"] = (k, *obs)
        if self.tick_norms:
            spec["tick"] = ()  # the stream's tick (0 at the start), capped at the last row of statistics
        return spec

    def init_state(
        self,
        batch: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> State:
        """The state before the first tick: engine zeros, ``z`` the constant ``tagger_z_init``, and ``m`` a
        softmax over groups of standard-normal noise drawn from ``generator`` (default: torch's global
        generator); the noise breaks the symmetry between the otherwise identical groups."""
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        p = next(self.parameters())
        device, dtype = device or p.device, dtype or p.dtype
        state = {k: torch.zeros((batch, *shape), device=device, dtype=dtype) for k, shape in self.state_spec().items()}
        shape = (batch, self.groups, *self.config.obs_shape)
        state["z"] = torch.full(shape, self.config.tagger_z_init, device=device, dtype=dtype)
        noise = torch.randn(shape, generator=generator, dtype=torch.float64)
        state["m"] = torch.softmax(noise, dim=1).to(device=device, dtype=dtype)
        return state

    def state_initialisers(self) -> dict[str, str]:
        """How each state entry starts, for runtimes that have only the exported step (ONNX metadata):
        ``zeros``, ``constant:<value>`` or ``softmax_normal`` (softmax over the group axis of N(0, 1) noise)."""
        return {name: "zeros" for name in self.state_spec()} | {"z": f"constant:{self.config.tagger_z_init}", "m": "softmax_normal"}

    # ------------------------------------------------------------------------------ one tick
    def tagger_inputs(self, obs: Tensor, z: Tensor, m: Tensor) -> Tensor:
        """``(B, K, 4, *obs_shape)``: z, m, the error signal δz and the mask likelihood L(m) per group (see the
        module docstring for the Gaussian and the binary forms); with ``tagger_group_roles`` ``(B, K, 4 + K,
        *obs_shape)``, each group's one-hot index appended as constant maps."""
        x = obs.unsqueeze(1)
        if self.binary:
            n = self.config.input_noise
            ink = z * (1 - 2 * n) + n  # the chance group k sees ink in the (possibly flipped) input
            ink = ink.clamp(1e-4, 1 - 1e-4)
            neg_log_lik = -(x * torch.log(ink) + (1 - x) * torch.log1p(-ink))
            mixture = (m * ink).sum(dim=1, keepdim=True)
            denominator = mixture - 1 + x
            denominator = torch.where(denominator >= 0, denominator.clamp_min(1e-4), denominator.clamp_max(-1e-4))
            error = m * (1 - 2 * n) / denominator
        else:
            variance = self.config.input_noise**2 + self.log_variance.exp()
            neg_log_lik = 0.5 * torch.log(variance) + (z - x).square() / (2 * variance)
            error = m * (x - z)
        likelihood = torch.softmax(-neg_log_lik, dim=1)
        if self.feed_logit:  # the pre-sigmoid value the state's z came from (clamped: sigmoid saturates in float)
            z = z.clamp(1e-6, 1 - 1e-6)
            z = torch.log(z) - torch.log1p(-z)
        inputs = torch.stack([z, m, error, likelihood], dim=2)
        if self.config.tagger_group_roles:
            k = self.groups
            roles = torch.eye(k, dtype=inputs.dtype, device=inputs.device).view(1, k, k, *([1] * (inputs.dim() - 3)))
            inputs = torch.cat([inputs, roles.expand(*inputs.shape[:2], k, *inputs.shape[3:])], dim=2)
        return inputs

    def step(self, obs: Tensor, state: State) -> tuple[Outputs, State]:
        """Advance every stream by one tick (an iteration, or a frame). Pure: ``state`` is not modified.

        Args:
            obs: ``(B, *obs_shape)``.
            state: as returned by :meth:`init_state` or a previous ``step``.
        Returns:
            ``(outputs, new_state)`` (see the class docstring).
        """
        cfg, k = self.config, self.groups
        if tuple(obs.shape[1:]) != cfg.obs_shape:
            raise ValueError(f"observations must be (batch, *{cfg.obs_shape}), got shape {tuple(obs.shape)}")
        b = obs.shape[0]
        if tuple(state["m"].shape) != (b, k, *cfg.obs_shape):
            raise ValueError(f"state['m'] has shape {tuple(state['m'].shape)}; expected {(b, k, *cfg.obs_shape)} "
                             f"({b} streams, {k} groups)")

        inputs = self.tagger_inputs(obs, state["z"], state["m"]).flatten(0, 1)  # groups folded into the batch
        if self.dense:
            inputs = inputs.reshape(b * k, -1, 1)
        engine_state = {name: state[ENGINE_PREFIX + name].flatten(0, 1) for name in self.engine.state_spec()}
        tick = state["tick"].long() if self.tick_norms else None
        with ticks_set(self.tick_norms, None if tick is None else tick.repeat_interleave(k)):  # a tick per group-stream
            if self.projection is not None:
                inputs = self.projection(inputs)
            engine_out, engine_next = self.engine.step(inputs, engine_state)
            h = engine_out["prediction_logits"]  # the engine's bottom-level output, (B*K, channels, *obs_shape)
            z = self.z_scale * self.z_norm(self.z_head(h)).reshape(b, k, *cfg.obs_shape) + self.z_shift
            m = torch.softmax((self.m_scale * self.m_norm(self.m_head(h))).reshape(b, k, *cfg.obs_shape), dim=1)
        z = torch.sigmoid(z) if self.binary else z.clamp(*GAUSSIAN_Z_RANGE)

        outputs: Outputs = {}
        if cfg.n_classes:
            outputs["class_logits"] = group_class_beliefs(engine_out["class_logits"].reshape(b, k, cfg.n_classes + 1))
        mean = (m * z).sum(dim=1).clamp(FORECAST_EPS, 1 - FORECAST_EPS)
        outputs["prediction_logits"] = torch.log(mean) - torch.log1p(-mean)
        outputs["groups"] = m
        outputs["reconstructions"] = z
        outputs["log_variance"] = self.log_variance + obs.new_zeros(b)  # (B,); not a view of the parameter

        new_state = {ENGINE_PREFIX + name: v.reshape(b, k, *v.shape[1:]) for name, v in engine_next.items()}
        new_state["z"], new_state["m"] = z, m
        if self.tick_norms:
            new_state["tick"] = (tick + 1).clamp_max(cfg.norm_ticks - 1).to(state["tick"].dtype)
        return outputs, new_state

    # The loop over ``step`` and the parameter count are the RLadder's own (they use only the interface).
    forward = RLadder.forward
    num_parameters = RLadder.num_parameters


TRUE_MASK = 0.95  # a true group's mask where it owns the pixel (the rest shared by the other groups)


def masks_from_groups(groups: Tensor, k: int) -> Tensor:
    """``(B, K, *obs)`` masks from true groups ``(B, *obs)`` (labels 0..K-1; any other label, such as -1, gets 1/K
    in every group): ``TRUE_MASK`` for a pixel's own group, the rest shared. The true segmentation as a start
    for the masks: ``experiments/true_masks.py`` and the ``true_start_steps`` training diagnostic."""
    labels = torch.arange(k, device=groups.device).view(1, k, *([1] * (groups.dim() - 1)))
    own = groups.unsqueeze(1) == labels
    masks = torch.where(own, torch.tensor(TRUE_MASK), torch.tensor((1 - TRUE_MASK) / (k - 1)))
    scored = own.any(dim=1, keepdim=True)
    return torch.where(scored, masks, torch.full_like(masks, 1.0 / k))


def group_mixture_bce(outputs: Outputs, targets: Tensor) -> Tensor:
    """The binary RTagger's low-level cost: the cross-entropy of the clean (or next) image under the mixture
    ``Σ_k m̂_k ẑ_k``, summed over the pixels and averaged over (batch, tick)."""
    masks, recon = outputs["groups"], outputs["reconstructions"]
    if targets.shape != masks.shape[:2] + masks.shape[3:]:
        raise ValueError(f"targets of shape {tuple(targets.shape)} do not match groups of shape {tuple(masks.shape)}")
    mean = (masks.float() * recon.float()).sum(dim=2).clamp(1e-6, 1 - 1e-6)
    per_pixel = -(targets.float() * torch.log(mean) + (1 - targets.float()) * torch.log1p(-mean))
    return per_pixel.flatten(2).sum(-1).mean()


def group_class_beliefs(logits: Tensor) -> Tensor:
    """Log class beliefs ``(B, C)`` from each group's logits over the classes and "none" ``(B, K, C + 1)``: each group's
    softmax, summed over the groups, "none" dropped, renormalised (the reference's collapse layer). In log space:
    where every group is sure of "none" the summed probabilities underflow to zero, and a ratio of clamped
    probabilities is then no distribution."""
    beliefs = torch.logsumexp(torch.log_softmax(logits, dim=-1), dim=1)[:, :-1]
    return beliefs - torch.logsumexp(beliefs, dim=-1, keepdim=True)


def group_mixture_nll(outputs: Outputs, targets: Tensor) -> Tensor:
    """The RTagger's low-level cost (docs/design.md#the-rtagger): per pixel ``-log Σ_k m̂_k N(x; ẑ_k, v²)``, summed over the
    pixels and averaged over (batch, tick).

    ``outputs`` as :meth:`RTagger.forward` returns them (``groups``, ``reconstructions`` ``[B, T, K, *obs]``,
    ``log_variance`` ``[B, T]``); ``targets`` ``[B, T, *obs]``: the clean image (denoising) or the next frame.
    """
    masks, recon, log_var = outputs["groups"], outputs["reconstructions"], outputs["log_variance"]
    if targets.shape != masks.shape[:2] + masks.shape[3:]:
        raise ValueError(f"targets of shape {tuple(targets.shape)} do not match groups of shape {tuple(masks.shape)}")
    log_var = log_var.reshape(*log_var.shape, *([1] * (masks.dim() - 2))).float()
    sq = (targets.unsqueeze(2).float() - recon.float()).square()
    log_normal = -0.5 * (math.log(2 * math.pi) + log_var + sq * torch.exp(-log_var))
    per_pixel = -torch.logsumexp(torch.log(masks.float().clamp_min(1e-8)) + log_normal, dim=2)
    return per_pixel.flatten(2).sum(-1).mean()
