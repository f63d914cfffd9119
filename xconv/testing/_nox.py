"""One nox session per backend, for projects tested with xconv.testing."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xconv._validation import _quote, readable_file, sequence_of

from ._options import ENV_VAR, backend_name

__all__ = ["BACKEND_EXTRAS", "XCONV_SOURCE", "nox_sessions", "xconv_requirement"]

#: the xconv extra that installs each backend's library
BACKEND_EXTRAS: dict[str, str | None] = {
    "numpy": None,
    "array_api_strict": "array-api-strict",
    "torch": "torch",
    "jax": "jax",
    "dask": "dask",
    "cupy": "cupy",
}

#: the environment variable that says where `nox_sessions` installs xconv from
XCONV_SOURCE = "XCONV"

_HOW = (
    "point at xconv with the environment variable XCONV (or nox_sessions(xconv=...)): "
    "a clone's folder (XCONV=../xconv), a wheel (XCONV=dist/xconv-0.1.0-py3-none-any.whl) "
    "or a requirement of a release on your package index (XCONV='xconv==0.1.0')"
)


def _is_path(source: str) -> bool:
    """Whether `source` names a file or folder rather than a requirement of a release.

    As for pip, a bare name (``xconv``) is a requirement even where a folder of that
    name is at hand; a path has a separator, or is a wheel's or an sdist's file name.
    """
    return (
        source.startswith((".", "/", "~"))
        or os.sep in source
        or "/" in source
        or source.endswith((".whl", ".tar.gz", ".zip"))
    )


def xconv_requirement(source: str, /, *, extras: Sequence[str] = ()) -> str:
    """The pip argument that installs xconv with `extras` from `source`.

    `source` is a requirement of a release (``"xconv"``, ``"xconv==0.1.0"``), a clone's
    folder (the one holding xconv's ``pyproject.toml``) or a built wheel or sdist. A
    folder or file is made absolute (nox runs pip from the noxfile's folder) and must
    exist; otherwise a `ValueError` says what was given and how to point at xconv.
    `extras` is a sequence of the extras' names (str; not one str).

    Example:
        >>> xconv_requirement("xconv==0.1.0", extras=["test", "torch"])
        'xconv[test,torch]==0.1.0'
    """
    if not isinstance(source, str) or not source.strip():
        raise TypeError(f"`source` must be a non-empty string, got {source!r}; {_HOW}")
    chosen = sequence_of(extras, "extras", str, "extra names (str)")
    source = source.strip()
    suffix = f"[{','.join(chosen)}]" if chosen else ""
    if _is_path(source):
        try:
            path = Path(source).expanduser().resolve()
            is_dir, is_file = path.is_dir(), path.is_file()
        except (OSError, ValueError) as exc:  # a NUL, a name too long
            reason = getattr(exc, "strerror", None) or exc
            raise ValueError(
                f"`source` {_quote(source)} is no usable path ({reason}); {_HOW}"
            ) from None
        if is_dir:
            if not (path / "pyproject.toml").is_file():
                raise ValueError(
                    f"xconv's source {source!r} is a folder without a pyproject.toml, "
                    f"not a clone of xconv; {_HOW}"
                )
        elif not is_file:
            raise ValueError(f"xconv's source {source!r} does not exist ({path}); {_HOW}")
        return f"{path}{suffix}"
    # a requirement: the extras go right after the name (`xconv[test]==0.1.0`)
    name_end = next((i for i, c in enumerate(source) if c in "<>=!~;@ ["), len(source))
    name, rest = source[:name_end], source[name_end:]
    if rest.startswith("["):
        raise ValueError(f"give xconv's source without extras, got {source!r}")
    return f"{name}{suffix}{rest}"


def nox_sessions(
    backends: Sequence[str] = ("numpy", "array_api_strict", "torch", "jax", "dask"),
    *,
    xconv: str | None = None,
    reference: bool = True,
    constraints: str | os.PathLike[str] | None = None,
    name: str = "tests",
    install: Sequence[str] = ("-e", "."),
    pytest_args: Sequence[str] = (),
    python: Any = None,
) -> Callable[..., None]:
    """Define a nox session ``name(backend=...)`` per backend in a noxfile, and return it.

    Each session installs ``install`` (your project, editable by default: it needs a
    ``pyproject.toml``) and xconv with its ``test`` extra (pytest), the backend's extra
    (`BACKEND_EXTRAS`) and, with `reference`, the ``torch`` extra (PyTorch, which
    `reference_torch` runs); then it runs ``pytest -p xconv.testing`` with
    ``XCONV_TEST_BACKENDS`` set to the backend (and ``JAX_ENABLE_X64=1`` for JAX),
    plus `pytest_args` and nox's positional arguments. ``nox -s tests`` runs them all,
    ``nox -s "tests(backend='torch')"`` one.

    Call it at the top level of ``noxfile.py``::

        import nox
        from xconv.testing import nox_sessions

        nox_sessions(["numpy", "array_api_strict", "torch", "jax", "dask"])

    nox itself must then be able to import xconv (``pip install nox xconv``, or nox
    run from an environment that has it); the noxfile pattern in ``docs/testing.md``
    needs only nox.

    A bad argument (a name in `backends` that is no backend's, a `constraints` that is
    no file, a blank `name`) is a `TypeError` or `ValueError`, raised before nox is
    imported.

    Args:
        backends: backend names, each one session (``array-api-strict``, the extra's
            spelling, is ``array_api_strict``).
        xconv: where xconv comes from (`xconv_requirement`): a release's requirement,
            a clone's folder or a wheel. Default: the environment variable ``XCONV``
            when nox starts, else ``"xconv"`` from your package index. Where it cannot
            be installed, the session fails saying how to point at xconv.
        reference: install PyTorch for `reference_torch` (without it, tests that call
            it skip, saying why).
        constraints: a pip constraints file applied to every install, e.g. one that
            pins a CPU build of PyTorch (see the testing guide).
        name: the sessions' name.
        install: pip arguments installing the project under test.
        pytest_args: extra arguments for pytest.
        python: the sessions' Python version(s), as `nox.session` takes them.
    """
    names = [
        backend_name(backend)
        for backend in sequence_of(backends, "backends", str, "backend names (str)")
    ]
    unknown = [backend for backend in names if backend not in BACKEND_EXTRAS]
    if unknown or not names:
        raise ValueError(
            f"`backends` names unknown backends {unknown}; known: {', '.join(BACKEND_EXTRAS)}"
            if unknown
            else "`backends` must name at least one backend, got none"
        )
    pip_options: list[str] = []
    if constraints is not None:
        try:
            constraint_file = readable_file(constraints, "constraints").resolve()
        except FileNotFoundError:
            raise ValueError(
                f"`constraints` must be a file, got {str(constraints)!r}, which does not exist"
            ) from None
        pip_options = ["--constraint", str(constraint_file)]
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a str, got {name!r}")
    if not name.strip():
        raise ValueError(f"`name` must name the sessions, got {name!r}")
    import nox

    source = xconv if xconv is not None else os.environ.get(XCONV_SOURCE, "xconv")

    def session(session: nox.Session, backend: str) -> None:
        extras = ["test", BACKEND_EXTRAS[backend], "torch" if reference else None]
        chosen = list(dict.fromkeys(extra for extra in extras if extra))
        try:
            requirement = xconv_requirement(source, extras=chosen)
        except (TypeError, ValueError) as exc:
            session.error(str(exc))
        if list(install[-1:]) == ["."] and not _installable(Path.cwd()):
            session.error(
                f"the project under test ({Path.cwd()}) has no pyproject.toml (or setup.py): "
                "pip cannot install it; add one (see the testing guide) or pass install=[...]"
            )
        try:
            session.install(*pip_options, *install, requirement)
        except nox.command.CommandFailed:
            session.error(f"pip could not install {requirement!r} (see its message above); {_HOW}")
        env = {ENV_VAR: backend}
        if backend == "jax":
            env["JAX_ENABLE_X64"] = "1"
        session.run("pytest", "-p", "xconv.testing", *pytest_args, *session.posargs, env=env)

    session.__doc__ = "Run the tests on one array backend, through xconv.testing."
    session.__name__ = name
    parametrized = nox.parametrize("backend", names)(session)
    nox.session(name=name, python=python)(parametrized)
    return session


def _installable(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() or (folder / "setup.py").is_file()
