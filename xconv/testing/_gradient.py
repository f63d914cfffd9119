"""Gradient checks by central finite differences in float64, on any backend."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

import xconv.backends as backends
from xconv._typing import Namespace
from xconv._validation import _quote, as_int, nonnegative_int, positive_real

from ._checks import function, numeric_data
from ._compare import to_numpy

__all__ = ["check_gradient", "numerical_gradient"]

#: inputs with at most this many elements in all are checked at every element
MAX_ELEMENTS = 100
#: random directions per input above `MAX_ELEMENTS`
DIRECTIONS = 8
#: the most directions one check takes (each costs two calls of the function)
MAX_DIRECTIONS = 100_000


def numerical_gradient(
    f: Callable[[np.ndarray], float], a: np.ndarray, /, *, eps: float = 1e-6
) -> np.ndarray:
    """Central finite differences of a scalar function `f` of a host array, at `a`.

    ``grad[i] = (f(a + eps e_i) - f(a - eps e_i)) / (2 eps)`` for every element i, in
    float64 (two calls of `f` per element). `a` is real numeric data (an array, a
    number or a list of them) and `eps` a finite number > 0: anything else, or an `f`
    that is not callable, is a `TypeError` or `ValueError`.

    Example:
        >>> import numpy as np
        >>> g = numerical_gradient(lambda a: float(np.sum(a**2)), np.array([1.0, -2.0]))
        >>> np.round(g, 6)
        array([ 2., -4.])
    """
    function(f, "f")
    a = numeric_data(a, "a", real=True).astype(np.float64)
    eps = positive_real(eps, "eps")
    grad = np.zeros_like(a)
    for index in np.ndindex(a.shape):
        plus, minus = a.copy(), a.copy()
        plus[index] += eps
        minus[index] -= eps
        grad[index] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def _finite(value: Any, name: str, *, positive: bool = False) -> float:
    """A tolerance or step: a finite number, >= 0 (or > 0 with `positive`).

    NaN and infinity are refused: a NaN tolerance makes every comparison pass.
    """
    what = "positive" if positive else "non-negative"
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a {what} number, got {value!r}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        raise ValueError(f"`{name}` must be {what} and finite, got {value!r}")
    return number


def _float64_problem(xp: Namespace, device: Any) -> str | None:
    """Why namespace `xp` cannot hold float64 arrays on `device`, or None if it can."""
    if not hasattr(xp, "float64"):
        return f"{getattr(xp, '__name__', xp)} has no float64 dtype"
    try:
        supported = xp.__array_namespace_info__().dtypes(device=device, kind="real floating")
    except Exception:  # the inspection API is optional in older libraries
        return None
    if "float64" not in supported:
        return f"{getattr(xp, '__name__', xp)} has no float64 on device {device!r}"
    return None


def _scalar(value: Any) -> float:
    host = to_numpy(value)
    if host.size != 1:
        raise ValueError(f"`fn` must return a scalar, got an array of shape {host.shape}")
    if host.dtype.kind == "f" and host.dtype != np.float64:
        raise AssertionError(
            f"`fn` returned {host.dtype} from float64 inputs: finite differences need "
            "float64 throughout (does `fn` cast, or create float32 constants?)"
        )
    return float(host.reshape(()))


def _structure(inputs: Any, grads: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """The names, arrays and claimed gradients of `check_gradient`'s `inputs` and `grads`."""
    import array_api_compat

    if isinstance(inputs, Mapping):
        names: list[Any] = list(inputs)
        arrays = [inputs[name] for name in names]
        if not isinstance(grads, Mapping) or set(grads) != set(names):
            raise ValueError(f"`grads` must be a mapping with the keys of `inputs` {names}")
        claims = [grads[name] for name in names]
    elif isinstance(inputs, Sequence) and not isinstance(inputs, str | bytes):
        names, arrays = list(range(len(inputs))), list(inputs)
        if not isinstance(grads, Sequence) or len(grads) != len(arrays):
            raise ValueError(
                f"`grads` must be a sequence of {len(arrays)} gradients, as `inputs` is"
            )
        claims = list(grads)
    else:
        names, arrays, claims = [0], [inputs], [grads]
    if not arrays:
        raise ValueError("`inputs` must hold at least one array")
    for name, a in zip(names, arrays, strict=True):
        if not array_api_compat.is_array_api_obj(a):
            shown = "" if a is inputs else f" as input {name!r}"
            raise TypeError(
                "`inputs` must be an array, or a sequence or mapping of arrays, "
                f"got {_quote(a)}{shown}"
            )
    return names, arrays, claims


def check_gradient(
    fn: Callable[..., Any],
    inputs: Any,
    grads: Any,
    /,
    *,
    eps: float | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    directions: int | None = None,
    seed: int = 0,
) -> None:
    """Check claimed gradients of a scalar function against central finite differences.

    `fn` is called with backend arrays in float64 -- ``fn(x)`` for a single array
    `inputs`, ``fn(*inputs)`` for a sequence, ``fn(**inputs)`` for a mapping -- and must
    return a scalar (a 0-d or one-element array, or a Python number). `grads` has the
    structure of `inputs` and holds the claimed gradient of ``fn`` with respect to each
    input, in any namespace and dtype. To check the gradient of a function with array
    output, reduce it with a fixed random probe: ``lambda x: xp.sum(f(x) * probe)``,
    whose gradient is the vector-Jacobian product of `probe`.

    The inputs are copied to the host in float64; every evaluation moves its point back
    to the inputs' namespace and device in float64. What is compared, input by input:

    - at most 100 elements in all (and `directions` None): every element.
      ``numeric[i] = (fn(x + eps e_i) - fn(x - eps e_i)) / (2 eps)``, and the check
      passes if ``max |claimed - numeric| <= atol + rtol * max |numeric|``;
    - otherwise, or with `directions` given, that many random directions ``v``
      (standard normal, from ``numpy.random.default_rng(seed)``; 8 by default):
      ``slope = (fn(x + eps v) - fn(x - eps v)) / (2 eps)`` against ``<claimed, v>``,
      passing if ``|slope - <claimed, v>| <= (atol + rtol * |claimed|) * |v|`` with
      Euclidean norms. A wrong gradient passes only if its error is orthogonal to every
      ``v``, which happens with probability zero.

    Args:
        fn: the scalar function, on the inputs' namespace.
        inputs: an array, a sequence or a mapping of arrays of one namespace (floating).
        grads: the claimed gradients, structured like `inputs`.
        eps: the finite-difference step (default 1e-6).
        rtol, atol: tolerances, as above.
        directions: random directions per input; None checks every element of small
            inputs and 8 directions of large ones.
        seed: seeds the random directions.

    Raises:
        AssertionError: a gradient disagrees (the message names the input, the worst
            element or direction and both values), or `fn` loses float64.
        TypeError, ValueError: an argument is not as described above (`fn` not
            callable, an input that is not an array of real numbers, a gradient that is
            not real numeric data of its input's shape, a negative `seed`), before `fn`
            is first called.

    Skips the calling test (`pytest.skip`) where the namespace or device has no
    float64, e.g. JAX without ``jax_enable_x64`` or PyTorch on Apple's MPS.

    Example:
        >>> import numpy as np
        >>> x = np.array([1.0, 2.0, 3.0])
        >>> check_gradient(lambda x: np.sum(x**3), x, 3 * x**2)
        >>> check_gradient(lambda x: np.sum(x**3), x, 2 * x**2)
        Traceback (most recent call last):
        ...
        AssertionError: gradient of input 0 disagrees with central finite differences ...
    """
    import array_api_compat

    function(fn, "fn")
    names, arrays, claims = _structure(inputs, grads)
    eps = 1e-6 if eps is None else _finite(eps, "eps", positive=True)
    rtol, atol = _finite(rtol, "rtol"), _finite(atol, "atol")
    if directions is not None:
        count = as_int(directions)
        if count is None or not 1 <= count <= MAX_DIRECTIONS:
            raise ValueError(
                f"`directions` must be None or an int from 1 to {MAX_DIRECTIONS}, "
                f"got {directions!r}"
            )
        directions = count
    seed = nonnegative_int(seed, "seed")

    try:
        xp = array_api_compat.array_namespace(*arrays)
    except TypeError:
        kinds = sorted({type(a).__name__ for a in arrays})
        raise TypeError(
            f"`inputs` must be arrays of one library, got {', '.join(kinds)}"
        ) from None
    backend = backends.backend_for(xp)
    if backend is None:
        raise TypeError(f"no xconv backend handles the namespace {xp!r} of `inputs`")
    devices = [array_api_compat.device(a) for a in arrays]
    for device in devices:
        problem = _float64_problem(xp, device)
        if problem is not None:
            pytest.skip(f"check_gradient needs float64: {problem}")
    point = [numeric_data(a, "inputs", real=True).astype(np.float64) for a in arrays]
    claimed = [numeric_data(g, "grads", real=True).astype(np.float64) for g in claims]
    for name, x, g in zip(names, point, claimed, strict=True):
        if x.shape != g.shape:
            raise ValueError(
                f"the gradient for input {name!r} has shape {g.shape}, the input {x.shape}: "
                "each of `grads` must have the shape of its input in `inputs`"
            )

    def call(host: list[np.ndarray]) -> float:
        moved = [
            backend.asarray(a, dtype="float64", device=d)
            for a, d in zip(host, devices, strict=True)
        ]
        if moved[0].dtype != xp.float64:
            pytest.skip(
                f"check_gradient needs float64, but {backend.name} made {moved[0].dtype} "
                "(for JAX: JAX_ENABLE_X64=1)"
            )
        if isinstance(inputs, Mapping):
            return _scalar(fn(**dict(zip(names, moved, strict=True))))
        if isinstance(inputs, Sequence):
            return _scalar(fn(*moved))
        return _scalar(fn(moved[0]))

    every_element = directions is None and sum(x.size for x in point) <= MAX_ELEMENTS
    rng = np.random.default_rng(seed)
    for position, (name, g) in enumerate(zip(names, claimed, strict=True)):

        def partial(a: np.ndarray, position: int = position) -> float:
            return call([*point[:position], a, *point[position + 1 :]])

        label = f"gradient of input {name!r} disagrees with central finite differences"
        if every_element:
            numeric = numerical_gradient(partial, point[position], eps=eps)
            with np.errstate(invalid="ignore"):
                difference = np.abs(g - numeric)
            scale = float(np.max(np.abs(numeric))) if numeric.size else 0.0
            allowed = atol + rtol * scale
            # NaN in either gradient is a failure: `not <=` is True for NaN
            if numeric.size and not float(np.max(difference)) <= allowed:
                worst = np.where(np.isnan(difference), np.inf, difference)
                index = tuple(int(i) for i in np.unravel_index(np.argmax(worst), g.shape))
                raise AssertionError(
                    f"{label} (eps={eps:g}, every element)\n"
                    f"  worst at index {index}: claimed {float(g[index])!r}, numeric "
                    f"{float(numeric[index])!r}, |difference| {difference[index]:.3g} > allowed "
                    f"{allowed:.3g} (atol + rtol * max |numeric|)"
                )
            continue
        x = point[position]
        for k in range(directions or DIRECTIONS):
            v = rng.standard_normal(x.shape)
            slope = (partial(x + eps * v) - partial(x - eps * v)) / (2 * eps)
            expected = float(np.sum(g * v))
            norm_v = float(np.linalg.norm(v))
            allowed = (atol + rtol * float(np.linalg.norm(g))) * norm_v
            if not abs(slope - expected) <= allowed:  # NaN fails
                raise AssertionError(
                    f"{label} (eps={eps:g}, random direction {k} of "
                    f"{directions or DIRECTIONS}, seed {seed})\n"
                    f"  numeric slope {slope!r}, claimed <grad, v> {expected!r}, "
                    f"|difference| {abs(slope - expected):.3g} > allowed {allowed:.3g} "
                    "((atol + rtol * |grad|) * |v|)"
                )
