"""Argument checks, one helper per kind of argument, written once for all of xconv.

Scalars: every helper accepts Python numbers and NumPy scalars alike (``np.int64(3)``
is an integer, ``np.float32(0.5)`` a real number), refuses bool where a number is
meant, and names the argument and quotes its value when it refuses. Each returns the
value as a plain Python `int`, `float`, pair of ints or `bool`.

Arrays: `namespace_of` finds the one namespace of an op's arrays (one library, one
device, one real floating dtype), `check_ndim` and `check_shape` check their shapes.

>>> import numpy as np
>>> positive_int(np.int64(3), "n_filters")
3
>>> int_or_pair(2, "stride")
(2, 2)
>>> fraction(True, "momentum")
Traceback (most recent call last):
...
TypeError: `momentum` must be a real number, got True
"""

from __future__ import annotations

import contextlib
import math
import numbers
import operator
import os
import tempfile
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import array_api_compat
import numpy as np

__all__ = [
    "EXACT_IN_FLOAT",
    "OPTIONAL_ARRAYS",
    "as_int",
    "check_index_array",
    "check_ndim",
    "check_shape",
    "claim_layers",
    "fraction",
    "int_or_pair",
    "namespace_of",
    "nonnegative_int",
    "nonnegative_real",
    "one_of",
    "optional_pair",
    "positive_int",
    "positive_real",
    "readable_file",
    "real",
    "sequence_of",
    "true_or_false",
    "writable_file",
]


# -- integers ------------------------------------------------------------------------


def as_int(value: object) -> int | None:
    """`value` as an int if it is a Python or NumPy integer (bools excluded), else None."""
    if isinstance(value, bool | np.bool_):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


#: the largest count that float arithmetic holds exactly: the bound of counts that a
#: schedule divides or raises to a power (epochs, steps), 2**53
EXACT_IN_FLOAT = 2**53


def positive_int(value: object, name: str, *, maximum: int | None = None) -> int:
    """A count >= 1 (filters, units, groups, a batch size), at most `maximum` if given.

    Anything else is a `ValueError` (a count of 2.0 is as wrong as a count of 0).
    """
    number = as_int(value)
    if number is None or number < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {_quote(value)}")
    _at_most(number, maximum, name, value)
    return number


def nonnegative_int(value: object, name: str, *, maximum: int | None = None) -> int:
    """An integer >= 0 (a seed, an index), at most `maximum` if given: `TypeError` if
    not an integer, else `ValueError`."""
    number = as_int(value)
    if number is None:
        raise TypeError(f"`{name}` must be a non-negative integer, got {value!r}")
    if number < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}")
    _at_most(number, maximum, name, value)
    return number


def _at_most(number: int, maximum: int | None, name: str, value: object) -> None:
    if maximum is not None and number > maximum:
        bound = "2**53" if maximum == EXACT_IN_FLOAT else str(maximum)
        raise ValueError(f"`{name}` must be at most {bound}, got {_quote(value)}")


def int_or_pair(value: object, name: str, *, minimum: Literal[0, 1] = 1) -> tuple[int, int]:
    """An int or a pair of ints, each >= `minimum` (0 or 1), as a pair.

    A malformed value is a `TypeError`, a value below `minimum` a `ValueError`.

    >>> int_or_pair((1, 2), "dilation")
    (1, 2)
    >>> int_or_pair(0, "stride")
    Traceback (most recent call last):
    ...
    ValueError: `stride` must be a positive integer or pair of them, got 0
    """
    what = f"a {'positive' if minimum else 'non-negative'} integer or pair of them"
    single = as_int(value)
    if single is not None:
        items: tuple[int | None, ...] = (single, single)
    elif isinstance(value, tuple | list) and len(value) == 2:
        items = (as_int(value[0]), as_int(value[1]))
    else:
        raise TypeError(f"`{name}` must be {what}, got {value!r}")
    if items[0] is None or items[1] is None:
        raise TypeError(f"`{name}` must be {what}, got {value!r}")
    if items[0] < minimum or items[1] < minimum:
        raise ValueError(f"`{name}` must be {what}, got {value!r}")
    return items[0], items[1]


def optional_pair(value: object, name: str) -> tuple[int | None, int | None]:
    """A positive int, None, or a pair of them (an output size whose None entries keep
    the input's size), as a pair: a `ValueError` otherwise.

    >>> optional_pair((3, None), "output_size")
    (3, None)
    """
    items = list(value) if isinstance(value, tuple | list) else [value, value]
    checked = [None if item is None else as_int(item) for item in items]
    if len(items) != 2 or any(
        (c is None and i is not None) or (c is not None and c < 1)
        for c, i in zip(checked, items, strict=True)
    ):
        raise ValueError(
            f"`{name}` must be a positive integer, None, or a pair of them, got {value!r}"
        )
    return checked[0], checked[1]


# -- real numbers --------------------------------------------------------------------


def real(value: object, name: str) -> float:
    """A finite real number: `TypeError` if not a number (or a bool), `ValueError` if
    infinite or NaN."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:  # a Python int beyond float's range (10**400)
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"`{name}` must be a finite number, got {_quote(value)}")
    return number


def _quote(value: object) -> str:
    """`repr(value)`, shortened in the middle past 80 characters (10**400 has 401 digits)."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:38]}...{text[-38:]} ({len(text)} characters)"


def nonnegative_real(value: object, name: str) -> float:
    """A finite number >= 0 (a learning rate, a weight decay)."""
    number = real(value, name)
    if number < 0:
        raise ValueError(f"`{name}` must be a non-negative number, got {value!r}")
    return number


def positive_real(value: object, name: str) -> float:
    """A finite number > 0 (an epsilon)."""
    number = real(value, name)
    if number <= 0:
        raise ValueError(f"`{name}` must be a positive number, got {value!r}")
    return number


def fraction(value: object, name: str) -> float:
    """A number in [0, 1) (a momentum, a moment's beta, a drop probability)."""
    number = real(value, name)
    if not 0 <= number < 1:
        raise ValueError(f"`{name}` must be in [0, 1), got {value!r}")
    return number


def true_or_false(value: object, name: str) -> bool:
    """A Python or NumPy bool (not 0 or 1): `TypeError` otherwise."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"`{name}` must be True or False, got {value!r}")
    return bool(value)


def one_of(value: object, name: str, choices: tuple[str, ...]) -> str:
    """One of the strings `choices`: a `ValueError` naming the argument otherwise (its
    type first: an array's ``in`` would be NumPy's "truth value is ambiguous").

    >>> one_of("min", "mode", ("auto", "min", "max"))
    'min'
    """
    if not isinstance(value, str) or value not in choices:
        listed = " or ".join([", ".join(map(repr, choices[:-1])), repr(choices[-1])])
        raise ValueError(f"`{name}` must be {listed}, got {_quote(value)}")
    return value


def sequence_of(value: object, name: str, kind: type, what: str) -> list[Any]:
    """The items of `value`, an iterable (not one str or bytes) of `kind` objects, as a
    list: a `TypeError` naming the argument otherwise; `what` names the items.

    >>> sequence_of(("test", "torch"), "extras", str, "extra names (str)")
    ['test', 'torch']
    """
    items: list[Any] | None = None
    if not isinstance(value, str | bytes):
        with contextlib.suppress(TypeError):  # not iterable
            items = list(value)  # type: ignore[call-overload]
    if items is None or not all(isinstance(item, kind) for item in items):
        raise TypeError(f"`{name}` must be a sequence of {what}, got {_quote(value)}")
    return items


# -- paths ---------------------------------------------------------------------------


def _path_text(value: object, name: str) -> tuple[str, str]:
    """A path argument's text, and that text shortened past 80 characters for messages:
    a `TypeError` unless a str or (str) path, a `ValueError` if it holds a NUL."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(text, str):
        raise TypeError(f"`{name}` must be a file path (a str or path), got {value!r}")
    shown = text if len(text) <= 80 else f"{text[:77]}..."
    if "\x00" in text:
        raise ValueError(f"`{name}` must not hold a NUL character, got {shown!r}")
    return text, shown


def writable_file(value: object, name: str) -> Path:
    """A file path a save can write, probed now as the command line probes its paths.

    `value` must be a str or path naming no folder, in a folder that exists; a file
    is created and removed beside it, named as a save's temporary file
    (``.NAME.XXXXXXXX.tmp``), so a read-only folder, ``/sys/run.ckpt`` or a name too
    long for the file system is a `ValueError` now rather than an `OSError` after an
    epoch of training. Anything but a str or path is a `TypeError`.
    """
    text, shown = _path_text(value, name)
    path = Path(text)
    try:
        if not text or path.is_dir():
            raise ValueError(f"`{name}` must be a file path, got the folder {shown!r}")
        if not path.parent.is_dir():
            raise ValueError(f"`{name}` {shown!r} is in a folder that does not exist")
        handle, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(f"`{name}`: cannot write {shown!r}: {exc.strerror or exc}") from None
    return path


def readable_file(value: object, name: str) -> Path:
    """An existing file to read: a folder, or a path the system cannot look up (a name
    too long), is a `ValueError`; a missing file stays a `FileNotFoundError`."""
    text, shown = _path_text(value, name)
    path = Path(text)
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:
        raise ValueError(f"`{name}`: cannot read {shown!r}: {exc.strerror or exc}") from None
    if is_dir or not text:
        raise ValueError(f"`{name}` must be a file, got the folder {shown!r}")
    if not exists:
        raise FileNotFoundError(f"`{name}`: no file {shown!r}")
    return path


# -- layers and their model ----------------------------------------------------------

# the model each layer belongs to, by layer; neither entry keeps its object alive
_OWNERS: weakref.WeakKeyDictionary[Any, weakref.ref[Any]] = weakref.WeakKeyDictionary()


def claim_layers(layers: Iterable[Any], owner: Any) -> None:
    """Make `owner` (a model) the model of every one of `layers`, before it builds them.

    A layer belongs to one model: building a model creates its layers' parameters, so
    a second model built from a trained model's layers (the same graph tensors, or
    ``add`` of a layer already in a model) would re-initialise the first model's
    weights, and training one would change the other. That is a `ValueError`, raised
    before any layer is touched, while the other model exists. To reuse trained
    weights, ``save`` the model and ``NeuralNetwork.load`` a copy.
    """
    layers = list(layers)
    for layer in layers:
        ref = _OWNERS.get(layer)
        other = ref() if ref is not None else None
        if other is not None and other is not owner:
            raise ValueError(
                f"this {type(layer).__name__} belongs to another model already: a layer is "
                "part of one model (building a second would re-initialise the first's "
                "weights); build new layers, or save the model and NeuralNetwork.load a copy"
            )
    for layer in layers:
        _OWNERS[layer] = weakref.ref(owner)


# -- arrays --------------------------------------------------------------------------


def _type_name(x: object) -> str:
    cls = type(x)
    return f"{cls.__module__.split('.')[0]}.{cls.__qualname__}"


# array types whose own `.device` is the standard's (PyTorch's), by type met so far
_PLAIN_DEVICE: dict[type, bool] = {}


def _device(x: Any) -> Any:
    """`x`'s device, as array-api-compat gives it (read straight off a torch tensor)."""
    plain = _PLAIN_DEVICE.get(type(x))
    if plain is None:
        plain = _PLAIN_DEVICE[type(x)] = array_api_compat.is_torch_array(x)
    return x.device if plain else array_api_compat.device(x)


def _check_one_device(named: dict[str, Any]) -> None:
    """All arrays whose device is known must share it.

    A traced array (JAX under `jax.grad` or `jax.vmap`) has no device (None): it is
    compatible with any, and the library itself places it.
    """
    known = [(name, device) for name, x in named.items() if (device := _device(x)) is not None]
    if not known:
        return
    first_name, first_device = known[0]
    for name, device in known[1:]:
        if device != first_device:
            raise ValueError(
                f"arrays on different devices: `{first_name}` is on {first_device!r}, "
                f"`{name}` on {device!r}; move them to one device first"
            )


# What the checks below learnt about each array type and dtype met so far, so that an
# op called again on arrays of a known kind skips array-api-compat's detection: the
# namespace of each array type, and whether each (type, dtype) is real floating.
_NAMESPACES: dict[type, Any] = {}
_FLOATING: dict[tuple[type, Any], bool] = {}


#: The arrays an op may be called without: None for them means "none" (no bias). Any
#: other None, where an array belongs, is a `TypeError` naming the argument.
OPTIONAL_ARRAYS = frozenset({"bias"})


def namespace_of(**arrays: Any) -> Any:
    """The one array namespace of the named arrays.

    All must be arrays of one library, on one device, with one real floating dtype;
    otherwise a `TypeError` or `ValueError` names the arguments that disagree. An array
    whose device is unknown (a JAX tracer) is taken to be on the others' device. None
    is skipped for the names in `OPTIONAL_ARRAYS` and refused for any other: an op with
    further optional arrays leaves the absent ones out of the call.

    >>> namespace_of(x=None)
    Traceback (most recent call last):
    ...
    TypeError: `x` must be an array, got None
    """
    named = {}
    for name, x in arrays.items():
        if x is not None:
            named[name] = x
        elif name not in OPTIONAL_ARRAYS:
            raise TypeError(f"`{name}` must be an array, got None")
    if not named:
        raise TypeError(f"no arrays given: {', '.join(f'`{name}`' for name in arrays)} are None")
    kinds = {type(x) for x in named.values()}
    xp = _NAMESPACES.get(next(iter(kinds))) if len(kinds) == 1 else None
    if xp is None:
        xp = _detect_namespace(named)
        if len(kinds) == 1:
            _NAMESPACES[next(iter(kinds))] = xp
    if len(named) > 1:
        _check_one_device(named)
    for name, x in named.items():
        key = (type(x), x.dtype)
        floating = _FLOATING.get(key)
        if floating is None:
            floating = _FLOATING[key] = bool(xp.isdtype(x.dtype, "real floating"))
        if not floating:
            raise TypeError(f"`{name}` must have a real floating dtype, got {x.dtype}")
    (first_name, first), *rest = named.items()
    for name, x in rest:
        if x.dtype != first.dtype:
            raise TypeError(
                f"arrays of different dtypes: `{first_name}` is {first.dtype}, "
                f"`{name}` is {x.dtype}; cast one of them first"
            )
    return xp


def _detect_namespace(named: dict[str, Any]) -> Any:
    """`namespace_of`'s namespace, found by array-api-compat: every value an array, of
    one library."""
    for name, x in named.items():
        if not array_api_compat.is_array_api_obj(x) or isinstance(x, int | float | complex):
            raise TypeError(f"`{name}` must be an array, got {_type_name(x)}")
    try:
        return array_api_compat.array_namespace(*named.values())
    except TypeError:
        kinds = ", ".join(f"`{name}` is {_type_name(x)}" for name, x in named.items())
        raise TypeError(
            f"arrays from different libraries: {kinds}; convert them to one library first"
        ) from None


def check_index_array(target: Any, name: str, xp: Any, like: Any) -> None:
    """`target` must be an integer array of namespace `xp`, on the device of `like`
    (class indices beside an op's floating arrays)."""
    if target is None or not array_api_compat.is_array_api_obj(target):
        raise TypeError(f"`{name}` must be an array, got {_type_name(target)}")
    if isinstance(target, int | float | complex):
        raise TypeError(f"`{name}` must be an array, got {_type_name(target)}")
    try:
        same = array_api_compat.array_namespace(target) is xp
    except TypeError:
        same = False
    if not same:
        raise TypeError(
            f"`{name}` is {_type_name(target)}, not an array of the other arguments' "
            f"library ({_type_name(like)}); convert them to one library first"
        )
    _check_one_device({"input": like, name: target})
    if not xp.isdtype(target.dtype, "integral"):
        raise TypeError(f"`{name}` must have an integer dtype, got {target.dtype}")


def check_ndim(x: Any, name: str, layout: str) -> None:
    """`x` must have one axis per letter of `layout` (e.g. "NCHW")."""
    if x.ndim != len(layout):
        raise ValueError(
            f"`{name}` must be a {len(layout)}-D array ({', '.join(layout)}), "
            f"got shape {tuple(x.shape)}"
        )


def check_shape(x: Any, name: str, expected: tuple[int, ...], why: str) -> None:
    """`x` must have exactly the shape `expected`."""
    if tuple(x.shape) != expected:
        raise ValueError(f"`{name}` must have shape {expected} ({why}), got {tuple(x.shape)}")
