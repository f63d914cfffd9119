"""The `Layer` base class: forward, backward, parameters and their gradients."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xconv.backends import Backend, get, get_backend

__all__ = ["Layer", "make_rng"]

Array = Any


def make_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """A host generator from a seed, or the generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise TypeError(
            f"`seed` must be a non-negative integer or a numpy Generator, got {seed!r}"
        )
    return np.random.default_rng(seed)


class Layer:
    """A stateful building block of a network.

    Layers compute gradients; they do not update themselves. `backward_pass` returns
    the gradient for the layer below and leaves the gradients of the layer's own
    parameters in `grads`, keyed like `params`; an optimizer (or you) then replaces
    the arrays in `params`. That keeps gradient checks, accumulation and
    data-parallel reduction simple, and works with immutable arrays (JAX).
    """

    #: whether an optimizer should update this layer's parameters
    trainable: bool = True

    def __init__(self, input_shape: tuple[int, ...] | None = None) -> None:
        self.input_shape: tuple[int, ...] | None = None
        #: the layer's parameters by name, arrays of its backend
        self.params: dict[str, Array] = {}
        #: gradients of the loss with respect to `params`, set by `backward_pass`
        self.grads: dict[str, Array] = {}
        self.backend: Backend | None = None
        if input_shape is not None:
            self.set_input_shape(input_shape)

    def __repr__(self) -> str:
        return f"{self.layer_name()}(input_shape={self.input_shape})"

    def layer_name(self) -> str:
        """The layer's class name, for summaries."""
        return type(self).__name__

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        """Tell the layer the shape of one sample it will get (no batch axis)."""
        self.input_shape = tuple(shape)

    def initialize(
        self,
        *,
        seed: int | np.random.Generator = 0,
        dtype: Any = "float32",
        backend: str | Backend | None = None,
    ) -> None:
        """Create the parameters (none by default) on `backend` (default: current)."""
        self.backend = get(backend) if backend is not None else get_backend()

    @property
    def initialized(self) -> bool:
        """Whether `initialize` has run."""
        return self.backend is not None

    def parameters(self) -> int:
        """How many numbers the layer learns (the ancestor's meaning of the name)."""
        return sum(math.prod(p.shape) for p in self.params.values())

    def output_shape(self) -> tuple[int, ...]:
        """Shape of one output sample (no batch axis)."""
        raise NotImplementedError

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        """The layer's output for the batch `X`; `training` keeps what backward needs."""
        raise NotImplementedError

    def backward_pass(self, accum_grad: Array) -> Array:
        """Gradient for the layer below, from the gradient of this layer's output."""
        raise NotImplementedError
