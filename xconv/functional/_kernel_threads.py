"""The context a block of many ops runs in, and the matrix product between ops."""

from __future__ import annotations

import contextlib

from xconv._typing import Array, Namespace
from xconv._validation import namespace_of

from ._dispatch import kernels_for

__all__ = ["kernel_threads", "matmul"]


def kernel_threads(xp: Namespace) -> contextlib.AbstractContextManager[None]:
    """A context for a block of many ops on `xp`'s arrays, such as a training step.

    On NumPy (with ``xconv.config.fast_kernels``), BLAS keeps to one thread inside it
    and xconv's kernels spread their work over their own threads, as each convolution
    does on its own, without handing BLAS its threads back in between (that switching
    made the MNIST training step take 36 ms instead of 26 on 2 CPUs). The previous
    BLAS thread count comes back on leaving. Elsewhere it does nothing.

    Example:
        >>> import numpy as np
        >>> with kernel_threads(np):
        ...     pass
    """
    return kernels_for(xp).threads()


def matmul(a: Array, b: Array, /) -> Array:
    """``a @ b``. On NumPy inside `kernel_threads`, where BLAS keeps to one thread, a
    large product of two matrices is split by rows of `a` over xconv's threads.

    Example:
        >>> import numpy as np
        >>> matmul(np.eye(2), np.arange(4.0).reshape(2, 2))
        array([[0., 1.],
               [2., 3.]])
    """
    return kernels_for(namespace_of(a=a, b=b)).matmul(a, b)
