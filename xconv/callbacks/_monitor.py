"""Watching one logged quantity for improvement: shared by the plateau-based callbacks."""

from __future__ import annotations

import math
from typing import Any

from xconv._validation import nonnegative_real, one_of

__all__ = ["Monitor"]


class Monitor:
    """The best value so far of ``logs[name]``, and whether a new value improves on it.

    Args:
        name: the logged quantity (``"val_loss"``, ``"accuracy"``, ...).
        mode: ``"min"``, ``"max"``, or ``"auto"``: ``"max"`` for names with ``acc`` in
            them (accuracies), ``"min"`` for the rest (losses).
        min_delta: how much a value must beat the best by to count, >= 0.
        owner: the callback's name, for error messages.
    """

    def __init__(self, name: str, mode: str, min_delta: float, owner: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"`monitor` must be the name of a logged quantity, got {name!r}")
        mode = one_of(mode, "mode", ("auto", "min", "max"))
        self.name, self.owner = name, owner
        self.mode = ("max" if "acc" in name else "min") if mode == "auto" else mode
        self.min_delta = nonnegative_real(min_delta, "min_delta")
        self.best = math.inf if self.mode == "min" else -math.inf

    def check_keys(self, keys: Any) -> None:
        """Refuse, before training, a name the fit will never log."""
        if self.name not in keys:
            hint = " (pass validation data to fit)" if self.name.startswith("val_") else ""
            raise ValueError(
                f"{self.owner} monitors {self.name!r}, but this fit logs {sorted(keys)}{hint}"
            )

    def reset(self) -> None:
        """Forget the best value."""
        self.best = math.inf if self.mode == "min" else -math.inf

    def improves(self, value: float) -> bool:
        """Whether `value` beats the best by more than `min_delta` (NaN never does)."""
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def value(self, logs: dict[str, float] | None) -> float:
        """The monitored value in an epoch's logs."""
        if not logs or self.name not in logs:
            raise ValueError(f"{self.owner} monitors {self.name!r}, missing from the logs {logs}")
        return float(logs[self.name])
