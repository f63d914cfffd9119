"""Time conv2d in a given source tree, for before/after comparisons; prints JSON.

``python -m benchmarks._ab_worker TREE`` imports xconv from the folder TREE (a checkout
or `git worktree` of any commit) and prints, for each anchor shape of the `conv` suite,
the median seconds of `conv2d` and of `conv2d` + `conv2d_backward` (float32, with
bias). Alternate two trees in fresh processes, with the OpenBLAS variables unset, to
compare commits:

    for round in 1 2 3 4; do for tree in ../before .; do
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks._ab_worker $tree
    done; done
"""

from __future__ import annotations

import json
import statistics
import sys
import time

from ._conv_worker import SHAPES


def main(tree: str) -> None:
    sys.path.insert(0, tree)
    import numpy as np

    from xconv.functional import conv2d, conv2d_backward

    rng = np.random.default_rng(0)
    result = {}
    for shape in SHAPES:
        n, c, h, w, f, k, s, p = shape
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        weight = rng.standard_normal((f, c, k, k)).astype(np.float32)
        bias = np.zeros(f, np.float32)

        def forward() -> None:
            conv2d(x, weight, bias, stride=s, padding=p)  # noqa: B023

        def both() -> None:
            y = conv2d(x, weight, bias, stride=s, padding=p)  # noqa: B023
            conv2d_backward(y, x, weight, stride=s, padding=p)  # noqa: B023

        times = []
        for step in (forward, both):
            for _ in range(3):  # warm-up
                step()
            started = time.perf_counter()
            step()
            repeats = max(3, int(0.05 / max(1e-5, time.perf_counter() - started)))
            samples = []
            for _ in range(9):
                started = time.perf_counter()
                for _ in range(repeats):
                    step()
                samples.append((time.perf_counter() - started) / repeats)
            times.append(statistics.median(samples))
        result[str(shape)] = times
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
