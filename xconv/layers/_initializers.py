"""Initial weights by name: ``Conv2D(..., kernel_initializer="he_normal")``.

Every initializer draws on the host from the layer's generator, then moves the array
to the backend, so one seed gives the same weights on every backend.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xconv._typing import Array
from xconv.backends import Backend

__all__ = ["DEFAULT_INITIALIZER", "INITIALIZERS", "check_initializer", "initial_weights"]

#: the default: PyTorch's for Conv2d and Linear, and this library's before names existed
DEFAULT_INITIALIZER = "fan_in_uniform"

#: each name's distribution, given fan_in and fan_out: ("uniform", limit) or ("normal", std)
INITIALIZERS: dict[str, str] = {
    "fan_in_uniform": "uniform in +-1/sqrt(fan_in)",
    "glorot_normal": "normal, std sqrt(2 / (fan_in + fan_out))",
    "glorot_uniform": "uniform in +-sqrt(6 / (fan_in + fan_out))",
    "he_normal": "normal, std sqrt(2 / fan_in)",
    "he_uniform": "uniform in +-sqrt(6 / fan_in)",
    "lecun_normal": "normal, std sqrt(1 / fan_in)",
    "lecun_uniform": "uniform in +-sqrt(3 / fan_in)",
    "ones": "all ones",
    "zeros": "all zeros",
}


def check_initializer(name: object) -> str:
    """`name` if it names an initializer, else a ValueError listing them."""
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(
            f"`kernel_initializer` must be one of {', '.join(map(repr, INITIALIZERS))}, "
            f"got {name!r}"
        )
    return name


def initial_weights(
    name: str,
    shape: tuple[int, ...],
    *,
    fan_in: int | None = None,
    fan_out: int | None = None,
    rng: np.random.Generator | None = None,
    backend: Backend,
    dtype: Any,
) -> Array:
    """Weights of `shape` drawn by initializer `name` (see `INITIALIZERS`).

    The random initializers draw from `rng` and need `fan_in` and `fan_out`;
    ``"zeros"`` and ``"ones"`` need neither.

    Example:
        >>> import numpy as np
        >>> from xconv.backends import get
        >>> w = initial_weights("he_normal", (1000, 10), fan_in=1000, fan_out=10,
        ...                     rng=np.random.default_rng(0), backend=get("numpy"),
        ...                     dtype="float64")
        >>> round(float(w.std()), 3)  # sqrt(2 / 1000)
        0.045
    """
    check_initializer(name)
    if name in ("ones", "zeros"):
        fill = np.ones(shape) if name == "ones" else np.zeros(shape)
        return backend.asarray(fill, dtype=dtype)
    if rng is None or fan_in is None or fan_out is None:
        raise ValueError(
            f"the {name!r} initializer draws from `rng`: pass it, `fan_in` and `fan_out`"
        )
    uniform = {
        "fan_in_uniform": 1 / math.sqrt(fan_in),
        "glorot_uniform": math.sqrt(6 / (fan_in + fan_out)),
        "he_uniform": math.sqrt(6 / fan_in),
        "lecun_uniform": math.sqrt(3 / fan_in),
    }
    normal = {
        "glorot_normal": math.sqrt(2 / (fan_in + fan_out)),
        "he_normal": math.sqrt(2 / fan_in),
        "lecun_normal": math.sqrt(1 / fan_in),
    }
    if name in uniform:
        limit = uniform[name]
        return backend.random_uniform(shape, rng=rng, low=-limit, high=limit, dtype=dtype)
    return backend.random_normal(shape, rng=rng, std=normal[name], dtype=dtype)
