"""Optimizers: functional update rules with the formulas of ``torch.optim``.

Every optimizer has ``update(key, param, grad) -> new_param``: it never modifies
`param` (so immutable JAX arrays work) and keeps per-parameter state (moments in the
parameter's namespace, a step count) under `key`. ``state_dict``/``load_state_dict``
move that state to and from host NumPy arrays; ``get_config`` gives the
hyperparameters.

>>> import numpy as np
>>> import xconv.optimizers as optimizers
>>> opt = optimizers.get("sgd", learning_rate=0.1)
>>> opt.update("w", np.array([1.0, 2.0]), np.array([1.0, -1.0]))
array([0.9, 2.1])
"""

from ._adam import Adam, AdamW
from ._adaptive import Adadelta, Adagrad, RMSprop
from ._base import Optimizer
from ._registry import get
from ._sgd import SGD, StochasticGradientDescent

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "StochasticGradientDescent",
    "get",
]
