"""The `Loss` base class: a batch's mean loss, its exact gradient, and accuracy."""

from __future__ import annotations

from typing import Any

from xconv._typing import Array, Namespace
from xconv._validation import check_ndim, check_shape, namespace_of

__all__ = ["Loss"]


class Loss:
    """A loss over a batch: the mean over samples of a per-sample loss.

    `loss` reports exactly the function whose derivative `gradient` returns (the
    ancestor reported one function and differentiated another), so the gradient
    includes the factor 1/N of the mean. Subclasses implement `_per_sample` and
    `_gradient`; the checks and the mean are here.

    Shape:
        y (targets, one-hot for classification) and p (predictions): (N, C), one
        library, one real floating dtype. `loss` returns a 0-d array, `gradient` an
        array of shape (N, C).
    """

    def __repr__(self) -> str:
        config = self.get_config()
        name = config.pop("class")
        return f"{name}({', '.join(f'{k}={v!r}' for k, v in config.items())})"

    def _check(self, y: Array, p: Array) -> Namespace:
        """Validate a batch and return its namespace."""
        xp = namespace_of(y=y, p=p)
        check_ndim(p, "p", "NC")
        check_shape(y, "y", tuple(p.shape), "the shape of `p`")
        if p.shape[0] == 0:
            raise ValueError(f"`p` must hold at least one sample, got shape {tuple(p.shape)}")
        return xp

    def loss(self, y: Array, p: Array, /) -> Array:
        """The mean over the batch of the per-sample loss, a 0-d array."""
        xp = self._check(y, p)
        return xp.sum(self._per_sample(y, p, xp)) / p.shape[0]

    def gradient(self, y: Array, p: Array, /) -> Array:
        """The derivative of `loss` with respect to `p` (so it includes 1/N)."""
        xp = self._check(y, p)
        return self._gradient(y, p, xp) / p.shape[0]

    def accuracy(self, y: Array, p: Array, /) -> Array:
        """The fraction of samples whose largest prediction is at their target's largest.

        A 0-d array (no trip to the host, so a compiled training step can return it).
        Ties go to the first class, as ``argmax`` does; a sample with a NaN among its
        predictions is a miss.
        """
        xp = self._check(y, p)
        # a row with NaN is a miss (argmax would pick the NaN's class)
        hits = (xp.argmax(p, axis=1) == xp.argmax(y, axis=1)) & ~xp.any(xp.isnan(p), axis=1)
        return xp.mean(xp.astype(hits, p.dtype))

    def acc(self, y: Array, p: Array, /) -> float:
        """`accuracy` as a Python float (the ancestor's name)."""
        return float(self.accuracy(y, p))

    def get_config(self) -> dict[str, Any]:
        """``{"class": class name, **options}``, JSON-able."""
        return {"class": type(self).__name__}

    def _per_sample(self, y: Array, p: Array, xp: Namespace) -> Array:
        """The loss of each sample, shape (N,)."""
        raise NotImplementedError

    def _gradient(self, y: Array, p: Array, xp: Namespace) -> Array:
        """The derivative of the *sum* of the per-sample losses, shape (N, C)."""
        raise NotImplementedError
