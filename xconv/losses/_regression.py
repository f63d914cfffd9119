"""Losses of real-valued targets and of independent binary outputs.

Each is the mean over a batch of the per-sample mean over the outputs (as Keras and
PyTorch's ``reduction="mean"`` compute them), and `gradient` is its exact derivative.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from xconv._typing import Array, Namespace
from xconv._validation import true_or_false

from ._base import Loss

__all__ = ["BinaryCrossEntropy", "Huber", "MeanAbsoluteError", "MeanSquaredError"]


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:38]}...{text[-38:]}"


def _real(value: object, name: str, what: str) -> float:
    """`value` as a float, or a TypeError naming `name` and `what` it must be."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be {what}, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # a Python int beyond float's range: out of every range here
        return math.inf


class MeanSquaredError(Loss):
    """The mean squared error: per sample ``mean_c (p_c - y_c) ** 2``.

    Shape:
        y, p: (N, C); `loss`: (); `gradient`: (N, C).

    Example:
        >>> import numpy as np
        >>> float(MeanSquaredError().loss(np.zeros((2, 2)), np.array([[1.0, 1.0], [0.0, 2.0]])))
        1.5
    """

    def _per_sample(self, y: Array, p: Array, xp: Namespace) -> Array:
        return xp.mean((p - y) * (p - y), axis=1)

    def _gradient(self, y: Array, p: Array, xp: Namespace) -> Array:
        return 2 * (p - y) / p.shape[1]


class MeanAbsoluteError(Loss):
    """The mean absolute error: per sample ``mean_c |p_c - y_c|``.

    Its gradient is ``sign(p - y)``, 0 where ``p == y`` (as PyTorch's).

    Example:
        >>> import numpy as np
        >>> float(MeanAbsoluteError().loss(np.zeros((1, 2)), np.array([[1.0, -3.0]])))
        2.0
    """

    def _per_sample(self, y: Array, p: Array, xp: Namespace) -> Array:
        return xp.mean(xp.abs(p - y), axis=1)

    def _gradient(self, y: Array, p: Array, xp: Namespace) -> Array:
        return xp.sign(p - y) / p.shape[1]


class Huber(Loss):
    """The Huber loss: squared near the target, absolute far from it.

    Per output ``0.5 d ** 2`` where ``|d| <= delta`` and ``delta (|d| - delta / 2)``
    elsewhere, ``d = p - y``; per sample the mean over the outputs.

    Args:
        delta: where the loss turns from squared to linear, > 0 (default 1).

    Example:
        >>> import numpy as np
        >>> float(Huber().loss(np.zeros((1, 2)), np.array([[0.5, 3.0]])))  # (0.125 + 2.5) / 2
        1.3125
    """

    def __init__(self, delta: float = 1.0) -> None:
        value = _real(delta, "delta", "a positive number")
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"`delta` must be a positive number (finite), got {_quote(delta)}")
        self.delta = value

    def get_config(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "delta": self.delta}

    def _per_sample(self, y: Array, p: Array, xp: Namespace) -> Array:
        d = xp.abs(p - y)
        small = 0.5 * d * d
        large = self.delta * (d - 0.5 * self.delta)
        return xp.mean(xp.where(d <= self.delta, small, large), axis=1)

    def _gradient(self, y: Array, p: Array, xp: Namespace) -> Array:
        d = p - y
        return xp.clip(d, -self.delta, self.delta) / p.shape[1]


class BinaryCrossEntropy(Loss):
    """Cross-entropy of independent binary outputs: per sample
    ``mean_c -(y_c log p_c + (1 - y_c) log(1 - p_c))``, targets in [0, 1].

    Args:
        from_logits: `p` holds logits z (any real numbers) rather than probabilities;
            the loss is then computed from z as ``max(z, 0) - z y + log(1 + exp(-|z|))``,
            exact for any z, and its gradient is ``(sigmoid(z) - y) / C``.
        eps: with probabilities, the smallest probability, in (0, 0.5); default the
            machine epsilon of p's dtype. Probabilities are clipped to [eps, 1 - eps].

    Accuracy counts an output as right when it falls on the target's side of 0.5
    (of 0 for logits).

    Example:
        >>> import numpy as np
        >>> y = np.array([[1.0, 0.0]])
        >>> round(float(BinaryCrossEntropy().loss(y, np.array([[0.8, 0.4]]))), 6)
        0.366985
        >>> logits = np.log(np.array([[0.8 / 0.2, 0.4 / 0.6]]))
        >>> round(float(BinaryCrossEntropy(from_logits=True).loss(y, logits)), 6)
        0.366985
    """

    def __init__(self, from_logits: bool = False, eps: float | None = None) -> None:
        from_logits = true_or_false(from_logits, "from_logits")
        value = None if eps is None else _real(eps, "eps", "a number in (0, 0.5) or None")
        if value is not None and not 0 < value < 0.5:
            raise ValueError(f"`eps` must be in (0, 0.5), got {_quote(eps)}")
        self.from_logits = from_logits
        self.eps = value

    def get_config(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "from_logits": self.from_logits, "eps": self.eps}

    def _eps(self, p: Array, xp: Namespace) -> float:
        return self.eps if self.eps is not None else float(xp.finfo(p.dtype).eps)

    def _per_sample(self, y: Array, p: Array, xp: Namespace) -> Array:
        if self.from_logits:
            z = p
            terms = xp.clip(z, 0.0, None) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
        else:
            eps = self._eps(p, xp)
            q = xp.clip(p, eps, 1.0 - eps)
            terms = -(y * xp.log(q) + (1.0 - y) * xp.log1p(-q))
        return xp.mean(terms, axis=1)

    def _gradient(self, y: Array, p: Array, xp: Namespace) -> Array:
        if self.from_logits:
            e = xp.exp(-xp.abs(p))
            probability = xp.where(p >= 0, 1.0, e) / (1.0 + e)
            return (probability - y) / p.shape[1]
        eps = self._eps(p, xp)
        inside = (p >= eps) & (p <= 1.0 - eps)
        q = xp.clip(p, eps, 1.0 - eps)
        grad = (q - y) / (q * (1.0 - q))
        return xp.where(inside, grad, xp.zeros_like(p)) / p.shape[1]

    def accuracy(self, y: Array, p: Array, /) -> Array:
        xp = self._check(y, p)
        threshold = 0.0 if self.from_logits else 0.5
        hits = (p > threshold) == (y > 0.5)
        return xp.mean(xp.astype(hits, p.dtype))
