"""Layer classes by name, so that saved models load: `register` adds your own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from ._base import Layer

__all__ = ["get_layer_class", "register", "registered_name"]

L = TypeVar("L", bound=type[Layer])

_CLASSES: dict[str, type[Layer]] = {}


@overload
def register(cls: L, /, *, name: str | None = None) -> L: ...
@overload
def register(cls: None = None, /, *, name: str | None = None) -> Callable[[L], L]: ...
def register(cls: Any = None, /, *, name: str | None = None) -> Any:
    """Make a `Layer` subclass loadable by name: ``@xconv.layers.register``.

    A model saves each layer's class name and its `get_config`; `NeuralNetwork.load`
    (and `xconv.distributed.fit`'s workers) build it again from them. Built-in layers
    are registered already; register yours, under its class name or `name`, before
    loading a model that uses it.

    Args:
        cls: the class (when used as ``@register``).
        name: the name to save it under (default: the class's name).

    Raises:
        TypeError: `cls` is not a `Layer` subclass.
        ValueError: the name belongs to another class already.

    Example:
        >>> from xconv.layers import Layer, register
        >>> @register
        ... class Identity(Layer):
        ...     def forward_pass(self, X, training=True):
        ...         return X
        ...     def backward_pass(self, accum_grad):
        ...         return accum_grad
        >>> get_layer_class("Identity") is Identity
        True
    """

    def add(layer_class: L) -> L:
        if not (isinstance(layer_class, type) and issubclass(layer_class, Layer)):
            raise TypeError(f"only Layer subclasses can be registered, got {layer_class!r}")
        key = layer_class.__name__ if name is None else name
        if not isinstance(key, str) or not key:
            raise TypeError(f"`name` must be a non-empty string, got {key!r}")
        current = layer_class.__dict__.get("_registered_name")
        if isinstance(current, str) and current != key and _CLASSES.get(current) is layer_class:
            # one name per class: a second would change how every saved model names it
            raise ValueError(
                f"{layer_class.__module__}.{layer_class.__qualname__} is registered as "
                f"{current!r} already; to save it under {key!r}, register a subclass"
            )
        known = _CLASSES.get(key)
        if known is not None and known is not layer_class:
            # the same class defined again (a re-run notebook cell) replaces the old one
            same = (known.__module__, known.__qualname__) == (
                layer_class.__module__,
                layer_class.__qualname__,
            )
            if not same:
                raise ValueError(
                    f"the layer name {key!r} belongs to {known.__module__}."
                    f"{known.__qualname__} already; register with another `name`"
                )
        _CLASSES[key] = layer_class
        layer_class._registered_name = key  # type: ignore[attr-defined]
        return layer_class

    return add if cls is None else add(cls)


def registered_name(layer_class: type[Layer]) -> str:
    """The name a layer class is saved under (its class name unless registered otherwise).

    A class whose name is registered to another class (``class Dense(layers.Dense)``
    with its own forward pass, unregistered) is a `ValueError`: saved under that name,
    it would load as the other class, silently. Register it under a name of its own.
    """
    name = layer_class.__dict__.get("_registered_name")
    if not isinstance(name, str) or _CLASSES.get(name) is not layer_class:
        name = layer_class.__name__
        known = _CLASSES.get(name)
        if known is not None and known is not layer_class:
            raise ValueError(
                f"the layer class {layer_class.__module__}.{layer_class.__qualname__} is not "
                f"registered, and its name {name!r} belongs to {known.__module__}."
                f"{known.__qualname__}: saved, it would load as that class; register it "
                f"with @xconv.layers.register(name=...) under a name of its own"
            )
    return name


def get_layer_class(name: str) -> type[Layer]:
    """The layer class saved under `name`; a ValueError saying how to register it."""
    found = _CLASSES.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValueError(
            f"unknown layer class {name!r}: register your own layers with "
            "@xconv.layers.register before loading"
        )
    return found
