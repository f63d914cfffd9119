"""Unbatched inputs: (C, H, W) for ops written for (N, C, H, W), as PyTorch takes them.

A public op that takes a batch of images also takes a single image without its batch
axis; it runs on a batch of one and gives its result without the batch axis again.
"""

from __future__ import annotations

from xconv._typing import Array, Namespace

__all__ = ["add_batch", "check_layout", "check_same_layout", "drop_batch"]


def check_layout(x: Array, name: str, layout: str) -> bool:
    """Whether `x` is unbatched: it must have one axis per letter of `layout` (e.g.
    "NCHW"), or all but the first (the batch)."""
    if x.ndim == len(layout):
        return False
    if x.ndim == len(layout) - 1:
        return True
    raise ValueError(
        f"`{name}` must be a {len(layout)}-D array ({', '.join(layout)}) or an unbatched "
        f"{len(layout) - 1}-D one ({', '.join(layout[1:])}), got shape {tuple(x.shape)}"
    )


def check_same_layout(a: Array, a_name: str, x: Array, x_name: str) -> None:
    """`a` must be batched (or not) like `x`."""
    if a.ndim != x.ndim:
        raise ValueError(
            f"`{a_name}` must have {x.ndim} axes like `{x_name}` (shape {tuple(x.shape)}), "
            f"got shape {tuple(a.shape)}"
        )


def add_batch(x: Array, unbatched: bool, xp: Namespace) -> Array:
    """`x` with a batch axis of one in front if `unbatched`."""
    return xp.expand_dims(x, axis=0) if unbatched else x


def drop_batch(x: Array, unbatched: bool) -> Array:
    """`x` without its batch axis (of one) if `unbatched`."""
    return x[0, ...] if unbatched else x
