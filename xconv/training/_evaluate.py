"""A model run on arrays already of its backend: its output, and its scores over batches.

`NeuralNetwork.predict` and `evaluate`, and the fit loop's validation after each
epoch, run these.
"""

from __future__ import annotations

from collections.abc import Sequence

from xconv._typing import Array
from xconv.functional import kernel_threads
from xconv.losses import Metric

from ._protocols import StepModel

__all__ = ["evaluate_arrays", "forward"]


def forward(model: StepModel, X: Array, *, training: bool) -> Array:
    """The model's network on the batch `X` (with the backend's kernel threads)."""
    with kernel_threads(model.xp):
        return model.network.forward(X, training=training)


def evaluate_arrays(
    model: StepModel, X: Array, y: Array, batch_size: int, metrics: Sequence[Metric] = ()
) -> dict[str, float]:
    """The mean loss, the loss's accuracy, and `metrics` over (X, y), by name.

    In inference mode, `batch_size` samples at a time; `y` is one-hot rows.
    """
    loss = model.loss_function
    n = X.shape[0]
    totals = dict.fromkeys(["loss", "accuracy", *(m.name for m in metrics)], 0.0)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        y_pred, y_batch = forward(model, X[start:stop, ...], training=False), y[start:stop, ...]
        scores = {
            "loss": loss.loss(y_batch, y_pred),
            "accuracy": loss.accuracy(y_batch, y_pred),
        } | {metric.name: metric(y_batch, y_pred) for metric in metrics}
        for key, score in scores.items():
            totals[key] += float(score) * (stop - start)
    return {key: total / n for key, total in totals.items()}
