"""``python -m benchmarks train``'s xconv-torch: xconv's model on the torch backend,
timed beside plain PyTorch (issue 18's target), in the tables and the JSON.

The workers run in this process on the bundled digits (a step or two each); the whole
suite's driver runs with its worker processes replaced by canned answers, so what is
checked is where xconv-torch goes, not how long anything takes.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
import pytest
from helpers import requires_torch_reason, torch

pytestmark = pytest.mark.skipif(torch is None, reason=requires_torch_reason)


@pytest.fixture
def bench(benchmarks_module: Any) -> Any:
    return argparse.Namespace(
        train=benchmarks_module("_train"),
        steps=benchmarks_module("_steps_worker"),
        epochs=benchmarks_module("_train_worker"),
    )


def test_xconv_torch_is_timed_on_every_workload(bench):
    for workload in bench.train.WORKLOADS:
        for quick in (False, True):
            assert "xconv-torch" in bench.train.implementations(quick, workload)


def test_xconv_torch_steps_are_xconvs_on_torch_tensors(bench):
    on_torch = bench.steps.time_steps("digits", "xconv-torch", 1, 2)
    on_numpy = bench.steps.time_steps("digits", "xconv", 1, 2)
    assert on_torch["threads"] == torch.get_num_threads()
    assert len(on_torch["step_seconds"]) == 2
    assert on_torch["steps_per_epoch"] == on_numpy["steps_per_epoch"]
    # the same network, weights and batches, float32 both: the same losses
    np.testing.assert_allclose(on_torch["losses"], on_numpy["losses"], rtol=1e-4)
    layers = bench.steps.time_layers("digits", "xconv-torch", 1, 1)["seconds"]
    assert "whole step" in layers
    assert any(key.startswith("Conv2D") for key in layers)


def test_xconv_torch_trains_the_digits_cnn_as_xconv_does(bench):
    on_torch = bench.epochs.run_xconv(1, 0, backend="torch")
    on_numpy = bench.epochs.run_xconv(1, 0)
    assert on_torch["accuracy"] == pytest.approx(on_numpy["accuracy"], abs=0.02)


def _canned(command: list[str]) -> dict[str, Any]:
    """What each worker would print: steps, layers or a digits training."""
    module, *args = command
    if module == "benchmarks._train_worker":
        seconds = {"xconv": 4.0, "torch": 2.0, "xconv-torch": 2.2}.get(args[0], 3.0)
        return {"seconds": seconds, "epoch_seconds": seconds / 2, "accuracy": 0.9}
    mode, _, implementation = args[:3]
    if mode == "layers":
        real = 0.01 if implementation == "torch" else None
        times = {"Conv2D forward": 0.002, "Conv2D backward": 0.004, "whole step": 0.01}
        return {"data": "synthetic", "seconds": times, "real_step_seconds": real}
    step = {"xconv": 0.03, "torch": 0.01, "xconv-torch": 0.012}.get(implementation, 0.02)
    return {
        "data": "synthetic",
        "threads": 2,
        "step_seconds": [step],
        "mean_step_seconds": step,
        "median_step_seconds": step,
        "steps_per_epoch": 10,
        "projected_epoch_seconds": step * 10,
        "losses": [1.0],
    }


def test_xconv_torch_in_the_tables_and_the_json(bench, monkeypatch, capsys):
    monkeypatch.setattr(bench.train, "run_worker", _canned)
    monkeypatch.setattr(bench.train, "worker_environment", lambda: _environment())
    args = argparse.Namespace(quick=True, repeats=1, threads=None, cifar10=None)
    result = bench.train.run(args)
    table = capsys.readouterr().out
    for workload in bench.train.WORKLOADS:
        assert f"| {workload} | synthetic | xconv-torch | 2 |" in table
        steps = result["steps"][workload]["median_step_seconds"]
        assert steps["xconv-torch"] == pytest.approx(0.012)
    assert "| xconv-torch | 2.20 |" in table
    assert "xconv-torch / torch: 1.10" in table
    assert result["digits_training"]["ratio_xconv_torch_to_torch"] == pytest.approx(1.1)
    again = json.loads(json.dumps(result))
    assert "xconv-torch" in again["steps"]["mnist"]["runs"]


def _environment() -> dict[str, Any]:
    return {"blas": "test", "versions": {}, "processor": "test", "cpus": 2}
