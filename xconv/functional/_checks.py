"""Checks on array arguments, run before any work, and kernel lookup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import array_api_compat

from xconv.backends import KERNEL_OPS, backend_for

__all__ = ["KERNEL_OPS", "check_ndim", "check_shape", "fast_kernel", "namespace_of"]


def _type_name(x: object) -> str:
    cls = type(x)
    return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"


def namespace_of(**arrays: Any) -> Any:
    """The one array namespace of the named arrays (None values are skipped).

    All must be arrays of one library, on one device, with one real floating dtype;
    otherwise a `TypeError` or `ValueError` names the arguments that disagree.
    """
    named = {name: x for name, x in arrays.items() if x is not None}
    for name, x in named.items():
        if not array_api_compat.is_array_api_obj(x) or isinstance(x, int | float | complex):
            raise TypeError(f"`{name}` must be an array, got {_type_name(x)}")
    try:
        xp = array_api_compat.array_namespace(*named.values())
    except TypeError:
        kinds = ", ".join(f"`{name}` is {_type_name(x)}" for name, x in named.items())
        raise TypeError(
            f"arrays from different libraries: {kinds}; convert them to one library first"
        ) from None

    (first_name, first), *rest = named.items()
    first_device = array_api_compat.device(first)
    for name, x in rest:
        if array_api_compat.device(x) != first_device:
            raise ValueError(
                f"arrays on different devices: `{first_name}` is on {first_device!r}, "
                f"`{name}` on {array_api_compat.device(x)!r}; move them to one device first"
            )
    for name, x in named.items():
        if not xp.isdtype(x.dtype, "real floating"):
            raise TypeError(f"`{name}` must have a real floating dtype, got {x.dtype}")
    for name, x in rest:
        if x.dtype != first.dtype:
            raise TypeError(
                f"arrays of different dtypes: `{first_name}` is {first.dtype}, "
                f"`{name}` is {x.dtype}; cast one of them first"
            )
    return xp


def check_ndim(x: Any, name: str, layout: str) -> None:
    """`x` must have one axis per letter of `layout` (e.g. "NCHW")."""
    if x.ndim != len(layout):
        raise ValueError(
            f"`{name}` must be a {len(layout)}-D array ({', '.join(layout)}), "
            f"got shape {tuple(x.shape)}"
        )


def check_shape(x: Any, name: str, expected: tuple[int, ...], why: str) -> None:
    """`x` must have exactly the shape `expected`."""
    if tuple(x.shape) != expected:
        raise ValueError(f"`{name}` must have shape {expected} ({why}), got {tuple(x.shape)}")


def fast_kernel(op: str, xp: Any) -> Callable[..., Any] | None:
    """The kernel a backend registered for `op` on namespace `xp`, if any."""
    backend = backend_for(xp)
    return None if backend is None else backend.kernel(op)
