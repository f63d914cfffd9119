"""The `xp` fixture: every test that takes it runs once per backend under test.

Backends under test come from ``XCONV_TEST_BACKENDS`` (a comma list, e.g.
``numpy,torch``); by default, every backend usable here. A backend named there but
not usable here is a skip that says why, never a silent pass.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

import xconv.backends as backends

ENV = "XCONV_TEST_BACKENDS"


def _backends_under_test() -> list[str]:
    requested = os.environ.get(ENV, "")
    if not requested.strip():
        return list(backends.available())
    names = [name.strip() for name in requested.split(",") if name.strip()]
    unknown = sorted(set(names) - set(backends.registered()))
    if unknown:
        raise pytest.UsageError(
            f"{ENV} names unknown backends {unknown}; known: {', '.join(backends.registered())}"
        )
    return names


BACKENDS = _backends_under_test()


def pytest_report_header(config: pytest.Config) -> str:
    return f"xconv backends under test: {', '.join(BACKENDS)} ({ENV} to choose)"


@pytest.fixture(params=BACKENDS)
def xp(request: pytest.FixtureRequest) -> Any:
    """The array namespace of one backend under test."""
    name = request.param
    try:
        backend = backends.get(name)
    except backends.BackendUnavailableError as exc:
        pytest.skip(str(exc))
    if name == "jax":
        import jax

        # float64 references need float64 arrays; JAX makes float32 unless told
        jax.config.update("jax_enable_x64", True)
    return backend.namespace


@pytest.fixture
def backend(xp: Any) -> backends.Backend:
    """The `Backend` object of the `xp` under test."""
    found = backends.backend_for(xp)
    assert found is not None
    return found
