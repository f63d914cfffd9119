"""Metrics besides the loss: ``NeuralNetwork(..., metrics=["accuracy", "top_k_accuracy"])``."""

from __future__ import annotations

from typing import Any

import array_api_compat

from xconv._typing import Array, Namespace
from xconv._validation import positive_int

__all__ = ["Accuracy", "Metric", "TopKAccuracy", "get_metric", "get_metrics"]


def _check(y: Array, p: Array) -> Namespace:
    xp = array_api_compat.array_namespace(y, p)
    if p.ndim != 2 or tuple(y.shape) != tuple(p.shape) or p.shape[0] == 0:
        raise ValueError(
            f"`y` and `p` must be (N, C) arrays of one shape with N >= 1, got "
            f"{tuple(y.shape)} and {tuple(p.shape)}"
        )
    return xp


class Metric:
    """A number that says how good a batch's predictions are (higher is better).

    ``metric(y, p)`` is the batch's mean, a 0-d array; `y` holds one-hot targets and
    `p` predictions (probabilities or logits), both (N, C). `name` keys the results.
    """

    name = "metric"

    def __call__(self, y: Array, p: Array, /) -> Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        config = self.get_config()
        name = config.pop("class")
        return f"{name}({', '.join(f'{k}={v!r}' for k, v in config.items())})"

    def get_config(self) -> dict[str, Any]:
        """``{"class": class name, **options}``, JSON-able."""
        return {"class": type(self).__name__}


class Accuracy(Metric):
    """The fraction of samples whose largest prediction is at their target's class.

    A sample with a NaN among its predictions is a miss.

    Example:
        >>> import numpy as np
        >>> float(Accuracy()(np.eye(2), np.array([[0.9, 0.1], [0.8, 0.2]])))
        0.5
    """

    name = "accuracy"

    def __call__(self, y: Array, p: Array, /) -> Array:
        xp = _check(y, p)
        # a row with NaN is a miss (argmax would pick the NaN's class)
        hits = (xp.argmax(p, axis=1) == xp.argmax(y, axis=1)) & ~xp.any(xp.isnan(p), axis=1)
        return xp.mean(xp.astype(hits, p.dtype))


class TopKAccuracy(Metric):
    """The fraction of samples whose target is among their `k` largest predictions.

    A target counts as found when fewer than `k` classes score strictly higher than
    it (ties favour the target). A sample with a NaN among its predictions is never
    found (NaN compares false with everything, so it would otherwise always be).

    Args:
        k: how many of the top predictions count, >= 1 (default 5).

    Example:
        >>> import numpy as np
        >>> p = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
        >>> float(TopKAccuracy(k=2)(np.eye(3)[[1, 2]], p))
        0.5
    """

    def __init__(self, k: int = 5) -> None:
        self.k = positive_int(k, "k")

    @property
    def name(self) -> str:  # type: ignore[override]
        return "top_k_accuracy" if self.k == 5 else f"top_{self.k}_accuracy"

    def get_config(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "k": self.k}

    def __call__(self, y: Array, p: Array, /) -> Array:
        xp = _check(y, p)
        # the target's score, and how many classes beat it
        target = xp.sum(xp.where(y == xp.max(y, axis=1, keepdims=True), p, 0.0), axis=1)
        better = xp.sum(xp.astype(p > target[:, None], p.dtype), axis=1)
        scored = ~xp.any(xp.isnan(p), axis=1)
        return xp.mean(xp.astype((better < self.k) & scored, p.dtype))


_BY_NAME: dict[str, type[Metric]] = {
    "accuracy": Accuracy,
    "acc": Accuracy,
    "topkaccuracy": TopKAccuracy,
}


def get_metric(metric: str | type[Metric] | Metric | dict[str, Any], /) -> Metric:
    """A metric from a name (``"accuracy"``, ``"top_k_accuracy"``), class, instance or
    saved config (``{"class": "TopKAccuracy", "k": 3}``).

    Example:
        >>> get_metric("top_k_accuracy")
        TopKAccuracy(k=5)
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, type) and issubclass(metric, Metric):
        return metric()
    if isinstance(metric, dict):
        options = dict(metric)
        name = options.pop("class", None)
        found = {cls.__name__: cls for cls in (Accuracy, TopKAccuracy)}.get(str(name))
        if found is None:
            raise ValueError(f"unknown metric class {name!r}")
        return found(**options)
    if isinstance(metric, str):
        cls = _BY_NAME.get(metric.lower().replace("_", "").replace("-", ""))
        if cls is None:
            raise ValueError(f"unknown metric {metric!r}; valid names: accuracy, top_k_accuracy")
        return cls()
    raise TypeError(f"a metric must be a name, a Metric class or instance, got {metric!r}")


def get_metrics(metrics: Any, /) -> list[Metric]:
    """A model's `metrics` argument as a list of metrics, each under its own name.

    `metrics` must be a list or tuple (a single name such as ``"accuracy"`` is a
    `TypeError`: read as a sequence it would be its letters). Two metrics of one name
    would share one history key, so that is a `ValueError`, as is a metric named
    ``"loss"``, or one named ``"accuracy"`` that is not `Accuracy` (both keys are the
    model's own).

    Example:
        >>> get_metrics(["accuracy", TopKAccuracy(3)])
        [Accuracy(), TopKAccuracy(k=3)]
        >>> get_metrics(["acc", "accuracy"])
        Traceback (most recent call last):
        ...
        ValueError: `metrics` holds two metrics named 'accuracy': Accuracy() and Accuracy()
    """
    if not isinstance(metrics, list | tuple):
        raise TypeError(
            f"`metrics` must be a list of metrics (names, classes or instances), got "
            f"{metrics!r}"
            + (f"; for one metric write [{metrics!r}]" if isinstance(metrics, str) else "")
        )
    chosen: dict[str, Metric] = {}
    for item in metrics:
        metric = get_metric(item)
        name = metric.name
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"metric {metric!r} must have a non-empty string `name`, got {name!r}"
            )
        if name == "loss" or (name == "accuracy" and not isinstance(metric, Accuracy)):
            raise ValueError(
                f"metric {metric!r} is named {name!r}, a key the model reports itself; "
                "give it another `name`"
            )
        if name in chosen:
            raise ValueError(
                f"`metrics` holds two metrics named {name!r}: {chosen[name]!r} and {metric!r}"
            )
        chosen[name] = metric
    return list(chosen.values())
