"""``python -m benchmarks conv-parts``: each step of NumPy's convolution, timed alone."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import requires_torch_reason, torch

pytestmark = pytest.mark.skipif(torch is None, reason=requires_torch_reason)


@pytest.fixture
def parts(benchmarks_module: Any) -> Any:
    return benchmarks_module("_conv_parts")


@pytest.mark.parametrize(
    ("case", "rows"),
    [
        ((2, 3, 6, 6, 4, 3, 1, 1), False),  # kw * C = 9: one column per window
        ((2, 2, 7, 7, 3, 3, 2, 0), False),
        ((2, 8, 6, 6, 4, 3, 1, 1), True),  # kw * C = 24: one row per window
        ((2, 16, 7, 7, 3, 3, 2, 0), True),
    ],
)
def test_every_part_is_timed_in_the_layout_xconv_uses(parts, case, rows):
    timed = parts._case_parts(case, calls=1)
    assert timed.pop("rows") is rows
    assert list(timed) == parts.PARTS
    assert all(ms > 0 for ms in timed.values())


def test_the_table_sets_each_total_against_the_sgemm_ceiling(parts):
    row: dict[str, Any] = {"shape": [2, 3, 6, 6, 4, 3, 1, 1]}
    row.update(dict.fromkeys(parts.PARTS, 1.0), xconv_forward_backward=6.0)
    row.update(torch_forward_backward=2.0, sgemm_ceiling=3.0)
    result = {"rounds": 1, "calls": 1, "rows": [row], "load_note": "idle"}
    text = parts.table(result)
    # xconv / ceiling 2.00, torch / ceiling 0.67, xconv / torch 3.00
    assert "| 3.00 | 1.00 | 6.00 | 2.00 | 1.00 | 2.00 | 0.67 | 3.00 |" in text
