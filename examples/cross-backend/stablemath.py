"""A numerically stable log-sum-exp and its gradient, written once for the array API.

>>> import numpy as np
>>> float(logsumexp(np.array([1000.0, 1000.0])))  # exp(1000) would overflow
1000.6931471805599
"""

from __future__ import annotations

from typing import Any

import array_api_compat

__all__ = ["logsumexp", "logsumexp_backward"]


def logsumexp(x: Any, /, *, axis: int = -1) -> Any:
    """``log(sum(exp(x), axis))`` without overflow: the largest element is factored out.

    A slice whose elements are all ``-inf`` gives ``-inf``. The result is in `x`'s
    namespace, on its device, in its dtype, with `axis` removed.
    """
    xp = array_api_compat.array_namespace(x)
    # shift by the maximum, so that every exponent is <= 0
    shift = xp.max(x, axis=axis, keepdims=True)
    shift = xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))
    total = xp.sum(xp.exp(x - shift), axis=axis, keepdims=True)
    # a slice of -infs sums to 0: its log is -inf, taken without a division warning
    empty = total == 0
    log_total = xp.log(xp.where(empty, xp.ones_like(total), total))
    log_total = xp.where(empty, xp.full_like(total, -xp.inf), log_total)
    return xp.squeeze(log_total + shift, axis=axis)


def logsumexp_backward(grad_output: Any, x: Any, /, *, axis: int = -1) -> Any:
    """The gradient of ``sum(logsumexp(x, axis) * grad_output)`` with respect to `x`.

    It is ``grad_output * softmax(x, axis)``, with `grad_output` broadcast along `axis`.
    """
    xp = array_api_compat.array_namespace(grad_output, x)
    out = logsumexp(x, axis=axis)
    softmax = xp.exp(x - xp.expand_dims(out, axis=axis))
    return xp.expand_dims(grad_output, axis=axis) * softmax
