"""Regenerate the small data files embedded in the package (run once; the outputs are committed).

    python envs/embedded/make_fixtures.py [DATA_DIR]

DATA_DIR defaults to ``$RLADDER_STREAM_DATA`` or the project's shared data folder (``../shared/data``
beside the repository). Writes, next to this script:

- ``mnist_subset.npz``: MNIST test digits 0-299, train digits 0-999 and train digits 50,000-50,299 (the
  start of the validation range), each with labels and original indices; uint8, compressed.
- ``brodatz_<plate>.png``: 128x128 centre crops of 4 of the 300x300 Brodatz plates (no rescaling).

The inputs are checksum-verified through :mod:`rladder_stream.envs.data`, so the outputs are reproducible.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from rladder_stream.envs.data.brodatz import BRODATZ_SHA256, EMBEDDED_PLATES
from rladder_stream.envs.data.mnist import load_mnist
from rladder_stream.envs.data.paths import fetch

HERE = Path(__file__).resolve().parent

TEST_ROWS = np.arange(300)
TRAIN_ROWS = np.concatenate([np.arange(1000), np.arange(50_000, 50_300)])
CROP = 128


def main(data_dir: str | None = None) -> None:
    data_dir = data_dir or os.environ.get("RLADDER_STREAM_DATA") or str(HERE.parents[2] / "shared" / "data")
    arrays = {}
    for split, rows in (("test", TEST_ROWS), ("train", TRAIN_ROWS)):
        images, labels = load_mnist(split, data_dir)
        arrays[f"{split}_images"] = images[rows]
        arrays[f"{split}_labels"] = labels[rows]
        arrays[f"{split}_indices"] = rows.astype(np.int32)
    np.savez_compressed(HERE / "mnist_subset.npz", **arrays)
    for name in EMBEDDED_PLATES:
        path = fetch(f"brodatz/schlossvrl_300px/{name}.png", BRODATZ_SHA256[name], data_dir)
        with Image.open(path) as im:
            im = im.convert("L")
            left, top = (im.width - CROP) // 2, (im.height - CROP) // 2
            im.crop((left, top, left + CROP, top + CROP)).save(HERE / f"brodatz_{name}.png", optimize=True)
    for p in sorted(HERE.glob("*.npz")) + sorted(HERE.glob("*.png")):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
