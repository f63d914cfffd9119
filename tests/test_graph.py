"""Graph models (the functional API): wiring, backward through forks and merges, files.

References: PyTorch autograd in float64 on the same weights, for a residual graph and
a concatenating one, on every backend.
"""

from __future__ import annotations

import json
from typing import Any

import array_api_compat
import numpy as np
import pytest
from helpers import requires_torch_reason, to_np, to_xp, torch

from xconv import Input, NeuralNetwork, training
from xconv.layers import (
    Activation,
    Add,
    BatchNormalization,
    Concatenate,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Layer,
    register,
)
from xconv.losses import CrossEntropy
from xconv.optimizers import SGD
from xconv.training import Network

needs_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)


# -- two graphs and their PyTorch twins ------------------------------------------------


def _residual() -> tuple[Any, Any]:
    """x -> conv-relu -> conv, plus x itself (identity shortcut), relu, dense."""
    x = Input((2, 6, 6))
    h = Conv2D(3, 3, activation="relu")(x)  # 0
    h = Conv2D(2, 3)(h)  # 1
    y = Activation("relu")(Add()([x, h]))  # 2, 3: x is read twice
    return x, Dense(4)(Flatten()(y))  # 4, 5


def _torch_residual(p: list[dict[str, Any]], x: Any) -> Any:
    F = torch.nn.functional
    h = F.relu(F.conv2d(x, p[0]["weight"], p[0]["bias"], padding=1))
    h = F.conv2d(h, p[1]["weight"], p[1]["bias"], padding=1)
    y = F.relu(x + h)
    return y.flatten(1) @ p[5]["weight"] + p[5]["bias"]


def _concatenating() -> tuple[Any, Any]:
    """Three branches joined on the channels, and a branch read by two merges."""
    x = Input((2, 6, 6))
    a = Conv2D(3, 3, activation="tanh")(x)  # 0
    b = Conv2D(2, 1, stride=1)(x)  # 1
    c = Concatenate()([a, b, x])  # 2: 7 channels
    d = Conv2D(3, 3, stride=2)(c)  # 3
    e = Add()([d, Conv2D(3, 1, stride=2)(a)])  # 4, 5: `a` feeds three layers
    return x, Dense(4)(GlobalAveragePooling2D()(e))  # 6, 7


def _torch_concatenating(p: list[dict[str, Any]], x: Any) -> Any:
    F = torch.nn.functional
    a = torch.tanh(F.conv2d(x, p[0]["weight"], p[0]["bias"], padding=1))
    b = F.conv2d(x, p[1]["weight"], p[1]["bias"])
    c = torch.cat([a, b, x], dim=1)
    # 'same' at stride 2 on 6x6 pads bottom/right only
    d = F.conv2d(F.pad(c, (0, 1, 0, 1)), p[3]["weight"], p[3]["bias"], stride=2)
    e = d + F.conv2d(a, p[4]["weight"], p[4]["bias"], stride=2)
    return e.mean(dim=(2, 3)) @ p[7]["weight"] + p[7]["bias"]


GRAPHS = {
    "residual": (_residual, _torch_residual),
    "concatenating": (_concatenating, _torch_concatenating),
}


def _graph_model(build: Any, backend: Any, **options: Any) -> NeuralNetwork:
    x, y = build()
    options = {"dtype": "float64", "seed": 0, "backend": backend, **options}
    return NeuralNetwork(
        SGD(learning_rate=0.1), CrossEntropy(from_logits=True), inputs=x, outputs=y, **options
    )


def _data(n: int = 5, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 6, 6)), rng.integers(0, 4, n)


@needs_torch
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_graph_backward_matches_torch_autograd(xp, backend, name):
    build, reference = GRAPHS[name]
    model = _graph_model(build, backend)
    X, labels = _data()
    one_hot = np.eye(4)[labels]
    params = [dict(layer.params) for layer in model.layers]
    buffers = [dict(layer.buffers) for layer in model.layers]
    grads, _, loss, _ = training.gradients(
        model.network,
        model.loss_function,
        params,
        buffers,
        to_xp(X, xp),
        to_xp(one_hot, xp),
        [None] * len(model.layers),
    )
    # the same network in PyTorch, from the same weights
    tp = [
        {k: torch.tensor(to_np(v), requires_grad=True) for k, v in layer.params.items()}
        for layer in model.layers
    ]
    tx = torch.tensor(X, requires_grad=True)
    logits = reference(tp, tx)
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    expected.backward()
    np.testing.assert_allclose(float(loss), expected.item(), rtol=1e-12)
    for i, layer in enumerate(model.layers):
        assert sorted(grads[i]) == sorted(layer.params)
        for key, grad in grads[i].items():
            np.testing.assert_allclose(
                to_np(grad), tp[i][key].grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{i}.{key}"
            )
    # the input's gradient: the sum over every layer that reads it
    network = model.network
    out = network.forward(to_xp(X, xp), training=True)
    grad_input = network.backward(model.loss_function.gradient(to_xp(one_hot, xp), out))
    np.testing.assert_allclose(to_np(grad_input), tx.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_training_step_leaves_out_the_batchs_gradient(xp, backend, monkeypatch):
    """A Conv2D reading the network's input skips its input's gradient in a training
    step (nobody reads it), with the same parameter gradients; asked for, it is there."""
    import xconv.layers._conv as conv_layer

    asked: list[bool] = []
    real = conv_layer.conv2d_gradients

    def spy(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs.get("input_gradient", True))
        return real(*args, **kwargs)

    monkeypatch.setattr(conv_layer, "conv2d_gradients", spy)
    model = NeuralNetwork(
        SGD(), CrossEntropy(from_logits=True), seed=0, backend=backend, dtype="float64"
    )
    model.add(Conv2D(3, 3, input_shape=(2, 6, 6)))
    model.add(Activation("relu"))
    model.add(Conv2D(2, 3))
    model.add(Flatten())
    model.add(Dense(4))
    X, labels = _data()
    X, one_hot = to_xp(X, xp), to_xp(np.eye(4)[labels], xp)
    params = [dict(layer.params) for layer in model.layers]
    buffers = [dict(layer.buffers) for layer in model.layers]
    noise = [None] * len(model.layers)
    loss = model.loss_function
    grads, *_ = training.gradients(model.network, loss, params, buffers, X, one_hot, noise)
    assert asked == [True, False]  # backwards: the second Conv2D, then the first
    out = model.network.forward(X, training=True)
    assert model.network.backward(loss.gradient(one_hot, out)) is not None
    assert asked[2:] == [True, True]
    for key, grad in grads[0].items():
        np.testing.assert_allclose(to_np(grad), to_np(model.layers[0].grads[key]), rtol=1e-12)


def test_graph_layers_are_the_users_in_call_order_and_trains(xp, backend):
    x = Input((2, 6, 6))
    first, second, shortcut = Conv2D(2, 3), Conv2D(2, 3), Conv2D(2, 1)
    # the shortcut is called first, though it joins last
    s = shortcut(x)
    y = Dense(3)(Flatten()(Add()([second(first(x)), s])))
    model = NeuralNetwork("sgd", "cross_entropy", inputs=x, outputs=y, seed=0, backend=backend)
    assert model.layers[:3] == [shortcut, first, second]
    assert model.network.wiring == ((0,), (0,), (2,), (3, 1), (4,), (5,))
    X, labels = _data(6)
    before = to_np(model.layers[0].params["weight"])
    history = model.fit(X, labels, n_epochs=2, batch_size=3)
    assert len(history["loss"]) == 2
    assert all(np.isfinite(history["loss"]))
    assert not np.array_equal(before, to_np(model.layers[0].params["weight"]))
    loss, accuracy = model.evaluate(X, labels)
    assert np.isfinite(loss)
    assert 0 <= accuracy <= 1
    assert model.predict(X).shape == (6, 3)


def test_compiled_graph_step_equals_the_eager_step(xp, backend):
    if backend.name != "jax":
        pytest.skip("jax.jit compiles only JAX arrays; other backends run the step uncompiled")
    X, labels = _data(4)
    results = []
    for compile in (True, False):
        model = _graph_model(_concatenating, backend, jit_compile=compile)
        results.append(
            (
                model.train_on_batch(X, labels),
                [
                    to_np(layer.params["weight"])
                    for layer in model.layers
                    if "weight" in layer.params
                ],
            )
        )
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-10)
    for a, b in zip(results[0][1], results[1][1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_summary_shows_each_layers_inputs(capsys):
    model = _graph_model(_residual, "numpy")
    model.summary()
    text = capsys.readouterr().out
    assert "Inputs" in text
    assert "| input, 2 |" in text  # the Add reads the input and layer 2
    assert "Total Parameters: 405" in text


# -- files ------------------------------------------------------------------------------


def test_saved_graph_loads_and_predicts_bit_identically(xp, backend, tmp_path):
    model = _graph_model(_concatenating, backend)
    X, labels = _data(6)
    model.fit(X, labels, n_epochs=1, batch_size=3)
    model.save(tmp_path / "graph.npz")
    loaded = NeuralNetwork.load(tmp_path / "graph.npz", backend=backend)
    assert [type(a) for a in loaded.layers] == [type(b) for b in model.layers]
    assert loaded.network.wiring == model.network.wiring
    assert loaded.get_config() == model.get_config()
    assert loaded.loss_function.from_logits
    assert np.array_equal(to_np(loaded.predict(X)), to_np(model.predict(X)))


def test_graph_checkpoints_resume_exactly(tmp_path):
    X, labels = _data(8)

    def build() -> NeuralNetwork:
        x = Input((2, 6, 6))
        h = BatchNormalization()(Conv2D(2, 3)(x))
        h = Dropout(0.3)(Activation("relu")(h))
        y = Dense(4)(Flatten()(Concatenate()([h, x])))
        return NeuralNetwork(
            SGD(0.1, momentum=0.9),
            CrossEntropy(from_logits=True),
            inputs=x,
            outputs=y,
            dtype="float64",
            seed=2,
        )

    whole = build()
    expected = whole.fit(X, labels, n_epochs=3, batch_size=3)
    first = build()
    first.fit(X, labels, n_epochs=1, batch_size=3, checkpoint=tmp_path / "ckpt.npz")
    resumed = build()
    history = resumed.fit(X, labels, n_epochs=3, batch_size=3, resume=tmp_path / "ckpt.npz")
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-12)
    for a, b in zip(resumed.layers, whole.layers, strict=True):
        for key in a.params:
            np.testing.assert_allclose(to_np(a.params[key]), to_np(b.params[key]), rtol=1e-12)


@register
class Scale(Layer):
    """A custom layer for the tests: multiplies by a learned scalar."""

    def __init__(self, start: float = 2.0, input_shape: tuple[int, ...] | None = None) -> None:
        self.start = start
        super().__init__(input_shape)

    def initialize(self, *, seed: Any = 0, dtype: Any = "float32", backend: Any = None) -> None:
        super().initialize(seed=seed, dtype=dtype, backend=backend)
        assert self.backend is not None
        self.params = {"scale": self.backend.asarray(np.full((1,), self.start), dtype=dtype)}

    def forward_pass(self, X: Any, training: bool = True) -> Any:
        self._input = X
        return X * self.params["scale"]

    def backward_pass(self, accum_grad: Any) -> Any:
        xp = array_api_compat.array_namespace(accum_grad)
        self.grads = {"scale": xp.reshape(xp.sum(accum_grad * self._input), (1,))}
        return accum_grad * self.params["scale"]


def test_registered_custom_layer_saves_and_loads(xp, backend, tmp_path):
    x = Input((3,))
    y = Dense(2)(Add()([x, Scale(start=0.5)(x)]))
    model = NeuralNetwork("sgd", "mse", inputs=x, outputs=y, dtype="float64", backend=backend)
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), n_epochs=1, batch_size=2)
    model.save(tmp_path / "custom.npz")
    loaded = NeuralNetwork.load(tmp_path / "custom.npz", backend=backend)
    assert isinstance(loaded.layers[0], Scale)
    assert loaded.layers[0].start == 0.5
    X = np.random.default_rng(0).standard_normal((5, 3))
    assert np.array_equal(to_np(loaded.predict(X)), to_np(model.predict(X)))


def test_unregistered_custom_layer_fails_to_load_with_advice(tmp_path):
    class Unknown(Scale):
        pass

    model = NeuralNetwork("sgd", "mse", seed=0)
    model.add(Unknown(input_shape=(3,)))
    model.save(tmp_path / "unknown.npz")
    with pytest.raises(ValueError, match="unknown layer class 'Unknown': register"):
        NeuralNetwork.load(tmp_path / "unknown.npz")


def test_register_refuses_a_taken_name_and_non_layers():
    with pytest.raises(ValueError, match=r"'Dense' belongs to xconv\.layers\._dense\.Dense"):

        @register
        class Dense(Layer):  # the point of the test
            pass

    with pytest.raises(TypeError, match="only Layer subclasses"):
        register(int)


def test_files_of_stacks_with_a_loss_class_name_still_load(tmp_path):
    model = NeuralNetwork("adam", "cross_entropy", seed=0)
    model.add(Dense(3, input_shape=(2,)))
    model.save(tmp_path / "old.npz")
    # rewrite the configuration as files before graphs were: the loss by class name
    with np.load(tmp_path / "old.npz") as data:
        arrays = {key: data[key] for key in data.files}
    config = json.loads(arrays["__config__"].tobytes())
    config["loss"] = "CrossEntropy"
    del config["metrics"]
    arrays["__config__"] = np.frombuffer(json.dumps(config).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **arrays)
    loaded = NeuralNetwork.load(tmp_path / "old.npz")
    assert loaded.get_config()["loss"] == {"class": "CrossEntropy", "eps": None}
    assert np.array_equal(loaded.predict(np.ones((2, 2))), model.predict(np.ones((2, 2))))


# -- misuse ---------------------------------------------------------------------------


def test_graph_misuse_is_a_clear_error():
    x = Input((2, 4, 4))
    conv = Conv2D(2, 3)
    y = conv(x)
    with pytest.raises(ValueError, match="connected already; a layer runs once"):
        conv(x)
    with pytest.raises(TypeError, match="takes a list of two or more symbolic tensors"):
        Add()(y)
    with pytest.raises(ValueError, match="Add's inputs must have one shape"):
        Add()([x, Conv2D(3, 3)(x)])
    with pytest.raises(ValueError, match="must agree on every axis but `axis`"):
        Concatenate()([x, Conv2D(2, 3, stride=2)(x)])
    with pytest.raises(ValueError, match="the batch axis 0 cannot be joined"):
        Concatenate(axis=0)([x, y])
    with pytest.raises(ValueError, match="given input_shape \\(3, 4, 4\\), but it is called"):
        Conv2D(2, 3, input_shape=(3, 4, 4))(x)
    with pytest.raises(TypeError, match="use forward_pass\\(\\) on arrays"):
        Conv2D(2, 3)(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ValueError, match="depends on an Input of shape \\(3,\\) that is not"):
        NeuralNetwork(
            "sgd", "mse", inputs=x, outputs=Add()([Flatten()(y), Dense(32)(Input((3,)))])
        )
    with pytest.raises(ValueError, match=r"must be an xconv\.Input"):
        NeuralNetwork("sgd", "mse", inputs=y, outputs=Flatten()(y))
    with pytest.raises(TypeError, match="`outputs` must be one symbolic tensor"):
        NeuralNetwork("sgd", "mse", inputs=x, outputs=None)
    with pytest.raises(ValueError, match="`shape` must be a non-empty tuple"):
        Input((0, 3))
    model = NeuralNetwork("sgd", "mse", inputs=x, outputs=Flatten()(Conv2D(1, 1)(x)))
    with pytest.raises(ValueError, match="this is a graph model"):
        model.add(Dense(2))


def test_network_checks_its_wiring():
    layers = [Dense(2, input_shape=(2,)), Dense(2, input_shape=(2,))]
    with pytest.raises(ValueError, match="must read tensors made before it"):
        Network(layers, [[0], [2]])
    with pytest.raises(ValueError, match="merge layers read two or more"):
        Network(layers, [[0], [0, 1]])
    assert Network(layers).is_chain
    assert not Network(layers, [[0], [0]], 2).is_chain


def test_graph_model_moves_to_another_backend(xp, backend):
    model = _graph_model(_concatenating, "numpy")
    X, _ = _data(3)
    expected = model.predict(X)
    model.to(backend)
    assert model.network.layers is model.layers
    np.testing.assert_allclose(to_np(model.predict(X)), expected, rtol=1e-12, atol=1e-14)
