"""MNIST: an IDX reader and :func:`load_mnist`, with a small embedded default.

With a data folder (see :mod:`rladder_stream.envs.data.paths`) the four IDX files are read from ``<folder>/mnist/``
(``.gz`` or raw; the checksums are of the uncompressed bytes, as in the shared data's SOURCE.md) or
downloaded into the cache. Without one, :func:`load_mnist` returns the digits embedded in the package
(``envs/embedded/mnist_subset.npz``, made by ``envs/embedded/make_fixtures.py``): the first 300 test digits,
the first 1,000 training digits and the first 300 digits of the usual validation range (train 50,000-50,299).
Each row keeps its original MNIST index in ``indices``, so a split built by index gives the same digits with
either source; ``source`` says which one was used.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from pathlib import Path
from typing import Literal

import numpy as np

from .paths import DataNotFoundError, fetch, resolve_data_dir

log = logging.getLogger(__name__)

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # the mirror torchvision uses
# sha256 of the UNCOMPRESSED IDX files (shared data's mnist/SOURCE.md).
MNIST_FILES: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "train": (
        ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ),
    "test": (
        ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ),
}
MNIST_SIZES = {"train": 60_000, "test": 10_000}
EMBEDDED_MNIST = Path(__file__).resolve().parents[1] / "embedded" / "mnist_subset.npz"

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_cache: dict[tuple[str, str], "MnistSplit"] = {}


class IdxFormatError(ValueError):
    """An IDX file is malformed: bad magic number, unknown type, or fewer bytes than its header promises."""


class MnistSplit(tuple):
    """``(images, labels)`` (unpacks as a pair) with two more attributes.

    Attributes:
        images: uint8 ``[N, 28, 28]``, 0 = background, 255 = ink (read-only).
        labels: uint8 ``[N]`` (read-only).
        indices: int64 ``[N]``, each row's index in the full MNIST split (``arange(N)`` for the full data).
        source: where the digits came from: a folder path, or ``"embedded"``.
    """

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    source: str

    def __new__(cls, images: np.ndarray, labels: np.ndarray, indices: np.ndarray, source: str) -> "MnistSplit":
        self = super().__new__(cls, (images, labels))
        self.images, self.labels, self.indices, self.source = images, labels, indices, source
        return self


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed if the name ends in ``.gz``) into an array of its declared shape.

    Raises :class:`IdxFormatError` on a bad magic number, an unknown element type, a truncated body (or a
    truncated gzip stream), or trailing bytes.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise IdxFormatError(f"{str(path)!r} is not a complete gzip file ({exc}); it is truncated or corrupt") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IdxFormatError(f"{str(path)!r} is not an IDX file (the first two bytes must be zero)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES or ndim == 0:
        raise IdxFormatError(f"{str(path)!r}: unknown IDX magic number 0x{int.from_bytes(raw[:4], 'big'):08x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxFormatError(f"{str(path)!r} is truncated: its header needs {header} bytes, the file has {len(raw)}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = len(raw) - header
    if body != expected:
        state = "truncated" if body < expected else "longer than its header says"
        raise IdxFormatError(
            f"{str(path)!r} is {state}: the header declares shape {shape} ({expected} bytes of data), "
            f"the file holds {body}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _readonly(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


def _load_embedded(split: str) -> MnistSplit:
    with np.load(EMBEDDED_MNIST) as z:
        images, labels, indices = z[f"{split}_images"], z[f"{split}_labels"], z[f"{split}_indices"].astype(np.int64)
    return MnistSplit(images, labels, indices, "embedded")


def _load_files(split: str, data_dir: str | os.PathLike | None) -> MnistSplit:
    (img_name, img_sha), (lbl_name, lbl_sha) = MNIST_FILES[split]
    paths = [
        fetch(f"mnist/{name}.gz", sha, data_dir, MNIST_URL + f"{name}.gz", uncompressed_sha256=True)
        for name, sha in ((img_name, img_sha), (lbl_name, lbl_sha))
    ]
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    n = MNIST_SIZES[split]
    if images.shape != (n, 28, 28) or labels.shape != (n,):
        raise IdxFormatError(f"MNIST {split}: unexpected shapes {images.shape}, {labels.shape}")
    return MnistSplit(images, labels, np.arange(n, dtype=np.int64), str(paths[0].parent))


def load_mnist(split: Literal["train", "test"], data_dir: str | os.PathLike | None = None) -> MnistSplit:
    """Load an MNIST split (cached per process).

    Args:
        split: ``"train"`` (60,000 digits) or ``"test"`` (10,000).
        data_dir: folder with ``mnist/``; default: ``$RLADDER_STREAM_DATA``, else the cache folder if it
            exists, else the embedded subset (see the module docstring), logged at INFO level.

    Returns:
        A :class:`MnistSplit`: unpacks as ``images, labels``; also ``.indices`` and ``.source``.
    """
    if split not in MNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = resolve_data_dir(data_dir)
    key = (split, str(root) if root is not None else "embedded")
    if key not in _cache:
        if root is None and EMBEDDED_MNIST.is_file():
            result = _load_embedded(split)
            log.info("MNIST %s: the embedded subset (%d digits), %s", split, len(result.labels), EMBEDDED_MNIST)
        elif root is None:
            raise DataNotFoundError(f"the embedded MNIST subset {str(EMBEDDED_MNIST)!r} is missing from the package")
        else:
            result = _load_files(split, root)
            log.info("MNIST %s: %d digits from %s", split, len(result.labels), result.source)
        _readonly(result.images, result.labels, result.indices)
        _cache[key] = result
    return _cache[key]
