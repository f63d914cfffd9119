"""CuPy kernels for im2col and col2im: one CUDA thread per output element.

The generic im2col copies one strided slice per kernel tap and col2im adds one slice
per tap: kh * kw kernel launches each, over the whole output. On CuPy each op is one
`cupy.ElementwiseKernel` instead:

- im2col: one thread per element of the (N, C * kh * kw, L) columns; it reads its
  pixel of the input, or 0 where the window lies in the padding.
- col2im, gather style: one thread per pixel of the (N, C, H, W) image; it adds the
  column entries of every window that covers the pixel, tap by tap in the order the
  generic code adds them, so it needs no atomics and its float sums equal the generic
  ones.

The index formulas are written once, below, in the part of C that Python reads the
same way (integers, ``/`` as integer division on non-negative operands, every
comparison in parentheses). They are pasted into the CUDA source and evaluated on
NumPy arrays by `im2col_reference` and `col2im_reference`, so a test on a CPU checks
the very formulas that run on the GPU. The module imports CuPy only when a kernel runs.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from xconv.functional import ConvGeometry

__all__ = ["col2im", "col2im_reference", "im2col", "im2col_reference", "kernel_source"]

Steps = tuple[tuple[str, str], ...]

#: geometry values every kernel takes, in this order
PARAMS = ("height", "width", "kh", "kw", "sh", "sw", "dh", "dw", "pad_top", "pad_left")
PARAMS_OUT = ("out_h", "out_w")

# im2col: `idx` is the flat index of one element of the (N, C * kh * kw, OH * OW)
# columns; `plane` = n * C + c counts the (sample, channel) images.
IM2COL_STEPS: Steps = (
    ("ow_", "idx % out_w"),
    ("oh_", "(idx / out_w) % out_h"),
    ("tap_j", "(idx / (out_h * out_w)) % kw"),
    ("tap_i", "(idx / (out_h * out_w * kw)) % kh"),
    ("plane", "idx / (out_h * out_w * kw * kh)"),
    ("row", "oh_ * sh + tap_i * dh - pad_top"),
    ("col", "ow_ * sw + tap_j * dw - pad_left"),
    ("inside", "(row >= 0) && (row < height) && (col >= 0) && (col < width)"),
    ("source", "(plane * height + row) * width + col"),
)

# col2im, per pixel: `idx` is the flat index of one pixel of the (N, C, H, W) image.
COL2IM_PIXEL_STEPS: Steps = (
    ("col", "idx % width"),
    ("row", "(idx / width) % height"),
    ("plane", "idx / (height * width)"),
)
# per tap row `tap_i`: which output row's window puts tap row `tap_i` on this pixel
COL2IM_ROW_STEPS: Steps = (
    ("span_h", "row + pad_top - tap_i * dh"),
    ("ok_h", "(span_h >= 0) && ((span_h % sh) == 0) && ((span_h / sh) < out_h)"),
    ("oh_", "span_h / sh"),
)
# per tap column `tap_j`, likewise, then where that column entry is
COL2IM_COL_STEPS: Steps = (
    ("span_w", "col + pad_left - tap_j * dw"),
    ("ok_w", "(span_w >= 0) && ((span_w % sw) == 0) && ((span_w / sw) < out_w)"),
    ("ow_", "span_w / sw"),
    ("source", "(((plane * kh + tap_i) * kw + tap_j) * out_h + oh_) * out_w + ow_"),
)


def _c_lines(steps: Steps, indent: str) -> str:
    return "\n".join(f"{indent}const IDX {name} = {expr};" for name, expr in steps)


def kernel_source(op: str, /, *, wide: bool = False) -> str:
    """The CUDA C body of the ElementwiseKernel for `op` (``"im2col"`` or ``"col2im"``).

    `wide` picks 64-bit index arithmetic, needed when an array has 2**31 elements or
    more; 32-bit is faster.

    Example:
        >>> print(kernel_source("im2col").splitlines()[1])
        const IDX idx = (IDX)i;
    """
    index = "long long" if wide else "int"
    if op == "im2col":
        body = [
            _c_lines(IM2COL_STEPS, ""),
            "cols = inside ? image[source] : (T)0;",
        ]
    elif op == "col2im":
        body = [
            _c_lines(COL2IM_PIXEL_STEPS, ""),
            "T total = 0;",
            "for (IDX tap_i = 0; tap_i < kh; ++tap_i) {",
            _c_lines(COL2IM_ROW_STEPS, "  "),
            "  if (!ok_h) continue;",
            "  for (IDX tap_j = 0; tap_j < kw; ++tap_j) {",
            _c_lines(COL2IM_COL_STEPS, "    "),
            "    if (ok_w) total += cols[source];",
            "  }",
            "}",
            "image = total;",
        ]
    else:
        raise ValueError(f"`op` must be 'im2col' or 'col2im', got {op!r}")
    return "\n".join([f"typedef {index} IDX;", "const IDX idx = (IDX)i;", *body])


# -- the formulas on NumPy arrays ----------------------------------------------------------


def _python(expr: str) -> str:
    """A C expression of the steps above as Python: `/` -> `//`, `&&` -> `&`."""
    return expr.replace("/", "//").replace("&&", "&")


def _evaluate(steps: Steps, scope: dict[str, Any]) -> None:
    for name, expr in steps:
        scope[name] = eval(_python(expr), {"__builtins__": {}}, scope)


def _scope(geometry: ConvGeometry) -> dict[str, Any]:
    (top, _), (left, _) = geometry.padding
    values = (
        *geometry.in_size,
        *geometry.kernel_size,
        *geometry.stride,
        *geometry.dilation,
        top,
        left,
        *geometry.out_size,
    )
    return {name: np.int64(v) for name, v in zip(PARAMS + PARAMS_OUT, values, strict=True)}


def im2col_reference(x: np.ndarray, geometry: ConvGeometry, /) -> np.ndarray:
    """The im2col kernel's index formulas evaluated on NumPy, one 'thread' per element.

    Example:
        >>> from xconv.functional import ConvGeometry
        >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
        >>> im2col_reference(x, ConvGeometry.build((3, 3), 2))[0]
        array([[0., 1., 3., 4.],
               [1., 2., 4., 5.],
               [3., 4., 6., 7.],
               [4., 5., 7., 8.]])
    """
    n, c = x.shape[0], x.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    shape = (n, c * kh * kw, oh * ow)
    scope = _scope(geometry)
    scope["idx"] = np.arange(n * c * kh * kw * oh * ow, dtype=np.int64)
    _evaluate(IM2COL_STEPS, scope)
    flat = np.ascontiguousarray(x).reshape(-1)
    # read only where inside (index 0 stands in elsewhere), as the C ternary does
    if flat.size:
        read = flat[np.where(scope["inside"], scope["source"], 0)]
    else:  # an empty image: every window lies in the padding
        read = np.zeros(scope["idx"].shape, dtype=x.dtype)
    cols = np.where(scope["inside"], read, 0).astype(x.dtype)
    return cols.reshape(shape)


def col2im_reference(cols: np.ndarray, geometry: ConvGeometry, /) -> np.ndarray:
    """The gather col2im kernel's formulas and loops on NumPy, one 'thread' per pixel.

    Example:
        >>> from xconv.functional import ConvGeometry
        >>> col2im_reference(np.ones((1, 4, 4)), ConvGeometry.build((3, 3), 2))[0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
    """
    n = cols.shape[0]
    kh, kw = geometry.kernel_size
    c = cols.shape[1] // (kh * kw)
    height, width = geometry.in_size
    scope = _scope(geometry)
    scope["idx"] = np.arange(n * c * height * width, dtype=np.int64)
    _evaluate(COL2IM_PIXEL_STEPS, scope)
    flat = np.ascontiguousarray(cols).reshape(-1)
    total = np.zeros(scope["idx"].shape, dtype=cols.dtype)
    # the kernel's two loops over the taps, every pixel at once
    for tap_i in range(kh):
        scope["tap_i"] = np.int64(tap_i)
        _evaluate(COL2IM_ROW_STEPS, scope)
        for tap_j in range(kw):
            scope["tap_j"] = np.int64(tap_j)
            _evaluate(COL2IM_COL_STEPS, scope)
            ok = scope["ok_h"] & scope["ok_w"]
            if flat.size:
                total = total + np.where(ok, flat[np.where(ok, scope["source"], 0)], 0)
    return total.astype(cols.dtype).reshape(n, c, height, width)


# -- the CuPy kernels -----------------------------------------------------------------------

#: dtypes the kernels handle; others take the generic path
DTYPES = ("float32", "float64")
_INT32_LIMIT = 2**31 - 1


@functools.cache
def _kernel(op: str, wide: bool) -> Any:
    import cupy

    index = "int64" if wide else "int32"
    params = ", ".join(f"{index} {name}" for name in PARAMS + PARAMS_OUT)
    source, target = ("image", "cols") if op == "im2col" else ("cols", "image")
    return cupy.ElementwiseKernel(
        f"raw T {source}, {params}",
        f"T {target}",
        kernel_source(op, wide=wide),
        f"xconv_{op}_{index}",
    )


def _arguments(geometry: ConvGeometry, wide: bool) -> list[Any]:
    cast = np.int64 if wide else np.int32
    return [cast(v) for v in _scope(geometry).values()]


def _generic(op: str) -> Any:
    # imported here: xconv.functional imports this package, not the other way round
    from xconv.functional import _im2col

    return _im2col.im2col_generic if op == "im2col" else _im2col.col2im_generic


def im2col(x: Any, geometry: ConvGeometry, /) -> Any:
    """im2col of a CuPy array (N, C, H, W) -> (N, C * kh * kw, L), on `x`'s device.

    The same result as `xconv.functional.im2col`, in one kernel launch. Dtypes other
    than float32 and float64 go to the generic code.
    """
    import array_api_compat.cupy as xp
    import cupy

    if x.dtype.name not in DTYPES:
        return _generic("im2col")(x, geometry, xp)
    n, c = x.shape[0], x.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    with x.device:
        cols = cupy.empty((n, c * kh * kw, oh * ow), dtype=x.dtype)
        if cols.size == 0:
            return cols
        wide = max(x.size, cols.size) > _INT32_LIMIT
        image = cupy.ascontiguousarray(x).reshape(-1)
        _kernel("im2col", wide)(image, *_arguments(geometry, wide), cols)
    return cols


def col2im(cols: Any, geometry: ConvGeometry, /) -> Any:
    """col2im of CuPy columns (N, C * kh * kw, L) -> (N, C, H, W), on their device.

    The same result as `xconv.functional.col2im`: one thread per pixel gathers what
    the windows over it hold, without atomics. Dtypes other than float32 and float64
    go to the generic code.
    """
    import array_api_compat.cupy as xp
    import cupy

    if cols.dtype.name not in DTYPES:
        return _generic("col2im")(cols, geometry, xp)
    n = cols.shape[0]
    kh, kw = geometry.kernel_size
    c = cols.shape[1] // (kh * kw)
    with cols.device:
        image = cupy.empty((n, c, *geometry.in_size), dtype=cols.dtype)
        if image.size == 0:
            return image
        wide = max(cols.size, image.size) > _INT32_LIMIT
        flat = cupy.ascontiguousarray(cols).reshape(-1)
        _kernel("col2im", wide)(flat, *_arguments(geometry, wide), image)
    return image
