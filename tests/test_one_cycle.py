"""`callbacks.OneCycle`: PyTorch's OneCycleLR rates, batch by batch, inside `fit`."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import torch

from xconv import NeuralNetwork
from xconv.callbacks import OneCycle
from xconv.layers import Dense
from xconv.testing import TORCH_MISSING


@pytest.mark.skipif(torch is None, reason=TORCH_MISSING)
@pytest.mark.parametrize(
    ("total", "pct_start", "div_factor", "final_div_factor"),
    [(10, 0.3, 25.0, 1e4), (1407, 0.25, 25.0, 1e4), (7, 0.5, 10.0, 100.0), (3, 0.3, 25.0, 1e4)],
)
def test_rates_are_pytorchs_one_cycle(total, pct_start, div_factor, final_div_factor):
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    reference = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=0.02,
        total_steps=total,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        cycle_momentum=False,
    )
    expected = []
    for _ in range(total):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        reference.step()
    schedule = OneCycle(
        0.02,
        total_steps=total,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
    )
    np.testing.assert_allclose([schedule.rate(s) for s in range(total)], expected, rtol=1e-12)


def _model():
    model = NeuralNetwork("sgd", "square_loss", seed=0)
    model.add(Dense(1, input_shape=(2,)))
    return model


def test_fit_sets_a_rate_before_every_batch_over_the_whole_run():
    X, y = np.ones((10, 2)), np.ones((10, 1))
    schedule = OneCycle(0.1, pct_start=1 / 3)
    _model().fit(X, y, epochs=3, batch_size=4, verbose=0, callbacks=[schedule])
    # 3 batches an epoch, 9 in all: the cycle spans the run, its peak at step 9 / 3 - 1
    assert schedule.rates == [schedule.rate(step) for step in range(9)]
    assert max(schedule.rates) == schedule.rates[2] == pytest.approx(0.1)
    assert schedule.rates[-1] == pytest.approx(0.1 / 25 / 1e4)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match=r"`max_lr`"):
        OneCycle(0.0)
    with pytest.raises(ValueError, match=r"`pct_start` must be in \(0, 1\), got 1"):
        OneCycle(0.1, pct_start=1)
    with pytest.raises(ValueError, match=r"`total_steps`"):
        OneCycle(0.1, total_steps=0)
    with pytest.raises(ValueError, match=r"`step`"):
        OneCycle(0.1, total_steps=3).rate(-1)
