"""GroupNormalization: each sample normalised over groups of its channels."""

from __future__ import annotations

from typing import Any

import numpy as np

from xconv._validation import nonnegative_real, positive_int
from xconv.functional import group_norm, group_norm_backward

from ._base import Array, Layer

__all__ = ["GroupNormalization"]


class GroupNormalization(Layer):
    """Normalise each sample over groups of ``C // groups`` channels and all their
    positions, then scale and shift each channel (Wu & He 2018; `torch.nn.GroupNorm`,
    Keras's ``GroupNormalization`` on channels-first inputs).

    No batch statistics: training and inference compute the same function.
    ``groups=1`` normalises whole samples, ``groups=C`` is instance normalisation.

    Args:
        groups: the number of groups, dividing the channels (default 32, Keras's).
        eps: added to the variance before the square root (default 1e-5, PyTorch's).
        input_shape: (C, ...) of one sample, or taken from the first batch.

    Parameters: ``"gamma"`` (ones) and ``"beta"`` (zeros), one per channel.

    Shape:
        input (N, C, *) -> output of the same shape.

    Example:
        >>> import numpy as np
        >>> layer = GroupNormalization(2, input_shape=(4, 1))
        >>> layer.initialize(dtype="float64")
        >>> layer.forward_pass(np.array([[[1.0], [3.0], [0.0], [4.0]]]))[0, :, 0].round(4)
        array([-1.,  1., -1.,  1.])
    """

    def __init__(
        self, groups: int = 32, eps: float = 1e-5, input_shape: tuple[int, ...] | None = None
    ) -> None:
        self.groups = positive_int(groups, "groups")
        self.eps = nonnegative_real(eps, "eps")
        self._input: Array | None = None
        super().__init__(input_shape)

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        dims = list(shape) if isinstance(shape, tuple | list) else []
        if not dims or any(
            isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1 for d in dims
        ):
            raise ValueError(f"`input_shape` must be a tuple of positive integers, got {shape!r}")
        if dims[0] % self.groups:
            raise ValueError(
                f"the channels (={dims[0]}) must be divisible by `groups` (={self.groups})"
            )
        super().set_input_shape(tuple(int(d) for d in dims))

    def build(
        self, input_shape: tuple[int, ...], /, *, rng: np.random.Generator, dtype: Any
    ) -> None:
        channels = input_shape[0]
        self.params = {
            "gamma": self.make_weight((channels,), initializer="ones", dtype=dtype),
            "beta": self.make_weight((channels,), dtype=dtype),
        }

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        self.ensure_initialized(X)
        self.check_input(X)
        gamma, beta = self.params["gamma"], self.params["beta"]
        self._input = X if training else None
        return group_norm(X, self.groups, gamma, beta, self.eps)

    def backward_pass(self, accum_grad: Array) -> Array:
        if self._input is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        grad_input, grad_gamma, grad_beta = group_norm_backward(
            accum_grad, self._input, self.groups, self.params["gamma"], bias=True, eps=self.eps
        )
        self.grads = {"gamma": grad_gamma, "beta": grad_beta}
        self._input = None
        return grad_input
