"""`ModelCheckpoint`: save the model (every epoch, or its best) as training goes."""

from __future__ import annotations

import os
from pathlib import Path

from xconv._validation import true_or_false, writable_file

from ._base import Callback, Logs
from ._monitor import Monitor

__all__ = ["ModelCheckpoint"]


class ModelCheckpoint(Callback):
    """Save the model with `NeuralNetwork.save` after epochs, or only when it improves.

    The files are model files (`NeuralNetwork.load` reads them); to resume training
    exactly, use `Checkpoint` (``fit(..., checkpoint=...)``) instead.

    Args:
        filepath: where to save; may hold ``str.format`` fields filled from the epoch
            (counting from 1, as Keras's) and its logs, e.g.
            ``"model-{epoch:02d}-{val_loss:.3f}.npz"``. Its folder must exist.
        monitor, mode, min_delta: what `save_best_only` watches (as in `EarlyStopping`).
        save_best_only: save only after an epoch whose `monitor` beats the best so far.

    Attributes:
        saved: the paths written, in order.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        min_delta: float = 0.0,
    ) -> None:
        if not isinstance(filepath, str | os.PathLike):
            raise TypeError(f"`filepath` must be a file path, got {filepath!r}")
        self.filepath = os.fspath(filepath)
        if "{" not in self.filepath:  # a fixed name: probed now (a folder, /sys/m.npz)
            writable_file(self.filepath, "filepath")
        elif not Path(self.filepath).parent.is_dir():
            raise ValueError(f"`filepath` {self.filepath!r} is in a folder that does not exist")
        self.monitor = Monitor(monitor, mode, min_delta, "ModelCheckpoint")
        self.save_best_only = true_or_false(save_best_only, "save_best_only")
        self.saved: list[Path] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self.save_best_only:
            self.monitor.check_keys(self.loop.history)
        self.monitor.reset()
        # a format field that names nothing the fit logs fails now, not after an epoch,
        # and so does a name the file system refuses
        writable_file(self._path(0, dict.fromkeys(self.loop.history, 0.0)), "filepath")
        self.model.get_config()  # a layer that cannot be saved (see registered_name)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = dict(logs or {})
        if self.save_best_only:
            value = self.monitor.value(logs)
            if not self.monitor.improves(value):
                return
            self.monitor.best = value
        path = self._path(epoch + 1, logs)
        self.model.save(path)
        self.saved.append(path)

    def _path(self, epoch: int, logs: dict[str, float]) -> Path:
        try:
            return Path(self.filepath.format(epoch=epoch, **logs))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"`filepath` {self.filepath!r} has a field this fit cannot fill: {exc!r} "
                f"(it logs epoch and {sorted(logs)})"
            ) from None
