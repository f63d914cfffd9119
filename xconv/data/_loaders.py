"""MNIST, Fashion-MNIST and CIFAR-10 from their original files, as NCHW float images."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from . import _download
from ._formats import (
    CIFAR_FOLDER,
    check_labels,
    read_cifar_batch,
    read_cifar_file,
    read_file,
    read_idx,
    read_tar_members,
)

__all__ = ["load_cifar10", "load_fashion_mnist", "load_mnist"]

Split = tuple[np.ndarray, np.ndarray]

CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"


def load_mnist(path: str | os.PathLike[str] | None = None) -> tuple[Split, Split]:
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grey.

    With `path`, reads the four original IDX files from that folder, each plain or
    gzipped (``.gz``): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``. Their format is checked
    strictly; their content is not compared with a checksum, so a folder of files in
    the same format (your own subset, or a variant) loads too.

    Without `path`, uses the cache folder ``$XCONV_DATA_DIR/mnist`` (default: the user
    cache folder, ``pooch.os_cache("xconv")``), downloading what is missing from
    https://ossci-datasets.s3.amazonaws.com/mnist/ (PyTorch's copy: the original host,
    yann.lecun.com, is often unavailable) or from ``$XCONV_DATA_MIRROR/mnist/``. Each
    file's decompressed content must have the SHA-256 of the original (listed in
    ``xconv/data/README.md``), so a mirror that re-compresses still checks; a file that
    does not is not kept. Downloading needs pooch (``pip install 'xconv[data]'``).

    Args:
        path: a folder holding the original files, or None to download and cache them.

    Returns:
        ``((X_train, y_train), (X_test, y_test))``: X float32 in [0, 1] (pixel / 255),
        y int64 labels 0..9, host NumPy arrays.

    Shape:
        X_train: (60000, 1, 28, 28); y_train: (60000,); X_test: (10000, 1, 28, 28);
        y_test: (10000,).

    Raises:
        TypeError: `path` is not a str or path.
        FileNotFoundError: `path` is not an existing folder, or a file is missing from
            it (the message names the expected names and the folder).
        ValueError: `path` is '' (pass '.' for the current folder), holds a NUL or
            cannot be looked up (a name too long for the file system); a file is
            malformed, truncated or does not match its partner (the message names it),
            or a download failed its checksum.
        ConnectionError: a download failed (the message names the URL and how to place
            the files by hand).
        ImportError: downloading without pooch installed.

    Example:
        >>> import gzip, pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> def idx(shape, values):
        ...     dims = b"".join(n.to_bytes(4, "big") for n in shape)
        ...     return bytes([0, 0, 8, len(shape)]) + dims + bytes(values)
        >>> for part, n in (("train", 3), ("t10k", 2)):
        ...     images = idx((n, 28, 28), [255] * (n * 28 * 28))
        ...     _ = (folder / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        ...     _ = (folder / f"{part}-labels-idx1-ubyte").write_bytes(idx((n,), range(n)))
        >>> (X_train, y_train), (X_test, y_test) = load_mnist(folder)
        >>> X_train.shape, X_train.dtype, float(X_train.max()), y_test
        ((3, 1, 28, 28), dtype('float32'), 1.0, array([0, 1]))
    """
    return _load_idx("mnist", path)


def load_fashion_mnist(path: str | os.PathLike[str] | None = None) -> tuple[Split, Split]:
    """Fashion-MNIST (Zalando): 60,000 training and 10,000 test images of clothes, 28x28.

    The same files, names and format as MNIST (see `load_mnist`); the labels are
    0 T-shirt/top, 1 trouser, 2 pullover, 3 dress, 4 coat, 5 sandal, 6 shirt,
    7 sneaker, 8 bag, 9 ankle boot. Without `path`, downloads from the authors'
    repository, https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/,
    or from ``$XCONV_DATA_MIRROR/fashion_mnist/``, into ``$XCONV_DATA_DIR/fashion_mnist``.

    **Unverified checksums:** xconv knows no trustworthy SHA-256 of the decompressed
    files yet (the authors publish only MD5s of the ``.gz`` files). A download is
    accepted when its ``.gz`` bytes have the authors' MD5; otherwise (a mirror that
    re-compresses) it is accepted with a warning that gives its content's SHA-256.
    Either way that SHA-256 is stored beside the cached file and checked on every
    later load. To make the check strict, fill in ``xconv.data._download.SHA256``
    from files whose MD5 matched.

    Args:
        path: a folder holding the original files, or None to download and cache them.

    Returns:
        ``((X_train, y_train), (X_test, y_test))`` as `load_mnist` returns them.

    Shape:
        X_train: (60000, 1, 28, 28); y_train: (60000,); X_test: (10000, 1, 28, 28);
        y_test: (10000,).

    Raises:
        TypeError, FileNotFoundError, ValueError, ConnectionError, ImportError: as
            `load_mnist`.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> def idx(shape, values):
        ...     dims = b"".join(n.to_bytes(4, "big") for n in shape)
        ...     return bytes([0, 0, 8, len(shape)]) + dims + bytes(values)
        >>> for part in ("train", "t10k"):
        ...     _ = (folder / f"{part}-images-idx3-ubyte").write_bytes(idx((1, 28, 28), [0] * 784))
        ...     _ = (folder / f"{part}-labels-idx1-ubyte").write_bytes(idx((1,), [9]))
        >>> (X_train, y_train), _ = load_fashion_mnist(folder)
        >>> X_train.shape, y_train
        ((1, 1, 28, 28), array([9]))
    """
    return _load_idx("fashion_mnist", path)


def load_cifar10(path: str | os.PathLike[str] | None = None) -> tuple[Split, Split]:
    """CIFAR-10 (A. Krizhevsky): 50,000 training and 10,000 test colour images, 32x32.

    Reads the *binary* version (never the Python pickle version: xconv does not
    unpickle). With `path`, a folder holding ``cifar-10-binary.tar.gz`` or its extracted
    ``cifar-10-batches-bin/`` folder (or that folder itself), with
    ``data_batch_1.bin`` .. ``data_batch_5.bin`` (training, in that order) and
    ``test_batch.bin``; each record is 1 label byte and 3072 pixel bytes (the red,
    green and blue planes). The labels are 0 airplane, 1 automobile, 2 bird, 3 cat,
    4 deer, 5 dog, 6 frog, 7 horse, 8 ship, 9 truck.

    Without `path`, downloads https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz
    (or ``$XCONV_DATA_MIRROR/cifar10/cifar-10-binary.tar.gz``) and caches the six
    batch files in ``$XCONV_DATA_DIR/cifar10/cifar-10-batches-bin/``.

    **Unverified checksums:** xconv knows no trustworthy SHA-256 of the six batch files
    yet (the author publishes the MD5 of the archive only). A download is accepted
    when the archive has the author's MD5, otherwise with a warning that gives each
    file's SHA-256; that value is stored beside the cached file and checked on every
    later load. To make the check strict, fill in ``xconv.data._download.SHA256``.

    Args:
        path: a folder holding the original files, or None to download and cache them.

    Returns:
        ``((X_train, y_train), (X_test, y_test))``: X float32 in [0, 1] (pixel / 255),
        y int64 labels 0..9, host NumPy arrays.

    Shape:
        X_train: (50000, 3, 32, 32); y_train: (50000,); X_test: (10000, 3, 32, 32);
        y_test: (10000,).

    Raises:
        TypeError, FileNotFoundError, ValueError, ConnectionError, ImportError: as
            `load_mnist`.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp()) / "cifar-10-batches-bin"
        >>> folder.mkdir()
        >>> names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
        >>> for label, name in enumerate(names):
        ...     _ = (folder / name).write_bytes(bytes([label]) + bytes(3072))
        >>> (X_train, y_train), (X_test, y_test) = load_cifar10(folder.parent)
        >>> X_train.shape, y_train, y_test
        ((5, 3, 32, 32), array([0, 1, 2, 3, 4]), array([5]))
    """
    folder = _download.fetch("cifar10") if path is None else _folder(path)
    names = _download.CIFAR_FILES
    contents = _cifar_files(folder, names)
    train = [read_cifar_batch(contents[name], name) for name in names[:-1]]
    test = read_cifar_batch(contents[names[-1]], names[-1])
    images = np.concatenate([images for images, _ in train])
    labels = np.concatenate([labels for _, labels in train])
    return _as_float(images, labels), _as_float(*test)


def _load_idx(name: str, path: str | os.PathLike[str] | None) -> tuple[Split, Split]:
    """Both splits of an MNIST-like dataset from a folder (or the cache)."""
    folder = _download.fetch(name) if path is None else _folder(path)
    splits = []
    for part in ("train", "t10k"):
        images_name, labels_name = f"{part}-images-idx3-ubyte", f"{part}-labels-idx1-ubyte"
        images = read_idx(_required(folder, images_name), images_name, ndim=3)
        labels = read_idx(_required(folder, labels_name), labels_name, ndim=1)
        if len(images) != len(labels):
            raise ValueError(
                f"{folder}: {images_name} holds {len(images)} images but {labels_name} "
                f"{len(labels)} labels"
            )
        check_labels(labels, labels_name)
        splits.append(_as_float(images[:, None], labels))
    train, test = splits
    if train[0].shape[1:] != test[0].shape[1:]:
        raise ValueError(
            f"{folder}: the training images are {train[0].shape[2:]} pixels but the test "
            f"images {test[0].shape[2:]}"
        )
    return train, test


def _folder(path: object) -> Path:
    """`path` as an existing folder. '' is refused, not taken as the current folder, and
    so is a path the system cannot look up (a name too long): a ValueError; a missing
    folder is a FileNotFoundError."""
    if not isinstance(path, str | os.PathLike) or not isinstance(os.fspath(path), str):
        raise TypeError(f"`path` must be a folder (a str or path), got {path!r}")
    text = os.fspath(path)
    shown = text if len(text) <= 80 else f"{text[:77]}..."
    if not text:
        raise ValueError("`path` must name a folder ('.' for the current one), got ''")
    if "\x00" in text:
        raise ValueError(f"`path` must not hold a NUL character, got {shown!r}")
    folder = Path(text).expanduser()
    try:
        mode: int | None = folder.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as exc:
        raise ValueError(f"`path`: cannot read {shown!r}: {exc.strerror or exc}") from None
    if mode is None or not stat.S_ISDIR(mode):
        raise FileNotFoundError(f"`path` must be an existing folder, got {str(folder)!r}")
    return folder


def _required(folder: Path, name: str) -> bytes:
    data = read_file(folder, name)
    if data is None:
        raise FileNotFoundError(
            f"{folder} has no {name} (or {name}.gz); the folder must hold "
            "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
            "t10k-labels-idx1-ubyte, each plain or gzipped (.gz)"
        )
    return data


def _cifar_files(folder: Path, names: tuple[str, ...]) -> dict[str, bytes]:
    """The six batch files from the extracted folder (or `folder` itself) or the archive."""
    for candidate in (folder / CIFAR_FOLDER, folder):
        if all((candidate / name).is_file() for name in names):
            return {name: read_cifar_file(candidate / name) for name in names}
    archive = folder / CIFAR_ARCHIVE
    if archive.is_file():
        members = tuple(f"{CIFAR_FOLDER}/{name}" for name in names)
        with archive.open("rb") as file:  # inflated as a stream, bounded by its headers
            found = read_tar_members(file, str(archive), members)
        return {name: found[member] for name, member in zip(names, members, strict=True)}
    raise FileNotFoundError(
        f"{folder} holds neither {CIFAR_ARCHIVE} nor a {CIFAR_FOLDER}/ folder with "
        f"{', '.join(names)} (the binary version of CIFAR-10, not the Python one)"
    )


def _as_float(images: np.ndarray, labels: np.ndarray) -> Split:
    """uint8 pixels as float32 in [0, 1], labels as int64."""
    X = images.astype(np.float32) / np.float32(255)
    return X, labels.astype(np.int64)
