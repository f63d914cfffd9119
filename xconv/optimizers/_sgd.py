"""Stochastic gradient descent, with momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import Any

from xconv._typing import Array, Namespace
from xconv._validation import fraction, nonnegative_real, true_or_false

from ._base import Optimizer

__all__ = ["SGD", "StochasticGradientDescent"]


class SGD(Optimizer):
    """Stochastic gradient descent, step for step as ``torch.optim.SGD`` (no dampening).

    With weight decay ``wd`` and momentum ``mu``, at each step::

        g = grad + wd * param
        buf = mu * buf + g              (buf starts at zero, so the first buf is g)
        g = g + mu * buf if nesterov else buf
        param = param - learning_rate * g

    Without momentum the rule is plain ``param - learning_rate * g``.

    Args:
        learning_rate: step size, >= 0.
        momentum: in [0, 1); 0 keeps no state.
        nesterov: use Nesterov momentum (needs ``momentum > 0``).
        weight_decay: L2 penalty coefficient, >= 0, added to the gradient.

    Example:
        >>> import numpy as np
        >>> opt = SGD(learning_rate=0.5, momentum=0.5)
        >>> w = opt.update("w", np.array([1.0, 2.0]), np.array([1.0, -1.0]))
        >>> w
        array([0.5, 2.5])
        >>> opt.update("w", w, np.array([1.0, -1.0]))  # buf = 0.5 * 1 + 1
        array([-0.25,  3.25])
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(learning_rate)
        self.momentum = fraction(momentum, "momentum")
        nesterov = true_or_false(nesterov, "nesterov")
        if nesterov and self.momentum == 0:
            raise ValueError(f"`nesterov=True` needs `momentum` > 0, got {momentum!r}")
        self.nesterov = nesterov
        self.weight_decay = nonnegative_real(weight_decay, "weight_decay")
        # plain SGD keeps no arrays, only the step count
        self.slots = ("momentum_buffer",) if self.momentum else ()

    def _hyperparameters(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }

    def _step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        step: Any,
        xp: Namespace,
        learning_rate: Any,
    ) -> tuple[Array, dict[str, Array]]:
        # L2 penalty, added to the gradient
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if not self.momentum:
            return param - learning_rate * grad, {}
        # momentum: a running sum of gradients; Nesterov looks one step ahead
        buffer = self.momentum * state["momentum_buffer"] + grad
        direction = grad + self.momentum * buffer if self.nesterov else buffer
        return param - learning_rate * direction, {"momentum_buffer": buffer}


#: the ancestor's name for `SGD`
StochasticGradientDescent = SGD
