"""Dropout and BatchNormalization: layers that behave differently in training."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xconv._validation import check_shape, fraction, namespace_of, positive_real
from xconv.backends import Backend

from ._base import Array, Layer, make_rng

__all__ = ["BatchNormalization", "Dropout"]


class Dropout(Layer):
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

    stochastic = True

    def __init__(self, p: float = 0.2, input_shape: tuple[int, ...] | None = None) -> None:
        self.p = fraction(p, "p")  # a probability in [0, 1)
        self._rng: np.random.Generator | None = None
        self._mask: Array | None = None
        super().__init__(input_shape)

    def initialize(
        self,
        *,
        seed: int | np.random.Generator = 0,
        dtype: Any = "float32",
        backend: str | Backend | None = None,
    ) -> None:
        self._rng = make_rng(seed)
        super().initialize(seed=self._rng, dtype=dtype, backend=backend)

    def random_state(self) -> dict[str, Any] | None:
        return None if self._rng is None else dict(self._rng.bit_generator.state)

    def set_random_state(self, state: dict[str, Any] | None, /) -> None:
        if state is None:
            raise ValueError("Dropout needs a generator state, got None")
        if self._rng is None:
            raise ValueError("Dropout has no generator before initialize()")
        try:
            # a fresh generator of the same kind takes the state, then replaces ours
            rng = np.random.Generator(type(self._rng.bit_generator)())
            rng.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(
                f"not a {type(self._rng.bit_generator).__name__} state: {exc}"
            ) from None
        self._rng = rng

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
    """

    def __init__(
        self, momentum: float = 0.99, eps: float = 0.01, input_shape: tuple[int, ...] | None = None
    ) -> None:
        self.momentum = fraction(momentum, "momentum")
        self.eps = positive_real(eps, "eps")
        self._cache: tuple[Array, Array] | None = None
        super().__init__(input_shape)

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        if not isinstance(shape, tuple | list) or len(shape) not in (1, 3):
            raise ValueError(
                "`input_shape` of BatchNormalization must be (features,) or "
                f"(channels, height, width), got {shape!r}"
            )
        super().set_input_shape(tuple(shape))

    def initialize(
        self,
        *,
        seed: int | np.random.Generator = 0,
        dtype: Any = "float32",
        backend: str | Backend | None = None,
    ) -> None:
        if self.input_shape is None:
            raise ValueError("BatchNormalization needs its input shape before initialize()")
        super().initialize(seed=seed, dtype=dtype, backend=backend)
        assert self.backend is not None
        ones, zeros = np.ones(self.input_shape[0]), np.zeros(self.input_shape[0])
        self.params = {
            "gamma": self.backend.asarray(ones, dtype=dtype),
            "beta": self.backend.asarray(zeros, dtype=dtype),
        }
        self.buffers = {
            "running_mean": self.backend.asarray(zeros, dtype=dtype),
            "running_var": self.backend.asarray(ones, dtype=dtype),
            "batches_seen": self.backend.asarray(np.zeros(()), dtype=dtype),
        }
        self.grads = {}

    def _axes_and_shape(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Axes the statistics run over, and the shape that broadcasts them back."""
        assert self.input_shape is not None
        if len(self.input_shape) == 3:
            return (0, 2, 3), (1, self.input_shape[0], 1, 1)
        return (0,), (1, self.input_shape[0])

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        self.ensure_initialized(X)
        xp = self.check_input(X)
        namespace_of(X=X, gamma=self.params["gamma"])
        axes, shape = self._axes_and_shape()
        if training:
            mean = xp.mean(X, axis=axes)
            var = xp.var(X, axis=axes)
            # bias-corrected moving averages, computed on the device (no sync)
            seen = self.buffers["batches_seen"] + 1
            w = (1 - self.momentum) / (1 - self.momentum**seen)
            self.buffers = {
                "running_mean": (1 - w) * self.buffers["running_mean"] + w * mean,
                "running_var": (1 - w) * self.buffers["running_var"] + w * var,
                "batches_seen": seen,
            }
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        # normalise, then scale and shift
        inv_std = 1 / xp.sqrt(xp.reshape(var, shape) + self.eps)
        x_hat = (X - xp.reshape(mean, shape)) * inv_std
        self._cache = (x_hat, inv_std) if training else None
        gamma, beta = self.params["gamma"], self.params["beta"]
        return x_hat * xp.reshape(gamma, shape) + xp.reshape(beta, shape)

    def backward_pass(self, accum_grad: Array) -> Array:
        if self._cache is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
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
