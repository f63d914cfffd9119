"""Losses: the mean over a batch of a per-sample loss, its exact gradient, accuracy.

Every loss has ``loss(y, p)`` (a 0-d array), ``gradient(y, p)`` (the derivative of
exactly that mean, shaped like ``p``) and ``acc(y, p)`` (a float). They work on
arrays of any array-API library.

>>> import numpy as np
>>> import xconv.losses as losses
>>> y = np.eye(3)[[0, 2]]
>>> float(losses.get("square_loss").loss(y, np.zeros((2, 3))))
0.5
"""

from ._base import Loss
from ._losses import CrossEntropy, SquareLoss, get

__all__ = ["CrossEntropy", "Loss", "SquareLoss", "get"]
