"""xconv: readable convolutional networks on any array-API library.

The convolution and its gradients are written once against the Python array API
standard, so the same code runs on NumPy, CuPy (GPU), PyTorch, JAX, Dask and
array-api-strict. Importing xconv imports none of the optional libraries.
"""

from . import backends, functional, layers
from .backends import get_backend, set_backend, use_backend

__version__ = "0.1.0.dev0"

__all__ = [
    "__version__",
    "backends",
    "functional",
    "get_backend",
    "layers",
    "set_backend",
    "use_backend",
]
