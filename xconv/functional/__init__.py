"""Pure functions on arrays: convolution, pooling, activations and their gradients.

Every function takes arrays of any array-API library (NumPy, CuPy, PyTorch, JAX,
Dask, array-api-strict), infers their namespace once, and returns results in that
namespace, on the inputs' device, in the inputs' dtype. Semantics follow
`torch.nn.functional`: NCHW layout, weight of shape (F, C // groups, kh, kw).
"""

from ._activations import (
    ACTIVATIONS,
    ActivationFunctions,
    elu,
    elu_backward,
    get_activation,
    leaky_relu,
    leaky_relu_backward,
    log_softmax,
    log_softmax_backward,
    relu,
    relu_backward,
    selu,
    selu_backward,
    sigmoid,
    sigmoid_backward,
    softmax,
    softmax_backward,
    softplus,
    softplus_backward,
    tanh,
    tanh_backward,
)
from ._checks import KERNEL_OPS
from ._conv import conv2d, conv2d_backward
from ._conv_transpose import conv_transpose2d, conv_transpose2d_backward
from ._geometry import ConvGeometry
from ._im2col import col2im, col2im_generic, im2col, im2col_generic
from ._pooling import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward

__all__ = [
    "ACTIVATIONS",
    "KERNEL_OPS",
    "ActivationFunctions",
    "ConvGeometry",
    "avg_pool2d",
    "avg_pool2d_backward",
    "col2im",
    "col2im_generic",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "elu",
    "elu_backward",
    "get_activation",
    "im2col",
    "im2col_generic",
    "leaky_relu",
    "leaky_relu_backward",
    "log_softmax",
    "log_softmax_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "relu",
    "relu_backward",
    "selu",
    "selu_backward",
    "sigmoid",
    "sigmoid_backward",
    "softmax",
    "softmax_backward",
    "softplus",
    "softplus_backward",
    "tanh",
    "tanh_backward",
]
