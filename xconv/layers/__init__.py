"""Stateful layers built on `xconv.functional`, with the ancestor's API.

Each layer has ``forward_pass(X, training=True)``, ``backward_pass(accum_grad)``
(returns the input gradient, stores parameter gradients in ``grads``),
``output_shape()`` and ``parameters()``. Layers without parameters (pooling,
activations, reshaping) work without ``initialize()``: they follow their input.

Layers are also callable on symbolic tensors (`Input`), to build graph models:
``y = Add()([x, Conv2D(16, 3)(x)])``.
"""

from ._activation import Activation
from ._adaptive_pooling import AdaptiveAveragePooling2D, AdaptiveMaxPooling2D
from ._augment import RandomCrop, RandomFlip
from ._base import Layer, StochasticLayer
from ._conv import Conv2D
from ._conv_transpose import Conv2DTranspose
from ._dense import Dense
from ._depthwise import DepthwiseConv2D, SeparableConv2D
from ._global_pooling import GlobalAveragePooling2D, GlobalMaxPooling2D
from ._graph import Input, SymbolicTensor
from ._group_normalization import GroupNormalization
from ._initializers import DEFAULT_INITIALIZER, INITIALIZERS
from ._merge import Add, Concatenate, Merge
from ._normalization import LayerNormalization
from ._pooling import AveragePooling2D, MaxPooling2D
from ._registry import get_layer_class, register, registered_name
from ._regularization import BatchNormalization, Dropout
from ._reshape import Flatten, Reshape, UpSampling2D, ZeroPadding2D
from ._smooth_activations import GELU, SiLU

__all__ = [
    "DEFAULT_INITIALIZER",
    "GELU",
    "INITIALIZERS",
    "Activation",
    "AdaptiveAveragePooling2D",
    "AdaptiveMaxPooling2D",
    "Add",
    "AveragePooling2D",
    "BatchNormalization",
    "Concatenate",
    "Conv2D",
    "Conv2DTranspose",
    "Dense",
    "DepthwiseConv2D",
    "Dropout",
    "Flatten",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "GroupNormalization",
    "Input",
    "Layer",
    "LayerNormalization",
    "MaxPooling2D",
    "Merge",
    "RandomCrop",
    "RandomFlip",
    "Reshape",
    "SeparableConv2D",
    "SiLU",
    "StochasticLayer",
    "SymbolicTensor",
    "UpSampling2D",
    "ZeroPadding2D",
    "get_layer_class",
    "register",
    "registered_name",
]

# the built-in layers load by their class names
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) and issubclass(_value, Layer) and _value not in (Layer, Merge):
        register(_value)
del _name, _value
