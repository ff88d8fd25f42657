"""Data readers shared by the environments and training: paths and checksums, MNIST, Brodatz.

See :mod:`rladder_stream.envs.data.paths` for where files are looked up (``data_dir`` argument, ``$RLADDER_STREAM_DATA``,
the cache folder, else the small embedded default).
"""

from .brodatz import BRODATZ_PLATES, BRODATZ_SCANS, EMBEDDED_PLATES, Textures, load_brodatz, load_brodatz_scans
from .mnist import IdxFormatError, MnistSplit, load_mnist, read_idx
from .paths import (
    ENV_VAR,
    ChecksumError,
    DataNotFoundError,
    cache_dir,
    fetch,
    file_sha256,
    resolve_data_dir,
    verify,
)

__all__ = [
    "BRODATZ_PLATES",
    "EMBEDDED_PLATES",
    "ENV_VAR",
    "ChecksumError",
    "DataNotFoundError",
    "IdxFormatError",
    "MnistSplit",
    "Textures",
    "cache_dir",
    "fetch",
    "file_sha256",
    "load_brodatz",
    "load_brodatz_scans",
    "load_mnist",
    "read_idx",
    "resolve_data_dir",
    "verify",
]
