"""The original file formats of MNIST-like data (IDX) and of CIFAR-10's binary version.

Parsers take the file's (decompressed) bytes and its name, for error messages, and
check everything the format promises: a malformed, truncated or mismatched file is a
`ValueError` naming the file, never a silently wrong array.
"""

from __future__ import annotations

import gzip
import io
import math
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO, Protocol

import numpy as np

__all__ = [
    "CIFAR_FOLDER",
    "CIFAR_RECORD",
    "MAX_ARCHIVE_BYTES",
    "MAX_CONTENT_BYTES",
    "check_size",
    "idx_header",
    "idx_ndim",
    "read_cifar_batch",
    "read_cifar_file",
    "read_file",
    "read_idx",
    "read_idx_content",
    "read_tar_members",
]

#: IDX type codes (the third byte of the magic number); xconv's data are unsigned bytes
IDX_UBYTE = 0x08
IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int"}
IDX_TYPES |= {0x0D: "float", 0x0E: "double"}


class Readable(Protocol):
    """A binary stream: a file, a `gzip.GzipFile`, a `io.BytesIO`."""

    def read(self, size: int = -1, /) -> bytes: ...


#: the most bytes one dataset file may hold once decompressed (MNIST's largest: 47 MB)
MAX_CONTENT_BYTES = 1 << 30
#: the most bytes the members of one dataset archive may declare in all (CIFAR-10: 185 MB)
MAX_ARCHIVE_BYTES = 2 << 30

#: the folder inside ``cifar-10-binary.tar.gz``
CIFAR_FOLDER = "cifar-10-batches-bin"
#: one CIFAR-10 record: 1 label byte, then 3 x 32 x 32 pixel bytes (red, green, blue planes)
CIFAR_RECORD = 1 + 3 * 32 * 32


def idx_header(head: bytes, name: str, ndim: int) -> tuple[int, tuple[int, ...]]:
    """The header's length and shape, from the first bytes of an IDX file (at least
    ``4 + 4 * ndim`` of them, fewer if the file is shorter)."""
    if len(head) < 4:
        raise ValueError(f"{name}: not an IDX file: {len(head)} bytes, too short for a header")
    zero, code, dims = head[:2], head[2], head[3]
    if zero != b"\x00\x00":
        raise ValueError(
            f"{name}: not an IDX file: the magic number {head[:4].hex()} must start with 0000"
        )
    if code != IDX_UBYTE:
        kind = IDX_TYPES.get(code, "unknown")
        raise ValueError(
            f"{name}: IDX type code 0x{code:02x} ({kind}); xconv reads unsigned bytes (0x08)"
        )
    if dims != ndim:
        raise ValueError(f"{name}: IDX file of {dims} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(head) < header:
        raise ValueError(f"{name}: truncated IDX header: {len(head)} bytes, expected {header}")
    shape = tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if expected > MAX_CONTENT_BYTES:
        raise ValueError(
            f"{name}: the header's shape {shape} declares {expected} bytes, more than the "
            f"{MAX_CONTENT_BYTES} a dataset file may hold (xconv.data._formats."
            "MAX_CONTENT_BYTES)"
        )
    return header, shape


def idx_ndim(name: str) -> int:
    """The number of dimensions in an IDX file's name: ``train-images-idx3-ubyte`` -> 3."""
    return int(name.rsplit("-idx", 1)[1][0])


def read_idx(data: bytes, name: str, *, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file with `ndim` dimensions, its header checked strictly.

    The header: two zero bytes, the type code, the number of dimensions, then each
    dimension as a big-endian 32-bit integer; the values follow, exactly as many
    bytes as the dimensions say.
    """
    header, shape = idx_header(data[: 4 + 4 * ndim], name, ndim)
    expected = header + math.prod(shape)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise ValueError(
            f"{name}: {what}: {len(data)} bytes, but the header's shape {shape} needs {expected}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_idx_content(stream: Readable, name: str, *, ndim: int, size: int | None = None) -> bytes:
    """The bytes of an IDX file read from `stream` (a file, or a gzip stream inflating
    as it is read), never more than its header declares plus one.

    `size`, where known (a plain file's), is checked against the header before the
    values are read, so a huge or sparse file costs nothing; a gzip stream is inflated
    only as far as the header's shape reaches. A file declaring more than
    `MAX_CONTENT_BYTES` is refused from its header.
    """
    head = _read(stream, 4 + 4 * ndim, name)
    header, shape = idx_header(head, name, ndim)
    expected = header + math.prod(shape)
    if size is not None and size != expected:
        what = "truncated" if size < expected else "too long"
        raise ValueError(
            f"{name}: {what}: {size} bytes, but the header's shape {shape} needs {expected}"
        )
    body = _read(stream, expected - header, name)
    if len(body) < expected - header:
        raise ValueError(
            f"{name}: truncated: {header + len(body)} bytes, but the header's shape {shape} "
            f"needs {expected}"
        )
    if _read(stream, 1, name):
        raise ValueError(
            f"{name}: too long: more than the {expected} bytes the header's shape {shape} needs"
        )
    return head + body


def _read(stream: Readable, n: int, name: str) -> bytes:
    """Up to `n` bytes of `stream`; a damaged gzip stream is a ValueError naming it."""
    try:
        chunks, left = [], n
        while left > 0:
            chunk = stream.read(left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(
            f"{name}: not a valid gzip file ({exc}); truncated or corrupted"
        ) from None
    except MemoryError:
        raise ValueError(f"{name}: {n} bytes do not fit in this process's memory") from None


def read_cifar_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of a CIFAR-10 binary batch: (N, 3, 32, 32) and (N,) uint8."""
    if len(data) == 0 or len(data) % CIFAR_RECORD:
        raise ValueError(
            f"{name}: {len(data)} bytes is not a whole number of CIFAR-10 records of "
            f"{CIFAR_RECORD} bytes (1 label + 3072 pixels); truncated or not a batch file"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0]
    check_labels(labels, name)
    # the pixels are stored plane by plane (red, green, blue), row by row: already CHW
    images = records[:, 1:].reshape(-1, 3, 32, 32)
    return images, labels


def check_labels(labels: np.ndarray, name: str, n_classes: int = 10) -> None:
    """A ValueError unless every label is a class in [0, n_classes)."""
    if labels.size and int(labels.max()) >= n_classes:
        raise ValueError(
            f"{name}: label {int(labels.max())} out of range: the classes are 0..{n_classes - 1}"
        )


def decompress(data: bytes, name: str, limit: int | None = None) -> bytes:
    """The content of a gzip file, at most `limit` bytes of it (default
    `MAX_CONTENT_BYTES`), or a ValueError naming it: inflating stops at the limit."""
    limit = MAX_CONTENT_BYTES if limit is None else limit
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        content = _read(stream, limit + 1, name)
    if len(content) > limit:
        raise ValueError(
            f"{name}: inflates to more than {limit} bytes, more than a dataset file may hold"
        )
    return content


def check_size(path: Path, limit: int | None = None) -> int:
    """The size of the file at `path`; a ValueError if over `limit` (default
    `MAX_CONTENT_BYTES`), before anything is read."""
    limit = MAX_CONTENT_BYTES if limit is None else limit
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"{path}: {size} bytes, more than the {limit} a dataset file may hold")
    return size


def read_file(folder: Path, name: str) -> bytes | None:
    """The content of the IDX file `folder`/`name`, or of its gzipped ``.gz`` twin; None
    if neither is there. The plain file wins when both are present.

    Read with bounded memory (`read_idx_content`): a plain file's size must be its
    header's, and a gzipped one is inflated only as far as its header declares.
    """
    plain, packed = folder / name, folder / f"{name}.gz"
    ndim = idx_ndim(name)
    if plain.is_file():
        size = plain.stat().st_size
        with plain.open("rb") as file:
            return read_idx_content(file, str(plain), ndim=ndim, size=size)
    if packed.is_file():
        with packed.open("rb") as raw, gzip.GzipFile(fileobj=raw) as stream:
            return read_idx_content(stream, str(packed), ndim=ndim)
    return None


def read_cifar_file(path: Path) -> bytes:
    """The bytes of a CIFAR-10 batch file, its size checked before it is read."""
    size = check_size(path)
    if size == 0 or size % CIFAR_RECORD:
        raise ValueError(
            f"{path}: {size} bytes is not a whole number of CIFAR-10 records of "
            f"{CIFAR_RECORD} bytes (1 label + 3072 pixels); truncated or not a batch file"
        )
    return path.read_bytes()


def read_tar_members(
    data: bytes | BinaryIO, name: str, members: tuple[str, ...]
) -> dict[str, bytes]:
    """The named regular files of a gzipped tar archive, by name; nothing is extracted.

    `data` is the archive's bytes or a binary file. Only the `members` are read (no
    other path is touched, so an archive cannot write anywhere); one missing, or not a
    regular file, is a ValueError. The archive is inflated as a stream, member by
    member: a member declaring more than `MAX_CONTENT_BYTES`, or members declaring
    more than `MAX_ARCHIVE_BYTES` in all, are refused from their headers.
    """
    stream = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    found: dict[str, bytes] = {}
    declared = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as archive:
            for member in archive:
                declared += member.size
                if declared > MAX_ARCHIVE_BYTES:
                    raise ValueError(
                        f"{name}: its members declare more than {MAX_ARCHIVE_BYTES} bytes in "
                        "all, more than a dataset archive may hold"
                    )
                if member.name not in members or not member.isfile():
                    continue
                if member.size > MAX_CONTENT_BYTES:
                    raise ValueError(
                        f"{name}: {member.name} declares {member.size} bytes, more than the "
                        f"{MAX_CONTENT_BYTES} a dataset file may hold"
                    )
                extracted = archive.extractfile(member)
                assert extracted is not None
                found[member.name] = extracted.read()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: not a valid gzipped tar archive ({exc})") from None
    missing = [m for m in members if m not in found]
    if missing:
        raise ValueError(f"{name}: the archive lacks {', '.join(missing)}")
    return found
