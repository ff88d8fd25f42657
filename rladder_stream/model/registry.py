"""The one registry of named configurations and the one factory of models (timm's ``create_model``).

A registered name knows everything about itself: the factory ``size -> LadderConfig``, a one-line description,
the training task it belongs to and the environment its models stream through. Baselines and ablations of
the paper (docs/design.md#baselines-and-ablations) are configurations here, not copies of code::

    >>> from rladder_stream.model.registry import build_model, get_config, registered
    >>> cfg = get_config("omm-rladder", size="cpu")
    >>> cfg.replace(decoder_to_encoder=False).decoder_to_encoder
    False
    >>> registered("omm-rladder").env_id
    'rladder_stream/OccludedMovingMNIST-v0'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .config import SIZES, LadderConfig, LevelConfig
from .ladder import RLadder
from .tagger import RTagger

ConfigFactory = Callable[[str], LadderConfig]


@dataclass(frozen=True)
class RegisteredConfig:
    """What the registry knows about a name: how to build its configuration, what it is, the training task it
    belongs to (a key of :data:`rladder_stream.training.tasks.TASKS`) and the environment its models stream through."""

    name: str
    factory: ConfigFactory
    description: str
    task: str
    env_id: str


REGISTRY: dict[str, RegisteredConfig] = {}


def register_config(name: str, description: str, *, task: str, env_id: str) -> Callable[[ConfigFactory], ConfigFactory]:
    """Decorator: register a factory ``size -> LadderConfig`` under ``name``, with its task and environment."""

    def wrap(factory: ConfigFactory) -> ConfigFactory:
        if name in REGISTRY:
            raise ValueError(f"config {name!r} registered twice")
        REGISTRY[name] = RegisteredConfig(name, factory, description, task, env_id)
        return factory

    return wrap


def registered(name: str) -> RegisteredConfig:
    """The registry's entry for a name; ``KeyError`` naming the known ones."""
    if name not in REGISTRY:
        raise KeyError(f"unknown config {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def list_configs() -> dict[str, str]:
    """Names of all registered configurations with a one-line description."""
    return {name: entry.description for name, entry in REGISTRY.items()}


def get_config(name: str, size: str = "cpu", **overrides: Any) -> LadderConfig:
    """The named configuration at ``size`` (``tiny`` for tests, ``cpu``, ``gpu``), with field overrides."""
    entry = registered(name)
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {SIZES}")
    return entry.factory(size).replace(name=name, **overrides)


def build_model(config: LadderConfig) -> nn.Module:
    """The model for a configuration (the single factory every entry point uses): an :class:`RLadder`, or an
    :class:`~rladder_stream.model.tagger.RTagger` around one when ``config.groups > 0``."""
    if config.norm == "batch_tick" and not config.groups:
        raise ValueError("norm='batch_tick' keeps statistics per tick of an RTagger's state (groups >= 2); "
                         "an RLadder uses 'layer', 'batch' or 'batch_stats'")
    return RTagger(config) if config.groups else RLadder(config)


# Occluded Moving MNIST (docs/design.md#occluded-moving-mnist, #table-1): one ladder, its ablations and baselines. --------------

OMM = {"task": "omm", "env_id": "rladder_stream/OccludedMovingMNIST-v0"}

_OMM_CHANNELS = {"tiny": (4, 8, 8), "cpu": (8, 16, 32), "gpu": (32, 64, 128)}
_OMM_TOP = {"tiny": 16, "cpu": 64, "gpu": 256}


# The prediction cost is summed over 1,024 pixels (~30 nats per frame once trained) against a class cost of a
# few nats: weighted 1:1 it drowns the class gradient. 0.02 gave 53% vs 70% validation error after 6 CPU
# minutes (one seed each, docs/results/cost_balance.md); the balance is a setting, not a fixed truth.
OMM_PREDICTION_WEIGHT = 0.02


def _omm(size: str, kind: str = "lstm", top_kind: str = "lstm", **fields: Any) -> LadderConfig:
    c1, c2, c3 = _OMM_CHANNELS[size]
    levels = (LevelConfig(c1, kind), LevelConfig(c2, kind, pool=2), LevelConfig(c3, kind, pool=2))
    fields.setdefault("prediction_weight", OMM_PREDICTION_WEIGHT)
    return LadderConfig(obs_shape=(32, 32), levels=levels, top_kind=top_kind, top_size=_OMM_TOP[size], **fields)


@register_config("omm-rladder", "RLadder for Occluded Moving MNIST: conv-LSTM encoder, ConvG2 decoder, prediction + classification", **OMM)
def _omm_rladder(size: str) -> LadderConfig:
    return _omm(size, probe=True)


@register_config("omm-rladder-no-d2e", "RLadder without decoder-to-encoder connections (Table 1 ablation)", **OMM)
def _omm_no_d2e(size: str) -> LadderConfig:
    return _omm(size, decoder_to_encoder=False)


@register_config("omm-rladder-no-prediction", "RLadder without the prediction task (cost weight 0; Table 1 ablation)", **OMM)
def _omm_no_pred(size: str) -> LadderConfig:
    return _omm(size, prediction_weight=0.0)


@register_config("omm-rladder-no-classification", "RLadder without the classification task (cost weight 0; Table 1 ablation)", **OMM)
def _omm_no_class(size: str) -> LadderConfig:
    return _omm(size, class_weight=0.0)


@register_config("omm-hrnn", "Hierarchical RNN: the RLadder's encoder alone (no decoder)", **OMM)
def _omm_hrnn(size: str) -> LadderConfig:
    return _omm(size, decoder=False, decoder_to_encoder=False, predict=False)


@register_config("omm-temporal", "Temporal baseline: feed-forward conv encoder with a recurrent top level only", **OMM)
def _omm_temporal(size: str) -> LadderConfig:
    return _omm(size, kind="feedforward", decoder=False, decoder_to_encoder=False, predict=False)


@register_config("omm-static", "Static classifier (feed-forward encoder, dense top); fed the optimal reconstruction", **OMM)
def _omm_static(size: str) -> LadderConfig:
    return _omm(
        size, kind="feedforward", top_kind="feedforward", decoder=False, decoder_to_encoder=False, predict=False,
        input_view="optimal_reconstruction",
    )


# Polyphonic music (docs/design.md#polyphonic-music, #table-3): convolutions over the pitch axis. ------------------------

MUSIC = {"task": "music", "env_id": "rladder_stream/PolyphonicMusic-v0"}

# The paper's music RLadder has 18 layers with five conv-LSTMs and a fully connected LSTM on top. Ours: the
# gpu size has five conv-LSTM levels (pitch axis pooled 88 -> 11) and a dense LSTM; the cpu and tiny sizes keep
# two conv-LSTM levels so that a Table 3 run trains in about a minute on one CPU core (docs/results/table3.md).
# No non-recurrent layers sit between the cells, and the decoder is ConvG2 (docs/design.md#decoder-cells).
_MUSIC_LEVELS = {
    "tiny": ((4, 5, 1), (8, 5, 2)),
    "cpu": ((8, 5, 1), (16, 5, 2)),
    "gpu": ((32, 5, 1), (32, 5, 1), (64, 5, 2), (64, 5, 2), (128, 3, 2)),
}  # (channels, kernel over pitch, pool) per conv-LSTM level, bottom first
_MUSIC_TOP = {"tiny": (16, 2), "cpu": (64, 4), "gpu": (512, 1)}  # (top LSTM units, top_pool)
# Every music model's forecasts start at the base rate of the four benchmarks, about 4 of 88 keys on a step
# (log-odds of 0.045): from 0.5, the RLadder's one-shift readout spent its first ~100 steps getting there.
MUSIC_PREDICTION_BIAS = -3.0
# The same-protocol marginal baselines (Table 3): one dense LSTM or GRU on the 88 keys, a dense sigmoid readout,
# sized to about the RLadder's parameter count at each size (tiny 23k, cpu 119k, gpu 7.4M parameters).
_MUSIC_BASELINE_TOP = {"lstm": {"tiny": 40, "cpu": 126, "gpu": 1320}, "gru": {"tiny": 48, "cpu": 150, "gpu": 1530}}


@register_config("music-rladder", "RLadder for 88-key piano rolls: conv-LSTMs over the pitch axis, dense LSTM on top", **MUSIC)
def _music_rladder(size: str) -> LadderConfig:
    levels = tuple(LevelConfig(channels, kernel=kernel, pool=pool) for channels, kernel, pool in _MUSIC_LEVELS[size])
    top_size, top_pool = _MUSIC_TOP[size]
    return LadderConfig(obs_shape=(88,), levels=levels, top_size=top_size, top_pool=top_pool, n_classes=0,
                        prediction_bias=MUSIC_PREDICTION_BIAS)


def _music_baseline(size: str, kind: str) -> LadderConfig:
    return LadderConfig(
        obs_shape=(88,), levels=(), top_kind=kind, top_size=_MUSIC_BASELINE_TOP[kind][size], top_pool=1, decoder=False,
        decoder_to_encoder=False, n_classes=0, prediction_readout="top", prediction_bias=MUSIC_PREDICTION_BIAS,
    )


@register_config("music-lstm", "Table 3 baseline: one dense LSTM on the 88 keys with marginal (sigmoid) note outputs", **MUSIC)
def _music_lstm(size: str) -> LadderConfig:
    return _music_baseline(size, "lstm")


@register_config("music-gru", "Table 3 baseline: one dense GRU on the 88 keys with marginal (sigmoid) note outputs", **MUSIC)
def _music_gru(size: str) -> LadderConfig:
    return _music_baseline(size, "gru")


# RTagger (docs/design.md#the-rtagger, #table-4, #moving-mnist-grouping): perceptual grouping; the Tagger and the
# ConvNet are configurations. -----------------------------------------------------------------------------------

TEXTURED = {"task": "tmnist", "env_id": "rladder_stream/TexturedMNIST-v0"}
MOVING = {"task": "mmnist", "env_id": "rladder_stream/MovingMNIST-v0"}

_TMNIST_CHANNELS = {"tiny": (4, 8), "cpu": (8, 16, 32), "gpu": (32, 64, 128)}
_TMNIST_TOP = {"tiny": 16, "cpu": 64, "gpu": 256}
# The denoising cost is a Gaussian-mixture NLL summed over 1,024 pixels against a class cost of a few nats;
# the same balance argument as OMM_PREDICTION_WEIGHT (a setting, not a fixed truth).
TAGGER_DENOISING_WEIGHT = 0.02
TAGGER_INPUT_NOISE = 0.1  # std of the Gaussian noise of the denoising task (textured images span [0, 1])
# Batch norm with a running mean per iteration and the variance pooled over them, calibrated on clean images before
# every evaluation (docs/design.md, "Batch normalisation at evaluation"): training is the same as with "batch".
TAGGER_NORM = "batch_tick"


def _tmnist(size: str, kind: str = "lstm", **fields: Any) -> LadderConfig:
    channels = _TMNIST_CHANNELS[size]
    levels = tuple(LevelConfig(c, kind, pool=1 if i == 0 else 2) for i, c in enumerate(channels))
    fields.setdefault("top_kind", kind)
    fields.setdefault("prediction_weight", TAGGER_DENOISING_WEIGHT)
    fields.setdefault("input_noise", TAGGER_INPUT_NOISE)
    fields.setdefault("norm", TAGGER_NORM if fields.get("groups") else "batch")
    return LadderConfig(obs_shape=(32, 32), levels=levels, top_size=_TMNIST_TOP[size], **fields)


@register_config("tmnist-rtagger", "RTagger on Brodatz-textured MNIST: 2 groups, conv-LSTM RLadder engine, denoising + class (Table 4)", **TEXTURED)
def _tmnist_rtagger(size: str) -> LadderConfig:
    return _tmnist(size, groups=2)


@register_config("tmnist-rtagger-noclass", "RTagger on Brodatz-textured MNIST without the class task (denoising only): "
                 "does the class task speed up training? (Table 4)", **TEXTURED)
def _tmnist_rtagger_no_class(size: str) -> LadderConfig:
    return _tmnist(size, groups=2, class_weight=0.0)


@register_config("tmnist-tagger", "Tagger on Brodatz-textured MNIST: the RTagger with a feed-forward Ladder engine (Table 4)", **TEXTURED)
def _tmnist_tagger(size: str) -> LadderConfig:
    return _tmnist(size, kind="feedforward", groups=2, decoder_to_encoder=False)


@register_config("tmnist-tagger-dense", "Tagger on Brodatz-textured MNIST with the reference's fully connected Ladder "
                 "engine (input projection, two dense levels; the reference's engine for its textured MNIST)", **TEXTURED)
def _tmnist_tagger_dense(size: str) -> LadderConfig:
    return _dense_engine(_tmnist(size, kind="feedforward", groups=2, decoder_to_encoder=False), size)


@register_config("tmnist-convnet", "ConvNet baseline on Brodatz-textured MNIST: the feed-forward encoder, class cost only (Table 4)", **TEXTURED)
def _tmnist_convnet(size: str) -> LadderConfig:
    return _tmnist(size, kind="feedforward", decoder=False, decoder_to_encoder=False, predict=False, prediction_weight=0.0,
                   input_noise=0.0)


_MMNIST_LEVELS = {"tiny": ((4, 2), (8, 2)), "cpu": ((8, 2), (16, 2), (32, 2)), "gpu": ((32, 1), (64, 2), (128, 2))}
_MMNIST_TOP = {"tiny": 16, "cpu": 64, "gpu": 256}


def _mmnist(size: str, kind: str = "lstm", **fields: Any) -> LadderConfig:
    levels = tuple(LevelConfig(c, kind, pool=p) for c, p in _MMNIST_LEVELS[size])
    return LadderConfig(obs_shape=(64, 64), levels=levels, top_kind=kind, top_size=_MMNIST_TOP[size], norm=TAGGER_NORM, groups=3,
                        n_classes=0, class_weight=0.0, **fields)


@register_config("mmnist-rtagger", "RTagger on two-digit Moving MNIST: 3 groups, next-frame prediction, no class task", **MOVING)
def _mmnist_rtagger(size: str) -> LadderConfig:
    return _mmnist(size)


@register_config("mmnist-tagger", "Tagger on two-digit Moving MNIST: the RTagger with a feed-forward Ladder engine", **MOVING)
def _mmnist_tagger(size: str) -> LadderConfig:
    return _mmnist(size, kind="feedforward", decoder_to_encoder=False)


# Shapes (the reference Tagger's own easiest grouping task; envs/shapes.py): 20x20 binary images of three shapes. ----

SHAPES = {"task": "shapes", "env_id": "rladder_stream/Shapes-v0"}

# Level pools 1, 2, 2 (20 -> 20 -> 10 -> 5; tiny: two levels, 20 -> 10); the top flattens the last map whole
# (top_pool 1). (Pooling the tiny model's 10x10 map to 5x5 too left an untrained feed-forward Tagger's groups
# 5e-5 apart after three iterations in eval mode: test_tagger's check of the initial symmetry breaking.)
_SHAPES_CHANNELS = {"tiny": (4, 8), "cpu": (8, 16, 32), "gpu": (32, 64, 128)}
_SHAPES_TOP = {"tiny": 16, "cpu": 64, "gpu": 256}
SHAPES_INPUT_NOISE = 0.2  # the reference's corruption: each pixel flipped with probability 0.2
SHAPES_MEAN_PIXEL = 0.28  # the share of ink pixels (envs/shapes.py, 50,000 training images): where z starts


def _shapes(size: str, kind: str = "lstm", **fields: Any) -> LadderConfig:
    levels = tuple(LevelConfig(c, kind, pool=1 if i == 0 else 2) for i, c in enumerate(_SHAPES_CHANNELS[size]))
    return LadderConfig(obs_shape=(20, 20), levels=levels, top_kind=kind, top_size=_SHAPES_TOP[size], top_pool=1,
                        norm=TAGGER_NORM, groups=4, n_classes=0, class_weight=0.0, input_noise=SHAPES_INPUT_NOISE,
                        tagger_input="binary", tagger_z_init=SHAPES_MEAN_PIXEL, **fields)


@register_config("shapes-rtagger", "RTagger on Shapes (3 binary shapes, 20x20): 4 groups, conv-LSTM RLadder engine, "
                 "denoising only; the grouping sanity test", **SHAPES)
def _shapes_rtagger(size: str) -> LadderConfig:
    return _shapes(size)


@register_config("shapes-tagger", "Tagger on Shapes: the RTagger with a feed-forward Ladder engine (the reference's own task)", **SHAPES)
def _shapes_tagger(size: str) -> LadderConfig:
    return _shapes(size, kind="feedforward", decoder_to_encoder=False)


# The reference Tagger's engine is fully connected (Shapes and its textured MNIST alike): the 4 inputs of every pixel
# projected to 2,000-3,000 units (batch norm, ReLU), a Ladder of 1,000-2,000 and 500-1,000 units.
# ``tagger_engine=dense``: (projection, levels, top).
_DENSE_ENGINE = {"tiny": (32, (16,), 8), "cpu": (500, (250,), 125), "gpu": (2000, (1000,), 500)}


def _dense_engine(config: LadderConfig, size: str) -> LadderConfig:
    """``config`` with the reference's fully connected engine of ``size`` in place of its convolutional levels."""
    projection, levels, top = _DENSE_ENGINE[size]
    kind = config.levels[0].kind
    return config.replace(levels=tuple(LevelConfig(c, kind, kernel=1) for c in levels), top_size=top, top_pool=1,
                          tagger_engine="dense", tagger_projection=projection)


def _shapes_dense(size: str, kind: str = "lstm", **fields: Any) -> LadderConfig:
    return _dense_engine(_shapes(size, kind, **fields), size)


@register_config("shapes-rtagger-dense", "RTagger on Shapes with a fully connected LSTM Ladder engine (the reference's "
                 "engine made recurrent)", **SHAPES)
def _shapes_rtagger_dense(size: str) -> LadderConfig:
    return _shapes_dense(size)


@register_config("shapes-tagger-dense", "Tagger on Shapes with the reference's fully connected Ladder engine "
                 "(input projection, two dense levels)", **SHAPES)
def _shapes_tagger_dense(size: str) -> LadderConfig:
    return _shapes_dense(size, kind="feedforward", decoder_to_encoder=False)


# Issue 27 (docs/results/shapes_cells.md): the LSTM engine gave one group all the ink; this one keeps the LSTM's memory
# and the feedback but passes the feed-forward cell's sparse ReLU code up and to the decoder.
@register_config("shapes-rtagger-sparse", "RTagger on Shapes whose fully connected engine keeps an LSTM memory but passes a "
                 "sparse ReLU output up and to its decoder (lstm_relu cells), with decoder-to-encoder feedback", **SHAPES)
def _shapes_rtagger_sparse(size: str) -> LadderConfig:
    return _shapes_dense(size, kind="lstm_relu")


# Issue 27, Brodatz-textured MNIST: the engine that groups Shapes (lstm_relu cells, fully connected, feedback on), with
# the paper's recipe for Table 4 (denoising and the class cost at the last iteration).
@register_config("tmnist-rtagger-sparse", "RTagger on Brodatz-textured MNIST with the engine that groups Shapes: fully "
                 "connected, lstm_relu cells, decoder-to-encoder feedback; denoising + class (Table 4)", **TEXTURED)
def _tmnist_rtagger_sparse(size: str) -> LadderConfig:
    return _dense_engine(_tmnist(size, kind="lstm_relu", groups=2), size)


# Issue 27: a fully connected engine cannot classify Brodatz-textured MNIST even with the class cost alone (the plates
# share one mean grey, so no linear view of the image shows the digit), while the convolutional ConvNet can; this is
# the RTagger with the ConvNet's convolutional levels and the cell that keeps groups apart on Shapes (lstm_relu).
@register_config("tmnist-rtagger-conv-sparse", "RTagger on Brodatz-textured MNIST with a convolutional engine of lstm_relu "
                 "cells (the ConvNet's levels, the Shapes engine's cell), decoder-to-encoder feedback; denoising + class", **TEXTURED)
def _tmnist_rtagger_conv_sparse(size: str) -> LadderConfig:
    return _tmnist(size, kind="lstm_relu", groups=2)


@register_config("tmnist-rtagger-sparse-noclass", "tmnist-rtagger-sparse without the class task (denoising only): does the "
                 "class task speed up training? (Table 4 with the fully connected engines)", **TEXTURED)
def _tmnist_rtagger_sparse_no_class(size: str) -> LadderConfig:
    return _dense_engine(_tmnist(size, kind="lstm_relu", groups=2, class_weight=0.0), size)
