"""Stateful layers built on `xconv.functional`, with the ancestor's API.

Each layer has ``forward_pass(X, training=True)``, ``backward_pass(accum_grad)``
(returns the input gradient, stores parameter gradients in ``grads``),
``output_shape()`` and ``parameters()``. Layers without parameters (pooling,
activations, reshaping) work without ``initialize()``: they follow their input.
"""

from ._activation import Activation
from ._augment import RandomCrop, RandomFlip
from ._base import Layer
from ._conv import Conv2D
from ._conv_transpose import Conv2DTranspose
from ._dense import Dense
from ._pooling import AveragePooling2D, MaxPooling2D
from ._regularization import BatchNormalization, Dropout
from ._reshape import Flatten, Reshape, UpSampling2D, ZeroPadding2D

__all__ = [
    "Activation",
    "AveragePooling2D",
    "BatchNormalization",
    "Conv2D",
    "Conv2DTranspose",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "MaxPooling2D",
    "RandomCrop",
    "RandomFlip",
    "Reshape",
    "UpSampling2D",
    "ZeroPadding2D",
]
