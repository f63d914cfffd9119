"""Atomic file writes: a temporary file beside the target, flushed, renamed over it.

Saved files get the mode the umask gives a new file; a crashed save's temporary file
is removed by a later save of the same path.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

__all__ = ["STALE_SECONDS", "clean_stale_temporaries", "umask", "write_atomically"]

#: a crashed save's temporary file is removed by a later save once this old (seconds)
STALE_SECONDS = 60.0


def umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def clean_stale_temporaries(path: Path) -> None:
    """Remove temporary files of earlier, crashed saves of `path`.

    Only files named as `write_atomically` names them (``.NAME.XXXXXXXX.tmp`` beside
    `path`), plain files of this user, untouched for `STALE_SECONDS`: a save still
    running elsewhere keeps its file.
    """
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp")
    cutoff = time.time() - STALE_SECONDS
    owner = os.getuid() if hasattr(os, "getuid") else None
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if not pattern.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                info = entry.stat(follow_symlinks=False)
                mine = owner is None or info.st_uid == owner
                if entry.is_file(follow_symlinks=False) and mine and info.st_mtime < cutoff:
                    os.unlink(entry.path)


def write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`np.savez` to a temporary file beside `path`, flushed to disk, renamed over `path`.

    The file gets the mode a new file gets under the umask (``0o666 & ~umask``).
    """
    clean_stale_temporaries(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, allow_pickle=False, **cast("dict[str, Any]", arrays))
            file.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(file.fileno(), 0o666 & ~umask())
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    # make the rename itself durable (POSIX; Windows cannot open a directory)
    if hasattr(os, "O_DIRECTORY"):
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
