"""Brodatz textures for Textured MNIST: the 20 plates of docs/design.md#brodatz-textured-mnist, with a small embedded default.

With a data folder (see :mod:`rladder_stream.envs.data.paths`) the plates are read from
``<folder>/brodatz/schlossvrl_300px/D<n>.png`` (300x300 8-bit grayscale, whole plates scaled down; checksums
from the shared data's brodatz/SOURCE.md) or downloaded into the cache. Without one, :func:`load_brodatz`
returns 4 plates embedded in the package (``envs/embedded/brodatz_D<n>.png``, made by
``envs/embedded/make_fixtures.py``): 128x128 centre crops of the 300x300 plates, cropped rather than scaled
down so the texture grain (pixels per pattern repeat) is the same as with the full data.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .paths import fetch, resolve_data_dir

log = logging.getLogger(__name__)

# docs/design.md#brodatz-textured-mnist: the 20 plates used for Textured MNIST.
BRODATZ_PLATES: tuple[str, ...] = (
    "D1", "D4", "D8", "D11", "D16", "D17", "D20", "D22", "D25", "D26",
    "D34", "D46", "D49", "D52", "D55", "D57", "D64", "D68", "D77", "D84",
)  # fmt: skip
BRODATZ_SHA256: dict[str, str] = {
    "D1": "7558b1d065e603b78009bba13a44d6bbd3114fdaa51b5d43dbc07e2183af38d5",
    "D4": "2a73726a291591f0387209f5be2e3017bc7c0666ffce60e7f43b4a9e124b6b56",
    "D8": "d054398f2ca7474e0d5161e8853cf027eeb54dcf3a75c342dca88dfcf44909e6",
    "D11": "b48589c670bdca5f3c63ed78f559c1c4015f7eb9cc5cc3ec625a63cecb9c78a5",
    "D16": "cc3260f70945bb6ef8c0f7dc9b79bf7d50ca170d42a05bff939324041a480f75",
    "D17": "fa3297ef6d0e5a2908fe008a6cee68bec823b18c0f6959a243e9141c9e372ae6",
    "D20": "53e996aa40fb5d37ef9b4787d181db0cbc9d935c01a32fb52f11eb39191d7cda",
    "D22": "fa7b193827e95332b7deb30f5441aed51da069b9e1d78c95e41f369a3d537d9a",
    "D25": "379475ee97e7464e92c2b53ea80f58253c621afda7b3aeb0b9e5846c5135f7f6",
    "D26": "4352960d3052f70a3ac88f36e00515ed0d116e2bffd1486ab36de559ce5507a4",
    "D34": "c5d80463081e6234e2add9ddc7262516908e3413b75882c6a9d464da1b305d1e",
    "D46": "87407e2d38db92b48b9e63d76989c051179bc71572fc56828fe418f5c7b19ec2",
    "D49": "b633978315e6dffc71a26491e1151eed53e33a5f32515046d0ebf90e13639a4b",
    "D52": "a737c64831c90cfb25725fe2513a78f0c1cd81dfbefd49818133d9a796c29bf8",
    "D55": "0c6c305281ec3b01a567eb7cd719db8ba93d9b54f91a5a7b66d0208c87729955",
    "D57": "78d68a4bfd865177c6f9828df085f28ac7a10405a530934c41cf5a628dbd7a46",
    "D64": "e84d8ad412fc0bd3d9d169a73fa7fa1e379602eab7967c7a01b13bd3827c25d2",
    "D68": "ee816e4badf56a5fa107fc0e36f21a27d1796c389f7ef009a65c7c4838c95779",
    "D77": "05787d7222ce26906362440bfb43c88b093a1b81a83dd1bcb2ec66f621c9c8c1",
    "D84": "199fe427ae08926bd87ce50818f51d0e46f265d219b517f6daba1438a6978240",
}
# The scans at their own grey levels (docs/design.md#brodatz-textured-mnist, the "brodatz-scans" plates): every
# whole-plate scan in the shared data, each 640x640 (D1 643x643), read at its own grey level and area-averaged to
# SCAN_SIZE (the 300x300 plates' grain). file name -> sha256, from the shared data's brodatz/SOURCE.md.
SCAN_SIZE = 300
BRODATZ_SCANS: dict[str, tuple[str, str]] = {
    "D1": ("manifoldopt_640px/D1.png", "b4327c2a5ff6446c76a7db19f233c54b114c170ac9419865607770dbf72f6806"),
    "D2": ("manifoldopt_640px/D2.png", "e39210f13d237dce174307448abbe600032b48a0cdb81e838827a042b250b7fd"),
    "D3": ("manifoldopt_640px/D3.png", "0f5e96eee541eb6f390e6e7cc0e9091896b975a893f373ab3697cc5a9ed85198"),
    "D4": ("manifoldopt_640px/D4.png", "6755c6969fe9390bcbaa21170d0bcd26dfdd1f1892615490c2977a571969e6f9"),
    "D5": ("manifoldopt_640px/D5.png", "27f5d129e2a81652f386512ee0252c0ac465db699071dab5af6ab4f767fee6de"),
    "D6": ("manifoldopt_640px/D6.png", "8372eeeb1df147e438f5d7395f8b40d10d6568c5aadba445f99cf4a4e222c09e"),
    "D7": ("manifoldopt_640px/D7.png", "93f0ec2caf33630ac5d7296b235248c079e7056b2000f259710769935d88d3f2"),
    "D8": ("manifoldopt_640px/D8.png", "fa7065df9ecf53003319bda27cd37d34a749f59eaa690d0857f5e833b4d6a4f4"),
    "D9": ("manifoldopt_640px/D9.png", "01a3da29da2bb0896411c5835a946e792a3021f0e96884ea754b9f3fdaee84c5"),
    "D10": ("manifoldopt_640px/D10.png", "b5a76dc3d04bc04be32a04dd4b627f51c98fcdfd59c01285fa98d6bc2330764d"),
    "D11": ("manifoldopt_640px/D11.png", "90baef5fb74485b6c2288620a964de748a4d5e6a5b8ea0d1ec0ca454d5824b86"),
    "D12": ("manifoldopt_640px/D12.png", "a349b8223c6523047fcffdc78076ad3fe221e4681f31662080a79471e0904431"),
    "D73": ("adafilter_original_gif/D73.gif", "da16ff646dfc866e9d88502b61ae9150945cf0fed4a9f48c9ab30bb8dfbc778e"),
    "D75": ("adafilter_original_gif/D75.gif", "6ba83074b8fc906b286bfc800912b73fd04c494632c95cc9d45811760f36cf4b"),
}
SCAN_URLS = {
    "manifoldopt_640px": "https://raw.githubusercontent.com/Mrrmm510/ManifoldOptimization/"
    "866c31d96f20a02b80be7d39260bed31d5ed1b5f/data/brodatz/{file}",
    "adafilter_original_gif": "https://raw.githubusercontent.com/ostrodmit/AdaFilter/"
    "5f671af0d93ab79bf2984dc42bd72213dfc50d02/Brodatz/{file}",
}
BRODATZ_URL = (
    "https://raw.githubusercontent.com/SchlossVRL/visual_textures_associations/"
    "4da1e99e5f4af36ee78329d8e0671abe597c6e2b/images/{name}.png"
)
EMBEDDED_DIR = Path(__file__).resolve().parents[1] / "embedded"
EMBEDDED_PLATES: tuple[str, ...] = ("D4", "D20", "D49", "D68")

_cache: dict[tuple, "Textures"] = {}


class Textures(tuple):
    """``(textures, names)`` (unpacks as a pair) with a ``source`` attribute.

    Attributes:
        textures: float32 ``[K, H, W]`` in [0, 1] (read-only).
        names: the plate names, e.g. ``("D1", "D4", ...)``.
        source: the folder read, or ``"embedded"``.
    """

    textures: np.ndarray
    names: tuple[str, ...]
    source: str

    def __new__(cls, textures: np.ndarray, names: tuple[str, ...], source: str) -> "Textures":
        self = super().__new__(cls, (textures, names))
        self.textures, self.names, self.source = textures, names, source
        return self


def _read_gray(path: Path, size: int | None = None) -> np.ndarray:
    """A plate in [0, 1]; with ``size``, area-averaged (Pillow's box filter) to ``size x size`` first."""
    with Image.open(path) as im:
        gray = im.convert("L")
        if size is not None and gray.size != (size, size):
            gray = gray.convert("F").resize((size, size), Image.Resampling.BOX)
        return np.asarray(gray, dtype=np.float32) / 255.0


def load_brodatz(
    plates: Sequence[str] | None = None, data_dir: str | os.PathLike | None = None
) -> Textures:
    """Load Brodatz plates as float32 arrays in [0, 1] (cached per process).

    Args:
        plates: plate names; default: the paper's 20 (:data:`BRODATZ_PLATES`) when a data folder resolves,
            else the 4 embedded ones (:data:`EMBEDDED_PLATES`).
        data_dir: folder holding ``brodatz/schlossvrl_300px/``; default as in :func:`rladder_stream.envs.data.resolve_data_dir`.
    """
    root = resolve_data_dir(data_dir)
    if plates is None:
        plates = BRODATZ_PLATES if root is not None else EMBEDDED_PLATES
    names = tuple(plates)
    unknown = [n for n in names if n not in BRODATZ_SHA256]
    if unknown:
        raise ValueError(f"unknown Brodatz plates {unknown}; known: {', '.join(BRODATZ_PLATES)}")
    key = (names, str(root))
    if key not in _cache:
        if root is None and set(names) <= set(EMBEDDED_PLATES):
            arrays = [_read_gray(EMBEDDED_DIR / f"brodatz_{n}.png") for n in names]
            source = "embedded"
        else:
            paths = [
                fetch(f"brodatz/schlossvrl_300px/{n}.png", BRODATZ_SHA256[n], root, BRODATZ_URL.format(name=n))
                for n in names
            ]
            arrays = [_read_gray(p) for p in paths]
            source = str(paths[0].parent)
        textures = np.stack(arrays)
        textures.setflags(write=False)
        log.info("Brodatz: %d plates %s from %s", len(names), textures.shape[1:], source)
        _cache[key] = Textures(textures, names, source)
    return _cache[key]


def load_brodatz_scans(data_dir: str | os.PathLike | None = None) -> Textures:
    """The 14 whole-plate scans (:data:`BRODATZ_SCANS`) at their own grey levels, float32 ``[14, 300, 300]`` in
    [0, 1] (cached per process): unlike the 300x300 plates of :func:`load_brodatz`, which were each normalised to
    mean grey 0.5, these keep the album's mean greys (0.21-0.76), a cue the paper's data had
    (docs/design.md#brodatz-textured-mnist). Each 640x640 scan is area-averaged to 300x300, the other plates' grain.
    Needs a data folder or the download (no embedded copy)."""
    root = resolve_data_dir(data_dir)
    key = ("scans", str(root))
    if key not in _cache:
        paths = []
        for relpath, sha256 in BRODATZ_SCANS.values():
            folder, file = relpath.split("/")
            paths.append(fetch(f"brodatz/{relpath}", sha256, root, SCAN_URLS[folder].format(file=file)))
        textures = np.stack([_read_gray(p, SCAN_SIZE) for p in paths])
        textures.setflags(write=False)
        log.info("Brodatz scans: %d plates %s from %s", len(paths), textures.shape[1:], paths[0].parent.parent)
        _cache[key] = Textures(textures, tuple(BRODATZ_SCANS), str(paths[0].parent.parent))
    return _cache[key]
