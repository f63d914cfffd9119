"""One nox session per backend, for projects tested with xconv.testing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._options import ENV_VAR

__all__ = ["BACKEND_EXTRAS", "nox_sessions"]

#: the xconv extra that installs each backend's library
BACKEND_EXTRAS: dict[str, str | None] = {
    "numpy": None,
    "array_api_strict": "array-api-strict",
    "torch": "torch",
    "jax": "jax",
    "dask": "dask",
    "cupy": "cupy",
}


def nox_sessions(
    backends: Sequence[str] = ("numpy", "array_api_strict", "torch", "jax"),
    *,
    name: str = "tests",
    install: Sequence[str] = ("-e", "."),
    xconv: str = "xconv",
    pytest_args: Sequence[str] = (),
    python: Any = None,
) -> Callable[..., None]:
    """Define a nox session ``name(backend=...)`` per backend in a noxfile, and return it.

    Each session installs ``install`` (your project, editable by default) and
    ``{xconv}[test,<extra>]`` -- the test extra (pytest; PyTorch, the reference) and the
    backend's extra (`BACKEND_EXTRAS`) -- then runs ``pytest -p xconv.testing`` with
    ``XCONV_TEST_BACKENDS`` set to the backend (and ``JAX_ENABLE_X64=1`` for JAX), plus
    `pytest_args` and nox's positional arguments. ``nox -s tests`` runs them all,
    ``nox -s "tests(backend='torch')"`` one.

    Call it at the top level of ``noxfile.py``::

        import nox
        from xconv.testing import nox_sessions

        nox_sessions(["numpy", "array_api_strict", "torch"])

    nox itself must then be able to import xconv (``pip install nox xconv``); the
    15-line ``noxfile.py`` pattern in the README needs only nox.

    Args:
        backends: backend names, each one session.
        name: the sessions' name.
        install: pip arguments installing the project under test.
        xconv: the requirement (or path) xconv is installed from.
        pytest_args: extra arguments for pytest.
        python: the sessions' Python version(s), as `nox.session` takes them.
    """
    import nox

    unknown = [backend for backend in backends if backend not in BACKEND_EXTRAS]
    if unknown:
        raise ValueError(
            f"`backends` names unknown backends {unknown}; known: {', '.join(BACKEND_EXTRAS)}"
        )

    def session(session: nox.Session, backend: str) -> None:
        extras = ",".join(e for e in ("test", BACKEND_EXTRAS[backend]) if e)
        session.install(*install, f"{xconv}[{extras}]")
        env = {ENV_VAR: backend}
        if backend == "jax":
            env["JAX_ENABLE_X64"] = "1"
        session.run("pytest", "-p", "xconv.testing", *pytest_args, *session.posargs, env=env)

    session.__doc__ = "Run the tests on one array backend, through xconv.testing."
    session.__name__ = name
    parametrized = nox.parametrize("backend", list(backends))(session)
    nox.session(name=name, python=python)(parametrized)
    return session
