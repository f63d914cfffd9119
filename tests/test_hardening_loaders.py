"""The dataset loaders with hostile files and servers (issue #27), and xconv.data with
hostile arguments.

Every reader is bounded by its header before it inflates or allocates; a download has
an overall deadline, holds nothing unchecked in the cache (also after a kill), and a
bad cached file is never kept. Servers are local (127.0.0.1), times tiny. A bad
argument is a TypeError or ValueError naming it (the known defects that
test_hostile_arguments.py found, fixed).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import threading
import time
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
import test_loaders as loaders
from test_loaders import _cache_files, _check_mnist, _cifar_like, _cifar_tar, _idx, _mnist_like
from test_loaders import _write as _write_files

from xconv.data import (
    _download,
    _formats,
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    to_categorical,
    train_test_split,
)

MiB = 1 << 20


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local mirror, with XCONV_DATA_MIRROR pointing at it and a fresh cache folder."""
    served = loaders._Mirror(tmp_path / "served")
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
    checksums = {n: hashlib.sha256(c).hexdigest() for n, c in files.items()}
    monkeypatch.setitem(_download.SHA256, "mnist", checksums)
    return arrays


def _warnings(function):
    """What `function` returned, and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = function()
    return result, [str(w.message) for w in record]


def _idx_header(shape):
    return bytes([0, 0, 0x08, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


@functools.cache
def _bomb(shape, inflated):
    """A gzip file whose IDX header declares `shape` but which inflates to `inflated` bytes."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(MiB)
    parts = [packer.compress(_idx_header(shape))]
    parts += [packer.compress(block) for _ in range(inflated // MiB)]
    parts.append(packer.flush())
    return b"".join(parts)


def _folder_with(tmp_path, name):
    """A folder of the four small MNIST files but `name`, which the test writes."""
    files, _ = _mnist_like()
    return _write_files(tmp_path / "data", {n: c for n, c in files.items() if n != name}, gz=False)


def _peak(function):
    """(the exception `function` raised, the peak of traced memory while it ran)."""
    tracemalloc.start()
    try:
        function()
    except Exception as exc:  # the caller checks which
        raised = exc
    else:
        raised = None
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return raised, peak


# -- bounded reading of a folder --------------------------------------------------------


def test_a_gzip_inflating_far_past_its_header_is_refused_with_little_memory(tmp_path):
    name = "train-labels-idx1-ubyte"
    folder = _folder_with(tmp_path, name)
    (folder / f"{name}.gz").write_bytes(_bomb((5,), 32 * MiB))  # declares 5 labels
    raised, peak = _peak(lambda: load_mnist(folder))
    assert isinstance(raised, ValueError), raised
    assert "too long" in str(raised)
    assert f"{name}.gz" in str(raised)
    assert peak < 8 * MiB, peak


def test_a_sparse_file_far_past_its_header_is_refused_unread(tmp_path):
    name = "t10k-images-idx3-ubyte"
    folder = _folder_with(tmp_path, name)
    with (folder / name).open("wb") as file:
        file.write(_idx_header((3, 28, 28)))
        file.truncate(4 << 30)  # 4 GiB, sparse: no disk used
    raised, peak = _peak(lambda: load_mnist(folder))
    assert isinstance(raised, ValueError), raised
    assert f"too long: {4 << 30} bytes" in str(raised)
    assert peak < 8 * MiB, peak


def test_a_header_declaring_more_than_a_dataset_holds_is_refused_from_it(tmp_path):
    name = "train-images-idx3-ubyte"
    folder = _folder_with(tmp_path, name)
    (folder / f"{name}.gz").write_bytes(gzip.compress(_idx_header((2**31, 28, 28))))
    with pytest.raises(ValueError, match=r"declares \d+ bytes, more than the \d+ a dataset"):
        load_mnist(folder)


def test_a_cifar_archive_member_declaring_too_much_is_refused_from_its_header(
    tmp_path, monkeypatch
):
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(_cifar_tar(_cifar_like()))
    monkeypatch.setattr(_formats, "MAX_CONTENT_BYTES", 1000)
    with pytest.raises(ValueError, match="declares 6146 bytes, more than the 1000"):
        load_cifar10(tmp_path)
    monkeypatch.setattr(_formats, "MAX_ARCHIVE_BYTES", 10_000)
    monkeypatch.setattr(_formats, "MAX_CONTENT_BYTES", 1 << 30)
    with pytest.raises(ValueError, match="more than 10000 bytes in all"):
        load_cifar10(tmp_path)


def test_a_cifar_batch_file_too_large_is_refused_before_it_is_read(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for name, content in _cifar_like().items():
        (folder / name).write_bytes(content)
    monkeypatch.setattr(_formats, "MAX_CONTENT_BYTES", 6000)
    with pytest.raises(ValueError, match="6146 bytes, more than the 6000"):
        load_cifar10(tmp_path)


# -- bounded downloads ------------------------------------------------------------------


def test_a_gzip_bomb_on_the_mirror_is_refused_and_not_kept(mirror, mnist_served, tmp_path):
    mirror.put("mnist", "train-labels-idx1-ubyte.gz", _bomb((5,), 32 * MiB))
    raised, peak = _peak(load_mnist)
    assert isinstance(raised, ValueError), raised
    assert "too long" in str(raised)
    assert peak < 8 * MiB, peak
    assert "train-labels-idx1-ubyte" not in _cache_files(tmp_path / "cache")


def test_a_download_larger_than_the_limit_is_refused(mirror, mnist_served, monkeypatch):
    monkeypatch.setattr(_download, "MAX_DOWNLOAD_BYTES", 100)
    with pytest.raises(ValueError, match=r"more than 100.*not kept"):
        load_mnist()


class _Drip(http.server.BaseHTTPRequestHandler):
    """Sends a file's headers, then one byte every 20 ms for as long as it is read."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        try:
            for _ in range(10_000):
                self.wfile.write(b"\x1f")
                self.wfile.flush()
                time.sleep(0.02)
        except OSError:  # the client gave up
            pass

    def log_message(self, format, *args):
        pass


def test_a_download_has_an_overall_deadline(tmp_path, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        monkeypatch.setenv("XCONV_DATA_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
        monkeypatch.setenv("XCONV_DATA_DIR", str(tmp_path / "cache"))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setattr(_download, "DOWNLOAD_DEADLINE", 0.3)
        monkeypatch.setattr(_download, "READ_TIMEOUT", 0.2)  # every read returns in time
        start = time.monotonic()
        with pytest.raises(ConnectionError, match=r"did not finish within 0\.3 s"):
            load_mnist()
        assert time.monotonic() - start < 0.9
        assert _cache_files(tmp_path / "cache") == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_what_a_killed_download_left_is_removed_by_the_next(mirror, mnist_served, tmp_path):
    folder = tmp_path / "cache" / "mnist"
    folder.mkdir(parents=True)
    stale = [
        folder / ".train-images-idx3-ubyte.gz.a1b2c3.part",  # an older version's download
        folder / ".train-images-idx3-ubyte.x7y8z9",  # a write killed before its rename
        folder / ".t10k-labels-idx1-ubyte.sha256.q1w2e3",
    ]
    running = folder / ".train-labels-idx1-ubyte.r4t5y6"  # another process, writing now
    old = time.time() - 3600
    for path in stale:
        path.write_bytes(b"half")
        os.utime(path, (old, old))
    running.write_bytes(b"half")
    _check_mnist(load_mnist(), mnist_served)
    assert not any(path.exists() for path in stale)
    assert running.exists()


HTML = gzip.compress(b"<html><body>503 Service Unavailable</body></html>\n")


def test_an_error_page_for_fashion_mnist_is_refused_and_not_cached(mirror, tmp_path):
    files, arrays = _mnist_like(seed=3)
    for name in files:
        mirror.put("fashion_mnist", f"{name}.gz", HTML)
    with pytest.raises(ValueError, match="not an IDX file"):
        load_fashion_mnist()
    assert _cache_files(tmp_path / "cache") == []
    for name, content in files.items():  # the mirror is fixed
        mirror.put("fashion_mnist", f"{name}.gz", gzip.compress(content))
    with pytest.warns(UserWarning, match="unverified"):
        _check_mnist(load_fashion_mnist(), arrays)


def test_an_error_page_for_cifar10_is_refused_and_not_cached(mirror, tmp_path):
    mirror.put("cifar10", "cifar-10-binary.tar.gz", HTML)
    with pytest.raises(ValueError, match="not a valid gzipped tar archive"):
        load_cifar10()
    assert _cache_files(tmp_path / "cache") == []


def test_an_error_page_cached_by_an_older_version_is_removed_and_downloaded_again(
    mirror, tmp_path
):
    files, arrays = _mnist_like(seed=3)
    for name, content in files.items():
        mirror.put("fashion_mnist", f"{name}.gz", gzip.compress(content))
    poisoned = tmp_path / "cache" / "fashion_mnist" / "train-images-idx3-ubyte"
    poisoned.parent.mkdir(parents=True)
    page = gzip.decompress(HTML)
    poisoned.write_bytes(page)
    poisoned.with_name(f"{poisoned.name}.sha256").write_text(hashlib.sha256(page).hexdigest())
    result, messages = _warnings(load_fashion_mnist)
    _check_mnist(result, arrays)
    assert any("not an IDX file" in m and "removed from the cache" in m for m in messages)
    assert "/fashion_mnist/train-images-idx3-ubyte.gz" in mirror.requests


# -- the cache folder -------------------------------------------------------------------


@pytest.mark.parametrize("where", ["sys", "proc", "file"])
def test_a_cache_folder_that_cannot_be_written_is_a_value_error(where, tmp_path, monkeypatch):
    if where == "file":
        (tmp_path / "a-file").write_text("")
        chosen = str(tmp_path / "a-file" / "cache")
    else:
        if not os.path.isdir(f"/{where}"):
            pytest.skip(f"/{where} is not mounted here")
        chosen = f"/{where}/xconv-cache"
    monkeypatch.setenv("XCONV_DATA_DIR", chosen)
    monkeypatch.setenv("XCONV_DATA_MIRROR", "http://127.0.0.1:9/")  # never reached
    with pytest.raises(ValueError, match=r"`XCONV_DATA_DIR` \(=.*\) cannot hold the dataset"):
        load_mnist()


def test_the_header_bound_reader_still_reads_real_formats(tmp_path):
    content = _idx(np.arange(12, dtype=np.uint8).reshape(3, 2, 2))
    (tmp_path / "x-idx3-ubyte.gz").write_bytes(gzip.compress(content))
    assert _formats.read_file(tmp_path, "x-idx3-ubyte") == content


# -- hostile arguments --------------------------------------------------------------------

LOADERS = [load_mnist, load_fashion_mnist, load_cifar10]


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_an_empty_or_too_long_path_is_a_value_error_naming_path(loader, tmp_path, monkeypatch):
    # the current folder holds every dataset's files: '' must still not read them
    _write_files(tmp_path, _mnist_like()[0], gz=False)
    _write_files(tmp_path / "cifar-10-batches-bin", _cifar_like(), gz=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"`path` must name a folder \('\.' for the current"):
        loader("")
    with pytest.raises(ValueError, match=r"`path`: cannot read 'xxx.*': File name too long"):
        loader("x" * 300)  # longer than NAME_MAX, not a raw OSError
    with pytest.raises(FileNotFoundError, match="`path` must be an existing folder"):
        loader(tmp_path / "nowhere")  # a missing folder, as before


@pytest.mark.parametrize(
    "function",
    [load_digits, functools.partial(to_categorical, [0, 2, 1])],
    ids=["load_digits", "to_categorical"],
)
@pytest.mark.parametrize("dtype", ["0:", "01", "a", ("a", "b")])
def test_a_dtype_numpy_chokes_or_warns_on_is_a_type_error_naming_dtype(function, dtype):
    # NumPy: a ValueError ('0:'), a SyntaxError ('01'), a DeprecationWarning ('a')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TypeError, match="`dtype` must be a floating dtype such as 'float32'"):
            function(dtype=dtype)
        assert function(dtype="f8")[0].dtype == np.float64  # a valid one, no warning


def test_to_categorical_bounds_n_classes_before_allocating(monkeypatch):
    def arange(*args, **kwargs):  # pragma: no cover - reached only by a regression
        raise AssertionError("np.arange called")

    monkeypatch.setattr(np, "arange", arange)
    for n_classes in (10**400, 2**62, 2**31):
        with pytest.raises(
            ValueError, match=r"`n_classes` must be at most 2\*\*31 - 1, got "
        ) as info:
            to_categorical([0, 2, 1], n_classes)
        assert len(str(info.value)) < 150  # 10**400 shortened
    with pytest.raises(ValueError, match=r"`y` holds the label 4611686018427387904: more classes"):
        to_categorical([0, 2**62])  # n_classes inferred from the labels
    monkeypatch.undo()
    assert to_categorical([0, 2, 1], 4).shape == (3, 4)


def test_train_test_split_refuses_y_none_by_name():
    with pytest.raises(TypeError, match=r"`y` must be the targets of `X` \(an array\), got None"):
        train_test_split(np.zeros((4, 2)), None)


@pytest.mark.parametrize("test_size", [10**400, -(10**400)])
def test_train_test_split_refuses_a_test_size_beyond_float_by_name(test_size):
    with pytest.raises(ValueError, match=r"`test_size` must be in \(0, 1\), got ") as info:
        train_test_split(np.zeros((4, 2)), np.arange(4), test_size=test_size)
    assert len(str(info.value)) < 150  # the 401 digits shortened
