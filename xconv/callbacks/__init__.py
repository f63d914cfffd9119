"""Callbacks: what `NeuralNetwork.fit` does besides training, each in its own small class.

Pass them as ``fit(..., callbacks=[...])``. Each hook receives the epoch or batch
number (counting from 0) and a dict of logs. A callback reaches the model as
``self.model`` and the running fit as ``self.loop`` (its `epochs`, `history`, ...); it
stops training by setting ``self.model.stop_training = True``.

`fit`'s keywords are thin layers over the callbacks here: ``callback=fn`` is a
`LambdaCallback`, ``checkpoint=`` a `Checkpoint`, ``resume=`` a `Resume`,
``on_nonfinite="skip"`` a `SkipNonFinite` and ``verbose=`` a `ProgressBar`.

- Training state: `Checkpoint`, `Resume`, `SkipNonFinite`, `TerminateOnNaN`.
- Watching a logged quantity: `EarlyStopping`, `ReduceLROnPlateau`, `ModelCheckpoint`.
- Learning-rate schedules: `LearningRateScheduler` with `StepDecay`, `CosineDecay`,
  `LinearWarmup` (or any function of the epoch), once an epoch; `OneCycle`, before
  every batch.
- Reporting: `ProgressBar`, `CSVLogger`; `LambdaCallback` for plain functions.

Example:
    >>> import numpy as np
    >>> import xconv
    >>> from xconv.layers import Dense
    >>> class StopAfterOne(xconv.callbacks.Callback):
    ...     def on_epoch_end(self, epoch, logs=None):
    ...         self.model.stop_training = True
    >>> model = xconv.NeuralNetwork("sgd", "square_loss", seed=0)
    >>> model.add(Dense(2, input_shape=(3,)))
    >>> history = model.fit(np.ones((4, 3)), np.ones((4, 2)), 5, 2, callbacks=[StopAfterOne()])
    >>> len(history["loss"])
    1
"""

from ._base import Callback, CallbackList, LambdaCallback
from ._checkpoint import ModelCheckpoint
from ._logging import CSVLogger, ProgressBar
from ._one_cycle import OneCycle
from ._plateau import EarlyStopping, ReduceLROnPlateau
from ._schedules import CosineDecay, LearningRateScheduler, LinearWarmup, StepDecay
from ._training import Checkpoint, Resume, SkipNonFinite, TerminateOnNaN

__all__ = [
    "CSVLogger",
    "Callback",
    "CallbackList",
    "Checkpoint",
    "CosineDecay",
    "EarlyStopping",
    "LambdaCallback",
    "LearningRateScheduler",
    "LinearWarmup",
    "ModelCheckpoint",
    "OneCycle",
    "ProgressBar",
    "ReduceLROnPlateau",
    "Resume",
    "SkipNonFinite",
    "StepDecay",
    "TerminateOnNaN",
]
