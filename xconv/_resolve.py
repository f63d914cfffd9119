"""Resolve "a name, a class or an instance" to an instance: shared by losses and optimizers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["resolve"]

T = TypeVar("T")


def resolve(
    value: Any,
    kwargs: dict[str, Any],
    *,
    base: type[T],
    by_name: Mapping[str, type[T]],
    names: Sequence[str],
    what: str,
) -> T:
    """`value` itself if it is a `base` instance, else one built from a class or a name.

    Names match `by_name`'s keys in any case, ignoring "_" and "-"; `names` are the
    ones listed in the error for an unknown name. `what` names the argument ("loss").
    """
    if isinstance(value, base):
        if kwargs:
            raise TypeError(
                f"options {sorted(kwargs)} given with {_article(what)} {what} instance; "
                "pass a name or a class to construct one"
            )
        return value
    if isinstance(value, type) and issubclass(value, base):
        return value(**kwargs)
    if isinstance(value, str):
        cls = by_name.get(value.lower().replace("_", "").replace("-", ""))
        if cls is None:
            raise ValueError(f"unknown {what} {value!r}; valid names: {', '.join(names)}")
        return cls(**kwargs)
    raise TypeError(
        f"`{what}` must be a name, {_article(base.__name__)} {base.__name__} subclass or "
        f"instance, got {value!r}"
    )


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"
