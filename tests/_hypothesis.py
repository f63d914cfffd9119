"""Hypothesis settings of the fuzz tests: a few reproducible examples in CI, many more
under ``nox -s fuzz``.

``XCONV_FUZZ_EXAMPLES`` sets the number of examples per test and backend; when it is
set, examples are drawn at random (a new seed each run) instead of derandomized, so
repeated fuzz runs explore new inputs, and Hypothesis prints how to reproduce a
failure. Unset (CI), each test draws the same `EXAMPLES` examples every run, fewer
(`SLOW_EXAMPLES`) on libraries where every new shape costs a compilation (JAX).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

ENV = "XCONV_FUZZ_EXAMPLES"
_requested = os.environ.get(ENV, "").strip()

#: examples per test in CI, and on the backends where new shapes are slow
EXAMPLES, SLOW_EXAMPLES = 30, 3
SLOW_BACKENDS = frozenset({"jax"})


def fuzz_settings(backend: str | None = None) -> settings:
    """Settings for a fuzz test on `backend` (None: one that is not slow)."""
    if _requested:
        examples = int(_requested)
    else:
        examples = SLOW_EXAMPLES if backend in SLOW_BACKENDS else EXAMPLES
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not _requested,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        print_blob=True,
    )
