"""Merge layers of graph models: `Add` and `Concatenate` several tensors into one."""

from __future__ import annotations

from collections.abc import Sequence

import array_api_compat
import numpy as np

from xconv._typing import Array, Namespace
from xconv._validation import as_int

from ._base import Layer

__all__ = ["Add", "Concatenate", "Merge"]


class Merge(Layer):
    """Base of layers that read several tensors (a graph model's joins).

    `forward_pass` takes a list of batches and `backward_pass` returns a list of
    gradients, one per input. The input shapes come from the graph
    (`set_input_shapes`); `input_shape` is the first of them.
    """

    #: the graph passes a list of inputs
    merges = True

    def __init__(self) -> None:
        self.input_shapes: tuple[tuple[int, ...], ...] | None = None
        self._shapes: list[tuple[int, ...]] | None = None
        super().__init__(None)

    def __repr__(self) -> str:
        return f"{self.layer_name()}(input_shapes={self.input_shapes})"

    def set_input_shapes(self, shapes: Sequence[tuple[int, ...]]) -> None:
        """The shapes of one sample of each input (no batch axis)."""
        checked = []
        for shape in shapes:
            dims = list(shape) if isinstance(shape, tuple | list) else []
            if not dims or any(
                isinstance(d, bool) or not isinstance(d, int | np.integer) or d < 1 for d in dims
            ):
                raise ValueError(
                    f"input shapes must be tuples of positive integers, got {shape!r}"
                )
            checked.append(tuple(int(d) for d in dims))
        if len(checked) < 2:
            raise ValueError(f"{self.layer_name()} needs two or more inputs, got {len(checked)}")
        self._check_shapes(checked)
        self.input_shapes = tuple(checked)
        self.input_shape = checked[0]

    def output_shape(self) -> tuple[int, ...]:
        if self.input_shapes is None:
            raise ValueError(f"{self.layer_name()}'s output shape is unknown until it is called")
        return self._output_shape(list(self.input_shapes))

    def forward_pass(self, X: Sequence[Array], training: bool = True) -> Array:
        """The merged batch of the list of batches `X`."""
        if not isinstance(X, list | tuple) or len(X) < 2:
            raise TypeError(f"{self.layer_name()} takes a list of two or more arrays")
        xp = array_api_compat.array_namespace(*X)
        shapes = [tuple(x.shape[1:]) for x in X]
        if len({x.shape[0] for x in X}) != 1:
            raise ValueError(
                f"{self.layer_name()}'s inputs must hold the same number of samples, got "
                f"shapes {[tuple(x.shape) for x in X]}"
            )
        if self.input_shapes is None:
            self.set_input_shapes(shapes)
        elif shapes != list(self.input_shapes):
            raise ValueError(
                f"{self.layer_name()} expects samples of shapes {list(self.input_shapes)}, "
                f"got {shapes}"
            )
        self._shapes = shapes if training else None
        return self._merge(list(X), xp)

    def backward_pass(self, accum_grad: Array) -> list[Array]:
        """The gradient of each input, from the gradient of the merged output."""
        if self._shapes is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        xp = array_api_compat.array_namespace(accum_grad)
        expected = (accum_grad.shape[0], *self.output_shape())
        if tuple(accum_grad.shape) != expected:
            raise ValueError(
                f"`accum_grad` must have the shape of the layer's output {expected}, "
                f"got {tuple(accum_grad.shape)}"
            )
        grads = self._split(accum_grad, self._shapes, xp)
        self._shapes = None
        return grads

    # -- for subclasses -------------------------------------------------------------

    def _check_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        raise NotImplementedError

    def _output_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        raise NotImplementedError

    def _merge(self, inputs: list[Array], xp: Namespace) -> Array:
        raise NotImplementedError

    def _split(self, grad: Array, shapes: list[tuple[int, ...]], xp: Namespace) -> list[Array]:
        raise NotImplementedError


class Add(Merge):
    """The elementwise sum of inputs of one shape: the join of a residual connection.

    Shape:
        inputs, each (N, *shape) -> output (N, *shape).

    Example:
        >>> import numpy as np
        >>> from xconv.layers import Conv2D, Input
        >>> x = Input((4, 8, 8))
        >>> y = Add()([x, Conv2D(4, 3)(x)])
        >>> y.shape
        (4, 8, 8)
        >>> Add().forward_pass([np.ones((2, 3)), np.ones((2, 3))])[0]
        array([2., 2., 2.])
    """

    def _check_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        if len(set(shapes)) != 1:
            raise ValueError(f"Add's inputs must have one shape, got {shapes}")

    def _output_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        return shapes[0]

    def _merge(self, inputs: list[Array], xp: Namespace) -> Array:
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total

    def _split(self, grad: Array, shapes: list[tuple[int, ...]], xp: Namespace) -> list[Array]:
        # each input reaches the sum with weight one
        return [grad for _ in shapes]


class Concatenate(Merge):
    """Join inputs along one axis (by default the channels of NCHW images).

    Args:
        axis: the axis to join along, counting the batch axis as 0 (as
            ``torch.cat``'s `dim`); negative counts from the end. Default 1, the
            channels. The inputs must agree on every other axis.

    Shape:
        inputs (N, C_i, H, W) -> output (N, sum C_i, H, W) for ``axis=1``.

    Example:
        >>> import numpy as np
        >>> from xconv.layers import Conv2D, Input
        >>> x = Input((3, 8, 8))
        >>> Concatenate()([Conv2D(4, 3)(x), Conv2D(2, 1)(x)]).shape
        (6, 8, 8)
        >>> Concatenate(axis=-1).forward_pass([np.zeros((2, 3)), np.ones((2, 1))]).shape
        (2, 4)
    """

    def __init__(self, axis: int = 1) -> None:
        axis_ = as_int(axis)
        if axis_ is None:
            raise TypeError(f"`axis` must be an integer, got {axis!r}")
        self.axis = axis_
        super().__init__()

    def _sample_axis(self, ndim: int) -> int:
        """The axis within one sample (0-based, no batch axis)."""
        axis = self.axis + ndim + 1 if self.axis < 0 else self.axis
        if not 1 <= axis <= ndim:
            raise ValueError(
                f"`axis` (={self.axis}) must name a sample axis of inputs with {ndim} axes "
                "besides the batch axis (the batch axis 0 cannot be joined)"
            )
        return axis - 1

    def _check_shapes(self, shapes: list[tuple[int, ...]]) -> None:
        if len({len(s) for s in shapes}) != 1:
            raise ValueError(f"Concatenate's inputs must have one number of axes, got {shapes}")
        axis = self._sample_axis(len(shapes[0]))
        rest = {s[:axis] + s[axis + 1 :] for s in shapes}
        if len(rest) != 1:
            raise ValueError(
                f"Concatenate's inputs must agree on every axis but `axis` (={self.axis}), "
                f"got {shapes}"
            )

    def _output_shape(self, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
        axis = self._sample_axis(len(shapes[0]))
        size = sum(s[axis] for s in shapes)
        return (*shapes[0][:axis], size, *shapes[0][axis + 1 :])

    def _merge(self, inputs: list[Array], xp: Namespace) -> Array:
        return xp.concat(inputs, axis=self._sample_axis(inputs[0].ndim - 1) + 1)

    def _split(self, grad: Array, shapes: list[tuple[int, ...]], xp: Namespace) -> list[Array]:
        axis = self._sample_axis(len(shapes[0]))
        grads, start = [], 0
        for shape in shapes:
            index = [slice(None)] * grad.ndim
            index[axis + 1] = slice(start, start + shape[axis])
            grads.append(grad[tuple(index)])
            start += shape[axis]
        return grads
