"""The layers of issue #25: GroupNormalization, AdaptiveAveragePooling2D,
AdaptiveMaxPooling2D and UpSampling2D(interpolation="bilinear"), against PyTorch in
float64 and finite differences (input and every parameter), on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import layer_gradient_errors, requires_torch_reason, to_np, to_xp, torch

from xconv.layers import (
    AdaptiveAveragePooling2D,
    AdaptiveMaxPooling2D,
    GroupNormalization,
    UpSampling2D,
    get_layer_class,
)

needs_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)
F = torch.nn.functional if torch is not None else None

# (layer factory, input shape, PyTorch's function of (x, params))
CASES: dict[str, tuple[Any, tuple[int, ...], Any]] = {
    "group_norm": (
        lambda: GroupNormalization(2),
        (2, 4, 3, 3),
        lambda x, p: F.group_norm(x, 2, p["gamma"], p["beta"], 1e-5),
    ),
    "instance_norm": (
        lambda: GroupNormalization(3, eps=1e-3),
        (2, 3, 2, 5),
        lambda x, p: F.group_norm(x, 3, p["gamma"], p["beta"], 1e-3),
    ),
    "adaptive_average": (
        lambda: AdaptiveAveragePooling2D((2, 3)),
        (2, 3, 5, 7),
        lambda x, p: F.adaptive_avg_pool2d(x, (2, 3)),
    ),
    "adaptive_max": (
        lambda: AdaptiveMaxPooling2D((3, None)),
        (2, 2, 7, 4),
        lambda x, p: F.adaptive_max_pool2d(x, (3, None)),
    ),
    "upsampling_bilinear": (
        lambda: UpSampling2D((2, 3), interpolation="bilinear"),
        (2, 2, 3, 4),
        lambda x, p: F.interpolate(x, scale_factor=(2, 3), mode="bilinear"),
    ),
}


def _initialized(layer: Any, backend: Any, shape: tuple[int, ...]) -> Any:
    layer.set_input_shape(shape[1:])
    layer.initialize(seed=3, dtype="float64", backend=backend)
    rng = np.random.default_rng(4)  # parameters away from ones and zeros
    layer.params = {
        k: backend.asarray(to_np(v) + 0.3 * rng.standard_normal(v.shape))
        for k, v in layer.params.items()
    }
    return layer


@needs_torch
@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_torch_and_finite_differences(xp, backend, name):
    factory, shape, reference = CASES[name]
    layer = _initialized(factory(), backend, shape)
    x = np.random.default_rng(0).permutation(np.prod(shape)).reshape(shape) / 10.0
    out = to_np(layer.forward_pass(to_xp(x, xp)))
    params = {k: torch.tensor(to_np(v)) for k, v in layer.params.items()}
    expected = reference(torch.tensor(x), params).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert layer.output_shape() == expected.shape[1:]
    errors = layer_gradient_errors(layer, x, xp)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("name", list(CASES))
def test_layer_config_round_trips(name):
    layer = CASES[name][0]()
    config = layer.get_config()
    again = get_layer_class(type(layer).__name__)(**config)
    assert again.get_config() == config


def test_layers_check_their_arguments():
    with pytest.raises(ValueError, match="groups"):
        GroupNormalization(4, input_shape=(6, 2, 2))
    with pytest.raises(ValueError, match="output_size"):
        AdaptiveAveragePooling2D(0)
    with pytest.raises(ValueError, match="interpolation"):
        UpSampling2D(2, interpolation="bicubic")
