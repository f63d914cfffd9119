"""Dropout and BatchNormalization: layers that behave differently in training."""

from __future__ import annotations

from typing import Any

import numpy as np

from xconv._validation import check_shape, fraction, positive_real
from xconv.functional import batch_norm, batch_norm_backward

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

    The passes are `xconv.functional.batch_norm` and `batch_norm_backward`, with
    their fast kernels: on NumPy (float32 or float64) fused passes over the batch, on
    PyTorch its own batch-norm kernels; both keep `X` itself (no copy) for the
    backward pass: do not change it in place in between.
    """

    def __init__(
        self, momentum: float = 0.99, eps: float = 0.01, input_shape: tuple[int, ...] | None = None
    ) -> None:
        self.momentum = fraction(momentum, "momentum")
        self.eps = positive_real(eps, "eps")
        self._saved: Any = None  # `batch_norm`'s, for `batch_norm_backward`
        self._batch_shape: tuple[int, ...] = ()
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

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        self.ensure_initialized(X)
        self.check_input(X)
        gamma, beta = self.params["gamma"], self.params["beta"]
        if not training:
            self._saved = None
            running = self.buffers["running_mean"], self.buffers["running_var"]
            out: Array = batch_norm(X, *running, gamma, beta, eps=self.eps)
            return out
        # the batch's statistics; the running estimates follow this layer's own rule
        result = batch_norm(X, None, None, gamma, beta, training=True, eps=self.eps)
        self._update_running(result.mean, result.var)
        self._saved, self._batch_shape = result.saved, tuple(X.shape)
        return result.output

    def _update_running(self, mean: Array, var: Array) -> None:
        """Bias-corrected moving averages, computed on the device (no sync)."""
        seen = self.buffers["batches_seen"] + 1
        w = (1 - self.momentum) / (1 - self.momentum**seen)
        self.buffers = {
            "running_mean": (1 - w) * self.buffers["running_mean"] + w * mean,
            "running_var": (1 - w) * self.buffers["running_var"] + w * var,
            "batches_seen": seen,
        }

    def backward_pass(self, accum_grad: Array) -> Array:
        if self._saved is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        check_shape(accum_grad, "accum_grad", self._batch_shape, "the layer's output shape")
        grad_input, grad_gamma, grad_beta = batch_norm_backward(
            accum_grad, self._saved, self.params["gamma"]
        )
        self.grads = {"gamma": grad_gamma, "beta": grad_beta}
        self._saved = None
        return grad_input
