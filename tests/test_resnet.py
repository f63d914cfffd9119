"""ResNet-20: the parameter count of a PyTorch build, one SGD step equal to PyTorch's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import requires_torch_reason, to_np, torch

from xconv.layers import BatchNormalization, Conv2D, Dense
from xconv.models import digits_cnn, lenet5, resnet20

needs_torch = pytest.mark.skipif(torch is None, reason=requires_torch_reason)


def _torch_resnet20() -> Any:
    """ResNet-20 (CIFAR, 1x1 projection shortcuts) in PyTorch, modules in call order."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.project = None
            if stride != 1 or cin != cout:
                self.project = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x: Any) -> Any:
            h = torch.relu(self.bn1(self.conv1(x)))
            h = self.bn2(self.conv2(h))
            return torch.relu(h + (x if self.project is None else self.project(x)))

    class ResNet20(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16)
            blocks, cin = [], 16
            for stage, cout in enumerate((16, 32, 64)):
                for block in range(3):
                    blocks.append(Block(cin, cout, 2 if stage and not block else 1))
                    cin = cout
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, 10)

        def forward(self, x: Any) -> Any:
            h = self.blocks(torch.relu(self.bn(self.conv(x))))
            return self.fc(h.mean(dim=(2, 3)))

    return ResNet20().double()


def _xconv_parameters(model: Any) -> list[tuple[Any, str]]:
    """(layer, name) of every parameter, in PyTorch's order (weight, then bias)."""
    order = {"weight": 0, "gamma": 0, "bias": 1, "beta": 1}
    return [
        (layer, name)
        for layer in model.layers
        for name in sorted(layer.params, key=order.__getitem__)
    ]


@needs_torch
def test_resnet20_has_the_parameters_of_a_pytorch_build():
    model = resnet20()
    reference = _torch_resnet20()
    count = sum(p.numel() for p in reference.parameters())
    assert count == 272_474
    assert sum(layer.parameters() for layer in model.layers) == count
    shapes = [tuple(p.shape) for p in reference.parameters()]
    ours = [
        tuple(layer.params[name].shape)[::-1]
        if isinstance(layer, Dense) and name == "weight"
        else tuple(layer.params[name].shape)
        for layer, name in _xconv_parameters(model)
    ]
    assert ours == shapes
    assert sum(isinstance(layer, Conv2D) for layer in model.layers) == 21
    assert sum(isinstance(layer, BatchNormalization) for layer in model.layers) == 21


@needs_torch
def test_one_sgd_step_on_resnet20_equals_pytorchs(xp, backend):
    # 16x16 images: the same network (and parameters) as for 32x32, four times faster
    model = resnet20(input_shape=(3, 16, 16), dtype="float64", seed=0, backend=backend)
    reference = _torch_resnet20()
    # PyTorch starts from xconv's weights
    with torch.no_grad():
        for (layer, name), p in zip(_xconv_parameters(model), reference.parameters(), strict=True):
            value = torch.tensor(to_np(layer.params[name]))
            p.copy_(value.T if isinstance(layer, Dense) and name == "weight" else value)
    rng = np.random.default_rng(0)
    X, labels = rng.standard_normal((4, 3, 16, 16)), rng.integers(0, 10, 4)
    loss, _ = model.train_on_batch(X, labels)  # SGD with momentum and weight decay
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    expected = torch.nn.functional.cross_entropy(reference(torch.tensor(X)), torch.tensor(labels))
    expected.backward()
    optimizer.step()
    np.testing.assert_allclose(loss, expected.item(), rtol=1e-10)
    for (layer, name), p in zip(_xconv_parameters(model), reference.parameters(), strict=True):
        value = p.detach().numpy()
        value = value.T if isinstance(layer, Dense) and name == "weight" else value
        np.testing.assert_allclose(to_np(layer.params[name]), value, rtol=1e-9, atol=1e-12)


def test_builtin_models_build_and_predict():
    assert sum(layer.parameters() for layer in lenet5().layers) == 61_706
    out = lenet5(seed=1).predict(np.zeros((2, 1, 28, 28)))
    assert out.shape == (2, 10)
    digits = digits_cnn(seed=0)
    assert digits.predict(np.zeros((3, 1, 8, 8))).shape == (3, 10)
    from xconv._cli import build_digits_cnn  # the older name still works

    assert build_digits_cnn is digits_cnn
