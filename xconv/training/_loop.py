"""The fit loop: epochs of batches, each one run of a batch step, and the callbacks.

`FitLoop` is the loop that `NeuralNetwork.fit` and `xconv.distributed.fit` share. Who
computes a batch is the caller's choice (a `BatchStep`): the model's own training step
here, a cluster's shards in `xconv.distributed`. The loop orders the batches, asks the
callbacks what to do with a non-finite loss, keeps the history and calls the hooks.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from xconv import losses as _losses
from xconv._typing import Array
from xconv._validation import (
    fraction,
    one_of,
    positive_int,
    readable_file,
    true_or_false,
    writable_file,
)
from xconv.callbacks import (
    Callback,
    CallbackList,
    Checkpoint,
    LambdaCallback,
    ProgressBar,
    Resume,
    SkipNonFinite,
)
from xconv.data import to_categorical

from ._evaluate import evaluate_arrays
from ._files import restore_checkpoint, save_model
from ._inputs import check_finite, check_label_values, model_inputs, model_labels, take_rows
from ._protocols import StepModel, TrainableModel

__all__ = [
    "BatchOutcome",
    "FitLoop",
    "NonFiniteLossError",
    "check_training_data",
    "data_fingerprint",
    "fit_callbacks",
    "fit_model",
    "score_names",
]


class NonFiniteLossError(FloatingPointError):
    """`NeuralNetwork.fit` met a NaN or infinite loss at batch `batch` of epoch `epoch`.

    Both count from 0, like the callbacks. The model keeps its state from before that
    batch. A `FloatingPointError`, like NumPy's ``errstate(all="raise")`` errors.
    """

    def __init__(self, loss: float, epoch: int, batch: int) -> None:
        super().__init__(
            f"non-finite loss {loss} at epoch {epoch}, batch {batch} (counting from 0); "
            "lower the learning rate, check the data for NaN or inf, or pass "
            "on_nonfinite='skip'"
        )
        self.loss, self.epoch, self.batch = loss, epoch, batch


class BatchOutcome(NamedTuple):
    """One batch computed but not yet kept: its mean loss and scores, and `keep()`.

    `scores` maps ``"accuracy"`` and each metric's name to the batch's mean.
    """

    loss: float
    scores: dict[str, float]
    keep: Callable[[], None]


#: computes one batch from its sample indices (host int64); `keep` applies the update
BatchStep = Callable[[np.ndarray], BatchOutcome]


def check_training_data(model: StepModel, X: Any, y: Any) -> None:
    """Training data for `model` (NumPy or Dask arrays), checked before any work.

    Shapes; labels integers in range, or rows that are finite (and one-hot or
    probabilities for a categorical loss), as a local `fit` checks them; and X finite
    (a cluster's shards would otherwise meet NaN only after earlier batches trained).
    """
    first = model.layers[0].input_shape
    assert first is not None  # set when the layer joined the model
    expected = tuple(first)
    if tuple(X.shape[1:]) != expected:
        raise ValueError(
            f"`X` must have shape (N, {', '.join(map(str, expected))}) for this model, "
            f"got {tuple(X.shape)}"
        )
    if X.shape[0] == 0:
        raise ValueError(f"`X` must hold at least one sample to train on, got {tuple(X.shape)}")
    if len(y.shape) == 0:
        raise ValueError(f"`y` must hold one label per sample, got {y!r}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"`y` has {y.shape[0]} labels but X has {X.shape[0]} samples")
    n_classes = math.prod(model.layers[-1].output_shape())
    if len(y.shape) not in (1, 2) or (len(y.shape) == 2 and y.shape[1] != n_classes):
        raise ValueError(
            f"`y` must be class indices (N,) or one-hot rows (N, {n_classes}), "
            f"got shape {tuple(y.shape)}"
        )
    check_finite(X, "X")
    categorical = isinstance(model.loss_function, _losses.CrossEntropy)
    check_label_values(np.asarray(y), n_classes, "y", probabilities=categorical)


def data_fingerprint(
    model: StepModel, X: Any, y: Any, callbacks: Sequence[Callback], *, lazy: bool = True
) -> str | None:
    """SHA-256 of the training data, for checkpoints (a resume on other data of the
    same size is refused): X and y (as one-hot rows) in the model's dtype, with their
    shapes. None where no `Checkpoint` or `Resume` needs it, and for Dask arrays unless
    `lazy` (data on a cluster: hashing would bring it all to the client)."""
    if not any(isinstance(c, Checkpoint | Resume) for c in callbacks):
        return None
    if not lazy and (array_api_compat.is_dask_array(X) or array_api_compat.is_dask_array(y)):
        return None
    digest = hashlib.sha256()
    for a in (X, y):
        host = a if isinstance(a, np.ndarray) else model.backend.to_numpy(a)
        if host.ndim == 1:  # class indices, as the one-hot rows `fit` trains on
            host = to_categorical(host, math.prod(model.network.output_shape()))
        host = np.ascontiguousarray(host, dtype=model.dtype)
        digest.update(repr(host.shape).encode())
        digest.update(host.data)
    return digest.hexdigest()


def fit_callbacks(
    callbacks: Sequence[Callback] | None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 1,
    resume: str | os.PathLike[str] | None = None,
    on_nonfinite: str = "raise",
    verbose: int | str = 0,
) -> list[Callback]:
    """`fit`'s callbacks from its keywords, checked: `resume` first, then a progress
    bar, the user's `callbacks`, `callback`, skipping non-finite batches, `checkpoint`.
    """
    if callbacks is None:
        callbacks = []
    if not isinstance(callbacks, list | tuple) or not all(
        isinstance(c, Callback) for c in callbacks
    ):
        raise TypeError(
            f"`callbacks` must be a list of xconv.callbacks.Callback objects, got {callbacks!r}"
        )
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable, got {callback!r}")
    checkpoint_every = positive_int(checkpoint_every, "checkpoint_every")
    on_nonfinite = one_of(on_nonfinite, "on_nonfinite", ("raise", "skip"))
    if (  # the type first: an array's `in` would be NumPy's "truth value is ambiguous"
        isinstance(verbose, bool)
        or not isinstance(verbose, str | int | np.integer)
        or verbose not in ("auto", 0, 1, 2)
    ):
        raise ValueError(f"`verbose` must be 'auto', 0, 1 or 2, got {verbose!r}")
    chosen: list[Callback] = []
    if resume is not None:
        chosen.append(Resume(readable_file(resume, "resume")))
    if verbose != 0:
        chosen.append(ProgressBar(bar=False if verbose == 2 else None))
    chosen += callbacks
    if callback is not None:
        chosen.append(LambdaCallback(on_epoch_end=callback))
    if on_nonfinite == "skip":
        chosen.append(SkipNonFinite())
    if checkpoint is not None:
        writable_file(checkpoint, "checkpoint")  # a folder, /sys/..., too long: now
        chosen.append(Checkpoint(checkpoint, every=checkpoint_every))
    return chosen


def fit_model(
    model: TrainableModel,
    X: Any,
    y: Any,
    *,
    epochs: int,
    batch_size: int,
    shuffle: bool,
    validation_data: tuple[Any, Any] | None,
    validation_split: float,
    callbacks: list[Callback],
) -> dict[str, list[float]]:
    """`NeuralNetwork.fit` once its keywords are callbacks: check, then run the loop."""
    batch_size = positive_int(batch_size, "batch_size")
    shuffle = true_or_false(shuffle, "shuffle")
    validation_split = fraction(validation_split, "validation_split")
    if validation_split and validation_data is not None:
        raise ValueError("give `validation_data` or `validation_split`, not both")
    if validation_data is not None and (
        not isinstance(validation_data, tuple | list) or len(validation_data) != 2
    ):
        raise ValueError("`validation_data` must be a pair (X, y)")
    X = model_inputs(model, X)
    n = int(X.shape[0])
    if n == 0:
        raise ValueError(f"`X` must hold at least one sample to train on, got {tuple(X.shape)}")
    y = model_labels(model, y, n)
    # NaN in X is left to the batches: its batch's loss is NaN, which raises a
    # NonFiniteLossError before any update or is skipped (on_nonfinite="skip")
    fingerprint = data_fingerprint(model, X, y, callbacks)
    if validation_split:
        held = int(n * validation_split)
        if held == 0 or held == n:
            raise ValueError(
                f"`validation_split`={validation_split!r} of {n} samples leaves "
                f"{held} for validation and {n - held} for training: both need one"
            )
        X, X_val, y, y_val = (
            X[: n - held, ...],
            X[n - held :, ...],
            y[: n - held, ...],
            y[n - held :, ...],
        )
        n -= held
        validation: tuple[Array, Array] | None = (X_val, y_val)
    elif validation_data is not None:
        X_val = model_inputs(model, validation_data[0], "validation X")
        if X_val.shape[0] == 0:  # else an epoch of training, then a division by zero
            raise ValueError("`validation_data` must hold at least one sample, got 0")
        y_val = model_labels(model, validation_data[1], X_val.shape[0], "validation y")
        validation = (X_val, y_val)
    else:
        validation = None
    step = model.training_step

    def run_batch(index: np.ndarray) -> BatchOutcome:
        backend = model.backend
        result, steps = step.run(take_rows(backend, X, index), take_rows(backend, y, index))
        scores = {name: float(value) for name, value in result.scores.items()}
        return BatchOutcome(float(result.loss), scores, lambda: step.commit(result.state, steps))

    def validate() -> dict[str, float]:
        assert validation is not None
        return evaluate_arrays(model, *validation, batch_size, model.metrics)

    loop = FitLoop(
        model,
        run_batch,
        n_samples=n,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=shuffle,
        callbacks=callbacks,
        validate=None if validation is None else validate,
        scores=score_names(model.metrics),
        fingerprint=fingerprint,
    )
    return loop.run()


def score_names(metrics: Sequence[_losses.Metric]) -> list[str]:
    """The names a batch is scored by: the loss's ``accuracy``, then each metric's."""
    names = ["accuracy"]
    names += [metric.name for metric in metrics if metric.name not in names]
    return names


class FitLoop:
    """Epochs of shuffled batches, run by `step`, with callbacks and a history.

    Args:
        model: the model trained (its `batch_order` and `stop_training`; checkpoints
            save and restore it whole).
        step: computes one batch from its sample indices.
        n_samples: how many samples an epoch covers.
        epochs, batch_size, shuffle: as for `NeuralNetwork.fit`.
        callbacks: called in order.
        validate: returns the validation logs after each epoch (``loss`` and each
            score, by name), or None.
        scores: the names in each `BatchOutcome.scores` (``accuracy`` first).
        batch_order: ``batch_order(n_samples, shuffle)``, the order of an epoch's
            samples; default ``model.batch_order``.
        fingerprint: `data_fingerprint` of the training data, kept in checkpoints.
    """

    def __init__(
        self,
        model: TrainableModel,
        step: BatchStep,
        *,
        n_samples: int,
        epochs: int,
        batch_size: int,
        shuffle: bool,
        callbacks: Sequence[Callback] = (),
        validate: Callable[[], dict[str, float]] | None = None,
        batch_order: Callable[[int, bool], np.ndarray] | None = None,
        scores: Sequence[str] = ("accuracy",),
        fingerprint: str | None = None,
    ) -> None:
        self.model, self.step = model, step
        self.batch_order = model.batch_order if batch_order is None else batch_order
        self.n_samples, self.epochs = n_samples, epochs
        self.batch_size, self.shuffle = batch_size, shuffle
        self.callbacks = CallbackList(callbacks)
        self.validate = validate
        self.fingerprint = fingerprint
        self.skipping = self.callbacks.skips_batches
        self.scores = list(scores)
        keys = ["loss", *self.scores]
        keys += [f"val_{key}" for key in keys] if validate is not None else []
        keys += ["skipped"] if self.skipping else []
        #: per epoch, every key of the logs (a `Resume` fills in the earlier epochs)
        self.history: dict[str, list[float]] = {key: [] for key in keys}
        #: the first epoch to run (a `Resume` moves it on)
        self.initial_epoch = 0

    def run_info(self) -> dict[str, Any]:
        """What makes two fits the same run, for checkpoints: the data's size and
        fingerprint (SHA-256 of X and y, where known), batch size and shuffling."""
        info: dict[str, Any] = {
            "n_samples": self.n_samples,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
        }
        if self.fingerprint is not None:
            info["data_sha256"] = self.fingerprint
        return info

    def training_state(self, done: int) -> tuple[int, dict[str, Any], dict[str, list[float]]]:
        """A checkpoint's training state after `done` epochs."""
        return done, self.run_info(), self.history

    def save_checkpoint(self, path: Path, done: int) -> None:
        """Write the whole training state after `done` epochs to `path` (`Checkpoint`)."""
        save_model(self.model, path, training=self.training_state(done))

    def resume(self, path: Path) -> None:
        """Restore the checkpoint at `path` into the model; the loop goes on after its
        epoch, with its history (`Resume`). A bad file changes nothing."""
        self.initial_epoch, self.history = restore_checkpoint(
            self.model, path, self.run_info(), list(self.history), self.epochs
        )

    def run(self) -> dict[str, list[float]]:
        """Train; returns the history."""
        model, callbacks = self.model, self.callbacks
        model.stop_training = False
        callbacks.set_loop(self)
        callbacks.on_train_begin()
        logs: dict[str, float] = {}
        for epoch in range(self.initial_epoch, self.epochs):
            callbacks.on_epoch_begin(epoch)
            logs = self._epoch(epoch)
            for key, value in logs.items():
                self.history[key].append(value)
            callbacks.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
        callbacks.on_train_end(logs)
        return self.history

    def _epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the data; the epoch's logs."""
        order = self.batch_order(self.n_samples, self.shuffle)
        names = ["loss", *self.scores]
        totals = dict.fromkeys(names, 0.0)
        counted = skipped = 0
        for batch, start in enumerate(range(0, self.n_samples, self.batch_size)):
            self.callbacks.on_batch_begin(batch)
            index = order[start : start + self.batch_size]
            outcome = self.step(index)
            if not math.isfinite(outcome.loss):
                if not self.callbacks.on_nonfinite_loss(epoch, batch, outcome.loss):
                    raise NonFiniteLossError(outcome.loss, epoch, batch)
                skipped += 1
                if self.model.stop_training:
                    break
                continue
            outcome.keep()
            count = int(index.shape[0])
            batch_logs = {"loss": outcome.loss} | {k: outcome.scores[k] for k in self.scores}
            for key, value in batch_logs.items():
                totals[key] += value * count
            counted += count
            self.callbacks.on_batch_end(batch, batch_logs | {"size": count})
            if self.model.stop_training:
                break
        # means over the samples of the batches kept
        logs = {key: total / counted if counted else math.nan for key, total in totals.items()}
        if self.validate is not None:
            validation = self.validate()
            logs |= {f"val_{key}": validation[key] for key in names}
        if self.skipping:
            logs["skipped"] = float(skipped)
        return logs
