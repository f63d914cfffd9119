"""Losses: values against PyTorch, gradients against finite differences, accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import (
    numerical_gradient,
    relative_error,
    requires_torch_reason,
    to_np,
    to_xp,
    torch,
)

from xconv import losses
from xconv.losses import CrossEntropy, Loss, SquareLoss

LABELS = np.array([2, 0, 1, 2, 1])
Y = np.eye(3)[LABELS]


def _probabilities(seed: int = 0) -> np.ndarray:
    """Rows of a softmax, away from 0 and 1 so finite differences stay inside the clip."""
    logits = np.random.default_rng(seed).standard_normal(Y.shape)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


# exact zeros and ones, right and wrong, and a value just above a float64 eps
EDGES = np.array(
    [
        [0.0, 0.0, 1.0],  # sure and right
        [0.0, 1.0, 0.0],  # sure and wrong: p of the target is 0
        [0.5, 0.5, 0.0],
        [1e-300, 0.0, 1.0],
        [0.25, 1e-15, 0.75],
    ]
)


def _torch_reference(name, y, p):
    """(loss, gradient) from torch autograd, float64."""
    tp = torch.tensor(p, dtype=torch.float64, requires_grad=True)
    ty = torch.tensor(y, dtype=torch.float64)
    if name == "cross_entropy":
        eps = float(np.finfo(np.float64).eps)
        log_p = torch.log(torch.clamp(tp, eps, 1.0))
        value = torch.nn.functional.nll_loss(log_p, torch.tensor(y.argmax(axis=1)))
    else:
        value = 0.5 * torch.nn.functional.mse_loss(tp, ty, reduction="sum") / len(p)
    value.backward()
    return value.item(), tp.grad.numpy()


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
@pytest.mark.parametrize("name", ["cross_entropy", "square_loss"])
@pytest.mark.parametrize("p", [_probabilities(), EDGES], ids=["softmax", "zeros-and-ones"])
def test_value_and_gradient_match_torch(xp, name, p):
    loss = losses.get(name)
    value = loss.loss(to_xp(Y, xp), to_xp(p, xp))
    gradient = loss.gradient(to_xp(Y, xp), to_xp(p, xp))
    expected_value, expected_gradient = _torch_reference(name, Y, p)
    assert value.ndim == 0
    assert value.dtype == xp.float64
    assert math.isfinite(float(to_np(value)))
    assert abs(float(to_np(value)) - expected_value) <= 1e-13 * abs(expected_value)
    assert np.all(np.isfinite(to_np(gradient)))
    assert relative_error(to_np(gradient), expected_gradient) <= 1e-14


@pytest.mark.parametrize("loss", [CrossEntropy(), SquareLoss()], ids=repr)
def test_gradient_is_the_derivative_of_the_reported_loss(xp, loss):
    p, y = _probabilities(1), to_xp(Y, xp)
    expected = numerical_gradient(lambda a: float(to_np(loss.loss(y, to_xp(a, xp)))), p)
    actual = to_np(loss.gradient(y, to_xp(p, xp)))
    assert relative_error(actual, expected) <= 1e-8


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cross_entropy_of_sure_predictions_is_finite(xp, dtype):
    # a sure wrong prediction costs -log(eps); a sure right one costs nothing
    p = to_xp(np.array([[1.0, 0.0], [0.0, 1.0]]), xp, dtype)
    y = to_xp(np.array([[0.0, 1.0], [0.0, 1.0]]), xp, dtype)
    loss = CrossEntropy()
    value = float(to_np(loss.loss(y, p)))
    eps = float(np.finfo(dtype).eps)
    assert value == pytest.approx(-math.log(eps) / 2, rel=1e-6)
    gradient = to_np(loss.gradient(y, p))
    assert gradient.dtype == np.dtype(dtype)
    # clipped entries get no gradient; the right one gets -1 / (N * 1)
    np.testing.assert_array_equal(gradient, [[0.0, 0.0], [0.0, -0.5]])


def test_cross_entropy_eps_sets_the_floor(xp):
    p = to_xp(np.array([[0.0, 1.0], [0.0, 1.0]]), xp)
    y = to_xp(np.array([[1.0, 0.0], [0.0, 1.0]]), xp)
    assert float(to_np(CrossEntropy(eps=1e-3).loss(y, p))) == pytest.approx(-math.log(1e-3) / 2)
    # at the floor exactly, the gradient is -y / (N * eps), as torch.clamp defines it
    at_floor = to_xp(np.array([[1e-3, 1.0 - 1e-3], [0.5, 0.5]]), xp)
    gradient = to_np(CrossEntropy(eps=1e-3).gradient(y, at_floor))
    np.testing.assert_allclose(gradient, [[-1 / (2 * 1e-3), 0.0], [0.0, -1.0]], rtol=1e-15)


def test_square_loss_by_hand(xp):
    y = to_xp(np.array([[1.0, 0.0], [0.0, 1.0]]), xp)
    p = to_xp(np.array([[0.5, 0.5], [2.0, -1.0]]), xp)
    # per sample 0.5 * (0.25 + 0.25) and 0.5 * (4 + 4); mean of the two
    assert float(to_np(SquareLoss().loss(y, p))) == pytest.approx(0.5 * (0.25 + 4.0))
    np.testing.assert_allclose(
        to_np(SquareLoss().gradient(y, p)), [[-0.25, 0.25], [1.0, -1.0]], rtol=1e-15
    )


def test_acc_by_hand(xp):
    y = to_xp(np.eye(3)[[0, 1, 2, 2]], xp, "float32")
    p = to_xp(
        np.array(
            [
                [0.8, 0.1, 0.1],  # right
                [0.2, 0.7, 0.1],  # right
                [0.5, 0.1, 0.4],  # wrong
                [0.3, 0.3, 0.3],  # a tie goes to class 0: wrong
            ]
        ),
        xp,
        "float32",
    )
    for loss in (CrossEntropy(), SquareLoss()):
        accuracy = loss.acc(y, p)
        assert type(accuracy) is float
        assert accuracy == 0.5


def test_float32_in_float32_out(xp):
    y = to_xp(Y, xp, "float32")
    p = to_xp(_probabilities(), xp, "float32")
    for loss in (CrossEntropy(), SquareLoss()):
        assert loss.loss(y, p).dtype == xp.float32
        gradient = loss.gradient(y, p)
        assert gradient.dtype == xp.float32
        assert gradient.shape == p.shape


def test_arguments_are_checked(xp):
    loss = CrossEntropy()
    y, p = to_xp(Y, xp), to_xp(_probabilities(), xp)
    with pytest.raises(ValueError, match=r"`y` must have shape \(5, 3\)"):
        loss.loss(to_xp(Y[:4], xp), p)
    with pytest.raises(ValueError, match=r"`p` must be a 2-D array \(N, C\), got shape \(5,\)"):
        loss.gradient(to_xp(LABELS.astype(float), xp), to_xp(np.ones(5), xp))
    with pytest.raises(TypeError, match="arrays of different dtypes"):
        loss.loss(to_xp(Y, xp, "float32"), p)
    with pytest.raises(TypeError, match="`y` must have a real floating dtype"):
        loss.acc(to_xp(Y.astype(np.int64), xp), p)
    with pytest.raises(ValueError, match="`p` must hold at least one sample"):
        loss.loss(to_xp(np.ones((0, 3)), xp), to_xp(np.ones((0, 3)), xp))
    with pytest.raises(TypeError, match="`y` must be an array"):
        loss.loss(Y.tolist(), p)
    assert float(to_np(loss.loss(y, p))) > 0


def test_eps_is_validated():
    with pytest.raises(ValueError, match=r"`eps` must be in \(0, 1\), got 0"):
        CrossEntropy(eps=0)
    with pytest.raises(ValueError, match=r"`eps` must be in \(0, 1\), got 1.5"):
        CrossEntropy(eps=1.5)
    with pytest.raises(TypeError, match="`eps` must be a number in"):
        CrossEntropy(eps="small")
    assert CrossEntropy(eps=np.float32(0.5)).get_config() == {"class": "CrossEntropy", "eps": 0.5}


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("cross_entropy", CrossEntropy),
        ("CrossEntropy", CrossEntropy),
        ("categorical-crossentropy", CrossEntropy),
        ("square_loss", SquareLoss),
        ("SquareLoss", SquareLoss),
    ],
)
def test_get_by_name(name, cls):
    assert type(losses.get(name)) is cls


def test_get_by_class_or_instance():
    assert type(losses.get(SquareLoss)) is SquareLoss  # the ancestor passed the class
    loss = CrossEntropy(eps=1e-4)
    assert losses.get(loss) is loss
    assert losses.get(CrossEntropy, eps=1e-3).eps == 1e-3
    assert losses.get("cross_entropy", eps=1e-2).eps == 1e-2
    with pytest.raises(TypeError, match=r"options \['eps'\] given with a loss instance"):
        losses.get(loss, eps=1e-3)
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid names: cross_entropy, sq"):
        losses.get("hinge")
    with pytest.raises(TypeError, match="`loss` must be a name"):
        losses.get(Loss.loss)
    assert repr(losses.get("square")) == "SquareLoss()"
