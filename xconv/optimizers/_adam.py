"""Adam and AdamW: moment estimates with bias correction."""

from __future__ import annotations

import math
from typing import Any

from xconv._typing import Array, Namespace
from xconv._validation import fraction, nonnegative_real, positive_real

from ._base import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), step for step as ``torch.optim.Adam``.

    At step t (1 on the first call for a key)::

        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad**2
        param = param - learning_rate / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)

    The bias corrections use ``b**t``, so the first steps are not too small (the
    ancestor divided by ``1 - b`` instead).

    Args:
        learning_rate: step size, >= 0.
        b1, b2: decay rates of the first and second moment estimates, in [0, 1).
        eps: added to the denominator, > 0.

    Example:
        >>> import numpy as np
        >>> opt = Adam(learning_rate=0.1)
        >>> opt.update("w", np.array([1.0, 2.0]), np.array([0.5, -3.0]))  # first step: lr
        array([0.9, 2.1])
    """

    slots = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        learning_rate: float = 0.001,
        b1: float = 0.9,
        b2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(learning_rate)
        self.b1 = fraction(b1, "b1")
        self.b2 = fraction(b2, "b2")
        self.eps = positive_real(eps, "eps")

    def _hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "b1": self.b1, "b2": self.b2, "eps": self.eps}

    def _step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        step: Any,
        xp: Namespace,
        learning_rate: Any,
    ) -> tuple[Array, dict[str, Array]]:
        # moment estimates
        m = self.b1 * state["exp_avg"] + (1 - self.b1) * grad
        v = self.b2 * state["exp_avg_sq"] + (1 - self.b2) * (grad * grad)
        # bias corrections for the zero start, then the step
        # (`step` is an int, or a 0-d array inside a compiled training step)
        step_size = learning_rate / (1 - self.b1**step)
        correction = 1 - self.b2**step
        root = math.sqrt(correction) if isinstance(correction, float) else xp.sqrt(correction)
        denominator = xp.sqrt(v) / root + self.eps
        return param - step_size * (m / denominator), {"exp_avg": m, "exp_avg_sq": v}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    The parameter first shrinks, ``param = param * (1 - learning_rate * weight_decay)``,
    then takes an `Adam` step; the decay never enters the moment estimates.

    Args:
        learning_rate, b1, b2, eps: as for `Adam`.
        weight_decay: decay coefficient, >= 0.

    Example:
        >>> import numpy as np
        >>> opt = AdamW(learning_rate=0.1, weight_decay=0.5)
        >>> opt.update("w", np.array([1.0, 3.0]), np.array([0.5, -3.0]))  # 0.95 * w, then Adam
        array([0.85, 2.95])
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        b1: float = 0.9,
        b2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(learning_rate, b1=b1, b2=b2, eps=eps)
        self.weight_decay = nonnegative_real(weight_decay, "weight_decay")

    def _hyperparameters(self) -> dict[str, Any]:
        return super()._hyperparameters() | {"weight_decay": self.weight_decay}

    def _step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        step: Any,
        xp: Namespace,
        learning_rate: Any,
    ) -> tuple[Array, dict[str, Array]]:
        # decoupled decay, then an Adam step from the decayed parameter
        decayed = param * (1 - learning_rate * self.weight_decay)
        return super()._step(decayed, grad, state, step, xp, learning_rate)
