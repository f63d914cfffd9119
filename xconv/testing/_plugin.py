"""The fixtures `xp` and `backend`, parametrized over the backends under test.

Registered by enabling ``xconv.testing`` (see `xconv.testing._options`). The backends
under test come from, in order: ``--xconv-backends``, ``XCONV_TEST_BACKENDS``, the ini
key ``xconv_backends``, else every backend usable here (`xconv.backends.available`).
Either spelling of a name works (``array_api_strict`` or the extra's
``array-api-strict``). A name xconv does not know is a usage error; a known backend
that is not usable here gives skips that say why, never a silent pass.
"""

from __future__ import annotations

import os

import pytest

import xconv.backends as backends
from xconv._typing import Namespace

from ._options import ENV_VAR, INI_BACKENDS, OPTION, backend_name

_SELECTION = pytest.StashKey[tuple[list[str], str]]()


def _selection(config: pytest.Config) -> tuple[list[str], str]:
    """The backends under test and where the choice came from."""
    sources = [
        (config.getoption("xconv_backends"), OPTION),
        (os.environ.get(ENV_VAR), ENV_VAR),
        (config.getini(INI_BACKENDS), f"ini {INI_BACKENDS}"),
    ]
    for requested, source in sources:
        # a blank variable or ini key is as if unset; the option given blank is not:
        # `--xconv-backends=$UNSET` must not quietly test every backend
        if requested is None or (not requested.strip() and source != OPTION):
            continue
        names = list(dict.fromkeys(_known(n) for n in requested.split(",") if n.strip()))
        unknown = [name for name in names if name not in backends.registered()]
        if unknown or not names:
            problem = f"unknown xconv backends {unknown}" if unknown else "no backend"
            raise pytest.UsageError(
                f"{source} names {problem} ({requested!r}); "
                f"known: {', '.join(backends.registered())}"
            )
        return names, source
    return list(backends.available()), "every backend usable here"


def _known(name: str) -> str:
    """`name` as registered: as given, else with the extras' hyphens as underscores."""
    name = name.strip()
    return name if name in backends.registered() else backend_name(name)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SELECTION] = _selection(config)


def pytest_report_header(config: pytest.Config) -> str:
    names, source = config.stash[_SELECTION]
    return (
        f"xconv backends under test: {', '.join(names)} "
        f"(from {source}; choose with {OPTION} or {ENV_VAR})"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "xp" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        argnames = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        if isinstance(argnames, str):
            argnames = [name.strip() for name in argnames.split(",")]
        if "xp" in argnames:
            return  # the test chose its own namespaces
    names, _ = metafunc.config.stash[_SELECTION]
    metafunc.parametrize("xp", names, indirect=True, ids=names)


@pytest.fixture
def xp(request: pytest.FixtureRequest) -> Namespace:
    """The array namespace of one backend under test (one test run per backend).

    A backend that is not usable here skips the test with the reason. JAX gets
    ``jax_enable_x64`` switched on for the rest of the process, as ``JAX_ENABLE_X64=1``
    would, so that float64 references are float64 arrays.
    """
    name = request.param
    try:
        backend = backends.get(name)
    except backends.BackendUnavailableError as exc:
        pytest.skip(f"xconv backend {name!r} is not usable here: {exc}")
    if name == "jax":
        import jax

        # float64 references need float64 arrays; JAX makes float32 unless told
        jax.config.update("jax_enable_x64", True)
    return backend.namespace


@pytest.fixture
def backend(xp: Namespace) -> backends.Backend:
    """The `xconv.backends.Backend` of the `xp` under test."""
    found = backends.backend_for(xp)
    assert found is not None, xp
    return found
