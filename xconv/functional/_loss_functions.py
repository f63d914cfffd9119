"""Classification losses of `torch.nn.functional` and their gradients, side by side.

`nll_loss`, `cross_entropy` and `binary_cross_entropy_with_logits` take the options,
defaults and shapes of their PyTorch namesakes: the class axis is 1 of (N, C, d1, ...)
inputs and 0 of unbatched (C,) ones, targets are class indices (an integer array of the
input's shape without its class axis) or, for `cross_entropy`, probabilities shaped like
the input. ``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"``; a mean over
class indices is weighted: it divides by the summed weights of the targets that are not
`ignore_index`, as PyTorch does.

Every backward takes the gradient of the loss (a 0-d array for ``"mean"`` and
``"sum"``, the per-element loss's shape for ``"none"``) and the forward's arguments.
Class weights are constants: no gradient is returned for them. Class indices are not
checked against the number of classes (that would read the data, which a lazy or traced
array cannot): an index out of range that is not `ignore_index` adds nothing.

The mean-squared, absolute and smooth-L1 losses are in `_regression_losses`.
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat

from xconv._validation import as_int, check_index_array, check_shape, namespace_of, real

__all__ = [
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_backward",
    "cross_entropy",
    "cross_entropy_backward",
    "nll_loss",
    "nll_loss_backward",
]

REDUCTIONS = ("mean", "sum", "none")


# -- shared checks --------------------------------------------------------------------


def check_reduction(reduction: object) -> str:
    """`reduction` as one of "mean", "sum", "none"."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"`reduction` must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def reduce(loss: Any, reduction: str, xp: Any, denominator: Any = None) -> Any:
    """The per-element `loss` reduced: as is, summed, or summed over `denominator`
    (default: the number of elements)."""
    if reduction == "none":
        return loss
    total = xp.sum(loss)
    if reduction == "sum":
        return total
    return total / (math.prod(loss.shape) if denominator is None else denominator)


def output_scale(
    grad_output: Any, shape: tuple[int, ...], reduction: str, denominator: Any = None
) -> Any:
    """What each element's loss gradient is multiplied by: `grad_output` (checked to be
    0-d, or of the per-element `shape` for "none"), over the mean's `denominator`."""
    if reduction == "none":
        check_shape(grad_output, "grad_output", shape, "the per-element loss's shape")
        return grad_output
    check_shape(grad_output, "grad_output", (), f"reduction={reduction!r} gives a 0-d loss")
    if reduction == "sum":
        return grad_output
    return grad_output / (math.prod(shape) if denominator is None else denominator)


def _device(x: Any) -> Any:
    return array_api_compat.device(x)


def _class_axis(input: Any) -> int:
    """The class axis: 0 of an unbatched (C,) input, else 1."""
    if input.ndim == 0:
        raise ValueError("`input` must have a class axis: shape (C,) or (N, C, ...), got ()")
    return 0 if input.ndim == 1 else 1


def _along(v: Any, axis: int, ndim: int, xp: Any) -> Any:
    """A 1-D array `v` shaped to broadcast along `axis` of `ndim` axes."""
    shape = [1] * ndim
    shape[axis] = v.shape[0]
    return xp.reshape(v, tuple(shape))


def _check_weight(weight: Any, n_classes: int) -> None:
    if weight is not None:
        check_shape(weight, "weight", (n_classes,), "one weight per class")


class _Picked:
    """Which class each element's target picks, and its weight, for class indices."""

    def __init__(
        self, input: Any, target: Any, weight: Any, ignore_index: object, xp: Any
    ) -> None:
        axis = _class_axis(input)
        expected = tuple(input.shape[:axis]) + tuple(input.shape[axis + 1 :])
        check_shape(target, "target", expected, "the input's shape without its class axis")
        index = as_int(ignore_index)
        if index is None:
            raise TypeError(f"`ignore_index` must be an integer, got {ignore_index!r}")
        n_classes = input.shape[axis]
        _check_weight(weight, n_classes)
        classes = xp.arange(n_classes, dtype=target.dtype, device=_device(target))
        self.axis = axis
        self.n_classes = n_classes
        self.kept = target != index  # the elements that count, target's shape
        kept = xp.expand_dims(self.kept, axis=axis)
        # picked: True at each counted element's target class, input's shape
        self.picked = xp.expand_dims(target, axis=axis) == _along(classes, axis, input.ndim, xp)
        self.picked = self.picked & kept
        ones = xp.ones(n_classes, dtype=input.dtype, device=_device(input))
        self.weight = _along(ones if weight is None else weight, axis, input.ndim, xp)
        # each element's weight (0 where ignored), and the mean's denominator
        self.target_weight = xp.sum(xp.where(self.picked, self.weight, 0.0), axis=axis)
        self.denominator = xp.sum(self.target_weight)


def _log_softmax(x: Any, axis: int, xp: Any) -> Any:
    shifted = x - xp.max(x, axis=axis, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))


# -- nll_loss -------------------------------------------------------------------------


def nll_loss(
    input: Any,
    target: Any,
    /,
    weight: Any = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Any:
    """Negative log-likelihood of class indices, given log-probabilities.

    Each element's loss is ``-weight[t] * input[n, t, ...]`` for its target class t,
    0 where t is `ignore_index`; the mean divides by the summed ``weight[t]``.

    Args:
        input: log-probabilities, (C,) or (N, C, d1, ...), real floating dtype.
        target: class indices, () or (N, d1, ...), an integer array.
        weight: one weight per class, (C,); None (default) weighs every class 1.
        ignore_index: a target value that adds nothing (default -100).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> import numpy as np
        >>> logp = np.log(np.array([[0.5, 0.5], [0.25, 0.75]]))
        >>> round(float(nll_loss(logp, np.array([0, 1]))), 4)
        0.4904
    """
    xp = namespace_of(input=input, **_present(weight=weight))
    check_index_array(target, "target", xp, input)
    reduction = check_reduction(reduction)
    picked = _Picked(input, target, weight, ignore_index, xp)
    loss = -xp.sum(xp.where(picked.picked, picked.weight * input, 0.0), axis=picked.axis)
    return reduce(loss, reduction, xp, picked.denominator)


def nll_loss_backward(
    grad_output: Any,
    input: Any,
    target: Any,
    /,
    weight: Any = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Any:
    """Gradient of `nll_loss` with respect to `input`: ``-weight[t]`` at each target
    class, times `grad_output` (over the summed weights for "mean"), 0 elsewhere."""
    xp = namespace_of(grad_output=grad_output, input=input, **_present(weight=weight))
    check_index_array(target, "target", xp, input)
    reduction = check_reduction(reduction)
    picked = _Picked(input, target, weight, ignore_index, xp)
    scale = output_scale(grad_output, tuple(target.shape), reduction, picked.denominator)
    scale = xp.expand_dims(scale, axis=picked.axis) if reduction == "none" else scale
    return xp.where(picked.picked, -picked.weight * scale, xp.zeros_like(input))


def _present(**arrays: Any) -> dict[str, Any]:
    """The optional arrays that were given (not None), for `namespace_of`."""
    return {name: value for name, value in arrays.items() if value is not None}


# -- cross_entropy --------------------------------------------------------------------


def _check_smoothing(label_smoothing: object) -> float:
    value = real(label_smoothing, "label_smoothing")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"`label_smoothing` must be in [0, 1], got {label_smoothing!r}")
    return value


def _is_probabilities(input: Any, target: Any) -> bool:
    """Whether `target` holds class probabilities (a float array shaped like `input`)."""
    if target is None or not array_api_compat.is_array_api_obj(target):
        return False
    xp = array_api_compat.array_namespace(target)
    return bool(xp.isdtype(target.dtype, "real floating"))


class _CrossEntropy:
    """The gradient of `cross_entropy`'s per-element loss with respect to the log-
    probabilities (`dlogp`, before the output's scale) and what reduces it."""

    def __init__(
        self,
        input: Any,
        target: Any,
        weight: Any,
        ignore_index: object,
        label_smoothing: object,
        xp: Any,
    ) -> None:
        smoothing = _check_smoothing(label_smoothing)
        self.axis = axis = _class_axis(input)
        n_classes = input.shape[axis]
        self.logp = _log_softmax(input, axis, xp)
        self.probabilities = _is_probabilities(input, target)
        if self.probabilities:
            check_shape(target, "target", tuple(input.shape), "probabilities, one per class")
            index = as_int(ignore_index)
            if index is None:
                raise TypeError(f"`ignore_index` must be an integer, got {ignore_index!r}")
            if index >= 0:
                raise ValueError(
                    f"`ignore_index` (={ignore_index}) needs class indices as `target`, "
                    "got probabilities"
                )
            _check_weight(weight, n_classes)
            w = 1.0 if weight is None else _along(weight, axis, input.ndim, xp)
            self.weight = w
            self.smoothed = target * (1.0 - smoothing) + smoothing / n_classes
            self.smoothing = smoothing
            self.dlogp = -w * self.smoothed
            self.denominator: Any = None  # the mean is over the elements (N, d1, ...)
            self.shape = tuple(input.shape[:axis]) + tuple(input.shape[axis + 1 :])
        else:
            check_index_array(target, "target", xp, input)
            picked = _Picked(input, target, weight, ignore_index, xp)
            kept = xp.expand_dims(xp.astype(picked.kept, input.dtype), axis=axis)
            # (1 - eps) of the target's log-probability, eps / C of every class's
            nll = xp.where(picked.picked, picked.weight, 0.0)
            self.dlogp = -(1.0 - smoothing) * nll - (smoothing / n_classes) * picked.weight * kept
            self.denominator = picked.denominator
            self.shape = tuple(target.shape)

    def loss(self, xp: Any) -> Any:
        """The per-element loss: the sum over classes of ``dlogp * logp``."""
        # where, not a product: a log-probability of -inf weighted 0 adds 0, not NaN
        terms = xp.where(self.dlogp == 0, 0.0, self.dlogp * self.logp)
        return xp.sum(terms, axis=self.axis)


def cross_entropy(
    input: Any,
    target: Any,
    /,
    weight: Any = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """Cross-entropy between the softmax of logits `input` and class indices or
    probabilities `target`: ``nll_loss(log_softmax(input, axis=class axis), ...)``.

    With ``label_smoothing`` eps, a class-index target counts as probability
    ``1 - eps + eps / C`` on its class and ``eps / C`` on every other; probability
    targets become ``target * (1 - eps) + eps / C``.

    Args:
        input: logits, (C,) or (N, C, d1, ...), real floating dtype.
        target: class indices, () or (N, d1, ...), an integer array; or probabilities
            shaped like `input`, in its dtype.
        weight: one weight per class, (C,); None (default) weighs every class 1.
        ignore_index: a class-index target that adds nothing (default -100); not
            with probability targets.
        reduction: "mean" (default; over the targets' summed weights for class indices,
            over the N * d1 * ... elements for probabilities), "sum" or "none".
        label_smoothing: eps in [0, 1] (default 0).

    Example:
        >>> import numpy as np
        >>> logits = np.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(cross_entropy(logits, np.array([0, 1]))), 4)
        0.3606
        >>> round(float(cross_entropy(logits, np.array([0, 1]), label_smoothing=0.1)), 4)
        0.4773
    """
    probabilities = _is_probabilities(input, target)
    floating = {"target": target} if probabilities else {}
    xp = namespace_of(input=input, **floating, **_present(weight=weight))
    reduction = check_reduction(reduction)
    parts = _CrossEntropy(input, target, weight, ignore_index, label_smoothing, xp)
    return reduce(parts.loss(xp), reduction, xp, parts.denominator)


def cross_entropy_backward(
    grad_output: Any,
    input: Any,
    target: Any,
    /,
    weight: Any = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> tuple[Any, Any]:
    """Gradients of `cross_entropy`: ``(grad_input, grad_target)``.

    ``grad_input = G - softmax(input) * sum(G, class axis)``, where G is the gradient
    with respect to the log-probabilities. `grad_target` is the gradient with respect
    to probability targets, None for class indices.
    """
    probabilities = _is_probabilities(input, target)
    floating = {"target": target} if probabilities else {}
    xp = namespace_of(grad_output=grad_output, input=input, **floating, **_present(weight=weight))
    reduction = check_reduction(reduction)
    parts = _CrossEntropy(input, target, weight, ignore_index, label_smoothing, xp)
    scale = output_scale(grad_output, parts.shape, reduction, parts.denominator)
    scale = xp.expand_dims(scale, axis=parts.axis) if reduction == "none" else scale
    dlogp = parts.dlogp * scale
    softmax = xp.exp(parts.logp)
    grad_input = dlogp - softmax * xp.sum(dlogp, axis=parts.axis, keepdims=True)
    grad_input = xp.broadcast_to(grad_input, tuple(input.shape))
    if not parts.probabilities:
        return grad_input, None
    grad_target = -(1.0 - parts.smoothing) * parts.weight * parts.logp * scale
    return grad_input, xp.broadcast_to(grad_target, tuple(target.shape))


# -- binary cross-entropy with logits -------------------------------------------------


def _softplus(x: Any, xp: Any) -> Any:
    """``log(1 + exp(x))`` without overflow."""
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


def _sigmoid(x: Any, xp: Any) -> Any:
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0, e) / (1.0 + e)


def _check_bce(input: Any, target: Any, weight: Any, pos_weight: Any) -> None:
    shape = tuple(input.shape)
    check_shape(target, "target", shape, "the shape of `input`")
    for name, value in (("weight", weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        try:
            broadcast = _broadcast_shape(tuple(value.shape), shape)
        except ValueError:
            broadcast = None
        if broadcast != shape:
            raise ValueError(
                f"`{name}` of shape {tuple(value.shape)} does not broadcast to the input's "
                f"shape {shape}"
            )


def _broadcast_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if len(a) > len(b):
        raise ValueError("more axes")
    a = (1,) * (len(b) - len(a)) + a
    if any(i not in (1, j) for i, j in zip(a, b, strict=True)):
        raise ValueError("mismatch")
    return b


def binary_cross_entropy_with_logits(
    input: Any,
    target: Any,
    /,
    weight: Any = None,
    *,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Any:
    """Binary cross-entropy between ``sigmoid(input)`` and probabilities `target`.

    Each element's loss is ``weight * (pos_weight * t * softplus(-x) + (1 - t) *
    softplus(x))``, which is ``-weight * (pos_weight * t * log(sigmoid(x)) + (1 - t) *
    log(1 - sigmoid(x)))`` computed without overflow.

    Args:
        input: logits, any shape, real floating dtype.
        target: probabilities, shaped like `input`.
        weight: a weight broadcast over the elements; None (default) is 1.
        reduction: "mean" (default), "sum" or "none".
        pos_weight: a weight of the positive term, broadcast likewise (one per class
            along the last axis, say); None (default) is 1.

    Example:
        >>> import numpy as np
        >>> x, t = np.array([0.0, 1000.0]), np.array([1.0, 0.0])
        >>> binary_cross_entropy_with_logits(x, t, reduction="none")
        array([6.93147181e-01, 1.00000000e+03])
    """
    xp = namespace_of(input=input, target=target, **_present(weight=weight, pos_weight=pos_weight))
    reduction = check_reduction(reduction)
    _check_bce(input, target, weight, pos_weight)
    positive = target * _softplus(-input, xp)
    if pos_weight is not None:
        positive = pos_weight * positive
    loss = positive + (1.0 - target) * _softplus(input, xp)
    if weight is not None:
        loss = weight * loss
    return reduce(loss, reduction, xp)


def binary_cross_entropy_with_logits_backward(
    grad_output: Any,
    input: Any,
    target: Any,
    /,
    weight: Any = None,
    *,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> tuple[Any, Any]:
    """Gradients of `binary_cross_entropy_with_logits`: ``(grad_input, grad_target)``.

    ``d/dx = weight * (pos_weight * t * (sigmoid(x) - 1) + (1 - t) * sigmoid(x))`` and
    ``d/dt = weight * (pos_weight * softplus(-x) - softplus(x))``, times `grad_output`.
    """
    xp = namespace_of(
        grad_output=grad_output,
        input=input,
        target=target,
        **_present(weight=weight, pos_weight=pos_weight),
    )
    reduction = check_reduction(reduction)
    _check_bce(input, target, weight, pos_weight)
    scale = output_scale(grad_output, tuple(input.shape), reduction)
    if weight is not None:
        scale = weight * scale
    pw = 1.0 if pos_weight is None else pos_weight
    s = _sigmoid(input, xp)
    grad_input = scale * (pw * target * (s - 1.0) + (1.0 - target) * s)
    grad_target = scale * (pw * _softplus(-input, xp) - _softplus(input, xp))
    shape = tuple(input.shape)
    return xp.broadcast_to(grad_input, shape), xp.broadcast_to(grad_target, shape)
