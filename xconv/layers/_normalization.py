"""LayerNormalization: each sample normalised over its own features."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import array_api_compat
import numpy as np

from xconv._typing import Array
from xconv._validation import positive_real

from ._base import Layer

__all__ = ["LayerNormalization"]


class LayerNormalization(Layer):
    """Normalise each sample over some of its axes, then scale and shift (Ba et al. 2016).

    Unlike BatchNormalization it uses no batch statistics: training and inference
    compute the same function, and there are no running averages.

    Args:
        axis: the axes normalised over, an int or a tuple, counting the batch axis as 0
            (negative: from the end). Default -1, the last axis (features; the width
            of NCHW images). ``axis=(1, 2, 3)`` normalises whole images.
        eps: added to the variance before the square root, > 0 (PyTorch's default).
        input_shape: the shape of one sample, or taken from the first batch.

    Parameters: ``"gamma"`` (ones) and ``"beta"`` (zeros), shaped like the normalised
    axes.

    Shape:
        input (N, *input_shape) -> output of the same shape.

    Example:
        >>> import numpy as np
        >>> layer = LayerNormalization(input_shape=(4,))
        >>> layer.initialize(seed=0, dtype="float64")
        >>> layer.forward_pass(np.array([[1.0, 2.0, 3.0, 4.0]])).round(4)
        array([[-1.3416, -0.4472,  0.4472,  1.3416]])
    """

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        eps: float = 1e-5,
        input_shape: tuple[int, ...] | None = None,
    ) -> None:
        axes: list[Any] = list(axis) if isinstance(axis, tuple | list) else [axis]
        if not axes or any(
            isinstance(a, bool) or not isinstance(a, int | np.integer) for a in axes
        ):
            raise TypeError(f"`axis` must be an integer or a tuple of integers, got {axis!r}")
        self.axis: int | tuple[int, ...] = (
            tuple(int(a) for a in axes) if isinstance(axis, tuple | list) else int(axes[0])
        )
        self.eps = positive_real(eps, "eps")
        self._axes: tuple[int, ...] = ()
        self._cache: tuple[Array, Array] | None = None
        super().__init__(input_shape)

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        dims = list(shape) if isinstance(shape, tuple | list) else []
        if not dims or any(
            isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1 for d in dims
        ):
            raise ValueError(f"`input_shape` must be a tuple of positive integers, got {shape!r}")
        ndim = len(dims) + 1
        axes = []
        for a in self.axis if isinstance(self.axis, tuple) else (self.axis,):
            normal = a + ndim if a < 0 else a
            if not 1 <= normal < ndim:
                raise ValueError(
                    f"`axis` (={self.axis}) must name sample axes of inputs of shape "
                    f"(N, {', '.join(map(str, dims))}); the batch axis 0 cannot be normalised"
                )
            axes.append(normal)
        if len(set(axes)) != len(axes):
            raise ValueError(f"`axis` names an axis twice: {self.axis!r}")
        self._axes = tuple(sorted(axes))
        super().set_input_shape(tuple(int(d) for d in dims))

    def _param_shape(self) -> tuple[int, ...]:
        assert self.input_shape is not None
        return tuple(self.input_shape[a - 1] for a in self._axes)

    def _broadcast_shape(self) -> tuple[int, ...]:
        assert self.input_shape is not None
        return tuple(
            self.input_shape[a - 1] if a in self._axes else 1
            for a in range(1, len(self.input_shape) + 1)
        )

    def build(
        self, input_shape: tuple[int, ...], /, *, rng: np.random.Generator, dtype: Any
    ) -> None:
        shape = self._param_shape()
        self.params = {
            "gamma": self.make_weight(shape, initializer="ones", dtype=dtype),
            "beta": self.make_weight(shape, dtype=dtype),
        }

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        self.ensure_initialized(X)
        xp = self.check_input(X)
        gamma, beta = self.params["gamma"], self.params["beta"]
        array_api_compat.array_namespace(X, gamma)
        shape = (1, *self._broadcast_shape())
        # statistics of each sample over the normalised axes
        mean = xp.mean(X, axis=self._axes, keepdims=True)
        var = xp.var(X, axis=self._axes, keepdims=True)
        inv_std = 1 / xp.sqrt(var + self.eps)
        x_hat = (X - mean) * inv_std
        self._cache = (x_hat, inv_std) if training else None
        return x_hat * xp.reshape(gamma, shape) + xp.reshape(beta, shape)

    def backward_pass(self, accum_grad: Array) -> Array:
        if self._cache is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        x_hat, inv_std = self._cache
        xp = array_api_compat.array_namespace(accum_grad, x_hat)
        if tuple(accum_grad.shape) != tuple(x_hat.shape):
            raise ValueError(
                f"`accum_grad` must have the layer's output shape {tuple(x_hat.shape)}, "
                f"got {tuple(accum_grad.shape)}"
            )
        shape = (1, *self._broadcast_shape())
        others = tuple(a for a in range(x_hat.ndim) if a not in self._axes)
        param_shape = self._param_shape()
        # parameters: summed over the batch and the axes they are shared along
        self.grads = {
            "gamma": xp.reshape(xp.sum(accum_grad * x_hat, axis=others), param_shape),
            "beta": xp.reshape(xp.sum(accum_grad, axis=others), param_shape),
        }
        # input: through x_hat, whose mean and variance depend on the whole group
        count = math.prod(x_hat.shape[a] for a in self._axes)
        g = accum_grad * xp.reshape(self.params["gamma"], shape)
        mean_g = xp.sum(g, axis=self._axes, keepdims=True) / count
        mean_gx = xp.sum(g * x_hat, axis=self._axes, keepdims=True) / count
        self._cache = None
        return (g - mean_g - x_hat * mean_gx) * inv_std
