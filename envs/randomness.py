"""Where the environments' randomness comes from besides ``np_random``: the fixed seed of every valid/test
episode, and draws with a batch axis that equal the concatenation of batch-1 draws."""

from __future__ import annotations

import zlib
from typing import Any, Sequence

import numpy as np


def stable_hash(text: str) -> int:
    """A 32-bit hash of a string that is the same on every machine and run (unlike ``hash``)."""
    return zlib.crc32(text.encode())


def episode_rng(env_name: str, split: str, index: int) -> np.random.Generator:
    """The generator for fixed episode ``index`` of a validation/test split: depends on nothing else."""
    return np.random.default_rng(np.random.SeedSequence([stable_hash(env_name), stable_hash(split), int(index)]))


class BatchRandom:
    """Random draws with a leading batch axis, from one generator or from one generator per row.

    With a sequence of generators, row i's draws come from ``rng[i]`` in the order the generator function
    makes them, so a batch equals the concatenation of batch-1 calls: this is how the fixed valid/test
    episodes (one seed each) are generated as one vectorised batch.
    """

    def __init__(self, rng: np.random.Generator | Sequence[np.random.Generator], batch_size: int) -> None:
        self.batch_size = batch_size
        self.rows = None if isinstance(rng, np.random.Generator) else list(rng)
        self.rng = rng if self.rows is None else None
        if self.rows is not None and len(self.rows) != batch_size:
            raise ValueError(f"got {len(self.rows)} generators for a batch of {batch_size}")

    def _draw(self, method: str, low: Any, high: Any, shape: tuple[int, ...]) -> np.ndarray:
        if self.rows is None:
            return getattr(self.rng, method)(low, high, size=(self.batch_size, *shape))
        return np.concatenate([getattr(r, method)(low, high, size=(1, *shape)) for r in self.rows])

    def integers(self, low: int, high: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Uniform ints in ``[low, high)``, shape ``[B, *shape]``."""
        return self._draw("integers", low, high, shape)

    def uniform(self, low: float, high: float, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Uniform floats in ``[low, high)``, shape ``[B, *shape]``."""
        return self._draw("uniform", low, high, shape)
