"""`Layer.initialize` is a template: checks, generator and backend once, then `build`.

Also: a layer's forward pass infers its namespace once, and custom layers written the
old way (overriding `initialize`, calling ``super()`` first) still work.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import pytest
from helpers import to_np, to_xp

import xconv.layers._base as layers_base
from xconv import NeuralNetwork
from xconv.layers import (
    BatchNormalization,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    Dropout,
    Flatten,
    Layer,
    LayerNormalization,
    SeparableConv2D,
)
from xconv.layers._initializers import initial_weights


class Shift(Layer):
    """A new-style layer: one learned shift per feature, made in `build`."""

    def __init__(self, start: float = 0.5, input_shape: tuple[int, ...] | None = None) -> None:
        self.start = start
        self.built_with: tuple[Any, ...] | None = None
        super().__init__(input_shape)

    def build(self, input_shape: tuple[int, ...], /, *, rng: Any, dtype: Any) -> None:
        self.built_with = (input_shape, self.backend, dtype)
        ones = self.make_weight(input_shape, dtype=dtype, initializer="ones")
        self.params = {"shift": ones * self.start}
        # (a buffer, to show a random draw: saved with the layer, not learned)
        self.buffers = {
            "noise": self.make_weight(
                input_shape, dtype=dtype, initializer="he_normal", rng=rng, fan_in=4, fan_out=4
            )
        }

    def forward_pass(self, X: Any, training: bool = True) -> Any:
        self.ensure_initialized(X)
        self.check_input(X, shift=self.params["shift"])
        return X + self.params["shift"]

    def backward_pass(self, accum_grad: Any) -> Any:
        xp = array_api_compat.array_namespace(accum_grad)
        self.grads = {"shift": xp.sum(accum_grad, axis=0)}
        return accum_grad


class OldStyleScale(Layer):
    """A custom layer as docs/custom-layer.md once had them: its own `initialize`."""

    def __init__(self, factor: float = 2.0, input_shape: tuple[int, ...] | None = None) -> None:
        self.factor = factor
        super().__init__(input_shape)

    def initialize(self, *, seed: Any = 0, dtype: Any = "float32", backend: Any = None) -> None:
        super().initialize(seed=seed, dtype=dtype, backend=backend)
        assert self.backend is not None
        self.params = {"scale": self.backend.asarray(np.full((1,), self.factor), dtype=dtype)}

    def forward_pass(self, X: Any, training: bool = True) -> Any:
        self.check_input(X)
        self._input = X
        return X * self.params["scale"]

    def backward_pass(self, accum_grad: Any) -> Any:
        xp = array_api_compat.array_namespace(accum_grad)
        self.grads = {"scale": xp.reshape(xp.sum(accum_grad * self._input), (1,))}
        return accum_grad * self.params["scale"]


def test_build_gets_the_input_shape_backend_and_dtype(backend):
    layer = Shift(input_shape=(3,))
    layer.initialize(seed=1, dtype="float64", backend=backend)
    assert layer.built_with == ((3,), backend, "float64")
    assert layer.backend is backend
    np.testing.assert_array_equal(to_np(layer.params["shift"]), [0.5, 0.5, 0.5])
    assert layer.grads == {}


def test_build_draws_from_the_generator_of_the_seed(backend):
    a, b = Shift(input_shape=(4,)), Shift(input_shape=(4,))
    a.initialize(seed=7, dtype="float64", backend=backend)
    b.initialize(seed=np.random.default_rng(7), dtype="float64", backend="numpy")
    np.testing.assert_array_equal(to_np(a.buffers["noise"]), to_np(b.buffers["noise"]))


def test_no_built_in_layer_overrides_initialize():
    """The shared preamble (input shape, seed, backend) is written once, in
    `Layer.initialize`; every built-in layer writes `build` instead."""
    import inspect

    import xconv.layers as layers

    classes = [
        c
        for name in layers.__all__
        if inspect.isclass(c := getattr(layers, name)) and issubclass(c, layers_base.Layer)
    ]
    assert len(classes) >= 20, classes
    overriding = [
        c.__name__ for c in classes if c is not layers_base.Layer and "initialize" in vars(c)
    ]
    assert overriding == [], overriding


def test_a_layer_with_a_build_needs_its_input_shape():
    for layer in (Shift(), Conv2D(2, 3), Dense(2), LayerNormalization(), BatchNormalization()):
        with pytest.raises(ValueError, match=rf"{layer.layer_name()} needs its input shape"):
            layer.initialize()
        assert not layer.initialized


@pytest.mark.parametrize("layer", [Dropout(0.5), Flatten()], ids=["Dropout", "Flatten"])
def test_a_layer_without_a_build_initializes_without_an_input_shape(layer):
    layer.initialize(seed=0)
    assert layer.initialized
    assert layer.params == {}


def test_the_seed_is_checked_once_for_every_layer():
    for layer in (Shift(input_shape=(2,)), Dropout(), Flatten(), Conv2D(2, 3, (1, 4, 4))):
        with pytest.raises(TypeError, match="`seed` must be a non-negative integer"):
            layer.initialize(seed=-1)


def test_stochastic_layers_keep_the_generator_of_the_seed():
    a, b = Dropout(0.5, input_shape=(16,)), Dropout(0.5, input_shape=(16,))
    a.initialize(seed=3)
    b.initialize(seed=np.random.default_rng(3))
    assert a.random_state() == b.random_state()
    np.testing.assert_array_equal(a.sample_noise(2)["uniform"], b.sample_noise(2)["uniform"])


def test_built_in_weights_are_the_initializers_draws_from_the_seed():
    # the template hands build the generator made from the seed, and nothing else
    # draws from it first: Conv2D's weight is initial_weights' draw from that seed
    layer = Conv2D(4, 3, input_shape=(2, 5, 5), kernel_initializer="he_uniform")
    layer.initialize(seed=11, dtype="float64", backend="numpy")
    expected = initial_weights(
        "he_uniform",
        (4, 2, 3, 3),
        fan_in=18,
        fan_out=36,
        rng=np.random.default_rng(11),
        backend=layer.backend,
        dtype="float64",
    )
    np.testing.assert_array_equal(layer.params["weight"], expected)
    np.testing.assert_array_equal(layer.params["bias"], np.zeros(4))


def test_separable_conv_builds_both_steps_from_one_generator():
    layer = SeparableConv2D(6, 3, input_shape=(2, 5, 5))
    layer.initialize(seed=2)
    rng = np.random.default_rng(2)  # the depthwise step draws first, then the 1x1 step
    depthwise = DepthwiseConv2D(3, input_shape=(2, 5, 5), use_bias=False)
    depthwise.initialize(seed=rng)
    pointwise = Conv2D(6, 1, input_shape=(2, 5, 5), padding="valid")
    pointwise.initialize(seed=rng)
    assert list(layer.params) == ["depthwise_weight", "pointwise_weight", "bias"]
    np.testing.assert_array_equal(layer.params["depthwise_weight"], depthwise.params["weight"])
    np.testing.assert_array_equal(layer.params["pointwise_weight"], pointwise.params["weight"])


def test_make_weight_needs_a_backend_and_a_generator_for_random_initializers():
    layer = Shift(input_shape=(2,))
    with pytest.raises(RuntimeError, match="after initialize"):
        layer.make_weight((2,), dtype="float32")
    layer.initialize()
    with pytest.raises(ValueError, match="draws from `rng`"):
        layer.make_weight((2,), dtype="float32", initializer="he_normal")
    assert layer.make_weight((), dtype="float32", initializer="ones") == 1


def test_an_old_style_custom_layer_that_overrides_initialize_still_works(xp, backend):
    layer = OldStyleScale(3.0, input_shape=(2,))
    layer.initialize(seed=0, dtype="float64", backend=backend)
    assert layer.backend is backend
    X = to_xp(np.ones((4, 2)), xp, "float64")
    np.testing.assert_array_equal(to_np(layer.forward_pass(X)), np.full((4, 2), 3.0))
    np.testing.assert_array_equal(to_np(layer.backward_pass(X)), np.full((4, 2), 3.0))
    assert to_np(layer.grads["scale"]).tolist() == [
        8.0
    ]  # the sum of the inputs times the gradient


def test_old_and_new_style_custom_layers_train_in_a_model(backend, tmp_path):
    model = NeuralNetwork("sgd", "mse", seed=0, dtype="float64", backend=backend)
    model.add(Dense(3, input_shape=(2,)))
    model.add(OldStyleScale(2.0))
    model.add(Shift())
    history = model.fit(np.ones((6, 2)), np.zeros((6, 3)), n_epochs=2, batch_size=3)
    assert len(history["loss"]) == 2
    assert set(model.layers[2].params) == {"shift"}
    assert model.layers[1].params["scale"].shape == (1,)


class _CountingNamespaceOf:
    def __init__(self, wrapped: Any) -> None:
        self.wrapped, self.calls = wrapped, 0

    def __call__(self, **arrays: Any) -> Any:
        self.calls += 1
        return self.wrapped(**arrays)


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: Conv2D(3, 3, input_shape=(2, 5, 5)), (2, 2, 5, 5)),
        (lambda: Dense(3, input_shape=(4,)), (2, 4)),
        (lambda: Flatten(input_shape=(2, 3)), (2, 2, 3)),
    ],
    ids=["Conv2D", "Dense", "Flatten"],
)
def test_a_forward_pass_infers_the_namespace_once_in_the_layer(monkeypatch, make, shape):
    layer = make()
    layer.initialize(seed=0, dtype="float64", backend="numpy")
    counting = _CountingNamespaceOf(layers_base.namespace_of)
    monkeypatch.setattr(layers_base, "namespace_of", counting)
    for module in ("_conv", "_dense", "_reshape"):
        monkeypatch.setattr(f"xconv.layers.{module}.namespace_of", counting)
    layer.forward_pass(np.ones(shape))
    assert counting.calls == 1


def test_check_input_checks_the_arrays_the_batch_meets():
    layer = Conv2D(3, 3, input_shape=(2, 5, 5))
    layer.initialize(seed=0, dtype="float32")
    with pytest.raises(TypeError, match="arrays of different dtypes"):
        layer.forward_pass(np.ones((1, 2, 5, 5), dtype=np.float64))
    with pytest.raises(ValueError, match=r"`X` must have shape \(N, 2, 5, 5\)"):
        layer.forward_pass(np.ones((1, 2, 4, 5), dtype=np.float32))
