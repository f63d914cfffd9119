"""Threads: the backend chosen with `use_backend` is local to each thread, and models
trained at the same time in two threads end exactly as when trained one after the other."""

from __future__ import annotations

import threading

import numpy as np
from helpers import to_np

import xconv
from xconv.layers import Activation, BatchNormalization, Conv2D, Dense, Dropout, Flatten
from xconv.model import NeuralNetwork

EPOCHS = 2


def _data(seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((8, 1, 4, 4))
    return X, (X[:, 0, :2].sum(axis=(1, 2)) > 0).astype(np.int64)


def _train(seed, barrier=None):
    """Build a model on the current backend and train it; what it ended with."""
    model = NeuralNetwork("adam", "cross_entropy", dtype="float64", seed=seed)
    model.add(Conv2D(2, 3, input_shape=(1, 4, 4)))
    model.add(BatchNormalization())
    model.add(Activation("relu"))
    model.add(Dropout(0.2))
    model.add(Flatten())
    model.add(Dense(2))
    model.add(Activation("softmax"))
    chosen = xconv.get_backend().name

    def in_step(epoch, logs):
        # the other thread trains between our epochs, and the choice stays ours
        assert xconv.get_backend().name == chosen
        if barrier is not None:
            barrier.wait(timeout=120)

    X, y = _data(seed)
    history = model.fit(X, y, EPOCHS, 4, callback=in_step)
    params = [to_np(v) for layer in model.layers for v in layer.params.values()]
    return {
        "backend": model.backend.name,
        "namespace": type(model.layers[0].params["weight"]).__module__.split(".")[0],
        "history": history,
        "params": params,
        "predictions": to_np(model.predict(X[:4])),  # batch-sized: no new shape to compile
    }


def _in_threads(jobs):
    """Run `jobs` (name -> (backend, seed)) in one thread each, all at once."""
    barrier = threading.Barrier(len(jobs))
    results, errors = {}, {}

    def work(key, backend, seed):
        try:
            with xconv.use_backend(backend):
                results[key] = _train(seed, barrier)
        except BaseException as exc:  # reported below, in the main thread
            errors[key] = exc
            barrier.abort()

    threads = [threading.Thread(target=work, args=(key, *job)) for key, job in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for exc in errors.values():
        if not isinstance(exc, threading.BrokenBarrierError):
            raise exc
    assert not errors, errors
    return results


def _assert_same(a, b):
    assert a["backend"] == b["backend"]
    assert a["namespace"] == b["namespace"]
    assert a["history"] == b["history"]
    for x, y in zip(a["params"], b["params"], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a["predictions"], b["predictions"])


def test_two_threads_on_two_backends_train_as_if_alone(backend):
    jobs = {"numpy": ("numpy", 1), "other": (backend.name, 2)}
    together = _in_threads(jobs)
    assert together["numpy"]["backend"] == "numpy"
    assert together["other"]["backend"] == backend.name
    for key, (name, seed) in jobs.items():
        with xconv.use_backend(name):
            alone = _train(seed)
        _assert_same(together[key], alone)
    assert xconv.get_backend().name == "numpy"  # the main thread's choice never moved


def test_use_backend_in_a_thread_beats_set_backend_in_another(backend):
    seen = {}
    inside, changed = threading.Event(), threading.Event()

    def work():
        with xconv.use_backend(backend.name):
            inside.set()
            changed.wait(timeout=60)
            seen["thread"] = xconv.get_backend().name

    registry = xconv.backends._registry
    before = registry._global_choice
    thread = threading.Thread(target=work)
    thread.start()
    try:
        inside.wait(timeout=60)
        xconv.set_backend("numpy")  # process-wide, but the thread's block wins
        changed.set()
        thread.join()
    finally:
        registry._global_choice = before  # undo set_backend for the other tests
    assert seen == {"thread": backend.name}
