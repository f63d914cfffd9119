"""Dense: a fully connected layer, ``X @ W + b``."""

from __future__ import annotations

from typing import Any

import numpy as np

from xconv._typing import Array
from xconv._validation import as_int, check_shape, namespace_of, positive_int
from xconv.functional import matmul

from ._base import Layer
from ._initializers import DEFAULT_INITIALIZER, check_initializer
from ._smooth_activations import FusedActivation

__all__ = ["Dense"]


class Dense(Layer):
    """A fully connected layer: ``X @ weight + bias``.

    Args:
        n_units: number of outputs per sample.
        input_shape: ``(n_inputs,)``; needed before `initialize`, or taken from the
            first batch.
        activation: an activation applied to the output (``"relu"``, ``"softmax"``,
            ...), or None (default).
        kernel_initializer: how the weights are drawn, by name (see
            `xconv.layers.INITIALIZERS`); default ``"fan_in_uniform"``.

    Parameters: ``"weight"`` of shape (n_inputs, n_units), by default uniform in
    +-1/sqrt(n_inputs); ``"bias"`` of shape (n_units,), zeros.

    Shape:
        (N, n_inputs) -> (N, n_units).

    Example:
        >>> import numpy as np
        >>> layer = Dense(3, input_shape=(4,))
        >>> layer.initialize(seed=0)
        >>> layer.forward_pass(np.ones((2, 4), dtype=np.float32)).shape
        (2, 3)
    """

    def __init__(
        self,
        n_units: int,
        input_shape: tuple[int] | None = None,
        activation: str | None = None,
        kernel_initializer: str = DEFAULT_INITIALIZER,
    ) -> None:
        self.n_units = positive_int(n_units, "n_units")
        self.kernel_initializer = check_initializer(kernel_initializer)
        self._activation = FusedActivation(activation)
        self.activation = activation
        self._input: Array | None = None
        super().__init__(input_shape)

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        size = as_int(shape[0]) if isinstance(shape, tuple | list) and len(shape) == 1 else None
        if size is None or size < 1:
            raise ValueError(
                f"`input_shape` of Dense must be (n_inputs,), got {shape!r}; "
                "add a Flatten layer before it for images"
            )
        super().set_input_shape((size,))

    def build(
        self, input_shape: tuple[int, ...], /, *, rng: np.random.Generator, dtype: Any
    ) -> None:
        n_in = input_shape[0]
        self.params = {
            "weight": self.make_weight(
                (n_in, self.n_units),
                initializer=self.kernel_initializer,
                fan_in=n_in,
                fan_out=self.n_units,
                rng=rng,
                dtype=dtype,
            ),
            "bias": self.make_weight((self.n_units,), dtype=dtype),
        }

    # the ancestor's names for the parameters
    @property
    def W(self) -> Array:
        """The weights, ``params["weight"]``."""
        return self.params["weight"]

    @property
    def w0(self) -> Array:
        """The biases, ``params["bias"]``."""
        return self.params["bias"]

    def output_shape(self) -> tuple[int, ...]:
        return (self.n_units,)

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        self.ensure_initialized(X)
        weight, bias = self.params["weight"], self.params["bias"]
        self.check_input(X, weight=weight, bias=bias)
        self._input = X if training else None
        return self._activation.forward(matmul(X, weight) + bias, training)

    def backward_pass(self, accum_grad: Array) -> Array:
        if self._input is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        xp = namespace_of(accum_grad=accum_grad, X=self._input)
        expected = (self._input.shape[0], self.n_units)
        check_shape(accum_grad, "accum_grad", expected, "the shape of the layer's output")
        accum_grad = self._activation.backward(accum_grad)
        weight = self.params["weight"]
        self.grads = {
            "weight": matmul(xp.matrix_transpose(self._input), accum_grad),
            "bias": xp.sum(accum_grad, axis=0),
        }
        self._input = None
        return matmul(accum_grad, xp.matrix_transpose(weight))
