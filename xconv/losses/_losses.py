"""Cross-entropy and square loss, and `get` to find a loss by name."""

from __future__ import annotations

from typing import Any

from xconv._resolve import resolve
from xconv._validation import real

from ._base import Array, Loss

__all__ = ["CrossEntropy", "SquareLoss", "get"]


def _check_eps(eps: object) -> float:
    """A probability floor in (0, 1)."""
    try:
        value = real(eps, "eps")
    except TypeError:
        raise TypeError(f"`eps` must be a number in (0, 1) or None, got {eps!r}") from None
    except ValueError:
        raise ValueError(f"`eps` must be in (0, 1), got {eps!r}") from None
    if not 0 < value < 1:
        raise ValueError(f"`eps` must be in (0, 1), got {eps!r}")
    return value


class CrossEntropy(Loss):
    """Categorical cross-entropy of predicted probabilities ``p`` and one-hot ``y``.

    Per sample, ``-sum_c y_c * log(clip(p_c, eps, 1))``; `loss` is its mean over the
    batch. Clipping keeps probabilities of exactly 0 (a softmax that underflowed)
    finite: the loss of such a sample is at most ``-log(eps)``. The gradient is the
    exact derivative of the clipped function, as PyTorch's ``clamp`` defines it:
    ``-y_c / (N * p_c)`` where ``eps <= p_c <= 1`` and 0 where ``p`` was clipped.

    Args:
        eps: the smallest probability, in (0, 1). By default the machine epsilon of
            ``p``'s dtype (about 1.2e-7 for float32, 2.2e-16 for float64), so the
            largest loss of a sample is about 15.9 in float32 and 36.0 in float64.

    Shape:
        y, p: (N, C); `loss`: (); `gradient`: (N, C).

    Example:
        >>> import numpy as np
        >>> y = np.array([[0.0, 1.0], [1.0, 0.0]])
        >>> p = np.array([[0.25, 0.75], [0.25, 0.75]])
        >>> loss = CrossEntropy()
        >>> round(float(loss.loss(y, p)), 6)  # (log 4/3 + log 4) / 2
        0.836988
        >>> loss.acc(y, p)
        0.5
        >>> float(loss.loss(y, np.array([[1.0, 0.0], [1.0, 0.0]])))  # -log(eps) / 2, finite
        18.021826694558577
    """

    def __init__(self, eps: float | None = None) -> None:
        self.eps = None if eps is None else _check_eps(eps)

    def get_config(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "eps": self.eps}

    def _eps(self, p: Array, xp: Any) -> float:
        return self.eps if self.eps is not None else float(xp.finfo(p.dtype).eps)

    def _per_sample(self, y: Array, p: Array, xp: Any) -> Array:
        # clip, so that log(0) is never taken
        clipped = xp.clip(p, self._eps(p, xp), 1.0)
        return -xp.sum(y * xp.log(clipped), axis=1)

    def _gradient(self, y: Array, p: Array, xp: Any) -> Array:
        eps = self._eps(p, xp)
        # -y / p inside the clip range; the clipped values are constants there
        inside = (p >= eps) & (p <= 1.0)
        return xp.where(inside, -y / xp.clip(p, eps, 1.0), xp.zeros_like(p))


class SquareLoss(Loss):
    """Half the squared error: per sample ``0.5 * sum_c (y_c - p_c) ** 2``.

    `loss` is the mean over the batch of that, so `gradient` is ``(p - y) / N``.

    Shape:
        y, p: (N, C); `loss`: (); `gradient`: (N, C).

    Example:
        >>> import numpy as np
        >>> y = np.array([[0.0, 1.0], [1.0, 0.0]])
        >>> p = np.array([[0.5, 0.5], [1.0, 2.0]])
        >>> float(SquareLoss().loss(y, p))  # (0.25 + 2) / 2
        1.125
        >>> SquareLoss().gradient(y, p)
        array([[ 0.25, -0.25],
               [ 0.  ,  1.  ]])
    """

    def _per_sample(self, y: Array, p: Array, xp: Any) -> Array:
        return 0.5 * xp.sum((y - p) * (y - p), axis=1)

    def _gradient(self, y: Array, p: Array, xp: Any) -> Array:
        return p - y


# lower-case names without "_" or "-"; the class names fold into them too
_BY_NAME: dict[str, type[Loss]] = {
    "crossentropy": CrossEntropy,
    "categoricalcrossentropy": CrossEntropy,
    "squareloss": SquareLoss,
    "square": SquareLoss,
}
_NAMES = ("cross_entropy", "square_loss")


def get(loss: str | type[Loss] | Loss, /, **kwargs: Any) -> Loss:
    """A loss from a name (``"cross_entropy"``, ``"square_loss"``, or the class's name),
    a `Loss` subclass (the ancestor passed the class) or an instance (returned as is).

    Args:
        loss: what to resolve.
        **kwargs: the constructor's arguments, for a name or a class.

    Example:
        >>> get("cross_entropy")
        CrossEntropy(eps=None)
        >>> get(SquareLoss)
        SquareLoss()
        >>> get("hinge")
        Traceback (most recent call last):
        ...
        ValueError: unknown loss 'hinge'; valid names: cross_entropy, square_loss
    """
    return resolve(loss, kwargs, base=Loss, by_name=_BY_NAME, names=_NAMES, what="loss")
