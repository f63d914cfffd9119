"""array-api-strict: the standard and nothing more, to prove code is portable."""

from __future__ import annotations

from xconv._typing import Namespace

from ._base import Backend


class ArrayApiStrictBackend(Backend):
    """``array_api_strict`` arrays: NumPy underneath, only the standard on top.

    Not for real work: xconv's suite runs on it to prove that the generic code uses the
    standard alone.
    """

    name = "array_api_strict"
    module = "array_api_strict"
    array_api_name = "array_api_strict"
    extra = "array-api-strict"

    @property
    def namespace(self) -> Namespace:
        return self.library
