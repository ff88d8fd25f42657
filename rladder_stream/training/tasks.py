"""Training data for each task, drawn from the environments' own batched generators (one data path).

A task turns generator output into the batch dict that :mod:`rladder_stream.training.losses` reads. Train batches
are a pure function of ``(seed, step)``, so resumed training sees exactly the data it would have seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from ..model.config import LadderConfig
from ..model.registry import REGISTRY, registered
from .losses import batch_metrics, ladder_costs
from .renderers import MovingRenderer, OccludedRenderer, Renderer, TexturedRenderer
from .settings import TEXTURE_SETTINGS, DataSettings

if TYPE_CHECKING:
    from rladder_stream.envs.base import EpisodeSource


Batch = dict[str, torch.Tensor]


class Task:
    """What the training loop needs from a task: batches, and the costs and metrics of the model's outputs.

    A task is built as ``TaskClass(model_config, train_config)``; the training settings' data group
    (:class:`~rladder_stream.training.settings.DataSettings`, which a ``TrainConfig`` is) says which data
    (``data_dir``, ``labelled``, ``dataset``). Subclasses set ``name`` and ``data_source`` and implement ``train_batch``, ``eval_size`` and ``eval_batches``.
    The default costs and metrics are the RLadder's (:func:`~rladder_stream.training.losses.ladder_costs`,
    :func:`~rladder_stream.training.losses.batch_metrics`); a task whose model has other outputs overrides them.
    """

    name = "task"
    config: LadderConfig
    data_source: str = ""
    takes_iterations = False  # whether the data setting ``iterations`` applies (static images shown several times)
    takes_textures = False  # whether the data settings of the plates apply (``texture_contrast``, ``texture_scale``, ``textures``)
    takes_digit_augment = False  # whether the data setting ``digit_augment`` applies (Occluded Moving MNIST's renderings)

    def costs(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """Weighted training costs, their sum under ``"total"`` (the only one that carries gradients)."""
        return ladder_costs(outputs, batch, self.config)

    def metrics(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, tuple[float, float]]:
        """Evaluation ``{metric: (sum, count)}`` of one batch, pooled exactly over batches."""
        return batch_metrics(outputs, batch)

    one_noise_per_sequence = False  # static images shown for several iterations: one corruption for all of them

    def add_input_noise(self, inputs: torch.Tensor, std: float) -> torch.Tensor:
        """Corrupted training inputs (torch's global generator, saved in checkpoints): Gaussian noise of ``std``,
        or, for a binary RTagger, each pixel flipped with probability ``std``; fresh at every tick unless
        ``one_noise_per_sequence``."""
        shape = (inputs.shape[0], 1, *inputs.shape[2:]) if self.one_noise_per_sequence else inputs.shape
        if getattr(self.config, "tagger_input", "gaussian") == "binary":
            flips = (torch.rand(shape) < std).to(inputs.dtype).to(inputs.device)
            return inputs + flips * (1 - 2 * inputs)
        return inputs + std * torch.randn(shape).to(inputs.device)

    def train_batch(self, rng: np.random.Generator, batch_size: int, device: torch.device | None = None) -> Batch:
        """A training batch, a pure function of ``rng``; with ``device``, its tensors on that device (a task
        that can render its data there does so, with the same values as on the CPU)."""
        raise NotImplementedError

    def eval_size(self, split: str) -> int:
        raise NotImplementedError

    def eval_batches(self, split: str, batch_size: int, limit: int | None = None) -> Iterator[Batch]:
        raise NotImplementedError


class EpisodeTask(Task):
    """A task whose sequences come from an environment's :class:`~rladder_stream.envs.base.EpisodeSource`: fresh random
    episodes for training, the fixed episodes of ``valid`` and ``test`` for evaluation.

    Semi-supervised (``train_config.labelled = n``, docs/design.md#costs-and-mean-teacher, #table-2 and 6.4): the
    training pool holds a
    class-balanced ``n`` labelled digits (fixed by a seed) and unlabelled ones. With ``use_unlabelled`` a batch
    holds ``labelled_fraction`` labelled sequences and the rest unlabelled ones; without it, labelled ones
    only. A sequence's label reaches the batch only when its digit is one of the labelled rows (the rest get
    -1, which no class cost reads), whatever the label array of the pool says.

    Subclasses call :meth:`_use_sources` in their constructor and implement ``to_batch``; one whose environment
    has a :class:`~rladder_stream.training.renderers.Renderer` names it as ``renderer``.
    """

    renderer: type[Renderer] | None = None  # draws the training episodes on the training device, if the task has one
    _rendering: Renderer | None = None

    def _use_sources(self, train: "EpisodeSource", evaluation: dict[str, "EpisodeSource"], train_config: DataSettings | None) -> None:
        self.train_source, self._eval_sources = train, evaluation
        self.data_source = train.source
        self.labelled_rows = train.labelled_rows  # None: every training sequence is labelled
        if self.labelled_rows is not None:
            self.use_unlabelled = train_config.use_unlabelled
            self.labelled_fraction = train_config.labelled_fraction
            self.unlabelled_rows = np.setdiff1d(np.arange(train.pool_size), self.labelled_rows)
            unlabelled = f" + {len(self.unlabelled_rows)} unlabelled" if self.use_unlabelled else " only"
            self.data_source += f"; {len(self.labelled_rows)} labelled{unlabelled}"

    def to_batch(self, seqs: dict[str, np.ndarray]) -> Batch:
        raise NotImplementedError

    def renders_on(self, device: torch.device | None) -> bool:
        """Whether training batches for ``device`` come from the task's :attr:`renderer`: off the CPU (no
        frames rendered on the CPU and copied over); CPU training takes the environment's generator itself."""
        return self.renderer is not None and device is not None and torch.device(device).type != "cpu"

    def train_sequences(self, rng: np.random.Generator, batch_size: int, rows: np.ndarray | None,
                        device: torch.device | None) -> Batch:
        """Training sequences of the pool ``rows`` (random digits when ``None``) as a batch on ``device``:
        the environment's generator, or where :meth:`renders_on` says so its draws rendered on ``device``
        by the task's :class:`~rladder_stream.training.renderers.Renderer` (the same values; one data path either
        way)."""
        if not self.renders_on(device):
            batch = self.to_batch(self.train_source.episodes(rng, batch_size, rows))
            return batch if device is None else {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        if self._rendering is None or self._rendering.device != torch.device(device):
            self._rendering = self.renderer(self.train_source, device)
        return self.to_batch(self._rendering.episodes(rng, batch_size, rows))

    def train_batch(self, rng: np.random.Generator, batch_size: int, device: torch.device | None = None) -> Batch:
        """Fresh random training sequences (new trajectories every epoch), a pure function of ``rng``;
        semi-supervised: see the class docstring."""
        if self.labelled_rows is None:
            return self.train_sequences(rng, batch_size, None, device)
        if self.use_unlabelled:
            n_labelled = min(batch_size, max(1, round(batch_size * self.labelled_fraction)))
            rows = np.concatenate([rng.choice(self.labelled_rows, n_labelled),
                                   rng.choice(self.unlabelled_rows, batch_size - n_labelled)])
        else:
            rows = rng.choice(self.labelled_rows, batch_size)
        batch = self.train_sequences(rng, batch_size, rows, device)
        labelled = torch.as_tensor(np.isin(rows, self.labelled_rows)).to(batch["labels"].device)
        batch["labels"] = torch.where(labelled, batch["labels"], -1)
        return batch

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


class OccludedMNISTTask(EpisodeTask):
    """Occluded Moving MNIST (docs/design.md#occluded-moving-mnist): 5 observed frames, each forecasting the next;
    label at the end.

    ``config.input_view == "optimal_reconstruction"`` feeds the static classifier (gold standard of
    Table 1) the optimal reconstruction after the 5th frame as a single tick instead. Semi-supervised
    (``labelled=1000``): the pool is MNIST train 0-59,999, 1,000 labelled (see :class:`EpisodeTask`).
    """

    name = "omm"
    renderer = OccludedRenderer
    takes_digit_augment = True

    def __init__(self, config: LadderConfig, train_config: DataSettings | None = None):
        from rladder_stream.envs.occluded_mnist import N_OBSERVED, episode_source

        data_dir = train_config.data_dir if train_config else None
        labelled = train_config.labelled if train_config else None
        self.config = config
        self.n_observed = N_OBSERVED
        evaluation = {split: episode_source(split, None, data_dir) for split in ("valid", "test")}
        digit_augment = train_config.digit_augment if train_config else False
        self._use_sources(episode_source("train", labelled, data_dir, digit_augment), evaluation, train_config)

    def renders_on(self, device: torch.device | None) -> bool:
        """Observed frames on any device, the CPU included (exact, and no slower there than the generator); the
        static classifier's optimal reconstruction and ``device=None`` take the generator."""
        return device is not None and self.config.input_view == "observed"

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


class MusicTask(Task):
    """Polyphonic music (docs/design.md#polyphonic-music, #table-3): forecast the next 88-key step of a piano-roll benchmark.

    ``train_config.dataset`` picks the data set (``"JSB Chorales"``, ``"Nottingham"``, ``"MuseData"``,
    ``"Piano-midi.de"``, the short forms ``jsb``, ``muse``, ``piano``, or ``"embedded"``; ``None``: JSB
    Chorales when a data folder resolves, else the embedded excerpt), read by :func:`rladder_stream.envs.data.music.load_music`.

    The field's convention (Boulanger-Lewandowski et al. 2012; the paper's Table 3): NLL per time step is the
    Bernoulli NLL summed over the 88 keys and averaged over *all* time steps of a split, the first one
    predicted from the initial state. So every sequence gets one silent (all-zero) step in front, the input
    is ``[0, x_1 .. x_{T-1}]`` and the target ``[x_1 .. x_T]``: T scored steps, exactly the ticks of
    ``PolyphonicMusic-v0`` with ``score_first_step=True``. Evaluation runs whole sequences (the state is never
    reset inside one) in padded batches with masks; the metric ``prediction_nll`` pools the sum over every
    real step of the split. Training draws random crops of ``train_steps`` scored steps with
    :func:`rladder_stream.envs.data.music.music_batches` (the generator the environment's ``shuffle`` mode uses), so a crop
    at the start of a piece also learns the first-step forecast.
    """

    name = "music"
    train_steps = 25  # scored steps per training crop (about 3 bars of 4/4; truncated backpropagation through time)

    def __init__(self, config: LadderConfig, train_config: DataSettings | None = None):
        from rladder_stream.envs.data.music import EMBEDDED, canonical_name, load_music
        from rladder_stream.envs.data.paths import resolve_data_dir

        if config.obs_shape != (88,):
            raise ValueError(f"music tasks need obs_shape (88,), got {config.obs_shape} in config {config.name!r}")
        dataset = train_config.dataset if train_config else None
        data_dir = train_config.data_dir if train_config else None
        if dataset is None:  # the data layer's default (load_music)
            dataset = "JSB Chorales" if resolve_data_dir(data_dir) is not None else EMBEDDED
        self.dataset = canonical_name(dataset)
        splits = load_music(self.dataset, data_dir=data_dir)
        self.config = config
        # A silent step before every sequence: the "nothing heard yet" input of the first forecast.
        self._splits = {
            split: [np.concatenate([np.zeros((1, roll.shape[1]), roll.dtype), roll]) for roll in rolls]
            for split, rolls in splits.items()
        }
        sizes = "/".join(f"{len(splits[s])}" for s in ("train", "valid", "test"))
        steps = "/".join(f"{sum(len(r) for r in splits[s])}" for s in ("train", "valid", "test"))
        self.data_source = f"music: {self.dataset} ({sizes} train/valid/test sequences, {steps} steps)"

    @staticmethod
    def to_batch(packed: dict[str, np.ndarray]) -> Batch:
        """Padded rolls with their silent first step -> inputs (all but the last), targets and mask (all but the first)."""
        x, mask = torch.as_tensor(packed["x"]), torch.as_tensor(packed["mask"])
        return {"inputs": x[:, :-1], "next_targets": x[:, 1:], "mask": mask[:, 1:]}

    def train_batch(self, rng: np.random.Generator, batch_size: int, device: torch.device | None = None) -> Batch:
        """Random crops of ``train_steps + 1`` steps (whole pieces when shorter), a pure function of ``rng``."""
        from rladder_stream.envs.data.music import music_batches

        batch = self.to_batch(music_batches(rng, self._splits["train"], batch_size, self.train_steps + 1))
        return batch if device is None else {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def eval_size(self, split: str) -> int:
        """Number of sequences in a split."""
        return len(self._splits[split])

    def eval_batches(self, split: str, batch_size: int, limit: int | None = None) -> Iterator[Batch]:
        """Sequences ``0..limit-1`` of ``valid`` or ``test``, whole, longest first (batches of similar length
        waste little padding); pooled metrics do not depend on the order."""
        from rladder_stream.envs.data.music import music_eval_batches

        rolls = self._splits[split][:limit]
        ordered = sorted(rolls, key=len, reverse=True)
        for packed in music_eval_batches(ordered, batch_size):
            yield self.to_batch(packed)


class _GroupingTask(EpisodeTask):
    """What the RTagger tasks share (docs/design.md#the-rtagger): data from an environment's
    :class:`~rladder_stream.envs.base.EpisodeSource`,
    the denoising or next-frame cost of the groups' mixture, the class cost at the last tick, and AMI.

    Subclasses set ``ami_ignore`` (ground-truth groups not scored) and implement ``_sources`` and ``to_batch``
    (``inputs``, ``targets`` of the low-level cost, ``true_groups`` ``[B, T, *obs]`` of each tick's output,
    ``labels``). A configuration without groups (the ConvNet baseline) gets the class cost and error only.
    """

    ami_ignore: tuple[int, ...] = (-1,)

    def __init__(self, config: LadderConfig, train_config: DataSettings | None = None):
        data_dir = train_config.data_dir if train_config else None
        labelled = train_config.labelled if train_config else None
        self.config = config
        self.iterations = train_config.iterations if train_config else None
        self.eval_iterations = train_config.eval_iterations if train_config else None
        settings = train_config or DataSettings()  # the plates' settings, as the environment's arguments
        self.plates = {name: getattr(settings, name) for name in TEXTURE_SETTINGS}
        self._use_sources(*self._sources(data_dir, labelled), train_config)

    def _sources(self, data_dir: str | None, labelled: int | None) -> tuple[EpisodeSource, dict[str, EpisodeSource]]:
        raise NotImplementedError

    def to_batch(self, seqs: dict[str, np.ndarray]) -> Batch:
        raise NotImplementedError

    def costs(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        """``low_level`` (the mixture NLL of every tick, or of the last with ``tagger_cost_iterations=last``; weight
        ``prediction_weight``) and ``classification`` (weight ``class_weight``)."""
        from ..model.tagger import group_mixture_bce, group_mixture_nll
        from .losses import classification_nll

        if "groups" not in outputs:
            return ladder_costs(outputs, batch, self.config)
        cfg = self.config
        mixture_cost = group_mixture_bce if cfg.tagger_input == "binary" else group_mixture_nll
        ticks = slice(-1, None) if cfg.tagger_cost_iterations == "last" else slice(None)
        mixture = {k: outputs[k][:, ticks] for k in ("groups", "reconstructions", "log_variance")}
        costs = {"low_level": mixture_cost(mixture, batch["targets"][:, ticks])}
        if "class_logits" in outputs:
            costs["classification"] = classification_nll(outputs["class_logits"], batch["labels"])
        weights = {"low_level": cfg.prediction_weight, "classification": cfg.class_weight}
        costs["total"] = sum(weights[k] * v for k, v in costs.items())
        return costs

    @torch.no_grad()
    def metrics(self, outputs: dict[str, torch.Tensor], batch: Batch) -> dict[str, tuple[float, float]]:
        """Class error at the last tick (``class_error``) and at each (``class_error_1``, ...), the forecast's
        MSE and NLL where there are next frames, and the mean AMI of each tick's grouping (``ami_1``, ...) and
        over all ticks (``ami``); ``largest_group_1``, ...: the share of the scored pixels that the largest group
        wins at each tick (a collapse into one group shows as a share near 1). ``ami_shuffled`` scores the last tick's grouping of each observation against
        the ground truth of the batch's previous observation: what these masks score by chance, a position
        prior included, for the real AMI to be judged against."""
        from .metrics import batch_grouping_ami, largest_group_share

        out = batch_metrics(outputs, batch)
        if "class_logits" in outputs and "labels" in batch:
            for t in range(outputs["class_logits"].shape[1]):
                out[f"class_error_{t + 1}"] = batch_metrics({"class_logits": outputs["class_logits"][:, : t + 1]}, batch)["class_error"]
        if "groups" not in outputs:
            return out
        masks, truth = outputs["groups"].float().cpu().numpy(), batch["true_groups"].cpu().numpy()
        total, count = 0.0, 0
        for t in range(masks.shape[1]):
            s, n = batch_grouping_ami(truth[:, t], masks[:, t], self.ami_ignore)
            out[f"ami_{t + 1}"] = (s, float(n))
            total, count = total + s, count + n
            s, n = largest_group_share(truth[:, t], masks[:, t], self.ami_ignore)
            out[f"largest_group_{t + 1}"] = (s, float(n))
        out["ami"] = (total, float(count))
        if len(truth) > 1:  # the chance level of these masks: each last grouping against another image's truth
            s, n = batch_grouping_ami(np.roll(truth[:, -1], 1, axis=0), masks[:, -1], self.ami_ignore)
            out["ami_shuffled"] = (s, float(n))
        return out


class TexturedMNISTTask(_GroupingTask):
    """Brodatz-textured MNIST (docs/design.md#brodatz-textured-mnist, Table 4): the image shown for ``N_ITERATIONS``
    ticks (the RTagger's
    iterations); the low-level target is the clean image (the training loop adds ``input_noise``: denoising),
    the label is classified after the last iteration; AMI against background / digit, ``-1`` ignored.
    ``train_config.labelled`` gives the semi-supervised split (1,000 labelled + 49,000 unlabelled)."""

    name = "tmnist"
    one_noise_per_sequence = True  # the Tagger's iterations refine their view of one corrupted input
    takes_textures = True
    renderer = TexturedRenderer

    def renders_on(self, device: torch.device | None) -> bool:
        """As every task, but not on Apple's MPS, which has no float64 for the crops' sample points."""
        return super().renders_on(device) and torch.device(device).type != "mps"

    def _sources(self, data_dir: str | None, labelled: int | None) -> tuple[EpisodeSource, dict[str, EpisodeSource]]:
        from rladder_stream.envs.textured_mnist import episode_source

        return (episode_source("train", labelled, data_dir, **self.plates),  # texture_augment acts on train only
                {s: episode_source(s, None, data_dir, **self.plates) for s in ("valid", "test")})

    def to_batch(self, seqs: dict[str, np.ndarray]) -> Batch:
        """Generator output -> the iterations' inputs, their clean targets, the groups of each tick, labels."""
        images = torch.as_tensor(seqs["frames"][:, :-1])
        ticks = images.shape[1]
        groups = torch.as_tensor(seqs["groups"]).unsqueeze(1).expand(-1, ticks, -1, -1)
        return {"inputs": images, "targets": images.clone(), "true_groups": groups.contiguous(),
                "labels": torch.as_tensor(seqs["labels"], dtype=torch.long)}


class MovingMNISTTask(_GroupingTask):
    """Two-digit Moving MNIST (docs/design.md#moving-mnist, #moving-mnist-grouping): frames are the ticks; each
    tick's groups and reconstructions
    are the forecast of the next frame (next-frame prediction replaces denoising), so they are scored against
    the next frame's segmentation; AMI over digit pixels (background 0 and overlaps -1 ignored). No class task."""

    name = "mmnist"
    ami_ignore = (-1, 0)  # as envs.moving_mnist.AMI_IGNORE: digit pixels only (docs/design.md#moving-mnist)
    renderer = MovingRenderer

    def _sources(self, data_dir: str | None, labelled: int | None) -> tuple[EpisodeSource, dict[str, EpisodeSource]]:
        from rladder_stream.envs.moving_mnist import episode_source

        if labelled is not None:
            raise ValueError("Moving MNIST has no class task: 'labelled' does not apply")
        return episode_source("train", data_dir), {s: episode_source(s, data_dir) for s in ("valid", "test")}

    def to_batch(self, seqs: dict[str, np.ndarray]) -> Batch:
        """Generator output -> frames 1..T-1 as inputs, frames 2..T as targets with their groups."""
        frames = torch.as_tensor(seqs["frames"])
        return {"inputs": frames[:, :-1], "targets": frames[:, 1:], "next_targets": frames[:, 1:],
                "true_groups": torch.as_tensor(seqs["groups"][:, 1:])}


class ShapesTask(_GroupingTask):
    """Shapes (the reference Tagger's easiest grouping task): the image of three binary shapes shown for
    ``N_ITERATIONS`` ticks (the data settings ``iterations`` and ``eval_iterations`` change it); the low-level target is the clean image (the training loop adds ``input_noise``
    once per image: denoising); no class task; AMI over the shapes' pixels (background 0 and overlaps -1
    ignored). The images are generated, so ``data_dir`` does not apply."""

    name = "shapes"
    ami_ignore = (-1, 0)  # as envs.shapes.AMI_IGNORE
    one_noise_per_sequence = True  # one corrupted image for all iterations
    takes_iterations = True

    def _sources(self, data_dir: str | None, labelled: int | None) -> tuple[EpisodeSource, dict[str, EpisodeSource]]:
        from rladder_stream.envs.shapes import N_ITERATIONS, episode_source

        if labelled is not None:
            raise ValueError("Shapes has no class task: 'labelled' does not apply")
        n = self.iterations or N_ITERATIONS
        n_eval = self.eval_iterations or n  # an iterative inference may run longer than it was trained for
        return episode_source("train", n), {s: episode_source(s, n_eval) for s in ("valid", "test")}

    def to_batch(self, seqs: dict[str, np.ndarray]) -> Batch:
        """Generator output -> the iterations' inputs, their clean targets and the groups of each tick."""
        images = torch.as_tensor(seqs["frames"][:, :-1])
        groups = torch.as_tensor(seqs["groups"]).unsqueeze(1).expand(-1, images.shape[1], -1, -1)
        return {"inputs": images, "targets": images.clone(), "true_groups": groups.contiguous()}


TASKS: dict[str, type[Task]] = {"omm": OccludedMNISTTask, "music": MusicTask, "tmnist": TexturedMNISTTask, "mmnist": MovingMNISTTask,
                                "shapes": ShapesTask}


def task_for(config: LadderConfig) -> str:
    """The task a configuration trains on, as the registry records it for the configuration's name."""
    if config.name not in REGISTRY:
        raise ValueError(f"no training task for config {config.name!r}: not a registered name "
                         f"(see 'rladder-stream configs'); tasks: {sorted(TASKS)}")
    return registered(config.name).task
