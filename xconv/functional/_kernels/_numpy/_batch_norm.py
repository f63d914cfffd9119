"""Batch normalization on NumPy in fused passes.

Statistics and normalisation over the batch are fused: per-channel sums by
`np.einsum` (float64 across rows), the centring, normalisation and backward pass a
batch slice at a time with no full-size temporary, and the training pass keeps `x`
itself (no copy) for the backward pass: do not change it in place in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

__all__ = ["FusedSaved", "backward", "inference", "takes", "training"]

_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: bytes of one slice of the batch in a fused pass: a few passes over it stay in cache
_SLICE_BYTES = 2**20

#: float32 rows up to this long are summed in float32 (error about 1e-7 * sqrt(length))
_ROW_ELEMENTS = 4096


def takes(x: Any, *others: Any) -> bool:
    """Whether the fused passes take `x` (a non-empty float32/64 array) and the
    per-channel arrays `others` (None, or arrays of x's dtype)."""
    if not (isinstance(x, np.ndarray) and x.dtype in _FUSED_DTYPES and x.size > 0):
        return False
    return all(a is None or (isinstance(a, np.ndarray) and a.dtype == x.dtype) for a in others)


class FusedSaved(NamedTuple):
    """What the fused backward pass needs: the input as (N, C, L), float64 statistics."""

    x: np.ndarray
    mean: np.ndarray
    inv_std: np.ndarray
    shape: tuple[int, ...]

    def unfused(self) -> tuple[np.ndarray, np.ndarray]:
        """The generic code's ``(x_hat, inv_std)``, shaped for broadcasting."""
        dtype = self.x.dtype
        x_hat = (self.x - self.mean.astype(dtype)[:, None]) * self.inv_std.astype(dtype)[:, None]
        broadcast = (1, self.x.shape[1]) + (1,) * (len(self.shape) - 2)
        return np.reshape(x_hat, self.shape), np.reshape(self.inv_std.astype(dtype), broadcast)


def _as_ncl(x: np.ndarray) -> np.ndarray:
    return np.reshape(x, (x.shape[0], x.shape[1], -1))  # (N, C, L); a view if contiguous


def _normalise(
    x: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, weight: Any, bias: Any
) -> np.ndarray:
    """``(x - mean) * weight * inv_std + bias`` of (N, C, L) `x`, a slice at a time."""
    scale = inv_std if weight is None else weight.astype(np.float64) * inv_std
    shift, scale_x = mean.astype(x.dtype)[:, None], scale.astype(x.dtype)[:, None]
    out = np.empty(x.shape, dtype=x.dtype)
    for s, _ in _slices(x):
        part = out[s]
        np.subtract(x[s], shift, out=part)
        np.multiply(part, scale_x, out=part)
        if bias is not None:
            np.add(part, bias[:, None], out=part)
    return out


def training(
    x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, FusedSaved]:
    """The normalised batch; its per-channel mean and biased variance (x's dtype);
    what `backward` needs."""
    ncl = _as_ncl(x)
    mean, var = _statistics(ncl)
    inv_std = 1 / np.sqrt(var + eps)
    out = _normalise(ncl, mean, inv_std, weight, bias)
    saved = FusedSaved(ncl, mean, inv_std, tuple(x.shape))
    return np.reshape(out, x.shape), mean.astype(x.dtype), var.astype(x.dtype), saved


def inference(
    x: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
) -> np.ndarray:
    """The batch normalised by the given statistics, scaled and shifted."""
    mean64, var64 = mean.astype(np.float64), var.astype(np.float64)
    out = _normalise(_as_ncl(x), mean64, 1 / np.sqrt(var64 + eps), weight, bias)
    return np.reshape(out, x.shape)


def backward(
    grad_output: np.ndarray, saved: FusedSaved, weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients for input, weight and bias: one pass for the sums, one for the input."""
    x, mean, inv_std, _ = saved
    g = np.reshape(grad_output, x.shape)
    count = x.shape[0] * x.shape[2]
    dtype = x.dtype
    shift = mean.astype(dtype)[:, None]
    # the sums of g and of g * x_hat per channel, x centred first (on `shift`, the
    # mean rounded to x's dtype: x_hat = (x - shift - (mean - shift)) * inv_std)
    sum_g = _channel_sums(g)
    sum_g_centred = np.zeros(x.shape[1])
    for s, scratch in _slices(x):
        centred = np.subtract(x[s], shift, out=scratch)
        sum_g_centred += _channel_sums(g[s], centred)
    sum_gx_hat = (sum_g_centred - (mean - shift[:, 0]) * sum_g) * inv_std
    # input: weight * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
    k = inv_std if weight is None else weight.astype(np.float64) * inv_std
    slope = (-k * inv_std * sum_gx_hat / count).astype(dtype)[:, None]
    offset = (k * sum_g / count).astype(dtype)[:, None]
    k_x = k.astype(dtype)[:, None]
    grad_x = np.empty(x.shape, dtype=dtype)
    for s, scratch in _slices(x):
        part = grad_x[s]
        np.subtract(x[s], shift, out=part)
        np.multiply(part, slope, out=part)
        np.add(part, np.multiply(g[s], k_x, out=scratch), out=part)
        np.subtract(part, offset, out=part)
    grads = np.reshape(grad_x, grad_output.shape), sum_gx_hat.astype(dtype), sum_g.astype(dtype)
    return grads


def _slices(x: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """Slices of the batch axis of about `_SLICE_BYTES` each, and scratch of that shape.

    The scratch array is one for all slices (allocated once: fresh memory this large
    would be faulted in again on every slice).
    """
    n = x.shape[0]
    step = max(1, _SLICE_BYTES // max(1, x.nbytes // max(1, n)))
    scratch = np.empty((min(step, n), *x.shape[1:]), dtype=x.dtype)
    for start in range(0, n, step):
        stop = min(start + step, n)
        yield slice(start, stop), scratch[: stop - start]


def _channel_sums(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Per-channel sums of (N, C, L) `a` (or of ``a * b``) in float64.

    float32 rows of at most `_ROW_ELEMENTS` are summed in float32 (einsum, SIMD), and
    the rows' sums added in float64; longer rows are summed in float64 throughout.
    """
    dtype = np.float64 if a.dtype == np.float64 or a.shape[2] > _ROW_ELEMENTS else None
    if b is None:
        rows = np.einsum("ncl->nc", a, dtype=dtype)
    else:
        rows = np.einsum("ncl,ncl->nc", a, b, dtype=dtype)
    sums: np.ndarray = np.asarray(np.sum(rows, axis=0, dtype=np.float64))
    return sums


def _statistics(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (biased) variance of (N, C, L) `x`, in float64.

    Two passes, the second over the data centred on the mean (a batch slice at a
    time, so the centred copy stays in cache): no cancellation between large sums.
    """
    count = x.shape[0] * x.shape[2]
    mean = _channel_sums(x) / count
    shift = mean.astype(x.dtype)
    squares = np.zeros(x.shape[1])
    for s, scratch in _slices(x):
        centred = np.subtract(x[s], shift[:, None], out=scratch)
        squares += _channel_sums(centred, centred)
    # the mean of (x - shift)**2, less (mean - shift)**2: the variance about the mean
    var: np.ndarray = np.maximum(squares / count - (mean - shift) ** 2, 0.0)
    return mean, var
