"""Settings: how much scratch memory a convolution may use, fast kernels, delegation
to PyTorch's and JAX's own convolutions.

Set them process-wide as module attributes, or for a block of code with `using`::

    import xconv
    xconv.config.workspace_bytes = 256 * 2**20    # 256 MiB column matrices, everywhere
    with xconv.config.using(fast_kernels=False):  # the generic array-API code only
        ...
    with xconv.config.using(delegate=False):      # xconv's im2col on torch/JAX too
        ...

`using` is context-local, like `xconv.use_backend`: its values live in a
`contextvars.ContextVar`, so they hold in the block's own thread or asyncio task
only, and other threads and tasks keep seeing theirs, also while the blocks
interleave. A thread starts from the process-wide values; an asyncio task starts from
those of the code that created it. Assigning a setting inside a ``using`` block that
sets it changes it for the rest of that block only; elsewhere, assigning changes the
process-wide value.

A ``with using(...)`` (or ``with use_backend(...)``) block inside a generator holds
while the generator runs, and also while it is suspended at a ``yield`` inside the
block: the caller between two ``next()`` calls sees the block's settings, because a
generator runs in its caller's context. Enter the block around the loop that consumes
the generator, or inside the generator between its yields, not across a ``yield``.

Attributes:
    workspace_bytes: the most bytes one convolution call may spend on its column
        matrix (the im2col copy, and the columns of the input gradient). Larger
        batches are processed in chunks of samples that fit, with the same results;
        one sample's columns are the floor. None (the default, unless
        ``XCONV_WORKSPACE_BYTES`` is set in the environment) leaves it to the arrays'
        backend: 16 MiB on a CPU (`Backend.workspace_bytes`), 1 GiB on a GPU, where
        chunks cost kernel launches. Lazy backends (Dask) are not chunked: their own
        chunks bound the memory.
    fast_kernels: whether xconv's functional ops take the fast path that exists for
        the arrays' library (NumPy's in-place im2col, reused buffers and threads for
        a large convolution's chunks; CuPy's CUDA kernels; Dask's chunk-by-chunk
        tasks). Default True; False runs the generic array-API code, for comparing
        the two and for debugging. False also turns `delegate` off: it is the one
        switch to the generic code everywhere.
    delegate: whether xconv's convolutions and poolings hand PyTorch tensors to
        ``torch.nn.functional`` (cuDNN on a CUDA device) and JAX arrays to
        ``jax.lax.conv_general_dilated`` / ``jax.lax.reduce_window`` (compiled by XLA,
        also under ``jit``), with xconv's semantics kept ('same' at any stride,
        asymmetric padding, the first-maximum rule of max pooling, averages over the
        real pixels), and BatchNormalization runs PyTorch's batch-norm kernels on torch
        tensors (xconv's running-estimate rule kept). Default True; taken only while
        `fast_kernels` is True too.
        False keeps xconv's own code on those libraries (NumPy, CuPy, Dask and
        array-api-strict always run it). Results agree with xconv's code to
        rounding (tests/test_delegation.py,
        tests/test_batchnorm_delegation.py); ``conv2d_forward`` then keeps no im2col
        columns (`ConvColumns`), which only xconv's own code makes.
    retain_freed_memory: whether the first NumPy convolution asks glibc's malloc to
        keep up to 256 MiB of freed memory for reuse instead of returning it to the
        system (Linux with glibc only). This changes the allocator of the whole
        process, for good, so it is off by default: xconv reuses its own buffers
        instead (NumPy: up to 96 MiB of scratch columns, and up to 64 MiB of results
        once their callers let them go; xconv/backends/_numpy.py). Set True
        before the first convolution to opt in.
"""

from __future__ import annotations

import contextvars
import os
import sys
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = [
    "checked_workspace_bytes",
    "delegate",
    "fast_kernels",
    "retain_freed_memory",
    "using",
    "workspace_bytes",
]


def _from_environment() -> int | None:
    text = os.environ.get("XCONV_WORKSPACE_BYTES", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"XCONV_WORKSPACE_BYTES must be a positive integer, got {text!r}")
    return int(text)


# The settings are properties of this module's class (below), not module globals: a
# read takes this context's `using` value if it has one, else the process-wide one.
workspace_bytes: int | None
fast_kernels: bool
delegate: bool
retain_freed_memory: bool

_process_wide: dict[str, Any] = {
    "workspace_bytes": _from_environment(),
    "fast_kernels": True,
    "delegate": True,
    "retain_freed_memory": False,
}
_scoped: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "xconv_config", default=types.MappingProxyType({})
)


def _get(name: str) -> Any:
    scoped = _scoped.get()
    return scoped[name] if name in scoped else _process_wide[name]


def _set(name: str, value: Any) -> None:
    scoped = _scoped.get()
    if name in scoped:  # inside a `using` block that set it: for the rest of the block
        _scoped.set(types.MappingProxyType({**scoped, name: value}))
    else:
        _process_wide[name] = value


def checked_workspace_bytes() -> int | None:
    """`workspace_bytes` as it is now, checked: a positive integer, or None."""
    return _check_workspace(_get("workspace_bytes"))


def _check_workspace(value: Any) -> int | None:
    # (not xconv._validation's positive_int: config is a leaf, imported by everything)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(
            f"`xconv.config.workspace_bytes` must be a positive integer or None, got {value!r}"
        )
    return value


_SETTINGS = ("workspace_bytes", "fast_kernels", "delegate", "retain_freed_memory")


@contextmanager
def using(**settings: Any) -> Iterator[None]:
    """Change settings inside a ``with`` block, in this thread or task only, restoring
    them after, also on error.

    Example:
        >>> import xconv
        >>> with xconv.config.using(workspace_bytes=1024):
        ...     xconv.config.workspace_bytes
        1024
    """
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise TypeError(f"unknown settings {unknown}; known: {', '.join(map(repr, _SETTINGS))}")
    if "workspace_bytes" in settings:
        _check_workspace(settings["workspace_bytes"])
    token = _scoped.set(types.MappingProxyType({**_scoped.get(), **settings}))
    try:
        yield
    finally:
        _scoped.reset(token)


def _setting(name: str) -> property:
    return property(lambda _: _get(name), lambda _, value: _set(name, value))


class _ConfigModule(types.ModuleType):
    """This module's class: each setting a property read from `_get`, set by `_set`."""

    workspace_bytes = _setting("workspace_bytes")
    fast_kernels = _setting("fast_kernels")
    delegate = _setting("delegate")
    retain_freed_memory = _setting("retain_freed_memory")


sys.modules[__name__].__class__ = _ConfigModule
