"""Conv2DTranspose: the layer of `conv_transpose2d`, for upsampling decoders."""

from __future__ import annotations

from typing import Any

from xconv._typing import Array, IntOrPair, Padding
from xconv._validation import check_shape, int_or_pair, namespace_of
from xconv.functional import (
    ConvGeometry,
    conv_transpose2d,
    conv_transpose2d_backward,
)

from ._conv import Conv2D

__all__ = ["Conv2DTranspose"]


class Conv2DTranspose(Conv2D):
    """A transposed-convolution layer: ``conv_transpose2d(X, weight, bias, ...)``.

    Arguments as for `Conv2D`, plus `output_padding`. With ``padding="same"`` (the
    default) the output is exactly ``stride`` times the input.

    Parameters: ``"weight"`` of shape (C, F // groups, kh, kw) (input channels first,
    as in PyTorch), uniform in +-1/sqrt(C // groups * kh * kw); ``"bias"`` (F,), zeros.

    Example:
        >>> import numpy as np
        >>> layer = Conv2DTranspose(4, 3, input_shape=(2, 5, 5), stride=2)
        >>> layer.output_shape()
        (4, 10, 10)
    """

    def __init__(
        self,
        n_filters: int,
        filter_shape: IntOrPair,
        input_shape: tuple[int, int, int] | None = None,
        padding: Padding = "same",
        stride: IntOrPair = 1,
        output_padding: IntOrPair = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        use_bias: bool = True,
    ) -> None:
        self.output_padding = int_or_pair(output_padding, "output_padding", minimum=0)
        super().__init__(
            n_filters, filter_shape, input_shape, padding, stride, dilation, groups, use_bias
        )

    def _build_geometry(self, height: int, width: int) -> ConvGeometry:
        return ConvGeometry.for_transpose(
            (height, width),
            self.filter_shape,
            stride=self.stride,
            padding=self.padding,
            output_padding=self.output_padding,
            dilation=self.dilation,
        )

    def _weight_shape(self) -> tuple[int, int, int, int]:
        assert self.input_shape is not None
        return (self.input_shape[0], self.n_filters // self.groups, *self.filter_shape)

    def output_shape(self) -> tuple[int, int, int]:
        if self._geometry is None:
            raise ValueError(
                "Conv2DTranspose's output shape is unknown until its input shape is set"
            )
        return (self.n_filters, *self._geometry.in_size)

    def _options(self) -> dict[str, Any]:
        return {
            "stride": self.stride,
            "padding": self.padding,
            "output_padding": self.output_padding,
            "dilation": self.dilation,
            "groups": self.groups,
        }

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        self.ensure_initialized(X)
        self.check_input(X)
        out = conv_transpose2d(
            X, self.params["weight"], self.params.get("bias"), **self._options()
        )
        self._input = X if training else None
        return out

    skips_input_gradient = False  # (Conv2D's skip does not apply: always computed)

    def backward_pass(self, accum_grad: Array, *, input_gradient: bool = True) -> Array | None:
        if self._input is None:
            raise RuntimeError("backward_pass() needs a forward_pass(X, training=True) first")
        namespace_of(accum_grad=accum_grad, X=self._input)
        expected = (self._input.shape[0], *self.output_shape())
        check_shape(accum_grad, "accum_grad", expected, "the shape of the layer's output")
        grad_input, grad_weight, grad_bias = conv_transpose2d_backward(
            accum_grad, self._input, self.params["weight"], bias=self.use_bias, **self._options()
        )
        self.grads = {"weight": grad_weight}
        if grad_bias is not None:
            self.grads["bias"] = grad_bias
        self._input = None
        return grad_input
