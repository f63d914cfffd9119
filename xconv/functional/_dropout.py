"""`dropout` (inverted, as `torch.nn.functional.dropout`) and its gradient.

The array API standard has no random numbers, so the randomness is an argument: a
`uniform` array of numbers in [0, 1) shaped like `x`, where a value is kept when its
number is >= p. Pass the same `uniform` to `dropout_backward`. Without one, `dropout`
draws it on the host from ``numpy.random.default_rng(rng)`` (`rng`: a seed, a NumPy
`Generator`, or None for fresh entropy) and moves it to the device of `x`, the way
xconv's layers draw their masks, so one seed gives one mask on every backend.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from xconv import backends
from xconv._validation import check_shape, namespace_of, real, true_or_false

__all__ = ["dropout", "dropout_backward"]


def _check(p: object, training: object) -> tuple[float, bool]:
    probability = real(p, "p")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"`p` must be a probability in [0, 1], got {p!r}")
    return probability, true_or_false(training, "training")


def _draw(x: Any, xp: Any, rng: Any) -> Any:
    """Uniform numbers in [0, 1) shaped like `x`, from a host generator."""
    backend = backends.backend_for(xp)
    if backend is None:
        raise TypeError(
            "`dropout` draws its own `uniform` only for the arrays of a registered backend; "
            f"pass `uniform` for {type(x).__module__}.{type(x).__qualname__} arrays"
        )
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return backend.random_uniform(
        tuple(x.shape), rng=generator, dtype=x.dtype, device=array_api_compat.device(x)
    )


def _scaled_where_kept(value: Any, uniform: Any, p: float, xp: Any) -> Any:
    if p == 1.0:  # nothing is kept
        return xp.zeros_like(value)
    return xp.where(uniform >= p, value * (1.0 / (1.0 - p)), 0.0)


def dropout(
    x: Any,
    /,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    uniform: Any = None,
    rng: Any = None,
) -> Any:
    """In training, each value of `x` zeroed with probability `p`, the others scaled
    by ``1 / (1 - p)``; `x` itself when not `training` or p = 0.

    Args:
        x: any shape, real floating dtype.
        p: the probability to drop, in [0, 1] (default 0.5).
        training: whether to drop (default True).
        inplace: only False: xconv never writes into its inputs (JAX cannot).
        uniform: numbers in [0, 1) shaped like `x`, in its library and dtype; a value
            is kept where its number is >= p. None (default): drawn from `rng`.
        rng: a seed or `numpy.random.Generator` for drawing `uniform`.

    Example:
        >>> import numpy as np
        >>> dropout(np.ones(4), 0.5, uniform=np.array([0.1, 0.7, 0.5, 0.2]))
        array([0., 2., 2., 0.])
    """
    xp = namespace_of(x=x, **({} if uniform is None else {"uniform": uniform}))
    probability, training = _check(p, training)
    if true_or_false(inplace, "inplace"):
        raise ValueError("inplace=True is not supported: xconv never writes into its inputs")
    if not training or probability == 0.0:
        return x
    if uniform is None:
        uniform = _draw(x, xp, rng)
    check_shape(uniform, "uniform", tuple(x.shape), "one number per value of `x`")
    return _scaled_where_kept(x, uniform, probability, xp)


def dropout_backward(
    grad_output: Any, uniform: Any, /, p: float = 0.5, training: bool = True
) -> Any:
    """Gradient of `dropout` drawn with `uniform`: `grad_output` scaled by
    ``1 / (1 - p)`` where kept, 0 where dropped; `grad_output` when not `training`.

    Example:
        >>> import numpy as np
        >>> dropout_backward(np.ones(2), np.array([0.1, 0.7]), 0.5)
        array([0., 2.])
    """
    xp = namespace_of(grad_output=grad_output, uniform=uniform)
    probability, training = _check(p, training)
    if not training or probability == 0.0:
        return grad_output
    check_shape(grad_output, "grad_output", tuple(uniform.shape), "the shape of `uniform`")
    return _scaled_where_kept(grad_output, uniform, probability, xp)
