"""2-D max and average pooling and their gradients, side by side, via im2col.

Pooling reuses the convolution's window machinery: `unfold` copies every window into
a column (the convolution's layout, (C * kh * kw, N * L)), a reduction over the window
axis pools it, and `fold` (col2im) sums the gradient columns back into an image.
Semantics are those of `torch.nn.functional.max_pool2d` / `avg_pool2d` (NCHW,
``ceil_mode=False``), with two differences: `stride` defaults to `kernel_size`, and
`padding` also takes ``"valid"`` and ``"same"`` (TensorFlow's) and asymmetric pairs,
as `conv2d` does.

Padding never takes part in a pool: max pooling pads with -inf, and average pooling
divides each window's sum by the number of real (non-padding) pixels in it, like
PyTorch with ``count_include_pad=False`` and TensorFlow with ``padding="SAME"``.
A padding so wide that some window would hold no real pixel is refused.

Each op first asks its arrays' kernels (`Kernels.max_pool`, ...): NumPy's pool arrays
without padding through strided views of the windows' pixels (no copy of the windows,
no argmax), PyTorch's and JAX's are their own pooling ops; ``xconv.config.fast_kernels
= False`` runs the generic code everywhere, with the same results.
"""

from __future__ import annotations

import math

import array_api_compat

from xconv._typing import Array, IntOrPair, Namespace, Padding
from xconv._validation import check_ndim, check_shape, namespace_of

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
) -> Array:
    """The largest value of every window of `x`.

    Args:
        x: input of shape (N, C, H, W), real floating dtype.
        kernel_size: window size, int or (kh, kw).
        stride: int or (sh, sw), >= 1; None (default) means `kernel_size`, so windows
            tile the input without overlap.
        padding: int, (pad_h, pad_w), ((top, bottom), (left, right)), ``"valid"`` or
            ``"same"`` (TensorFlow's: OH = ceil(H / sh)). Padding is -inf, so it never
            wins; every window must keep at least one real pixel.

    Returns:
        Output of shape (N, C, OH, OW) in the namespace, device and dtype of `x`.
        NaN in a window gives NaN.

    Shape:
        ``OH = (H + top + bottom - kh) // sh + 1``; OW likewise.

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
    """
    xp = namespace_of(x=x)
    geometry = pool_geometry(x, kernel_size, stride, padding)
    out, _ = max_forward(x, geometry, xp, kernels_for(xp))
    return out


def max_pool2d_backward(
    grad_output: Array,
    x: Array,
    /,
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair | None = None,
    padding: Padding = 0,
) -> Array:
    """Gradient of `max_pool2d` with respect to its input.

    Each window's gradient goes to the FIRST maximum of the window (in row-major
    order), as in PyTorch; where windows overlap, their gradients add up.

    Args:
        grad_output: gradient of the loss with respect to the output of
            ``max_pool2d(x, ...)``, shape (N, C, OH, OW).
        x: the forward pass's input.
        kernel_size, stride, padding: the forward pass's options.

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
    geometry = pool_geometry(x, kernel_size, stride, padding)
    _check_grad_output(grad_output, x, geometry)
    kernels = kernels_for(xp)
    if (grad := kernels.max_pool_backward(grad_output, x, geometry)) is not None:
        return grad
    # the position of each window's first maximum, as the forward pass found it
    index = xp.argmax(_windows(x, geometry, xp, kernels), axis=1, keepdims=True)
    return max_backward(grad_output, index, geometry, xp, kernels)


def avg_pool2d(
    x: Array,
    /,
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair | None = None,
    padding: Padding = 0,
) -> Array:
    """The mean of the real pixels of every window of `x`.

    Padding is left out of the mean: a window's sum is divided by the number of
    real (non-padding) pixels in it, as in PyTorch with ``count_include_pad=False``
    and TensorFlow with ``padding="SAME"``.

    Args:
        x: input of shape (N, C, H, W), real floating dtype.
        kernel_size, stride, padding: as for `max_pool2d`.

    Returns:
        Output of shape (N, C, OH, OW) in the namespace, device and dtype of `x`.

    Shape:
        ``OH = (H + top + bottom - kh) // sh + 1``; OW likewise.

    Example:
        >>> import numpy as np
        >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
        >>> avg_pool2d(x, 2)[0, 0]
        array([[ 2.5,  4.5],
               [10.5, 12.5]])
        >>> y = np.arange(9.0).reshape(1, 1, 3, 3)
        >>> avg_pool2d(y, 2, padding="same")[0, 0]
        array([[2. , 3.5],
               [6.5, 8. ]])
    """
    xp = namespace_of(x=x)
    geometry = pool_geometry(x, kernel_size, stride, padding)
    return avg_forward(x, geometry, xp, kernels_for(xp))


def avg_pool2d_backward(
    grad_output: Array,
    x: Array,
    /,
    kernel_size: IntOrPair,
    *,
    stride: IntOrPair | None = None,
    padding: Padding = 0,
) -> Array:
    """Gradient of `avg_pool2d` with respect to its input.

    Every real pixel of a window gets the window's gradient divided by the number
    of real pixels in it; where windows overlap, their gradients add up. Only the
    shape of `x` matters; it is checked like the forward pass's input.

    Args:
        grad_output: gradient of the loss with respect to the output of
            ``avg_pool2d(x, ...)``, shape (N, C, OH, OW).
        x: the forward pass's input.
        kernel_size, stride, padding: the forward pass's options.

    Returns:
        The gradient with respect to `x`, shaped like `x`.

    Example:
        >>> import numpy as np
        >>> avg_pool2d_backward(np.ones((1, 1, 1, 2)), np.zeros((1, 1, 2, 3)), 2,
        ...                     padding=((0, 0), (0, 1)))[0, 0]
        array([[0.25, 0.25, 0.5 ],
               [0.25, 0.25, 0.5 ]])
    """
    xp = namespace_of(grad_output=grad_output, x=x)
    geometry = pool_geometry(x, kernel_size, stride, padding)
    _check_grad_output(grad_output, x, geometry)
    return avg_backward(grad_output, geometry, xp, kernels_for(xp))


def pool_geometry(
    x: Array, kernel_size: IntOrPair, stride: IntOrPair | None, padding: Padding
) -> ConvGeometry:
    """Validate a pooling's input and options; return its geometry."""
    check_ndim(x, "x", "NCHW")
    return ConvGeometry.for_pooling(
        (x.shape[2], x.shape[3]), kernel_size, stride=stride, padding=padding
    )


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


def avg_pool2d_forward(x: Array, /, *, geometry: ConvGeometry) -> Array:
    """`avg_pool2d` of a checked `x`."""
    xp = array_api_compat.array_namespace(x)
    return avg_forward(x, geometry, xp, kernels_for(xp))


def avg_pool2d_gradient(grad_output: Array, /, *, geometry: ConvGeometry) -> Array:
    """The input gradient of `avg_pool2d_forward`."""
    xp = array_api_compat.array_namespace(grad_output)
    return avg_backward(grad_output, geometry, xp, kernels_for(xp))


def _check_grad_output(grad_output: Array, x: Array, geometry: ConvGeometry) -> None:
    check_ndim(grad_output, "grad_output", "NCHW")
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
        step = geometry.stride[axis]
        table = [
            [0.0 if 0 <= o * step + t - before < size else -math.inf for o in range(outputs)]
            for t in range(taps)
        ]
        return xp.asarray(table, dtype=like.dtype, device=device)

    rows = xp.reshape(axis_mask(0, kh, oh), (kh, 1, oh, 1))
    cols = xp.reshape(axis_mask(1, kw, ow), (1, kw, 1, ow))
    return xp.reshape(rows + cols, (1, kh * kw, 1, oh * ow))


def max_forward(
    x: Array, geometry: ConvGeometry, xp: Namespace, kernels: Kernels, *, keep_index: bool = False
) -> tuple[Array, Array | None]:
    """Max pooling, and (if asked) where each window's first maximum is, (C, 1, N, L)
    (or the kernels' own index)."""
    done = kernels.max_pool(x, geometry, keep_index=keep_index)
    if done is not None:
        return done
    windows = _windows(x, geometry, xp, kernels)
    # max over the pixels of each window; argmax picks the first maximum
    out = _to_nchw(xp.max(windows, axis=1), geometry, xp)
    index = xp.argmax(windows, axis=1, keepdims=True) if keep_index else None
    return out, index


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


def _real_pixel_counts(geometry: ConvGeometry, xp: Namespace, like: Array) -> Array:
    """How many real pixels each window holds, as an (OH, OW) array like `like`."""
    rows, cols = geometry.real_pixels(0), geometry.real_pixels(1)
    table = [[float(r * c) for c in cols] for r in rows]
    return xp.asarray(table, dtype=like.dtype, device=array_api_compat.device(like))


def avg_forward(x: Array, geometry: ConvGeometry, xp: Namespace, kernels: Kernels) -> Array:
    """Average pooling over the real pixels of each window."""
    if (out := kernels.avg_pool(x, geometry)) is not None:
        return out
    n, c = x.shape[0], x.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    # unfold (zero padding, so padding adds nothing to the sums)
    windows = xp.reshape(unfold(x, geometry, xp, kernels), (c, kh * kw, n, oh * ow))
    sums = _to_nchw(xp.sum(windows, axis=1), geometry, xp)
    # divide by the real pixels of each window
    return sums / _real_pixel_counts(geometry, xp, x)


def avg_backward(
    grad_output: Array, geometry: ConvGeometry, xp: Namespace, kernels: Kernels
) -> Array:
    """Spread each window's gradient evenly over its real pixels, then sum the windows back."""
    if (grad := kernels.avg_pool_gradient(grad_output, geometry)) is not None:
        return grad
    n, c = grad_output.shape[0], grad_output.shape[1]
    kh, kw = geometry.kernel_size
    oh, ow = geometry.out_size
    # each pixel of a window gets the window's gradient over its real pixel count
    share = grad_output / _real_pixel_counts(geometry, xp, grad_output)
    grad_cols = xp.broadcast_to(_window_columns(share, geometry, xp), (c, kh * kw, n, oh * ow))
    # fold sums overlapping windows; the padding's share is cropped away
    return fold(xp.reshape(grad_cols, (c * kh * kw, n * oh * ow)), geometry, xp, kernels)
