"""Losses and metrics on bad values (issue #27): NaN never scores, labels checked,
logits of -inf, and metrics each under their own name."""

from __future__ import annotations

import numpy as np
import pytest

import xconv.losses as losses
from xconv.testing import assert_close, from_numpy


def test_top_k_accuracy_never_counts_a_nan_prediction(xp):
    y = from_numpy(np.eye(3)[[0, 1]], xp, dtype="float64")
    nan = from_numpy(np.full((2, 3), np.nan), xp, dtype="float64")
    assert float(losses.TopKAccuracy(1)(y, nan)) == 0.0
    one_nan = from_numpy(np.array([[1.0, 0.0, 0.0], [np.nan, 1.0, 0.0]]), xp, dtype="float64")
    assert float(losses.TopKAccuracy(1)(y, one_nan)) == 0.5


@pytest.mark.parametrize("labels", [[0, 3], [-1, 0], [7, 9]])
@pytest.mark.parametrize("method", ["loss", "gradient", "accuracy"])
def test_cross_entropy_refuses_class_indices_outside_the_columns(labels, method):
    p = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"class indices in `y` must lie in \[0, 3\)"):
        getattr(losses.CrossEntropy(), method)(np.array(labels), p)


def test_cross_entropy_class_indices_inside_still_work():
    p = np.array([[0.25, 0.75], [0.5, 0.5]])
    assert_close(
        losses.CrossEntropy().loss(np.array([1, 0]), p),
        losses.CrossEntropy().loss(np.eye(2)[[1, 0]], p),
    )


def test_cross_entropy_from_logits_with_minus_infinity_matches_pytorch(xp):
    logits = from_numpy(np.array([[0.0, -np.inf, 1.0]]), xp, dtype="float64")
    y = from_numpy(np.array([[1.0, 0.0, 0.0]]), xp, dtype="float64")
    loss = losses.CrossEntropy(from_logits=True)
    # torch.nn.functional.cross_entropy(tensor([[0, -inf, 1.]]), tensor([0])) = 1.3133
    assert_close(loss.loss(y, logits), np.log1p(np.e))
    assert_close(
        loss.gradient(y, logits), np.array([[-np.e / (1 + np.e), 0.0, np.e / (1 + np.e)]])
    )


def test_get_metrics_refuses_a_single_name():
    with pytest.raises(TypeError, match=r"`metrics` must be a list .*\['accuracy'\]"):
        losses.get_metrics("accuracy")


@pytest.mark.parametrize(
    "metrics",
    [
        [losses.TopKAccuracy(5), "top_k_accuracy"],
        ["accuracy", "acc"],
        [losses.TopKAccuracy(3)] * 2,
    ],
)
def test_get_metrics_refuses_two_metrics_of_one_name(metrics):
    with pytest.raises(ValueError, match="`metrics` holds two metrics named"):
        losses.get_metrics(metrics)


def test_get_metrics_refuses_the_models_own_keys():
    class Loss(losses.Metric):
        name = "loss"

    class Fake(losses.Metric):
        name = "accuracy"

    for metric in (Loss(), Fake()):
        with pytest.raises(ValueError, match="a key the model reports itself"):
            losses.get_metrics([metric])


def test_get_metrics_keeps_distinct_metrics_in_order():
    chosen = losses.get_metrics(("accuracy", losses.TopKAccuracy(3), "top_k_accuracy"))
    assert [m.name for m in chosen] == ["accuracy", "top_3_accuracy", "top_k_accuracy"]


def test_accuracy_never_counts_a_nan_prediction(xp):
    y = from_numpy(np.eye(2)[[0, 0]], xp, dtype="float64")
    nan = from_numpy(np.full((2, 2), np.nan), xp, dtype="float64")
    assert float(losses.Accuracy()(y, nan)) == 0.0
    assert float(losses.CrossEntropy().accuracy(y, nan)) == 0.0


def test_evaluate_on_nan_inputs_scores_nothing():
    from xconv import NeuralNetwork, layers

    model = NeuralNetwork("sgd", "cross_entropy", metrics=["accuracy", losses.TopKAccuracy(1)])
    model.add(layers.Dense(2, input_shape=(3,)))
    model.add(layers.Activation("softmax"))
    logs = model.evaluate(np.full((4, 3), np.nan), np.zeros(4, dtype=np.int64), return_dict=True)
    assert logs["accuracy"] == 0.0
    assert logs["top_1_accuracy"] == 0.0
