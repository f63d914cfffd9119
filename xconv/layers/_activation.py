"""The Activation layer: an activation function from `xconv.functional`, by name."""

from __future__ import annotations

from typing import Any

from xconv._typing import Array, Namespace

from ._reshape import ParameterFreeLayer
from ._smooth_activations import activation_functions

__all__ = ["Activation"]


class Activation(ParameterFreeLayer):
    """Apply an activation function elementwise (softmax: over the last axis).

    Args:
        name: one of ``"relu"``, ``"leaky_relu"`` (slope 0.2), ``"elu"`` (alpha 1),
            ``"selu"``, ``"sigmoid"``, ``"tanh"``, ``"softplus"``, ``"softmax"``
            (see `xconv.functional.ACTIVATIONS`), ``"gelu"``, ``"gelu_tanh"``,
            ``"silu"``; anything else is a ValueError.
        input_shape: the shape of one sample (any number of axes), or taken from the
            first batch.

    A training forward pass keeps the input or the output, whichever the function's
    gradient is computed from.

    Shape:
        input (N, *input_shape) -> output of the same shape.

    Example:
        >>> import numpy as np
        >>> layer = Activation("relu")
        >>> layer.forward_pass(np.array([[-1.0, 2.0]]))
        array([[0., 2.]])
        >>> layer.backward_pass(np.array([[5.0, 5.0]]))
        array([[0., 5.]])
        >>> layer.layer_name()
        'Activation (relu)'
    """

    def __init__(self, name: str, input_shape: tuple[int, ...] | None = None) -> None:
        self._functions = activation_functions(name)
        self.activation_name = name
        super().__init__(input_shape)

    def __repr__(self) -> str:
        return f"Activation({self.activation_name!r}, input_shape={self.input_shape})"

    def layer_name(self) -> str:
        return f"Activation ({self.activation_name})"

    def get_config(self) -> dict[str, Any]:
        shape = None if self.input_shape is None else list(self.input_shape)
        return {"name": self.activation_name, "input_shape": shape}

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        out = self._functions.forward(X)
        return out, ({"output": out} if self._functions.saved == "output" else {})

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        kept = saved["output"] if self._functions.saved == "output" else saved["X"]
        return self._functions.backward(accum_grad, kept)
