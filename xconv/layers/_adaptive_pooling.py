"""Adaptive pooling layers: a fixed output size whatever the input's height and width."""

from __future__ import annotations

from typing import Any

from xconv._validation import optional_pair
from xconv.functional import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
)

from ._base import Array
from ._reshape import ParameterFreeLayer

__all__ = ["AdaptiveAveragePooling2D", "AdaptiveMaxPooling2D"]


class _AdaptivePooling2D(ParameterFreeLayer):
    sample_axes = "CHW"

    def __init__(
        self,
        output_size: int | tuple[int, int],
        input_shape: tuple[int, int, int] | None = None,
    ) -> None:
        self._sizes = optional_pair(output_size, "output_size")
        self.output_size: Any = (
            self._sizes if isinstance(output_size, tuple | list) else self._sizes[0]
        )
        super().__init__(input_shape)

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        channels, height, width = input_shape
        return channels, self._sizes[0] or height, self._sizes[1] or width


class AdaptiveAveragePooling2D(_AdaptivePooling2D):
    """The mean of each of (OH, OW) adaptive windows, as `torch.nn.AdaptiveAvgPool2d`:
    output row i pools input rows ``floor(i * H / OH)`` to ``ceil((i + 1) * H / OH)``.

    Args:
        output_size: (OH, OW) or an int for both; None in a pair keeps that input size.
        input_shape: (C, H, W) of one sample, or taken from the first batch.

    Shape:
        input (N, C, H, W) -> output (N, C, OH, OW).

    Example:
        >>> import numpy as np
        >>> layer = AdaptiveAveragePooling2D((1, 3))
        >>> layer.forward_pass(np.arange(10.0).reshape(1, 1, 2, 5))[0, 0]
        array([[3. , 4.5, 6. ]])
    """

    def _forward(self, X: Array, xp: Any) -> tuple[Array, dict[str, Array]]:
        return adaptive_avg_pool2d(X, self.output_size), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Any) -> Array:
        return adaptive_avg_pool2d_backward(accum_grad, saved["X"], self.output_size)


class AdaptiveMaxPooling2D(_AdaptivePooling2D):
    """The maximum of each of (OH, OW) adaptive windows, as `torch.nn.AdaptiveMaxPool2d`;
    the gradient goes to each window's first maximum.

    Args:
        output_size: (OH, OW) or an int for both; None in a pair keeps that input size.
        input_shape: (C, H, W) of one sample, or taken from the first batch.

    Shape:
        input (N, C, H, W) -> output (N, C, OH, OW).

    Example:
        >>> import numpy as np
        >>> layer = AdaptiveMaxPooling2D(1)
        >>> layer.forward_pass(np.array([[[[1.0, 5.0], [4.0, 0.0]]]]))[0, 0]
        array([[5.]])
    """

    def _forward(self, X: Array, xp: Any) -> tuple[Array, dict[str, Array]]:
        return adaptive_max_pool2d(X, self.output_size), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Any) -> Array:
        return adaptive_max_pool2d_backward(accum_grad, saved["X"], self.output_size)
