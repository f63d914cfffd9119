"""Cross-entropy and square loss, and `get` to find a loss by name."""

from __future__ import annotations

from typing import Any

import array_api_compat

from xconv._resolve import resolve
from xconv._typing import Array, Namespace
from xconv._validation import real, true_or_false

from ._base import Loss
from ._regression import BinaryCrossEntropy, Huber, MeanAbsoluteError, MeanSquaredError

__all__ = ["CrossEntropy", "SquareLoss", "from_config", "get"]


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
    """Categorical cross-entropy of predicted probabilities (or logits) ``p`` and ``y``.

    Per sample, ``-sum_c y_c * log(clip(p_c, eps, 1))``; `loss` is its mean over the
    batch. Clipping keeps probabilities of exactly 0 (a softmax that underflowed)
    finite: the loss of such a sample is at most ``-log(eps)``. The gradient is the
    exact derivative of the clipped function, as PyTorch's ``clamp`` defines it:
    ``-y_c / (N * p_c)`` where ``eps <= p_c <= 1`` and 0 where ``p`` was clipped.

    Args:
        eps: the smallest probability, in (0, 1). By default the machine epsilon of
            ``p``'s dtype (about 1.2e-7 for float32, 2.2e-16 for float64), so the
            largest loss of a sample is about 15.9 in float32 and 36.0 in float64.
        from_logits: ``p`` holds logits (a network without a final softmax): the loss
            is ``-sum_c y_c * log_softmax(p)_c``, computed stably without clipping, and
            its gradient is ``(softmax(p) - y) / N``. `eps` is unused then.

    Targets are one-hot (or any probability) rows, or integer class indices (N,).

    Shape:
        y: (N, C) or (N,) of integers; p: (N, C); `loss`: (); `gradient`: (N, C).

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
        >>> logits = CrossEntropy(from_logits=True)
        >>> round(float(logits.loss(np.array([1, 0]), np.log(p))), 6)  # the same, from logits
        0.836988
    """

    def __init__(self, eps: float | None = None, from_logits: bool = False) -> None:
        from_logits = true_or_false(from_logits, "from_logits")
        self.eps = None if eps is None else _check_eps(eps)
        self.from_logits = from_logits

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"class": type(self).__name__, "eps": self.eps}
        if self.from_logits:
            config["from_logits"] = True
        return config

    # integer class indices become one-hot rows before the checks
    def loss(self, y: Array, p: Array, /) -> Array:
        return super().loss(_one_hot(y, p), p)

    def gradient(self, y: Array, p: Array, /) -> Array:
        return super().gradient(_one_hot(y, p), p)

    def accuracy(self, y: Array, p: Array, /) -> Array:
        return super().accuracy(_one_hot(y, p), p)

    def _eps(self, p: Array, xp: Namespace) -> float:
        return self.eps if self.eps is not None else float(xp.finfo(p.dtype).eps)

    def _per_sample(self, y: Array, p: Array, xp: Namespace) -> Array:
        if self.from_logits:
            # log_softmax: shift by the maximum, so that exp never overflows
            shifted = p - xp.max(p, axis=1, keepdims=True)
            log_probabilities = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
            # a class of logit -inf and target 0 adds 0 (not 0 * -inf = NaN), as in PyTorch
            kept = xp.where(y == 0, xp.zeros_like(p), log_probabilities)
            return -xp.sum(y * kept, axis=1)
        # clip, so that log(0) is never taken
        clipped = xp.clip(p, self._eps(p, xp), 1.0)
        return -xp.sum(y * xp.log(clipped), axis=1)

    def _gradient(self, y: Array, p: Array, xp: Namespace) -> Array:
        if self.from_logits:
            shifted = xp.exp(p - xp.max(p, axis=1, keepdims=True))
            softmax = shifted / xp.sum(shifted, axis=1, keepdims=True)
            # the targets' total weight (1 for one-hot rows) times softmax, minus y
            return xp.sum(y, axis=1, keepdims=True) * softmax - y
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

    def _per_sample(self, y: Array, p: Array, xp: Namespace) -> Array:
        return 0.5 * xp.sum((y - p) * (y - p), axis=1)

    def _gradient(self, y: Array, p: Array, xp: Namespace) -> Array:
        return p - y


def _one_hot(y: Array, p: Array) -> Array:
    """Integer class indices (N,) as one-hot rows like `p`; anything else as it is."""
    if not (array_api_compat.is_array_api_obj(y) and array_api_compat.is_array_api_obj(p)):
        return y  # the checks say what is wrong
    xp = array_api_compat.array_namespace(y, p)
    if y.ndim != 1 or p.ndim != 2 or not xp.isdtype(y.dtype, "integral"):
        return y
    _check_classes(y, p.shape[1], xp)
    classes = xp.arange(p.shape[1], dtype=y.dtype, device=array_api_compat.device(p))
    return xp.astype(y[:, None] == classes[None, :], p.dtype)


def _check_classes(y: Array, classes: int, xp: Any) -> None:
    """Class indices must lie in [0, classes): outside, a one-hot row would be all zeros
    (a loss of 0 and no gradient). Arrays being traced (JAX under `jit`) are not read."""
    outside = (y < 0) | (y >= classes)
    try:
        count = int(xp.count_nonzero(outside))
    except Exception:  # a tracer: its values are unknown until it runs
        return
    if count:
        first = int(y[xp.argmax(xp.astype(outside, xp.int8))])
        raise ValueError(
            f"class indices in `y` must lie in [0, {classes}) (the columns of `p`), got "
            f"{first} ({count} of {y.shape[0]} labels outside)"
        )


# lower-case names without "_" or "-"; the class names fold into them too
_BY_NAME: dict[str, type[Loss]] = {
    "crossentropy": CrossEntropy,
    "categoricalcrossentropy": CrossEntropy,
    "squareloss": SquareLoss,
    "square": SquareLoss,
    "binarycrossentropy": BinaryCrossEntropy,
    "meansquarederror": MeanSquaredError,
    "mse": MeanSquaredError,
    "meanabsoluteerror": MeanAbsoluteError,
    "mae": MeanAbsoluteError,
    "huber": Huber,
}
_NAMES = (
    "cross_entropy",
    "square_loss",
    "binary_cross_entropy",
    "mean_squared_error",
    "mean_absolute_error",
    "huber",
)


def get(loss: str | type[Loss] | Loss, /, **kwargs: Any) -> Loss:
    """A loss from a name (``"cross_entropy"``, ``"mse"``, ..., or the class's name),
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
        ValueError: unknown loss 'hinge'; valid names: cross_entropy, square_loss, \
binary_cross_entropy, mean_squared_error, mean_absolute_error, huber
    """
    return resolve(loss, kwargs, base=Loss, by_name=_BY_NAME, names=_NAMES, what="loss")


def from_config(config: str | dict[str, Any], /) -> Loss:
    """The loss a model file saved: ``get_config()`` (or, in older files, a class name).

    Example:
        >>> from_config({"class": "CrossEntropy", "eps": None, "from_logits": True})
        CrossEntropy(eps=None, from_logits=True)
    """
    if isinstance(config, str):
        return get(config)
    if not isinstance(config, dict) or not isinstance(config.get("class"), str):
        raise ValueError(f"a loss must be saved as {{'class': name, ...}}, got {config!r}")
    options = {k: v for k, v in config.items() if k != "class"}
    return get(config["class"], **options)
