"""`get`: an optimizer from a name, a class or an instance."""

from __future__ import annotations

from typing import Any

from xconv._resolve import resolve

from ._adam import Adam, AdamW
from ._adaptive import Adadelta, Adagrad, RMSprop
from ._base import Optimizer
from ._sgd import SGD

__all__ = ["get"]

# lower-case names without "_" or "-"; the class names fold into them too
_BY_NAME: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "stochasticgradientdescent": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
}
_NAMES = ("sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta")


def get(optimizer: str | type[Optimizer] | Optimizer, /, **kwargs: Any) -> Optimizer:
    """An optimizer from a name (any case: ``"adam"``, ``"SGD"``), a class or an instance.

    Args:
        optimizer: the name of a built-in optimizer, an `Optimizer` subclass, or an
            instance (returned as it is).
        **kwargs: the constructor's arguments, for a name or a class.

    Returns:
        An `Optimizer`.

    Example:
        >>> get("adam", learning_rate=0.01)
        Adam(learning_rate=0.01, b1=0.9, b2=0.999, eps=1e-08)
        >>> get("nadam")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unknown optimizer 'nadam'; valid names: sgd, adam, adamw, rmsprop, ...
    """
    return resolve(
        optimizer, kwargs, base=Optimizer, by_name=_BY_NAME, names=_NAMES, what="optimizer"
    )
