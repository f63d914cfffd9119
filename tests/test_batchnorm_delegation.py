"""BatchNormalization on torch tensors runs PyTorch's batch-norm kernels (issue 18).

The delegated layer (the default) and xconv's generic code (``xconv.config.delegate``
off) run the same batches and must agree: outputs, input gradients, gamma and beta
gradients, the running estimates after several steps, and inference outputs.
float64 to rounding (`assert_close`'s float64 tolerances), float32 within ``FLOAT32``
(rtol 1e-4, atol 1e-5: torch sums in another order; the largest difference seen is
about 2e-6 on unit-scale values). On every other backend both runs are the same code
and must agree exactly.

The delegation is proved by counting ``torch.ops.aten.native_batch_norm`` and
``native_batch_norm_backward`` calls.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import pytest
from _torch_reference import spy_aten
from helpers import to_xp

import xconv
from xconv.layers import BatchNormalization
from xconv.testing import assert_close, to_numpy

FLOAT32 = {"rtol": 1e-4, "atol": 1e-5}

SHAPES = [(8, 3, 5, 4), (6, 5)]  # a convolution's (N, C, H, W), a dense layer's (N, F)


def _is_torch(xp: Any) -> bool:
    return array_api_compat.is_torch_namespace(xp)


def _calls(xp: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count torch's batch-norm ops; an empty list on other backends."""
    return spy_aten(xp, monkeypatch, ("native_batch_norm", "native_batch_norm_backward"))


def _random(xp: Any, shape: tuple[int, ...], dtype: str, seed: int, scale: float = 1.0) -> Any:
    rng = np.random.default_rng(seed)
    return to_xp(rng.standard_normal(shape) * scale + 0.5, xp, dtype)


def _layer(backend: Any, shape: tuple[int, ...], dtype: str) -> BatchNormalization:
    layer = BatchNormalization(momentum=0.9, input_shape=shape[1:])
    layer.initialize(seed=0, dtype=dtype, backend=backend)
    channels = shape[1]
    xp = array_api_compat.array_namespace(layer.params["gamma"])
    layer.params = {
        "gamma": _random(xp, (channels,), dtype, 100),
        "beta": _random(xp, (channels,), dtype, 101),
    }
    return layer


def _run(backend: Any, xp: Any, shape: tuple[int, ...], dtype: str) -> list[Any]:
    """Three training steps (forward, backward) and an inference pass: every result."""
    layer = _layer(backend, shape, dtype)
    results = []
    for step in range(3):
        x = _random(xp, shape, dtype, step, scale=1.0 + step)
        out = layer.forward_pass(x)
        grad = layer.backward_pass(_random(xp, shape, dtype, 10 + step))
        results += [out, grad, layer.grads["gamma"], layer.grads["beta"]]
    results += [layer.buffers["running_mean"], layer.buffers["running_var"]]
    results.append(layer.forward_pass(_random(xp, shape, dtype, 20), training=False))
    return results


def _agree(xp: Any, delegated: list[Any], generic: list[Any], dtype: str) -> None:
    assert len(delegated) == len(generic)
    for d, g in zip(delegated, generic, strict=True):
        assert d.dtype == g.dtype
        assert tuple(d.shape) == tuple(g.shape)
        assert array_api_compat.device(d) == array_api_compat.device(g)
        if _is_torch(xp):
            assert_close(d, g, **(FLOAT32 if dtype == "float32" else {}))
        else:  # no delegate: the same code both ways
            np.testing.assert_array_equal(to_numpy(d), to_numpy(g))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_delegated_batch_norm_agrees_with_the_generic_code(xp, backend, shape, dtype, monkeypatch):
    calls = _calls(xp, monkeypatch)
    delegated = _run(backend, xp, shape, dtype)
    if _is_torch(xp):
        assert calls.count("native_batch_norm") == 4  # three training passes, one inference
        assert calls.count("native_batch_norm_backward") == 3
    else:
        assert calls == []
    before = len(calls)
    with xconv.config.using(delegate=False):
        generic = _run(backend, xp, shape, dtype)
    assert len(calls) == before  # the switch turns torch's kernels off
    _agree(xp, delegated, generic, dtype)
    with xconv.config.using(fast_kernels=False):
        _run(backend, xp, shape, dtype)
    assert len(calls) == before


def test_running_variance_is_the_biased_one_even_when_far_below_eps(xp, backend):
    """The running variance takes the batch's biased variance, not one recovered from
    ``1 / sqrt(var + eps)`` (which would cancel at var << eps)."""
    shape = (16, 3, 4, 4)
    layer = BatchNormalization(momentum=0.5, eps=0.1, input_shape=shape[1:])
    layer.initialize(seed=0, dtype="float32", backend=backend)
    x_np = np.random.default_rng(0).standard_normal(shape) * 1e-3 + 2.0
    layer.forward_pass(to_xp(x_np, xp, "float32"))
    expected = np.var(x_np.astype(np.float32).astype(np.float64), axis=(0, 2, 3))
    np.testing.assert_allclose(to_numpy(layer.buffers["running_var"]), expected, rtol=1e-3)


@pytest.mark.parametrize("training", [True, False])
def test_delegated_batch_norm_changes_no_array_the_caller_holds(xp, backend, training):
    shape = (4, 3, 3, 3)
    layer = _layer(backend, shape, "float64")
    layer.forward_pass(_random(xp, shape, "float64", 7))  # running estimates not the initial
    layer.backward_pass(_random(xp, shape, "float64", 8))
    x, g = _random(xp, shape, "float64", 1), _random(xp, shape, "float64", 2)
    held = {"x": x, "g": g, **layer.params, **layer.buffers}
    copies = {k: to_numpy(v).copy() for k, v in held.items()}
    layer.forward_pass(x, training=training)
    if training:
        layer.backward_pass(g)
    for name, array in held.items():
        np.testing.assert_array_equal(to_numpy(array), copies[name], err_msg=name)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_gamma_of_another_dtype_falls_back_to_the_generic_code(xp, backend, shape, monkeypatch):
    """gamma replaced by a float32 one between the passes of a float64 layer: torch's
    backward kernel does not take it; the generic code does, from the delegated
    forward pass's statistics, and agrees with a generic run."""
    calls = _calls(xp, monkeypatch)
    results = []
    for delegate in (True, False):
        with xconv.config.using(delegate=delegate):
            layer = _layer(backend, shape, "float64")
            layer.forward_pass(_random(xp, shape, "float64", 0))
            layer.params = {**layer.params, "gamma": _random(xp, shape[1:2], "float32", 3)}
            grad = layer.backward_pass(_random(xp, shape, "float64", 1))
            results.append([grad, layer.grads["gamma"], layer.grads["beta"]])
    assert "native_batch_norm_backward" not in calls
    for d, g in zip(*results, strict=True):
        assert d.dtype == g.dtype
        assert_close(d, g)


@pytest.mark.parametrize("kind", ["dtype", "numpy"])
def test_a_gradient_of_another_kind_fails_as_in_the_generic_code(xp, backend, kind, monkeypatch):
    """A float32 gradient into a float64 layer, or a NumPy one into a layer of another
    library: torch's kernel does not take it, and the generic code's error is raised."""
    if kind == "numpy" and array_api_compat.is_numpy_namespace(xp):
        pytest.skip("a NumPy gradient is of the layer's own kind here")
    calls = _calls(xp, monkeypatch)
    shape = (4, 3, 2, 2)
    grad = np.random.default_rng(1).standard_normal(shape)
    errors = []
    for delegate in (True, False):
        with xconv.config.using(delegate=delegate):
            layer = _layer(backend, shape, "float64")
            layer.forward_pass(_random(xp, shape, "float64", 0))
            g = to_xp(grad, xp, "float32") if kind == "dtype" else grad
            with pytest.raises(TypeError) as error:
                layer.backward_pass(g)
            errors.append(str(error.value))
    assert errors[0] == errors[1]
    assert "native_batch_norm_backward" not in calls


def test_one_value_per_channel_runs_the_generic_code(xp, backend, monkeypatch):
    """A dense batch of one sample (variance 0, torch's unbiased variance undefined)."""
    calls = _calls(xp, monkeypatch)
    results = []
    for delegate in (True, False):
        with xconv.config.using(delegate=delegate):
            layer = _layer(backend, (1, 4), "float64")
            out = layer.forward_pass(_random(xp, (1, 4), "float64", 0))
            grad = layer.backward_pass(_random(xp, (1, 4), "float64", 1))
            results.append([out, grad, layer.buffers["running_var"]])
    assert calls == []
    for d, g in zip(*results, strict=True):
        np.testing.assert_array_equal(to_numpy(d), to_numpy(g))


def test_the_backward_pass_still_needs_a_training_forward_pass(xp, backend):
    layer = _layer(backend, (4, 3), "float64")
    layer.forward_pass(_random(xp, (4, 3), "float64", 0), training=False)
    with pytest.raises(RuntimeError, match="forward_pass"):
        layer.backward_pass(_random(xp, (4, 3), "float64", 1))
    layer.forward_pass(_random(xp, (4, 3), "float64", 0))
    with pytest.raises(ValueError, match="accum_grad"):
        layer.backward_pass(_random(xp, (4, 4), "float64", 1))
