"""The data layer: folder resolution, checksums, downloads (never the real network), IDX, embedded data."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from shared_data import find_shared_data, needs_shared
from PIL import Image

import rladder_stream.envs.data.brodatz as brodatz
import rladder_stream.envs.data.mnist as mnist
import rladder_stream.envs.data.paths as paths
from rladder_stream.envs.data import (
    ChecksumError,
    DataNotFoundError,
    IdxFormatError,
    fetch,
    load_brodatz,
    load_mnist,
    read_idx,
    resolve_data_dir,
    verify,
)


SHARED = find_shared_data('mnist', 'brodatz')
needs_shared_data = needs_shared('mnist', 'brodatz')


@pytest.fixture(autouse=True)
def isolated(embedded_data, tmp_path, monkeypatch):
    """No user data folder, an empty cache location, empty in-process caches, no network."""
    monkeypatch.setattr(paths, "_verified_in_process", set())
    monkeypatch.setattr(mnist, "_cache", {})
    monkeypatch.setattr(brodatz, "_cache", {})

    def no_network(url, timeout=None):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(paths, "_urlopen", no_network)
    return tmp_path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------- resolve


def test_resolve_order(tmp_path, monkeypatch):
    assert resolve_data_dir() is None  # nothing set, cache folder absent -> embedded
    cache = tmp_path / "xdg-cache" / "rladder-stream"
    cache.mkdir(parents=True)
    assert resolve_data_dir() == cache
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    monkeypatch.setenv("RLADDER_STREAM_DATA", str(env_dir))
    assert resolve_data_dir() == env_dir
    explicit = tmp_path / "explicit"
    explicit.mkdir()
    assert resolve_data_dir(explicit) == explicit
    with pytest.raises(DataNotFoundError, match="does not exist"):
        resolve_data_dir(tmp_path / "typo")


# ---------------------------------------------------------------------------------------------- fetch


def test_fetch_verifies_and_caches_the_check(tmp_path, monkeypatch):
    data = b"hello textures"
    _write(tmp_path / "d" / "brodatz" / "x.png", data)
    assert fetch("brodatz/x.png", _sha(data), tmp_path / "d") == tmp_path / "d" / "brodatz" / "x.png"

    calls = []
    real = paths.file_sha256
    monkeypatch.setattr(paths, "file_sha256", lambda *a, **k: calls.append(a) or real(*a, **k))
    fetch("brodatz/x.png", _sha(data), tmp_path / "d")
    assert calls == []  # same size and mtime: not hashed again


def test_checksum_mismatch(tmp_path):
    path = _write(tmp_path / "d" / "music" / "a.pickle", b"good bytes")
    expected = _sha(b"good bytes")
    fetch("music/a.pickle", expected, tmp_path / "d")
    path.write_bytes(b"evil bytes")  # same size; the mtime changes, so the marker no longer applies
    os.utime(path, ns=(1, 1))
    with pytest.raises(ChecksumError) as err:
        fetch("music/a.pickle", expected, tmp_path / "d")
    message = str(err.value)
    assert "a.pickle" in message and expected in message and _sha(b"evil bytes") in message
    assert isinstance(err.value, ValueError)


def test_uncompressed_checksum_accepts_gz_and_raw(tmp_path):
    raw = b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03"
    _write(tmp_path / "gz" / "mnist" / "f-idx1-ubyte.gz", gzip.compress(raw))
    _write(tmp_path / "raw" / "mnist" / "f-idx1-ubyte", raw)
    for folder in ("gz", "raw"):
        path = fetch("mnist/f-idx1-ubyte.gz", _sha(raw), tmp_path / folder, uncompressed_sha256=True)
        assert path.parent == tmp_path / folder / "mnist"
        assert read_idx(path).tolist() == [1, 2, 3]
    with pytest.raises(ChecksumError):  # the gz bytes' own hash is not the uncompressed one
        verify(tmp_path / "gz" / "mnist" / "f-idx1-ubyte.gz", _sha(gzip.compress(raw)), uncompressed_sha256=True)


def test_missing_file_without_url_says_what_to_do(tmp_path):
    (tmp_path / "d").mkdir()
    sha = "ab" * 32
    with pytest.raises(DataNotFoundError) as err:
        fetch("music/JSB Chorales.pickle", sha, tmp_path / "d")
    message = str(err.value)
    assert "JSB Chorales.pickle" in message and sha in message
    assert str(tmp_path / "d" / "music") in message and "RLADDER_STREAM_DATA" in message
    assert isinstance(err.value, FileNotFoundError)


def test_missing_file_with_unreachable_url(tmp_path):
    sha = "cd" * 32
    with pytest.raises(DataNotFoundError) as err:
        fetch("mnist/t10k-labels-idx1-ubyte.gz", sha, None, "https://example.invalid/t10k.gz", uncompressed_sha256=True)
    message = str(err.value)
    assert "https://example.invalid/t10k.gz" in message and "t10k-labels-idx1-ubyte" in message and sha in message
    assert str(paths.cache_dir() / "mnist") in message
    assert not paths.cache_dir().exists()  # a failed download leaves no cache folder behind
    assert resolve_data_dir() is None


def test_download_from_file_url(tmp_path, monkeypatch):
    import urllib.request

    payload = b"piano roll bytes" * 100
    source = _write(tmp_path / "remote" / "Nottingham.mat", payload)
    monkeypatch.setattr(paths, "_urlopen", urllib.request.urlopen)
    got = fetch("music/Nottingham.mat", _sha(payload), None, source.as_uri())
    assert got == paths.cache_dir() / "music" / "Nottingham.mat" and got.read_bytes() == payload
    assert [p.name for p in got.parent.iterdir()] == ["Nottingham.mat"]  # no temporary file left

    def fail(*a, **k):
        raise AssertionError("downloaded twice")

    monkeypatch.setattr(paths, "_urlopen", fail)
    assert fetch("music/Nottingham.mat", _sha(payload), None, source.as_uri()) == got  # found in the cache


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    import io

    monkeypatch.setattr(paths, "_urlopen", lambda url, timeout=None: io.BytesIO(b"not what was promised"))
    with pytest.raises(ChecksumError, match="expected sha256"):
        fetch("brodatz/schlossvrl_300px/D1.png", "00" * 32, None, "https://example.invalid/D1.png")
    assert not (paths.cache_dir() / "brodatz" / "schlossvrl_300px" / "D1.png").exists()


# ---------------------------------------------------------------------------------------------- IDX


def _idx_images(n: int, rows: int = 2, cols: int = 2) -> bytes:
    header = bytes([0, 0, 0x08, 3]) + b"".join(v.to_bytes(4, "big") for v in (n, rows, cols))
    return header + bytes(range(n * rows * cols))


def test_read_idx_roundtrip(tmp_path):
    data = _idx_images(3)
    raw = _write(tmp_path / "a-idx3-ubyte", data)
    gz = _write(tmp_path / "a-idx3-ubyte.gz", gzip.compress(data))
    for path in (raw, gz):
        array = read_idx(path)
        assert array.shape == (3, 2, 2) and array.dtype == np.uint8 and array[2, 1, 1] == 11


@pytest.mark.parametrize(
    "data, message",
    [
        (_idx_images(3)[:-5], "truncated"),
        (_idx_images(3)[:10], "truncated"),
        (_idx_images(3) + b"\x00", "longer"),
        (b"\x01\x02\x08\x03" + _idx_images(3)[4:], "not an IDX"),
        (b"\x00\x00\x07\x03" + _idx_images(3)[4:], "magic"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path, data, message):
    with pytest.raises(IdxFormatError, match=message):
        read_idx(_write(tmp_path / "bad-idx3-ubyte", data))


def test_read_idx_truncated_gzip(tmp_path):
    blob = gzip.compress(_idx_images(50))
    with pytest.raises(IdxFormatError, match="truncated"):
        read_idx(_write(tmp_path / "bad-idx3-ubyte.gz", blob[: len(blob) // 2]))


# ---------------------------------------------------------------------------------------------- loaders


def test_load_mnist_embedded():
    test = load_mnist("test")
    assert test.source == "embedded"
    images, labels = test
    assert images.shape == (300, 28, 28) and images.dtype == np.uint8 and labels.shape == (300,)
    assert test.indices.tolist() == list(range(300))
    assert not images.flags.writeable
    train = load_mnist("train")
    assert train.indices.tolist() == list(range(1000)) + list(range(50_000, 50_300))
    assert set(np.unique(train.labels)) == set(range(10))
    with pytest.raises(ValueError, match="split"):
        load_mnist("valid")


def test_load_mnist_without_data_and_a_cache_folder_asks_for_files(tmp_path):
    paths.cache_dir().mkdir(parents=True)  # e.g. music was downloaded before; no MNIST, no network
    with pytest.raises(DataNotFoundError, match="t10k-images-idx3-ubyte"):
        load_mnist("test")


@needs_shared_data
def test_load_mnist_full_matches_embedded():
    full = load_mnist("test", SHARED)
    assert full.images.shape == (10_000, 28, 28) and full.source != "embedded"
    assert np.bincount(full.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    embedded = load_mnist("test")
    np.testing.assert_array_equal(embedded.images, full.images[:300])
    np.testing.assert_array_equal(embedded.labels, full.labels[:300])
    train = load_mnist("train", SHARED)
    embedded_train = load_mnist("train")
    np.testing.assert_array_equal(embedded_train.images, train.images[embedded_train.indices])


def test_load_brodatz_embedded():
    textures = load_brodatz()
    assert textures.source == "embedded" and textures.names == brodatz.EMBEDDED_PLATES
    array, names = textures
    assert array.shape == (4, 128, 128) and array.dtype == np.float32
    assert 0.0 <= array.min() and array.max() <= 1.0 and 0.3 < array.mean() < 0.7
    with pytest.raises(ValueError, match="unknown Brodatz"):
        load_brodatz(["D999"])
    with pytest.raises(DataNotFoundError, match="D8.png"):  # not embedded, no data, no network
        load_brodatz(["D8"])


@needs_shared_data
def test_load_brodatz_full_and_embedded_crops():
    full = load_brodatz(data_dir=SHARED)
    assert full.names == brodatz.BRODATZ_PLATES and full.textures.shape == (20, 300, 300)
    embedded = load_brodatz()
    for i, name in enumerate(embedded.names):
        plate = full.textures[full.names.index(name)]
        np.testing.assert_array_equal(embedded.textures[i], plate[86:214, 86:214])  # centre crop, no rescale
    with Image.open(brodatz.EMBEDDED_DIR / "brodatz_D4.png") as im:
        assert im.mode == "L" and im.size == (128, 128)


@needs_shared_data
def test_brodatz_scans_keep_their_own_grey_levels():
    """The scans, area-averaged to 300x300, keep each scan's mean grey (the normalised plates all sit at 0.5), and the
    environment cuts its digits from them when told to."""
    from rladder_stream.envs.textured_mnist import episode_source

    scans = brodatz.load_brodatz_scans(data_dir=SHARED)
    assert scans.names == tuple(brodatz.BRODATZ_SCANS) and scans.textures.shape == (14, 300, 300)
    for name, plate in zip(scans.names, scans.textures):
        with Image.open(SHARED / "brodatz" / brodatz.BRODATZ_SCANS[name][0]) as im:
            original = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
        assert abs(plate.mean() - original.mean()) < 0.002, name
        assert abs(plate.std() - original.std()) < 0.1, name  # averaging 2x2 pixels smooths, it does not flatten
    means = scans.textures.mean(axis=(1, 2))
    assert means.max() - means.min() > 0.4
    normalised = load_brodatz(data_dir=SHARED).textures.mean(axis=(1, 2))
    assert normalised.max() - normalised.min() < 0.05
    source = episode_source("train", data_dir=SHARED, textures="brodatz-scans")
    assert "14 scans at their own grey levels" in source.source
    images = source.episodes(np.random.default_rng(0), 64, None)["image"]
    assert images.mean(axis=(1, 2)).std() > 1.5 * np.mean([episode_source("train", data_dir=SHARED).episodes(
        np.random.default_rng(0), 64, None)["image"].mean(axis=(1, 2)).std()])


def test_brodatz_scans_need_the_data(tmp_path):
    with pytest.raises(DataNotFoundError, match="D1.png"):  # no embedded copy, no data, no network
        brodatz.load_brodatz_scans(data_dir=tmp_path)


def test_embedded_files_are_small():
    total = sum(p.stat().st_size for p in brodatz.EMBEDDED_DIR.iterdir() if p.suffix in {".npz", ".png"})
    assert total < 1_000_000


class _Response:
    """A urlopen response with a Content-Length header."""

    def __init__(self, payload: bytes):
        import io

        self.body, self.headers = io.BytesIO(payload), {"Content-Length": str(len(payload))}

    def read(self, n: int = -1) -> bytes:
        return self.body.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_reports_progress_and_where_it_goes(tmp_path, monkeypatch, capsys):
    payload = bytes(range(256)) * 20_000  # 5 MB: progress lines at every 10 %
    monkeypatch.setattr(paths, "_urlopen", lambda url, timeout=None: _Response(payload))
    got = fetch("music/Big.mat", _sha(payload), None, "https://example.invalid/Big.mat")
    err = capsys.readouterr().err.splitlines()
    assert f"into {got}" in err[0] and "(5.1 MB)" in err[0]
    assert any("%)" in line for line in err[1:-1]) and err[-1].endswith("5.1 MB downloaded")


def test_download_tries_a_passing_failure_again_but_not_a_lasting_one(tmp_path, monkeypatch):
    import time

    payload = b"retry me" * 10
    calls = []

    def flaky(url, timeout=None):
        calls.append(url)
        if len(calls) == 1:
            raise urllib.error.URLError(TimeoutError("timed out"))
        return _Response(payload)

    monkeypatch.setattr(time, "sleep", lambda s: None)
    monkeypatch.setattr(paths, "_urlopen", flaky)
    assert fetch("music/Flaky.mat", _sha(payload), None, "https://example.invalid/Flaky.mat").read_bytes() == payload
    assert len(calls) == 2
    calls.clear()
    monkeypatch.setattr(paths, "_urlopen", lambda url, timeout=None: calls.append(url) or (_ for _ in ()).throw(
        urllib.error.HTTPError(url, 404, "Not Found", {}, None)))
    with pytest.raises(DataNotFoundError, match="404"):
        fetch("music/Gone.mat", "ab" * 32, None, "https://example.invalid/Gone.mat")
    assert len(calls) == 1
