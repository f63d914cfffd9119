"""xconv: readable convolutional networks on any array-API library.

The convolution and its gradients are written once against the Python array API
standard, so the same code runs on NumPy, CuPy (GPU), PyTorch, JAX, Dask and
array-api-strict. Importing xconv imports none of the optional libraries.
"""

from . import (
    backends,
    config,
    data,
    functional,
    layers,
    losses,
    models,
    optimizers,
)
from .backends import get_backend, set_backend, use_backend
from .layers import Input
from .model import NeuralNetwork, NonFiniteLossError

__version__ = "0.1.0.dev0"

__all__ = [
    "Input",
    "NeuralNetwork",
    "NonFiniteLossError",
    "__version__",
    "backends",
    "config",
    "data",
    "functional",
    "get_backend",
    "layers",
    "losses",
    "models",
    "optimizers",
    "set_backend",
    "use_backend",
]
