"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has no Python example"
    namespaces = []
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, str(README), "exec"), namespace)
        namespaces.append(namespace)
    functional, training, *_ = namespaces  # later examples assert their own results
    assert functional["y"].shape == (8, 16, 16, 16)
    assert functional["grad_x"].shape == (8, 3, 32, 32)
    assert len(training["history"]["loss"]) == 5
    assert training["accuracy"] > 0.8
