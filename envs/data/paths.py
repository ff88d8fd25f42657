"""Where data files live, how they are verified, and how a missing one is fetched.

Lookup order for the data folder (:func:`resolve_data_dir`): an explicit ``data_dir`` argument, else the
environment variable ``RLADDER_STREAM_DATA``, else the cache folder ``$XDG_CACHE_HOME/rladder-stream``
(``~/.cache/rladder-stream``) if it exists, else ``None``, which tells the loaders to use the small data set
embedded in the package (``envs/embedded/``). Every folder has the layout of the project's shared data
folder: ``mnist/train-images-idx3-ubyte.gz``, ``music/JSB Chorales.pickle``,
``brodatz/schlossvrl_300px/D1.png`` ...

:func:`fetch` returns a verified file: it looks in the data folder, then in the cache folder, and otherwise
downloads it (when a URL is known) into the cache folder with pooch, checking the sha256 before the file appears
under its final name, reporting progress on stderr and trying a passing failure (timeout, dropped connection,
HTTP 5xx) up to :data:`DOWNLOAD_ATTEMPTS` times. Without a copy and without internet it raises :class:`DataNotFoundError`, whose message says
which file to get, from where, its checksum and the folder to put it in.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

ENV_VAR = "RLADDER_STREAM_DATA"

# Downloads go through this callable (``urllib.request.urlopen`` signature); tests replace it.
_urlopen: Callable = urllib.request.urlopen

# Verified files in this process: (absolute path, size, mtime_ns, expected sha) -> True.
_verified_in_process: set[tuple[str, int, int, str]] = set()
_MARKER_FILE = "verified.json"


class DataNotFoundError(FileNotFoundError):
    """A data file is neither on disk nor downloadable; the message says what to get and where to put it."""


class ChecksumError(ValueError):
    """A data file's sha256 differs from the one recorded for it (corrupt, truncated or a different version)."""


def cache_dir() -> Path:
    """The download cache folder: ``$XDG_CACHE_HOME/rladder-stream`` or ``~/.cache/rladder-stream``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rladder-stream"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The data folder to read from, or ``None`` to mean "use the embedded default".

    Order: ``data_dir`` if given, else ``$RLADDER_STREAM_DATA`` if set and non-empty, else the cache folder
    if it exists. An explicit folder that does not exist raises :class:`DataNotFoundError` (a typo should not
    silently fall back to the tiny embedded set).
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        origin = "data_dir argument"
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR]).expanduser()
        origin = f"environment variable {ENV_VAR}"
    else:
        cache = cache_dir()
        return cache if cache.is_dir() else None
    if not path.is_dir():
        raise DataNotFoundError(f"data folder {str(path)!r} (from the {origin}) does not exist")
    return path


def file_sha256(path: str | os.PathLike, *, uncompressed: bool = False) -> str:
    """sha256 of a file, streamed; with ``uncompressed=True`` a ``.gz`` file is hashed after decompression."""
    digest = hashlib.sha256()
    path = Path(path)
    opener = gzip.open if (uncompressed and path.suffix == ".gz") else open
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _marker_key(path: Path, sha256: str) -> tuple[str, int, int, str]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, sha256.lower())


def _read_markers() -> dict[str, list]:
    try:
        with open(cache_dir() / _MARKER_FILE) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _is_marked(key: tuple[str, int, int, str]) -> bool:
    if key in _verified_in_process:
        return True
    entry = _read_markers().get(key[0])
    if entry is not None and tuple([key[0], *entry]) == key:
        _verified_in_process.add(key)
        return True
    return False


def _mark(key: tuple[str, int, int, str]) -> None:
    """Remember a verified file (in this process, and on disk if the cache folder already exists).

    The marker file is never the reason the cache folder exists: an existing cache folder changes
    :func:`resolve_data_dir`'s answer.
    """
    _verified_in_process.add(key)
    folder = cache_dir()
    if not folder.is_dir():
        return
    markers = _read_markers()
    markers[key[0]] = list(key[1:])
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".verified-")
        with os.fdopen(fd, "w") as f:
            json.dump(markers, f)
        os.replace(tmp, folder / _MARKER_FILE)
    except OSError:  # a read-only cache is fine: we only lose the shortcut
        pass


def verify(path: str | os.PathLike, sha256: str, *, uncompressed_sha256: bool = False) -> Path:
    """Check a file's sha256 (skipped when the same size+mtime was verified before); return its path.

    Raises :class:`ChecksumError` naming the file, the expected and the actual hash.
    """
    path = Path(path)
    key = _marker_key(path, sha256)
    if _is_marked(key):
        return path
    actual = file_sha256(path, uncompressed=uncompressed_sha256)
    if actual != sha256.lower():
        what = "uncompressed content of " if (uncompressed_sha256 and path.suffix == ".gz") else ""
        raise ChecksumError(
            f"checksum mismatch for {what}{str(path)!r}: expected sha256 {sha256.lower()}, got {actual}. "
            "The file is corrupt, truncated or a different version; delete it and fetch it again."
        )
    _mark(key)
    return path


def _candidates(relpath: str, uncompressed_sha256: bool) -> list[str]:
    """Names a file may have on disk: with an uncompressed checksum, both the ``.gz`` and the raw form."""
    if not uncompressed_sha256:
        return [relpath]
    if relpath.endswith(".gz"):
        return [relpath, relpath[: -len(".gz")]]
    return [relpath + ".gz", relpath]


#: Attempts of a download that fails for a passing reason (a timeout, a dropped connection, an HTTP 5xx).
DOWNLOAD_ATTEMPTS = 3


def _transient(exc: BaseException) -> bool:
    """Whether a download error may go away when tried again."""
    import http.client
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500
    if isinstance(exc, urllib.error.URLError):
        return isinstance(exc.reason, (TimeoutError, ConnectionError))
    return isinstance(exc, (TimeoutError, ConnectionError, http.client.IncompleteRead))


class _ProgressDownloader:
    """A pooch downloader that reads through :data:`_urlopen` and reports progress on stderr: a line when it
    starts (with the size when the server says it), one every 10 % (or 10 MB), and one when done."""

    def __init__(self, dest: Path, stream=None):
        self.dest, self.name, self.stream = dest, dest.name, stream

    def _say(self, text: str) -> None:
        import sys

        print(f"rladder-stream: {text}", file=self.stream or sys.stderr, flush=True)

    def __call__(self, url: str, output_file: str, pooch_obj=None, check_only: bool = False) -> None:
        import time

        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                self._fetch(url, output_file)
                return
            except Exception as exc:  # noqa: BLE001 - sorted into passing and lasting failures
                if attempt == DOWNLOAD_ATTEMPTS or not _transient(exc):
                    raise
                self._say(f"{self.name}: {type(exc).__name__}: {exc}; trying again ({attempt + 1}/{DOWNLOAD_ATTEMPTS})")
                time.sleep(attempt)

    def _fetch(self, url: str, output_file: str) -> None:
        with _urlopen(url, timeout=60) as response, open(output_file, "wb") as out:
            headers = getattr(response, "headers", None)
            total = int(headers.get("Content-Length") or 0) if headers is not None else 0
            self._say(f"downloading {url} into {self.dest}" + (f" ({total / 1e6:.1f} MB)" if total else ""))
            done, reported, step = 0, 0, (total // 10 if total else 10_000_000) or 1
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                done += len(block)
                if done - reported >= step and done < (total or float("inf")):
                    reported = done
                    self._say(f"{self.name}: {done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB ({100 * done / total:.0f} %)" if total else ""))
            self._say(f"{self.name}: {done / 1e6:.1f} MB downloaded")


def _download(url: str, dest: Path, sha256: str, uncompressed_sha256: bool) -> None:
    """Download ``url`` to ``dest`` with pooch (a temporary file beside it, the checksum checked before the file
    appears under its name), reporting progress on stderr and trying passing failures again."""
    import pooch

    made = [p for p in [dest.parent, *dest.parent.parents] if not p.exists()]
    suffix_gz = uncompressed_sha256 and dest.suffix == ".gz"
    try:
        logger = pooch.get_logger()
        level = logger.level
        logger.setLevel(logging.WARNING)  # its INFO lines repeat ours
        try:
            # A gz file's checksum is of its uncompressed bytes: pooch cannot check that one, we do below.
            pooch.retrieve(url, known_hash=None if suffix_gz else f"sha256:{sha256.lower()}", fname=dest.name,
                           path=dest.parent, downloader=_ProgressDownloader(dest), progressbar=False)
        except ValueError as exc:  # pooch's checksum mismatch; it has removed the temporary file
            raise ChecksumError(f"checksum mismatch for the download of {dest.name!r} from {url}: expected sha256 "
                                f"{sha256.lower()} ({exc})") from exc
        finally:
            logger.setLevel(level)
        if suffix_gz:
            actual = _gz_sha256(dest)
            if actual != sha256.lower():
                dest.unlink()
                raise ChecksumError(f"checksum mismatch for the download of {dest.name!r} from {url}: expected "
                                    f"sha256 {sha256.lower()} of the uncompressed file, got {actual}")
    except BaseException:
        for p in made:  # leave no empty cache folder behind (it would change resolve_data_dir's answer)
            try:
                p.rmdir()
            except OSError:
                break
        raise


def _gz_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(
    relpath: str,
    sha256: str,
    data_dir: str | os.PathLike | None = None,
    url: str | None = None,
    *,
    uncompressed_sha256: bool = False,
) -> Path:
    """Return the verified file ``relpath`` (e.g. ``"mnist/t10k-images-idx3-ubyte.gz"``).

    Looks in the resolved data folder (see :func:`resolve_data_dir`), then in the cache folder; if absent
    and ``url`` is given, downloads it into the cache folder (atomic rename after the checksum check).
    With ``uncompressed_sha256=True`` the checksum is of the decompressed bytes, and both the ``.gz`` and the
    raw file name are accepted.

    Raises:
        ChecksumError: a file is present but its sha256 differs.
        DataNotFoundError: no copy and no successful download; the message says what to do.
    """
    root = resolve_data_dir(data_dir)
    folders = [root] if root is not None else []
    if cache_dir() not in folders:
        folders.append(cache_dir())
    names = _candidates(relpath, uncompressed_sha256)
    for folder in folders:
        for name in names:
            path = folder / name
            if path.is_file():
                return verify(path, sha256, uncompressed_sha256=uncompressed_sha256)

    failure = "no download URL is known for it"
    if url is not None:
        dest = cache_dir() / relpath
        try:
            _download(url, dest, sha256, uncompressed_sha256)
            _mark(_marker_key(dest, sha256))  # just checked while downloading
            return dest
        except ChecksumError:
            raise
        except Exception as exc:  # no internet, HTTP error, disk full ...: explain below
            failure = f"downloading it from {url} failed ({type(exc).__name__}: {exc})"

    checksum_kind = "sha256 of the uncompressed file" if uncompressed_sha256 else "sha256"
    alternatives = " or ".join(repr(Path(n).name) for n in names)
    where = f"{str(root / Path(relpath).parent)!r}" if root is not None else (
        f"{str(cache_dir() / Path(relpath).parent)!r} (or <folder>/{Path(relpath).parent} for a folder "
        f"named by {ENV_VAR})"
    )
    raise DataNotFoundError(
        f"data file {relpath!r} not found ({failure}). Get {alternatives}"
        + (f" from {url}" if url else "")
        + f" ({checksum_kind} {sha256.lower()}) and put it in {where}. Searched: "
        + ", ".join(repr(str(f)) for f in folders)
        + f". Set the environment variable {ENV_VAR} (or pass data_dir=) to point at a folder with the "
        "layout mnist/, music/, brodatz/."
    )
