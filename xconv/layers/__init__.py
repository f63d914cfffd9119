"""Stateful layers built on `xconv.functional`, with the ancestor's API.

Each layer has ``forward_pass(X, training=True)``, ``backward_pass(accum_grad)``
(returns the input gradient, stores parameter gradients in ``grads``),
``output_shape()`` and ``parameters()``.
"""

from ._base import Layer
from ._conv import Conv2D

__all__ = ["Conv2D", "Layer"]
