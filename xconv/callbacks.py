"""Callbacks: what `NeuralNetwork.fit` does besides training, each in its own small class.

Pass them as ``fit(..., callbacks=[...])``. Each hook receives the epoch or batch
number (counting from 0) and a dict of logs. A callback reaches the model as
``self.model`` and the running fit as ``self.loop`` (its `epochs`, `history`, ...); it
stops training by setting ``self.model.stop_training = True``.

`fit`'s keywords are thin layers over the callbacks here: ``callback=fn`` is a
`LambdaCallback`, ``checkpoint=`` a `Checkpoint`, ``resume=`` a `Resume` and
``on_nonfinite="skip"`` a `SkipNonFinite`.

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

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xconv import _files

__all__ = [
    "Callback",
    "CallbackList",
    "Checkpoint",
    "LambdaCallback",
    "Resume",
    "SkipNonFinite",
]

Logs = dict[str, float]


class Callback:
    """Base class: override the hooks you need; each does nothing here.

    Attributes:
        loop: the running fit (set by `fit` before `on_train_begin`): ``loop.model``,
            ``loop.epochs``, ``loop.batch_size``, ``loop.history`` (a dict of lists,
            the epochs so far), ``loop.initial_epoch``.
        model: the model being trained (``loop.model``).
    """

    loop: Any = None

    @property
    def model(self) -> Any:
        """The model being trained."""
        if self.loop is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a fit yet")
        return self.loop.model

    def set_loop(self, loop: Any, /) -> None:
        """Attach to a fit (called by `fit`)."""
        self.loop = loop

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Before the first epoch."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """After the last epoch (or the one that stopped training); `logs` are its logs."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Before epoch `epoch`."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """After epoch `epoch`, once its logs are in ``loop.history``.

        `logs`: ``loss`` and ``accuracy`` (means over the epoch's samples), with
        validation data ``val_loss`` and ``val_accuracy``, and ``skipped`` where a
        callback skips non-finite batches.
        """

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Before batch `batch` of the current epoch."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """After batch `batch`'s update; `logs`: its ``loss``, ``accuracy`` and ``size``."""

    def on_nonfinite_loss(self, epoch: int, batch: int, loss: float) -> bool:
        """A batch's loss is NaN or infinite: return True to skip the batch and go on.

        The model is as it was before the batch. When no callback returns True, `fit`
        raises `NonFiniteLossError`.
        """
        return False


def skips_batches(callback: Callback) -> bool:
    """Whether `callback` can skip non-finite batches (overrides `on_nonfinite_loss`)."""
    return type(callback).on_nonfinite_loss is not Callback.on_nonfinite_loss


class CallbackList(Callback):
    """Several callbacks called in order, as one."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def set_loop(self, loop: Any, /) -> None:
        super().set_loop(loop)
        for callback in self.callbacks:
            callback.set_loop(loop)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_batch_begin(batch, logs)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_batch_end(batch, logs)

    def on_nonfinite_loss(self, epoch: int, batch: int, loss: float) -> bool:
        # every callback hears of it; one that skips is enough
        answers = [callback.on_nonfinite_loss(epoch, batch, loss) for callback in self.callbacks]
        return any(answers)


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=print)``.

    Each argument is called like the hook of the same name (without ``self``).
    """

    _HOOKS = (
        "on_train_begin",
        "on_train_end",
        "on_epoch_begin",
        "on_epoch_end",
        "on_batch_begin",
        "on_batch_end",
    )

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        unknown = sorted(set(hooks) - set(self._HOOKS))
        if unknown:
            raise TypeError(f"unknown hooks {unknown}; known: {', '.join(self._HOOKS)}")
        for name, function in hooks.items():
            if not callable(function):
                raise TypeError(f"`{name}` must be callable, got {function!r}")
        self.hooks = hooks

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._call("on_train_begin", logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self._call("on_epoch_end", epoch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        self._call("on_batch_begin", batch, logs)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        self._call("on_batch_end", batch, logs)

    def _call(self, name: str, *args: Any) -> None:
        function = self.hooks.get(name)
        if function is not None:
            function(*args)


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
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"`path` must be a file path, got {path!r}")
        if not Path(path).parent.is_dir():
            raise ValueError(f"`checkpoint` {str(path)!r} is in a folder that does not exist")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"`every` must be a positive integer, got {every!r}")
        self.path, self.every = Path(path), every

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        done = epoch + 1
        if done % self.every == 0 or done == self.loop.epochs or self.model.stop_training:
            _files.save_model(self.model, self.path, training=self.loop.training_state(done))


class Resume(Callback):
    """Continue a fit from a `Checkpoint` file: training ends as if never interrupted.

    The checkpoint must be of this architecture, loss and optimizer (the learning rate
    may differ), on the same data, batch size and shuffling. Everything in it is checked
    before the model changes.

    Args:
        path: a file written by `Checkpoint` (``fit(..., checkpoint=path)``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"`resume` must be a file path, got {path!r}")
        self.path = Path(path)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        loop = self.loop
        epoch, history = _files.restore_checkpoint(
            self.model, self.path, loop.run_info(), list(loop.history), loop.epochs
        )
        loop.initial_epoch, loop.history = epoch, history
