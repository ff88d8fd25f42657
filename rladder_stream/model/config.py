"""Model configurations as plain data: everything needed to build a model (the observation shape, the
encoder levels, the top level, the decoder and its switches, the task heads and the cost weights), checked
when made. The named configurations are in :mod:`rladder_stream.model.registry`::

    >>> from rladder_stream.model.config import LadderConfig, LevelConfig
    >>> cfg = LadderConfig(obs_shape=(32, 32), levels=(LevelConfig(8), LevelConfig(16, pool=2)))
    >>> cfg.replace(decoder_to_encoder=False).decoder_to_encoder
    False
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

# The names a configuration may use; :mod:`.cells` builds a block for each and checks, when it loads, that its
# tables name exactly these (plain data here, so that reading a configuration needs no torch).
ENCODER_KINDS = ("lstm", "lstm_relu", "gru", "feedforward", "softmax")  # the encoder cells (cells.ENCODER_CELLS)
STATELESS_KINDS = ("feedforward", "softmax")  # the encoder cells without state
DECODER_CELLS = ("g1", "convg1", "convg2", "convg3")  # the decoder combinators (cells.DECODER_CELLS)
DECODER_INITS = ("open", "open_stable", "closed")
NORMS = ("layer", "batch", "batch_tick", "batch_stats", "none")
BATCH_NORMS = ("batch", "batch_tick", "batch_stats")  # the norms with batch statistics
UPSAMPLINGS = ("transposed", "nearest")
SIZES = ("tiny", "cpu", "gpu")
INPUT_VIEWS = ("observed", "optimal_reconstruction")
PREDICTION_READOUTS = ("decoder", "top")
TAGGER_INPUTS_KINDS = ("gaussian", "binary")
TAGGER_ENGINES = ("conv", "dense")
TAGGER_Z_FEEDS = ("probability", "logit")
TAGGER_AFFINES = ("shared", "pixel")
TAGGER_COST_ITERATIONS = ("all", "last")
D2E_ENTRIES = ("input", "gates", "normalised")


@dataclass(frozen=True)
class LevelConfig:
    """One spatial encoder level: ``pool`` its input from below, then a cell of ``channels`` channels."""

    channels: int
    kind: str = "lstm"  # lstm | gru | feedforward
    kernel: int = 3
    pool: int = 1


@dataclass(frozen=True)
class LadderConfig:
    """Everything that defines an RLadder and its training costs.

    Attributes:
        name: registry name (informational).
        obs_shape: shape of one observation, without batch or channel axis: ``(H, W)`` or ``(keys,)``.
        levels: spatial encoder levels 1..L, bottom first.
        top_kind: the top (dense) level's cell: ``lstm``, ``gru``, ``feedforward`` or ``softmax`` (feed-forward with
            a softmax over its units instead of a ReLU: the reference Ladder's top, docs/design.md#encoder-cells).
        top_size: units of the top level.
        top_pool: pooling of the highest map before it is flattened into the top level.
        decoder: build the decoder (off: hierarchical RNN, temporal baseline, static classifier).
        decoder_cell: ``convg1``, ``convg2`` or ``convg3`` (the top level always uses dense ``g1``).
        decoder_init: how the Gaussian combinators start: ``open`` (``y = 0.5 z + 0.25 u``, so the bottom
            cost's gradient reaches every level at init), ``open_stable`` (the same with ``v`` squashed into
            (0, 1), the reference Tagger's ``gauss_stable_v``) or ``closed`` (the original Ladder's ``y = 0``,
            which sends no gradient above the bottom at init; kept to reproduce earlier runs).
        upsampling: how the decoder enlarges a map to the level below: ``transposed`` (a stride-``pool``
            transposed convolution) or ``nearest`` (nearest-neighbour enlargement, then a 3-wide convolution).
        decoder_to_encoder: feed ``d_l^{t-1}`` into the encoder at level l (docs/design.md#one-tick).
        decoder_to_encoder_entry: where ``d_l^{t-1}`` enters the encoder cell: ``normalised`` (default),
            through its own transform and its own normalisation added to the gates, one normalisation per
            input as the paper's appendix has it: ``Norm(W_x x) + Norm(W_d d) + W_h h + b``; ``gates``, through
            its own transform without normalisation; or ``input``, concatenated with the bottom-up input before
            the one normalised input transform. With open decoders ``input`` trained far worse (docs/design.md,
            "Where the feedback enters": 18.5 % test error against 5-6 % for the others, H200, 1 seed).
        decoder_to_encoder_detach: stop the gradient through ``d_l^{t-1}``: the feedback is used as an
            input but not trained through (docs/results/table1_investigation.md).
        decoder_input_detach: stop the gradient from the decoder into the encoder (the decoder reads the encoder's
            lateral and top outputs detached): the prediction cost then trains the decoder and its readout only,
            and the encoder learns from the class cost alone, the feedback ``d^{t-1}`` included
            (docs/design.md, "Where the prediction gradient enters").
        norm: after input convolutions and in decoder cells: ``layer`` (RLadder), ``batch`` (running statistics
            pooled over ticks at evaluation), ``batch_tick`` (running means kept per tick, selected by a tick counter
            in the state, and the variance pooled over the ticks: the RTagger's iterations differ; RTagger only) or ``batch_stats`` (the batch's own
            statistics at evaluation too, as the reference Tagger; a stream's output then depends on its batch).
        norm_ticks: rows of per-tick statistics with ``batch_tick``; later ticks share the last row.
        n_classes: classes of the classification head; 0 for none.
        predict: next-observation head on the bottom decoder output (needs the decoder).
        probe: stopped-gradient readout of the clean input from the lowest decoder map (docs/design.md#baselines-and-ablations).
        prediction_weight, class_weight, probe_weight: cost weights; an ablation sets one to zero.
        input_noise: std of Gaussian noise added to observations during training.
        input_view: what the model is fed: ``observed`` frames, or the ``optimal_reconstruction`` of the
            digit after the last observed frame (the gold-standard static classifier of Table 1).
        prediction_readout: where the next-observation head reads: ``decoder`` (the RLadder: a per-pixel
            affine map of the bottom decoder output) or ``top`` (a dense readout of the top level, for the
            plain LSTM/GRU baselines of Table 3, which have no spatial levels and no decoder).
        prediction_bias: initial bias of the prediction head's logits. 0 (probability 0.5) by default; sparse
            data such as piano rolls (about 4 of 88 keys on) start at the log-odds of the base rate, because
            the RLadder's readout has a single shift to learn it with, which Adam moves by about ``lr`` a step.
        groups: RTagger (docs/design.md#the-rtagger): the number K of groups; 0 builds a plain RLadder. With K > 0 this
            configuration is the RLadder engine shared by the K groups (``decoder_to_encoder`` and recurrent
            levels give the RTagger, feed-forward levels without them the Tagger), and ``predict`` /
            ``prediction_weight`` are the RTagger's low-level task (denoising or next-frame prediction).
        in_channels: channels of one observation fed to the bottom level (the RTagger's engine gets 4 per
            group; a plain model's observation has 1, without a channel axis).
        tagger_input: the RTagger's input type: ``gaussian`` (grey levels, Gaussian corruption of std
            ``input_noise``, a Gaussian mixture cost) or ``binary`` (near-binary images: each pixel flipped with
            probability ``input_noise``, reconstructions through a sigmoid, the cross-entropy of the clean image
            under the mixture; the reference Tagger's ``input_type='binary'``).
        tagger_z_init: the value every group's reconstruction starts from (the data's mean pixel is a good one).
        tagger_variance_init: the initial variance v² of the Gaussian groups (learned; the reference starts
            soft, about 2.4).
        tagger_projection: channels of a learned projection of the 4 Tagger inputs (1x1 convolution,
            normalisation, ReLU) that becomes the engine's bottom level; 0: the engine reads the raw inputs.
        tagger_engine: ``conv`` (the engine's levels are maps of the image's shape) or ``dense`` (the reference
            Tagger's fully connected Ladder: the 4 inputs of every pixel flattened into one vector, the levels
            vectors of ``channels`` units; the levels must then have kernel 1 and pool 1).
        tagger_z_feed: what the engine reads as a binary group's reconstruction: ``probability`` (ẑ_k itself) or
            ``logit`` (its pre-sigmoid value, as the reference feeds ``z_hat_pre_bin``; a saturated probability
            then stays distinguishable from an almost saturated one; binary inputs only).
        tagger_affine: the scale c_1 and shift b_1 of the reconstruction head: ``shared`` (one of each) or
            ``pixel`` (one per pixel, as the reference has them: b_1 can hold where ink usually is).
        tagger_cost_iterations: which ticks' mixture cost trains the Tagger: ``all`` (averaged over the ticks, as
            the reference) or ``last`` (only the last tick's). A binary mixture's cost sees only ``Σ_k m̂_k ẑ_k``
            per pixel, so a grouping pays only through what it gives the next iterations (docs/design.md#the-rtagger);
            ``last`` trains the earlier iterations for that alone.
        tagger_group_roles: give each group's engine its group's index as K more input channels (one-hot, constant
            over the image), so the groups are no longer interchangeable and need no symmetry broken to take
            different parts (e.g. figure and ground); false, the Tagger's and the paper's, keeps them
            interchangeable (docs/design.md#the-rtagger, the Brodatz probes).
    """

    name: str = "custom"
    obs_shape: tuple[int, ...] = (32, 32)
    levels: tuple[LevelConfig, ...] = (LevelConfig(8), LevelConfig(16, pool=2), LevelConfig(32, pool=2))
    top_kind: str = "lstm"
    top_size: int = 64
    top_pool: int = 2
    decoder: bool = True
    decoder_cell: str = "convg2"
    decoder_init: str = "open"
    upsampling: str = "transposed"
    decoder_to_encoder: bool = True
    decoder_to_encoder_entry: str = "normalised"
    decoder_to_encoder_detach: bool = False
    decoder_input_detach: bool = False
    norm: str = "layer"
    norm_ticks: int = 20
    n_classes: int = 10
    predict: bool = True
    probe: bool = False
    prediction_weight: float = 1.0
    class_weight: float = 1.0
    probe_weight: float = 1.0
    input_noise: float = 0.0
    input_view: str = "observed"
    prediction_readout: str = "decoder"
    prediction_bias: float = 0.0
    groups: int = 0
    in_channels: int = 1
    tagger_input: str = "gaussian"
    tagger_z_init: float = 0.5
    tagger_variance_init: float = 0.04
    tagger_projection: int = 0
    tagger_engine: str = "conv"
    tagger_z_feed: str = "probability"
    tagger_affine: str = "shared"
    tagger_cost_iterations: str = "all"
    tagger_group_roles: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "obs_shape", tuple(int(s) for s in self.obs_shape))
        object.__setattr__(
            self, "levels", tuple(lv if isinstance(lv, LevelConfig) else LevelConfig(**lv) for lv in self.levels)
        )
        self.validate()

    # -- derived facts -----------------------------------------------------------------------
    @property
    def dims(self) -> int:
        """Number of spatial axes of the observation (1 for music, 2 for images)."""
        return len(self.obs_shape)

    def level_spatial(self, level: int) -> tuple[int, ...]:
        """Spatial shape of encoder level ``level`` (0 = the observation)."""
        factor = 1
        for lv in self.levels[:level]:  # a plain loop: torch.compile traces it without a graph break
            factor *= lv.pool
        return tuple(s // factor for s in self.obs_shape)

    @property
    def top_input_features(self) -> int:
        """Number of features flattened into the top level."""
        spatial = self.level_spatial(len(self.levels))
        channels = self.levels[-1].channels if self.levels else 1  # no levels: the observation itself
        return channels * math.prod(s // self.top_pool for s in spatial)

    @property
    def recurrent(self) -> bool:
        """Whether the model carries state from tick to tick."""
        return self.top_kind not in STATELESS_KINDS or any(lv.kind not in STATELESS_KINDS for lv in self.levels) or (
            self.decoder and self.decoder_to_encoder
        )

    # -- checks and conversions --------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent field."""
        if self.dims not in (1, 2):
            raise ValueError(f"obs_shape must have 1 or 2 axes, got {self.obs_shape}")
        if not self.levels and self.decoder:
            raise ValueError("a ladder with a decoder needs at least one spatial encoder level (or set decoder=False)")
        for i, lv in enumerate(self.levels, start=1):
            if lv.kind not in ENCODER_KINDS:
                raise ValueError(f"levels[{i - 1}].kind={lv.kind!r}; expected one of {ENCODER_KINDS}")
            if lv.channels < 1 or lv.pool < 1 or lv.kernel < 1 or lv.kernel % 2 == 0:
                raise ValueError(f"levels[{i - 1}]: channels and pool must be >= 1 and kernel odd, got {lv}")
        factor = 1
        for lv in self.levels:
            factor *= lv.pool
        factor *= self.top_pool
        if any(s % factor for s in self.obs_shape):
            raise ValueError(
                f"obs_shape {self.obs_shape} is not divisible by the total pooling {factor} "
                f"(level pools {[lv.pool for lv in self.levels]} times top_pool {self.top_pool})"
            )
        if self.top_kind not in ENCODER_KINDS:
            raise ValueError(f"top_kind={self.top_kind!r}; expected one of {ENCODER_KINDS}")
        if self.upsampling not in UPSAMPLINGS:
            raise ValueError(f"upsampling={self.upsampling!r}; expected one of {UPSAMPLINGS}")
        if self.decoder_init not in DECODER_INITS:
            raise ValueError(f"decoder_init={self.decoder_init!r}; expected one of {DECODER_INITS}")
        if self.decoder_cell not in DECODER_CELLS:
            raise ValueError(f"decoder_cell={self.decoder_cell!r}; expected one of {sorted(DECODER_CELLS)}")
        if self.norm not in NORMS:
            raise ValueError(f"norm={self.norm!r}; expected one of {NORMS}")
        if self.norm_ticks < 1:
            raise ValueError(f"norm_ticks must be >= 1, got {self.norm_ticks}")
        if self.prediction_readout not in PREDICTION_READOUTS:
            raise ValueError(f"prediction_readout={self.prediction_readout!r}; expected one of {PREDICTION_READOUTS}")
        if ((self.predict and self.prediction_readout == "decoder") or self.probe) and not self.decoder:
            raise ValueError("the prediction and probe heads read the decoder: set decoder=True or turn them off "
                             "(or read the prediction from the top level: prediction_readout='top')")
        if self.decoder_to_encoder_entry not in D2E_ENTRIES:
            raise ValueError(f"decoder_to_encoder_entry={self.decoder_to_encoder_entry!r}; expected one of {D2E_ENTRIES}")
        if self.decoder_to_encoder and not self.decoder:
            raise ValueError("decoder_to_encoder needs the decoder (set decoder_to_encoder=False)")
        if self.input_view not in INPUT_VIEWS:
            raise ValueError(f"input_view={self.input_view!r}; expected one of {INPUT_VIEWS}")
        if self.n_classes < 0:
            raise ValueError(f"n_classes must be >= 0, got {self.n_classes}")
        if self.in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {self.in_channels}")
        if self.groups < 0 or self.groups == 1:
            raise ValueError(f"groups must be 0 (no RTagger) or >= 2, got {self.groups}")
        if self.groups and not (self.decoder and self.predict and self.prediction_readout == "decoder"):
            raise ValueError("an RTagger (groups > 0) reads its reconstructions and masks from the bottom decoder: "
                             "set decoder=True, predict=True and prediction_readout='decoder'")
        if self.tagger_input not in TAGGER_INPUTS_KINDS:
            raise ValueError(f"tagger_input={self.tagger_input!r}; expected one of {TAGGER_INPUTS_KINDS}")
        if not 0.0 < self.tagger_z_init < 1.0 and self.tagger_input == "binary":
            raise ValueError(f"tagger_z_init must be in (0, 1) for binary inputs, got {self.tagger_z_init}")
        if self.tagger_variance_init <= 0 or self.tagger_projection < 0:
            raise ValueError("tagger_variance_init must be > 0 and tagger_projection >= 0")
        if self.tagger_input == "binary" and not 0.0 <= self.input_noise < 0.5:
            raise ValueError(f"binary inputs flip each pixel with probability input_noise in [0, 0.5), got {self.input_noise}")
        if self.tagger_engine not in TAGGER_ENGINES:
            raise ValueError(f"tagger_engine={self.tagger_engine!r}; expected one of {TAGGER_ENGINES}")
        if self.tagger_z_feed not in TAGGER_Z_FEEDS:
            raise ValueError(f"tagger_z_feed={self.tagger_z_feed!r}; expected one of {TAGGER_Z_FEEDS}")
        if self.tagger_z_feed == "logit" and self.tagger_input != "binary":
            raise ValueError("tagger_z_feed='logit' feeds a binary group's pre-sigmoid value; Gaussian groups have none")
        if self.tagger_affine not in TAGGER_AFFINES:
            raise ValueError(f"tagger_affine={self.tagger_affine!r}; expected one of {TAGGER_AFFINES}")
        if self.tagger_cost_iterations not in TAGGER_COST_ITERATIONS:
            raise ValueError(f"tagger_cost_iterations={self.tagger_cost_iterations!r}; expected one of {TAGGER_COST_ITERATIONS}")
        if self.tagger_engine == "dense" and (self.top_pool != 1 or any(lv.kernel != 1 or lv.pool != 1 for lv in self.levels)):
            raise ValueError("a dense Tagger engine has vector levels: every level needs kernel=1 and pool=1, and top_pool=1")
        if self.groups and self.in_channels != 1:
            raise ValueError(f"an RTagger observes one channel (in_channels=1), got in_channels={self.in_channels}")

    def replace(self, **changes: Any) -> "LadderConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible data (checkpoints and ONNX metadata store this)."""
        d = dataclasses.asdict(self)
        d["obs_shape"] = list(self.obs_shape)
        d["levels"] = [dataclasses.asdict(lv) for lv in self.levels]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LadderConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}")
        data = dict(data)
        data.setdefault("decoder_init", "closed")  # files written before these fields existed: closed, entry input
        data.setdefault("decoder_to_encoder_entry", "input")
        data["levels"] = tuple(LevelConfig(**lv) for lv in data.get("levels", ()))
        data["obs_shape"] = tuple(data.get("obs_shape", (32, 32)))
        return cls(**data)
