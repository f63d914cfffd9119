"""fit's keywords, the model's options and files, checked before any work (issue #27)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from xconv import NeuralNetwork, callbacks, layers, losses

X = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
Y = np.arange(8) % 2


def _model(**options):
    model = NeuralNetwork("sgd", "cross_entropy", seed=0, **options)
    model.add(layers.Dense(2, input_shape=(3,)))
    model.add(layers.Activation("softmax"))
    return model


def _epochs_run(model, **fit_options):
    """The epochs `fit` ran before it raised (the exception is re-raised)."""
    seen: list[int] = []
    model.fit(
        X, Y, 2, 4, verbose=0, callback=lambda epoch, logs: seen.append(epoch), **fit_options
    )
    return seen


# -- metrics -------------------------------------------------------------------------


def test_metrics_as_one_string_is_a_type_error():
    with pytest.raises(TypeError, match=r"`metrics` must be a list .*\['accuracy'\]"):
        _model(metrics="accuracy")


def test_two_metrics_of_one_history_key_are_refused():
    with pytest.raises(ValueError, match="two metrics named 'top_k_accuracy'"):
        _model(metrics=[losses.TopKAccuracy(5), "top_k_accuracy"])


def test_distinct_metrics_each_get_their_key():
    model = _model(metrics=["accuracy", losses.TopKAccuracy(1)])
    logs = model.evaluate(X, Y, return_dict=True)
    assert {"loss", "accuracy", "top_1_accuracy"} <= set(logs)


# -- fit(checkpoint=...) -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["folder", "sys", "too-long", "missing-folder"])
def test_a_checkpoint_path_that_cannot_be_written_fails_before_training(kind, tmp_path):
    path = {
        "folder": tmp_path,
        "sys": "/sys/run.ckpt",
        "too-long": tmp_path / ("r" * 300),
        "missing-folder": tmp_path / "no" / "run.ckpt",
    }[kind]
    model = _model()
    before = model.predict(X)
    with pytest.raises(ValueError, match="`checkpoint`"):
        _epochs_run(model, checkpoint=path)
    np.testing.assert_array_equal(model.predict(X), before)


def test_a_checkpoint_that_is_not_a_path_is_a_type_error():
    with pytest.raises(TypeError, match="`checkpoint` must be a file path"):
        _model().fit(X, Y, 1, 4, verbose=0, checkpoint=3)


def test_a_nul_in_a_path_to_write_is_a_value_error_naming_it(tmp_path):
    # mkstemp's own "embedded null byte" named no argument
    path = str(tmp_path / "a\x00b")
    with pytest.raises(ValueError, match="`checkpoint` must not hold a NUL character"):
        _model().fit(X, Y, 1, 4, verbose=0, checkpoint=path)
    for make, name in [
        (callbacks.Checkpoint, "path"),
        (callbacks.CSVLogger, "filename"),
        (callbacks.ModelCheckpoint, "filepath"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}` must not hold a NUL character"):
            make(path)


def test_checkpoint_names_its_own_argument(tmp_path):
    # it said `checkpoint`, fit's name for it
    with pytest.raises(ValueError, match=r"`path` .* is in a folder that does not exist"):
        callbacks.Checkpoint(tmp_path / "no" / "run.ckpt")


@pytest.mark.parametrize("kind", ["missing", "folder", "nul", "too-long"])
def test_a_resume_path_that_cannot_be_read_fails_before_training(kind, tmp_path):
    path = {
        "missing": tmp_path / "missing.ckpt",
        "folder": tmp_path,
        "nul": str(tmp_path / "a\x00b"),
        "too-long": tmp_path / ("r" * 300),
    }[kind]
    error = FileNotFoundError if kind == "missing" else ValueError
    model = _model()
    before = model.predict(X)
    with pytest.raises(error, match="`resume`"):
        _epochs_run(model, resume=path)
    np.testing.assert_array_equal(model.predict(X), before)
    with pytest.raises(error, match="`path`"):  # not `resume`, fit's name for it
        callbacks.Resume(path)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda v: _model().fit(X, Y, 1, 4, verbose=0, on_nonfinite=v), "on_nonfinite"),
        (lambda v: callbacks.EarlyStopping(mode=v), "mode"),
        (lambda v: callbacks.ReduceLROnPlateau(mode=v), "mode"),
    ],
)
def test_a_choice_given_an_array_is_refused_by_name(make, name):
    # `value not in (...)` was NumPy's "truth value of an array is ambiguous"
    with pytest.raises(ValueError, match=f"`{name}` must be"):
        make(np.array([1.0, 2.0]))


# -- fit(verbose=...) ----------------------------------------------------------------


@pytest.mark.parametrize(
    "verbose", [np.array([1, 2]), np.array(1), [1], True, 1.0, "yes"], ids=repr
)
def test_verbose_must_be_one_of_its_values(verbose):
    with pytest.raises(ValueError, match=r"`verbose` must be 'auto', 0, 1 or 2, got"):
        _model().fit(X, Y, 1, 4, verbose=verbose)


def test_verbose_takes_numpy_integers():
    assert _model().fit(X, Y, 1, 4, verbose=np.int64(0))["loss"]


# -- validation_data -----------------------------------------------------------------


@pytest.mark.parametrize("where", ["fit", "constructor"])
def test_validation_data_without_samples_fails_before_training(where):
    empty = (np.zeros((0, 3), dtype=np.float32), np.zeros(0, dtype=np.int64))
    model = _model(validation_data=empty) if where == "constructor" else _model()
    options = {"validation_data": empty} if where == "fit" else {}
    before = model.predict(X)
    with pytest.raises(ValueError, match="`validation_data` must hold at least one sample"):
        _epochs_run(model, **options)
    np.testing.assert_array_equal(model.predict(X), before)


# -- loading ---------------------------------------------------------------------------


@pytest.mark.parametrize("error", [RuntimeError, OSError, KeyError, ZeroDivisionError])
def test_a_registered_layer_failing_to_build_on_load_is_a_value_error(error, tmp_path):
    @layers.register(name=f"HardeningFragile{error.__name__}")
    class Fragile(layers.Dense):
        fail = False

        def __init__(self, *args, **kwargs):
            if Fragile.fail:
                raise error("the layer's own check")
            super().__init__(*args, **kwargs)

    model = NeuralNetwork("sgd", "square_loss")
    model.add(Fragile(2, input_shape=(3,)))
    model.save(tmp_path / "m.npz")
    Fragile.fail = True
    with pytest.raises(ValueError, match=rf"m\.npz: .*Fragile.*raised {error.__name__}"):
        NeuralNetwork.load(tmp_path / "m.npz")


def test_a_loaded_graph_whose_one_input_layer_lists_two_sources_is_refused(tmp_path):
    x = layers.Input((1, 4, 4))
    first = layers.Conv2D(2, 3)(x)
    out = layers.Conv2D(2, 3)(first)
    NeuralNetwork("sgd", "square_loss", inputs=x, outputs=out).save(tmp_path / "g.npz")
    with zipfile.ZipFile(tmp_path / "g.npz") as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    config = json.loads(np.load(io.BytesIO(members["__config__.npy"])).tobytes())
    config["graph"]["inputs"][1] = [0, 1]  # the second Conv2D reads the input and the first
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(config).encode(), np.uint8), allow_pickle=False)
    members["__config__.npy"] = buffer.getvalue()
    with zipfile.ZipFile(tmp_path / "g.npz", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"g\.npz: .*layer 1 .*Conv2D.* reads one tensor"):
        NeuralNetwork.load(tmp_path / "g.npz")


@pytest.mark.parametrize("kind", ["folder", "sys", "too-long"])
def test_save_to_a_path_that_cannot_be_written_is_a_value_error(kind, tmp_path):
    path = {"folder": tmp_path, "sys": "/sys/m.npz", "too-long": tmp_path / ("m" * 300)}[kind]
    with pytest.raises(ValueError, match="`path`"):
        _model().save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["folder", "too-long"])
def test_load_from_a_folder_or_an_impossible_name_is_a_value_error(kind, tmp_path):
    path = {"folder": tmp_path, "too-long": tmp_path / ("m" * 300)}[kind]
    with pytest.raises(ValueError, match="`path`"):
        NeuralNetwork.load(path)


def test_load_of_a_missing_file_stays_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        NeuralNetwork.load(tmp_path / "none.npz")


# -- callbacks: counts a schedule computes with, and their containers -----------------


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: callbacks.StepDecay(0.1)(10**400), "epoch"),
        (lambda: callbacks.LinearWarmup(callbacks.StepDecay(0.1), 2)(10**400), "epoch"),
        (lambda: callbacks.LinearWarmup(callbacks.StepDecay(0.1), 10**400), "warmup_epochs"),
        (lambda: callbacks.OneCycle(0.1, total_steps=10**400), "total_steps"),
        (lambda: callbacks.OneCycle(0.1, total_steps=10).rate(10**400), "step"),
    ],
)
def test_a_count_beyond_float_is_a_value_error_naming_it(call, name):
    # they were OverflowError "int too large to convert to float", naming nothing
    with pytest.raises(ValueError, match=f"`{name}` must be at most 2\\*\\*53"):
        call()


def test_linear_warmup_keeps_a_numpy_count_as_a_python_int():
    # np.uint8(255) + 1 wrapped to 0 in the warmup's division
    warmup = callbacks.LinearWarmup(callbacks.StepDecay(0.3), np.uint8(255))
    assert type(warmup.warmup_epochs) is int
    assert warmup(0) == pytest.approx(0.3 / 256)


@pytest.mark.parametrize("verbose", [np.array([1.0, 2.0]), "yes", 2])
def test_learning_rate_scheduler_verbose_is_checked(verbose):
    with pytest.raises(TypeError, match="`verbose` must be True, False, 1 or 0"):
        callbacks.LearningRateScheduler(callbacks.StepDecay(0.1), verbose=verbose)


def test_learning_rate_scheduler_takes_keras_verbose_one():
    assert callbacks.LearningRateScheduler(callbacks.StepDecay(0.1), verbose=1).verbose is True


@pytest.mark.parametrize("given", [None, 3, "ab", [1], [callbacks.TerminateOnNaN(), object()]])
def test_callback_list_refuses_what_is_not_callbacks(given):
    # list(None) was a raw TypeError; a list of ints an AttributeError in fit
    with pytest.raises(TypeError, match="`callbacks` must"):
        callbacks.CallbackList(given)
