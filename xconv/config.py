"""Process-wide settings: how much scratch memory a convolution may use, fast kernels.

Set them as module attributes, or for a block of code with `using`::

    import xconv
    xconv.config.workspace_bytes = 256 * 2**20    # 256 MiB column matrices
    with xconv.config.using(fast_kernels=False):  # the generic array-API code only
        ...

Attributes:
    workspace_bytes: the most bytes one convolution call may spend on its column
        matrix (the im2col copy, and the columns of the input gradient). Larger
        batches are processed in chunks of samples that fit, with the same results;
        one sample's columns are the floor. Lazy backends (Dask) are not chunked: their
        chunks already bound the memory. Default 32 MiB, or ``XCONV_WORKSPACE_BYTES``
        from the environment.
    fast_kernels: whether backends' registered kernels (e.g. the NumPy backend's
        threaded im2col) replace the generic code. Default True; False is for
        comparing the two and for debugging.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["fast_kernels", "using", "workspace_bytes", "workspace_limit"]

# Large enough for a full GEMM's efficiency; small enough that glibc keeps reusing the
# same pages (its mmap threshold grows to at most 32 MiB), so no call re-faults memory.
DEFAULT_WORKSPACE_BYTES = 32 * 2**20


def _from_environment() -> int:
    text = os.environ.get("XCONV_WORKSPACE_BYTES", "").strip()
    if not text:
        return DEFAULT_WORKSPACE_BYTES
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"XCONV_WORKSPACE_BYTES must be a positive integer, got {text!r}")
    return int(text)


workspace_bytes: int = _from_environment()
fast_kernels: bool = True


def workspace_limit() -> int:
    """`workspace_bytes`, checked: a positive integer."""
    return _check_workspace(workspace_bytes)


def _check_workspace(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"`xconv.config.workspace_bytes` must be a positive integer, got {value!r}"
        )
    return value


@contextmanager
def using(**settings: Any) -> Iterator[None]:
    """Change settings inside a ``with`` block, restoring them after (process-wide).

    Example:
        >>> import xconv
        >>> with xconv.config.using(workspace_bytes=1024):
        ...     xconv.config.workspace_bytes
        1024
    """
    unknown = sorted(set(settings) - {"workspace_bytes", "fast_kernels"})
    if unknown:
        raise TypeError(f"unknown settings {unknown}; known: 'workspace_bytes', 'fast_kernels'")
    if "workspace_bytes" in settings:
        _check_workspace(settings["workspace_bytes"])
    module = globals()
    saved = {name: module[name] for name in settings}
    module.update(settings)
    try:
        yield
    finally:
        module.update(saved)
