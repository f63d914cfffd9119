"""Which library's kernels an op's arrays get: `kernels_for(xp)`, asked once per op.

The registry is keyed by namespace: each entry recognises a namespace (without
importing its library: array-api-compat's `is_*_namespace` look at the module) and
loads its `Kernels` only when such arrays first arrive, so ``import xconv`` imports no
array library. A new library's kernels are one module under `_kernels/` and one entry
here.

- ``xconv.config.fast_kernels = False``: every namespace gets the generic `Kernels`.
- ``xconv.config.delegate = False``: PyTorch and JAX get the generic `Kernels` (their
  kernels are the libraries' own ops); NumPy, CuPy and Dask keep xconv's kernels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import array_api_compat

from xconv import config
from xconv._typing import Namespace

from ._interface import Kernels

__all__ = ["generic_kernels", "kernels_for"]


def _numpy(xp: Namespace) -> Kernels:
    from ._kernels._numpy import NumpyKernels

    return NumpyKernels(xp)


def _cupy(xp: Namespace) -> Kernels:
    from ._kernels._cupy import CupyKernels

    return CupyKernels(xp)


def _dask(xp: Namespace) -> Kernels:
    from ._kernels._dask import DaskKernels

    return DaskKernels(xp)


def _torch(xp: Namespace) -> Kernels:
    from ._kernels._torch import TorchKernels

    return TorchKernels(xp)


def _jax(xp: Namespace) -> Kernels:
    from ._kernels._jax import JaxKernels

    return JaxKernels(xp)


class _Entry(NamedTuple):
    recognises: Callable[[Namespace], bool]
    load: Callable[[Namespace], Kernels]
    delegates: bool  # the library's own ops (off with ``config.delegate = False``)


_REGISTRY = (
    _Entry(array_api_compat.is_numpy_namespace, _numpy, False),
    _Entry(array_api_compat.is_cupy_namespace, _cupy, False),
    _Entry(array_api_compat.is_dask_namespace, _dask, False),
    _Entry(array_api_compat.is_torch_namespace, _torch, True),
    _Entry(array_api_compat.is_jax_namespace, _jax, True),
)

_LOADED: dict[tuple[Namespace, bool], Kernels] = {}


def kernels_for(xp: Namespace) -> Kernels:
    """The kernels for arrays of namespace `xp`, under the current `xconv.config`.

    Example:
        >>> import array_api_compat.numpy as np_xp
        >>> kernels_for(np_xp).name
        'numpy'
    """
    if not config.fast_kernels:
        return generic_kernels(xp)
    key = (xp, bool(config.delegate))
    try:
        return _LOADED[key]
    except KeyError:
        kernels = _LOADED[key] = _load(xp, delegate=key[1])
        return kernels


def generic_kernels(xp: Namespace) -> Kernels:
    """No fast kernels: xconv's generic array-API code for every op."""
    key = (xp, None)
    try:
        return _GENERIC[key]
    except KeyError:
        kernels = _GENERIC[key] = Kernels(xp)
        return kernels


_GENERIC: dict[tuple[Namespace, None], Kernels] = {}


def _load(xp: Namespace, *, delegate: bool) -> Kernels:
    for entry in _REGISTRY:
        if entry.recognises(xp):
            if entry.delegates and not delegate:
                return generic_kernels(xp)
            return entry.load(xp)
    return generic_kernels(xp)
