"""Moving arrays to the host and comparing them: `to_numpy`, `from_numpy`, `assert_close`."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

import xconv.backends as backends
from xconv._typing import Array, Namespace
from xconv._validation import _quote

from ._checks import host_copy, is_array, numeric_data

__all__ = ["TOLERANCES", "assert_close", "from_numpy", "to_numpy"]

#: (rtol, atol) used by `assert_close` when none is given, by the less precise of the two
#: dtypes compared (complex dtypes use their real part's entry; bool and integers: exact)
TOLERANCES: dict[str, tuple[float, float]] = {
    "float16": (1e-3, 1e-5),
    "float32": (1e-5, 1e-7),
    "float64": (1e-10, 1e-12),
}

_KINDS = {"b": "bool", "i": "integer", "u": "integer", "f": "floating", "c": "complex"}


def to_numpy(x: Any, /) -> np.ndarray:
    """A host NumPy copy of `x`: an array of any registered backend, on any device.

    NumPy arrays, Python numbers and nested sequences go through `numpy.asarray`;
    anything else is a `TypeError`.

    Example:
        >>> to_numpy([1.0, 2.0])
        array([1., 2.])
    """
    return host_copy(x, "x")


def from_numpy(a: Any, xp: Namespace, /, *, dtype: Any = None, device: Any = None) -> Array:
    """Host data `a` as an array of namespace `xp` (a copy, on `device` if given).

    `dtype` may be a dtype of `xp` or a name such as ``"float64"``; anything else, or an
    array as `device`, is a `TypeError`.

    Example:
        >>> import numpy as np
        >>> from_numpy([1, 2], np, dtype="float32")
        array([1., 2.], dtype=float32)
    """
    backend = backends.backend_for(xp)
    if backend is None:
        raise TypeError(f"`xp` must be the array namespace of a registered backend, got {xp!r}")
    if dtype is not None and not _makes_numbers(backend, dtype):
        raise TypeError(
            f"`dtype` must be a dtype of {backend.name} or its name, such as 'float32', "
            f"got {_quote(dtype)}"
        )
    if is_array(device):
        raise TypeError(f"`device` must be a device of {backend.name}, got an array")
    return backend.asarray(np.asarray(a), dtype=dtype, device=device)


def _makes_numbers(backend: backends.Backend, dtype: Any) -> bool:
    """Whether `backend` makes arrays of numbers (or bools) in `dtype`: tried on an empty
    array, as the backend reads its dtypes (to NumPy, ``[]`` is a structured dtype,
    ``'a'`` a deprecated alias, ``np.float64(0.5)`` float64)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the call itself warns (JAX's float64 off)
            warnings.simplefilter("error", DeprecationWarning)
            made = backend.asarray(np.zeros(0), dtype=dtype).dtype
        return bool(backend.namespace.isdtype(made, ("bool", "numeric")))
    except (AttributeError, TypeError, ValueError, SyntaxError, DeprecationWarning):
        return False  # NumPy parses b"," as a format string: a SyntaxError


def _tolerances(*dtypes: np.dtype[Any]) -> tuple[float, float]:
    """The default (rtol, atol) for comparing arrays of `dtypes`: the loosest applies."""
    chosen = (0.0, 0.0)
    for dtype in dtypes:
        if dtype.kind == "c":
            dtype = np.finfo(dtype).dtype  # complex128 -> float64
        if dtype.kind != "f":
            continue
        entry = TOLERANCES.get(dtype.name)
        if entry is None:  # a float dtype without an entry: scale float32's by its epsilon
            scale = float(np.finfo(dtype).eps / np.finfo(np.float32).eps)
            entry = (TOLERANCES["float32"][0] * scale, TOLERANCES["float32"][1] * scale)
        chosen = (max(chosen[0], entry[0]), max(chosen[1], entry[1]))
    return chosen


def _tolerance(value: Any, name: str) -> float:
    """A given `rtol` or `atol`: a finite number >= 0 (NaN would make every check pass)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a non-negative number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"`{name}` (={value!r}) must be a finite non-negative number")
    return number


def _integer_comparison(
    a: np.ndarray, e: np.ndarray, rtol: float, atol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Differences, allowances and failures of two integer arrays, in exact arithmetic."""
    common = np.result_type(a.dtype, e.dtype)
    if common.kind in "iu" and rtol == 0 and atol == 0:
        bad = np.asarray(a.astype(common) != e.astype(common), dtype=bool)
        if not bad.any():
            return np.zeros(a.shape), np.zeros(a.shape), bad
    # Python ints (object arrays): exact for any width, and int-float comparison is exact
    a_exact, e_exact = a.astype(object), e.astype(object)
    difference = np.abs(a_exact - e_exact)
    allowed = atol + rtol * np.abs(e_exact)
    bad = np.asarray(difference > allowed, dtype=bool)
    return difference.astype(np.float64), allowed.astype(np.float64), bad


def _float_comparison(
    a: np.ndarray, e: np.ndarray, rtol: float, atol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Differences, allowances and failures of two arrays compared in float64/complex128.

    An element with a NaN or an infinity in either array agrees only part by part: for
    complex values the real parts and the imaginary parts each must be both NaN, equal,
    or both finite and close (``nan+0j`` is not ``0+nanj``).
    """
    wide = np.complex128 if "c" in (a.dtype.kind, e.dtype.kind) else np.float64
    a64, e64 = a.astype(wide), e.astype(wide)
    with np.errstate(invalid="ignore", over="ignore"):
        difference = np.abs(a64 - e64)
        allowed = atol + rtol * np.abs(e64)
        finite = np.isfinite(a64) & np.isfinite(e64)
        close = finite & (difference <= allowed)
        special = ~finite
        for part_a, part_e in ((a64.real, e64.real), (a64.imag, e64.imag)):
            both_nan = np.isnan(part_a) & np.isnan(part_e)
            part_close = (
                np.isfinite(part_a)
                & np.isfinite(part_e)
                & (np.abs(part_a - part_e) <= atol + rtol * np.abs(part_e))
            )
            special &= both_nan | (part_a == part_e) | part_close
        bad = ~(close | special)
    return difference, allowed, bad


def assert_close(
    actual: Any,
    expected: Any,
    /,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    msg: str | None = "",
) -> None:
    """Assert that two arrays, of any backends and devices, agree element by element.

    Both are copied to the host (`to_numpy`), then must have the same shape (no
    broadcasting) and the same kind of dtype (bool, integer, floating or complex; a
    Python number or list as `expected` is exempt), and every element must satisfy
    ``|actual - expected| <= atol + rtol * |expected|``. NaNs must sit at the same
    places in both; infinities must be equal.

    Tolerances left as None come from `TOLERANCES`, by the less precise of the two
    dtypes (comparing a float32 result with a float64 reference uses float32's):

    ========  ======  ======
    dtype     rtol    atol
    ========  ======  ======
    float16   1e-3    1e-5
    float32   1e-5    1e-7
    float64   1e-10   1e-12
    bool/int  0       0
    ========  ======  ======

    Complex dtypes use their real dtype's row.

    Args:
        actual: the array under test.
        expected: the reference (any backend, or host data).
        rtol, atol: relative and absolute tolerance.
        msg: prepended to the failure message (None or ``""``: nothing).

    Raises:
        AssertionError: naming the worst element (the one furthest outside its
            tolerance), its index, both values and the tolerance.
        TypeError: `actual` or `expected` is not numeric data (None, strings), `msg`
            is not a str or None, or a tolerance is not a number.
        ValueError: a tolerance is not finite and >= 0.

    Example:
        >>> import numpy as np
        >>> assert_close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-13])
        >>> assert_close(np.array([1.0, 2.0]), [1.0, 2.5])
        Traceback (most recent call last):
        ...
        AssertionError: arrays differ at 1 of 2 elements (rtol=1e-10, atol=1e-12, from float64)
          worst at index (1,): actual 2.0, expected 2.5, |difference| 0.5 > allowed 2.51e-10
    """
    if msg is not None and not isinstance(msg, str):
        raise TypeError(f"`msg` must be a str or None, got {_quote(msg)}")
    given_rtol = None if rtol is None else _tolerance(rtol, "rtol")
    given_atol = None if atol is None else _tolerance(atol, "atol")
    expected_is_data = isinstance(expected, numbers.Number | list | tuple)
    a, e = numeric_data(actual, "actual"), numeric_data(expected, "expected")
    prefix = f"{msg}\n" if msg else ""
    if a.shape != e.shape:
        raise AssertionError(f"{prefix}shapes differ: actual {a.shape}, expected {e.shape}")
    kind_a, kind_e = _KINDS[a.dtype.kind], _KINDS[e.dtype.kind]
    if kind_a != kind_e and not expected_is_data:
        raise AssertionError(
            f"{prefix}dtype kinds differ: actual {a.dtype} ({kind_a}), "
            f"expected {e.dtype} ({kind_e})"
        )
    default_rtol, default_atol = _tolerances(a.dtype, e.dtype)
    rtol = default_rtol if given_rtol is None else given_rtol
    atol = default_atol if given_atol is None else given_atol
    source = (
        "given"
        if (rtol, atol) != (default_rtol, default_atol)
        else "from " + (" and ".join(sorted({a.dtype.name, e.dtype.name})))
    )
    if a.dtype.kind == "b":
        a = a.astype(np.int8)
    if e.dtype.kind == "b":
        e = e.astype(np.int8)
    if a.dtype.kind in "iu" and e.dtype.kind in "iu":
        # integers exactly: float64 cannot tell 2**53 from 2**53 + 1
        difference, allowed, bad = _integer_comparison(a, e, rtol, atol)
    else:
        difference, allowed, bad = _float_comparison(a, e, rtol, atol)
    if not bad.any():
        return
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        excess = np.where(bad, np.nan_to_num(difference / allowed, nan=np.inf), -1.0)
    worst = np.unravel_index(int(np.argmax(excess)), a.shape) if a.ndim else ()
    index = tuple(int(i) for i in worst)
    raise AssertionError(
        f"{prefix}arrays differ at {int(bad.sum())} of {a.size} elements "
        f"(rtol={rtol:g}, atol={atol:g}, {source})\n"
        f"  worst at index {index}: actual {a[index].item()!r}, expected {e[index].item()!r}, "
        f"|difference| {difference[index]:.3g} > allowed {allowed[index]:.3g}"
    )
