"""The MNIST, Fashion-MNIST and CIFAR-10 loaders, offline.

Downloads come from a local HTTP server on 127.0.0.1 serving small files in the real
formats that the tests write; the expected checksums are patched to theirs. No test
touches the real network. One test reads the real MNIST where the project has it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import os
import re
import socket
import sys
import tarfile
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from xconv.data import _download, load_cifar10, load_fashion_mnist, load_mnist

REAL_MNIST = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mnist"
IDX_NAMES = _download.IDX_FILES
CIFAR_NAMES = _download.CIFAR_FILES


# -- small files in the real formats ----------------------------------------------------


def _idx(array):
    """The IDX bytes of a uint8 array."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _mnist_like(seed=0, n_train=5, n_test=3):
    """{name: content} of the four IDX files, and the arrays they hold."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    return {name: _idx(a) for name, a in arrays.items()}, arrays


def _cifar_like(seed=0, per_batch=2):
    """{name: content} of the six CIFAR-10 batch files (a few records each)."""
    rng = np.random.default_rng(seed)
    files = {}
    for name in CIFAR_NAMES:
        labels = rng.integers(0, 10, (per_batch, 1), dtype=np.uint8)
        pixels = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        files[name] = np.concatenate([labels, pixels], axis=1).tobytes()
    return files


def _cifar_tar(files, *, skip=()):
    """A cifar-10-binary.tar.gz holding `files` under cifar-10-batches-bin/."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            if name in skip:
                continue
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _sha256(content):
    return hashlib.sha256(content).hexdigest()


def _write(folder, files, *, gz):
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content, compresslevel=1))
        else:
            (folder / name).write_bytes(content)
    return folder


def _cache_files(folder):
    """Every file under `folder`, relative, sorted (to see what the cache kept)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# -- the local mirror -------------------------------------------------------------------


class _Mirror:
    """A folder served over HTTP on 127.0.0.1, remembering each request's path."""

    def __init__(self, root):
        self.root = root
        self.requests = []
        handler = functools.partial(_Handler, self, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def put(self, dataset, name, content):
        path = self.root / dataset / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, mirror, *args, **kwargs):
        self.mirror = mirror
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.mirror.requests.append(self.path)
        super().do_GET()

    def log_message(self, format, *args):  # quiet
        pass


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local mirror, with XCONV_DATA_MIRROR pointing at it and a fresh cache folder."""
    served = _Mirror(tmp_path / "served")
    monkeypatch.setenv("XCONV_DATA_MIRROR", served.url)
    monkeypatch.setenv("XCONV_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield served
    served.close()


@pytest.fixture
def mnist_served(mirror, monkeypatch):
    """The small MNIST on the mirror (gzipped), its checksums patched in; the arrays."""
    files, arrays = _mnist_like()
    for name, content in files.items():
        mirror.put("mnist", f"{name}.gz", gzip.compress(content))
    monkeypatch.setitem(_download.SHA256, "mnist", {n: _sha256(c) for n, c in files.items()})
    return arrays


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_split(split, images, labels, channels=1):
    X, y = split
    assert X.dtype == np.float32
    assert y.dtype == np.int64
    assert X.shape == (len(labels), channels, *images.shape[-2:])
    np.testing.assert_array_equal(X.reshape(images.shape), images / np.float32(255))
    np.testing.assert_array_equal(y, labels)


def _check_mnist(result, arrays):
    train, test = result
    _check_split(train, arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"])
    _check_split(test, arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"])


# -- reading a folder -------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
def test_path_plain_and_gzipped(tmp_path, loader, gz):
    files, arrays = _mnist_like()
    folder = _write(tmp_path / "data", files, gz=gz)
    _check_mnist(loader(folder), arrays)
    _check_mnist(loader(str(folder)), arrays)


def test_path_with_some_files_gzipped(tmp_path):
    files, arrays = _mnist_like()
    _write(tmp_path, dict(list(files.items())[:2]), gz=True)
    _write(tmp_path, dict(list(files.items())[2:]), gz=False)
    _check_mnist(load_mnist(tmp_path), arrays)


def test_missing_file_names_the_expected_files_and_folder(tmp_path):
    files, _ = _mnist_like()
    del files["t10k-labels-idx1-ubyte"]
    _write(tmp_path, files, gz=False)
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte") as info:
        load_mnist(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "train-images-idx3-ubyte" in str(info.value)
    with pytest.raises(FileNotFoundError, match="existing folder"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="`path` must be a folder"):
        load_mnist(3)


def _damaged(name, content):
    """Ways to damage one IDX file, with the message each must give."""
    return [
        (content[:-1], "truncated"),
        (content + b"\x00", "too long"),
        (content[:10], "truncated IDX header" if name.startswith("train-images") else "truncated"),
        (b"\x01" + content[1:], "magic number"),
        (content[:2] + b"\x0d" + content[3:], r"type code 0x0d \(float\)"),
        (content[:3] + b"\x02" + content[4:], "2 dimensions, expected"),
        (b"", "too short"),
    ]


@pytest.mark.parametrize("index", range(7))
@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_malformed_idx_files_are_refused_by_name(tmp_path, name, index):
    files, _ = _mnist_like()
    content, message = _damaged(name, files[name])[index]
    files[name] = content
    _write(tmp_path, files, gz=False)
    with pytest.raises(ValueError, match=message) as info:
        load_mnist(tmp_path)
    assert name in str(info.value)


def test_truncated_gzip_is_refused_by_name(tmp_path):
    files, _ = _mnist_like()
    _write(tmp_path, files, gz=True)
    packed = tmp_path / "train-labels-idx1-ubyte.gz"
    packed.write_bytes(packed.read_bytes()[:-9])
    with pytest.raises(ValueError, match="not a valid gzip file") as info:
        load_mnist(tmp_path)
    assert str(packed) in str(info.value)


def test_mismatched_files_are_refused(tmp_path):
    files, arrays = _mnist_like()
    files["train-labels-idx1-ubyte"] = _idx(arrays["train-labels-idx1-ubyte"][:-1])
    _write(tmp_path / "count", files, gz=False)
    with pytest.raises(ValueError, match="holds 5 images but train-labels-idx1-ubyte 4"):
        load_mnist(tmp_path / "count")
    files, arrays = _mnist_like()
    files["t10k-labels-idx1-ubyte"] = _idx(np.array([1, 10, 2], np.uint8))
    _write(tmp_path / "label", files, gz=False)
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: label 10 out of range"):
        load_mnist(tmp_path / "label")
    files, arrays = _mnist_like()
    files["t10k-images-idx3-ubyte"] = _idx(np.zeros((3, 27, 28), np.uint8))
    _write(tmp_path / "size", files, gz=False)
    with pytest.raises(ValueError, match="training images are"):
        load_mnist(tmp_path / "size")


def test_cifar10_from_the_extracted_folder_and_the_archive(tmp_path):
    files = _cifar_like()
    _write(tmp_path / "extracted" / "cifar-10-batches-bin", files, gz=False)
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "cifar-10-binary.tar.gz").write_bytes(_cifar_tar(files))
    records = [np.frombuffer(files[n], np.uint8).reshape(-1, 3073) for n in CIFAR_NAMES]
    train = np.concatenate(records[:5])
    for folder in (
        tmp_path / "extracted",
        tmp_path / "extracted" / "cifar-10-batches-bin",
        tmp_path / "archive",
    ):
        (X_train, y_train), (X_test, y_test) = load_cifar10(folder)
        assert X_train.shape == (10, 3, 32, 32)
        assert X_test.shape == (2, 3, 32, 32)
        _check_split(
            (X_train, y_train), train[:, 1:].reshape(10, 3, 32, 32), train[:, 0], channels=3
        )
        _check_split(
            (X_test, y_test), records[5][:, 1:].reshape(2, 3, 32, 32), records[5][:, 0], channels=3
        )


def test_cifar10_channels_are_the_colour_planes(tmp_path):
    files = _cifar_like()
    # one red, one green, one blue image: the planes are 1024 bytes each
    plane = [bytes([255] * 1024), bytes(1024)]
    files["test_batch.bin"] = b"".join(
        bytes([k]) + plane[k != 0] + plane[k != 1] + plane[k != 2] for k in range(3)
    )
    _write(tmp_path / "cifar-10-batches-bin", files, gz=False)
    _, (X_test, y_test) = load_cifar10(tmp_path)
    np.testing.assert_array_equal(X_test.max(axis=(2, 3)), np.eye(3, dtype=np.float32))
    np.testing.assert_array_equal(y_test, [0, 1, 2])


def test_cifar10_damaged_or_missing_files_are_refused(tmp_path):
    files = _cifar_like()
    files["data_batch_3.bin"] = files["data_batch_3.bin"][:-1]
    _write(tmp_path / "short" / "cifar-10-batches-bin", files, gz=False)
    with pytest.raises(ValueError, match=r"data_batch_3.bin: 6145 bytes is not a whole number"):
        load_cifar10(tmp_path / "short")
    files = _cifar_like()
    files["test_batch.bin"] = bytes([12]) + files["test_batch.bin"][1:]
    _write(tmp_path / "label" / "cifar-10-batches-bin", files, gz=False)
    with pytest.raises(ValueError, match=re.escape("test_batch.bin: label 12 out of range")):
        load_cifar10(tmp_path / "label")
    (tmp_path / "partial").mkdir()
    archive = _cifar_tar(_cifar_like(), skip=("data_batch_5.bin",))
    (tmp_path / "partial" / "cifar-10-binary.tar.gz").write_bytes(archive)
    with pytest.raises(ValueError, match=re.escape("lacks cifar-10-batches-bin/data_batch_5.bin")):
        load_cifar10(tmp_path / "partial")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=re.escape("neither cifar-10-binary.tar.gz nor")):
        load_cifar10(tmp_path / "empty")


# -- downloading ------------------------------------------------------------------------


def test_download_from_the_mirror_then_reuse_the_cache(mirror, mnist_served, tmp_path):
    _check_mnist(load_mnist(), mnist_served)
    assert sorted(mirror.requests) == sorted(f"/mnist/{n}.gz" for n in IDX_NAMES)
    # the cache holds the checked, decompressed files (and their checksums), nothing else
    cache = tmp_path / "cache" / "mnist"
    assert _cache_files(cache) == sorted([*IDX_NAMES, *(f"{n}.sha256" for n in IDX_NAMES)])
    # a second load downloads nothing
    _check_mnist(load_mnist(), mnist_served)
    assert len(mirror.requests) == 4


def test_a_re_compressed_mirror_still_checks(mirror, mnist_served):
    # the checksums are of the content: gzip bytes that differ do not matter
    for name in IDX_NAMES:
        path = mirror.root / "mnist" / f"{name}.gz"
        content = gzip.decompress(path.read_bytes())
        path.write_bytes(gzip.compress(content, compresslevel=1, mtime=12345))
    _check_mnist(load_mnist(), mnist_served)


def test_corrupted_content_is_refused_and_not_kept(mirror, mnist_served, tmp_path):
    name = "train-images-idx3-ubyte"
    path = mirror.root / "mnist" / f"{name}.gz"
    content = bytearray(gzip.decompress(path.read_bytes()))
    content[100] ^= 0xFF  # a valid IDX file with one pixel changed
    path.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(ValueError, match=f"{name} has sha256 .* expected .*not kept"):
        load_mnist()
    assert name not in _cache_files(tmp_path / "cache" / "mnist")
    assert not [f for f in _cache_files(tmp_path / "cache") if f.endswith(".part")]


def test_truncated_download_is_refused_and_not_kept(mirror, mnist_served, tmp_path):
    path = mirror.root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(
        ValueError, match=re.escape("t10k-labels-idx1-ubyte.gz: not a valid gzip file")
    ):
        load_mnist()
    cached = _cache_files(tmp_path / "cache" / "mnist")
    assert "t10k-labels-idx1-ubyte" not in cached
    assert all(not f.startswith(".") for f in cached)


def test_a_damaged_cached_file_is_removed_and_downloaded_again(mirror, mnist_served, tmp_path):
    load_mnist()
    cached = tmp_path / "cache" / "mnist" / "t10k-images-idx3-ubyte"
    cached.write_bytes(cached.read_bytes()[:-1] + b"\x07")
    with pytest.warns(UserWarning, match=r"corrupted: its sha256 is .* downloaded again"):
        _check_mnist(load_mnist(), mnist_served)
    assert mirror.requests.count("/mnist/t10k-images-idx3-ubyte.gz") == 2
    _check_mnist(load_mnist(), mnist_served)  # silent: the copy is good again


def test_no_network_names_the_url_and_how_to_place_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XCONV_DATA_MIRROR", f"http://127.0.0.1:{_closed_port()}/")
    monkeypatch.setenv("XCONV_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with pytest.raises(ConnectionError) as info:
        load_mnist()
    message = str(info.value)
    assert "/mnist/train-images-idx3-ubyte.gz" in message
    assert "`path=`" in message
    assert str(tmp_path / "cache" / "mnist") in message
    assert _cache_files(tmp_path / "cache") == []


def test_missing_file_on_the_mirror_is_a_download_error(mirror, mnist_served):
    (mirror.root / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(ConnectionError, match=r"t10k-images-idx3-ubyte\.gz.*404"):
        load_mnist()


def test_files_placed_by_hand_in_the_cache_folder(tmp_path, monkeypatch):
    files, arrays = _mnist_like()
    monkeypatch.setitem(_download.SHA256, "mnist", {n: _sha256(c) for n, c in files.items()})
    monkeypatch.setenv("XCONV_DATA_MIRROR", f"http://127.0.0.1:{_closed_port()}/")
    monkeypatch.setenv("XCONV_DATA_DIR", str(tmp_path / "cache"))
    # two gzipped as downloaded, two decompressed
    _write(tmp_path / "cache" / "mnist", dict(list(files.items())[:2]), gz=True)
    _write(tmp_path / "cache" / "mnist", dict(list(files.items())[2:]), gz=False)
    _check_mnist(load_mnist(), arrays)


def test_unknown_checksum_warns_then_pins_the_content(mirror, monkeypatch, tmp_path):
    files, arrays = _mnist_like(seed=4)
    for name, content in files.items():
        mirror.put("fashion_mnist", f"{name}.gz", gzip.compress(content))
    assert set(_download.SHA256["fashion_mnist"].values()) == {None}  # not known yet
    with pytest.warns(UserWarning, match="unverified") as record:
        _check_mnist(load_fashion_mnist(), arrays)
    assert len(record) == 4
    assert _sha256(files["train-images-idx3-ubyte"]) in " ".join(str(w.message) for w in record)
    # later loads check against the recorded sha256: silent, and nothing downloaded
    _check_mnist(load_fashion_mnist(), arrays)
    assert len(mirror.requests) == 4
    cached = tmp_path / "cache" / "fashion_mnist" / "train-labels-idx1-ubyte"
    cached.write_bytes(cached.read_bytes()[:-1] + b"\x09")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _check_mnist(load_fashion_mnist(), arrays)  # and downloaded again (unverified)
    messages = [str(w.message) for w in record]
    assert any(re.search("corrupted.*removed from the cache", m) for m in messages), messages
    assert len(mirror.requests) == 5


def test_unknown_checksum_of_a_file_placed_by_hand_warns(tmp_path, monkeypatch):
    files, arrays = _mnist_like(seed=6)
    monkeypatch.setenv("XCONV_DATA_MIRROR", f"http://127.0.0.1:{_closed_port()}/")
    monkeypatch.setenv("XCONV_DATA_DIR", str(tmp_path / "cache"))
    _write(tmp_path / "cache" / "fashion_mnist", files, gz=False)
    with pytest.warns(UserWarning, match="no checksum is known for this file") as record:
        _check_mnist(load_fashion_mnist(), arrays)
    assert len(record) == 4


def test_unknown_checksum_but_the_authors_file_passes_silently(mirror, monkeypatch):
    files, arrays = _mnist_like(seed=5)
    published = {}
    for name, content in files.items():
        packed = gzip.compress(content)
        mirror.put("fashion_mnist", f"{name}.gz", packed)
        published[f"{name}.gz"] = hashlib.md5(packed, usedforsecurity=False).hexdigest()
    monkeypatch.setitem(_download.ARCHIVE_MD5, "fashion_mnist", published)
    _check_mnist(load_fashion_mnist(), arrays)  # filterwarnings=error: no warning


def test_cifar10_download_checks_each_batch(mirror, monkeypatch, tmp_path):
    files = _cifar_like()
    mirror.put("cifar10", "cifar-10-binary.tar.gz", _cifar_tar(files))
    checksums = {f"cifar-10-batches-bin/{n}": _sha256(c) for n, c in files.items()}
    monkeypatch.setitem(_download.SHA256, "cifar10", checksums)
    (X_train, _), (X_test, _) = load_cifar10()
    assert X_train.shape == (10, 3, 32, 32)
    assert X_test.shape == (2, 3, 32, 32)
    assert mirror.requests == ["/cifar10/cifar-10-binary.tar.gz"]
    cached = _cache_files(tmp_path / "cache" / "cifar10" / "cifar-10-batches-bin")
    assert [f for f in cached if not f.endswith(".sha256")] == sorted(CIFAR_NAMES)
    load_cifar10()
    assert len(mirror.requests) == 1
    # one batch changed: the archive is refused and nothing is kept
    wrong = dict(checksums, **{"cifar-10-batches-bin/data_batch_2.bin": "0" * 64})
    monkeypatch.setitem(_download.SHA256, "cifar10", wrong)
    monkeypatch.setenv("XCONV_DATA_DIR", str(tmp_path / "other"))
    with pytest.raises(ValueError, match=re.escape("data_batch_2.bin has sha256")):
        load_cifar10()
    assert _cache_files(tmp_path / "other") == []


def test_download_without_pooch_says_what_to_install(tmp_path, monkeypatch):
    # pooch names the default cache folder
    monkeypatch.delenv("XCONV_DATA_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "pooch", None)
    with pytest.raises(ImportError, match=r"xconv\[data\]"):
        load_mnist()


def test_default_cache_folder_is_the_user_cache(monkeypatch):
    pooch = pytest.importorskip("pooch")
    monkeypatch.delenv("XCONV_DATA_DIR", raising=False)
    assert _download.cache_dir() == Path(pooch.os_cache("xconv"))
    monkeypatch.setenv("XCONV_DATA_DIR", os.path.join("~", "xconv-data"))
    assert _download.cache_dir() == Path.home() / "xconv-data"


# -- the real MNIST ---------------------------------------------------------------------


@pytest.mark.skipif(
    not REAL_MNIST.is_dir(), reason=f"the real MNIST is not at {REAL_MNIST} on this machine"
)
def test_real_mnist():
    (X_train, y_train), (X_test, y_test) = load_mnist(REAL_MNIST)
    assert X_train.shape == (60000, 1, 28, 28)
    assert X_test.shape == (10000, 1, 28, 28)
    assert X_train.dtype == X_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert float(X_train.min()) == 0.0
    assert float(X_train.max()) == 1.0
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # the checksums the downloader demands are those of these files
    for name in IDX_NAMES:
        content = gzip.decompress((REAL_MNIST / f"{name}.gz").read_bytes())
        assert _sha256(content) == _download.SHA256["mnist"][name], name
