"""One test session per array backend: `nox`, or `nox -s "tests(backend='jax')"`."""

import os

import nox
from nox.command import CommandFailed

# Where xconv comes from: a release on your package index ("xconv", "xconv==0.1.0"),
# else a clone's folder or a wheel: `XCONV=../xconv nox`.
XCONV = os.environ.get("XCONV", "xconv")
# xconv's extras: test (pytest), torch (PyTorch, the reference) and the backend's library
EXTRAS = {
    "numpy": "test,torch",
    "array_api_strict": "test,torch,array-api-strict",
    "torch": "test,torch",
    "jax": "test,torch,jax",
    "dask": "test,torch,dask",
}


@nox.session
@nox.parametrize("backend", list(EXTRAS))
def tests(session: nox.Session, backend: str) -> None:
    """Run the tests on one array backend."""
    try:
        # constraints.txt pins PyTorch (a CPU build: see the file)
        pins = ["--constraint", "constraints.txt"]
        session.install(*pins, f"{XCONV}[{EXTRAS[backend]}]", "-e", ".")
    except CommandFailed:
        session.error(
            f"pip could not install xconv from {XCONV!r}: set XCONV to a clone of xconv "
            "(XCONV=../xconv nox), a wheel (XCONV=dist/xconv-0.1.0-py3-none-any.whl) "
            "or a release's requirement (XCONV='xconv==0.1.0')"
        )
    env = {"XCONV_TEST_BACKENDS": backend}
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"  # float64 references need float64 JAX arrays
    session.run("pytest", *session.posargs, env=env)
