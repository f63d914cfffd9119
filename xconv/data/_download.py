"""Download, check and cache the original files of MNIST, Fashion-MNIST and CIFAR-10.

The cache holds each dataset's files *decompressed*, in a folder per dataset, laid out
like the folder a loader's ``path=`` reads; a file enters it only after its content
passed the check, written to a temporary name first and renamed, so a failed or
interrupted download leaves nothing behind (a download is held in memory, at most
`MAX_DOWNLOAD_BYTES`, and must end within `DOWNLOAD_DEADLINE` seconds; the temporary
files of a killed run are removed by the next one). Every file is inflated only as
far as its header declares, and checked for its format before it is cached; a cached
file that fails a check is removed and downloaded again.

Checks are on the SHA-256 of the decompressed content (`SHA256`), so a mirror that
re-compresses the same data still passes. Where no such checksum is known (`None`),
the download passes if its compressed bytes are the authors' own (their published MD5,
`ARCHIVE_MD5`), and otherwise with a warning that gives the content's SHA-256; either
way that SHA-256 is written next to the cached file (``<name>.sha256``) and checked on
every later load.

pooch (the ``xconv[data]`` extra) names the user cache folder; the transfer is
urllib's, read by the chunk so that the deadline holds however slowly a server sends.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import importlib
import io
import math
import os
import tempfile
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._formats import (
    CIFAR_FOLDER,
    check_size,
    idx_header,
    idx_ndim,
    read_cifar_batch,
    read_cifar_file,
    read_idx_content,
    read_tar_members,
)

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

    Files already there are checked and reused; missing ones are downloaded. A cached
    file that fails its check (damaged, or not in its format) is removed, with a
    warning, and downloaded again: a bad file is never kept.
    """
    dataset = DATASETS[name]
    folder = cache_dir() / dataset.name
    for archive, members in dataset.archives.items():
        if all(_cached(folder, dataset.name, member) for member in members):
            continue
        _usable(folder)
        _remove_stale(folder, members)
        placed = folder / archive
        if placed.is_file():  # put there by hand: the user's file, checked, never deleted
            check_size(placed, MAX_DOWNLOAD_BYTES)
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


def _usable(folder: Path) -> None:
    """`folder` exists (made if need be) and takes new files: probed by creating and
    removing one, as the command line probes its paths; a ValueError naming the setting
    otherwise, before anything is downloaded."""
    chosen = os.environ.get(DATA_DIR_ENV, "").strip()
    what = f"`{DATA_DIR_ENV}` (={chosen!r})" if chosen else "the user cache folder"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".xconv-probe.", dir=folder)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise ValueError(
            f"{what} cannot hold the dataset cache: {folder} is not a folder xconv can "
            f"write to ({type(exc).__name__}: {exc.strerror or exc}); set {DATA_DIR_ENV} "
            "to a writable folder, or pass `path=` to read files you have"
        ) from None


#: a temporary file of the cache untouched this long (seconds) is a killed run's
STALE_SECONDS = 60.0


def _remove_stale(folder: Path, members: tuple[str, ...]) -> None:
    """Remove what a killed download left: temporary files of `members` (and older
    versions' ``.part`` files), untouched for `STALE_SECONDS`, so that one still being
    written by another process is kept."""
    prefixes = tuple(f".{Path(member).name}." for member in members)
    now = time.time()
    for path in {folder, *(folder / Path(m).parent for m in members)}:
        if not path.is_dir():
            continue
        for entry in path.iterdir():
            if not (
                entry.name.startswith(prefixes)
                or (entry.name.startswith(".") and entry.name.endswith(".part"))
            ):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file() and now - entry.stat().st_mtime >= STALE_SECONDS:
                    entry.unlink()


def _cached(folder: Path, dataset: str, member: str) -> bool:
    """Whether a checked copy of `member` is in the cache.

    A copy that is damaged (not its checksum) or not in its format is removed with its
    checksum file, with a warning, and counts as missing.
    """
    path = folder / member
    if not path.is_file():
        return False
    expected = SHA256[dataset].get(member)
    recorded = path.with_name(f"{path.name}.sha256")
    if expected is None and recorded.is_file():
        expected = recorded.read_text().strip()
    problem = _format_problem(path, member)
    digest = _sha256_file(path) if problem is None else None
    if problem is None and expected is not None and digest != expected:
        problem = f"corrupted: its sha256 is {digest}, expected {expected}"
    if problem is not None:
        for damaged in (path, recorded):
            with contextlib.suppress(FileNotFoundError):
                damaged.unlink()
        warnings.warn(
            f"{path}: {problem}; removed from the cache, to be downloaded again",
            stacklevel=4,
        )
        return False
    if expected is None:
        warnings.warn(
            f"{path}: no checksum is known for this file, so it is unverified (its "
            f"sha256 is {digest}); see xconv.data's documentation",
            stacklevel=4,
        )
    return True


def _format_problem(path: Path, member: str) -> str | None:
    """What is wrong with the format of a cached file, from its size and header, or None."""
    try:
        if member.endswith(".bin"):
            read_cifar_batch(read_cifar_file(path), str(path))
        else:
            with path.open("rb") as file:
                head = file.read(4 + 4 * idx_ndim(member))
            header, shape = idx_header(head, str(path), idx_ndim(member))
            size = path.stat().st_size
            if size != header + math.prod(shape):
                return f"{size} bytes, but its header's shape {shape} needs more or fewer"
    except ValueError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return None


def _download(url: str, folder: Path, dataset: Dataset, archive: str) -> bytes:
    """The bytes at `url`, held in memory (at most `MAX_DOWNLOAD_BYTES`): nothing of an
    unchecked download is ever written to the cache, so a killed one leaves nothing.

    The whole transfer must end within `DOWNLOAD_DEADLINE` seconds, and no read may
    wait more than `READ_TIMEOUT` (nor past the deadline).
    """
    try:
        return _transfer(url)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        if isinstance(exc, _TooLarge):
            raise ValueError(f"{url}: {exc}; not a dataset file, and not kept") from None
        raise ConnectionError(_no_network(url, folder, dataset, exc)) from exc


#: the longest one file's whole download may take, in seconds
DOWNLOAD_DEADLINE = 1800.0
#: the longest a download waits for its next bytes, in seconds
READ_TIMEOUT = 60.0
#: the most bytes one downloaded file may have (CIFAR-10's archive has 163 MiB)
MAX_DOWNLOAD_BYTES = 1 << 30


class _TooLarge(ValueError):
    """A download larger than `MAX_DOWNLOAD_BYTES`."""


def _transfer(url: str) -> bytes:
    """GET `url` within the deadline and the size limit (module attributes, read now)."""
    deadline, read_timeout, limit = DOWNLOAD_DEADLINE, READ_TIMEOUT, MAX_DOWNLOAD_BYTES
    end = time.monotonic() + deadline
    request = urllib.request.Request(url, headers={"User-Agent": "xconv"})
    with urllib.request.urlopen(request, timeout=min(read_timeout, deadline)) as response:
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            raise _TooLarge(f"the server announces {length} bytes, more than {limit}")
        received = bytearray()
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"the download did not finish within {deadline:g} s "
                    f"(xconv.data._download.DOWNLOAD_DEADLINE); {len(received)} bytes came"
                )
            wait = min(read_timeout, remaining)
            _set_timeout(response, wait)
            try:
                chunk = response.read1(1 << 16)
            except TimeoutError:
                if wait < read_timeout:  # the read was cut short by the deadline
                    raise TimeoutError(
                        f"the download did not finish within {deadline:g} s (xconv.data."
                        f"_download.DOWNLOAD_DEADLINE); {len(received)} bytes came"
                    ) from None
                raise TimeoutError(
                    f"no data came for {read_timeout:g} s (xconv.data._download.READ_TIMEOUT)"
                ) from None
            if not chunk:
                return bytes(received)
            received += chunk
            if len(received) > limit:
                raise _TooLarge(f"the server sends more than {limit} bytes")


def _set_timeout(response: Any, seconds: float) -> None:
    """The time-out of the socket under `response`, for its next read."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 1e-3))


def _no_network(url: str, folder: Path, dataset: Dataset, exc: Exception) -> str:
    names = ", ".join(dataset.archives)
    return (
        f"could not download {url} ({type(exc).__name__}: {exc}). Without network, get "
        f"{names} elsewhere and either pass the folder holding them as `path=`, or put "
        f"them (gzipped or not) in the cache folder {folder}; or set {MIRROR_ENV} to a "
        f"mirror that serves <mirror>/{dataset.name}/<file>"
    )


def _unpack(raw: bytes, archive: str, members: tuple[str, ...], source: str) -> dict[str, bytes]:
    """The content files of one downloaded file: a gzipped file, or a gzipped tar.

    Inflated only as far as the headers declare, and each checked for its format
    before anything is cached: a mirror's error page is refused here, never kept.
    """
    if archive.endswith(".tar.gz"):
        found = read_tar_members(raw, source, members)
        for member, content in found.items():
            read_cifar_batch(content, f"{source}: {member}")
        return found
    (member,) = members
    with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
        return {member: read_idx_content(stream, source, ndim=idx_ndim(member))}


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
