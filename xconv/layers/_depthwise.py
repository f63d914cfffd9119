"""Depthwise and depthwise-separable convolutions (MobileNet's building blocks)."""

from __future__ import annotations

from typing import Any

import numpy as np

from xconv._typing import Array, IntOrPair, Padding
from xconv._validation import positive_int

from ._base import Layer
from ._conv import Conv2D
from ._initializers import DEFAULT_INITIALIZER, check_initializer

__all__ = ["DepthwiseConv2D", "SeparableConv2D"]


class DepthwiseConv2D(Conv2D):
    """A convolution of each input channel on its own: `Conv2D` with ``groups = C``.

    Args:
        filter_shape: kernel size, int or (kh, kw).
        depth_multiplier: output channels per input channel, M >= 1.
        input_shape, padding, stride, dilation, use_bias, activation,
            kernel_initializer: as for `Conv2D`.

    Parameters: ``"weight"`` of shape (C * M, 1, kh, kw) (PyTorch's layout for
    ``Conv2d(C, C * M, k, groups=C)``) and ``"bias"`` of shape (C * M,).

    Shape:
        input (N, C, H, W) -> output (N, C * M, OH, OW), OH and OW as for `Conv2D`.

    Example:
        >>> layer = DepthwiseConv2D(3, depth_multiplier=2, input_shape=(4, 8, 8))
        >>> layer.initialize(seed=0)
        >>> layer.output_shape(), layer.params["weight"].shape
        ((8, 8, 8), (8, 1, 3, 3))
    """

    def __init__(
        self,
        filter_shape: IntOrPair,
        depth_multiplier: int = 1,
        input_shape: tuple[int, int, int] | None = None,
        padding: Padding = "same",
        stride: IntOrPair = 1,
        dilation: IntOrPair = 1,
        use_bias: bool = True,
        activation: str | None = None,
        kernel_initializer: str = DEFAULT_INITIALIZER,
    ) -> None:
        self.depth_multiplier = positive_int(depth_multiplier, "depth_multiplier")
        # the channels, hence the filters and groups, come with the input shape
        super().__init__(
            depth_multiplier,
            filter_shape,
            None,
            padding=padding,
            stride=stride,
            dilation=dilation,
            use_bias=use_bias,
            activation=activation,
            kernel_initializer=kernel_initializer,
        )
        if input_shape is not None:
            self.set_input_shape(input_shape)

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        channels = shape[0] if isinstance(shape, tuple | list) and len(shape) == 3 else None
        # Conv2D checks the shape; a depthwise layer has one group per channel
        if (
            isinstance(channels, int | np.integer)
            and not isinstance(channels, bool)
            and channels >= 1
        ):
            self.groups = int(channels)
            self.n_filters = int(channels) * self.depth_multiplier
        super().set_input_shape(shape)


class SeparableConv2D(Layer):
    """A depthwise convolution, then a 1x1 convolution mixing the channels.

    Args:
        n_filters: number of output channels F.
        filter_shape: the depthwise kernel size, int or (kh, kw).
        depth_multiplier: depthwise output channels per input channel, M >= 1.
        input_shape, padding, stride, dilation: of the depthwise step, as for `Conv2D`.
        use_bias: learn one bias per output channel (after the 1x1 step).
        activation: applied to the output, or None.
        kernel_initializer: for both kernels, by name.

    Parameters: ``"depthwise_weight"`` (C * M, 1, kh, kw), ``"pointwise_weight"``
    (F, C * M, 1, 1) and ``"bias"`` (F,).

    Shape:
        input (N, C, H, W) -> output (N, F, OH, OW), OH and OW as for `Conv2D`.

    Example:
        >>> layer = SeparableConv2D(16, 3, input_shape=(4, 8, 8))
        >>> layer.initialize(seed=0)
        >>> layer.output_shape(), layer.parameters()  # 4 * 9 + 16 * 4 + 16
        ((16, 8, 8), 116)
    """

    def __init__(
        self,
        n_filters: int,
        filter_shape: IntOrPair,
        depth_multiplier: int = 1,
        input_shape: tuple[int, int, int] | None = None,
        padding: Padding = "same",
        stride: IntOrPair = 1,
        dilation: IntOrPair = 1,
        use_bias: bool = True,
        activation: str | None = None,
        kernel_initializer: str = DEFAULT_INITIALIZER,
    ) -> None:
        self._depthwise = DepthwiseConv2D(
            filter_shape,
            depth_multiplier,
            padding=padding,
            stride=stride,
            dilation=dilation,
            use_bias=False,
            kernel_initializer=kernel_initializer,
        )
        self._pointwise = Conv2D(
            n_filters,
            1,
            padding="valid",
            use_bias=use_bias,
            activation=activation,
            kernel_initializer=kernel_initializer,
        )
        self.n_filters = n_filters
        self.filter_shape = self._depthwise.filter_shape
        self.depth_multiplier = depth_multiplier
        self.padding = padding
        self.stride = self._depthwise.stride
        self.dilation = self._depthwise.dilation
        self.use_bias = use_bias
        self.activation = activation
        self.kernel_initializer = check_initializer(kernel_initializer)
        super().__init__(input_shape)

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        self._depthwise.set_input_shape(shape)
        self._pointwise.set_input_shape(self._depthwise.output_shape())
        super().set_input_shape(tuple(self._depthwise.input_shape or shape))

    def output_shape(self) -> tuple[int, ...]:
        return self._pointwise.output_shape()

    def build(
        self, input_shape: tuple[int, ...], /, *, rng: np.random.Generator, dtype: Any
    ) -> None:
        # each step builds its own parameters, from the same generator in turn
        self._depthwise.initialize(seed=rng, dtype=dtype, backend=self.backend)
        self._pointwise.initialize(seed=rng, dtype=dtype, backend=self.backend)
        self.params = {
            "depthwise_weight": self._depthwise.params["weight"],
            "pointwise_weight": self._pointwise.params["weight"],
        }
        if self.use_bias:
            self.params["bias"] = self._pointwise.params["bias"]

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        self.ensure_initialized(X)
        self.check_input(X)
        # the two steps run on this layer's parameters
        self._depthwise.params = {"weight": self.params["depthwise_weight"]}
        self._pointwise.params = {"weight": self.params["pointwise_weight"]}
        if self.use_bias:
            self._pointwise.params["bias"] = self.params["bias"]
        hidden = self._depthwise.forward_pass(X, training)
        return self._pointwise.forward_pass(hidden, training)

    def backward_pass(self, accum_grad: Array) -> Array:
        grad_hidden = self._pointwise.backward_pass(accum_grad)
        grad_input = self._depthwise.backward_pass(grad_hidden)
        self.grads = {
            "depthwise_weight": self._depthwise.grads["weight"],
            "pointwise_weight": self._pointwise.grads["weight"],
        }
        if self.use_bias:
            self.grads["bias"] = self._pointwise.grads["bias"]
        return grad_input
