"""One test session per array backend: `nox -s tests`, or `nox -s "tests(backend='jax')"`."""

import os

import nox

# each backend's library comes with the xconv extra of its name; `test` brings pytest and
# PyTorch, the reference. XCONV may name a checkout of xconv instead of the release.
XCONV = os.environ.get("XCONV", "xconv")
EXTRAS = {"numpy": "", "array_api_strict": "array-api-strict", "torch": "torch", "jax": "jax"}


@nox.session
@nox.parametrize("backend", list(EXTRAS))
def tests(session: nox.Session, backend: str) -> None:
    """Run the tests on one array backend."""
    session.install(f"{XCONV}[test,{EXTRAS[backend]}]".replace(",]", "]"), "-e", ".")
    env = {"XCONV_TEST_BACKENDS": backend}
    if backend == "jax":
        env["JAX_ENABLE_X64"] = "1"  # float64 references need float64 JAX arrays
    session.run("pytest", *session.posargs, env=env)
