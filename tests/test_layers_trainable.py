"""Dense, BatchNormalization, Dropout, Conv2DTranspose and conv_transpose2d."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import numerical_gradient, relative_error, to_np, to_xp, torch

from xconv.functional import conv_transpose2d, conv_transpose2d_backward
from xconv.layers import BatchNormalization, Conv2DTranspose, Dense, Dropout

F = torch.nn.functional


def _gradient_check(layer, x, xp, *, seed=0):
    """Relative errors of the input and parameter gradients against finite differences.

    The loss is sum(forward_pass(X, training=True) * probe), so the layer may use batch
    statistics (BatchNormalization); it must not be random.
    """
    probe = np.random.default_rng(seed).standard_normal(
        to_np(layer.forward_pass(to_xp(x, xp))).shape
    )
    grad_input = to_np(layer.backward_pass(to_xp(probe, xp)))
    grads = {key: to_np(value) for key, value in layer.grads.items()}
    params = {key: to_np(value) for key, value in layer.params.items()}

    def loss(a, key=None):
        saved = dict(layer.params)
        if key is not None:
            layer.params[key] = to_xp(a, xp)
        out = layer.forward_pass(to_xp(x if key else a, xp))
        layer.params = saved
        return float(np.sum(to_np(out) * probe))

    errors = {"input": relative_error(grad_input, numerical_gradient(loss, x))}
    for key, value in params.items():
        errors[key] = relative_error(
            grads[key], numerical_gradient(lambda a, k=key: loss(a, k), value)
        )
    return errors


def test_dense_matches_torch_and_finite_differences(xp, backend):
    layer = Dense(3, input_shape=(4,))
    layer.initialize(seed=1, dtype="float64", backend=backend)
    x = np.random.default_rng(0).standard_normal((5, 4))
    out = to_np(layer.forward_pass(to_xp(x, xp)))
    expected = F.linear(
        torch.tensor(x), torch.tensor(to_np(layer.W)).T, torch.tensor(to_np(layer.w0))
    )
    assert relative_error(out, expected.numpy()) <= 1e-12
    assert max(_gradient_check(layer, x, xp).values()) < 1e-7
    assert layer.parameters() == 4 * 3 + 3


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2, 5)], ids=["dense", "conv"])
def test_batch_normalization_matches_torch(xp, backend, shape):
    layer = BatchNormalization(momentum=0.9, eps=1e-3, input_shape=shape[1:])
    layer.initialize(dtype="float64", backend=backend)
    rng = np.random.default_rng(0)
    layer.params = {
        "gamma": to_xp(rng.uniform(0.5, 2, shape[1]), xp),
        "beta": to_xp(rng.standard_normal(shape[1]), xp),
    }
    x = rng.standard_normal(shape) * 3 + 1
    probe = rng.standard_normal(shape)
    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(to_np(layer.params["gamma"]), requires_grad=True)
    tb = torch.tensor(to_np(layer.params["beta"]), requires_grad=True)
    expected = F.batch_norm(tx, None, None, tg, tb, training=True, eps=1e-3)
    expected.backward(torch.tensor(probe))
    out = layer.forward_pass(to_xp(x, xp))
    grad_input = layer.backward_pass(to_xp(probe, xp))
    assert relative_error(to_np(out), expected.detach().numpy()) <= 1e-9
    assert relative_error(to_np(grad_input), tx.grad.numpy()) <= 1e-9
    assert relative_error(to_np(layer.grads["gamma"]), tg.grad.numpy()) <= 1e-9
    assert relative_error(to_np(layer.grads["beta"]), tb.grad.numpy()) <= 1e-9
    # running statistics: per channel, biased variance; the first batch sets them, the
    # second weighs (1 - 0.9) / (1 - 0.9**2)
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    np.testing.assert_allclose(to_np(layer.buffers["running_mean"]), x.mean(axis=axes))
    np.testing.assert_allclose(to_np(layer.buffers["running_var"]), x.var(axis=axes))
    x2 = rng.standard_normal(shape)
    layer.forward_pass(to_xp(x2, xp))
    w = 0.1 / (1 - 0.81)
    np.testing.assert_allclose(
        to_np(layer.buffers["running_mean"]),
        (1 - w) * x.mean(axis=axes) + w * x2.mean(axis=axes),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        to_np(layer.buffers["running_var"]),
        (1 - w) * x.var(axis=axes) + w * x2.var(axis=axes),
        rtol=1e-12,
    )
    assert float(to_np(layer.buffers["batches_seen"])) == 2
    # inference uses them
    inferred = to_np(layer.forward_pass(to_xp(x, xp), training=False))
    running_mean = to_np(layer.buffers["running_mean"]).reshape((1, -1) + (1,) * (len(shape) - 2))
    running_var = to_np(layer.buffers["running_var"]).reshape(running_mean.shape)
    gamma = to_np(layer.params["gamma"]).reshape(running_mean.shape)
    beta = to_np(layer.params["beta"]).reshape(running_mean.shape)
    np.testing.assert_allclose(
        inferred, (x - running_mean) / np.sqrt(running_var + 1e-3) * gamma + beta, rtol=1e-10
    )


def test_batch_normalization_finite_differences(xp, backend):
    layer = BatchNormalization(input_shape=(2, 3, 3))
    layer.initialize(dtype="float64", backend=backend)
    x = np.random.default_rng(4).standard_normal((3, 2, 3, 3))
    assert max(_gradient_check(layer, x, xp).values()) < 1e-6


def test_dropout_is_inverted_and_masks_the_gradient(xp, backend):
    layer = Dropout(0.25)
    layer.initialize(seed=0, backend=backend)
    x = np.ones((200, 50))
    out = to_np(layer.forward_pass(to_xp(x, xp)))
    assert set(np.unique(out)) == {0.0, 1 / 0.75}
    assert abs(out.mean() - 1) < 0.03  # the expectation is kept
    assert abs((out == 0).mean() - 0.25) < 0.02
    grad = to_np(layer.backward_pass(to_xp(np.full(x.shape, 2.0), xp)))
    np.testing.assert_array_equal(grad, 2 * out)
    np.testing.assert_array_equal(to_np(layer.forward_pass(to_xp(x, xp), training=False)), x)
    with pytest.raises(ValueError, match=r"`p` must be in \[0, 1\), got 1"):
        Dropout(1)


TRANSPOSED = [
    ((2, 4, 5, 6), (4, 3, 3, 3), {}),
    ((2, 4, 5, 6), (4, 3, 3, 2), {"stride": 2, "padding": 1, "output_padding": 1}),
    (
        (1, 4, 4, 5),
        (4, 2, 3, 3),
        {"stride": (2, 3), "padding": (1, 0), "dilation": (1, 2), "groups": 2},
    ),
    ((2, 3, 4, 4), (3, 1, 2, 2), {"stride": 2, "groups": 3}),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "options"), TRANSPOSED)
def test_conv_transpose2d_matches_torch(xp, x_shape, w_shape, options):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[1] * options.get("groups", 1))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    expected = F.conv_transpose2d(tx, tw, tb, **options)
    probe = rng.standard_normal(tuple(expected.shape))
    expected.backward(torch.tensor(probe))
    out = conv_transpose2d(to_xp(x, xp), to_xp(w, xp), to_xp(b, xp), **options)
    assert relative_error(to_np(out), expected.detach().numpy()) <= 1e-9
    grads = conv_transpose2d_backward(to_xp(probe, xp), to_xp(x, xp), to_xp(w, xp), **options)
    for actual, reference in zip(grads, (tx.grad, tw.grad, tb.grad), strict=True):
        assert relative_error(to_np(actual), reference.numpy()) <= 1e-9


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_transpose2d_same_multiplies_the_size(xp, stride):
    x = to_xp(np.ones((1, 2, 3, 4)), xp)
    out = conv_transpose2d(x, to_xp(np.ones((2, 5, 3, 3)), xp), stride=stride, padding="same")
    assert tuple(out.shape) == (1, 5, 3 * stride, 4 * stride)


def test_conv2d_transpose_layer_gradients(xp, backend):
    layer = Conv2DTranspose(2, 3, input_shape=(2, 3, 3), stride=2, padding="same")
    layer.initialize(seed=2, dtype="float64", backend=backend)
    assert layer.output_shape() == (2, 6, 6)
    assert tuple(layer.W.shape) == (2, 2, 3, 3)
    x = np.random.default_rng(1).standard_normal((2, 2, 3, 3))
    assert max(_gradient_check(layer, x, xp).values()) < 1e-7


def test_construction_errors_name_the_argument():
    with pytest.raises(ValueError, match="`n_units` must be a positive integer, got 0"):
        Dense(0)
    with pytest.raises(ValueError, match="`momentum` must be in"):
        BatchNormalization(momentum=1.0)
    with pytest.raises(ValueError, match="`output_padding` must be smaller than the stride"):
        Conv2DTranspose(2, 3, input_shape=(1, 4, 4), stride=2, output_padding=2, padding=0)
