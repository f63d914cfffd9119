"""Losses: the mean over a batch of a per-sample loss, its exact gradient, accuracy.

Every loss has ``loss(y, p)`` (a 0-d array), ``gradient(y, p)`` (the derivative of
exactly that mean, shaped like ``p``) and ``acc(y, p)`` (a float). They work on
arrays of any array-API library. Metrics (`Accuracy`, `TopKAccuracy`) score
predictions besides the loss.

>>> import numpy as np
>>> import xconv.losses as losses
>>> y = np.eye(3)[[0, 2]]
>>> float(losses.get("square_loss").loss(y, np.zeros((2, 3))))
0.5
"""

from ._base import Loss
from ._losses import CrossEntropy, SquareLoss, from_config, get
from ._metrics import Accuracy, Metric, TopKAccuracy, get_metric, get_metrics
from ._regression import BinaryCrossEntropy, Huber, MeanAbsoluteError, MeanSquaredError

__all__ = [
    "Accuracy",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Huber",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "Metric",
    "SquareLoss",
    "TopKAccuracy",
    "from_config",
    "get",
    "get_metric",
    "get_metrics",
]
