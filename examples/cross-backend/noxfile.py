"""One test session per array backend: `nox -s tests`, or `nox -s "tests(backend='jax')"`."""

import os

import nox

# each backend's library comes with the xconv extra of its name; `test` brings pytest and
# PyTorch, the reference. XCONV may name a checkout of xconv instead of the release.
XCONV = os.environ.get("XCONV", "xconv")
EXTRAS = {
    "numpy": "test",
    "array_api_strict": "test,array-api-strict",
    "torch": "test,torch",
    "jax": "test,jax",
}


@nox.session
@nox.parametrize("backend", list(EXTRAS))
def tests(session: nox.Session, backend: str) -> None:
    """Run the tests on one array backend."""
    session.install(f"{XCONV}[{EXTRAS[backend]}]", "-e", ".")
    env = {"XCONV_TEST_BACKENDS": backend}
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"  # float64 references need float64 JAX arrays
    session.run("pytest", *session.posargs, env=env)
