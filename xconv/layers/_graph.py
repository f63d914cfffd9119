"""Symbolic tensors: the placeholders of the functional API (`Input`, a layer's call).

``x = Input((3, 32, 32))`` stands for a batch of such samples; calling a layer on it,
``y = Conv2D(16, 3)(x)``, gives the shape of the layer's output and connects the two.
No array is computed: `NeuralNetwork(..., inputs=x, outputs=y)` reads the connections
back from `y` and builds the model between them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # (the layers call `connect`: at run time this module needs no layer)
    from ._base import Layer

__all__ = ["Input", "SymbolicTensor", "connect"]

# the order tensors are made in: parents always come before their children
_made = itertools.count()


class SymbolicTensor:
    """What a layer of a graph model will put out: a sample shape and where it comes from.

    Attributes:
        shape: the shape of one sample (no batch axis).
        layer: the layer that computes it, None for an `Input`.
        inputs: the tensors `layer` reads (one, or several for a merge layer).
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        *,
        layer: Layer | None = None,
        inputs: Sequence[SymbolicTensor] = (),
    ) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.layer = layer
        self.inputs = tuple(inputs)
        #: when the tensor was made; a tensor is always made after the tensors it reads
        self.order = next(_made)

    def __repr__(self) -> str:
        source = "Input" if self.layer is None else self.layer.layer_name()
        return f"SymbolicTensor(shape={self.shape}, from {source})"


def Input(shape: Sequence[int]) -> SymbolicTensor:
    """The input of a graph model: a symbolic batch of samples of shape `shape`.

    Args:
        shape: one sample's shape, without the batch axis, e.g. ``(3, 32, 32)``.

    Example:
        >>> from xconv.layers import Conv2D, Input
        >>> x = Input((1, 8, 8))
        >>> Conv2D(4, 3)(x)
        SymbolicTensor(shape=(4, 8, 8), from Conv2D)
    """
    dims = list(shape) if isinstance(shape, tuple | list) else []
    if not dims or any(
        isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1 for d in dims
    ):
        raise ValueError(f"`shape` must be a non-empty tuple of positive integers, got {shape!r}")
    return SymbolicTensor(tuple(int(d) for d in dims))


def connect(layer: Layer, inputs: Any) -> SymbolicTensor:
    """``layer(inputs)`` on symbolic tensors: set the layer's input shape, return its output."""
    if getattr(layer, "_called_on", None) is not None:
        raise ValueError(
            f"this {layer.layer_name()} is connected already; a layer runs once in a "
            "graph: create another one"
        )
    if getattr(layer, "merges", False):
        if (
            not isinstance(inputs, list | tuple)
            or len(inputs) < 2
            or not all(isinstance(t, SymbolicTensor) for t in inputs)
        ):
            raise TypeError(
                f"{layer.layer_name()} takes a list of two or more symbolic tensors, "
                f"got {inputs!r}"
            )
        sources = tuple(inputs)
        layer.set_input_shapes([t.shape for t in sources])  # type: ignore[attr-defined]
    else:
        if not isinstance(inputs, SymbolicTensor):
            raise TypeError(
                f"{layer.layer_name()} can be called on a symbolic tensor (from "
                f"xconv.Input or another layer's call), got {type(inputs).__name__}; "
                "use forward_pass() on arrays"
            )
        given = layer.input_shape
        if given is not None and tuple(given) != inputs.shape:
            raise ValueError(
                f"{layer.layer_name()} was given input_shape {tuple(given)}, but it is "
                f"called on a tensor of shape {inputs.shape}"
            )
        sources = (inputs,)
        layer.set_input_shape(inputs.shape)
    output = SymbolicTensor(layer.output_shape(), layer=layer, inputs=sources)
    layer._called_on = sources  # type: ignore[attr-defined]
    return output
