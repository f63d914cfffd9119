"""Every number, path and option is checked before work starts (issue #27).

A Python int beyond float's range (10**400) is a ValueError, never an OverflowError;
file paths given to callbacks are probed when they are made; streams, noise and
paddings are checked where they are given.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest

from xconv import NeuralNetwork, callbacks, layers, losses, optimizers

HUGE = 10**400

CONSTRUCTORS = {
    "Adam(learning_rate)": lambda: optimizers.Adam(learning_rate=HUGE),
    "Adam(b1)": lambda: optimizers.Adam(b1=HUGE),
    "SGD(learning_rate)": lambda: optimizers.SGD(learning_rate=HUGE),
    "SGD(momentum)": lambda: optimizers.SGD(momentum=HUGE),
    "Dropout(p)": lambda: layers.Dropout(HUGE),
    "CrossEntropy(eps)": lambda: losses.CrossEntropy(eps=HUGE),
    "BinaryCrossEntropy(eps)": lambda: losses.BinaryCrossEntropy(eps=HUGE),
    "Huber(delta)": lambda: losses.Huber(HUGE),
    "EarlyStopping(min_delta)": lambda: callbacks.EarlyStopping(min_delta=HUGE),
    "EarlyStopping(baseline)": lambda: callbacks.EarlyStopping(baseline=HUGE),
    "ReduceLROnPlateau(factor)": lambda: callbacks.ReduceLROnPlateau(factor=HUGE),
    "ReduceLROnPlateau(min_lr)": lambda: callbacks.ReduceLROnPlateau(min_lr=HUGE),
    "StepDecay(initial_lr)": lambda: callbacks.StepDecay(HUGE),
    "StepDecay(factor)": lambda: callbacks.StepDecay(0.1, HUGE),
    "CosineDecay(final_lr)": lambda: callbacks.CosineDecay(0.1, 10, HUGE),
}


@pytest.mark.parametrize("make", CONSTRUCTORS.values(), ids=CONSTRUCTORS.keys())
def test_an_int_beyond_float_is_a_value_error(make):
    with pytest.raises(ValueError, match=r"must be"):
        make()


def test_a_long_number_is_quoted_short():
    with pytest.raises(ValueError, match="`learning_rate` must be a finite number") as info:
        optimizers.SGD(learning_rate=HUGE)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("factor", [2.0, 1.5, 0.0])
def test_step_decay_decays(factor):
    with pytest.raises(ValueError, match=r"`factor` must be in \(0, 1\]"):
        callbacks.StepDecay(0.1, factor)


def test_step_decay_of_one_is_a_constant_rate():
    assert [callbacks.StepDecay(0.1, 1.0, every=1)(e) for e in range(3)] == [0.1] * 3


def test_a_warmed_up_schedule_returning_a_huge_int_is_a_value_error():
    warmup = callbacks.LinearWarmup(lambda epoch: HUGE, warmup_epochs=2)
    for epoch in (0, 3):
        with pytest.raises(ValueError, match="the schedule's rate at epoch"):
            warmup(epoch)


def _model(**options):
    model = NeuralNetwork("sgd", "cross_entropy", seed=0, **options)
    model.add(layers.Dense(2, input_shape=(3,)))
    model.add(layers.Activation("softmax"))
    return model


X = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
Y = np.arange(8) % 2


def test_a_schedule_returning_a_huge_int_stops_fit_with_a_value_error():
    model = _model()
    before = [dict(layer.params) for layer in model.layers]
    scheduler = callbacks.LearningRateScheduler(lambda epoch: HUGE)
    with pytest.raises(ValueError, match="the schedule's rate at epoch 0"):
        model.fit(X, Y, 1, 4, callbacks=[scheduler], verbose=0)
    for layer, params in zip(model.layers, before, strict=True):
        for key, value in params.items():
            np.testing.assert_array_equal(layer.params[key], value)


@pytest.mark.parametrize("stream", [3, "stderr", object()])
def test_progress_bar_needs_a_stream(stream):
    with pytest.raises(TypeError, match="`stream` must be a text stream"):
        callbacks.ProgressBar(stream=stream)


def test_progress_bar_writes_to_a_stream():
    out = io.StringIO()
    _model().fit(X, Y, 1, 4, callbacks=[callbacks.ProgressBar(stream=out, bar=False)], verbose=0)
    assert "epoch 1/1" in out.getvalue()


# -- augmentation --------------------------------------------------------------------


IMAGES = np.zeros((2, 1, 3, 3))


@pytest.mark.parametrize(
    "noise",
    [
        {"horizontal": [True, False]},
        {"horizontal": True},
        {"horizontal": np.array([0.5, 0.5])},
    ],
    ids=["list", "bool", "float-array"],
)
def test_random_flip_noise_must_be_bool_arrays(noise):
    layer = layers.RandomFlip()
    layer.initialize(seed=0, dtype="float64")
    with pytest.raises(TypeError, match="RandomFlip's noise 'horizontal' must be"):
        layer.forward_pass(IMAGES, noise=noise)


@pytest.mark.parametrize(
    "noise",
    [{"dy": [0, 1], "dx": [0, 1]}, {"dy": np.array([0.0, 1.0]), "dx": np.array([0, 1])}],
    ids=["lists", "float-array"],
)
def test_random_crop_noise_must_be_integer_arrays(noise):
    layer = layers.RandomCrop(1)
    layer.initialize(seed=0, dtype="float64")
    with pytest.raises(TypeError, match="RandomCrop's noise 'dy' must be"):
        layer.forward_pass(IMAGES, noise=noise)


@pytest.mark.parametrize("padding", [2**31, (0, 2**40), 2**16 + 1])
def test_random_crop_padding_is_bounded(padding):
    with pytest.raises(ValueError, match="`padding` must be at most 65536"):
        layers.RandomCrop(padding)


# -- paths given to callbacks --------------------------------------------------------


def _bad_paths(tmp_path):
    paths = {
        "folder": (str(tmp_path), "must be a file path, got the folder"),
        "too-long": (str(tmp_path / ("x" * 300)), "cannot write"),
        "missing-folder": (str(tmp_path / "no" / "m.npz"), "folder that does not exist"),
    }
    if os.path.isdir("/sys"):  # sysfs: no regular files can be made, not even by root
        paths["sys"] = ("/sys/run.npz", "cannot write")
    return paths


@pytest.mark.parametrize("kind", ["folder", "too-long", "missing-folder", "sys"])
@pytest.mark.parametrize(
    "make",
    [callbacks.CSVLogger, callbacks.ModelCheckpoint],
    ids=["CSVLogger", "ModelCheckpoint"],
)
def test_callback_paths_are_probed_when_made(make, kind, tmp_path):
    paths = _bad_paths(tmp_path)
    if kind not in paths:
        pytest.skip("no /sys on this system")
    path, match = paths[kind]
    with pytest.raises(ValueError, match=match):
        make(path)


def test_a_checkpoint_pattern_the_file_system_refuses_fails_before_the_first_epoch(tmp_path):
    model = _model()
    checkpoint = callbacks.ModelCheckpoint(str(tmp_path / ("m-{epoch}" + "x" * 300)))
    seen = []
    with pytest.raises(ValueError, match="cannot write"):
        model.fit(
            X,
            Y,
            2,
            4,
            callbacks=[checkpoint],
            verbose=0,
            callback=lambda epoch, logs: seen.append(epoch),
        )
    assert seen == []


def test_csv_logger_append_is_true_or_false(tmp_path):
    with pytest.raises(TypeError, match="`append` must be True or False"):
        callbacks.CSVLogger(tmp_path / "log.csv", append="yes")
