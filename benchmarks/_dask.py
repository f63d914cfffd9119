"""``python -m benchmarks dask [--quick] [--repeats R] [--out DIR]``.

Two questions about xconv on `dask.distributed`, on this machine's CPUs:

- prediction: throughput of `xconv.distributed.predict` over a large synthetic batch
  of CIFAR-sized images (3x32x32; 20,000, or 2,000 with --quick), generated on the
  workers, with 1 and 2 worker processes, against one process predicting chunk by
  chunk without Dask;
- data-parallel training: the time of one step of `xconv.distributed.fit` with 1 and
  2 workers against `NeuralNetwork.train_on_batch` in one process, and how much of a
  step is communication (the step's time minus the shards' own compute time).

Everything runs in one fresh child process (``python -m benchmarks._dask CONFIG``),
with one BLAS thread per process (Dask's workers have one; the single process is
limited to one with threadpoolctl), so that worker counts compare fairly.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from ._environment import child_environment, describe

IMAGE = (3, 32, 32)
CLASSES = 10


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the suite in a child process; print its markdown table and return its results."""
    config = {
        "n_images": 2_000 if args.quick else 20_000,
        "chunk": 250 if args.quick else 1_000,
        "batch_size": 128 if args.quick else 512,
        "steps": 3 if args.quick else 8,
        "repeats": args.repeats or (1 if args.quick else 3),
        "workers": [1, 2],
    }
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks._dask", json.dumps(config)],
        capture_output=True,
        text=True,
        env=child_environment(),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the dask benchmark failed:\n{done.stderr}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    result = {
        "benchmark": "dask",
        "date": datetime.date.today().isoformat(),
        "config": config,
        **measured,
    }
    print(table(result))
    return result


# -- the model and the data --------------------------------------------------------------


def _model(dtype: str = "float32") -> Any:
    """A small CIFAR-style CNN: two conv + pool stages, then a dense classifier."""
    from xconv import NeuralNetwork
    from xconv.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D

    model = NeuralNetwork("adam", "cross_entropy", dtype=dtype, seed=0, backend="numpy")
    model.add(Conv2D(16, 3, input_shape=IMAGE))
    model.add(Activation("relu"))
    model.add(MaxPooling2D(2))
    model.add(Conv2D(32, 3))
    model.add(Activation("relu"))
    model.add(MaxPooling2D(2))
    model.add(Flatten())
    model.add(Dense(CLASSES))
    model.add(Activation("softmax"))
    return model


def _parameter_count(model: Any) -> int:
    return sum(layer.parameters() for layer in model.layers)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the numbers then say how many threads BLAS used
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# -- measurements (in the child process) -------------------------------------------------


def _predict_single(config: dict[str, Any]) -> float:
    """Seconds for one process to predict every image, chunk by chunk, without Dask."""
    import numpy as np

    model = _model()
    rng = np.random.default_rng(0)
    chunk = rng.standard_normal((config["chunk"], *IMAGE), dtype=np.float32)
    started = time.perf_counter()
    with _one_blas_thread():
        for _ in range(config["n_images"] // config["chunk"]):
            np.argmax(model.predict(chunk), axis=1)
    return time.perf_counter() - started


def _predict_cluster(client: Any, config: dict[str, Any]) -> float:
    """Seconds to predict every image on the cluster; images are drawn on the workers."""
    import dask.array as da
    import numpy as np

    import xconv.distributed as xd

    model = _model()
    shape = (config["n_images"], *IMAGE)
    X = da.random.default_rng(0).standard_normal(shape, chunks=config["chunk"], dtype=np.float32)
    X = X.rechunk((config["chunk"], *IMAGE))
    started = time.perf_counter()
    labels = client.compute(xd.predict(model, X).argmax(axis=1)).result()
    seconds = time.perf_counter() - started
    assert labels.shape == (config["n_images"],)
    return seconds


def _train_data(config: dict[str, Any]) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(1)
    n = config["batch_size"] * config["steps"]
    return (
        rng.standard_normal((n, *IMAGE), dtype=np.float32),
        rng.integers(0, CLASSES, n),
    )


def _step_single(config: dict[str, Any]) -> dict[str, float]:
    """Mean seconds of one training step in one process (after a warm-up step)."""
    X, y = _train_data(config)
    model = _model()
    size = config["batch_size"]
    with _one_blas_thread():
        model.train_on_batch(X[:size], y[:size])
        started = time.perf_counter()
        for start in range(0, X.shape[0], size):
            model.train_on_batch(X[start : start + size], y[start : start + size])
    return {"seconds": (time.perf_counter() - started) / config["steps"]}


def _step_cluster(client: Any, config: dict[str, Any]) -> dict[str, float]:
    """Mean seconds of one data-parallel step, its sending and its shards' compute."""
    import xconv.distributed as xd

    X, y = _train_data(config)
    model = _model()
    size = config["batch_size"]
    options = {"client": client, "batch_size": size, "shuffle": False}
    # warm-up: the workers import xconv and build their replicas
    xd.fit(model, X[:size], y[:size], n_epochs=1, **options)
    timings: list[dict[str, float]] = []
    xd.fit(model, X, y, n_epochs=1, timings=timings, **options)
    mean = {key: statistics.fmean(t[key] for t in timings) for key in timings[0]}
    # what is not the slowest shard's own work: sending, scheduling, summing, stepping
    mean["overhead_share"] = 1 - mean["slowest_compute_seconds"] / mean["seconds"]
    return mean


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def measure(config: dict[str, Any]) -> dict[str, Any]:
    """Every measurement, `repeats` times; medians and raw runs."""
    import dask
    from distributed import Client, LocalCluster

    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which costs xconv's
    # NumPy kernels about a quarter of their speed here (large buffers go back to the
    # system and fault in again); the workers run like the single process instead
    worker_environ = {
        key: value
        for key, value in dask.config.get("distributed.nanny.pre-spawn-environ").items()
        if key != "MALLOC_TRIM_THRESHOLD_"
    }
    model = _model()
    parameters = _parameter_count(model)
    results: dict[str, Any] = {
        "environment": describe(),
        "parameters": parameters,
        "parameter_bytes": parameters * 4,
        "predict": {},
        "step": {},
        "worker_environ": worker_environ,
    }
    runs: dict[str, list[Any]] = {}
    # the machine's load, which the timings depend on where others share it
    results["load_average_before"] = os.getloadavg()
    for _ in range(config["repeats"]):
        runs.setdefault("predict/single", []).append(_predict_single(config))
        runs.setdefault("step/single", []).append(_step_single(config))
        for workers in config["workers"]:
            with (
                dask.config.set({"distributed.nanny.pre-spawn-environ": worker_environ}),
                LocalCluster(
                    n_workers=workers,
                    processes=True,
                    threads_per_worker=1,
                    dashboard_address=None,
                ) as cluster,
                Client(cluster) as client,
            ):
                client.run(lambda: __import__("xconv.distributed"))
                runs.setdefault(f"predict/{workers}", []).append(_predict_cluster(client, config))
                runs.setdefault(f"step/{workers}", []).append(_step_cluster(client, config))
    results["load_average_after"] = os.getloadavg()
    for name, values in runs.items():
        kind, setting = name.split("/")
        if kind == "predict":
            seconds = statistics.median(values)
            results["predict"][setting] = {
                "seconds": seconds,
                "images_per_second": config["n_images"] / seconds,
                "runs": values,
            }
        else:
            results["step"][setting] = {**_median(values), "runs": values}
    return results


# -- the table ---------------------------------------------------------------------------


def _load(averages: list[float]) -> str:
    return ", ".join(f"{a:.1f}" for a in averages)


def table(result: dict[str, Any]) -> str:
    """The results as markdown."""
    config = result["config"]
    predict, step = result["predict"], result["step"]
    base = predict["single"]["images_per_second"]
    lines = [
        f"Load average (1, 5, 15 min) before: {_load(result['load_average_before'])}, "
        f"after: {_load(result['load_average_after'])}, on {result['environment']['cpus']} CPUs.",
        "",
        f"Prediction, {config['n_images']} images 3x32x32, chunks of {config['chunk']}, "
        f"float32 (median of {config['repeats']}):",
        "",
        "| setting | seconds | images/s | vs one process |",
        "| --- | --- | --- | --- |",
        f"| one process, no Dask | {predict['single']['seconds']:.2f} | {base:.0f} | 1.00 |",
    ]
    for workers in config["workers"]:
        row = predict[str(workers)]
        lines.append(
            f"| Dask, {workers} worker process{'es' if workers > 1 else ''} | "
            f"{row['seconds']:.2f} | {row['images_per_second']:.0f} | "
            f"{row['images_per_second'] / base:.2f} |"
        )
    single = step["single"]["seconds"]
    lines += [
        "",
        f"Data-parallel training step, global batch {config['batch_size']}, "
        f"{result['parameters']} parameters ({result['parameter_bytes'] / 1e3:.1f} kB "
        f"float32), mean of {config['steps']} steps (median of {config['repeats']}):",
        "",
        "| setting | step ms | vs one process | send params ms | shard compute ms "
        "(mean / slowest) | overhead share |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| one process, train_on_batch | {single * 1e3:.1f} | 1.00 | - | - | - |",
    ]
    for workers in config["workers"]:
        row = step[str(workers)]
        lines.append(
            f"| fit, {workers} worker{'s' if workers > 1 else ''} | {row['seconds'] * 1e3:.1f} "
            f"| {single / row['seconds']:.2f} | {row['scatter_seconds'] * 1e3:.1f} "
            f"| {row['compute_seconds'] * 1e3:.1f} / {row['slowest_compute_seconds'] * 1e3:.1f} "
            f"| {row['overhead_share']:.0%} |"
        )
    lines += [
        "",
        "overhead share: 1 - slowest shard's compute / step time: sending parameters, "
        "scheduling, the tree sum, the result's transfer and the optimizer step.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
