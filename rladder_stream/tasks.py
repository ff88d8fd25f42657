"""Training data for each task, drawn from the environments' own batched generators (one data path).

A task turns generator output into the batch dict that :mod:`rladder_stream.losses` reads. Train batches
are a pure function of ``(seed, step)``, so resumed training sees exactly the data it would have seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from .config import LadderConfig
from .losses import batch_metrics, ladder_costs

if TYPE_CHECKING:
    from .train import TrainConfig

Batch = dict[str, torch.Tensor]


class Task:
    """What the training loop needs from a task: batches, and the costs and metrics of the model's outputs.

    A task is built as ``TaskClass(model_config, train_config)``; the training settings say which data
    (``data_dir``, ``labelled``, ``dataset``). Subclasses set ``name`` and ``data_source`` and implement ``train_batch``, ``eval_size`` and ``eval_batches``.
    The default costs and metrics are the RLadder's (:func:`~rladder_stream.losses.ladder_costs`,
    :func:`~rladder_stream.losses.batch_metrics`); a task whose model has other outputs overrides them.
    """

    name = "task"
    config: LadderConfig
    data_source: str = ""

    def costs(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """Weighted training costs, their sum under ``"total"`` (the only one that carries gradients)."""
        return ladder_costs(outputs, batch, self.config)

    def metrics(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, tuple[float, float]]:
        """Evaluation ``{metric: (sum, count)}`` of one batch, pooled exactly over batches."""
        return batch_metrics(outputs, batch)

    def train_batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        raise NotImplementedError

    def eval_size(self, split: str) -> int:
        raise NotImplementedError

    def eval_batches(self, split: str, batch_size: int, limit: int | None = None) -> Iterator[Batch]:
        raise NotImplementedError


class OccludedMNISTTask(Task):
    """Occluded Moving MNIST (SPEC 4.1): 5 observed frames, each forecasting the next; label at the end.

    ``config.input_view == "optimal_reconstruction"`` feeds the static classifier (gold standard of
    Table 1) the optimal reconstruction after the 5th frame as a single tick instead.

    Semi-supervised (``train_config.labelled = n``, SPEC 3 and 6.2): the training pool is MNIST train
    0-59,999 of which a class-balanced ``n`` (fixed by a seed) are labelled. With ``use_unlabelled`` a batch
    holds ``labelled_fraction`` labelled sequences and the rest unlabelled ones; without it, labelled ones
    only. A sequence's label reaches the batch only when its digit is one of the labelled rows (the rest get
    -1, which no class cost reads), whatever the label array of the pool says.
    """

    name = "omm"

    def __init__(self, config: LadderConfig, train_config: "TrainConfig | None" = None):
        from envs.occluded_mnist import N_OBSERVED, episode_source

        data_dir = train_config.data_dir if train_config else None
        labelled = train_config.labelled if train_config else None
        self.config = config
        self.n_observed = N_OBSERVED
        self.train_source = episode_source("train", labelled, data_dir)
        self._eval_sources = {split: episode_source(split, None, data_dir) for split in ("valid", "test")}
        self.data_source = self.train_source.source
        self.labelled_rows = self.train_source.labelled_rows  # None: every training sequence is labelled
        if self.labelled_rows is not None:
            self.use_unlabelled = train_config.use_unlabelled
            self.labelled_fraction = train_config.labelled_fraction
            self.unlabelled_rows = np.setdiff1d(np.arange(self.train_source.pool_size), self.labelled_rows)
            unlabelled = f" + {len(self.unlabelled_rows)} unlabelled" if self.use_unlabelled else " only"
            self.data_source += f"; {len(self.labelled_rows)} labelled{unlabelled}"

    def to_batch(self, seqs: dict[str, np.ndarray]) -> Batch:
        """Generator output -> tensors: inputs, next-frame targets, clean frames (probe), labels."""
        labels = torch.as_tensor(seqs["labels"], dtype=torch.long)
        if self.config.input_view == "optimal_reconstruction":
            last = self.n_observed - 1
            return {"inputs": torch.as_tensor(seqs["optimal_reconstruction"][:, last : last + 1]), "labels": labels}
        frames = torch.as_tensor(seqs["frames"])
        return {
            "inputs": frames[:, :-1],
            "next_targets": frames[:, 1:],
            "clean": torch.as_tensor(seqs["clean"][:, :-1]),
            "labels": labels,
        }

    def train_batch(self, rng: np.random.Generator, batch_size: int) -> Batch:
        """Fresh random training sequences (SPEC 4.1: new trajectories every epoch); semi-supervised: see the
        class docstring."""
        if self.labelled_rows is None:
            return self.to_batch(self.train_source.episodes(rng, batch_size, None))
        if self.use_unlabelled:
            n_labelled = min(batch_size, max(1, round(batch_size * self.labelled_fraction)))
            rows = np.concatenate([rng.choice(self.labelled_rows, n_labelled),
                                   rng.choice(self.unlabelled_rows, batch_size - n_labelled)])
        else:
            rows = rng.choice(self.labelled_rows, batch_size)
        seqs = self.train_source.episodes(rng, batch_size, rows)
        seqs["labels"] = np.where(np.isin(rows, self.labelled_rows), seqs["labels"], -1)
        return self.to_batch(seqs)

    def eval_size(self, split: str) -> int:
        """Number of fixed episodes of a split."""
        return self._eval_sources[split].pool_size

    def eval_batches(self, split: str, batch_size: int, limit: int | None = None) -> Iterator[Batch]:
        """The fixed episodes ``0..limit-1`` of ``valid`` or ``test``, identical on every run and machine."""
        source = self._eval_sources[split]
        n = source.pool_size if limit is None else min(limit, source.pool_size)
        for start in range(0, n, batch_size):
            indices = list(range(start, min(start + batch_size, n)))
            yield self.to_batch(source.episodes(None, len(indices), indices))


TASKS: dict[str, type[Task]] = {"omm": OccludedMNISTTask}


def task_for(config: LadderConfig) -> str:
    """The task a configuration trains on, from its name prefix (``omm-...``)."""
    prefix = config.name.split("-")[0]
    if prefix not in TASKS:
        raise ValueError(f"no training task for config {config.name!r}; known task prefixes: {sorted(TASKS)}")
    return prefix
