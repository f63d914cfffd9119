"""Activation functions and their gradients against PyTorch and finite differences."""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import pytest
from helpers import (
    F,
    numerical_gradient,
    relative_error,
    requires_torch_reason,
    to_np,
    to_xp,
    torch,
)

import xconv.functional as xf

requires_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)

# name -> (forward, backward, what backward takes, options, PyTorch's forward)
FUNCTIONS: dict[str, tuple[Any, Any, str, dict[str, Any], Any]] = {
    "relu": (xf.relu, xf.relu_backward, "input", {}, lambda t: F.relu(t)),
    "leaky_relu": (
        xf.leaky_relu,
        xf.leaky_relu_backward,
        "input",
        {},
        lambda t: F.leaky_relu(t, negative_slope=0.2),
    ),
    "leaky_relu-0.01": (
        xf.leaky_relu,
        xf.leaky_relu_backward,
        "input",
        {"alpha": 0.01},
        lambda t: F.leaky_relu(t, negative_slope=0.01),
    ),
    "elu": (xf.elu, xf.elu_backward, "input", {}, lambda t: F.elu(t, alpha=1.0)),
    "elu-0.5": (xf.elu, xf.elu_backward, "input", {"alpha": 0.5}, lambda t: F.elu(t, alpha=0.5)),
    "selu": (xf.selu, xf.selu_backward, "input", {}, lambda t: F.selu(t)),
    "sigmoid": (xf.sigmoid, xf.sigmoid_backward, "output", {}, lambda t: torch.sigmoid(t)),
    "tanh": (xf.tanh, xf.tanh_backward, "output", {}, lambda t: torch.tanh(t)),
    "softplus": (xf.softplus, xf.softplus_backward, "input", {}, lambda t: F.softplus(t)),
    "softmax": (xf.softmax, xf.softmax_backward, "output", {}, lambda t: F.softmax(t, -1)),
    "softmax-axis0": (
        xf.softmax,
        xf.softmax_backward,
        "output",
        {"axis": 0},
        lambda t: F.softmax(t, 0),
    ),
    "log_softmax": (
        xf.log_softmax,
        xf.log_softmax_backward,
        "output",
        {},
        lambda t: F.log_softmax(t, -1),
    ),
}


def _logits() -> np.ndarray:
    """Ordinary values, the kinks at 0, and logits of +-1000 and +-30 (a row each)."""
    x = np.random.default_rng(0).standard_normal((5, 6)) * 3
    x[0] = [1000.0, -1000.0, 0.0, 30.0, -30.0, 1.0]
    x[1] = [1000.0, 999.0, 998.0, -1000.0, 0.5, 0.0]
    x[2] = [-1000.0, -999.0, -1000.0, -1001.0, -998.5, -1000.0]
    return x


def _apply(name: str, x: np.ndarray, grad_output: np.ndarray, xp: Any):
    forward, backward, takes, options, _ = FUNCTIONS[name]
    out = forward(to_xp(x, xp), **options)
    saved = to_xp(x, xp) if takes == "input" else out
    return out, backward(to_xp(grad_output, xp), saved, **options)


@requires_torch
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_forward_and_backward_match_torch_float64(xp, name):
    x = _logits()
    grad_output = np.random.default_rng(1).standard_normal(x.shape)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    expected = FUNCTIONS[name][4](tx)
    expected.backward(torch.tensor(grad_output))
    out, grad = _apply(name, x, grad_output, xp)
    # elementwise, so that tiny values (sigmoid(-30), exp(-1000)) count as much as big ones
    np.testing.assert_allclose(to_np(out), expected.detach().numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(to_np(grad), tx.grad.numpy(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_backward_matches_finite_differences(xp, name):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5)) * 2
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # keep away from the kinks at 0
    probe = rng.standard_normal(x.shape)
    forward, _, _, options, _ = FUNCTIONS[name]

    def loss(a):
        return float(np.sum(to_np(forward(to_xp(a, xp), **options)) * probe))

    _, grad = _apply(name, x, probe, xp)
    assert relative_error(to_np(grad), numerical_gradient(loss, x)) < 1e-8


def test_values_by_hand(xp):
    x = to_xp(np.array([-2.0, 0.0, 3.0]), xp)
    np.testing.assert_array_equal(to_np(xf.relu(x)), [0.0, 0.0, 3.0])
    np.testing.assert_allclose(to_np(xf.leaky_relu(x)), [-0.4, 0.0, 3.0], rtol=1e-13)
    np.testing.assert_allclose(to_np(xf.elu(x)), [np.exp(-2.0) - 1, 0.0, 3.0], rtol=1e-13)
    np.testing.assert_allclose(to_np(xf.sigmoid(x)), 1 / (1 + np.exp([2.0, 0.0, -3.0])))
    np.testing.assert_allclose(to_np(xf.softplus(x)), np.log1p(np.exp([-2.0, 0.0, 3.0])))
    e = np.exp([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(to_np(xf.softmax(x)), e / e.sum(), rtol=1e-13)
    np.testing.assert_allclose(to_np(xf.log_softmax(x)), np.log(e / e.sum()), rtol=1e-13)
    # the gradient at a kink takes the x <= 0 side, as PyTorch does
    g = to_xp(np.ones(3), xp)
    np.testing.assert_array_equal(to_np(xf.relu_backward(g, x)), [0.0, 0.0, 1.0])
    np.testing.assert_allclose(to_np(xf.leaky_relu_backward(g, x)), [0.2, 0.2, 1.0])


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softmax", "log_softmax", "elu", "selu"])
def test_large_logits_do_not_overflow_in_float32(xp, name):
    # float32 overflows exp at 89; warnings are errors in this test suite
    x = np.array([[1000.0, -1000.0, 89.0, -104.0, 0.0], [-1000.0, -1000.0, 1e30, -1e30, 1.0]])
    forward, backward, takes, _, _ = FUNCTIONS[name]
    X = to_xp(x, xp, "float32")
    out = forward(X)
    grad = backward(to_xp(np.ones(x.shape), xp, "float32"), X if takes == "input" else out)
    assert out.dtype == X.dtype
    assert grad.dtype == X.dtype
    assert np.isfinite(to_np(out)).all()
    assert np.isfinite(to_np(grad)).all()


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_outputs_keep_namespace_device_and_dtype(xp, name):
    X = to_xp(np.random.default_rng(3).standard_normal((2, 3)), xp, "float32")
    grad_output = to_xp(np.ones((2, 3)), xp, "float32")
    forward, backward, takes, options, _ = FUNCTIONS[name]
    out = forward(X, **options)
    grad = backward(grad_output, X if takes == "input" else out, **options)
    for result in (out, grad):
        assert array_api_compat.array_namespace(result) is array_api_compat.array_namespace(X)
        assert result.dtype == X.dtype
        assert array_api_compat.device(result) == array_api_compat.device(X)
        assert tuple(result.shape) == (2, 3)


def test_the_mapping_by_name(xp):
    names = {"relu", "leaky_relu", "elu", "selu", "sigmoid", "tanh", "softplus", "softmax"}
    assert set(xf.ACTIVATIONS) == names
    x = np.random.default_rng(4).standard_normal((3, 4))
    for name in names:
        functions = xf.get_activation(name)
        assert functions is xf.ACTIVATIONS[name]
        out = functions.forward(to_xp(x, xp))
        saved = to_xp(x, xp) if functions.saved == "input" else out
        grad = functions.backward(to_xp(np.ones((3, 4)), xp), saved)
        forward, backward, takes, _, _ = FUNCTIONS[name]
        assert takes == functions.saved, name
        np.testing.assert_array_equal(to_np(out), to_np(forward(to_xp(x, xp))))
        expected = backward(to_xp(np.ones((3, 4)), xp), saved)
        np.testing.assert_array_equal(to_np(grad), to_np(expected))
    with pytest.raises(TypeError):
        xf.ACTIVATIONS["swish"] = xf.ACTIVATIONS["relu"]  # type: ignore[index]


@pytest.mark.parametrize("name", ["swish", "ReLU", "", None])
def test_unknown_names_list_the_valid_ones(xp, name):
    valid = "'elu', 'leaky_relu', 'relu', 'selu', 'sigmoid', 'softmax', 'softplus', 'tanh'"
    with pytest.raises(ValueError, match=f"`name` must be one of {valid}, got {name!r}"):
        xf.get_activation(name)


def test_bad_arguments_are_refused(xp):
    x = to_xp(np.zeros((2, 3)), xp)
    with pytest.raises(TypeError, match="`alpha` must be a finite real number, got 'a'"):
        xf.leaky_relu(x, alpha="a")
    with pytest.raises(TypeError, match="`alpha` must be a finite real number, got inf"):
        xf.elu_backward(x, x, alpha=float("inf"))
    with pytest.raises(ValueError, match=r"`axis` \(=2\) is out of range for `x` of shape"):
        xf.softmax(x, axis=2)
    with pytest.raises(TypeError, match=r"`axis` must be an integer, got 1\.0"):
        xf.log_softmax(x, axis=1.0)
    with pytest.raises(ValueError, match=r"`grad_output` must have shape \(2, 3\)"):
        xf.sigmoid_backward(to_xp(np.zeros((3,)), xp), x)
    with pytest.raises(TypeError, match="arrays of different dtypes"):
        xf.relu_backward(to_xp(np.zeros((2, 3)), xp, "float32"), x)
    with pytest.raises(TypeError, match="`x` must be an array"):
        xf.tanh([1.0, 2.0])


@requires_torch
@pytest.mark.parametrize(
    "options",
    [{}, {"beta": 2.0}, {"beta": 0.5, "threshold": 1.0}, {"beta": -1.5}, {"threshold": -2.0}],
    ids=str,
)
def test_softplus_beta_and_threshold_match_torch(xp, options):
    # PyTorch's options (issue #25); threshold: x itself where beta * x > threshold
    x = np.concatenate([np.linspace(-30.0, 30.0, 41), [-1000.0, 1000.0, 0.3, 0.25]])
    grad_output = np.random.default_rng(0).standard_normal(x.shape)
    tx = torch.tensor(x, requires_grad=True)
    t_out = F.softplus(tx, **options)
    t_out.backward(torch.tensor(grad_output))
    out = xf.softplus(to_xp(x, xp), **options)
    grad = xf.softplus_backward(to_xp(grad_output, xp), to_xp(x, xp), **options)
    np.testing.assert_allclose(to_np(out), t_out.detach().numpy(), rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(to_np(grad), tx.grad.numpy(), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize(
    ("options", "error"),
    [({"beta": 0.0}, ValueError), ({"beta": "2"}, TypeError), ({"threshold": np.nan}, ValueError)],
    ids=str,
)
def test_bad_softplus_options_are_refused(xp, options, error):
    with pytest.raises(error, match=r"`(beta|threshold)`"):
        xf.softplus(to_xp(np.zeros(2), xp), **options)
    with pytest.raises(error, match=r"`(beta|threshold)`"):
        xf.softplus_backward(to_xp(np.zeros(2), xp), to_xp(np.zeros(2), xp), **options)


@requires_torch
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_over_an_empty_axis_is_empty_like_torch(xp, name, axis):
    # NumPy's max used to refuse the empty reduction ("zero-size array to ...")
    forward, backward = getattr(xf, name), getattr(xf, f"{name}_backward")
    x = np.zeros((0, 3)) if axis == 0 else np.zeros((3, 0))
    expected = getattr(F, name)(torch.tensor(x), dim=axis).numpy()
    out = forward(to_xp(x, xp), axis=axis)
    assert tuple(out.shape) == expected.shape
    assert out.dtype == to_xp(x, xp).dtype
    grad = backward(to_xp(x, xp), out, axis=axis)
    assert tuple(grad.shape) == x.shape


ACTIVATIONS_UNDER_TEST = {
    "sigmoid": (xf.sigmoid, xf.sigmoid_backward, "output"),
    "selu": (xf.selu, xf.selu_backward, "input"),
    "tanh": (xf.tanh, xf.tanh_backward, "output"),
    "softplus": (xf.softplus, xf.softplus_backward, "input"),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS_UNDER_TEST))
def test_zero_d_input_gives_zero_d_arrays(xp, name):
    # NumPy's arithmetic on 0-d arrays gives scalars, which the backwards refused
    forward, backward, saved = ACTIVATIONS_UNDER_TEST[name]
    x = to_xp(np.array(0.5), xp)
    out = forward(x)
    assert array_api_compat.is_array_api_obj(out)
    assert tuple(out.shape) == ()
    grad = backward(to_xp(np.array(1.0), xp), out if saved == "output" else x)
    assert array_api_compat.is_array_api_obj(grad)
    assert tuple(grad.shape) == ()
    if torch is not None:
        t = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
        getattr(F, name)(t).backward()
        np.testing.assert_allclose(float(to_np(out)), float(getattr(F, name)(t.detach())))
        np.testing.assert_allclose(float(to_np(grad)), float(t.grad))
