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

import numpy as np

__all__ = [
    "CIFAR_FOLDER",
    "CIFAR_RECORD",
    "read_cifar_batch",
    "read_file",
    "read_idx",
    "read_tar_members",
]

#: IDX type codes (the third byte of the magic number); xconv's data are unsigned bytes
IDX_UBYTE = 0x08
IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int"}
IDX_TYPES |= {0x0D: "float", 0x0E: "double"}

#: the folder inside ``cifar-10-binary.tar.gz``
CIFAR_FOLDER = "cifar-10-batches-bin"
#: one CIFAR-10 record: 1 label byte, then 3 x 32 x 32 pixel bytes (red, green, blue planes)
CIFAR_RECORD = 1 + 3 * 32 * 32


def read_idx(data: bytes, name: str, *, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file with `ndim` dimensions, its header checked strictly.

    The header: two zero bytes, the type code, the number of dimensions, then each
    dimension as a big-endian 32-bit integer; the values follow, exactly as many
    bytes as the dimensions say.
    """
    if len(data) < 4:
        raise ValueError(f"{name}: not an IDX file: {len(data)} bytes, too short for a header")
    zero, code, dims = data[:2], data[2], data[3]
    if zero != b"\x00\x00":
        raise ValueError(
            f"{name}: not an IDX file: the magic number {data[:4].hex()} must start with 0000"
        )
    if code != IDX_UBYTE:
        kind = IDX_TYPES.get(code, "unknown")
        raise ValueError(
            f"{name}: IDX type code 0x{code:02x} ({kind}); xconv reads unsigned bytes (0x08)"
        )
    if dims != ndim:
        raise ValueError(f"{name}: IDX file of {dims} dimensions, expected {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header: {len(data)} bytes, expected {header}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise ValueError(
            f"{name}: {what}: {len(data)} bytes, but the header's shape {shape} needs {expected}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


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


def decompress(data: bytes, name: str) -> bytes:
    """The content of a gzip file, or a ValueError naming it."""
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(
            f"{name}: not a valid gzip file ({exc}); truncated or corrupted"
        ) from None


def read_file(folder: Path, name: str) -> bytes | None:
    """The content of `folder`/`name`, or of its gzipped ``.gz`` twin; None if neither is there.

    The plain file wins when both are present.
    """
    plain, packed = folder / name, folder / f"{name}.gz"
    if plain.is_file():
        return plain.read_bytes()
    if packed.is_file():
        return decompress(packed.read_bytes(), str(packed))
    return None


def read_tar_members(data: bytes, name: str, members: tuple[str, ...]) -> dict[str, bytes]:
    """The named regular files of a gzipped tar archive, by name; nothing is extracted.

    Only the `members` are read (no other path is touched, so an archive cannot write
    anywhere); one missing, or not a regular file, is a ValueError.
    """
    content = decompress(data, name)
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(content), mode="r:") as archive:
            for member in archive.getmembers():
                if member.name in members and member.isfile():
                    extracted = archive.extractfile(member)
                    assert extracted is not None
                    found[member.name] = extracted.read()
    except tarfile.TarError as exc:
        raise ValueError(f"{name}: not a valid tar archive ({exc})") from None
    missing = [m for m in members if m not in found]
    if missing:
        raise ValueError(f"{name}: the archive lacks {', '.join(missing)}")
    return found
