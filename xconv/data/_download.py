"""Download, check and cache the original files of MNIST, Fashion-MNIST and CIFAR-10.

The cache holds each dataset's files *decompressed*, in a folder per dataset, laid out
like the folder a loader's ``path=`` reads; a file enters it only after its content
passed the check, written to a temporary name first and renamed, so a failed or
interrupted download leaves nothing behind.

Checks are on the SHA-256 of the decompressed content (`SHA256`), so a mirror that
re-compresses the same data still passes. Where no such checksum is known (`None`),
the download passes if its compressed bytes are the authors' own (their published MD5,
`ARCHIVE_MD5`), and otherwise with a warning that gives the content's SHA-256; either
way that SHA-256 is written next to the cached file (``<name>.sha256``) and checked on
every later load.

pooch (the ``xconv[data]`` extra) does the HTTP transfer and names the user cache
folder; its own cache is not used, because it checks the downloaded (compressed) bytes,
not their content.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._formats import CIFAR_FOLDER, decompress, read_tar_members

__all__ = ["ARCHIVE_MD5", "DATASETS", "SHA256", "cache_dir", "fetch"]

DATA_DIR_ENV = "XCONV_DATA_DIR"
MIRROR_ENV = "XCONV_DATA_MIRROR"

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_FILES = (*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin")


@dataclass(frozen=True)
class Dataset:
    """Where a dataset's files come from and where their content goes.

    `archives` maps each file on the server to the content files it holds (paths
    inside the cache folder); the content files' checksums are in `SHA256`.
    """

    name: str
    base_url: str
    archives: dict[str, tuple[str, ...]]
    folder: str = ""


DATASETS: dict[str, Dataset] = {
    # PyTorch's copy of MNIST (the original host, yann.lecun.com, is often down);
    # the CVDF's https://storage.googleapis.com/cvdf-datasets/mnist/ holds the same
    "mnist": Dataset(
        "mnist",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        {f"{name}.gz": (name,) for name in IDX_FILES},
    ),
    # the authors' repository (the same files as their S3 website, over HTTPS)
    "fashion_mnist": Dataset(
        "fashion_mnist",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        {f"{name}.gz": (name,) for name in IDX_FILES},
    ),
    # the author's page, https://www.cs.toronto.edu/~kriz/cifar.html
    "cifar10": Dataset(
        "cifar10",
        "https://www.cs.toronto.edu/~kriz/",
        {"cifar-10-binary.tar.gz": tuple(f"{CIFAR_FOLDER}/{name}" for name in CIFAR_FILES)},
        folder=CIFAR_FOLDER,
    ),
}

#: SHA-256 of each decompressed file; None where no trustworthy value is published.
#: MNIST: the four files as distributed since 1998, checked against the copy in
#: ../shared/data/mnist. Fashion-MNIST and CIFAR-10: unknown to xconv (their authors
#: publish MD5s of the compressed files only, see `ARCHIVE_MD5`); to fill one in,
#: download the authors' file, check its MD5 against their page, and record
#: ``hashlib.sha256(content).hexdigest()`` of each decompressed file here.
SHA256: dict[str, dict[str, str | None]] = {
    "mnist": {
        "train-images-idx3-ubyte": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "train-labels-idx1-ubyte": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "t10k-images-idx3-ubyte": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
        "t10k-labels-idx1-ubyte": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
    "fashion_mnist": dict.fromkeys(IDX_FILES),
    "cifar10": dict.fromkeys(f"{CIFAR_FOLDER}/{name}" for name in CIFAR_FILES),
}

#: MD5 of the compressed files as their authors publish them (Fashion-MNIST: the
#: README of github.com/zalandoresearch/fashion-mnist; CIFAR-10: the table on
#: https://www.cs.toronto.edu/~kriz/cifar.html), used only where `SHA256` has no value.
ARCHIVE_MD5: dict[str, dict[str, str]] = {
    "mnist": {},
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "cifar10": {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
}


def cache_dir() -> Path:
    """The cache folder: ``$XCONV_DATA_DIR``, else the user cache folder's ``xconv``."""
    chosen = os.environ.get(DATA_DIR_ENV, "").strip()
    if chosen:
        return Path(chosen).expanduser()
    return Path(_pooch().os_cache("xconv"))


def base_url(dataset: Dataset) -> str:
    """The URL the dataset's files are under: the canonical one, or the mirror's folder."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return f"{mirror.rstrip('/')}/{dataset.name}/"
    return dataset.base_url


def fetch(name: str) -> Path:
    """The cache folder of dataset `name`, holding its checked, decompressed files.

    Files already there are checked and reused; missing ones are downloaded.
    """
    dataset = DATASETS[name]
    folder = cache_dir() / dataset.name
    for archive, members in dataset.archives.items():
        if all(_cached(folder, dataset.name, member) for member in members):
            continue
        folder.mkdir(parents=True, exist_ok=True)
        placed = folder / archive
        if placed.is_file():  # put there by hand: the user's file, checked, never deleted
            raw, source = placed.read_bytes(), str(placed)
        else:
            source = base_url(dataset) + archive
            raw = _download(source, folder, dataset, archive)
        contents = _unpack(raw, archive, members, source)
        checked = {
            member: _check(dataset.name, member, content, raw, archive, source)
            for member, content in contents.items()
        }
        for member, content in contents.items():
            _write(folder / member, content, checked[member])
    return folder


def _cached(folder: Path, dataset: str, member: str) -> bool:
    """Whether a checked copy of `member` is in the cache; a damaged one is an error."""
    path = folder / member
    if not path.is_file():
        return False
    expected = SHA256[dataset].get(member)
    recorded = path.with_name(f"{path.name}.sha256")
    if expected is None and recorded.is_file():
        expected = recorded.read_text().strip()
    digest = _sha256_file(path)
    if expected is None:
        warnings.warn(
            f"{path}: no checksum is known for this file, so it is unverified (its "
            f"sha256 is {digest}); see xconv.data's documentation",
            stacklevel=4,
        )
        return True
    if digest != expected:
        raise ValueError(
            f"{path}: corrupted: its sha256 is {digest}, expected {expected}; delete it "
            "to download it again"
        )
    return True


def _download(url: str, folder: Path, dataset: Dataset, archive: str) -> bytes:
    """The bytes at `url`, through a temporary file that is always removed."""
    pooch = _pooch()
    progress = sys.stderr.isatty() and _has_tqdm()
    fd, temporary = tempfile.mkstemp(prefix=f".{archive}.", suffix=".part", dir=folder)
    os.close(fd)
    try:
        downloader = pooch.HTTPDownloader(progressbar=progress, timeout=60)
        try:
            downloader(url, temporary, None)
        except Exception as exc:  # requests' and ftplib's errors have no common base
            raise ConnectionError(_no_network(url, folder, dataset, exc)) from exc
        return Path(temporary).read_bytes()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def _no_network(url: str, folder: Path, dataset: Dataset, exc: Exception) -> str:
    names = ", ".join(dataset.archives)
    return (
        f"could not download {url} ({type(exc).__name__}: {exc}). Without network, get "
        f"{names} elsewhere and either pass the folder holding them as `path=`, or put "
        f"them (gzipped or not) in the cache folder {folder}; or set {MIRROR_ENV} to a "
        f"mirror that serves <mirror>/{dataset.name}/<file>"
    )


def _unpack(raw: bytes, archive: str, members: tuple[str, ...], source: str) -> dict[str, bytes]:
    """The content files of one downloaded file: a gzipped file, or a gzipped tar."""
    if archive.endswith(".tar.gz"):
        return read_tar_members(raw, source, members)
    (member,) = members
    return {member: decompress(raw, source)}


def _check(
    dataset: str, member: str, content: bytes, raw: bytes, archive: str, source: str
) -> str:
    """The SHA-256 of `content` once checked; a ValueError if it is not the expected one."""
    digest = hashlib.sha256(content).hexdigest()
    expected = SHA256[dataset].get(member)
    if expected is not None:
        if digest != expected:
            raise ValueError(
                f"{source}: {member} has sha256 {digest}, expected {expected}; the file is "
                "corrupted or not the original, and was not kept"
            )
        return digest
    published = ARCHIVE_MD5[dataset].get(archive)
    if published is not None and hashlib.md5(raw, usedforsecurity=False).hexdigest() == published:
        return digest
    warnings.warn(
        f"{source}: no checksum of {member} is known and the file is not byte for byte the "
        f"authors' download, so its content is unverified (sha256 {digest}); it is cached "
        "and checked against this value from now on",
        stacklevel=4,
    )
    return digest


def _write(path: Path, content: bytes, digest: str) -> None:
    """Write `content` to `path` (and its checksum beside it) through a temporary name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, data in (
        (path.with_name(f"{path.name}.sha256"), f"{digest}\n".encode()),
        (path, content),
    ):
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary)
            raise


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pooch() -> Any:
    try:
        # imported by name: pooch ships no type information
        pooch = importlib.import_module("pooch")
    except ImportError:
        raise ImportError(
            "downloading datasets needs pooch: pip install 'xconv[data]' (or pass `path=` "
            "to read files you already have)"
        ) from None
    return pooch


def _has_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True
