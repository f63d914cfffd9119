"""Timed training steps of one workload and library, in its own process; prints JSON.

``python -m benchmarks._steps_worker steps|layers WORKLOAD IMPLEMENTATION WARMUP STEPS``

WORKLOAD is ``mnist``, ``resnet20`` or ``digits`` (see `benchmarks._workloads`);
IMPLEMENTATION is ``xconv`` (NumPy), ``xconv-jax`` (its step compiled), ``xconv-torch``
(xconv's model on the torch backend: its convolutions and poolings run by PyTorch's own
kernels) or ``torch`` (the `benchmarks._torch_mirror` of the same network, from the
same initial weights).
Both libraries take the same batches in the same order: the first ``WARMUP + STEPS``
batches of the first shuffled epoch, made before any timing. The WARMUP steps run
untimed; each of the STEPS next ones is timed alone (forward, loss, backward and the
optimizer's update, until the loss is a Python float).

``steps`` reports the seconds of each timed step. ``layers`` reports, per layer type,
the forward and backward seconds of a step (medians over the timed steps): on xconv
by timing each layer's `forward_pass` and `backward_pass` inside the real step; on
PyTorch by running the modules one at a time on detached inputs that require a
gradient, and each module's backward from its own output (so PyTorch's autograd still
skips the gradient of the network's input, as in a real step).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from ._workloads import WORKLOADS, batch_order, build, load, steps_per_epoch


def _batches(workload: str, n: int, seed: int) -> tuple[str, int, list[tuple[Any, Any]]]:
    data = load(workload, seed=seed)
    batch_size, _ = WORKLOADS[workload]
    order = batch_order(data.n_train, batch_size, 0, seed)
    return data.source, data.n_train, [data.batch(order[i % len(order)]) for i in range(n)]


def _threads() -> int:
    """``XCONV_BENCH_THREADS``, else BLAS's thread count here (what xconv on NumPy uses)."""
    if os.environ.get("XCONV_BENCH_THREADS"):
        return int(os.environ["XCONV_BENCH_THREADS"])
    try:
        import threadpoolctl
    except ImportError:
        return os.cpu_count() or 1
    counts = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    return max(counts) if counts else os.cpu_count() or 1


def _torch_setup(workload: str, seed: int) -> tuple[Any, Any, Any, Any]:
    import torch

    from ._torch_mirror import mirror, torch_loss, torch_optimizer

    torch.set_num_threads(_threads())
    torch.manual_seed(seed)
    model = build(workload, seed=seed)
    module = mirror(model)
    module.train()
    return torch, module, torch_loss(model), torch_optimizer(model.optimizer, module.parameters())


#: the xconv implementations' backends
_BACKENDS = {"xconv": "numpy", "xconv-jax": "jax", "xconv-torch": "torch"}


def time_steps(workload: str, implementation: str, warmup: int, steps: int, seed: int = 0) -> Any:
    """Seconds of each of `steps` training steps after `warmup` untimed ones."""
    source, n_train, batches = _batches(workload, warmup + steps, seed)
    times: list[float] = []
    if implementation == "torch":
        torch, module, loss_function, optimizer = _torch_setup(workload, seed)
        tensors = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in batches]

        def step(i: int) -> float:
            X, y = tensors[i]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(module(X), y)
            loss.backward()
            optimizer.step()
            return float(loss.item())

        threads = torch.get_num_threads()
    elif implementation == "xconv-torch":
        # xconv's model on torch tensors (its ops delegated to PyTorch's), float32, with
        # PyTorch's thread count and the batches made tensors before timing, as above
        import torch

        torch.set_num_threads(_threads())
        model = build(workload, seed=seed, backend="torch")
        tensors = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in batches]

        def step(i: int) -> float:
            return float(model.train_on_batch(*tensors[i])[0])

        threads = torch.get_num_threads()
    else:
        model = build(workload, seed=seed, backend=_BACKENDS[implementation])

        def step(i: int) -> float:
            return float(model.train_on_batch(*batches[i])[0])

        threads = _threads()
    losses = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        losses.append(step(i))
        if i >= warmup:
            times.append(time.perf_counter() - start)
    per_step = statistics.fmean(times)
    return {
        "data": source,
        "threads": threads,
        "step_seconds": times,
        "mean_step_seconds": per_step,
        "median_step_seconds": statistics.median(times),
        "steps_per_epoch": steps_per_epoch(workload, n_train),
        "projected_epoch_seconds": per_step * steps_per_epoch(workload, n_train),
        "losses": losses,
    }


def _layer_key(layer: Any) -> str:
    kind = type(layer).__name__
    if kind == "Activation":
        return f"Activation/{layer.activation_name}"
    activation = getattr(layer, "activation", None)
    return f"{kind}+{activation}" if isinstance(activation, str) else kind


def _timed(function: Callable[..., Any], totals: dict[str, float], key: str) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    return wrapper


def _medians(per_step: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({key for step in per_step for key in step})
    return {key: statistics.median(step.get(key, 0.0) for step in per_step) for key in keys}


def time_layers(workload: str, implementation: str, warmup: int, steps: int, seed: int = 0) -> Any:
    """Forward and backward seconds per layer type of a step (medians over `steps`)."""
    source, _, batches = _batches(workload, warmup + steps, seed)
    per_step: list[dict[str, float]] = []
    if implementation == "torch":
        torch, module, loss_function, optimizer = _torch_setup(workload, seed)
        tensors = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in batches]
        model = build(workload, seed=seed)
        keys = [_layer_key(layer) for layer in model.network.layers]
        loss_key = f"loss ({type(model.loss_function).__name__})"
        update_key = f"update ({type(model.optimizer).__name__})"
        for i, (X, y) in enumerate(tensors):
            totals: dict[str, float] = defaultdict(float)
            start = time.perf_counter()
            _torch_layer_step(torch, module, keys, loss_function, optimizer, X, y, totals,
                              loss_key, update_key)  # fmt: skip
            totals["whole step"] = time.perf_counter() - start
            if i >= warmup:
                per_step.append(dict(totals))
        # the real step, for the cost of running the modules one at a time
        whole = time_steps(workload, "torch", 1, min(steps, 5), seed)["median_step_seconds"]
    else:
        model = build(workload, seed=seed, backend=_BACKENDS[implementation])
        if implementation == "xconv-torch":
            import torch

            torch.set_num_threads(_threads())
            batches = [(torch.from_numpy(X), torch.from_numpy(y)) for X, y in batches]
        totals = defaultdict(float)
        for layer in model.network.layers:
            key = _layer_key(layer)
            layer.forward_pass = _timed(layer.forward_pass, totals, f"{key} forward")
            layer.backward_pass = _timed(layer.backward_pass, totals, f"{key} backward")
        loss = model.loss_function
        loss_key = f"loss ({type(loss).__name__})"
        loss.loss = _timed(loss.loss, totals, f"{loss_key} forward")
        loss.accuracy = _timed(loss.accuracy, totals, f"{loss_key} forward")
        loss.gradient = _timed(loss.gradient, totals, f"{loss_key} backward")
        update_key = f"update ({type(model.optimizer).__name__})"
        model.optimizer.apply = _timed(model.optimizer.apply, totals, f"{update_key} forward")
        for i, (X, y) in enumerate(batches):
            totals.clear()
            start = time.perf_counter()
            model.train_on_batch(X, y)
            totals["whole step"] = time.perf_counter() - start
            if i >= warmup:
                per_step.append(dict(totals))
        whole = None
    medians = _medians(per_step)
    return {
        "data": source,
        "seconds": medians,
        "real_step_seconds": whole,
    }


def _torch_layer_step(
    torch: Any,
    module: Any,
    keys: list[str],
    loss_function: Any,
    optimizer: Any,
    X: Any,
    y: Any,
    totals: dict[str, float],
    loss_key: str,
    update_key: str,
) -> None:
    """One PyTorch step, module by module, each forward and backward timed alone."""
    optimizer.zero_grad(set_to_none=True)
    values = [X]
    inputs: list[list[Any]] = []
    for layer, sources, key in zip(module.layers, module.wiring, keys, strict=True):
        # the network's input needs no gradient, as in a real step
        args = [values[j] if j == 0 else values[j].detach().requires_grad_(True) for j in sources]
        start = time.perf_counter()
        out = layer(*args)
        totals[f"{key} forward"] += time.perf_counter() - start
        values.append(out)
        inputs.append(args)
    logits = values[module.output].detach().requires_grad_(True)
    start = time.perf_counter()
    loss = loss_function(logits, y)
    (logits.argmax(dim=1) == y).float().mean()  # xconv computes the batch's accuracy too
    totals[f"{loss_key} forward"] += time.perf_counter() - start
    start = time.perf_counter()
    loss.backward()
    totals[f"{loss_key} backward"] += time.perf_counter() - start
    grads: list[Any] = [None] * len(values)
    grads[module.output] = logits.grad
    for i in reversed(range(len(module.layers))):
        grad = grads[i + 1]
        if grad is None:
            continue
        start = time.perf_counter()
        values[i + 1].backward(grad)
        totals[f"{keys[i]} backward"] += time.perf_counter() - start
        for j, arg in zip(module.wiring[i], inputs[i], strict=True):
            if j != 0:
                grads[j] = arg.grad if grads[j] is None else grads[j] + arg.grad
    start = time.perf_counter()
    optimizer.step()
    totals[f"{update_key} forward"] += time.perf_counter() - start
    float(loss.item())


def _limit_threads() -> Any:
    """Hold BLAS to ``XCONV_BENCH_THREADS`` threads, where set (threadpoolctl)."""
    if not os.environ.get("XCONV_BENCH_THREADS"):
        return None
    import threadpoolctl

    return threadpoolctl.threadpool_limits(_threads(), user_api="blas")


if __name__ == "__main__":
    limits = _limit_threads()
    mode, workload, implementation = sys.argv[1:4]
    warmup, steps = int(sys.argv[4]), int(sys.argv[5])
    runner = {"steps": time_steps, "layers": time_layers}[mode]
    print(json.dumps(runner(workload, implementation, warmup, steps)))
