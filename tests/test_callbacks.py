"""Callbacks and fit's Keras-shaped keywords: each callback's behaviour, checked by hand."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from helpers import to_np

from xconv import NeuralNetwork, callbacks
from xconv.layers import Activation, Dense
from xconv.optimizers import SGD


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, y


def _model(backend="numpy", *, learning_rate=0.05, seed=0):
    model = NeuralNetwork(
        SGD(learning_rate), "cross_entropy", dtype="float64", seed=seed, backend=backend
    )
    model.add(Dense(8, input_shape=(4,)))
    model.add(Activation("relu"))
    model.add(Dense(2))
    model.add(Activation("softmax"))
    return model


def _params(model):
    return [{k: to_np(v) for k, v in layer.params.items()} for layer in model.layers]


class Recorder(callbacks.Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, sorted(logs)))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs), len(self.loop.history["loss"])))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def test_hooks_run_in_order_with_their_logs(backend):
    recorder = Recorder()
    X, y = _data(10)
    _model(backend.name).fit(X, y, epochs=2, batch_size=6, callbacks=[recorder], verbose=0)
    batch_logs = ["accuracy", "loss", "size"]
    epoch = [
        ("batch_begin", 0),
        ("batch_end", 0, batch_logs),
        ("batch_begin", 1),
        ("batch_end", 1, batch_logs),
    ]
    assert recorder.calls == [
        ("train_begin",),
        ("epoch_begin", 0),
        *epoch,
        ("epoch_end", 0, ["accuracy", "loss"], 1),  # the history has the epoch already
        ("epoch_begin", 1),
        *epoch,
        ("epoch_end", 1, ["accuracy", "loss"], 2),
        ("train_end",),
    ]


def test_a_callback_stops_training_after_the_current_batch():
    class StopAtBatch(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    model = _model()
    X, y = _data(40)
    history = model.fit(X, y, epochs=5, batch_size=10, callbacks=[StopAtBatch()], verbose=0)
    assert len(history["loss"]) == 1
    assert model.optimizer.steps_taken("0.weight") == 2
    assert model.history is history


def test_early_stopping_stops_and_restores_the_best_weights(backend):
    X, y = _data(40)
    # a learning rate that makes the loss blow up after a good first epoch or two
    snapshots = []
    keep = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: snapshots.append(_params(model)))
    stop = callbacks.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True)
    model = _model(backend.name, learning_rate=40.0)
    history = model.fit(X, y, epochs=30, batch_size=40, callbacks=[keep, stop], verbose=0)
    losses = history["loss"]
    best = int(np.argmin(losses))
    assert stop.best_epoch == best
    assert stop.stopped_epoch == best + 2 == len(losses) - 1  # two epochs without progress
    assert len(losses) < 30
    for layer_now, layer_best in zip(_params(model), snapshots[best], strict=True):
        for key in layer_now:
            np.testing.assert_array_equal(layer_now[key], layer_best[key])


def test_early_stopping_without_progress_past_a_baseline_stops_at_once():
    X, y = _data(20)
    stop = callbacks.EarlyStopping(monitor="loss", baseline=-1.0)  # a loss is never < -1
    history = _model().fit(X, y, epochs=10, batch_size=20, callbacks=[stop], verbose=0)
    assert len(history["loss"]) == 1
    assert stop.stopped_epoch == 0


def test_a_monitored_quantity_the_fit_does_not_log_is_refused_before_training():
    model = _model()
    before = _params(model)
    X, y = _data(10)
    with pytest.raises(ValueError, match=r"EarlyStopping monitors 'val_loss'.*validation data"):
        model.fit(X, y, epochs=2, batch_size=5, callbacks=[callbacks.EarlyStopping()])
    assert model.optimizer.steps_taken("0.weight") == 0
    np.testing.assert_array_equal(_params(model)[0]["weight"], before[0]["weight"])


def test_reduce_lr_on_plateau_multiplies_the_rate_after_patience():
    class Losses(callbacks.Callback):
        """Replaces the logged loss by a scripted sequence, before the scheduler sees it."""

        def __init__(self, values):
            self.values = values

        def on_epoch_end(self, epoch, logs=None):
            logs["loss"] = self.values[epoch]

    rates = []
    record = callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs: rates.append(model.optimizer.learning_rate)
    )
    reduce = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=0.02)
    model = _model(learning_rate=0.1)
    X, y = _data(10)
    scripted = Losses([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97])
    model.fit(X, y, epochs=8, batch_size=10, callbacks=[scripted, reduce, record], verbose=0)
    # best 0.5 at epoch 1; no progress at 2, 3: halve; at 4, 5: halve; at 6, 7: floor 0.02
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02])


def test_schedules_give_their_documented_rates():
    assert [callbacks.StepDecay(1.0, factor=0.1, every=2)(e) for e in range(5)] == pytest.approx(
        [1.0, 1.0, 0.1, 0.1, 0.01]
    )
    cosine = callbacks.CosineDecay(0.2, epochs=4, final_lr=0.1)
    expected = [0.1 + 0.1 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)] + [0.1, 0.1]
    assert [cosine(e) for e in range(6)] == pytest.approx(expected)
    warm = callbacks.LinearWarmup(callbacks.StepDecay(0.4, factor=0.5, every=1), warmup_epochs=3)
    assert [warm(e) for e in range(6)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.2, 0.1])
    with pytest.raises(ValueError, match="`every` must be a positive integer, got 0"):
        callbacks.StepDecay(0.1, every=0)
    with pytest.raises(ValueError, match="`epoch` must be a non-negative integer, got -1"):
        cosine(-1)


def test_the_scheduler_sets_each_epochs_rate_before_it_runs(backend):
    schedule = callbacks.LinearWarmup(callbacks.CosineDecay(0.1, epochs=3), warmup_epochs=1)
    scheduler = callbacks.LearningRateScheduler(schedule)
    seen = []
    record = callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append(model.optimizer.learning_rate)
    )
    model = _model(backend.name)
    X, y = _data(10)
    model.fit(X, y, epochs=4, batch_size=10, callbacks=[scheduler, record], verbose=0)
    assert scheduler.rates == seen == pytest.approx([schedule(e) for e in range(4)])
    # Keras's two-argument form receives the current rate
    halve = callbacks.LearningRateScheduler(lambda epoch, lr: lr / 2)
    model.fit(X, y, epochs=2, batch_size=10, callbacks=[halve], verbose=0)
    assert halve.rates == pytest.approx([seen[-1] / 2, seen[-1] / 4])


def test_a_scheduler_with_a_bad_rate_stops_before_the_epoch():
    model = _model()
    X, y = _data(10)
    bad = callbacks.LearningRateScheduler(lambda epoch: -1.0)
    with pytest.raises(
        ValueError, match="the schedule's rate at epoch 0` must be a non-negative number"
    ):
        model.fit(X, y, epochs=1, batch_size=10, callbacks=[bad], verbose=0)
    assert model.optimizer.steps_taken("0.weight") == 0


def test_model_checkpoint_saves_the_best_only(tmp_path):
    X, y = _data(40)
    model = _model(learning_rate=40.0)  # the loss rises after its best epoch
    path = tmp_path / "best-{epoch:02d}.npz"
    best = callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True)
    history = model.fit(X, y, epochs=6, batch_size=40, callbacks=[best], verbose=0)
    improving = [
        e for e, v in enumerate(history["loss"]) if v < min(history["loss"][:e], default=math.inf)
    ]
    assert best.saved == [tmp_path / f"best-{e + 1:02d}.npz" for e in improving]
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in best.saved]
    last = NeuralNetwork.load(best.saved[-1])
    assert last.layers[0].params["weight"].shape == (4, 8)


def test_model_checkpoint_refuses_a_field_the_fit_does_not_log(tmp_path):
    X, y = _data(10)
    model = _model()
    bad = callbacks.ModelCheckpoint(tmp_path / "m-{val_loss:.2f}.npz", monitor="loss")
    with pytest.raises(ValueError, match="has a field this fit cannot fill"):
        model.fit(X, y, epochs=1, batch_size=10, callbacks=[bad], verbose=0)
    assert list(tmp_path.iterdir()) == []


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    X, y = _data(20)
    path = tmp_path / "log.csv"
    model = _model()
    logger = callbacks.CSVLogger(path)
    history = model.fit(
        X, y, epochs=3, batch_size=10, validation_split=0.25, callbacks=[logger], verbose=0
    )
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(history["val_loss"])


def test_terminate_on_nan_stops_without_an_error():
    X, y = _data(20)
    X[15, 0] = np.nan  # poisons the second batch of the first epoch (no shuffling)
    model = _model()
    history = model.fit(
        X, y, epochs=3, batch_size=10, shuffle=False, callbacks=[callbacks.TerminateOnNaN()],
        verbose=0,
    )  # fmt: skip
    assert len(history["loss"]) == 1
    assert history["skipped"] == [1.0]
    assert model.optimizer.steps_taken("0.weight") == 1  # the bad batch made no update
    assert all(np.all(np.isfinite(v)) for layer in _params(model) for v in layer.values())


def test_verbose_prints_one_line_per_epoch_off_a_terminal(capsys):
    X, y = _data(10)
    _model().fit(X, y, epochs=2, batch_size=5, verbose=2)
    err = capsys.readouterr().err.strip().splitlines()
    assert [line.split(" - ")[0] for line in err] == ["epoch 1/2", "epoch 2/2"]
    assert "loss " in err[0]
    assert "accuracy " in err[0]
    _model().fit(X, y, epochs=2, batch_size=5, verbose=0)
    assert capsys.readouterr().err == ""


def test_keras_keywords_and_the_ancestors_positional_form_agree():
    X, y = _data(30)
    a, b = _model(), _model()
    history_a = a.fit(X, y, 2, 10, verbose=0)
    history_b = b.fit(X, y, epochs=2, batch_size=10, verbose=0)
    assert history_a == history_b
    with pytest.raises(
        TypeError, match="`n_epochs` \\(2\\) and `epochs` \\(3\\) are one argument"
    ):
        a.fit(X, y, 2, epochs=3)
    with pytest.raises(ValueError, match="`epochs` must be a positive integer, got 0"):
        a.fit(X, y, epochs=0)


def test_validation_split_holds_out_the_last_samples():
    X, y = _data(40)
    split, explicit = _model(), _model()
    history = split.fit(X, y, epochs=2, batch_size=10, validation_split=0.25, verbose=0)
    expected = explicit.fit(
        X[:30], y[:30], epochs=2, batch_size=10, validation_data=(X[30:], y[30:]), verbose=0
    )
    assert history == expected
    with pytest.raises(ValueError, match=r"`validation_split` must be in \[0, 1\), got 1.5"):
        split.fit(X, y, validation_split=1.5)
    with pytest.raises(ValueError, match="not both"):
        split.fit(X, y, validation_split=0.5, validation_data=(X, y))
    with pytest.raises(ValueError, match="leaves 0 for validation"):
        split.fit(X[:3], y[:3], validation_split=0.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"callbacks": [print]}, TypeError, "`callbacks` must be a list of xconv.callbacks"),
        ({"callbacks": callbacks.Callback()}, TypeError, "`callbacks` must be a list"),
        ({"verbose": 3}, ValueError, "`verbose` must be 'auto', 0, 1 or 2, got 3"),
        ({"verbose": True}, ValueError, "`verbose` must be 'auto', 0, 1 or 2, got True"),
        ({"batch_size": 0}, ValueError, "`batch_size` must be a positive integer, got 0"),
    ],
)
def test_fit_checks_its_keywords_before_any_work(kwargs, error, match):
    model = _model()
    X, y = _data(10)
    with pytest.raises(error, match=match):
        model.fit(X, y, **kwargs)
    assert model.optimizer.steps_taken("0.weight") == 0


def test_callbacks_check_their_arguments(tmp_path):
    with pytest.raises(TypeError, match="unknown hooks \\['on_epoch_ends'\\]"):
        callbacks.LambdaCallback(on_epoch_ends=print)
    with pytest.raises(ValueError, match="`mode` must be 'auto', 'min' or 'max', got 'up'"):
        callbacks.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="`patience` must be a non-negative integer, got -1"):
        callbacks.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match=r"`factor` must be in \(0, 1\), got 1.0"):
        callbacks.ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="in a folder that does not exist"):
        callbacks.ModelCheckpoint(tmp_path / "missing" / "m.npz")
    with pytest.raises(TypeError, match="`schedule` must be callable"):
        callbacks.LearningRateScheduler(0.1)
    assert callbacks.EarlyStopping(monitor="val_accuracy").monitor.mode == "max"
