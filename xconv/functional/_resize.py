"""`pad` and `interpolate` of `torch.nn.functional`, each forward beside its backward.

`pad` pads the last ``len(pad) // 2`` axes, the last axis first: ``pad=(left, right,
top, bottom)`` pads W by (left, right) and H by (top, bottom), as PyTorch does, with a
constant (negative amounts crop), a reflection without the edge, a replica of the
edge, or a wrap-around. `interpolate` resizes (N, C, L) inputs with "nearest",
"nearest-exact" or "linear" and (N, C, H, W) inputs with "nearest", "nearest-exact" or
"bilinear", with PyTorch's rules for the source coordinates (`align_corners`,
`scale_factor`, `recompute_scale_factor`).

Each axis of an interpolation is a linear map of that axis, a (out, in) matrix with
two non-zeros a row (one for nearest): the forward multiplies by it, the backward by
its transpose, with standard functions only. `interpolate` and its backward ask their
library's kernels first (PyTorch's own, ``xconv.config.delegate``), once the arguments
are checked; None runs the code here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat

from xconv._validation import as_int, check_shape, namespace_of, real, true_or_false

from ._dispatch import kernels_for

__all__ = ["interpolate", "interpolate_backward", "pad", "pad_backward"]

PAD_MODES = ("constant", "reflect", "replicate", "circular")


# -- pad ------------------------------------------------------------------------------


def _check_pad(x: Any, amounts: object, mode: object) -> tuple[list[tuple[int, int, int]], str]:
    """(axis, before, after) for each padded axis, last axis first, and the mode."""
    if not isinstance(mode, str) or mode not in PAD_MODES:
        raise ValueError(f"`mode` must be one of {', '.join(map(repr, PAD_MODES))}, got {mode!r}")
    found = [as_int(v) for v in amounts] if isinstance(amounts, Sequence) else [None]
    items = [v for v in found if v is not None]
    if not items or len(items) % 2 or len(items) != len(found):
        raise TypeError(f"`pad` must be a sequence of an even number of integers, got {amounts!r}")
    if len(items) // 2 > x.ndim:
        raise ValueError(f"`pad` (={tuple(items)}) pads {len(items) // 2} axes; `x` has {x.ndim}")
    axes = []
    for i in range(len(items) // 2):
        axis = x.ndim - 1 - i
        before, after = items[2 * i], items[2 * i + 1]
        size = x.shape[axis]
        if mode != "constant" and min(before, after) < 0:
            raise ValueError(f"mode={mode!r} takes no negative padding, got `pad`={amounts!r}")
        if mode == "reflect" and max(before, after) >= size:
            raise ValueError(
                f"reflect padding of ({before}, {after}) must be below the size of axis "
                f"{axis} (={size})"
            )
        if mode in ("replicate", "circular") and size == 0 and max(before, after) > 0:
            raise ValueError(f"mode={mode!r} cannot pad axis {axis} of size 0")
        if mode == "circular" and max(before, after) > size:
            raise ValueError(
                f"circular padding of ({before}, {after}) must not exceed the size of axis "
                f"{axis} (={size})"
            )
        if mode == "constant" and size + before + after < 0:
            raise ValueError(f"`pad` (={tuple(items)}) crops axis {axis} below size 0")
        axes.append((axis, before, after))
    return axes, mode


def _take(x: Any, axis: int, start: int | None, stop: int | None) -> Any:
    """``x[..., start:stop, ...]`` along `axis`."""
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _filled(x: Any, axis: int, size: int, value: float, xp: Any) -> Any:
    shape = list(x.shape)
    shape[axis] = size
    return xp.full(tuple(shape), value, dtype=x.dtype, device=array_api_compat.device(x))


def _pad_axis(x: Any, axis: int, before: int, after: int, mode: str, value: float, xp: Any) -> Any:
    size = x.shape[axis]
    # negative constant padding crops first
    x = _take(x, axis, max(-before, 0), size - max(-after, 0))
    before, after = max(before, 0), max(after, 0)
    if before == after == 0:
        return x
    size = x.shape[axis]
    if mode == "constant":
        head, tail = _filled(x, axis, before, value, xp), _filled(x, axis, after, value, xp)
    elif mode == "reflect":  # the edge is not repeated
        head = xp.flip(_take(x, axis, 1, before + 1), axis=axis)
        tail = xp.flip(_take(x, axis, size - 1 - after, size - 1), axis=axis)
    elif mode == "replicate":
        shape = list(x.shape)
        shape[axis] = before
        head = xp.broadcast_to(_take(x, axis, 0, 1), tuple(shape))
        shape[axis] = after
        tail = xp.broadcast_to(_take(x, axis, size - 1, size), tuple(shape))
    else:  # circular
        head, tail = _take(x, axis, size - before, size), _take(x, axis, 0, after)
    return xp.concat([head, x, tail], axis=axis)


def pad(x: Any, /, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Any:
    """`x` padded on its last ``len(pad) // 2`` axes, as `torch.nn.functional.pad`.

    Args:
        x: any shape, real floating dtype.
        pad: (before, after) amounts, the last axis first: ``(left, right)`` pads W,
            ``(left, right, top, bottom)`` pads W and H.
        mode: "constant" (default; `value`, negative amounts crop), "reflect" (mirror
            without the edge: amounts below the axis's size), "replicate" (repeat the
            edge), "circular" (wrap around: amounts up to the axis's size).
        value: the constant of "constant" (default None: 0).

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 2.0, 3.0]])
        >>> pad(x, (2, 1), mode="reflect")
        array([[3., 2., 1., 2., 3., 2.]])
        >>> pad(x, (1, -1), value=9.0)
        array([[9., 1., 2.]])
    """
    xp = namespace_of(x=x)
    axes, mode = _check_pad(x, pad, mode)
    fill = 0.0 if value is None else real(value, "value")
    if value is not None and mode != "constant":
        raise ValueError(f"`value` is for mode='constant', not mode={mode!r}")
    for axis, before, after in axes:
        x = _pad_axis(x, axis, before, after, mode, fill, xp)
    return x


def _at(piece: Any, axis: int, start: int, size: int, xp: Any) -> Any:
    """`piece` placed at `start` along `axis` of zeros of length `size`."""
    length = piece.shape[axis]
    parts = [
        _filled(piece, axis, start, 0.0, xp),
        piece,
        _filled(piece, axis, size - start - length, 0.0, xp),
    ]
    return xp.concat(parts, axis=axis)


def _unpad_axis(g: Any, axis: int, before: int, after: int, size: int, mode: str, xp: Any) -> Any:
    """The gradient of `_pad_axis` for an axis of `size` before padding."""
    # the gradient of the kept part, as the crop of negative amounts left it
    kept = size - max(-before, 0) - max(-after, 0)
    head_n, tail_n = max(before, 0), max(after, 0)
    head = _take(g, axis, 0, head_n)
    center = _take(g, axis, head_n, head_n + kept)
    tail = _take(g, axis, head_n + kept, head_n + kept + tail_n)
    if mode == "reflect":
        if head_n:
            center = center + _at(xp.flip(head, axis=axis), axis, 1, kept, xp)
        if tail_n:
            center = center + _at(xp.flip(tail, axis=axis), axis, kept - 1 - tail_n, kept, xp)
    elif mode == "replicate":
        if head_n:
            center = center + _at(xp.sum(head, axis=axis, keepdims=True), axis, 0, kept, xp)
        if tail_n:
            edge = xp.sum(tail, axis=axis, keepdims=True)
            center = center + _at(edge, axis, kept - 1, kept, xp)
    elif mode == "circular":
        if head_n:
            center = center + _at(head, axis, kept - head_n, kept, xp)
        if tail_n:
            center = center + _at(tail, axis, 0, kept, xp)
    # cropped pixels get no gradient
    return _at(center, axis, max(-before, 0), size, xp)


def pad_backward(
    grad_output: Any,
    x: Any,
    /,
    pad: Sequence[int],
    mode: str = "constant",
    value: float | None = None,
) -> Any:
    """Gradient of `pad` with respect to `x` (only its shape matters): the output's
    gradient without the padding, plus, for "reflect", "replicate" and "circular",
    the gradient of each padded pixel added to the pixel it copies.

    Example:
        >>> import numpy as np
        >>> pad_backward(np.ones((1, 6)), np.zeros((1, 3)), (2, 1), mode="reflect")
        array([[1., 3., 2.]])
    """
    xp = namespace_of(grad_output=grad_output, x=x)
    axes, mode = _check_pad(x, pad, mode)
    shapes = [tuple(x.shape)]
    for axis, before, after in axes:
        shape = list(shapes[-1])
        shape[axis] += before + after
        shapes.append(tuple(shape))
    check_shape(grad_output, "grad_output", shapes[-1], "the padded output's shape")
    g = grad_output
    for (axis, before, after), shape in zip(reversed(axes), reversed(shapes[:-1]), strict=True):
        g = _unpad_axis(g, axis, before, after, shape[axis], mode, xp)
    return g


# -- interpolate ----------------------------------------------------------------------

_MODES = {3: ("nearest", "nearest-exact", "linear"), 4: ("nearest", "nearest-exact", "bilinear")}


def _spatial(values: object, n: int, name: str, *, integer: bool) -> tuple[Any, ...]:
    """`values` (one number or n of them) as n numbers."""
    many = values if isinstance(values, Sequence) and not isinstance(values, str) else None
    items = list(many) if many is not None else [values] * n
    if len(items) != n:
        raise ValueError(f"`{name}` must be one number or {n} of them, got {values!r}")
    if integer:
        sizes = [as_int(v) for v in items]
        if any(v is None or v < 1 for v in sizes):
            raise ValueError(f"`{name}` must hold positive integers, got {values!r}")
        return tuple(sizes)
    factors = [real(v, name) for v in items]
    if any(v <= 0 for v in factors):
        raise ValueError(f"`{name}` must hold positive numbers, got {values!r}")
    return tuple(factors)


class _Resize:
    """The checked options of an interpolation and each spatial axis's matrix."""

    def __init__(
        self,
        x: Any,
        size: object,
        scale_factor: object,
        mode: object,
        align_corners: object,
        recompute_scale_factor: object,
        antialias: object,
    ) -> None:
        if x.ndim not in _MODES:
            raise ValueError(
                "`x` must be (N, C, L) or (N, C, H, W) for `interpolate`, "
                f"got shape {tuple(x.shape)}"
            )
        modes = _MODES[x.ndim]
        if mode not in modes:
            raise ValueError(
                f"`mode` for a {x.ndim}-D input must be one of {', '.join(map(repr, modes))}, "
                f"got {mode!r}"
            )
        if true_or_false(antialias, "antialias"):
            raise ValueError("antialias=True is not supported")
        linear = mode in ("linear", "bilinear")
        if align_corners is not None and not linear:
            raise ValueError(f"`align_corners` is for the linear modes, not mode={mode!r}")
        self.mode = str(mode)
        corners = False if align_corners is None else true_or_false(align_corners, "align_corners")
        self.align_corners = linear and corners
        n = x.ndim - 2
        inputs = tuple(x.shape[2:])
        if (size is None) == (scale_factor is None):
            raise ValueError("give exactly one of `size` and `scale_factor`")
        recompute = recompute_scale_factor is not None and true_or_false(
            recompute_scale_factor, "recompute_scale_factor"
        )
        if size is not None:
            if recompute:
                raise ValueError("`recompute_scale_factor` needs `scale_factor`, not `size`")
            self.outputs = _spatial(size, n, "size", integer=True)
            scales: tuple[float | None, ...] = (None,) * n
            self.factors: tuple[float | None, ...] = (None,) * n
        else:
            factors = _spatial(scale_factor, n, "scale_factor", integer=False)
            self.outputs = tuple(math.floor(i * f) for i, f in zip(inputs, factors, strict=True))
            if min(self.outputs) < 1:
                raise ValueError(
                    f"`scale_factor` (={scale_factor!r}) leaves no output pixel of input "
                    f"shape {tuple(x.shape)}"
                )
            scales = (None,) * n if recompute else tuple(1.0 / f for f in factors)
            self.factors = (None,) * n if recompute else factors
        self.inputs = inputs
        self.scales = scales  # (1 / each factor: the source coordinates' step, or None)

    def matrices(self, x: Any, xp: Any) -> list[Any]:
        """The (out, in) matrix of each spatial axis, in `x`'s dtype and device."""
        return [
            self._matrix(i, o, s, x, xp)
            for i, o, s in zip(self.inputs, self.outputs, self.scales, strict=True)
        ]

    def _matrix(self, n_in: int, n_out: int, scale: float | None, x: Any, xp: Any) -> Any:
        device = array_api_compat.device(x)
        columns = xp.arange(n_in, device=device)[None, :]
        nearest_2d = self.mode == "nearest" and len(self.inputs) == 2
        copies = nearest_2d or self.mode in ("linear", "bilinear")
        if (copies and n_out == n_in) or (nearest_2d and n_out == 2 * n_in):
            # PyTorch (2.13, CPU) copies an axis that keeps its size whatever the scale
            # factor (1.1 on 5 pixels keeps 5) in "linear", "bilinear" and 2-D
            # "nearest", whose axis that doubles (2.1 on 5) takes dst // 2; 1-D
            # "nearest" and "nearest-exact" follow their formula: so does xconv
            source = (xp.arange(n_out, device=device) // (n_out // n_in))[:, None]
            return xp.astype(columns == source, x.dtype)
        if self.mode in ("nearest", "nearest-exact"):
            # PyTorch computes the nearest source in float32, whatever the input's dtype
            step = n_in / n_out if scale is None else scale
            dst = xp.arange(n_out, dtype=xp.float32, device=device)
            if self.mode == "nearest-exact":
                dst = dst + 0.5
            source = xp.astype(xp.floor(dst * step), columns.dtype)
            source = xp.clip(source, 0, n_in - 1)[:, None]
            return xp.astype(columns == source, x.dtype)
        if self.align_corners:
            step = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
            source = xp.arange(n_out, dtype=x.dtype, device=device) * step
        else:
            step = n_in / n_out if scale is None else scale
            source = (xp.arange(n_out, dtype=x.dtype, device=device) + 0.5) * step - 0.5
            source = xp.maximum(source, 0.0)
        low = xp.floor(source)
        weight = (source - low)[:, None]
        low_index = xp.clip(xp.astype(low, columns.dtype), 0, n_in - 1)[:, None]
        high_index = xp.clip(low_index + 1, 0, n_in - 1)
        near = xp.astype(columns == low_index, x.dtype) * (1.0 - weight)
        return near + xp.astype(columns == high_index, x.dtype) * weight


def _apply(x: Any, matrices: list[Any], xp: Any, *, transpose: bool) -> Any:
    """`x`'s spatial axes multiplied by their matrices (or the transposes)."""
    if transpose:
        matrices = [xp.matrix_transpose(m) for m in matrices]
    # the last axis: x @ M.T; the one before it (H of NCHW): M @ x
    out = xp.matmul(x, xp.matrix_transpose(matrices[-1]))
    if len(matrices) == 2:
        out = xp.matmul(matrices[0], out)
    return out


def interpolate(
    x: Any,
    /,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Any:
    """`x` resized to `size`, or by `scale_factor`, as `torch.nn.functional.interpolate`.

    Args:
        x: (N, C, L) or (N, C, H, W), real floating dtype.
        size: the output's spatial size, an int or one per spatial axis.
        scale_factor: or the factor of each spatial axis; the output is
            ``floor(in * scale_factor)``, and the source coordinates use
            ``1 / scale_factor`` unless `recompute_scale_factor` is True.
        mode: "nearest" (default; PyTorch's: ``floor(dst * scale)``, and on 4-D input
            an axis that keeps its size is copied, one that doubles takes ``dst // 2``,
            as PyTorch's 2-D kernel does), "nearest-exact" (``floor((dst + 0.5) *
            scale)``), "linear" (3-D) or "bilinear" (4-D) (an axis that keeps its size
            is copied, as in PyTorch, whatever the scale factor).
        align_corners: for the linear modes: True maps the corner pixels' centres onto
            each other; False or None (default) their outer edges.
        recompute_scale_factor: use in / out instead of ``1 / scale_factor``.
        antialias: only False.

    Example:
        >>> import numpy as np
        >>> x = np.array([[[[0.0, 1.0], [2.0, 3.0]]]])
        >>> interpolate(x, scale_factor=2)[0, 0, 0]
        array([0., 0., 1., 1.])
        >>> interpolate(x, size=3, mode="bilinear", align_corners=True)[0, 0, 0]
        array([0. , 0.5, 1. ])
    """
    xp = namespace_of(x=x)
    resize = _Resize(x, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias)
    done = kernels_for(xp).interpolate(
        x, resize.mode, resize.outputs, resize.factors, align_corners=resize.align_corners
    )
    if done is not None:
        return done
    return _apply(x, resize.matrices(x, xp), xp, transpose=False)


def interpolate_backward(
    grad_output: Any,
    x: Any,
    /,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Any:
    """Gradient of `interpolate` with respect to `x` (only its shape matters): each
    output pixel's gradient goes back to its source pixels with their weights.

    Example:
        >>> import numpy as np
        >>> interpolate_backward(np.ones((1, 1, 4)), np.zeros((1, 1, 2)), size=4)
        array([[[2., 2.]]])
    """
    xp = namespace_of(grad_output=grad_output, x=x)
    resize = _Resize(x, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias)
    expected = (*tuple(x.shape[:2]), *resize.outputs)
    check_shape(grad_output, "grad_output", expected, "the interpolated output's shape")
    done = kernels_for(xp).interpolate_backward(
        grad_output,
        x,
        resize.mode,
        resize.outputs,
        resize.factors,
        align_corners=resize.align_corners,
    )
    if done is not None:
        return done
    return _apply(grad_output, resize.matrices(x, xp), xp, transpose=True)
