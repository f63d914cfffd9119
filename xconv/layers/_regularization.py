"""Dropout and BatchNormalization: layers that behave differently in training."""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from xconv import config
from xconv._validation import check_shape, fraction, namespace_of, positive_real

from ._base import Array, Layer, StochasticLayer

__all__ = ["BatchNormalization", "Dropout"]


class Dropout(StochasticLayer):
    """Inverted dropout: in training, zero each value with probability `p` and scale the
    rest by 1 / (1 - p), so inference needs no rescaling (the ancestor did not scale).

    Masks are drawn from a host generator seeded by `initialize`, so a seed gives the
    same masks on every backend.

    Example:
        >>> import numpy as np
        >>> layer = Dropout(0.5)
        >>> layer.initialize(seed=0)
        >>> out = layer.forward_pass(np.ones((2, 4)))
        >>> sorted(set(out.ravel().tolist()))
        [0.0, 2.0]
        >>> layer.forward_pass(np.ones((2, 4)), training=False).sum()
        np.float64(8.0)
    """

    def __init__(self, p: float = 0.2, input_shape: tuple[int, ...] | None = None) -> None:
        self.p = fraction(p, "p")  # a probability in [0, 1)
        self._mask: Array | None = None
        super().__init__(input_shape)

    def sample_noise(self, n_samples: int, /) -> dict[str, Array]:
        """Uniform numbers in [0, 1) for a batch of `n_samples`: a value is kept where >= p."""
        if self.backend is None or self._rng is None or self.input_shape is None:
            raise ValueError("Dropout draws masks only after initialize() and its input shape")
        shape = (n_samples, *self.input_shape)
        return {"uniform": self.backend.random_uniform(shape, rng=self._rng)}

    def forward_pass(
        self, X: Array, training: bool = True, *, noise: dict[str, Array] | None = None
    ) -> Array:
        self.ensure_initialized(X)
        xp = self.check_input(X)
        if not training or self.p == 0:
            self._mask = None
            return X
        if noise is None:
            noise = self.sample_noise(X.shape[0])
        uniform = noise["uniform"]
        if tuple(uniform.shape) != tuple(X.shape):
            raise ValueError(
                f"`noise['uniform']` must have the shape of `X` {tuple(X.shape)}, "
                f"got {tuple(uniform.shape)}"
            )
        self._mask = xp.astype(uniform >= self.p, X.dtype) / (1 - self.p)
        return X * self._mask

    def backward_pass(self, accum_grad: Array) -> Array:
        if self.p == 0:
            return accum_grad
        if self._mask is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        return accum_grad * self._mask


class BatchNormalization(Layer):
    """Normalise each channel (after a convolution) or feature (after a dense layer)
    over the batch, then scale by ``gamma`` and shift by ``beta``.

    In training it uses the batch's mean and (biased) variance and updates running
    estimates, an exponential moving average with bias correction: after t batches,
    ``running = (1 - w) * running + w * batch`` with ``w = (1 - momentum) /
    (1 - momentum**t)``. So the first batch sets them (as the ancestor did) and later
    batches weigh in like ``momentum`` says, and a short training (the digits demo
    has 5 batches an epoch) does not leave them stuck near their initial values. In
    inference it uses the running estimates. For (N, C, H, W) input the statistics are per
    channel C, over N, H and W (the ancestor wrongly kept one per position).

    Args:
        momentum: weight of the old running statistics, in [0, 1).
        eps: added to the variance before the square root, > 0.

    Parameters: ``"gamma"`` (ones) and ``"beta"`` (zeros), one per channel. Buffers:
    ``"running_mean"`` (zeros), ``"running_var"`` (ones) and ``"batches_seen"`` (0).

    On NumPy (float32 or float64, ``xconv.config.fast_kernels`` True) the passes over
    the batch are fused: per-channel sums by `np.einsum` (float64 across rows), the
    centring, normalisation and backward pass a batch slice at a time with no
    full-size temporary, and the training pass keeps `X` itself (no copy) for the
    backward pass: do not change it in place in between.

    On PyTorch (float32 or float64, ``xconv.config.delegate`` and ``fast_kernels``
    True) the passes are PyTorch's own batch-norm kernels (``native_batch_norm`` and
    its backward), with xconv's running-estimate rule, eps and inference kept; the
    training pass keeps `X` itself for the backward pass here too.
    """

    def __init__(
        self, momentum: float = 0.99, eps: float = 0.01, input_shape: tuple[int, ...] | None = None
    ) -> None:
        self.momentum = fraction(momentum, "momentum")
        self.eps = positive_real(eps, "eps")
        self._cache: tuple[Array, Array] | _FusedCache | _DelegatedCache | None = None
        super().__init__(input_shape)

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        if not isinstance(shape, tuple | list) or len(shape) not in (1, 3):
            raise ValueError(
                "`input_shape` of BatchNormalization must be (features,) or "
                f"(channels, height, width), got {shape!r}"
            )
        super().set_input_shape(tuple(shape))

    def build(
        self, input_shape: tuple[int, ...], /, *, rng: np.random.Generator, dtype: Any
    ) -> None:
        channels = (input_shape[0],)
        self.params = {
            "gamma": self.make_weight(channels, initializer="ones", dtype=dtype),
            "beta": self.make_weight(channels, dtype=dtype),
        }
        self.buffers = {
            "running_mean": self.make_weight(channels, dtype=dtype),
            "running_var": self.make_weight(channels, initializer="ones", dtype=dtype),
            "batches_seen": self.make_weight((), dtype=dtype),
        }

    def _axes_and_shape(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Axes the statistics run over, and the shape that broadcasts them back."""
        assert self.input_shape is not None
        if len(self.input_shape) == 3:
            return (0, 2, 3), (1, self.input_shape[0], 1, 1)
        return (0,), (1, self.input_shape[0])

    def _fused(self, X: Array, xp: Any) -> bool:
        """Whether NumPy's fused passes take `X`."""
        return (
            config.fast_kernels
            and array_api_compat.is_numpy_namespace(xp)
            and isinstance(X, np.ndarray)
            and X.dtype in _FUSED_DTYPES
            and X.size > 0
            and all(a.dtype == X.dtype for a in self.params.values())
        )

    def _delegate(self, X: Array, xp: Any, training: bool) -> ModuleType | None:
        """PyTorch's batch-norm passes where they take `X` (torch tensors, delegation
        on), else None."""
        if not (
            config.delegate and config.fast_kernels and array_api_compat.is_torch_namespace(xp)
        ):
            return None
        from . import _torch_batch_norm as lib

        others = [self.params["gamma"], self.params["beta"]]
        if not training:
            others += [self.buffers["running_mean"], self.buffers["running_var"]]
        return lib if lib.takes(X, *others) else None

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        self.ensure_initialized(X)
        xp = self.check_input(X)
        namespace_of(X=X, gamma=self.params["gamma"])
        if self._fused(X, xp):
            return self._forward_fused(X, training)
        if (lib := self._delegate(X, xp, training)) is not None:
            return self._forward_delegated(X, training, lib)
        axes, shape = self._axes_and_shape()
        if training:
            mean = xp.mean(X, axis=axes)
            var = xp.var(X, axis=axes)
            self._update_running(mean, var)
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        # normalise, then scale and shift
        inv_std = 1 / xp.sqrt(xp.reshape(var, shape) + self.eps)
        x_hat = (X - xp.reshape(mean, shape)) * inv_std
        self._cache = (x_hat, inv_std) if training else None
        gamma, beta = self.params["gamma"], self.params["beta"]
        return x_hat * xp.reshape(gamma, shape) + xp.reshape(beta, shape)

    def _update_running(self, mean: Array, var: Array) -> None:
        """Bias-corrected moving averages, computed on the device (no sync)."""
        seen = self.buffers["batches_seen"] + 1
        w = (1 - self.momentum) / (1 - self.momentum**seen)
        self.buffers = {
            "running_mean": (1 - w) * self.buffers["running_mean"] + w * mean,
            "running_var": (1 - w) * self.buffers["running_var"] + w * var,
            "batches_seen": seen,
        }

    def _forward_delegated(self, X: Array, training: bool, lib: ModuleType) -> Array:
        """`forward_pass` by PyTorch's kernels; the running estimates by xconv's rule."""
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            self._cache = None
            running = self.buffers["running_mean"], self.buffers["running_var"]
            return lib.inference(X, gamma, beta, *running, self.eps)
        out, mean, var, inv_std = lib.training(X, gamma, beta, self.eps)
        self._update_running(mean, var)
        self._cache = _DelegatedCache(X, mean, inv_std, lib)
        return out

    def _backward_delegated(self, accum_grad: Array, cache: _DelegatedCache) -> Array | None:
        """`backward_pass` by PyTorch's kernel, or None where it does not take the
        gradient (another kind of array, dtype or device)."""
        gamma = self.params["gamma"]
        if not cache.lib.takes(accum_grad, cache.x, gamma):
            return None
        grads = cache.lib.backward(accum_grad, cache.x, gamma, cache.mean, cache.inv_std, self.eps)
        self.grads = {"gamma": grads[1], "beta": grads[2]}
        self._cache = None
        return grads[0]

    def _forward_fused(self, X: np.ndarray, training: bool) -> np.ndarray:
        """`forward_pass` on NumPy: statistics in one pass, then one normalising pass."""
        x = np.reshape(X, (X.shape[0], X.shape[1], -1))  # (N, C, L); a view if contiguous
        if training:
            mean, var = _statistics(x)
            self._update_running(mean.astype(X.dtype), var.astype(X.dtype))
        else:
            mean = self.buffers["running_mean"].astype(np.float64)
            var = self.buffers["running_var"].astype(np.float64)
        inv_std = 1 / np.sqrt(var + self.eps)
        scale = self.params["gamma"].astype(np.float64) * inv_std
        columns = (mean.astype(X.dtype), scale.astype(X.dtype), self.params["beta"])
        shift, scale_x, beta = (a[:, None] for a in columns)
        out = np.empty(x.shape, dtype=X.dtype)
        for s, _ in _slices(x):  # (x - mean) * gamma * inv_std + beta, in place
            part = out[s]
            np.subtract(x[s], shift, out=part)
            np.multiply(part, scale_x, out=part)
            np.add(part, beta, out=part)
        self._cache = _FusedCache(x, mean, inv_std, tuple(X.shape)) if training else None
        return np.reshape(out, X.shape)

    def _backward_fused(self, accum_grad: np.ndarray, cache: _FusedCache) -> np.ndarray:
        """`backward_pass` on NumPy: one pass for the sums, one for the input gradient."""
        x, mean, inv_std, _ = cache
        g = np.reshape(accum_grad, x.shape)
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
        self.grads = {"gamma": sum_gx_hat.astype(dtype), "beta": sum_g.astype(dtype)}
        # input: gamma * inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
        k = self.params["gamma"].astype(np.float64) * inv_std
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
        self._cache = None
        return np.reshape(grad_x, accum_grad.shape)

    def backward_pass(self, accum_grad: Array) -> Array:
        if self._cache is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        if isinstance(self._cache, _FusedCache):
            cache = self._cache
            check_shape(accum_grad, "accum_grad", cache.shape, "the layer's output shape")
            if isinstance(accum_grad, np.ndarray) and accum_grad.dtype == cache.x.dtype:
                return self._backward_fused(accum_grad, cache)
            self._cache = cache.unfused()  # a gradient of another kind: the generic code
        elif isinstance(self._cache, _DelegatedCache):
            delegated = self._cache
            check_shape(
                accum_grad, "accum_grad", tuple(delegated.x.shape), "the layer's output shape"
            )
            if (grad := self._backward_delegated(accum_grad, delegated)) is not None:
                return grad
            self._cache = delegated.unfused()
        x_hat, inv_std = self._cache
        xp = namespace_of(accum_grad=accum_grad, x_hat=x_hat)
        check_shape(accum_grad, "accum_grad", tuple(x_hat.shape), "the layer's output shape")
        axes, shape = self._axes_and_shape()
        count = math.prod(x_hat.shape[a] for a in axes)
        gamma = xp.reshape(self.params["gamma"], shape)
        # parameters: the shift sees the gradient, the scale sees it times x_hat
        self.grads = {
            "gamma": xp.sum(accum_grad * x_hat, axis=axes),
            "beta": xp.sum(accum_grad, axis=axes),
        }
        # input: through x_hat, whose mean and variance also depend on every input
        g = accum_grad * gamma
        mean_g = xp.sum(g, axis=axes, keepdims=True) / count
        mean_gx = xp.sum(g * x_hat, axis=axes, keepdims=True) / count
        self._cache = None
        return (g - mean_g - x_hat * mean_gx) * inv_std


# -- PyTorch's kernels (`_torch_batch_norm`) ----------------------------------------


class _DelegatedCache(NamedTuple):
    """What PyTorch's backward kernel needs: the input as given, the batch mean and
    ``1 / sqrt(var + eps)`` per channel, and the module running the kernels."""

    x: Any
    mean: Any
    inv_std: Any
    lib: ModuleType

    def unfused(self) -> tuple[Any, Any]:
        """The generic code's cache, ``(x_hat, inv_std)``, shaped for broadcasting."""
        xp = array_api_compat.array_namespace(self.x)
        broadcast = (1, self.x.shape[1]) + (1,) * (self.x.ndim - 2)
        inv_std = xp.reshape(self.inv_std, broadcast)
        return (self.x - xp.reshape(self.mean, broadcast)) * inv_std, inv_std


# -- NumPy's fused passes --------------------------------------------------------------

_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: bytes of one slice of the batch in a fused pass: a few passes over it stay in cache
_SLICE_BYTES = 2**20

#: float32 rows up to this long are summed in float32 (error about 1e-7 * sqrt(length))
_ROW_ELEMENTS = 4096


class _FusedCache(NamedTuple):
    """What the fused backward pass needs: the input as (N, C, L), float64 statistics."""

    x: np.ndarray
    mean: np.ndarray
    inv_std: np.ndarray
    shape: tuple[int, ...]

    def unfused(self) -> tuple[np.ndarray, np.ndarray]:
        """The generic code's cache, ``(x_hat, inv_std)``, shaped for broadcasting."""
        dtype = self.x.dtype
        x_hat = (self.x - self.mean.astype(dtype)[:, None]) * self.inv_std.astype(dtype)[:, None]
        broadcast = (1, self.x.shape[1]) + (1,) * (len(self.shape) - 2)
        return np.reshape(x_hat, self.shape), np.reshape(self.inv_std.astype(dtype), broadcast)


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
