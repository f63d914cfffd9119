"""Global pooling: one number per channel, the mean or the maximum over the image."""

from __future__ import annotations

import array_api_compat

from xconv._typing import Array, Namespace

from ._reshape import ParameterFreeLayer

__all__ = ["GlobalAveragePooling2D", "GlobalMaxPooling2D"]


class _GlobalPooling2D(ParameterFreeLayer):
    sample_axes = "CHW"

    def _output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0],)


class GlobalAveragePooling2D(_GlobalPooling2D):
    """The mean of each channel over height and width (before a classifier's Dense).

    Shape:
        input (N, C, H, W) -> output (N, C).

    Example:
        >>> import numpy as np
        >>> layer = GlobalAveragePooling2D()
        >>> layer.forward_pass(np.arange(8.0).reshape(1, 2, 2, 2))
        array([[1.5, 5.5]])
        >>> layer.backward_pass(np.array([[4.0, 8.0]]))[0, :, 0, 0]
        array([1., 2.])
    """

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        return xp.mean(X, axis=(2, 3)), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        n, c, h, w = saved["X"].shape
        share = xp.reshape(accum_grad / (h * w), (n, c, 1, 1))
        return xp.broadcast_to(share, (n, c, h, w))


class GlobalMaxPooling2D(_GlobalPooling2D):
    """The maximum of each channel over height and width.

    The gradient goes to the first position of the maximum (in row-major order), as
    the gradient of an ``argmax`` selection.

    Shape:
        input (N, C, H, W) -> output (N, C).

    Example:
        >>> import numpy as np
        >>> layer = GlobalMaxPooling2D()
        >>> layer.forward_pass(np.array([[[[1.0, 3.0], [3.0, 2.0]]]]))
        array([[3.]])
        >>> layer.backward_pass(np.array([[5.0]]))
        array([[[[0., 5.],
                 [0., 0.]]]])
    """

    def _forward(self, X: Array, xp: Namespace) -> tuple[Array, dict[str, Array]]:
        return xp.max(X, axis=(2, 3)), {}

    def _backward(self, accum_grad: Array, saved: dict[str, Array], xp: Namespace) -> Array:
        X = saved["X"]
        n, c, h, w = X.shape
        # one-hot of the first maximum of each channel
        flat = xp.reshape(X, (n, c, h * w))
        first = xp.argmax(flat, axis=2)
        positions = xp.arange(h * w, dtype=first.dtype, device=array_api_compat.device(X))
        mask = xp.astype(positions == first[:, :, None], X.dtype)
        return xp.reshape(mask * accum_grad[:, :, None], (n, c, h, w))
