"""Callbacks that watch a logged quantity: stop early, lower the learning rate."""

from __future__ import annotations

from typing import Any

from xconv._validation import nonnegative_int, nonnegative_real, real, true_or_false

from ._base import Callback, Logs
from ._monitor import Monitor

__all__ = ["EarlyStopping", "ReduceLROnPlateau"]


class EarlyStopping(Callback):
    """Stop training once `monitor` has not improved for `patience` epochs.

    As Keras's ``EarlyStopping``: an epoch improves when its value beats the best so
    far by more than `min_delta` (lower for losses, higher for accuracies).

    Args:
        monitor: the logged quantity to watch (default ``"val_loss"``: pass validation
            data to fit).
        min_delta: the smallest change that counts as an improvement, >= 0.
        patience: stop after this many epochs in a row without improvement (as in
            Keras, 0 and 1 both stop at the first such epoch).
        mode: ``"auto"`` (``"max"`` for accuracies, ``"min"`` otherwise), ``"min"``
            or ``"max"``.
        baseline: a value to beat; epochs count against `patience` until one does.
        restore_best_weights: when it stops training, put back the parameters and
            buffers of the best epoch (the optimizer's state stays that of the last).
        start_from_epoch: epochs to let pass before watching (a warm-up), >= 0.

    Attributes:
        stopped_epoch: the epoch after which it stopped training (None if it did not).
        best_epoch: the epoch of the best value.

    Example:
        >>> from xconv.callbacks import EarlyStopping
        >>> EarlyStopping(monitor="loss", patience=2).monitor.mode
        'min'
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        self.monitor = Monitor(monitor, mode, min_delta, "EarlyStopping")
        self.patience = nonnegative_int(patience, "patience")
        self.start_from_epoch = nonnegative_int(start_from_epoch, "start_from_epoch")
        self.baseline = None if baseline is None else real(baseline, "baseline")
        self.restore_best_weights = true_or_false(restore_best_weights, "restore_best_weights")
        self.stopped_epoch: int | None = None
        self.best_epoch: int | None = None
        self._wait = 0
        self._best_arrays: list[tuple[dict[str, Any], dict[str, Any]]] | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.monitor.check_keys(self.loop.history)
        self.monitor.reset()
        if self.baseline is not None:
            self.monitor.best = float(self.baseline)
        self._wait, self.stopped_epoch, self.best_epoch = 0, None, None
        self._best_arrays = None

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if epoch < self.start_from_epoch:
            return
        value = self.monitor.value(logs)
        if self.monitor.improves(value):
            self.monitor.best, self.best_epoch, self._wait = value, epoch, 0
            if self.restore_best_weights:
                # updates make new arrays, never change these: references suffice
                self._best_arrays = [
                    (dict(layer.params), dict(layer.buffers)) for layer in self.model.layers
                ]
            return
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self._best_arrays is not None:
                for layer, (params, buffers) in zip(
                    self.model.layers, self._best_arrays, strict=True
                ):
                    layer.params, layer.buffers = dict(params), dict(buffers)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` once `monitor` stops improving.

    As Keras's ``ReduceLROnPlateau``: after `patience` epochs without an improvement
    larger than `min_delta`, the learning rate becomes ``max(lr * factor, min_lr)``,
    then `cooldown` epochs pass before it watches again.

    Args:
        monitor, mode, min_delta: as for `EarlyStopping` (default ``min_delta`` 1e-4).
        factor: the multiplier, in (0, 1).
        patience: reduce after this many epochs in a row without improvement (as in
            Keras, 0 and 1 both reduce at the first such epoch).
        cooldown: epochs after a reduction during which nothing is counted, >= 0.
        min_lr: the smallest learning rate, >= 0.

    Example:
        >>> from xconv.callbacks import ReduceLROnPlateau
        >>> ReduceLROnPlateau(monitor="loss", factor=0.5).factor
        0.5
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
    ) -> None:
        self.monitor = Monitor(monitor, mode, min_delta, "ReduceLROnPlateau")
        if not 0 < real(factor, "factor") < 1:
            raise ValueError(f"`factor` must be in (0, 1), got {factor!r}")
        self.factor, self.min_lr = float(factor), nonnegative_real(min_lr, "min_lr")
        self.patience = nonnegative_int(patience, "patience")
        self.cooldown = nonnegative_int(cooldown, "cooldown")
        self._wait = self._cooling = 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.monitor.check_keys(self.loop.history)
        self.monitor.reset()
        self._wait = self._cooling = 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        value = self.monitor.value(logs)
        if self._cooling > 0:
            self._cooling -= 1
            self._wait = 0
        if self.monitor.improves(value):
            self.monitor.best, self._wait = value, 0
            return
        if self._cooling > 0:
            return
        self._wait += 1
        if self._wait >= self.patience:
            optimizer = self.model.optimizer
            optimizer.learning_rate = max(optimizer.learning_rate * self.factor, self.min_lr)
            self._cooling, self._wait = self.cooldown, 0
