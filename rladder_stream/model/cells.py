"""Building blocks of the Recurrent Ladder: encoder cells and decoder combinators (docs/design.md#encoder-cells, #decoder-cells).

Every block works on 1-D (music: pitch axis) or 2-D (images) feature maps, chosen by ``dims``.
Encoder cells are recurrent (state in, state out) or feed-forward; decoder cells are stateless
combinators ``y = g(u_in, z)`` that first project the signal from above, ``u_in``, to the lateral
shape of ``z`` with their own ``project`` module (the ``V`` of the Ladder equations).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from . import config
from .config import BATCH_NORMS, DECODER_INITS, NORMS, STATELESS_KINDS, UPSAMPLINGS


# ----------------------------------------------------------------------------- layer helpers


class SameConv1d(nn.Conv1d):
    """A 'same'-padded :class:`~torch.nn.Conv1d` (odd kernel, stride 1) that computes as a matrix product
    where it is one: a kernel of 1, or a map of length 1 (only the centre tap meets data, the rest meets the
    padding). The dense Tagger's layers are such convolutions over length-1 maps; on the CPU the convolution
    kernels (mkldnn) spent about 80 % of its training step on them, several times what the matrix product
    takes (docs/benchmarks.md). Same parameters, same function."""

    def forward(self, x: Tensor) -> Tensor:
        k = self.kernel_size[0]
        if k != 1 and x.shape[-1] != 1:
            return super().forward(x)
        y = nn.functional.linear(x.transpose(1, 2), self.weight[..., k // 2], self.bias)
        return y.transpose(1, 2)


def conv(dims: int, in_ch: int, out_ch: int, kernel: int, bias: bool = True) -> nn.Module:
    """A 'same'-padded convolution over ``dims`` spatial axes (odd kernels only)."""
    if kernel % 2 != 1:
        raise ValueError(f"kernel sizes must be odd to keep the spatial shape, got {kernel}")
    cls = {1: SameConv1d, 2: nn.Conv2d}[dims]
    return cls(in_ch, out_ch, kernel, padding=kernel // 2, bias=bias)


def upsample(dims: int, in_ch: int, out_ch: int, factor: int, kind: str = "transposed") -> nn.Module:
    """Map a feature map to a ``factor`` times larger one, or a 3-wide conv when factor is 1.

    ``transposed``: a transposed convolution with stride ``factor`` (each input cell paints its own
    ``factor``-wide patch with one set of weights per offset, so its output carries a fixed pattern of that
    period); ``nearest``: nearest-neighbour enlargement, then a 3-wide convolution (no such pattern)."""
    if kind not in UPSAMPLINGS:
        raise ValueError(f"unknown upsampling {kind!r}; expected one of {UPSAMPLINGS}")
    if factor == 1:
        return conv(dims, in_ch, out_ch, 3)
    if kind == "nearest":
        return nn.Sequential(nn.Upsample(scale_factor=factor, mode="nearest"), conv(dims, in_ch, out_ch, 3))
    cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[dims]
    return cls(in_ch, out_ch, factor, stride=factor)


def max_pool(dims: int, factor: int) -> nn.Module:
    """Max pooling by ``factor`` (identity for 1)."""
    if factor == 1:
        return nn.Identity()
    return {1: nn.MaxPool1d, 2: nn.MaxPool2d}[dims](factor)


def norm_layer(kind: str, channels: int, dims: int | None) -> nn.Module:
    """Normalisation over a feature map (``dims`` = 1 or 2) or a vector (``dims=None``).

    ``layer``: statistics over all features of one sample (GroupNorm with one group on maps), per-channel
    affine. ``batch``: batch normalisation, running statistics at evaluation. ``batch_tick``: batch normalisation
    with running statistics kept per tick (:class:`TickBatchNorm`; RTagger only). ``batch_stats``: batch
    normalisation with the batch's own statistics in training and evaluation alike (the RTagger, as the
    reference Tagger: its iterations have different statistics, which running averages pooled over them
    would blur; a stream's output then depends on the batch it is evaluated in). ``none``: identity.
    """
    if kind == "layer":
        return nn.LayerNorm(channels) if dims is None else nn.GroupNorm(1, channels)
    if kind in ("batch", "batch_stats"):
        cls = nn.BatchNorm1d if dims in (None, 1) else nn.BatchNorm2d
        return cls(channels, track_running_stats=kind == "batch")
    if kind == "batch_tick":
        return TickBatchNorm(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {kind!r}; expected one of {NORMS}")


class TickBatchNorm(nn.Module):
    """Batch normalisation whose running means are kept per tick (docs/design.md, "Batch normalisation at evaluation").

    The RTagger's iterations have statistics unlike each other (the first sees a constant z and a uniform L(m)),
    so one mean pooled over them shifts the first iterations by the later ones'. Training normalises with the
    batch's own statistics, exactly as :class:`~torch.nn.BatchNorm2d` does (training is unchanged), and moves the
    running row (mean and variance) of each tick the batch holds. Evaluation subtracts each sample's own tick's
    mean and divides by the variance **pooled** over the trained ticks (the mean of their variances plus the
    variance of their means): with each tick's own variance a few images of a Gaussian Tagger blew up over the
    iterations, and on Shapes the pooled variance scored best (measured). Ticks past the last trained row use that
    row; a stream's output does not depend on its batch. Input ``(N, C, *spatial)`` or ``(N, C)``.

    The tick of every sample belongs to the model's state, not to the module: :meth:`RTagger.step` lends it
    (an ``(N,)`` integer tensor) for the length of one step (:class:`ticks_set`).
    """

    def __init__(self, channels: int, rows: int = 1, affine: bool = True, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.channels, self.momentum, self.eps = channels, momentum, eps
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine else None
        self.set_rows(rows)
        self.tick: Tensor | None = None

    def set_rows(self, rows: int) -> None:
        """(Re)create the statistics for ``rows`` ticks, none of them trained yet."""
        if rows < 1:
            raise ValueError(f"rows must be >= 1, got {rows}")
        self.register_buffer("running_mean", torch.zeros(rows, self.channels))
        self.register_buffer("running_var", torch.ones(rows, self.channels))
        self.register_buffer("rows_trained", torch.zeros((), dtype=torch.long))  # 1 + the highest tick trained

    @property
    def rows(self) -> int:
        return self.running_mean.shape[0]

    def pooled_variance(self) -> Tensor:
        """``(C,)``: the variance of all trained ticks' values together, the ticks weighted alike (row 0's, the
        initial 1, before any training). Tensor operations only, so the exported graph computes it too."""
        trained = torch.arange(self.rows, device=self.running_mean.device) < self.rows_trained.clamp_min(1)
        weight = (trained.float() / trained.float().sum()).unsqueeze(1)
        mean = (weight * self.running_mean).sum(0)
        return (weight * (self.running_var + (self.running_mean - mean).square())).sum(0)

    def forward(self, x: Tensor) -> Tensor:
        tick = self.tick
        if tick is None:
            raise RuntimeError("norm='batch_tick' keeps its statistics per tick and needs every sample's tick: "
                               "only the RTagger (groups >= 2) supplies it")
        if self.training:
            y = nn.functional.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
            self._update(x.detach(), tick)
            return y
        index = torch.minimum(tick.clamp(0, self.rows - 1), (self.rows_trained - 1).clamp_min(0))
        shape = (x.shape[0], self.channels) + (1,) * (x.dim() - 2)
        mean = self.running_mean[index].reshape(shape)
        var = self.pooled_variance().reshape((1, self.channels) + (1,) * (x.dim() - 2))
        y = (x.float() - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            affine = (1, self.channels) + (1,) * (x.dim() - 2)
            y = y * self.weight.float().reshape(affine) + self.bias.float().reshape(affine)
        return y.to(x.dtype)

    @torch.no_grad()
    def _update(self, x: Tensor, tick: Tensor) -> None:
        """Move the rows of the batch's ticks towards the batch's statistics (unbiased variance, as BatchNorm)."""
        axes = [0, *range(2, x.dim())]
        count = x.numel() // self.channels
        mean = x.float().mean(axes)
        var = x.float().var(axes, correction=1 if count > 1 else 0)
        tick = tick.clamp(0, self.rows - 1)
        present = torch.zeros(self.rows, device=x.device, dtype=torch.bool).index_fill_(0, tick, True)
        step = self.momentum * present.float().unsqueeze(1)
        self.running_mean.mul_(1 - step).add_(step * mean)
        self.running_var.mul_(1 - step).add_(step * var)
        self.rows_trained.copy_(torch.maximum(self.rows_trained, tick.max() + 1))


class ticks_set:
    """Context manager: every :class:`TickBatchNorm` in ``modules`` sees ``tick`` (``(N,)``) inside the block
    (``None`` where there are no such modules)."""

    def __init__(self, modules: list[TickBatchNorm], tick: Tensor | None):
        self.modules, self.tick = modules, tick

    def __enter__(self) -> None:
        for module in self.modules:
            module.tick = self.tick

    def __exit__(self, *exc: object) -> None:
        for module in self.modules:
            module.tick = None


def _linear(in_f: int, out_f: int, bias: bool = True) -> nn.Linear:
    return nn.Linear(in_f, out_f, bias=bias)


# ----------------------------------------------------------------------------- encoder cells


def _gate_transforms(in_ch: int, hidden: int, gates: int, kernel: int, dims: int | None, norm: str) -> tuple[nn.Module, nn.Module, nn.Module]:
    """The gated cells' ``W_x`` (no bias: the normalisation follows it), ``W_h`` (with bias) and ``Norm``."""
    if dims is None:
        return _linear(in_ch, gates * hidden, bias=False), _linear(hidden, gates * hidden), norm_layer(norm, gates * hidden, None)
    return (
        conv(dims, in_ch, gates * hidden, kernel, bias=False),
        conv(dims, hidden, gates * hidden, kernel),
        norm_layer(norm, gates * hidden, dims),
    )


class LSTMCell(nn.Module):
    """LSTM with normalisation after the input transform (docs/design.md#encoder-cells), conv (``dims`` 1/2) or dense (``None``).

    ``[i,f,o,g] = Norm(W_x x) + W_h h + b [+ side]``; ``c' = σ(f) c + σ(i) tanh(g)``; ``h' = σ(o) tanh(c')``.
    ``side`` (``gate_channels`` maps, optional) is an input already transformed by the caller, added after
    the normalisation. State: ``(h, c)``.
    """

    state_names = ("h", "c")

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, dims: int | None = 2, norm: str = "layer"):
        super().__init__()
        self.hidden, self.dims = hidden, dims
        self.gate_channels = 4 * hidden
        self.input_transform, self.hidden_transform, self.norm = _gate_transforms(in_ch, hidden, 4, kernel, dims, norm)
        with torch.no_grad():  # forget-gate bias +1: remember by default at the start of training
            self.hidden_transform.bias.zero_()
            self.hidden_transform.bias[hidden : 2 * hidden].fill_(1.0)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor], side: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = state
        gates = self.norm(self.input_transform(x)) + self.hidden_transform(h)
        if side is not None:  # an extra input's own transform, added after the normalisation like W_h h
            gates = gates + side
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class LSTMReLUCell(nn.Module):
    """An LSTM's memory with a sparse, non-saturating output (docs/design.md#encoder-cells, "LSTM memory, ReLU output").

    ``[i,f,o,g] = Norm(W_x x)_gates + W_h h + b [+ side]``; ``c' = σ(f) c + σ(i) tanh(g)``; ``h' = σ(o) tanh(c')``
    is the memory (the state); the level's output, what it passes up and to its decoder, is
    ``ReLU(Norm(W_x x)_out + U h')``. ``U`` starts at zero, so at first the output is exactly the feed-forward
    cell's, whose sparse code lets one group take one object; training decides what the memory adds. The LSTM's
    own output ``σ(o) tanh(c)`` is dense and saturating: as an RTagger's engine it gave one group all the ink.
    The decoder's feedback (``side``) enters the gates only, so it reaches the output through the bounded memory:
    an unbounded output fed back into itself could grow without limit from tick to tick. State: ``(h, c)``.
    """

    state_names = ("h", "c")

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, dims: int | None = 2, norm: str = "layer"):
        super().__init__()
        self.hidden, self.dims = hidden, dims
        self.gate_channels = 4 * hidden  # what ``side`` must have: the gates only
        if dims is None:
            self.input_transform, self.hidden_transform = _linear(in_ch, 5 * hidden, bias=False), _linear(hidden, 4 * hidden)
            self.memory_readout = _linear(hidden, hidden, bias=False)
        else:
            self.input_transform = conv(dims, in_ch, 5 * hidden, kernel, bias=False)
            self.hidden_transform = conv(dims, hidden, 4 * hidden, kernel)
            self.memory_readout = conv(dims, hidden, hidden, kernel, bias=False)
        self.norm = norm_layer(norm, 5 * hidden, dims)
        with torch.no_grad():  # forget-gate bias +1; U = 0: the output starts as the feed-forward cell's
            self.hidden_transform.bias.zero_()
            self.hidden_transform.bias[hidden : 2 * hidden].fill_(1.0)
            self.memory_readout.weight.zero_()

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor], side: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = state
        normalised = self.norm(self.input_transform(x))
        gates, out = normalised[:, : 4 * self.hidden], normalised[:, 4 * self.hidden :]
        gates = gates + self.hidden_transform(h)
        if side is not None:
            gates = gates + side
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return torch.relu(out + self.memory_readout(h)), (h, c)


class GRUCell(nn.Module):
    """GRU with normalisation after the input transform, conv (``dims`` 1/2) or dense (``None``). State: ``(h,)``.

    ``[r,u,n]_x = Norm(W_x x) [+ side]``; ``r, u = σ(r_x + r_h), σ(u_x + u_h)``; ``n = tanh(n_x + r ⊙ n_h)``;
    ``h' = (1 - u) ⊙ n + u ⊙ h``.
    """

    state_names = ("h",)

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, dims: int | None = 2, norm: str = "layer"):
        super().__init__()
        self.hidden, self.dims = hidden, dims
        self.gate_channels = 3 * hidden
        self.input_transform, self.hidden_transform, self.norm = _gate_transforms(in_ch, hidden, 3, kernel, dims, norm)

    def forward(self, x: Tensor, state: tuple[Tensor], side: Tensor | None = None) -> tuple[Tensor, tuple[Tensor]]:
        (h,) = state
        xs = self.norm(self.input_transform(x))
        rx, ux, nx = (xs if side is None else xs + side).chunk(3, dim=1)
        rh, uh, nh = self.hidden_transform(h).chunk(3, dim=1)
        r, u = torch.sigmoid(rx + rh), torch.sigmoid(ux + uh)
        n = torch.tanh(nx + r * nh)
        h = (1 - u) * n + u * h
        return h, (h,)


class FeedForwardCell(nn.Module):
    """Non-recurrent encoder layer: transform, batch normalisation (docs/design.md#encoder-cells), [+ side], ReLU. Stateless."""

    state_names: tuple[str, ...] = ()

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, dims: int | None = 2, norm: str = "batch"):
        super().__init__()
        self.hidden, self.dims = hidden, dims
        self.gate_channels = hidden
        self.transform = _linear(in_ch, hidden, bias=False) if dims is None else conv(dims, in_ch, hidden, kernel, bias=False)
        self.norm = norm_layer(norm, hidden, dims)

    def forward(self, x: Tensor, state: tuple = (), side: Tensor | None = None) -> tuple[Tensor, tuple]:
        pre = self.norm(self.transform(x))
        return self.activation(pre if side is None else pre + side), ()

    @staticmethod
    def activation(pre: Tensor) -> Tensor:
        return torch.relu(pre)


class SoftmaxCell(FeedForwardCell):
    """The reference Ladder's top layer: a feed-forward layer whose units compete through a softmax over the
    channel axis (batch normalisation's scale and shift act as the softmax's learned temperature and bias per
    unit). A code that is a distribution over prototypes: on a Tagger's group it favours one object a group."""

    @staticmethod
    def activation(pre: Tensor) -> Tensor:
        return torch.softmax(pre, dim=1)


ENCODER_CELLS: dict[str, type[nn.Module]] = {"lstm": LSTMCell, "lstm_relu": LSTMReLUCell, "gru": GRUCell,
                                              "feedforward": FeedForwardCell, "softmax": SoftmaxCell}


def make_encoder_cell(kind: str, in_ch: int, hidden: int, kernel: int, dims: int | None, norm: str) -> nn.Module:
    """Encoder cell by name: ``lstm``, ``lstm_relu``, ``gru`` (recurrent), ``feedforward`` or ``softmax`` (stateless, always
    batch-normalised)."""
    if kind not in ENCODER_CELLS:
        raise ValueError(f"unknown encoder cell {kind!r}; expected one of {sorted(ENCODER_CELLS)}")
    if kind in STATELESS_KINDS:
        norm = norm if norm in (*BATCH_NORMS, "none") else "batch"
    return ENCODER_CELLS[kind](in_ch, hidden, kernel, dims, norm)


# ----------------------------------------------------------------------------- decoder cells


def _per_unit(shape: tuple[int, ...], value: float) -> nn.Parameter:
    return nn.Parameter(torch.full(shape, value))


class _Psi(nn.Module):
    """The Ladder's element-wise form ``a1 σ(a2 x + a3) + a4 x + a5``, one set of weights per unit/channel;
    with ``squash`` the whole expression goes through a sigmoid (the reference Tagger's ``gauss_stable_v``,
    which keeps ``v`` in (0, 1)).

    Starts at ``a2 = 1``, ``a4 = slope``, ``a5 = constant`` and the rest 0: ``slope = constant = 0`` is the
    original Ladder's closed start (output 0, zero slope).
    """

    def __init__(self, shape: tuple[int, ...], slope: float = 0.0, constant: float = 0.0, squash: bool = False):
        super().__init__()
        start = (0.0, 1.0, 0.0, slope, constant)
        self.a = nn.ParameterList([_per_unit(shape, value) for value in start])
        self.squash = squash

    def forward(self, x: Tensor) -> Tensor:
        a1, a2, a3, a4, a5 = self.a
        out = a1 * torch.sigmoid(a2 * x + a3) + a4 * x + a5
        return torch.sigmoid(out) if self.squash else out


def _mu_and_v(shape: tuple[int, ...], init: str) -> tuple[_Psi, _Psi]:
    """The ``μ`` and ``v`` functions of a Gaussian combinator ``y = (z - μ) ⊙ v + μ`` (design.md, "The decoder
    starts open").

    ``open``: ``μ = 0.5 u`` and ``v = 0.5``, so ``y = 0.5 z + 0.25 u`` at init: both inputs reach the output, and
    the bottom cost's gradient reaches every level above. ``open_stable``: the same start with ``v`` squashed
    into (0, 1). ``closed``: the original Ladder's ``μ = v = 0`` (output 0, zero slope in ``u`` and ``z``), which
    with a cost at the bottom only sends no gradient upward at init.
    """
    if init not in DECODER_INITS:
        raise ValueError(f"unknown decoder init {init!r}; expected one of {DECODER_INITS}")
    if init == "closed":
        return _Psi(shape), _Psi(shape)
    if init == "open":
        return _Psi(shape, slope=0.5), _Psi(shape, constant=0.5)
    return _Psi(shape, slope=0.5), _Psi(shape, squash=True)


def _unit_shape(channels: int, dims: int | None) -> tuple[int, ...]:
    return (channels,) if dims is None else (channels,) + (1,) * dims


class DecoderCell(nn.Module):
    """Base of the stateless decoder combinators: ``y = combine(project(u_in), z)``.

    ``project`` maps the signal from the level above to the lateral shape ``(channels, *spatial)`` of ``z``.
    """

    def __init__(self, project: nn.Module, channels: int, dims: int | None):
        super().__init__()
        self.project, self.channels, self.dims = project, channels, dims

    def forward(self, u_in: Tensor, z: Tensor) -> Tensor:
        return self.combine(self.project(u_in), z)

    def combine(self, u: Tensor, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class G1(DecoderCell):
    """The Ladder 'Gaussian' combinator (Rasmus et al. 2015), dense (``dims=None``) or per channel (ConvG1).

    ``u = Norm(V u_in)``; ``μ = ψ_μ(u)``, ``v = ψ_v(u)``; ``y = (z - μ) ⊙ v + μ``.
    """

    def __init__(self, project: nn.Module, channels: int, dims: int | None, norm: str = "layer", kernel: int = 3,
                 init: str = "open"):
        super().__init__(project, channels, dims)
        self.norm = norm_layer(norm, channels, dims)
        self.mu, self.v = _mu_and_v(_unit_shape(channels, dims), init)

    def combine(self, u: Tensor, z: Tensor) -> Tensor:
        u = self.norm(u)
        mu = self.mu(u)
        return (z - mu) * self.v(u) + mu


class ConvG1(G1):
    """G1 on feature maps: ``V`` is a convolution or transposed convolution, ``a_1..a_10`` per channel."""


class ConvG2(DecoderCell):
    """``h = Norm(W * [u, z])`` split into ``(h_μ, h_v)``; ``μ = ψ(h_μ)``, ``v = ψ(h_v)``; ``y = (z - μ) ⊙ v + μ``."""

    def __init__(self, project: nn.Module, channels: int, dims: int | None, norm: str = "layer", kernel: int = 3,
                 init: str = "open"):
        super().__init__(project, channels, dims)
        self.mix = _linear(2 * channels, 2 * channels, bias=False) if dims is None else conv(dims, 2 * channels, 2 * channels, kernel, bias=False)
        self.norm = norm_layer(norm, 2 * channels, dims)
        self.mu, self.v = _mu_and_v(_unit_shape(channels, dims), init)

    def combine(self, u: Tensor, z: Tensor) -> Tensor:
        h_mu, h_v = self.norm(self.mix(torch.cat([u, z], dim=1))).chunk(2, dim=1)
        mu = self.mu(h_mu)
        return (z - mu) * self.v(h_v) + mu


class ConvG3(DecoderCell):
    """``h = Norm(W * [u, z])`` split into (gate, candidate); ``y = σ(gate) ⊙ z + (1 - σ(gate)) ⊙ tanh(candidate)``.

    Open by construction: the normalised gate is about 0 at init, so ``y`` blends ``z`` and a function of
    ``(u, z)``; ``init`` is accepted for a uniform interface and changes nothing."""

    def __init__(self, project: nn.Module, channels: int, dims: int | None, norm: str = "layer", kernel: int = 3,
                 init: str = "open"):
        if init not in DECODER_INITS:
            raise ValueError(f"unknown decoder init {init!r}; expected one of {DECODER_INITS}")
        super().__init__(project, channels, dims)
        self.mix = _linear(2 * channels, 2 * channels, bias=False) if dims is None else conv(dims, 2 * channels, 2 * channels, kernel, bias=False)
        self.norm = norm_layer(norm, 2 * channels, dims)

    def combine(self, u: Tensor, z: Tensor) -> Tensor:
        gate, candidate = self.norm(self.mix(torch.cat([u, z], dim=1))).chunk(2, dim=1)
        g = torch.sigmoid(gate)
        return g * z + (1 - g) * torch.tanh(candidate)


DECODER_CELLS: dict[str, type[DecoderCell]] = {"g1": G1, "convg1": ConvG1, "convg2": ConvG2, "convg3": ConvG3}


def make_decoder_cell(kind: str, project: nn.Module, channels: int, dims: int | None, norm: str, kernel: int = 3,
                      init: str = "open") -> DecoderCell:
    """Decoder cell by name (``convg1``, ``convg2``, ``convg3``; on dense levels each acts on vectors), started
    ``open`` (default), ``open_stable`` or ``closed`` (see :func:`_mu_and_v`)."""
    if kind not in DECODER_CELLS:
        raise ValueError(f"unknown decoder cell {kind!r}; expected one of {sorted(DECODER_CELLS)}")
    return DECODER_CELLS[kind](project, channels, dims, norm, kernel, init)


def check_config_names() -> None:
    """Raise ``ImportError`` unless the tables here build exactly the blocks a configuration may name (the plain
    names of :mod:`.config`, which a configuration is checked against without torch); run once, below."""
    built = {"ENCODER_KINDS": tuple(ENCODER_CELLS), "DECODER_CELLS": tuple(DECODER_CELLS),
             "STATELESS_KINDS": tuple(kind for kind, cell in ENCODER_CELLS.items() if not cell.state_names)}
    wrong = [f"config.{name} = {getattr(config, name)}, cells.py builds {here}" for name, here in built.items()
             if getattr(config, name) != here]
    if wrong:
        raise ImportError("model/config.py and model/cells.py disagree: " + "; ".join(wrong))


check_config_names()


class DenseToMap(nn.Module):
    """Project a vector to a feature map of shape ``(channels, *spatial)`` (top level -> highest map level)."""

    def __init__(self, in_features: int, channels: int, spatial: tuple[int, ...]):
        super().__init__()
        self.shape = (channels, *spatial)
        self.linear = _linear(in_features, channels * math.prod(spatial))

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).reshape(x.shape[0], *self.shape)
