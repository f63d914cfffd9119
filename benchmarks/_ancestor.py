"""An ancestor-style conv2d, the baseline xconv set out to beat.

Written from DESIGN.md's description of ML-From-Scratch's Conv2D: im2col by fancy
indexing with precomputed (channel, row, column) index arrays, one matmul over the
whole batch, col2im by `np.add.at`. Stride, padding and groups=1 only: enough to time
the anchor shapes, and deliberately not tuned.
"""

from __future__ import annotations

import numpy as np


def _indices(
    shape: tuple[int, ...], k: int, stride: int, pad: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(channel, row, column) of every column entry, each of shape (C*k*k, OH*OW)."""
    _, c, h, w = shape
    oh = (h + 2 * pad - k) // stride + 1
    ow = (w + 2 * pad - k) // stride + 1
    tap_row = np.tile(np.repeat(np.arange(k), k), c)
    tap_col = np.tile(np.arange(k), k * c)
    out_row = stride * np.repeat(np.arange(oh), ow)
    out_col = stride * np.tile(np.arange(ow), oh)
    rows = tap_row[:, None] + out_row[None, :]
    cols = tap_col[:, None] + out_col[None, :]
    channels = np.repeat(np.arange(c), k * k)[:, None]
    return channels, rows, cols


def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    """Columns (C*k*k, N*OH*OW), fancy-indexed out of the padded input."""
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    channels, rows, cols = _indices(x.shape, k, stride, pad)
    gathered = padded[:, channels, rows, cols]  # (N, C*k*k, L)
    return gathered.transpose(1, 2, 0).reshape(channels.shape[0], -1)


def col2im(cols: np.ndarray, shape: tuple[int, ...], k: int, stride: int, pad: int) -> np.ndarray:
    """The adjoint of `im2col`: scatter-add with `np.add.at`, then crop."""
    n, c, h, w = shape
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    channels, rows, columns = _indices(shape, k, stride, pad)
    per_sample = cols.reshape(c * k * k, -1, n).transpose(2, 0, 1)
    np.add.at(padded, (slice(None), channels, rows, columns), per_sample)
    return padded[:, :, pad : pad + h, pad : pad + w] if pad else padded


class AncestorConv2D:
    """Forward keeps the columns; backward returns (grad_x, grad_w, grad_b)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, stride: int, pad: int) -> None:
        self.weight, self.bias, self.stride, self.pad = weight, bias, stride, pad
        self.k = weight.shape[2]

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        self.cols = im2col(x, self.k, self.stride, self.pad)
        out = self.weight.reshape(self.weight.shape[0], -1) @ self.cols + self.bias[:, None]
        n, _, h, w = x.shape
        oh = (h + 2 * self.pad - self.k) // self.stride + 1
        ow = (w + 2 * self.pad - self.k) // self.stride + 1
        return out.reshape(-1, oh, ow, n).transpose(3, 0, 1, 2)

    def backward(self, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        filters = self.weight.shape[0]
        grad = grad.transpose(1, 2, 3, 0).reshape(filters, -1)
        grad_b = grad.sum(axis=1)
        grad_w = (grad @ self.cols.T).reshape(self.weight.shape)
        grad_cols = self.weight.reshape(filters, -1).T @ grad
        grad_x = col2im(grad_cols, self.shape, self.k, self.stride, self.pad)
        return grad_x, grad_w, grad_b
