"""Per-coordinate step sizes from squared gradients: RMSprop, Adagrad, Adadelta."""

from __future__ import annotations

from typing import Any

from xconv._typing import Array, Namespace
from xconv._validation import fraction, positive_real

from ._base import Optimizer

__all__ = ["Adadelta", "Adagrad", "RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton), step for step as ``torch.optim.RMSprop`` with ``alpha=rho``.

    At each step::

        v = rho * v + (1 - rho) * grad**2
        param = param - learning_rate * grad / (sqrt(v) + eps)

    Args:
        learning_rate: step size, >= 0.
        rho: decay rate of the running average of squared gradients, in [0, 1).
        eps: added to the denominator, > 0.

    Example:
        >>> import numpy as np
        >>> opt = RMSprop(learning_rate=0.1, rho=0.75)
        >>> opt.update("w", np.array([1.0, 2.0]), np.array([2.0, -2.0]))  # v = 1
        array([0.8, 2.2])
    """

    slots = ("square_avg",)

    def __init__(self, learning_rate: float = 0.01, rho: float = 0.9, eps: float = 1e-8) -> None:
        super().__init__(learning_rate)
        self.rho = fraction(rho, "rho")
        self.eps = positive_real(eps, "eps")

    def _hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "rho": self.rho, "eps": self.eps}

    def _step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        step: Any,
        xp: Namespace,
        learning_rate: Any,
    ) -> tuple[Array, dict[str, Array]]:
        # running average of squared gradients, then a normalised step
        v = self.rho * state["square_avg"] + (1 - self.rho) * (grad * grad)
        step_ = grad / (xp.sqrt(v) + self.eps)
        return param - learning_rate * step_, {"square_avg": v}


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), step for step as ``torch.optim.Adagrad``.

    At each step::

        s = s + grad**2
        param = param - learning_rate * grad / (sqrt(s) + eps)

    Args:
        learning_rate: step size, >= 0.
        eps: added to the denominator, > 0.

    Example:
        >>> import numpy as np
        >>> opt = Adagrad(learning_rate=0.1)
        >>> w = opt.update("w", np.array([1.0, 2.0]), np.array([3.0, -4.0]))
        >>> w
        array([0.9, 2.1])
        >>> opt.update("w", w, np.array([4.0, 3.0]))  # s = 25
        array([0.82, 2.04])
    """

    slots = ("sum",)

    def __init__(self, learning_rate: float = 0.01, eps: float = 1e-10) -> None:
        super().__init__(learning_rate)
        self.eps = positive_real(eps, "eps")

    def _hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "eps": self.eps}

    def _step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        step: Any,
        xp: Namespace,
        learning_rate: Any,
    ) -> tuple[Array, dict[str, Array]]:
        # all squared gradients so far, then a step that shrinks as they add up
        total = state["sum"] + grad * grad
        step_ = grad / (xp.sqrt(total) + self.eps)
        return param - learning_rate * step_, {"sum": total}


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), step for step as ``torch.optim.Adadelta``.

    At each step::

        v = rho * v + (1 - rho) * grad**2
        delta = sqrt(u + eps) / sqrt(v + eps) * grad
        u = rho * u + (1 - rho) * delta**2
        param = param - learning_rate * delta

    Args:
        learning_rate: scale of `delta`, >= 0 (1.0 is the original method).
        rho: decay rate of both running averages, in [0, 1).
        eps: added inside both square roots, > 0.

    Example:
        >>> import numpy as np
        >>> opt = Adadelta(rho=0.75, eps=9.0)
        >>> opt.update("w", np.array([1.0, 2.0]), np.array([0.0, 8.0]))  # v = 16, delta = 3/5 * 8
        array([ 1. , -2.8])
    """

    slots = ("square_avg", "acc_delta")

    def __init__(self, learning_rate: float = 1.0, rho: float = 0.9, eps: float = 1e-6) -> None:
        super().__init__(learning_rate)
        self.rho = fraction(rho, "rho")
        self.eps = positive_real(eps, "eps")

    def _hyperparameters(self) -> dict[str, Any]:
        return {"learning_rate": self.learning_rate, "rho": self.rho, "eps": self.eps}

    def _step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        step: Any,
        xp: Namespace,
        learning_rate: Any,
    ) -> tuple[Array, dict[str, Array]]:
        # running average of squared gradients
        v = self.rho * state["square_avg"] + (1 - self.rho) * (grad * grad)
        # step in the units of the parameter: RMS of past steps over RMS of gradients
        delta = xp.sqrt(state["acc_delta"] + self.eps) / xp.sqrt(v + self.eps) * grad
        u = self.rho * state["acc_delta"] + (1 - self.rho) * (delta * delta)
        return param - learning_rate * delta, {"square_avg": v, "acc_delta": u}
