"""2-D max and average pooling and their gradients, side by side, via im2col.

Pooling reuses the convolution's window machinery: `unfold` copies every window into
a column (the convolution's layout, (C * kh * kw, N * L)), a reduction over the window
axis pools it, and `fold` (col2im) sums the gradient columns back into an image.
Semantics, options and defaults are those of `torch.nn.functional.max_pool2d` /
`avg_pool2d` (NCHW or unbatched CHW; `dilation`, `ceil_mode` and `return_indices` of
max pooling; `ceil_mode`, `count_include_pad` and `divisor_override` of average
pooling), and `padding` also takes ``"valid"`` and ``"same"`` (TensorFlow's) and
asymmetric pairs, as `conv2d` does; `stride` defaults to `kernel_size`, as in PyTorch.

Padding never wins a max: max pooling pads with -inf, and a window whose real pixels
are all -inf keeps its first real pixel as its maximum, as PyTorch does. Average
pooling counts the padding in each window's divisor unless ``count_include_pad=False``
(PyTorch's default; TensorFlow's ``padding="SAME"`` and xconv's `AveragePooling2D`
leave it out); the rows and columns that only `ceil_mode` adds are never counted. A
padding so wide that some window would hold no real pixel is refused.

Each op first asks its arrays' kernels (`Kernels.max_pool`, ...): NumPy's pool arrays
without padding through strided views of the windows' pixels (no copy of the windows,
no argmax), PyTorch's and JAX's are their own pooling ops; ``xconv.config.fast_kernels
= False`` runs the generic code everywhere, with the same results.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from xconv._typing import Array, IntOrPair, Namespace, Padding
from xconv._validation import as_int, check_shape, namespace_of, true_or_false

from ._batching import add_batch, check_layout, check_same_layout, drop_batch
from ._dispatch import kernels_for
from ._geometry import ConvGeometry
from ._im2col import fold, unfold
from ._interface import Kernels

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_gradient",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "max_pool2d_gradient",
]


def max_pool2d(
    x: Array,
    /,
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair | None = None,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """The largest value of every window of `x`.

    Args:
        x: input of shape (N, C, H, W) or unbatched (C, H, W), real floating dtype.
        kernel_size: window size, int or (kh, kw).
        stride: int or (sh, sw), >= 1; None (default) means `kernel_size`, so windows
            tile the input without overlap.
        padding: int, (pad_h, pad_w), ((top, bottom), (left, right)), ``"valid"`` or
            ``"same"`` (TensorFlow's: OH = ceil(H / sh)). Padding is -inf, so it never
            wins; every window must keep at least one real pixel.
        dilation: int or (dh, dw), >= 1: the spacing of a window's pixels.
        ceil_mode: round the output size up, not down (PyTorch's): a last window that
            overhangs the bottom or right is kept, unless it would start in the padding.
        return_indices: also return where each maximum is, as PyTorch does.

    Returns:
        Output of shape (N, C, OH, OW) (or (C, OH, OW)) in the namespace, device and
        dtype of `x`. NaN in a window gives NaN. With `return_indices`,
        ``(output, indices)``: each window's first maximum (row-major) as a flat index
        ``row * W + column`` into its (N, C) plane of `x`, an integer array shaped like
        the output, as `torch.nn.functional.max_pool2d` gives.

    Shape:
        ``OH = (H + top + bottom - dh * (kh - 1) - 1) // sh + 1`` (rounded up with
        `ceil_mode`); OW likewise.

    Example:
        >>> import numpy as np
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> max_pool2d(x, 2)[0, 0]
        array([[ 5.,  7.],
               [13., 15.]])
        >>> y = np.arange(9.0).reshape(1, 1, 3, 3) - 10
        >>> max_pool2d(y, 2, padding="same")[0, 0]
        array([[-6., -5.],
               [-3., -2.]])
        >>> out, indices = max_pool2d(x[0], 3, stride=2, ceil_mode=True, return_indices=True)
        >>> out, indices
        (array([[[10., 11.],
                [14., 15.]]]), array([[[10, 11],
                [14, 15]]]))
    """
    xp = namespace_of(x=x)
    with_indices = true_or_false(return_indices, "return_indices")
    unbatched = check_layout(x, "x", "NCHW")
    x = add_batch(x, unbatched, xp)
    geometry = pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    kernels = kernels_for(xp)
    out, index = max_forward(x, geometry, xp, kernels, keep_index=with_indices)
    if not with_indices:
        return drop_batch(out, unbatched)
    assert index is not None
    indices = _flat_indices(index, x, geometry, xp)
    return drop_batch(out, unbatched), drop_batch(indices, unbatched)


def max_pool2d_backward(
    grad_output: Array,
    x: Array,
    /,
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair | None = None,
    padding: Padding = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> Array:
    """Gradient of `max_pool2d` with respect to its input.

    Each window's gradient goes to the FIRST maximum of the window (in row-major
    order), as in PyTorch; where windows overlap, their gradients add up.

    Args:
        grad_output: gradient of the loss with respect to the output of
            ``max_pool2d(x, ...)``, shape (N, C, OH, OW) (or (C, OH, OW)).
        x: the forward pass's input.
        kernel_size, stride, padding, dilation, ceil_mode: the forward pass's options.

    Returns:
        The gradient with respect to `x`, shaped like `x`.

    Example:
        >>> import numpy as np
        >>> x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
        >>> max_pool2d_backward(np.ones((1, 1, 1, 1)), x, 2)[0, 0]
        array([[0., 1.],
               [0., 0.]])
    """
    xp = namespace_of(grad_output=grad_output, x=x)
    unbatched = check_layout(x, "x", "NCHW")
    check_same_layout(grad_output, "grad_output", x, "x")
    x, grad_output = add_batch(x, unbatched, xp), add_batch(grad_output, unbatched, xp)
    geometry = pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode)
    _check_grad_output(grad_output, x, geometry)
    kernels = kernels_for(xp)
    if (grad := kernels.max_pool_backward(grad_output, x, geometry)) is not None:
        return drop_batch(grad, unbatched)
    # the position of each window's first maximum, as the forward pass found it
    index = _first_maxima(_windows(x, geometry, xp, kernels), geometry, xp)
    return drop_batch(max_backward(grad_output, index, geometry, xp, kernels), unbatched)


def avg_pool2d(
    x: Array,
    /,
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair | None = None,
    padding: Padding = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """The mean of every window of `x`, as `torch.nn.functional.avg_pool2d`.

    Args:
        x: input of shape (N, C, H, W) or unbatched (C, H, W), real floating dtype.
        kernel_size, stride: as for `max_pool2d`.
        padding: as for `max_pool2d`; the padding is zeros.
        ceil_mode: round the output size up, as for `max_pool2d`.
        count_include_pad: divide each window's sum by its size including the padding
            (True, PyTorch's default) or by its number of real pixels only (False:
            TensorFlow's ``padding="SAME"``, xconv's `AveragePooling2D`). The rows and
            columns that only `ceil_mode` adds count in neither, as in PyTorch.
        divisor_override: a non-zero int to divide every window's sum by instead.

    Returns:
        Output of shape (N, C, OH, OW) (or (C, OH, OW)) in the namespace, device and
        dtype of `x`.

    Shape:
        ``OH = (H + top + bottom - kh) // sh + 1`` (rounded up with `ceil_mode`); OW
        likewise.

    Example:
        >>> import numpy as np
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> avg_pool2d(x, 2)[0, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]])
        >>> avg_pool2d(x, 2, padding=1)[0, 0]
        array([[0.  , 0.75, 0.75],
               [3.  , 7.5 , 4.5 ],
               [3.  , 6.75, 3.75]])
        >>> y = np.arange(9.0).reshape(1, 1, 3, 3)
        >>> avg_pool2d(y, 2, padding="same", count_include_pad=False)[0, 0]
        array([[2. , 3.5],
               [6.5, 8. ]])
    """
    xp = namespace_of(x=x)
    unbatched = check_layout(x, "x", "NCHW")
    x = add_batch(x, unbatched, xp)
    geometry = pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    divisor = _divisor_options(count_include_pad, divisor_override)
    return drop_batch(avg_forward(x, geometry, xp, kernels_for(xp), **divisor), unbatched)


def avg_pool2d_backward(
    grad_output: Array,
    x: Array,
    /,
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair | None = None,
    padding: Padding = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """Gradient of `avg_pool2d` with respect to its input.

    Every real pixel of a window gets the window's gradient over the window's divisor;
    where windows overlap, their gradients add up. Only the shape of `x` matters; it
    is checked like the forward pass's input.

    Args:
        grad_output: gradient of the loss with respect to the output of
            ``avg_pool2d(x, ...)``, shape (N, C, OH, OW) (or (C, OH, OW)).
        x: the forward pass's input.
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override:
            the forward pass's options.

    Returns:
        The gradient with respect to `x`, shaped like `x`.

    Example:
        >>> import numpy as np
        >>> avg_pool2d_backward(np.ones((1, 1, 1, 2)), np.zeros((1, 1, 2, 3)), 2,
        ...                     padding=((0, 0), (0, 1)), count_include_pad=False)[0, 0]
        array([[0.25, 0.25, 0.5 ],
               [0.25, 0.25, 0.5 ]])
    """
    xp = namespace_of(grad_output=grad_output, x=x)
    unbatched = check_layout(x, "x", "NCHW")
    check_same_layout(grad_output, "grad_output", x, "x")
    x, grad_output = add_batch(x, unbatched, xp), add_batch(grad_output, unbatched, xp)
    geometry = pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode)
    divisor = _divisor_options(count_include_pad, divisor_override)
    _check_grad_output(grad_output, x, geometry)
    grad = avg_backward(grad_output, geometry, xp, kernels_for(xp), **divisor)
    return drop_batch(grad, unbatched)


def pool_geometry(
    x: Array,
    kernel_size: IntOrPair,
    stride: IntOrPair | None,
    padding: Padding,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> ConvGeometry:
    """Validate a pooling's options for a checked (N, C, H, W) `x`; return its geometry."""
    return ConvGeometry.for_pooling(
        (x.shape[2], x.shape[3]),
        kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        ceil_mode=ceil_mode,
    )


def _divisor_options(count_include_pad: object, divisor_override: object) -> dict[str, Any]:
    """`avg_pool2d`'s divisor options, checked."""
    include = true_or_false(count_include_pad, "count_include_pad")
    if divisor_override is None:
        return {"count_include_pad": include, "divisor_override": None}
    divisor = as_int(divisor_override)
    if divisor is None:
        raise TypeError(f"`divisor_override` must be None or an integer, got {divisor_override!r}")
    if divisor == 0:
        raise ValueError(f"`divisor_override` must not be zero, got {divisor_override!r}")
    return {"count_include_pad": include, "divisor_override": divisor}


# -- with a geometry built beforehand (`ConvGeometry.for_pooling`), for layers ---------


def max_pool2d_forward(x: Array, /, *, geometry: ConvGeometry) -> tuple[Array, Array]:
    """`max_pool2d` of a checked `x`, and where each window's first maximum is.

    Returns:
        ``(output, index)``: `index` is opaque, for `max_pool2d_gradient`. On NumPy's
        fast path it refers to `x` and `output` themselves (no copy): change neither
        in place before the gradient is taken.

    Example:
        >>> import numpy as np
        >>> g = ConvGeometry.for_pooling((2, 2), 2)
        >>> out, index = max_pool2d_forward(np.array([[[[1.0, 4.0], [3.0, 2.0]]]]), geometry=g)
        >>> max_pool2d_gradient(np.ones_like(out), index, geometry=g)[0, 0]
        array([[0., 1.],
               [0., 0.]])
    """
    xp = array_api_compat.array_namespace(x)
    return max_forward(x, geometry, xp, kernels_for(xp), keep_index=True)


def max_pool2d_gradient(grad_output: Array, index: Array, /, *, geometry: ConvGeometry) -> Array:
    """The input gradient of `max_pool2d_forward`, from its `index`."""
    xp = array_api_compat.array_namespace(grad_output)
    kernels = kernels_for(xp)
    if (grad := kernels.max_pool_gradient(grad_output, index, geometry)) is not None:
        return grad
    if (positions := getattr(index, "positions", None)) is not None:
        # a kernel's own index, those kernels off (or not taking this gradient) since
        # the forward pass: in xconv's layout, for xconv's code
        index = positions(geometry)
    return max_backward(grad_output, index, geometry, xp, kernels)


def avg_pool2d_forward(
    x: Array,
    /,
    *,
    geometry: ConvGeometry,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """`avg_pool2d` of a checked `x` (options as `avg_pool2d`'s)."""
    xp = array_api_compat.array_namespace(x)
    divisor = _divisor_options(count_include_pad, divisor_override)
    return avg_forward(x, geometry, xp, kernels_for(xp), **divisor)


def avg_pool2d_gradient(
    grad_output: Array,
    /,
    *,
    geometry: ConvGeometry,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Array:
    """The input gradient of `avg_pool2d_forward` (with the same options)."""
    xp = array_api_compat.array_namespace(grad_output)
    divisor = _divisor_options(count_include_pad, divisor_override)
    return avg_backward(grad_output, geometry, xp, kernels_for(xp), **divisor)


def _check_grad_output(grad_output: Array, x: Array, geometry: ConvGeometry) -> None:
    expected = (x.shape[0], x.shape[1], *geometry.out_size)
    check_shape(grad_output, "grad_output", expected, "the shape of the pooling's output")


# -- implementations, arguments already checked ---------------------------------------
# Windows come out of `unfold` as (C * kh * kw, N * L); they are viewed as
# (C, kh * kw, N, L) so that axis 1 runs over the pixels of one window.


def _windows(x: Array, geometry: ConvGeometry, xp: Namespace, kernels: Kernels) -> Array:
    """The windows of `x` as (C, kh * kw, N, L), padding filled with -inf."""
    n, c = x.shape[0], x.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    # unfold pads with zeros (and so takes the fast paths, chunk by chunk on Dask);
    # adding -inf where a window pixel is padding keeps NaN and the first maximum
    windows = xp.reshape(unfold(x, geometry, xp, kernels), (c, kh * kw, n, oh * ow))
    if not geometry.is_padded:
        return windows
    return windows + _padding_mask(geometry, xp, x)


def _to_nchw(a: Array, geometry: ConvGeometry, xp: Namespace) -> Array:
    """(C, N, L) -> (N, C, OH, OW)."""
    c, n = a.shape[0], a.shape[1]
    return xp.permute_dims(xp.reshape(a, (c, n, *geometry.out_size)), (1, 0, 2, 3))


def _window_columns(grad: Array, geometry: ConvGeometry, xp: Namespace) -> Array:
    """(N, C, OH, OW) -> (C, 1, N, L), one value per window, for the window axis."""
    n, c = grad.shape[0], grad.shape[1]
    oh, ow = geometry.out_size
    return xp.reshape(xp.permute_dims(grad, (1, 0, 2, 3)), (c, 1, n, oh * ow))


def _padding_mask(geometry: ConvGeometry, xp: Namespace, like: Array) -> Array:
    """(1, kh * kw, 1, L): -inf where a window's pixel is padding, 0 where it is real."""
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    device = array_api_compat.device(like)

    def axis_mask(axis: int, taps: int, outputs: int) -> Array:
        before, size = geometry.padding[axis][0], geometry.in_size[axis]
        step, dilation = geometry.stride[axis], geometry.dilation[axis]
        table = [
            [
                0.0 if 0 <= o * step + t * dilation - before < size else -math.inf
                for o in range(outputs)
            ]
            for t in range(taps)
        ]
        return xp.asarray(table, dtype=like.dtype, device=device)

    rows = xp.reshape(axis_mask(0, kh, oh), (kh, 1, oh, 1))
    cols = xp.reshape(axis_mask(1, kw, ow), (1, kw, 1, ow))
    return xp.reshape(rows + cols, (1, kh * kw, 1, oh * ow))


def _first_maxima(windows: Array, geometry: ConvGeometry, xp: Namespace) -> Array:
    """Where each window's first maximum is, (C, 1, N, L), from `_windows`.

    `argmax` picks the first maximum; but in a window whose real pixels are all -inf,
    the -inf padding ties them and may come first: there PyTorch keeps the window's
    first real pixel, and so does this.
    """
    index = xp.argmax(windows, axis=1, keepdims=True)
    if not geometry.is_padded or 0 in windows.shape:
        return index  # (no padding to tie with; or no window, where Dask's max errs)
    oh, ow = geometry.out_size
    device = array_api_compat.device(index)
    first_real = xp.reshape(
        xp.asarray(geometry.first_real_taps(), dtype=index.dtype, device=device),
        (1, 1, 1, oh * ow),
    )
    only_inf = xp.max(windows, axis=1, keepdims=True) == -math.inf
    return xp.where(only_inf, first_real, index)


def max_forward(
    x: Array, geometry: ConvGeometry, xp: Namespace, kernels: Kernels, *, keep_index: bool = False
) -> tuple[Array, Array | None]:
    """Max pooling, and (if asked) where each window's first maximum is, (C, 1, N, L)
    (or the kernels' own index)."""
    done = kernels.max_pool(x, geometry, keep_index=keep_index)
    if done is not None:
        return done
    windows = _windows(x, geometry, xp, kernels)
    # max over the pixels of each window; the first maximum for the gradient
    out = _to_nchw(xp.max(windows, axis=1), geometry, xp)
    index = _first_maxima(windows, geometry, xp) if keep_index else None
    return out, index


def _flat_indices(index: Any, x: Array, geometry: ConvGeometry, xp: Namespace) -> Array:
    """`max_forward`'s index as PyTorch's: ``row * W + column`` of each window's first
    maximum in its (N, C) plane of `x`, shaped (N, C, OH, OW)."""
    if (positions := getattr(index, "positions", None)) is not None:
        index = positions(geometry)  # (a kernel's own index, in xconv's layout)
    n, c = x.shape[0], x.shape[1]
    (oh, ow), (sh, sw) = geometry.out_size, geometry.stride
    (dh, dw), kw = geometry.dilation, geometry.kernel_size[1]
    (top, _), (left, _) = geometry.padding
    width = geometry.in_size[1]
    device = array_api_compat.device(index)
    # window pixel k of output (r, s) is row r * sh - top + (k // kw) * dh of x, ...
    position = xp.permute_dims(xp.reshape(index, (c, n, oh, ow)), (1, 0, 2, 3))
    rows = xp.asarray([[r * sh - top] for r in range(oh)], dtype=index.dtype, device=device)
    cols = xp.asarray([[s * sw - left for s in range(ow)]], dtype=index.dtype, device=device)
    row = rows + (position // kw) * dh
    column = cols + (position % kw) * dw
    return row * width + column


def max_backward(
    grad_output: Array, index: Array, geometry: ConvGeometry, xp: Namespace, kernels: Kernels
) -> Array:
    """Route each window's gradient to its first maximum, then sum the windows back."""
    n, c = grad_output.shape[0], grad_output.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    # one-hot mask of the first maximum: window pixel k == argmax
    pixels = xp.arange(kh * kw, dtype=index.dtype, device=array_api_compat.device(index))
    first_max = xp.reshape(pixels, (1, kh * kw, 1, 1)) == index
    # gradient columns: the output gradient at the maximum, zero elsewhere
    grad_cols = xp.where(first_max, _window_columns(grad_output, geometry, xp), 0.0)
    # fold sums overlapping windows and crops the padding away
    return fold(xp.reshape(grad_cols, (c * kh * kw, n * oh * ow)), geometry, xp, kernels)


def _divisors(
    geometry: ConvGeometry,
    xp: Namespace,
    like: Array,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Array:
    """What each window's sum is divided by, as an (OH, OW) array like `like`."""
    table = geometry.pool_divisors(
        count_include_pad=count_include_pad, divisor_override=divisor_override
    )
    return xp.asarray(table, dtype=like.dtype, device=array_api_compat.device(like))


def avg_forward(
    x: Array,
    geometry: ConvGeometry,
    xp: Namespace,
    kernels: Kernels,
    *,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Array:
    """Average pooling: each window's sum over its divisor."""
    divisor: dict[str, Any] = {
        "count_include_pad": count_include_pad,
        "divisor_override": divisor_override,
    }
    if (out := kernels.avg_pool(x, geometry, **divisor)) is not None:
        return out
    n, c = x.shape[0], x.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    # unfold (zero padding, so padding adds nothing to the sums)
    windows = xp.reshape(unfold(x, geometry, xp, kernels), (c, kh * kw, n, oh * ow))
    sums = _to_nchw(xp.sum(windows, axis=1), geometry, xp)
    # divide by the window's size, its real pixels or the override
    return sums / _divisors(geometry, xp, x, **divisor)


def avg_backward(
    grad_output: Array,
    geometry: ConvGeometry,
    xp: Namespace,
    kernels: Kernels,
    *,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Array:
    """Spread each window's gradient over its divisor, then sum the windows back."""
    divisor: dict[str, Any] = {
        "count_include_pad": count_include_pad,
        "divisor_override": divisor_override,
    }
    if (grad := kernels.avg_pool_gradient(grad_output, geometry, **divisor)) is not None:
        return grad
    n, c = grad_output.shape[0], grad_output.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    # each pixel of a window gets the window's gradient over the window's divisor
    share = grad_output / _divisors(geometry, xp, grad_output, **divisor)
    grad_cols = xp.broadcast_to(_window_columns(share, geometry, xp), (c, kh * kw, n, oh * ow))
    # fold sums overlapping windows; the padding's share is cropped away
    return fold(xp.reshape(grad_cols, (c * kh * kw, n * oh * ow)), geometry, xp, kernels)
