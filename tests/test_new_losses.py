"""Losses from logits, binary and regression losses, and metrics: PyTorch's values,
finite differences, options through save/load, on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import gradient_errors, requires_torch_reason, to_np, to_xp, torch

from xconv import NeuralNetwork
from xconv.layers import Dense
from xconv.losses import (
    BinaryCrossEntropy,
    CrossEntropy,
    Huber,
    MeanAbsoluteError,
    MeanSquaredError,
    TopKAccuracy,
    from_config,
    get,
    get_metric,
)

needs_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)
F = torch.nn.functional if torch is not None else None

N, C = 6, 4


def _targets(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "one_hot":
        return np.eye(C)[rng.integers(0, C, N)]
    if kind == "binary":
        return rng.uniform(0, 1, (N, C))  # soft targets in [0, 1]
    return rng.standard_normal((N, C))


# (loss, predictions: "logits" | "probabilities", targets, PyTorch's loss of (p, y))
CASES: dict[str, tuple[Any, str, str, Any]] = {
    "cross_entropy_logits": (
        CrossEntropy(from_logits=True),
        "logits",
        "one_hot",
        lambda p, y: F.cross_entropy(p, y),
    ),
    "binary_cross_entropy": (
        BinaryCrossEntropy(),
        "probabilities",
        "binary",
        lambda p, y: F.binary_cross_entropy(p, y),
    ),
    "binary_cross_entropy_logits": (
        BinaryCrossEntropy(from_logits=True),
        "logits",
        "binary",
        lambda p, y: F.binary_cross_entropy_with_logits(p, y),
    ),
    "mean_squared_error": (MeanSquaredError(), "logits", "real", lambda p, y: F.mse_loss(p, y)),
    "mean_absolute_error": (MeanAbsoluteError(), "logits", "real", lambda p, y: F.l1_loss(p, y)),
    "huber": (Huber(delta=0.7), "logits", "real", lambda p, y: F.huber_loss(p, y, delta=0.7)),
}


@needs_torch
@pytest.mark.parametrize("name", sorted(CASES))
def test_loss_matches_torch_and_finite_differences(xp, name):
    loss, predictions, targets, reference = CASES[name]
    rng = np.random.default_rng(0)
    y = _targets(targets, rng)
    p = 2 * rng.standard_normal((N, C))
    if predictions == "probabilities":
        p = 1 / (1 + np.exp(-p))
    tp = torch.tensor(p, requires_grad=True)
    expected = reference(tp, torch.tensor(y))
    expected.backward()
    value = loss.loss(to_xp(y, xp), to_xp(p, xp))
    assert tuple(value.shape) == ()
    np.testing.assert_allclose(float(value), expected.item(), rtol=1e-12)
    gradient = loss.gradient(to_xp(y, xp), to_xp(p, xp))
    np.testing.assert_allclose(to_np(gradient), tp.grad.numpy(), rtol=1e-10, atol=1e-14)
    errors = gradient_errors(
        lambda a: float(loss.loss(to_xp(y, xp), to_xp(a["p"], xp))), {"p": p}, {"p": gradient}
    )
    assert errors["p"] < 1e-7, errors


def test_cross_entropy_from_logits_is_stable_and_takes_integer_labels(xp):
    loss = CrossEntropy(from_logits=True)
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    labels = np.array([1, 2])
    value = float(loss.loss(to_xp(labels, xp), to_xp(logits, xp)))
    np.testing.assert_allclose(value, (1000.0 + np.log(3)) / 2, rtol=1e-12)
    one_hot = np.eye(3)[labels]
    grad = to_np(loss.gradient(to_xp(labels, xp), to_xp(logits, xp)))
    np.testing.assert_allclose(grad, to_np(loss.gradient(to_xp(one_hot, xp), to_xp(logits, xp))))
    np.testing.assert_allclose(grad[0], [0.5, -0.5, 0.0], atol=1e-300)
    assert float(loss.accuracy(to_xp(labels, xp), to_xp(logits, xp))) == 0.0


def test_binary_cross_entropy_of_extreme_logits_is_finite(xp):
    loss = BinaryCrossEntropy(from_logits=True)
    y, z = np.array([[1.0, 0.0]]), np.array([[-800.0, 800.0]])
    np.testing.assert_allclose(float(loss.loss(to_xp(y, xp), to_xp(z, xp))), 800.0)
    np.testing.assert_allclose(to_np(loss.gradient(to_xp(y, xp), to_xp(z, xp))), [[-0.5, 0.5]])
    assert float(loss.accuracy(to_xp(y, xp), to_xp(z, xp))) == 0.0


def test_top_k_accuracy(xp):
    p = np.array([[0.1, 0.5, 0.3, 0.1], [0.4, 0.3, 0.2, 0.1], [0.25, 0.25, 0.25, 0.25]])
    y = np.eye(4)[[2, 3, 1]]
    scores = {k: float(TopKAccuracy(k=k)(to_xp(y, xp), to_xp(p, xp))) for k in (1, 2, 3)}
    # the third sample's target ties with every class: found at any k
    assert scores == pytest.approx({1: 1 / 3, 2: 2 / 3, 3: 2 / 3})
    assert TopKAccuracy(k=2).name == "top_2_accuracy"
    assert TopKAccuracy().name == "top_k_accuracy"


def test_losses_by_name_and_config_round_trip():
    for loss in (
        CrossEntropy(eps=1e-5, from_logits=True),
        BinaryCrossEntropy(from_logits=True),
        Huber(delta=2.5),
        MeanSquaredError(),
        MeanAbsoluteError(),
    ):
        again = from_config(loss.get_config())
        assert type(again) is type(loss)
        assert again.get_config() == loss.get_config()
    assert isinstance(get("mse"), MeanSquaredError)
    assert isinstance(get("huber"), Huber)
    assert isinstance(get("binary_cross_entropy"), BinaryCrossEntropy)
    assert get_metric({"class": "TopKAccuracy", "k": 3}).k == 3
    with pytest.raises(ValueError, match="`delta` must be a positive number"):
        Huber(delta=0)
    with pytest.raises(TypeError, match="`from_logits` must be True or False"):
        CrossEntropy(from_logits=1)
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        get_metric("f1")


def test_loss_options_and_metrics_survive_save_and_load(tmp_path):
    model = NeuralNetwork(
        "sgd", Huber(delta=0.25), seed=0, metrics=["accuracy", TopKAccuracy(k=2)]
    )
    model.add(Dense(3, input_shape=(2,)))
    model.save(tmp_path / "huber.npz")
    loaded = NeuralNetwork.load(tmp_path / "huber.npz")
    assert isinstance(loaded.loss_function, Huber)
    assert loaded.loss_function.delta == 0.25
    assert [m.name for m in loaded.metrics] == ["accuracy", "top_2_accuracy"]
    X, labels = np.random.default_rng(0).standard_normal((8, 2)), np.arange(8) % 3
    results = loaded.evaluate(X, labels, return_dict=True)
    assert sorted(results) == ["accuracy", "loss", "top_2_accuracy"]
    assert results["top_2_accuracy"] >= results["accuracy"]
    assert (results["loss"], results["accuracy"]) == loaded.evaluate(X, labels)
