"""The benchmarks' PyTorch twins of xconv's networks: same outputs, same training steps.

`benchmarks._torch_mirror` copies an xconv model's weights into PyTorch modules wired
alike; the whole-training benchmarks and the accuracy record rest on that being the
same network. Small batches in float64, so each test takes well under a second.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import requires_torch_reason, torch

from xconv.layers import Dense
from xconv.models import digits_cnn, lenet5, resnet20

pytestmark = pytest.mark.skipif(torch is None, reason=requires_torch_reason)


@pytest.fixture
def bench(benchmarks_module: Any) -> Any:
    return benchmarks_module("_torch_mirror")


@pytest.fixture
def workloads(benchmarks_module: Any) -> Any:
    return benchmarks_module("_workloads")


def _images(shape: tuple[int, ...], n: int = 4, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)), rng.integers(0, 10, n)


def test_lenet5_in_pytorch_gives_xconvs_logits(bench):
    model = lenet5(dtype="float64", seed=1)
    X, _ = _images((1, 28, 28))
    module = bench.mirror(model, dtype="float64").eval()
    with torch.no_grad():
        out = module(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, np.asarray(model.predict(X)), rtol=1e-10, atol=1e-12)


def test_two_adam_steps_on_the_mnist_cnn_equal_pytorchs(bench, workloads):
    model = workloads.mnist_cnn(seed=2, dtype="float64")
    module = bench.mirror(model, dtype="float64").train()
    optimizer = bench.torch_optimizer(model.optimizer, module.parameters())
    loss_function = bench.torch_loss(model)
    X, y = _images((1, 28, 28), n=2)
    for _ in range(2):
        loss, _ = model.train_on_batch(X, y)
        optimizer.zero_grad()
        expected = loss_function(module(torch.from_numpy(X)), torch.from_numpy(y))
        expected.backward()
        optimizer.step()
        np.testing.assert_allclose(loss, expected.item(), rtol=1e-10)
    for layer, torch_layer in zip(model.layers, module.layers, strict=True):
        if isinstance(layer, Dense):
            np.testing.assert_allclose(
                np.asarray(layer.params["weight"]),
                torch_layer[0].weight.detach().numpy().T,
                rtol=1e-8,
                atol=1e-10,
            )


def test_resnet20_in_pytorch_steps_as_xconv_and_keeps_its_statistics(bench):
    model = resnet20(input_shape=(3, 16, 16), dtype="float64", seed=0)
    module = bench.mirror(model, dtype="float64").train()
    optimizer = bench.torch_optimizer(model.optimizer, module.parameters())
    X, y = _images((3, 16, 16))
    loss, _ = model.train_on_batch(X, y)
    expected = bench.torch_loss(model)(module(torch.from_numpy(X)), torch.from_numpy(y))
    expected.backward()
    optimizer.step()
    np.testing.assert_allclose(loss, expected.item(), rtol=1e-10)
    # PyTorch's momentum weighs the new batch, xconv's the running average
    norms = [m for m in module.layers if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 21
    assert all(m.momentum == pytest.approx(0.1) and m.eps == 1e-5 for m in norms)
    # the running statistics follow each library's rule (xconv's are bias-corrected):
    # copied anew, inference gives the same outputs
    bench.copy_weights(model, module)
    with torch.no_grad():
        out = module.eval()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, np.asarray(model.predict(X)), rtol=1e-7, atol=1e-9)


def test_the_digits_cnns_softmax_moves_into_pytorchs_loss(bench):
    model = digits_cnn(dtype="float64", seed=3)
    X, _ = _images((1, 8, 8))
    module = bench.mirror(model, dtype="float64").eval()
    assert isinstance(module.layers[-1], torch.nn.Identity)
    with torch.no_grad():
        log_probabilities = torch.log_softmax(module(torch.from_numpy(X)), dim=1).numpy()
    np.testing.assert_allclose(
        log_probabilities, np.log(np.asarray(model.predict(X))), rtol=1e-9, atol=1e-12
    )


def test_a_layer_without_a_pytorch_twin_is_refused(bench):
    from xconv.layers import Conv2D
    from xconv.model import NeuralNetwork

    model = NeuralNetwork("adam", "cross_entropy")
    model.add(Conv2D(2, 3, input_shape=(1, 6, 6), stride=2, padding="same"))
    with pytest.raises(ValueError, match="padding='same'"):
        bench.mirror(model)


def test_both_libraries_get_the_same_batches(workloads):
    first = workloads.batch_order(1000, 128, epoch=0)
    assert [len(b) for b in first] == [128] * 7 + [104]
    assert sorted(np.concatenate(first).tolist()) == list(range(1000))
    assert all(
        np.array_equal(a, b)
        for a, b in zip(first, workloads.batch_order(1000, 128, epoch=0), strict=True)
    )
    assert not np.array_equal(first[0], workloads.batch_order(1000, 128, epoch=1)[0])
    data = workloads.Data("synthetic", 1000, (3, 4, 4), seed=5)
    X, y = data.batch(np.array([7, 3]))
    X_again, y_again = data.batch(np.array([3, 7]))
    np.testing.assert_array_equal(X[::-1], X_again)
    np.testing.assert_array_equal(y[::-1], y_again)
    assert X.dtype == np.float32
    assert y.dtype == np.int64
