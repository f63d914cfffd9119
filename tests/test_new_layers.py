"""The layers graph models brought: global pooling, LayerNormalization, GELU, SiLU,
depthwise and separable convolutions, merges, the activation= shortcut, initializers.

Each is checked against PyTorch (float64) and against central finite differences, on
every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import layer_gradient_errors, requires_torch_reason, to_np, to_xp, torch

from xconv.backends import get
from xconv.layers import (
    GELU,
    INITIALIZERS,
    Activation,
    Add,
    Concatenate,
    Conv2D,
    Dense,
    DepthwiseConv2D,
    GlobalAveragePooling2D,
    GlobalMaxPooling2D,
    LayerNormalization,
    SeparableConv2D,
    SiLU,
)

needs_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)
F = torch.nn.functional if torch is not None else None


def _x(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _initialized(layer: Any, backend: Any, shape: tuple[int, ...]) -> Any:
    layer.set_input_shape(shape[1:])
    layer.initialize(seed=3, dtype="float64", backend=backend)
    # parameters away from their starting values (ones, zeros), so all of them matter
    rng = np.random.default_rng(4)
    layer.params = {
        k: backend.asarray(to_np(v) + 0.3 * rng.standard_normal(v.shape))
        for k, v in layer.params.items()
    }
    return layer


def _torch_params(layer: Any) -> dict[str, Any]:
    return {k: torch.tensor(to_np(v)) for k, v in layer.params.items()}


# (layer factory, input shape, PyTorch's function of (x, params))
CASES: dict[str, tuple[Any, tuple[int, ...], Any]] = {
    "global_average": (GlobalAveragePooling2D, (2, 3, 4, 5), lambda x, p: x.mean(dim=(2, 3))),
    "global_max": (GlobalMaxPooling2D, (2, 3, 4, 5), lambda x, p: x.amax(dim=(2, 3))),
    "layer_norm_last": (
        LayerNormalization,
        (3, 4, 5),
        lambda x, p: F.layer_norm(x, (5,), p["gamma"], p["beta"], eps=1e-5),
    ),
    "layer_norm_image": (
        lambda: LayerNormalization(axis=(1, 2, 3)),
        (2, 3, 4, 4),
        lambda x, p: F.layer_norm(x, (3, 4, 4), p["gamma"], p["beta"], eps=1e-5),
    ),
    "layer_norm_channels": (
        lambda: LayerNormalization(axis=1, eps=1e-3),
        (2, 3, 2, 2),
        lambda x, p: F.layer_norm(x.movedim(1, -1), (3,), p["gamma"], p["beta"], eps=1e-3).movedim(
            -1, 1
        ),
    ),
    "gelu": (GELU, (3, 7), lambda x, p: F.gelu(x)),
    "gelu_tanh": (
        lambda: GELU(approximate="tanh"),
        (3, 7),
        lambda x, p: F.gelu(x, approximate="tanh"),
    ),
    "silu": (SiLU, (3, 7), lambda x, p: F.silu(x)),
    "activation_gelu": (lambda: Activation("gelu"), (3, 7), lambda x, p: F.gelu(x)),
    "depthwise": (
        lambda: DepthwiseConv2D(3, depth_multiplier=2, stride=2, padding=1),
        (2, 3, 5, 5),
        lambda x, p: F.conv2d(x, p["weight"], p["bias"], stride=2, padding=1, groups=3),
    ),
    "separable": (
        lambda: SeparableConv2D(4, 3, padding="valid", activation="silu"),
        (2, 3, 5, 5),
        lambda x, p: F.silu(
            F.conv2d(
                F.conv2d(x, p["depthwise_weight"], groups=3), p["pointwise_weight"], p["bias"]
            )
        ),
    ),
    "conv_relu": (
        lambda: Conv2D(4, 3, activation="gelu"),
        (2, 3, 5, 5),
        lambda x, p: F.gelu(F.conv2d(x, p["weight"], p["bias"], padding=1)),
    ),
    "dense_tanh": (
        lambda: Dense(4, activation="tanh"),
        (3, 5),
        lambda x, p: torch.tanh(x @ p["weight"] + p["bias"]),
    ),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(CASES))
def test_new_layer_matches_torch_and_finite_differences(xp, backend, name):
    factory, shape, reference = CASES[name]
    layer = _initialized(factory(), backend, shape)
    x = _x(shape)
    out = to_np(layer.forward_pass(to_xp(x, xp)))
    expected = reference(torch.tensor(x), _torch_params(layer)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)
    assert out.shape[1:] == tuple(layer.output_shape())
    errors = layer_gradient_errors(layer, x, xp)
    assert set(errors) == {"X", *layer.params}
    assert max(errors.values()) < 1e-6, errors


MERGES = {
    "add": (Add, [(3, 4), (3, 4)]),
    "concatenate_channels": (lambda: Concatenate(axis=1), [(3, 4), (2, 4), (3, 4)]),
    "concatenate_last": (lambda: Concatenate(axis=-1), [(3, 4), (3, 1)]),
}


@pytest.mark.parametrize("name", sorted(MERGES))
def test_merge_layer_gradients_by_finite_differences(xp, name):
    factory, shapes = MERGES[name]
    layer = factory()
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((2, *shape)) for shape in shapes]
    out = layer.forward_pass([to_xp(v, xp) for v in inputs])
    probe = rng.standard_normal(tuple(out.shape))
    grads = layer.backward_pass(to_xp(probe, xp))
    assert len(grads) == len(inputs)

    def f(arrays: list[np.ndarray]) -> float:
        merged = layer.forward_pass([to_xp(a, xp) for a in arrays], training=False)
        return float(np.sum(to_np(merged) * probe))

    for i, grad in enumerate(grads):
        # the merge is linear: a difference is exact for any step
        direction = rng.standard_normal(inputs[i].shape)
        moved = [a + direction if k == i else a for k, a in enumerate(inputs)]
        slope = f(moved) - f(inputs)
        np.testing.assert_allclose(slope, np.sum(to_np(grad) * direction), rtol=1e-10)


def test_global_max_pooling_sends_the_gradient_to_the_first_maximum(xp):
    layer = GlobalMaxPooling2D()
    x = np.array([[[[1.0, 3.0], [3.0, 0.0]], [[2.0, 2.0], [2.0, 2.0]]]])
    out = layer.forward_pass(to_xp(x, xp))
    np.testing.assert_array_equal(to_np(out), [[3.0, 2.0]])
    grad = to_np(layer.backward_pass(to_xp(np.array([[1.0, 5.0]]), xp)))
    np.testing.assert_array_equal(grad, [[[[0.0, 1.0], [0.0, 0.0]], [[5.0, 0.0], [0.0, 0.0]]]])


def test_new_layers_check_their_arguments():
    cases = [
        (lambda: LayerNormalization(axis=0, input_shape=(3,)), ValueError, "batch axis 0"),
        (lambda: LayerNormalization(axis="x"), TypeError, "`axis` must be an integer"),
        (lambda: LayerNormalization(eps=0), ValueError, "`eps` must be a positive"),
        (lambda: GELU(approximate="erf"), ValueError, "`approximate` must be 'none' or 'tanh'"),
        (lambda: DepthwiseConv2D(3, depth_multiplier=0), ValueError, "`depth_multiplier`"),
        (lambda: Conv2D(2, 3, activation="swish"), ValueError, "`activation` must be one of"),
        (lambda: Dense(2, kernel_initializer="normal"), ValueError, "`kernel_initializer`"),
        (lambda: Concatenate(axis=1.0), TypeError, "`axis` must be an integer"),
        (lambda: GlobalAveragePooling2D(input_shape=(3, 4)), ValueError, "`input_shape` must be"),
    ]
    for make, error, message in cases:
        with pytest.raises(error, match=message):
            make()


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_initializers_draw_their_distribution_alike_on_every_backend(xp, backend, name):
    layer = Conv2D(64, 3, input_shape=(32, 8, 8), kernel_initializer=name)
    layer.initialize(seed=0, dtype="float64", backend=backend)
    w = to_np(layer.params["weight"])
    fan_in, fan_out = 32 * 9, 64 * 9
    std = {
        "fan_in_uniform": 1 / np.sqrt(3 * fan_in),
        "glorot_normal": np.sqrt(2 / (fan_in + fan_out)),
        "glorot_uniform": np.sqrt(2 / (fan_in + fan_out)),
        "he_normal": np.sqrt(2 / fan_in),
        "he_uniform": np.sqrt(2 / fan_in),
        "lecun_normal": np.sqrt(1 / fan_in),
        "lecun_uniform": np.sqrt(1 / fan_in),
        "ones": 0.0,
        "zeros": 0.0,
    }[name]
    np.testing.assert_allclose(w.std(), std, rtol=0.02, atol=1e-12)
    if name in ("ones", "zeros"):
        assert np.all(w == (1.0 if name == "ones" else 0.0))
    # one seed, the same weights on every backend
    reference = Conv2D(64, 3, input_shape=(32, 8, 8), kernel_initializer=name)
    reference.initialize(seed=0, dtype="float64", backend=get("numpy"))
    np.testing.assert_array_equal(w, reference.params["weight"])
    assert layer.get_config()["kernel_initializer"] == name


def test_default_initializer_is_unchanged():
    # the layers drew fan_in_uniform before initializers had names: same seed, same weights
    layer = Dense(4, input_shape=(3,))
    layer.initialize(seed=5, dtype="float64")
    expected = np.random.default_rng(5).uniform(-1 / np.sqrt(3), 1 / np.sqrt(3), (3, 4))
    np.testing.assert_array_equal(layer.params["weight"], expected)


@needs_torch
def test_erf_for_the_exact_gelu_matches_torch(xp):
    from xconv.layers._smooth_activations import erf

    x = np.linspace(-7, 7, 2001)
    expected = torch.erf(torch.tensor(x)).numpy()
    np.testing.assert_allclose(to_np(erf(to_xp(x, xp))), expected, rtol=0, atol=5e-15)
