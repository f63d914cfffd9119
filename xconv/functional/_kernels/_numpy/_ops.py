"""NumPy's fast paths for pooling and the ReLU family: strided views, `out=`, threads.

The generic code (`_pooling`, `_activations`) may not write into arrays: max pooling
copies every window into a column matrix and takes an argmax for the backward pass,
and ``where(x < 0, 0.0, x)`` runs NumPy's slow masked loop. NumPy can do better, with
the same results:

- pooling without padding reads each window's pixel (i, j), for every window at once,
  as one strided view of the input (``x[:, :, i * dh::sh, j * dw::sw]``, cropped; any
  dilation, no `ceil_mode` that adds a window), so a max or a
  sum over the kh * kw views needs no copy of the windows. The backward pass finds each
  window's FIRST maximum (in row-major order, NaN counting as a maximum, as `argmax`
  does) by comparing the views, in order, with the output, and writes the gradient
  straight into the input gradient's views. Padded pools take the generic path;
- relu's forward is one ``maximum(x, 0, out=...)``; its backward (and leaky relu's)
  keep ``where``'s meaning (0, never NaN, where the gradient is not passed on, even
  for an infinite or NaN `grad_output`) without its slow loop: the gradient's bits are
  multiplied by the 0-or-1 mask, or the gradient by a factor looked up from the mask.

Large arrays are split over the batch, and the pieces run on `_threads`'
threads (NumPy releases the GIL in these loops); BLAS is not involved.

`CALLS` counts each fast path taken, so that tests can tell it ran.
"""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from ..._geometry import ConvGeometry
from . import _threads

__all__ = [
    "CALLS",
    "FLOATS",
    "PARALLEL_BYTES",
    "MaxPoolIndex",
    "avg_pool",
    "avg_pool_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "max_pool",
    "max_pool_backward",
    "pooling_supported",
    "relu",
    "relu_backward",
    "supported",
    "window_divisor",
]

#: the dtypes these kernels handle; others take the generic path
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

#: arrays at least this large are split over the batch and run on threads (at 1 MiB
#: rather than 4, the MNIST network's second relu and pooling, 3.9 MB, run on two
#: threads too: its training step 23.0 -> 22.2 ms, medians of 4 alternated runs)
PARALLEL_BYTES = 2**20

#: how many times each fast path ran (tests check that the fast path was taken)
CALLS: collections.Counter[str] = collections.Counter()

#: unsigned integers of each float's size, to select a float's bits with a 0-or-1 mask
_BITS = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def _over_batch(fn: Callable[[slice], None], n: int, nbytes: int) -> None:
    """``fn(slice)`` over the batch axis (length `n`): in pieces on threads if large."""
    pieces = min(n, _threads.parallel_chunks(float("inf"))) if nbytes >= PARALLEL_BYTES else 1
    if pieces < 2:
        fn(slice(None))
        return
    bounds = [n * k // pieces for k in range(pieces + 1)]
    spans = list(itertools.pairwise(bounds))
    _threads.map_threads(lambda start, stop: fn(slice(start, stop)), spans)


def _batch(x: np.ndarray) -> int:
    return x.shape[0] if x.ndim else 1


def _lead(x: np.ndarray, s: slice) -> np.ndarray:
    """``x[s]`` on the batch axis; a 0-d array whole."""
    return x[s] if x.ndim else x


# -- relu and leaky relu ---------------------------------------------------------------


def relu(x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``, NaN kept (and -0.0 becomes 0.0)."""
    CALLS["relu"] += 1
    out = np.empty_like(x)
    _over_batch(lambda s: np.maximum(_lead(x, s), 0, out=_lead(out, s)), _batch(x), x.nbytes)
    return out


def relu_backward(grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
    """`grad_output` where x > 0, else 0: its bits times the 0-or-1 mask."""
    CALLS["relu_backward"] += 1
    bits = _BITS[grad_output.dtype]
    out = np.empty_like(grad_output)

    def work(s: slice) -> None:
        passed = np.greater(_lead(x, s), 0)
        np.multiply(_lead(grad_output, s).view(bits), passed, out=_lead(out, s).view(bits))

    _over_batch(work, _batch(x), x.nbytes)
    return out


def leaky_relu(x: np.ndarray, slope: float) -> np.ndarray:
    """`x` where x >= 0, ``slope * x`` below, for 0 <= slope (else the generic path).

    With a slope below 1 the larger of `x` and ``slope * x`` is the answer, above 1
    the smaller; NaN stays NaN either way.
    """
    CALLS["leaky_relu"] += 1
    pick = np.maximum if slope <= 1 else np.minimum
    out = np.empty_like(x)

    def work(s: slice) -> None:
        part, dest = _lead(x, s), _lead(out, s)
        np.multiply(part, slope, out=dest)
        pick(part, dest, out=dest)

    _over_batch(work, _batch(x), x.nbytes)
    return out


def leaky_relu_backward(grad_output: np.ndarray, x: np.ndarray, slope: float) -> np.ndarray:
    """`grad_output` where x > 0, else ``slope * grad_output``: times a looked-up factor."""
    CALLS["leaky_relu_backward"] += 1
    factors = np.asarray([slope, 1.0], dtype=grad_output.dtype)
    out = np.empty_like(grad_output)

    def work(s: slice) -> None:
        passed = np.greater(_lead(x, s), 0)
        dest = _lead(out, s)
        np.take(factors, passed.view(np.uint8), out=dest)
        np.multiply(_lead(grad_output, s), dest, out=dest)

    _over_batch(work, _batch(x), x.nbytes)
    return out


# -- pooling without padding -----------------------------------------------------------


def supported(x: Any, *others: Any) -> bool:
    """Whether `x` is a float32/64 NumPy array and each of `others` one of its dtype."""
    if not (isinstance(x, np.ndarray) and x.dtype in FLOATS):
        return False
    return all(isinstance(a, np.ndarray) and a.dtype == x.dtype for a in others)


def pooling_supported(x: Any, geometry: ConvGeometry, grad_output: Any = None) -> bool:
    """Whether these kernels pool `x` (and take `grad_output`): no padding, `supported`."""
    others = () if grad_output is None else (grad_output,)
    return not geometry.is_padded and supported(x, *others)


def _taps(geometry: ConvGeometry) -> Iterator[tuple[slice, slice]]:
    """For each pixel (i, j) of a window, row-major: the slices of all windows' (i, j)."""
    kh, kw = geometry.kernel_size
    for i in range(kh):
        for j in range(kw):
            yield geometry.window(i, j)


class MaxPoolIndex(NamedTuple):
    """What `max_pool_backward` needs of a forward pass: its input and output (no copy)."""

    x: np.ndarray
    out: np.ndarray

    def positions(self, geometry: ConvGeometry) -> np.ndarray:
        """Each window's first maximum in xconv's layout, (C, 1, N, L): the pixel's
        position in its window (row-major), for the generic gradient."""
        n, c = self.x.shape[0], self.x.shape[1]
        (kh, kw), (oh, ow) = geometry.kernel_size, geometry.out_size
        pixels = np.stack([self.x[:, :, rows, cols] for rows, cols in _taps(geometry)], axis=-1)
        index: np.ndarray = np.argmax(pixels.reshape(n, c, oh, ow, kh * kw), axis=-1)
        return index.transpose(1, 0, 2, 3).reshape(c, 1, n, oh * ow)


def _tiles(geometry: ConvGeometry) -> bool:
    """Windows do not overlap (stride == kernel, no dilation), so each pixel is in one
    window at most."""
    return geometry.stride == geometry.kernel_size and geometry.dilation == (1, 1)


def _covers(geometry: ConvGeometry) -> bool:
    """Windows tile the whole input: no pixel left out at the bottom or right."""
    (kh, kw), (oh, ow) = geometry.kernel_size, geometry.out_size
    return _tiles(geometry) and (oh * kh, ow * kw) == geometry.in_size


def _pooled(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    return np.empty((x.shape[0], x.shape[1], *geometry.out_size), dtype=x.dtype)


def _input_gradient(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """An input gradient to fill: uninitialised if every pixel gets written once."""
    return np.empty(x.shape, x.dtype) if _covers(geometry) else np.zeros(x.shape, x.dtype)


def max_pool(x: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    """The max of every window: `np.maximum` over the windows' pixel views, NaN kept."""
    CALLS["max_pool"] += 1
    out = _pooled(x, geometry)

    def work(s: slice) -> None:
        part, dest = x[s], out[s]
        taps = [part[:, :, rows, cols] for rows, cols in _taps(geometry)]
        if len(taps) == 1:
            np.copyto(dest, taps[0])
            return
        np.maximum(taps[0], taps[1], out=dest)
        for tap in taps[2:]:
            np.maximum(dest, tap, out=dest)

    _over_batch(work, x.shape[0], x.nbytes)
    return out


def max_pool_backward(
    grad_output: np.ndarray, x: np.ndarray, out: np.ndarray, geometry: ConvGeometry
) -> np.ndarray:
    """Each window's gradient to its first maximum; `out` is ``max_pool(x, geometry)``."""
    CALLS["max_pool_backward"] += 1
    bits = _BITS[grad_output.dtype]
    grad_x = _input_gradient(x, geometry)
    tiles = _tiles(geometry)

    def work(s: slice) -> None:
        part, pooled, grad, dest = x[s], out[s], grad_output[s].view(bits), grad_x[s]
        nan = bool(np.isnan(pooled).any())  # then a NaN pixel is the window's maximum
        open_ = np.ones(pooled.shape, dtype=bool)  # windows whose maximum is still ahead
        hit = np.empty(pooled.shape, dtype=bool)
        taps = list(_taps(geometry))
        for k, (rows, cols) in enumerate(taps):
            if k == len(taps) - 1:
                hit = open_  # the last pixel is the maximum of every window still open
            else:
                pixel = part[:, :, rows, cols]
                np.equal(pixel, pooled, out=hit)
                if nan:
                    np.logical_or(hit, np.isnan(pixel), out=hit)
                np.logical_and(hit, open_, out=hit)
                np.greater(open_, hit, out=open_)  # open and not hit
            target = dest[:, :, rows, cols]
            if tiles:  # each pixel in one window: write the gradient or 0
                np.multiply(grad, hit, out=target.view(bits))
            else:  # overlapping windows add up
                np.add(target, np.multiply(grad, hit).view(grad_x.dtype), out=target)

    _over_batch(work, x.shape[0], x.nbytes)
    return grad_x


def window_divisor(geometry: ConvGeometry, divisor_override: int | None) -> int:
    """What an unpadded average pooling divides each window's sum by."""
    if divisor_override is not None:
        return divisor_override
    return geometry.kernel_size[0] * geometry.kernel_size[1]


def avg_pool(x: np.ndarray, geometry: ConvGeometry, count: int) -> np.ndarray:
    """Every window's sum over `count`: a sum over the windows' pixel views, then a
    division."""
    CALLS["avg_pool"] += 1
    out = _pooled(x, geometry)

    def work(s: slice) -> None:
        part, dest = x[s], out[s]
        taps = [part[:, :, rows, cols] for rows, cols in _taps(geometry)]
        if len(taps) == 1:
            np.copyto(dest, taps[0])
        else:
            np.add(taps[0], taps[1], out=dest)
            for tap in taps[2:]:
                np.add(dest, tap, out=dest)
        np.divide(dest, count, out=dest)

    _over_batch(work, x.shape[0], x.nbytes)
    return out


def avg_pool_backward(
    grad_output: np.ndarray, shape: tuple[int, ...], geometry: ConvGeometry, count: int
) -> np.ndarray:
    """Each window's gradient over `count`, to each of its pixels."""
    CALLS["avg_pool_backward"] += 1
    dtype = grad_output.dtype
    grad_x = np.empty(shape, dtype) if _covers(geometry) else np.zeros(shape, dtype)
    tiles = _tiles(geometry)

    def work(s: slice) -> None:
        share = np.divide(grad_output[s], count)
        dest = grad_x[s]
        for rows, cols in _taps(geometry):
            target = dest[:, :, rows, cols]
            if tiles:
                np.copyto(target, share)
            else:
                np.add(target, share, out=target)

    _over_batch(work, shape[0], grad_x.nbytes)
    return grad_x
