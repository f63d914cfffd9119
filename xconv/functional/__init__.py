"""Pure functions on arrays: convolution, im2col/col2im and their gradients.

Every function takes arrays of any array-API library (NumPy, CuPy, PyTorch, JAX,
Dask, array-api-strict), infers their namespace once, and returns results in that
namespace, on the inputs' device, in the inputs' dtype. Semantics follow
`torch.nn.functional`: NCHW layout, weight of shape (F, C // groups, kh, kw).
"""

from ._checks import KERNEL_OPS
from ._conv import conv2d, conv2d_backward
from ._geometry import ConvGeometry
from ._im2col import col2im, col2im_generic, im2col, im2col_generic

__all__ = [
    "KERNEL_OPS",
    "ConvGeometry",
    "col2im",
    "col2im_generic",
    "conv2d",
    "conv2d_backward",
    "im2col",
    "im2col_generic",
]
