"""Callbacks that keep a fit safe: checkpoints, resuming, non-finite losses."""

from __future__ import annotations

import os

from xconv._validation import positive_int, readable_file, writable_file

from ._base import Callback, Logs

__all__ = ["Checkpoint", "Resume", "SkipNonFinite", "TerminateOnNaN"]


class SkipNonFinite(Callback):
    """Skip a batch whose loss is NaN or infinite (no update), instead of raising.

    The history gets ``skipped``, the number of skipped batches per epoch.
    """

    def on_nonfinite_loss(self, epoch: int, batch: int, loss: float) -> bool:
        return True


class Checkpoint(Callback):
    """Save the whole training state to `path` after every `every` epochs and the last.

    Atomically (the previous file survives a crash): parameters, buffers, optimizer
    state, the random generators (batch order, dropout masks), the epoch and the
    history. ``fit(..., resume=path)`` (a `Resume`) continues from it exactly.
    Put it after callbacks that change the model at an epoch's end (a schedule).

    Args:
        path: the file to write; its folder must exist.
        every: epochs between saves, >= 1.
    """

    def __init__(self, path: str | os.PathLike[str], every: int = 1) -> None:
        self.path, self.every = writable_file(path, "path"), positive_int(every, "every")

    def on_train_begin(self, logs: Logs | None = None) -> None:
        # what the first save would refuse (a layer that cannot be named) fails now
        self.model.get_config()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        done = epoch + 1
        if done % self.every == 0 or done == self.loop.epochs or self.model.stop_training:
            self.loop.save_checkpoint(self.path, done)


class Resume(Callback):
    """Continue a fit from a `Checkpoint` file: training ends as if never interrupted.

    The checkpoint must be of this architecture, loss and optimizer (the learning rate
    may differ), on the same data, batch size and shuffling. Everything in it is checked
    before the model changes.

    Args:
        path: a file written by `Checkpoint` (``fit(..., checkpoint=path)``); it must
            exist when the `Resume` is made.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = readable_file(path, "path")  # a folder, a missing file: now

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.loop.resume(self.path)


class TerminateOnNaN(Callback):
    """Stop training, without an error, at the first batch whose loss is NaN or infinite.

    That batch makes no update: the model keeps its state from before it, and the
    history ends with the epoch it interrupted (its logs cover the batches before it).
    """

    def on_nonfinite_loss(self, epoch: int, batch: int, loss: float) -> bool:
        self.model.stop_training = True
        return True
