"""CuPy's fast path for im2col and col2im: one CUDA thread per output element.

The generic unfold copies one strided slice per kernel tap and fold adds one slice
per tap: kh * kw kernel launches each, over the whole output. On CuPy each op is one
`cupy.ElementwiseKernel` instead, in the convolution's layout (C * kh * kw, N * L):

- unfold: one thread per element of the columns; it reads its pixel of the input, or
  0 where the window lies in the padding.
- fold, gather style: one thread per pixel of the (N, C, H, W) image; it adds the
  column entries of every window that covers the pixel, tap by tap in the order the
  generic code adds them, so it needs no atomics and its float sums equal the
  generic ones.

The index formulas are written once, below, in the part of C that Python reads the
same way (integers, ``/`` as integer division on non-negative operands, every
comparison in parentheses). They are pasted into the CUDA source and evaluated on
NumPy arrays by `reference`, so a test on a CPU checks the very formulas that run on
the GPU, and `cuda_source` gives each kernel (`INSTANTIATIONS`, for every dtype of
`DTYPES`) as CUDA source that NVRTC compiles in CI without a GPU. The module imports
CuPy only when a kernel runs.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .._interface import Blocks, Kernels

if TYPE_CHECKING:
    from .._geometry import ConvGeometry

__all__ = [
    "C_TYPES",
    "DTYPES",
    "INSTANTIATIONS",
    "CupyKernels",
    "cuda_source",
    "fold",
    "kernel_source",
    "reference",
    "unfold",
]

Steps = tuple[tuple[str, str], ...]

#: sizes every kernel takes, in this order
PARAMS = (
    "batch", "channels", "height", "width", "kh", "kw", "sh", "sw", "dh", "dw",
    "pad_top", "pad_left", "out_h", "out_w",
)  # fmt: skip

# Where tap (tap_i, tap_j) of the window at output pixel (oh_, ow_) lands in the image.
_WINDOW: Steps = (
    ("row", "oh_ * sh + tap_i * dh - pad_top"),
    ("col", "ow_ * sw + tap_j * dw - pad_left"),
    ("inside", "(row >= 0) && (row < height) && (col >= 0) && (col < width)"),
)

# unfold, a copy kernel: `idx` is the flat index of one element of the columns,
# (C * kh * kw, N * OH * OW), the batch's columns side by side.
UNFOLD_STEPS: Steps = (
    ("ow_", "idx % out_w"),
    ("oh_", "(idx / out_w) % out_h"),
    ("sample", "(idx / (out_h * out_w)) % batch"),
    ("tap_j", "(idx / (out_h * out_w * batch)) % kw"),
    ("tap_i", "(idx / (out_h * out_w * batch * kw)) % kh"),
    ("channel", "idx / (out_h * out_w * batch * kw * kh)"),
    *_WINDOW,
    ("source", "((sample * channels + channel) * height + row) * width + col"),
)

# fold, a gather kernel: `idx` is the flat index of one pixel of the (N, C, H, W)
# image. Per tap row `tap_i`: which output row's window puts that tap on this pixel.
_TAP_ROW: Steps = (
    ("span_h", "row + pad_top - tap_i * dh"),
    ("ok_h", "(span_h >= 0) && ((span_h % sh) == 0) && ((span_h / sh) < out_h)"),
    ("oh_", "span_h / sh"),
)
_TAP_COL: Steps = (
    ("span_w", "col + pad_left - tap_j * dw"),
    ("ok_w", "(span_w >= 0) && ((span_w % sw) == 0) && ((span_w / sw) < out_w)"),
    ("ow_", "span_w / sw"),
)
FOLD_PIXEL_STEPS: Steps = (
    ("col", "idx % width"),
    ("row", "(idx / width) % height"),
    ("channel", "(idx / (height * width)) % channels"),
    ("sample", "idx / (height * width * channels)"),
)
FOLD_COL_STEPS: Steps = (
    *_TAP_COL,
    (
        "source",
        "((((channel * kh + tap_i) * kw + tap_j) * batch + sample) * out_h + oh_) * out_w + ow_",
    ),
)

#: op -> (steps per element or pixel, per tap row, per tap column); the last two only
#: for the gather (fold) kernel
STEPS: dict[str, tuple[Steps, Steps, Steps]] = {
    "unfold": (UNFOLD_STEPS, (), ()),
    "fold": (FOLD_PIXEL_STEPS, _TAP_ROW, FOLD_COL_STEPS),
}


def _c_lines(steps: Steps, indent: str) -> str:
    return "\n".join(f"{indent}const IDX {name} = {expr};" for name, expr in steps)


def kernel_source(op: str, /, *, wide: bool = False) -> str:
    """The CUDA C body of the ElementwiseKernel for `op` (a key of `STEPS`).

    `wide` picks 64-bit index arithmetic, used when an array has more than 2**30
    elements; 32-bit is faster.

    Example:
        >>> print(kernel_source("unfold").splitlines()[1])
        const IDX idx = (IDX)i;
    """
    if op not in STEPS:
        raise ValueError(f"`op` must be one of {sorted(STEPS)}, got {op!r}")
    index = "long long" if wide else "int"
    first, per_row, per_col = STEPS[op]
    if op == "unfold":
        body = [_c_lines(first, ""), "cols = inside ? image[source] : (T)0;"]
    else:
        body = [
            _c_lines(first, ""),
            "T total = 0;",
            "for (IDX tap_i = 0; tap_i < kh; ++tap_i) {",
            _c_lines(per_row, "  "),
            "  if (!ok_h) continue;",
            "  for (IDX tap_j = 0; tap_j < kw; ++tap_j) {",
            _c_lines(per_col, "    "),
            "    if (ok_w) total += cols[source];",
            "  }",
            "}",
            "image = total;",
        ]
    return "\n".join([f"typedef {index} IDX;", "const IDX idx = (IDX)i;", *body])


# -- the formulas on NumPy arrays ----------------------------------------------------------


def _python(expr: str) -> str:
    """A C expression of the steps above as Python: `/` -> `//`, `&&` -> `&`."""
    return expr.replace("/", "//").replace("&&", "&")


def _evaluate(steps: Steps, scope: dict[str, Any]) -> None:
    for name, expr in steps:
        scope[name] = eval(_python(expr), {"__builtins__": {}}, scope)


def sizes(op: str, shape: tuple[int, ...], geometry: ConvGeometry) -> dict[str, int]:
    """The kernel's size parameters (`PARAMS`) for an input of `shape` to `op`."""
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    if op == "unfold":
        batch, channels = shape[0], shape[1]
    else:
        batch, channels = shape[1] // (oh * ow), shape[0] // (kh * kw)
    (top, _), (left, _) = geometry.padding
    values = (batch, channels, *geometry.in_size, kh, kw, *geometry.stride, *geometry.dilation)
    return dict(zip(PARAMS, (*values, top, left, oh, ow), strict=True))


def output_shape(op: str, size: dict[str, int]) -> tuple[int, ...]:
    """The shape of `op`'s result, from its `sizes`."""
    n, c = size["batch"], size["channels"]
    taps, pixels = size["kh"] * size["kw"], size["out_h"] * size["out_w"]
    if op == "unfold":
        return (c * taps, n * pixels)
    return (n, c, size["height"], size["width"])


def reference(op: str, a: np.ndarray, geometry: ConvGeometry, /) -> np.ndarray:
    """Kernel `op`'s index formulas and loops evaluated on NumPy, every 'thread' at once.

    Example:
        >>> from xconv.functional import ConvGeometry
        >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
        >>> reference("unfold", x, ConvGeometry.build((3, 3), 2))
        array([[0., 1., 3., 4.],
               [1., 2., 4., 5.],
               [3., 4., 6., 7.],
               [4., 5., 7., 8.]])
        >>> reference("fold", np.ones((4, 4)), ConvGeometry.build((3, 3), 2))[0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
    """
    size = sizes(op, a.shape, geometry)
    shape = output_shape(op, size)
    scope: dict[str, Any] = {name: np.int64(v) for name, v in size.items()}
    scope["idx"] = np.arange(math.prod(shape), dtype=np.int64)
    first, per_row, per_col = STEPS[op]
    _evaluate(first, scope)
    flat = np.ascontiguousarray(a).reshape(-1)

    def read(where: np.ndarray) -> np.ndarray:
        # index 0 stands in where nothing is read, as the C code skips the read
        if flat.size == 0:
            return np.zeros(where.shape, dtype=a.dtype)
        return np.where(where, flat[np.where(where, scope["source"], 0)], 0)

    if op == "unfold":
        return read(scope["inside"]).astype(a.dtype).reshape(shape)
    total = np.zeros(scope["idx"].shape, dtype=a.dtype)
    # the kernel's two loops over the taps, every pixel at once
    for tap_i in range(size["kh"]):
        scope["tap_i"] = np.int64(tap_i)
        _evaluate(per_row, scope)
        for tap_j in range(size["kw"]):
            scope["tap_j"] = np.int64(tap_j)
            _evaluate(per_col, scope)
            total = total + read(scope["ok_h"] & scope["ok_w"])
    return total.astype(a.dtype).reshape(shape)


# -- the CuPy kernels -----------------------------------------------------------------------

#: dtypes the kernels handle; others take the generic path
DTYPES = ("float32", "float64")
#: arrays up to this many elements use 32-bit indices: half the int32 range, so that
#: no intermediate index (also those computed for windows in the padding) overflows
_INT32_LIMIT = 2**30


#: C type of each dtype in `DTYPES`
C_TYPES = {"float32": "float", "float64": "double"}
#: every kernel `_kernel` builds: (op, wide), each instantiated for every dtype in `DTYPES`
INSTANTIATIONS = tuple((op, wide) for op in sorted(STEPS) for wide in (False, True))


def _arrays(op: str) -> tuple[str, str]:
    """The kernel's (input, output) array names: unfold reads the image, fold the columns."""
    return ("image", "cols") if op == "unfold" else ("cols", "image")


def _kernel_name(op: str, wide: bool) -> str:
    return f"xconv_{op}_{'int64' if wide else 'int32'}"


def cuda_source(op: str, dtype: str, /, *, wide: bool = False) -> str:
    """Kernel `op` for `dtype` as one CUDA translation unit, compilable without CuPy.

    The body is `kernel_source`'s, wrapped as `cupy.ElementwiseKernel` wraps it: `T`
    is the dtype's C type, the input a raw pointer indexed by the body, the output the
    element of thread `i`, and one thread per output element in a grid-stride loop.
    NVRTC compiles it on a machine without a GPU (``tests/test_cuda_sources.py``).

    Example:
        >>> print(cuda_source("fold", "float64").splitlines()[0])
        typedef double T;
    """
    if dtype not in C_TYPES:
        raise ValueError(f"`dtype` must be one of {list(C_TYPES)}, got {dtype!r}")
    index = "long long" if wide else "int"
    source, target = _arrays(op)
    params = ", ".join(f"const {index} {name}" for name in PARAMS)
    body = kernel_source(op, wide=wide)  # checks `op`
    return "\n".join(
        [
            f"typedef {C_TYPES[dtype]} T;",
            f'extern "C" __global__ void {_kernel_name(op, wide)}(',
            f"    const T* __restrict__ {source}, {params},",
            f"    T* __restrict__ {target}_out, const long long n) {{",
            "  const long long step = (long long)blockDim.x * gridDim.x;",
            "  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;",
            "       i += step) {",
            f"    T& {target} = {target}_out[i];",
            *(f"    {line}" for line in body.splitlines()),
            "  }",
            "}",
            "",
        ]
    )


@functools.cache
def _kernel(op: str, wide: bool) -> Any:
    import cupy

    index = "int64" if wide else "int32"
    params = ", ".join(f"{index} {name}" for name in PARAMS)
    source, target = _arrays(op)
    return cupy.ElementwiseKernel(
        f"raw T {source}, {params}",
        f"T {target}",
        kernel_source(op, wide=wide),
        _kernel_name(op, wide),
    )


def supports(dtype: Any) -> bool:
    """Whether the kernels handle arrays of `dtype` (others take the generic path)."""
    return getattr(dtype, "name", str(dtype)) in DTYPES


def _run(op: str, a: Any, geometry: ConvGeometry) -> Any:
    """Kernel `op` on CuPy array `a` (float32 or float64), on `a`'s device."""
    import cupy

    if not supports(a.dtype):
        raise TypeError(f"the CuPy kernels take float32 or float64 arrays, got {a.dtype}")
    size = sizes(op, tuple(a.shape), geometry)
    with a.device:
        out = cupy.empty(output_shape(op, size), dtype=a.dtype)
        if out.size == 0:
            return out
        wide = max(a.size, out.size) > _INT32_LIMIT
        cast = np.int64 if wide else np.int32
        flat = cupy.ascontiguousarray(a).reshape(-1)
        _kernel(op, wide)(flat, *(cast(v) for v in size.values()), out)
    return out


def unfold(x: Any, geometry: ConvGeometry, /) -> Any:
    """Columns (C * kh * kw, N * L) of CuPy (N, C, H, W), one thread per element."""
    return _run("unfold", x, geometry)


def fold(cols: Any, geometry: ConvGeometry, /) -> Any:
    """CuPy columns (C * kh * kw, N * L) summed back to (N, C, H, W), a thread per pixel."""
    return _run("fold", cols, geometry)


class CupyKernels(Kernels):
    """xconv's kernels for CuPy arrays: im2col and col2im as one CUDA kernel each
    (float32 and float64; other dtypes take the generic code)."""

    name = "cupy"

    def unfold(self, x: Any, geometry: ConvGeometry, *, scratch: bool, blocks: Blocks) -> Any:
        return unfold(x, geometry) if supports(x.dtype) else None

    def fold(self, cols: Any, geometry: ConvGeometry, *, blocks: Blocks) -> Any:
        return fold(cols, geometry) if supports(cols.dtype) else None
