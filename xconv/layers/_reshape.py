"""Layers that only move numbers around: Flatten, Reshape, ZeroPadding2D, UpSampling2D.

This module also holds `ParameterFreeLayer`, the base of every layer without
parameters (these, pooling and activations): it checks the batch against the input
shape, keeps what backward needs from a training forward pass, and checks the
gradient it gets back.
"""

from __future__ import annotations

import math

import array_api_compat
import array_api_extra as xpx

from xconv._typing import Array, Namespace
from xconv._validation import as_int, check_ndim, check_shape, int_or_pair, namespace_of
from xconv.functional import interpolate, interpolate_backward

from ._base import Layer

__all__ = ["Flatten", "ParameterFreeLayer", "Reshape", "UpSampling2D", "ZeroPadding2D"]


class ParameterFreeLayer(Layer):
    """Base of layers without parameters.

    They have no `build` (so `initialize` just records the backend, input shape or
    not) and take their namespace from the batch. Subclasses implement `_forward`,
    `_backward` and, unless the output is shaped like the input, `_output_shape`;
    `_on_input_shape` validates an input shape when it is set and works out what
    depends on it.
    """

    #: axes of one sample, e.g. ``"CHW"``; None means any number of axes (at least one)
    sample_axes: str | None = None

    def __init__(self, input_shape: tuple[int, ...] | None = None) -> None:
        # what a training forward pass keeps for backward: always the input "X"
        self._saved: dict[str, Array] | None = None
        super().__init__(input_shape)

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        dims = [as_int(d) for d in shape] if isinstance(shape, tuple | list) else []
        wanted = self.sample_axes
        if (
            not dims
            or (wanted is not None and len(dims) != len(wanted))
            or any(d is None or d < 1 for d in dims)
        ):
            what = (
                f"{len(wanted)} positive integers ({', '.join(wanted)})"
                if wanted
                else "a non-empty tuple of positive integers"
            )
            raise ValueError(f"`input_shape` must be {what}, got {shape!r}")
        checked = tuple(int(d or 0) for d in dims)
        self._on_input_shape(checked)
        super().set_input_shape(checked)

    def output_shape(self) -> tuple[int, ...]:
        # the base class's answer is the input shape, or an error while it is unknown
        return self._output_shape(super().output_shape())

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        # the namespace, and the input shape from the first batch unless it was given
        xp = self.check_input(X)
        out, saved = self._forward(X, xp)
        # keep what backward_pass needs (and nothing in inference)
        self._saved = {"X": X, **saved} if training else None
        return out

    def _check_sample_shape(self, X: Array) -> None:
        # the number of axes first: a batch of other axes must not set the input shape
        if self.sample_axes is not None:
            check_ndim(X, "X", "N" + self.sample_axes)
        elif X.ndim < 2:
            raise ValueError(
                f"`X` must have a batch axis and at least one more, got shape {tuple(X.shape)}"
            )
        super()._check_sample_shape(X)

    def backward_pass(self, accum_grad: Array) -> Array:
        if self._saved is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        X = self._saved["X"]
        xp = namespace_of(accum_grad=accum_grad, X=X)
        expected = (X.shape[0], *self.output_shape())
        check_shape(accum_grad, "accum_grad", expected, "the shape of the layer's output")
        grad_input = self._backward(accum_grad, self._saved, xp)
        self._saved = None
        return grad_input

    # -- for subclasses -----------------------------------------------------------------

    def _on_input_shape(self, input_shape: tuple[int, ...]) -> None:
        """Validate `input_shape` beyond its form and derive what depends on it."""

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        """The output, and what backward needs besides X."""
        raise NotImplementedError

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        """The input gradient from the output gradient and what `_forward` kept."""
        raise NotImplementedError


class Flatten(ParameterFreeLayer):
    """Flatten each sample to one axis, e.g. after the convolutions, before Dense.

    Shape:
        input (N, d1, d2, ...) -> output (N, d1 * d2 * ...).

    Example:
        >>> import numpy as np
        >>> layer = Flatten(input_shape=(2, 3, 3))
        >>> layer.output_shape()
        (18,)
        >>> layer.forward_pass(np.zeros((4, 2, 3, 3))).shape
        (4, 18)
    """

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (math.prod(input_shape),)

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        return xp.reshape(X, (X.shape[0], *self.output_shape())), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        return xp.reshape(accum_grad, saved["X"].shape)


class Reshape(ParameterFreeLayer):
    """Give each sample a new shape with as many elements (row-major order).

    Args:
        shape: the shape of one output sample, positive integers; one of them may
            be -1, worked out from the input shape.
        input_shape: the shape of one input sample, or taken from the first batch.

    Shape:
        input (N, *input_shape) -> output (N, *shape).

    Example:
        >>> import numpy as np
        >>> layer = Reshape((2, -1), input_shape=(12,))
        >>> layer.output_shape()
        (2, 6)
    """

    def __init__(self, shape: tuple[int, ...], input_shape: tuple[int, ...] | None = None) -> None:
        dims = [as_int(d) for d in shape] if isinstance(shape, tuple | list) else []
        if not dims or any(d is None or (d < 1 and d != -1) for d in dims) or dims.count(-1) > 1:
            raise ValueError(
                f"`shape` must be a non-empty tuple of positive integers, one of which may "
                f"be -1, got {shape!r}"
            )
        self.shape = tuple(int(d or 0) for d in dims)
        self._target: tuple[int, ...] | None = None
        super().__init__(input_shape)

    def _on_input_shape(self, input_shape: tuple[int, ...]) -> None:
        size = math.prod(input_shape)
        known = math.prod(d for d in self.shape if d != -1)
        target = self.shape
        if -1 in self.shape and size % known == 0:
            target = tuple(size // known if d == -1 else d for d in self.shape)
        if math.prod(target) != size or -1 in target:
            raise ValueError(
                f"`shape` (={self.shape}) cannot hold the {size} elements of a sample of "
                f"`input_shape` {input_shape}"
            )
        self._target = target

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        assert self._target is not None
        return self._target

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        return xp.reshape(X, (X.shape[0], *self.output_shape())), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        return xp.reshape(accum_grad, saved["X"].shape)


_PADDING_FORMS = (
    "a non-negative integer, a pair (pad_h, pad_w) or a pair of pairs "
    "((top, bottom), (left, right))"
)


def _padding_pairs(padding: object) -> tuple[tuple[int, int], tuple[int, int]]:
    """`padding` in any of its forms as ((top, bottom), (left, right))."""
    try:
        if (
            isinstance(padding, tuple | list)
            and len(padding) == 2
            and all(isinstance(p, tuple | list) for p in padding)
        ):
            top, bottom = int_or_pair(padding[0], "padding", minimum=0)
            left, right = int_or_pair(padding[1], "padding", minimum=0)
        else:
            pad_h, pad_w = int_or_pair(padding, "padding", minimum=0)
            (top, bottom), (left, right) = (pad_h, pad_h), (pad_w, pad_w)
    except TypeError:
        raise TypeError(f"`padding` must be {_PADDING_FORMS}, got {padding!r}") from None
    except ValueError:
        raise ValueError(f"`padding` must be {_PADDING_FORMS}, got {padding!r}") from None
    return (top, bottom), (left, right)


class ZeroPadding2D(ParameterFreeLayer):
    """Pad each image with zeros at its borders.

    Args:
        padding: an int (all sides), (pad_h, pad_w) or ((top, bottom), (left, right)).
        input_shape: (C, H, W) of one sample, or taken from the first batch.

    Shape:
        input (N, C, H, W) -> output (N, C, H + top + bottom, W + left + right).

    Example:
        >>> import numpy as np
        >>> layer = ZeroPadding2D(((1, 0), (0, 2)))
        >>> layer.forward_pass(np.ones((1, 1, 1, 1)))[0, 0]
        array([[0., 0., 0.],
               [1., 0., 0.]])
    """

    sample_axes = "CHW"

    def __init__(
        self,
        padding: int | tuple[int, int] | tuple[tuple[int, int], tuple[int, int]],
        input_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self.padding = _padding_pairs(padding)
        super().__init__(input_shape)

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        (top, bottom), (left, right) = self.padding
        channels, height, width = input_shape
        return channels, height + top + bottom, width + left + right

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        shape = (X.shape[0], *self.output_shape())
        if X.shape[0] == 0:  # Dask cannot pad an empty array
            return xp.zeros(shape, dtype=X.dtype, device=array_api_compat.device(X)), {}
        return xpx.pad(X, ((0, 0), (0, 0), *self.padding), xp=xp), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        # the gradient of the padding goes nowhere: crop it
        (top, _), (left, _) = self.padding
        height, width = saved["X"].shape[2], saved["X"].shape[3]
        return accum_grad[:, :, top : top + height, left : left + width]


class UpSampling2D(ParameterFreeLayer):
    """Upsample by `size`: repeat each pixel into a block (``interpolation="nearest"``,
    the default), or interpolate bilinearly (``"bilinear"``: Keras's, which is PyTorch's
    ``interpolate(..., mode="bilinear", align_corners=False)``).

    The nearest gradient sums the output gradient over each block, since every output
    pixel of a block is a copy of the same input pixel; the bilinear gradient is
    `xconv.functional.interpolate_backward`'s.

    Args:
        size: (sh, sw) or an int, >= 1: how many times rows and columns repeat.
        input_shape: (C, H, W) of one sample, or taken from the first batch.
        interpolation: "nearest" (default) or "bilinear".

    Shape:
        input (N, C, H, W) -> output (N, C, H * sh, W * sw).

    Example:
        >>> import numpy as np
        >>> layer = UpSampling2D((1, 2))
        >>> layer.forward_pass(np.array([[[[1.0, 2.0]]]]))[0, 0]
        array([[1., 1., 2., 2.]])
        >>> layer.backward_pass(np.array([[[[1.0, 2.0, 3.0, 4.0]]]]))[0, 0]
        array([[3., 7.]])
        >>> smooth = UpSampling2D((1, 2), interpolation="bilinear")
        >>> smooth.forward_pass(np.array([[[[1.0, 2.0]]]]))[0, 0]
        array([[1.  , 1.25, 1.75, 2.  ]])
    """

    sample_axes = "CHW"

    def __init__(
        self,
        size: int | tuple[int, int] = (2, 2),
        input_shape: tuple[int, int, int] | None = None,
        *,
        interpolation: str = "nearest",
    ) -> None:
        self.size = int_or_pair(size, "size")
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(
                f"`interpolation` must be 'nearest' or 'bilinear', got {interpolation!r}"
            )
        self.interpolation = interpolation
        super().__init__(input_shape)

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, height, width = input_shape
        return channels, height * self.size[0], width * self.size[1]

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        if self.interpolation == "bilinear":
            return interpolate(X, scale_factor=self.size, mode="bilinear"), {}
        n, c, h, w = X.shape
        sh, sw = self.size
        # copy each pixel into an (sh, sw) block: broadcast over two new axes
        blocks = xp.broadcast_to(xp.reshape(X, (n, c, h, 1, w, 1)), (n, c, h, sh, w, sw))
        return xp.reshape(blocks, (n, c, h * sh, w * sw)), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        if self.interpolation == "bilinear":
            return interpolate_backward(
                accum_grad, saved["X"], scale_factor=self.size, mode="bilinear"
            )
        n, c, h, w = saved["X"].shape
        sh, sw = self.size
        # every output pixel of a block came from one input pixel: sum over the block
        blocks = xp.reshape(accum_grad, (n, c, h, sh, w, sw))
        return xp.sum(blocks, axis=(3, 5))
