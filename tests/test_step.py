"""The training step, written once: pure, shared by fit and train_on_batch, compiled on JAX."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import to_np

from xconv import NeuralNetwork, training
from xconv.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 1, 5, 5))
    y = rng.integers(0, 3, n)
    return X, y


def _model(backend, *, jit_compile=None, optimizer="adam", seed=1):
    """Parameters, BatchNorm buffers, dropout noise and Adam's moments: every kind of state."""
    model = NeuralNetwork(
        optimizer, "cross_entropy", dtype="float64", seed=seed, backend=backend,
        jit_compile=jit_compile,
    )  # fmt: skip
    model.add(Conv2D(2, 3, input_shape=(1, 5, 5)))
    model.add(BatchNormalization(momentum=0.9))
    model.add(Activation("relu"))
    model.add(Dropout(0.3))
    model.add(Flatten())
    model.add(Dense(3))
    model.add(Activation("softmax"))
    return model


def _arrays(model):
    return [
        {
            f"{kind}/{k}": to_np(v)
            for kind in ("params", "buffers")
            for k, v in getattr(layer, kind).items()
        }
        for layer in model.layers
    ]


def test_a_step_is_a_pure_function_of_its_arrays(backend):
    model = _model(backend.name, jit_compile=False)
    X, y = _data()
    X, y = training.model_inputs(model, X), training.model_labels(model, y, 12)
    step = model.training_step
    state, steps, noise = step.state(), step.next_steps(), step.noise(12)
    before = _arrays(model)
    args = (model.layers, model.loss_function, model.optimizer, state, X, y, noise, steps, 0.01)
    first, second = training.train_step(*args), training.train_step(*args)
    # same arrays in, same arrays out; the model's own arrays untouched
    np.testing.assert_array_equal(to_np(first.loss), to_np(second.loss))
    for a, b in zip(first.state.params, second.state.params, strict=True):
        for key in a:
            np.testing.assert_array_equal(to_np(a[key]), to_np(b[key]))
    step.commit(state, steps)  # put back what the layers held
    for layer_before, layer_after in zip(before, _arrays(model), strict=True):
        for key in layer_before:
            np.testing.assert_array_equal(layer_before[key], layer_after[key])


def test_train_on_batch_and_fit_run_the_same_step(backend):
    X, y = _data()
    by_batch, by_fit = _model(backend.name), _model(backend.name)
    # fit's one epoch of one unshuffled batch is one train_on_batch
    by_batch.train_on_batch(X, y)
    by_fit.fit(X, y, 1, 12, shuffle=False)
    for a, b in zip(_arrays(by_batch), _arrays(by_fit), strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_a_skipped_run_leaves_the_model_as_it_was(backend):
    model = _model(backend.name)
    X, y = _data()
    before = _arrays(model)
    X, y = training.model_inputs(model, X), training.model_labels(model, y, 12)
    model.training_step.run(X, y)  # run, never committed
    for a, b in zip(before, _arrays(model), strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert model.optimizer.steps_taken("0.weight") == 0


def test_the_compiled_jax_step_equals_the_uncompiled_one(backend):
    if backend.name != "jax":
        pytest.skip("jax.jit compiles only JAX arrays; other backends run the step uncompiled")
    X, y = _data(30)
    compiled, eager = _model("jax"), _model("jax", jit_compile=False)
    assert compiled.training_step.compiles
    assert not eager.training_step.compiles
    histories = [m.fit(X, y, 3, 8) for m in (compiled, eager)]  # a smaller last batch too
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-12)
    for a, b in zip(_arrays(compiled), _arrays(eager), strict=True):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-9, err_msg=key)
    # a learning-rate change reaches the compiled step without recompiling it
    compiled_fn = compiled.training_step._compiled
    compiled.optimizer.learning_rate = eager.optimizer.learning_rate = 0.1
    compiled.train_on_batch(X[:8], y[:8])
    eager.train_on_batch(X[:8], y[:8])
    assert compiled.training_step._compiled is compiled_fn
    for a, b in zip(_arrays(compiled), _arrays(eager), strict=True):
        for key in a:
            np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-9, err_msg=key)


def test_jit_compile_must_be_a_bool_or_none():
    with pytest.raises(TypeError, match="`jit_compile` must be True, False or None, got 'yes'"):
        NeuralNetwork("sgd", "square_loss", jit_compile="yes")


def test_metrics_chosen_in_the_constructor_reach_the_history(backend):
    from xconv.losses import TopKAccuracy

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((20, 6)), rng.integers(0, 5, 20)
    model = NeuralNetwork(
        "sgd", "cross_entropy", dtype="float64", seed=0, backend=backend.name,
        metrics=["accuracy", TopKAccuracy(k=2)],
    )  # fmt: skip
    model.add(Dense(5, input_shape=(6,)))
    model.add(Activation("softmax"))
    # one batch, no shuffling: the epoch's scores are those of the model before the update
    before = model.evaluate(X, y, batch_size=20, return_dict=True)
    history = model.fit(
        X, y, epochs=1, batch_size=20, shuffle=False, validation_data=(X, y), verbose=0
    )
    assert sorted(history) == sorted(
        ["loss", "accuracy", "top_2_accuracy", "val_loss", "val_accuracy", "val_top_2_accuracy"]
    )
    assert history["top_2_accuracy"][0] == pytest.approx(before["top_2_accuracy"])
    assert history["loss"][0] == pytest.approx(before["loss"])
    after = model.evaluate(X, y, batch_size=20, return_dict=True)
    assert history["val_top_2_accuracy"][0] == pytest.approx(after["top_2_accuracy"])


def test_the_step_skips_the_first_layers_input_gradient(backend, monkeypatch):
    # nothing reads the gradient for the model's input: a first Conv2D skips its matrix
    # product and col2im, and its own gradients stay those of the full backward pass
    from xconv.functional import _conv
    from xconv.training import as_network

    model = _model(backend.name, jit_compile=False)
    X, y = _data()
    X, y = training.model_inputs(model, X), training.model_labels(model, y, 12)
    network = as_network(model.layers)
    noise = model.training_step.noise(12)  # one dropout mask for both passes
    results = {}
    calls = []
    real = _conv.backward_input
    monkeypatch.setattr(_conv, "backward_input", lambda *a, **k: calls.append(1) or real(*a, **k))
    for needed in (True, False):
        calls.clear()
        out = network.forward(X, training=True, noise=noise)
        grad = model.loss_function.gradient(y, out)
        back = network.backward(grad, input_gradient=needed)
        results[needed] = [{k: to_np(v) for k, v in layer.grads.items()} for layer in model.layers]
        assert (back is not None) is needed
        # (on torch and JAX the gradients are delegated, xconv's own col2im never runs)
        assert len(calls) == (1 if needed and backend.name not in ("torch", "jax") else 0)
    for full, skipped in zip(results[True], results[False], strict=True):
        assert full.keys() == skipped.keys()
        for key in full:
            np.testing.assert_array_equal(full[key], skipped[key])


def test_conv2d_gradients_without_the_input_gradient():
    from xconv.functional import ConvGeometry, conv2d_forward, conv2d_gradients

    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    geometry = ConvGeometry.build((6, 6), (3, 3), padding=1)
    out, kept = conv2d_forward(x, w, None, geometry=geometry, keep_columns=True)
    full = conv2d_gradients(np.ones_like(out), x, w, geometry=geometry)
    part = conv2d_gradients(
        np.ones_like(out), x, w, geometry=geometry, columns=kept, input_gradient=False
    )
    assert part[0] is None
    np.testing.assert_allclose(part[1], full[1], rtol=1e-12)
    np.testing.assert_allclose(part[2], full[2], rtol=1e-12)
