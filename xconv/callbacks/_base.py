"""The `Callback` base class, a list of callbacks as one, and callbacks from functions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from xconv._validation import sequence_of

__all__ = ["Callback", "CallbackList", "LambdaCallback", "Logs", "Loop"]

Logs = dict[str, float]


class Loop(Protocol):
    """What a callback may use of the fit that runs it (`xconv.training.FitLoop`).

    The model and the files are reached through it: callbacks import nothing of
    `xconv.training`, which calls them.
    """

    epochs: int
    batch_size: int
    n_samples: int
    #: per epoch, every key of the logs
    history: dict[str, list[float]]
    #: the first epoch to run
    initial_epoch: int

    @property
    def model(self) -> Any:
        """The model being trained (a `NeuralNetwork`: callbacks may use all of it)."""

    def save_checkpoint(self, path: Path, done: int) -> None:
        """Write the whole training state after `done` epochs to `path`."""

    def resume(self, path: Path) -> None:
        """Restore a checkpoint; the fit goes on after its epoch, with its history."""


class Callback:
    """Base class: override the hooks you need; each does nothing here.

    Attributes:
        loop: the running fit (set by `fit` before `on_train_begin`): ``loop.model``,
            ``loop.epochs``, ``loop.batch_size``, ``loop.history`` (a dict of lists,
            the epochs so far), ``loop.initial_epoch``.
        model: the model being trained (``loop.model``).
    """

    #: the `Loop` running this callback; None until `set_loop`
    loop: Any = None

    @property
    def model(self) -> Any:
        """The model being trained."""
        if self.loop is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a fit yet")
        return self.loop.model

    def set_loop(self, loop: Loop, /) -> None:
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


class CallbackList(Callback):
    """Several callbacks called in order, as one."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks: list[Callback] = sequence_of(
            callbacks, "callbacks", Callback, "Callback objects"
        )

    @property
    def skips_batches(self) -> bool:
        """Whether a callback may skip non-finite batches (overrides `on_nonfinite_loss`)."""
        return any(
            type(callback).on_nonfinite_loss is not Callback.on_nonfinite_loss
            for callback in self.callbacks
        )

    def set_loop(self, loop: Loop, /) -> None:
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
