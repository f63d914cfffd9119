"""The losses of issue #25 against PyTorch in float64 (values and every gradient) and
central finite differences, on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _torch_reference import close, on, torch_run
from helpers import F, gradient_errors, requires_torch_reason, to_np, to_xp, torch

import xconv.functional as xf

requires_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)
rng = np.random.default_rng(0)

# name -> (input shape, target: "index" or "prob", options of both libraries)
CROSS_ENTROPY: dict[str, tuple[tuple[int, ...], str, dict[str, Any]]] = {
    "plain": ((4, 5), "index", {}),
    "unbatched": ((5,), "index", {}),
    "spatial-sum": ((2, 3, 3, 2), "index", {"reduction": "sum"}),
    "none": ((3, 4), "index", {"reduction": "none"}),
    "weight": ((6, 3), "index", {"weight": True}),
    "weight-ignore": ((6, 3), "index", {"weight": True, "ignore_index": 1}),
    "ignore-none": ((6, 3), "index", {"ignore_index": 2, "reduction": "none"}),
    "smoothing": ((5, 4), "index", {"label_smoothing": 0.2}),
    "smoothing-weight-ignore": (
        (2, 4, 3),
        "index",
        {"label_smoothing": 0.3, "weight": True, "ignore_index": 0},
    ),
    "smoothing-weight-ignore-none": (
        (7, 3),
        "index",
        {"label_smoothing": 0.1, "weight": True, "ignore_index": 1, "reduction": "none"},
    ),
    "prob": ((4, 3), "prob", {}),
    "prob-spatial-smoothing-weight": (
        (2, 3, 2, 3),
        "prob",
        {"label_smoothing": 0.25, "weight": True, "reduction": "sum"},
    ),
    "prob-none": ((3, 5), "prob", {"reduction": "none"}),
}


def _case(shape: tuple[int, ...], kind: str, options: dict[str, Any]):
    axis = 0 if len(shape) == 1 else 1
    n_classes = shape[axis]
    x = rng.standard_normal(shape) * 2
    target_shape = shape[:axis] + shape[axis + 1 :]
    if kind == "index":
        target = rng.integers(0, n_classes, size=target_shape)
    else:
        target = rng.random(shape)
        target = target / target.sum(axis=axis, keepdims=True)
    options = dict(options)
    weight = rng.random(n_classes) + 0.5 if options.pop("weight", False) else None
    return x, target, weight, options


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("name", list(CROSS_ENTROPY))
def test_cross_entropy_matches_torch(xp, name, contiguous):
    x, target, weight, options = _case(*CROSS_ENTROPY[name])
    prob = CROSS_ENTROPY[name][1] == "prob"
    out, grads, probe = torch_run(
        lambda a, t, w: F.cross_entropy(a, t, w, **options),
        [x, target, weight],
        [True, prob, False],
    )
    X, T, W = on(xp, [x, target, weight], contiguous=contiguous)
    close(xf.cross_entropy(X, T, W, **options), out)
    grad_input, grad_target = xf.cross_entropy_backward(to_xp(probe, xp), X, T, W, **options)
    close(grad_input, grads[0])
    if prob:
        close(grad_target, grads[1])
    else:
        assert grad_target is None


@requires_torch
@pytest.mark.parametrize("name", [n for n, case in CROSS_ENTROPY.items() if case[1] == "index"])
def test_nll_loss_matches_torch(xp, name):
    x, target, weight, options = _case(*CROSS_ENTROPY[name])
    options.pop("label_smoothing", None)
    logp = np.log(np.abs(x) + 0.1)
    out, grads, probe = torch_run(
        lambda a, t, w: F.nll_loss(a, t, w, **options),
        [logp, target, weight],
        [True, False, False],
    )
    X, T, W = on(xp, [logp, target, weight])
    close(xf.nll_loss(X, T, W, **options), out)
    close(xf.nll_loss_backward(to_xp(probe, xp), X, T, W, **options), grads[0])


def test_cross_entropy_gradients_match_finite_differences(xp):
    x, target, weight, options = _case(*CROSS_ENTROPY["smoothing-weight-ignore"])
    probe = np.asarray(rng.standard_normal(()))
    T, W = to_xp(target, xp), to_xp(weight, xp)

    def loss(arrays):
        return float(to_np(xf.cross_entropy(to_xp(arrays["x"], xp), T, W, **options)) * probe)

    grad, _ = xf.cross_entropy_backward(to_xp(probe, xp), to_xp(x, xp), T, W, **options)
    assert gradient_errors(loss, {"x": x}, {"x": grad})["x"] < 1e-8


BCE: dict[str, dict[str, Any]] = {
    "plain": {},
    "sum": {"reduction": "sum"},
    "none-weight": {"reduction": "none", "weight": (1, 3)},
    "pos_weight": {"pos_weight": (3,)},
    "both-sum": {"weight": (4, 1), "pos_weight": (3,), "reduction": "sum"},
}


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize("name", list(BCE))
def test_binary_cross_entropy_with_logits_matches_torch(xp, name, contiguous):
    options = dict(BCE[name])
    x = rng.standard_normal((4, 3)) * 3
    x[0, 0], x[1, 1] = 800.0, -800.0  # no overflow
    target = rng.random((4, 3))
    weight_shape, pos_shape = options.pop("weight", None), options.pop("pos_weight", None)
    weight = None if weight_shape is None else rng.random(weight_shape) + 0.5
    pos = None if pos_shape is None else rng.random(pos_shape) + 0.5

    def reference(a, t, w, p):
        return F.binary_cross_entropy_with_logits(a, t, w, pos_weight=p, **options)

    out, grads, probe = torch_run(reference, [x, target, weight, pos], [True, True, False, False])
    X, T, W, P = on(xp, [x, target, weight, pos], contiguous=contiguous)
    close(xf.binary_cross_entropy_with_logits(X, T, W, pos_weight=P, **options), out)
    grad_x, grad_t = xf.binary_cross_entropy_with_logits_backward(
        to_xp(probe, xp), X, T, W, pos_weight=P, **options
    )
    close(grad_x, grads[0])
    close(grad_t, grads[1])


def test_binary_cross_entropy_with_logits_finite_differences(xp):
    x, t = rng.standard_normal((3, 2)), rng.random((3, 2))
    pos = rng.random(2) + 0.5
    P = to_xp(pos, xp)

    def loss(arrays):
        X, T = to_xp(arrays["x"], xp), to_xp(arrays["t"], xp)
        return float(to_np(xf.binary_cross_entropy_with_logits(X, T, pos_weight=P)))

    grads = xf.binary_cross_entropy_with_logits_backward(
        to_xp(np.asarray(1.0), xp), to_xp(x, xp), to_xp(t, xp), pos_weight=P
    )
    errors = gradient_errors(loss, {"x": x, "t": t}, {"x": grads[0], "t": grads[1]})
    assert max(errors.values()) < 1e-8


REGRESSION = {
    "mse": (xf.mse_loss, xf.mse_loss_backward, lambda a, t, **o: F.mse_loss(a, t, **o)),
    "l1": (xf.l1_loss, xf.l1_loss_backward, lambda a, t, **o: F.l1_loss(a, t, **o)),
    "smooth_l1": (
        xf.smooth_l1_loss,
        xf.smooth_l1_loss_backward,
        lambda a, t, **o: F.smooth_l1_loss(a, t, **o),
    ),
}
REGRESSION_OPTIONS = [
    ("mse", {}),
    ("mse", {"reduction": "sum"}),
    ("mse", {"reduction": "none"}),
    ("l1", {}),
    ("l1", {"reduction": "none"}),
    ("smooth_l1", {}),
    ("smooth_l1", {"beta": 0.5, "reduction": "sum"}),
    ("smooth_l1", {"beta": 0.0, "reduction": "none"}),
    ("smooth_l1", {"beta": 2.0}),
]


@requires_torch
@pytest.mark.parametrize("contiguous", [True, False])
@pytest.mark.parametrize(("name", "options"), REGRESSION_OPTIONS)
def test_regression_losses_match_torch(xp, name, options, contiguous):
    forward, backward, reference = REGRESSION[name]
    x, target = rng.standard_normal((3, 5)) * 2, rng.standard_normal((3, 5))
    target[0, 0] = x[0, 0]  # a zero difference: sign 0, as PyTorch
    out, grads, probe = torch_run(
        lambda a, t: reference(a, t, **options), [x, target], [True, True]
    )
    X, T = on(xp, [x, target], contiguous=contiguous)
    close(forward(X, T, **options), out)
    grad_x, grad_t = backward(to_xp(probe, xp), X, T, **options)
    close(grad_x, grads[0])
    close(grad_t, grads[1])


@requires_torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", ["mse", "l1"])
def test_weighted_regression_losses_match_torch(xp, name, reduction):
    # PyTorch 2.6's per-element `weight`: each loss times its weight, the mean over
    # the weights' sum
    forward, backward, reference = REGRESSION[name]
    x, target = rng.standard_normal((3, 4)) * 2, rng.standard_normal((3, 4))
    weight = rng.uniform(0.0, 2.0, size=(3, 4))
    out, grads, probe = torch_run(
        lambda a, t: reference(a, t, reduction=reduction, weight=torch.tensor(weight)),
        [x, target],
        [True, True],
    )
    X, T, W = on(xp, [x, target, weight])
    close(forward(X, T, reduction=reduction, weight=W), out)
    grad_x, grad_t = backward(to_xp(probe, xp), X, T, reduction=reduction, weight=W)
    close(grad_x, grads[0])
    close(grad_t, grads[1])


def test_weighted_mse_by_hand(xp):
    x, t = to_xp(np.array([1.0, 2.0]), xp), to_xp(np.array([0.0, 0.0]), xp)
    w = to_xp(np.array([3.0, 1.0]), xp)
    # (3 * 1 + 1 * 4) / (3 + 1)
    assert float(to_np(xf.mse_loss(x, t, weight=w))) == pytest.approx(7 / 4)
    with pytest.raises(ValueError, match="`weight`"):
        xf.mse_loss(x, t, weight=to_xp(np.ones(3), xp))


@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_losses_match_finite_differences(xp, name):
    forward, backward, _ = REGRESSION[name]
    x, target = rng.standard_normal((2, 3)) * 2, rng.standard_normal((2, 3))

    def loss(arrays):
        return float(to_np(forward(to_xp(arrays["x"], xp), to_xp(arrays["t"], xp))))

    grads = backward(to_xp(np.asarray(1.0), xp), to_xp(x, xp), to_xp(target, xp))
    errors = gradient_errors(loss, {"x": x, "t": target}, {"x": grads[0], "t": grads[1]})
    assert max(errors.values()) < 1e-7


def test_loss_arguments_are_checked(xp):
    x = to_xp(np.zeros((2, 3)), xp)
    with pytest.raises(ValueError, match="reduction"):
        xf.mse_loss(x, x, reduction="avg")
    with pytest.raises(ValueError, match="target"):
        xf.mse_loss(x, to_xp(np.zeros((3, 2)), xp))
    with pytest.raises(TypeError, match="target"):
        xf.nll_loss(x, to_xp(np.zeros(2), xp))
    with pytest.raises(TypeError, match="target"):
        xf.cross_entropy(x, None)
    with pytest.raises(ValueError, match="label_smoothing"):
        xf.cross_entropy(x, to_xp(np.zeros(2, dtype=np.int64), xp), label_smoothing=1.5)
    with pytest.raises(ValueError, match="weight"):
        xf.cross_entropy(x, to_xp(np.zeros(2, dtype=np.int64), xp), to_xp(np.ones(2), xp))
