"""MaxPooling2D and AveragePooling2D, on top of `xconv.functional`'s pooling."""

from __future__ import annotations

from xconv._typing import Array, IntOrPair, Namespace, Padding
from xconv._validation import int_or_pair
from xconv.functional import (
    ConvGeometry,
    avg_pool2d_forward,
    avg_pool2d_gradient,
    max_pool2d_forward,
    max_pool2d_gradient,
)

from ._reshape import ParameterFreeLayer

__all__ = ["AveragePooling2D", "MaxPooling2D"]


class _Pooling2D(ParameterFreeLayer):
    """What both pooling layers share: options, geometry and output shape."""

    sample_axes = "CHW"

    def __init__(
        self,
        pool_shape: IntOrPair = (2, 2),
        stride: IntOrPair | None = None,
        padding: Padding = "valid",
        input_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self.pool_shape = int_or_pair(pool_shape, "pool_shape")
        self.stride = self.pool_shape if stride is None else int_or_pair(stride, "stride")
        ConvGeometry.check_padding(padding)
        self.padding = padding
        self._geometry: ConvGeometry | None = None
        super().__init__(input_shape)

    def __repr__(self) -> str:
        return (
            f"{self.layer_name()}(pool_shape={self.pool_shape}, stride={self.stride}, "
            f"padding={self.padding!r}, input_shape={self.input_shape})"
        )

    def _on_input_shape(self, input_shape: tuple[int, ...]) -> None:
        _, height, width = input_shape
        self._geometry = ConvGeometry.for_pooling(
            (height, width), self.pool_shape, stride=self.stride, padding=self.padding
        )

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        assert self._geometry is not None
        return (input_shape[0], *self._geometry.out_size)


class MaxPooling2D(_Pooling2D):
    """The largest value of each `pool_shape` window, channel by channel.

    Args:
        pool_shape: window size, int or (kh, kw), >= 1.
        stride: int or (sh, sw), >= 1; None (default) means `pool_shape`, so windows
            do not overlap.
        padding: ``"valid"`` (default), ``"same"`` (TensorFlow's: OH = ceil(H / sh)),
            an int, a pair or ((top, bottom), (left, right)). Padding never wins; each
            side must be narrower than the window.
        input_shape: (C, H, W) of one sample, or taken from the first batch.

    The gradient of each window goes to its first maximum (as in PyTorch).

    Shape:
        input (N, C, H, W) -> output (N, C, OH, OW), ``OH = (H + pad_top +
        pad_bottom - kh) // sh + 1``, OW likewise.

    Example:
        >>> import numpy as np
        >>> layer = MaxPooling2D(input_shape=(3, 7, 8))
        >>> layer.output_shape()
        (3, 3, 4)
        >>> MaxPooling2D(3, stride=2, padding="same", input_shape=(3, 7, 8)).output_shape()
        (3, 4, 4)
        >>> out = layer.forward_pass(np.ones((2, 3, 7, 8)))
        >>> layer.backward_pass(np.ones_like(out)).shape
        (2, 3, 7, 8)
    """

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        assert self._geometry is not None
        out, index = max_pool2d_forward(X, geometry=self._geometry)
        return out, {"index": index}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        assert self._geometry is not None
        return max_pool2d_gradient(accum_grad, saved["index"], geometry=self._geometry)


class AveragePooling2D(_Pooling2D):
    """The mean of each `pool_shape` window, channel by channel.

    Padding is left out of the mean: each window is divided by its number of real
    pixels (PyTorch's ``count_include_pad=False``, TensorFlow's ``"SAME"``).

    Args:
        pool_shape, stride, padding, input_shape: as for `MaxPooling2D`.

    Shape:
        input (N, C, H, W) -> output (N, C, OH, OW), as for `MaxPooling2D`.

    Example:
        >>> import numpy as np
        >>> layer = AveragePooling2D((1, 2), input_shape=(1, 1, 4))
        >>> layer.forward_pass(np.array([[[[1.0, 3.0, 5.0, 9.0]]]]))[0, 0]
        array([[2., 7.]])
    """

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        assert self._geometry is not None
        # (Keras' and TensorFlow's "SAME" averages, not PyTorch's default)
        return avg_pool2d_forward(X, geometry=self._geometry, count_include_pad=False), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        assert self._geometry is not None
        return avg_pool2d_gradient(accum_grad, geometry=self._geometry, count_include_pad=False)
