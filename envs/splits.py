"""Which MNIST digits each split plays (docs/design.md#occluded-moving-mnist): the digit pools of train, valid and test, and the
class-balanced labelled subset of a semi-supervised train split."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .data.mnist import load_mnist
from .randomness import stable_hash
from .scoring import N_CLASSES

SPLITS = ("train", "valid", "test")


def labelled_subset(labels: np.ndarray, n_labelled: int, seed_name: str) -> np.ndarray:
    """Sorted row indices of a class-balanced labelled subset (``n_labelled / 10`` per class), fixed by a seed."""
    if n_labelled <= 0 or n_labelled % N_CLASSES:
        raise ValueError(f"labelled must be a positive multiple of {N_CLASSES}, got {n_labelled}")
    rng = np.random.default_rng(np.random.SeedSequence([stable_hash(seed_name), n_labelled]))
    per_class = n_labelled // N_CLASSES
    chosen = []
    for c in range(N_CLASSES):
        rows = np.flatnonzero(labels == c)
        if len(rows) < per_class:
            raise ValueError(f"only {len(rows)} digits of class {c} available, {per_class} requested")
        chosen.append(rng.choice(rows, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


@dataclass(frozen=True)
class DigitPool:
    """The MNIST digits of one environment split, with original indices and where they came from."""

    images: np.ndarray  # uint8 [N, 28, 28]
    labels: np.ndarray  # int64 [N]; -1 for digits whose label is withheld (semi-supervised)
    indices: np.ndarray  # int64 [N], index in the MNIST file
    source: str
    labelled_rows: np.ndarray | None = None  # semi-supervised: the rows whose label is given (sorted); else None


def mnist_pool(
    split: str,
    data_dir: str | os.PathLike | None,
    *,
    env_name: str,
    labelled: int | None = None,
    train_end: int = 50_000,
    semi_supervised_end: int = 50_000,
) -> DigitPool:
    """The digits of an environment split (docs/design.md#occluded-moving-mnist): train = MNIST train ``[0,
    train_end)``, valid = MNIST
    train ``[50000, 60000)``, test = MNIST test. With ``labelled=n`` (train only) the pool is MNIST train
    ``[0, semi_supervised_end)`` and all but a class-balanced ``n`` of them have label -1."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if labelled is not None and split != "train":
        raise ValueError("labelled (semi-supervised) applies to the train split only")
    data = load_mnist("test" if split == "test" else "train", data_dir)
    if split == "test":
        keep = np.ones(len(data.indices), dtype=bool)
    elif split == "valid":
        keep = (data.indices >= 50_000) & (data.indices < 60_000)
    else:
        keep = data.indices < (train_end if labelled is None else semi_supervised_end)
    if not keep.any():
        raise ValueError(f"no digits for split {split!r} in MNIST from {data.source}")
    labels = data.labels[keep].astype(np.int64)
    chosen = None
    if labelled is not None:
        chosen = labelled_subset(labels, labelled, f"{env_name}/labelled")
        withheld = np.full(len(labels), -1, dtype=np.int64)
        withheld[chosen] = labels[chosen]
        labels = withheld
    return DigitPool(data.images[keep], labels, data.indices[keep], data.source, chosen)
