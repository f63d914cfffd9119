"""Collection for the whole repository (pytest reads `xconv/` too, for its doctests).

The modules that delegate to one library import it at their top, as they are imported
only when that library's arrays arrive: leave them out of the doctest collection where
the library is not installed (each nox session installs one backend's extra).
"""

from __future__ import annotations

import importlib.util

collect_ignore = [
    f"xconv/functional/_{library}_native.py"
    for library in ("jax", "torch")
    if importlib.util.find_spec(library) is None
]
