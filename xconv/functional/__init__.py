"""Pure functions on arrays: convolution, pooling, activations and their gradients.

Every function takes arrays of any array-API library (NumPy, CuPy, PyTorch, JAX,
Dask, array-api-strict), infers their namespace once, and returns results in that
namespace, on the inputs' device, in the inputs' dtype. Semantics follow
`torch.nn.functional`: NCHW layout, weight of shape (F, C // groups, kh, kw).

Layers, which validate their options once and run many batches, use the variants
that take a `ConvGeometry` built beforehand (`ConvGeometry.build`, `.for_pooling`,
`.for_transpose`) instead of `stride`/`padding`/...: `conv2d_forward` (which can keep
its im2col columns, a `ConvColumns`, for `conv2d_gradients` to reuse),
`max_pool2d_forward` / `max_pool2d_gradient` and `avg_pool2d_forward` /
`avg_pool2d_gradient`. They expect arrays already checked.

Each op infers its arrays' namespace once and takes that library's fast kernels
(`_kernels/`, behind the `Kernels` interface of `_interface`, chosen by `_dispatch`):
NumPy's in-place im2col, buffer reuse, threads and fused passes, CuPy's CUDA kernels,
Dask's chunk-by-chunk tasks, PyTorch's and JAX's own ops. The generic array-API code
runs wherever the kernels answer None; ``xconv.config.fast_kernels = False`` runs it
everywhere.
`kernel_threads` is the context a model runs a step in: on NumPy, BLAS keeps to one
thread and xconv's kernels use their own threads.
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
from ._adaptive import (
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
)
from ._batch_norm import BatchNormOutput, batch_norm, batch_norm_backward
from ._conv import ConvColumns, conv2d, conv2d_backward, conv2d_forward, conv2d_gradients
from ._conv_transpose import conv_transpose2d, conv_transpose2d_backward
from ._dropout import dropout, dropout_backward
from ._geometry import ConvGeometry, IntOrPair, Padding
from ._im2col import col2im, im2col
from ._kernel_threads import kernel_threads, matmul
from ._linear import linear, linear_backward
from ._loss_functions import (
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_backward,
    cross_entropy,
    cross_entropy_backward,
    nll_loss,
    nll_loss_backward,
)
from ._normalization import group_norm, group_norm_backward, layer_norm, layer_norm_backward
from ._pointwise import (
    gelu,
    gelu_backward,
    hardtanh,
    hardtanh_backward,
    relu6,
    relu6_backward,
    silu,
    silu_backward,
)
from ._pooling import (
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_forward,
    avg_pool2d_gradient,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_forward,
    max_pool2d_gradient,
)
from ._regression_losses import (
    l1_loss,
    l1_loss_backward,
    mse_loss,
    mse_loss_backward,
    smooth_l1_loss,
    smooth_l1_loss_backward,
)
from ._resize import interpolate, interpolate_backward, pad, pad_backward

__all__ = [
    "ACTIVATIONS",
    "ActivationFunctions",
    "BatchNormOutput",
    "ConvColumns",
    "ConvGeometry",
    "IntOrPair",
    "Padding",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "avg_pool2d_gradient",
    "batch_norm",
    "batch_norm_backward",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "col2im",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_gradients",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "dropout",
    "dropout_backward",
    "elu",
    "elu_backward",
    "gelu",
    "gelu_backward",
    "get_activation",
    "group_norm",
    "group_norm_backward",
    "hardtanh",
    "hardtanh_backward",
    "im2col",
    "interpolate",
    "interpolate_backward",
    "kernel_threads",
    "l1_loss",
    "l1_loss_backward",
    "layer_norm",
    "layer_norm_backward",
    "leaky_relu",
    "leaky_relu_backward",
    "linear",
    "linear_backward",
    "log_softmax",
    "log_softmax_backward",
    "matmul",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "max_pool2d_gradient",
    "mse_loss",
    "mse_loss_backward",
    "nll_loss",
    "nll_loss_backward",
    "pad",
    "pad_backward",
    "relu",
    "relu6",
    "relu6_backward",
    "relu_backward",
    "selu",
    "selu_backward",
    "sigmoid",
    "sigmoid_backward",
    "silu",
    "silu_backward",
    "smooth_l1_loss",
    "smooth_l1_loss_backward",
    "softmax",
    "softmax_backward",
    "softplus",
    "softplus_backward",
    "tanh",
    "tanh_backward",
]
