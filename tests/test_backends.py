"""The backend registry: lookup, errors, plugins, the current choice and its threads."""

from __future__ import annotations

import importlib.metadata
import threading

import numpy as np
import pytest
from helpers import to_np, to_xp

import xconv
import xconv.backends as backends
from xconv.backends import _registry
from xconv.functional import col2im, im2col


class MissingBackend(backends.Backend):
    name = "missing_lib"
    module = "xconv_no_such_library"
    array_api_name = "missing_lib"
    extra = "missing"


@pytest.fixture
def clean_registry(monkeypatch):
    """Undo registrations and choices made by a test."""
    monkeypatch.setattr(_registry, "_backends", dict(_registry._backends))
    monkeypatch.setattr(_registry, "_global_choice", None)
    monkeypatch.setattr(_registry, "_namespace_cache", {})
    monkeypatch.delenv(backends.ENV_VAR, raising=False)


def test_builtin_backends_are_registered():
    assert set(backends.registered()) >= {
        "numpy",
        "cupy",
        "torch",
        "jax",
        "dask",
        "array_api_strict",
    }
    assert "numpy" in backends.available()
    assert set(backends.available()) <= set(backends.registered())


def test_unknown_backend_lists_the_registered_ones():
    with pytest.raises(
        ValueError, match=r"unknown backend 'tensorflow'; registered backends: numpy"
    ):
        backends.get("tensorflow")
    with pytest.raises(TypeError, match="`name` must be a backend name"):
        backends.get(3)


def test_unavailable_backend_says_why_and_lists_available(clean_registry):
    backends.register(MissingBackend())
    assert "missing_lib" in backends.registered()
    assert "missing_lib" not in backends.available()
    with pytest.raises(backends.BackendUnavailableError) as info:
        backends.get("missing_lib")
    message = str(info.value)
    assert "backend 'missing_lib' is not available here" in message
    assert "xconv_no_such_library is not installed (pip install 'xconv[missing]')" in message
    assert "available backends: numpy" in message
    with pytest.raises(backends.BackendUnavailableError):
        xconv.set_backend("missing_lib")


def test_cupy_counts_only_with_a_gpu():
    reason = _registry._backends["cupy"].unavailable_reason()
    if reason is None:
        assert backends.get("cupy").name == "cupy"
    else:
        assert "cupy" not in backends.available()
        with pytest.raises(backends.BackendUnavailableError, match="'cupy' is not available"):
            backends.get("cupy")


def test_register_refuses_duplicates_and_non_backends(clean_registry):
    with pytest.raises(ValueError, match="already registered"):
        backends.register(_plain_numpy("numpy"))
    replacement = backends.register(_plain_numpy("numpy"), replace=True)
    assert backends.get("numpy") is replacement
    with pytest.raises(TypeError, match=r"must be an xconv\.backends\.Backend"):
        backends.register("numpy")


def test_entry_point_plugins_are_discovered(clean_registry, monkeypatch):
    class PluginBackend(MissingBackend):
        name = "plugin_lib"

    class BrokenEntry:
        name, value = "broken", "nowhere:Nothing"

        def load(self):
            raise ImportError("no module named nowhere")

    class GoodEntry:
        name, value = "plugin_lib", "plugin:PluginBackend"

        def load(self):
            return PluginBackend

    def fake_entry_points(*, group):
        assert group == "xconv.backends"
        return [GoodEntry(), BrokenEntry()]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    monkeypatch.setattr(_registry, "_plugins_loaded", False)
    with pytest.warns(
        backends.XconvPluginWarning, match="could not load the xconv backend 'broken'"
    ):
        names = backends.registered()
    assert "plugin_lib" in names
    assert backends.registered() == names  # loaded once


def test_current_backend_order(clean_registry, monkeypatch):
    assert xconv.get_backend().name == "numpy"  # the default
    monkeypatch.setenv("XCONV_BACKEND", "array_api_strict")
    if "array_api_strict" in backends.available():
        assert xconv.get_backend().name == "array_api_strict"
    xconv.set_backend("numpy")
    assert xconv.get_backend().name == "numpy"  # set_backend beats the environment


def test_bad_environment_variable_is_named(clean_registry, monkeypatch):
    monkeypatch.setenv("XCONV_BACKEND", "nonsense")
    with pytest.raises(ValueError, match=r"XCONV_BACKEND='nonsense': unknown backend"):
        xconv.get_backend()


def test_use_backend_restores_on_exit_and_on_error(clean_registry):
    other = backends.register(_plain_numpy("numpy_two"))
    with xconv.use_backend("numpy_two") as chosen:
        assert chosen is other
        assert xconv.get_backend() is other
    assert xconv.get_backend().name == "numpy"
    with pytest.raises(RuntimeError), xconv.use_backend("numpy_two"):
        raise RuntimeError
    assert xconv.get_backend().name == "numpy"


def test_use_backend_is_local_to_each_thread(clean_registry):
    backends.register(_plain_numpy("numpy_a"))
    backends.register(_plain_numpy("numpy_b"))
    barrier = threading.Barrier(2)
    seen: dict[str, list[str]] = {}

    def work(name):
        with xconv.use_backend(name):
            for _ in range(20):
                barrier.wait()  # both threads are inside their own block here
                seen.setdefault(name, []).append(xconv.get_backend().name)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("numpy_a", "numpy_b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"numpy_a": ["numpy_a"] * 20, "numpy_b": ["numpy_b"] * 20}
    assert xconv.get_backend().name == "numpy"


def _plain_numpy(name):
    cls = type(backends.get("numpy"))
    return type(f"Backend_{name}", (cls,), {"name": name})()


# -- what every backend knows ----------------------------------------------------------


def test_round_trip_through_numpy(backend):
    a = np.arange(12.0).reshape(3, 4)
    x = backend.asarray(a, dtype="float32")
    assert x.dtype == backend.namespace.float32
    back = backend.to_numpy(x)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, a.astype(np.float32))
    a[0, 0] = 100.0  # asarray copied
    assert backend.to_numpy(x)[0, 0] == 0.0
    backend.synchronize(x)


def test_default_device_holds_new_arrays(backend):
    import array_api_compat

    x = backend.asarray(np.zeros(3))
    assert array_api_compat.device(x) == backend.default_device


def test_random_numbers_are_the_same_on_every_backend(backend):
    u = backend.random_uniform(
        (3, 4), rng=np.random.default_rng(7), low=-2, high=2, dtype="float64"
    )
    n = backend.random_normal((5,), rng=np.random.default_rng(7), mean=1, std=3, dtype="float64")
    np.testing.assert_array_equal(to_np(u), np.random.default_rng(7).uniform(-2, 2, (3, 4)))
    np.testing.assert_array_equal(to_np(n), np.random.default_rng(7).normal(1, 3, 5))


def test_fast_path_agrees_with_the_generic_code(xp):
    """Whatever fast path the arrays' library has (NumPy, CuPy, Dask), it is the
    generic code's result; ``fast_kernels=False`` selects the generic code."""
    x = to_xp(np.random.default_rng(0).standard_normal((2, 3, 5, 5)), xp)
    cols = im2col(x, 3, padding=1, stride=2)
    image = col2im(cols, (5, 5), 3, padding=1, stride=2)
    with xconv.config.using(fast_kernels=False):
        generic_cols = im2col(x, 3, padding=1, stride=2)
        generic_image = col2im(generic_cols, (5, 5), 3, padding=1, stride=2)
    np.testing.assert_array_equal(to_np(cols), to_np(generic_cols))
    np.testing.assert_allclose(to_np(image), to_np(generic_image), rtol=1e-13, atol=1e-13)


def test_backends_run_no_ops():
    """Kernels live beside their ops in xconv.functional, not in the registry."""
    for name in ("register_kernel", "kernel", "map_chunks", "parallel_chunks"):
        assert not hasattr(backends.Backend, name), name
    assert not hasattr(backends, "KERNEL_OPS")


def test_backend_for_finds_the_owner(xp, backend):
    assert backends.backend_for(xp) is backend
    assert backends.backend_for(object()) is None
