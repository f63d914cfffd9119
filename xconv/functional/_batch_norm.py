"""Batch normalization and its gradients, side by side.

Semantics are those of `torch.nn.functional.batch_norm`: statistics per channel (axis
1) over every other axis, the biased variance to normalise with, and in training the
running estimates updated as ``(1 - momentum) * running + momentum * batch`` with the
*unbiased* batch variance. Arrays are never changed in place (JAX's cannot be): the
running estimates come back as outputs, with what the backward pass needs.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from xconv._typing import Array, Namespace
from xconv._validation import check_shape, namespace_of, positive_real, true_or_false

from ._dispatch import kernels_for

__all__ = ["BatchNormOutput", "batch_norm", "batch_norm_backward"]


class BatchNormOutput(NamedTuple):
    """What `batch_norm` gives in training."""

    #: the normalised, scaled and shifted batch, shaped like the input
    output: Array
    #: the updated running estimates (None where none were given)
    running_mean: Array | None
    running_var: Array | None
    #: the batch's per-channel mean and biased variance
    mean: Array
    var: Array
    #: what `batch_norm_backward` needs (opaque: hand it back unchanged)
    saved: Any


class _Saved(NamedTuple):
    """The generic code's saved state: the normalised input and 1 / sqrt(var + eps),
    shaped to broadcast against it."""

    x_hat: Array
    inv_std: Array


def batch_norm(
    x: Array,
    running_mean: Array | None,
    running_var: Array | None,
    /,
    weight: Array | None = None,
    bias: Array | None = None,
    *,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Any:
    """Normalise each channel of `x`, then scale by `weight` and shift by `bias`.

    Args:
        x: input of shape (N, C) or (N, C, ...), real floating dtype.
        running_mean, running_var: running estimates of shape (C,), used to normalise
            in inference; in training, updated (returned, not changed in place), or
            None to keep none.
        weight, bias: optional per-channel scale and shift, shape (C,).
        training: normalise by the batch's own statistics (and update the running
            estimates) instead of the running ones.
        momentum: weight of the batch in the running estimates' update, in [0, 1].
        eps: added to the variance, > 0.

    Returns:
        In inference, the output (shaped like `x`). In training, a `BatchNormOutput`:
        the output, the updated running estimates, the batch's mean and biased
        variance, and what `batch_norm_backward` needs.

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
        >>> out = batch_norm(x, np.zeros(2), np.ones(2), training=True, eps=1e-12)
        >>> out.output, out.running_mean
        (array([[-1., -1.],
               [ 1.,  1.]]), array([0.2, 2. ]))
        >>> batch_norm(x, np.zeros(2), np.ones(2), eps=1e-12)
        array([[ 1., 10.],
               [ 3., 30.]])
    """
    training = true_or_false(training, "training")
    optional = {"running_mean": running_mean, "running_var": running_var, "weight": weight}
    given = {name: a for name, a in optional.items() if a is not None}
    xp = namespace_of(x=x, bias=bias, **given)
    if x.ndim < 2:
        raise ValueError(f"`x` must have shape (N, C, ...), got shape {tuple(x.shape)}")
    channels = x.shape[1]
    for name, a in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if a is not None:
            check_shape(a, name, (channels,), "one value per channel of `x`")
    eps = positive_real(eps, "eps")
    momentum = _momentum(momentum)
    kernels = kernels_for(xp)
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(
                "`running_mean` and `running_var` are needed in inference (training=False)"
            )
        out = kernels.batch_norm_inference(x, weight, bias, running_mean, running_var, eps)
        if out is None:
            out = _normalised(x, running_mean, running_var, weight, bias, eps, xp)[0]
        return out
    done = kernels.batch_norm_training(x, weight, bias, eps)
    if done is None:
        mean, var = xp.mean(x, axis=_axes(x)), xp.var(x, axis=_axes(x))
        out, x_hat, inv_std = _normalised(x, mean, var, weight, bias, eps, xp)
        done = out, mean, var, _Saved(x_hat, inv_std)
    out, mean, var, saved = done
    count = math.prod(x.shape) // max(channels, 1)
    running = (None, None)
    if running_mean is not None and running_var is not None:
        unbiased = var * (count / max(count - 1, 1))
        running = (
            (1 - momentum) * running_mean + momentum * mean,
            (1 - momentum) * running_var + momentum * unbiased,
        )
    return BatchNormOutput(out, *running, mean, var, saved)


def batch_norm_backward(
    grad_output: Array, saved: Any, /, weight: Array | None = None
) -> tuple[Array, Array, Array]:
    """Gradients of `batch_norm` in training for its input, weight and bias.

    Args:
        grad_output: gradient of the loss with respect to the output, shaped like `x`.
        saved: the `saved` of the `BatchNormOutput` of that call.
        weight: the forward pass's weight (None if it had none).

    Returns:
        ``(grad_input, grad_weight, grad_bias)``, shaped like `x`, (C,) and (C,) (the
        gradients a weight of ones and a bias of zeros would get, where the forward
        pass had none).

    Example:
        >>> import numpy as np
        >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
        >>> saved = batch_norm(x, None, None, training=True, eps=1e-12).saved
        >>> gx, gw, gb = batch_norm_backward(np.array([[1.0, 0.0], [0.0, 0.0]]), saved)
        >>> gw, gb
        (array([-1.,  0.]), array([1., 0.]))
        >>> bool(abs(gx).max() < 1e-9)  # (two samples: each output is -1 or 1 whatever x)
        True
    """
    xp = namespace_of(grad_output=grad_output)
    shape = _saved_shape(saved)
    check_shape(grad_output, "grad_output", shape, "the shape of batch_norm's input")
    grads = kernels_for(xp).batch_norm_backward(grad_output, saved, weight)
    if grads is not None:
        return grads
    x_hat, inv_std = saved if isinstance(saved, _Saved) else saved.unfused()
    # (the kernels took no gradient of another library or dtype than the forward pass's)
    namespace_of(grad_output=grad_output, x_hat=x_hat)
    axes = _axes(x_hat)
    count = math.prod(x_hat.shape) // max(x_hat.shape[1], 1)
    # parameters: the shift sees the gradient, the scale sees it times x_hat
    grad_weight = xp.sum(grad_output * x_hat, axis=axes)
    grad_bias = xp.sum(grad_output, axis=axes)
    # input: through x_hat, whose mean and variance also depend on every input
    g = grad_output if weight is None else grad_output * xp.reshape(weight, _broadcast(x_hat))
    mean_g = xp.sum(g, axis=axes, keepdims=True) / count
    mean_gx = xp.sum(g * x_hat, axis=axes, keepdims=True) / count
    return (g - mean_g - x_hat * mean_gx) * inv_std, grad_weight, grad_bias


def _axes(x: Array) -> tuple[int, ...]:
    """Every axis but the channels'."""
    return (0, *range(2, x.ndim))


def _broadcast(x: Array) -> tuple[int, ...]:
    """(1, C, 1, ...): a per-channel array's shape against `x`."""
    ones: tuple[int, ...] = (1,) * (x.ndim - 2)
    return (1, int(x.shape[1]), *ones)


def _normalised(
    x: Array,
    mean: Array,
    var: Array,
    weight: Array | None,
    bias: Array | None,
    eps: float,
    xp: Namespace,
) -> tuple[Array, Array, Array]:
    """``(output, x_hat, inv_std)`` of `x` normalised by per-channel `mean` and `var`."""
    shape = _broadcast(x)
    inv_std = 1 / xp.sqrt(xp.reshape(var, shape) + eps)
    x_hat = (x - xp.reshape(mean, shape)) * inv_std
    out = x_hat if weight is None else x_hat * xp.reshape(weight, shape)
    if bias is not None:
        out = out + xp.reshape(bias, shape)
    return out, x_hat, inv_std


def _saved_shape(saved: Any) -> tuple[int, ...]:
    """The input's shape that `saved` is for; a `TypeError` if `saved` is not one."""
    if isinstance(saved, _Saved):
        return tuple(saved.x_hat.shape)
    unfused = getattr(saved, "unfused", None)
    if unfused is None:
        raise TypeError(
            "`saved` must be the `saved` of batch_norm(..., training=True)'s result, "
            f"got {type(saved).__name__}"
        )
    shape = getattr(saved, "shape", None)  # (NumPy's fused passes keep x as (N, C, L))
    return tuple(saved.x.shape if shape is None else shape)


def _momentum(value: object) -> float:
    try:
        momentum = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"`momentum` must be a real number in [0, 1], got {value!r}") from None
    if isinstance(value, bool) or not 0 <= momentum <= 1:
        raise ValueError(f"`momentum` must be a real number in [0, 1], got {value!r}")
    return momentum
