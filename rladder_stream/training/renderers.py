"""The environments' training episodes drawn with torch on the training device (docs/design.md#the-environments-contract):
one :class:`Renderer` per MNIST environment re-implements its generator's drawing in torch, to the generator's
values, so training on a GPU renders its batches there instead of on the CPU. The random draws stay the
generator's own (numpy, on the CPU), so the same ``rng`` gives the same episodes on every device; a test compares
each renderer with its generator on the CPU (tests/test_train.py) and ``benchmarks/lease/check_renderers.py`` on a GPU.

A task (:mod:`.tasks`) names its environment's renderer; nothing else uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from rladder_stream.envs.base import EpisodeSource


def _paste(patches: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, size: int) -> torch.Tensor:
    """Torch :func:`rladder_stream.envs.drawing.paste` on the patches' device: ``patches [B, h, w]`` on zero
    canvases ``[*ys.shape, size, size]``, row ``b``'s patch at each of its top-left corners ``(ys[b], xs[b])``."""
    lead, device = ys.shape, patches.device
    b, h, w = patches.shape
    ys, xs = ys.reshape(b, -1), xs.reshape(b, -1)  # [B, L]: the corners of each row
    canvas = patches.new_zeros(b, ys.shape[1], size, size)
    rows = (ys[..., None] + torch.arange(h, device=device))[..., :, None]  # [B, L, h, 1]
    cols = (xs[..., None] + torch.arange(w, device=device))[..., None, :]  # [B, L, 1, w]
    canvas[torch.arange(b, device=device)[:, None, None, None],
           torch.arange(ys.shape[1], device=device)[None, :, None, None], rows, cols] = patches[:, None]
    return canvas.reshape(*lead, size, size)


class Renderer:
    """An environment's training episodes drawn with torch on the training device: the generator's own draws
    (numpy, on the CPU, so the same ``rng`` gives the same episodes) rendered where the model trains, to the
    generator's values. The data the generator is bound to (its ``functools.partial`` keywords: digits,
    labels, ...) goes to the device once. Each subclass renders one environment; a test compares it with the
    generator on the CPU. On a GPU the same operations run, each rounded as on the CPU (elementwise IEEE
    arithmetic, one kernel per operation), with the generator's own grey-level table and trigonometry."""

    def __init__(self, source: EpisodeSource, device: torch.device | str):
        from rladder_stream.envs.drawing import INK

        self.device = torch.device(device)
        self.data = source.data
        self.n_digits = len(self.data["digits"])
        self.labels = self.tensor(np.asarray(self.data["labels"], dtype=np.int64))
        self.ink = self.tensor(INK)

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        """A copy of a numpy array on the device (the pool's arrays may be read-only)."""
        return torch.tensor(array, device=self.device)

    def grey(self, ink: torch.Tensor) -> torch.Tensor:
        """uint8 ink -> the generator's float32 ``k / 255`` (its table: a GPU divides by a scalar as a
        multiplication by the reciprocal, 1 ulp off for half the levels)."""
        return self.ink[ink.long()]

    def episodes(self, rng: np.random.Generator, batch_size: int, rows: np.ndarray | None) -> dict[str, torch.Tensor]:
        """The train split's ``EpisodeSource.episodes(rng, batch_size, rows)``, the arrays the task's
        ``to_batch`` reads, as tensors on the device."""
        raise NotImplementedError


class OccludedRenderer(Renderer):
    """Occluded Moving MNIST (:func:`rladder_stream.envs.occluded_mnist.generate_occluded_batch`): exactly its
    ``frames``, ``clean`` and ``labels`` (pasting and masking compute nothing). The pool's digits are resized
    once, here, instead of at every batch: in every style of ``DIGIT_STYLES`` when the source draws them
    (``digit_augment``), else in the data set's own."""

    def __init__(self, source: EpisodeSource, device: torch.device | str):
        from rladder_stream.envs.occluded_mnist import DIGIT_STYLES, OCCLUDED, resize_digits

        super().__init__(source, device)
        self.augment = bool(self.data.get("digit_augment", False))
        styles = range(len(DIGIT_STYLES)) if self.augment else range(1)
        self.digits = self.tensor(np.stack([resize_digits(self.data["digits"], style=s) for s in styles]))  # uint8 [S, N, 16, 16]
        self.visible = self.tensor(~OCCLUDED)

    def episodes(self, rng: np.random.Generator, batch_size: int, rows: np.ndarray | None) -> dict[str, torch.Tensor]:
        from rladder_stream.envs.occluded_mnist import FRAME_SIZE, draw_styles, draw_trajectories

        choice, ys, xs, _ = (self.tensor(a) for a in draw_trajectories(rng, self.n_digits, batch_size, rows))
        style = self.tensor(draw_styles(rng, batch_size, self.augment))
        clean = self.grey(_paste(self.digits[style, choice], ys, xs, FRAME_SIZE))
        return {"frames": clean * self.visible, "clean": clean, "labels": self.labels[choice]}


class MovingRenderer(Renderer):
    """Moving MNIST (:func:`rladder_stream.envs.moving_mnist.generate_moving_batch`): exactly its ``frames`` and
    ``groups`` (uint8 layers pasted and combined by max, the generator's own grouping rule
    :func:`~rladder_stream.envs.moving_mnist.label_groups` and grey-level table)."""

    def __init__(self, source: EpisodeSource, device: torch.device | str):
        super().__init__(source, device)
        self.digits = self.tensor(self.data["digits"])  # uint8 [N, 28, 28]

    def episodes(self, rng: np.random.Generator, batch_size: int, rows: np.ndarray | None) -> dict[str, torch.Tensor]:
        from rladder_stream.envs.moving_mnist import FRAME_SIZE, draw_paths, label_groups

        indices, ys, xs = (self.tensor(a) for a in draw_paths(rng, self.n_digits, batch_size, rows))
        one = _paste(self.digits[indices[:, 0]], ys[:, 0], xs[:, 0], FRAME_SIZE)  # uint8 [B, T, 64, 64]
        two = _paste(self.digits[indices[:, 1]], ys[:, 1], xs[:, 1], FRAME_SIZE)
        groups = label_groups(one, two, torch.empty(one.shape, dtype=torch.int8, device=self.device))
        return {"frames": self.grey(torch.maximum(one, two)), "groups": groups}


class TexturedRenderer(Renderer):
    """Brodatz-textured MNIST (:func:`rladder_stream.envs.textured_mnist.generate_textured_batch`), rotated and
    scaled crops included, whatever the plates and ``texture_scale``: exactly its ``frames``, ``groups`` and
    ``labels``. The crops are the generator's bilinear sampling
    (:func:`~rladder_stream.envs.textured_mnist.crop_textures`) done again operation by operation in the same
    precision (float64 sample points from the generator's own cos and sin,
    :func:`~rladder_stream.envs.textured_mnist.crop_axes`; float32 weighting), so no value can round
    differently; the mask, the composition and the groups are integer pasting, the grey-level table and the
    generator's own functions. The pool's digits are thickened once, here. Needs float64 on the device."""

    def __init__(self, source: EpisodeSource, device: torch.device | str):
        from rladder_stream.envs.textured_mnist import CROP_GRID, thicken

        super().__init__(source, device)
        digits = self.data["digits"]
        chunks = np.array_split(digits, max(1, len(digits) // 4096))  # thicken holds 9 shifted copies of its input
        self.thick = self.tensor(np.concatenate([thicken(chunk) for chunk in chunks]))  # uint8 [N, 28, 28]
        self.textures = self.tensor(self.data["textures"])  # float32 [K, S, S]
        self.grid = self.tensor(CROP_GRID)
        self.augment, self.n_ticks, self.texture_scale = self.data["augment"], self.data["n_ticks"], self.data["texture_scale"]

    def crops(self, which: np.ndarray, centre: np.ndarray, angle: np.ndarray, scale: np.ndarray) -> torch.Tensor:
        """:func:`~rladder_stream.envs.textured_mnist.crop_textures` on the device: the same operations in the
        same order and precision, ``[N, 32, 32]``."""
        from rladder_stream.envs.textured_mnist import crop_axes

        size, textures = self.textures.shape[-1], self.textures
        dy, dx = self.grid[None, :, None], self.grid[None, None, :]
        cos, sin = (self.tensor(c)[:, None, None] for c in crop_axes(angle, scale))
        centre, k = self.tensor(centre), self.tensor(which)[:, None, None]
        y = centre[:, 0, None, None] + cos * dy - sin * dx
        x = centre[:, 1, None, None] + sin * dy + cos * dx
        y0, x0 = y.floor().long().clamp(0, size - 1), x.floor().long().clamp(0, size - 1)
        wy, wx = (y - y0).float(), (x - x0).float()
        y1, x1 = (y0 + 1).clamp(max=size - 1), (x0 + 1).clamp(max=size - 1)
        top = textures[k, y0, x0] * (1 - wx) + textures[k, y0, x1] * wx
        bottom = textures[k, y1, x0] * (1 - wx) + textures[k, y1, x1] * wx
        return top * (1 - wy) + bottom * wy

    def episodes(self, rng: np.random.Generator, batch_size: int, rows: np.ndarray | None) -> dict[str, torch.Tensor]:
        from rladder_stream.envs.textured_mnist import IMAGE_SIZE, compose, draw_textured, label_groups

        n_textures, size = self.textures.shape[0], self.textures.shape[-1]
        d = draw_textured(rng, self.n_digits, n_textures, size, batch_size, rows, self.augment, self.texture_scale)
        crops = self.crops(d.which.reshape(-1), d.centre.reshape(-1, 2), d.angle.reshape(-1), d.scale.reshape(-1))
        crops = crops.reshape(batch_size, 2, IMAGE_SIZE, IMAGE_SIZE)
        choice, offsets = self.tensor(d.choice), self.tensor(d.offsets)
        mask = self.grey(_paste(self.thick[choice], offsets[:, 0], offsets[:, 1], IMAGE_SIZE))
        image = compose(mask, crops[:, 0], crops[:, 1])
        groups = label_groups(mask, torch.empty(mask.shape, dtype=torch.int8, device=self.device))
        return {"frames": image[:, None].repeat(1, self.n_ticks, 1, 1), "groups": groups, "labels": self.labels[choice]}
