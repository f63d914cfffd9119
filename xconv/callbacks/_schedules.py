"""Learning-rate schedules, and the callback that applies one at each epoch's start.

A schedule is a function of the epoch (counting from 0) that returns the learning rate
for that epoch. The three here are objects, so they print and compare:

- `StepDecay(initial_lr, factor, every)`: ``initial_lr * factor ** (epoch // every)``.
- `CosineDecay(initial_lr, epochs, final_lr)`: from `initial_lr` at epoch 0 down to
  `final_lr` at epoch `epochs` along half a cosine,
  ``final_lr + (initial_lr - final_lr) * (1 + cos(pi * min(epoch, epochs) / epochs)) / 2``.
- `LinearWarmup(schedule, warmup_epochs)`: ``schedule(0) * (epoch + 1) / (warmup_epochs
  + 1)`` during the first `warmup_epochs` epochs, then ``schedule(epoch -
  warmup_epochs)``: the rate climbs in equal steps to the schedule's start.

Example:
    >>> from xconv.callbacks import CosineDecay, LinearWarmup, StepDecay
    >>> [StepDecay(0.1, factor=0.5, every=2)(e) for e in range(5)]
    [0.1, 0.1, 0.05, 0.05, 0.025]
    >>> [round(CosineDecay(1.0, epochs=4)(e), 4) for e in range(6)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0, 0.0]
    >>> [round(LinearWarmup(StepDecay(0.3, every=10), warmup_epochs=2)(e), 4) for e in range(4)]
    [0.1, 0.2, 0.3, 0.3]
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xconv._validation import (
    EXACT_IN_FLOAT,
    as_int,
    nonnegative_int,
    nonnegative_real,
    positive_int,
)

from ._base import Callback, Logs

__all__ = ["CosineDecay", "LearningRateScheduler", "LinearWarmup", "StepDecay"]


def _epoch(epoch: object) -> int:
    return nonnegative_int(epoch, "epoch", maximum=EXACT_IN_FLOAT)


def _keep(schedule: object, field: str, value: object) -> None:
    """Set a frozen dataclass's `field` to its checked value (a plain int or float)."""
    object.__setattr__(schedule, field, value)


@dataclass(frozen=True)
class StepDecay:
    """``initial_lr * factor ** (epoch // every)``: the rate drops by `factor` (in (0, 1])
    every `every` epochs."""

    initial_lr: float
    factor: float = 0.1
    every: int = 30

    def __post_init__(self) -> None:
        _keep(self, "initial_lr", nonnegative_real(self.initial_lr, "initial_lr"))
        factor = nonnegative_real(self.factor, "factor")
        if not 0 < factor <= 1:  # a decay, never growth
            raise ValueError(f"`factor` must be in (0, 1], got {self.factor!r}")
        _keep(self, "factor", factor)
        _keep(self, "every", positive_int(self.every, "every"))

    def __call__(self, epoch: int) -> float:
        return float(self.initial_lr * self.factor ** (_epoch(epoch) // self.every))


@dataclass(frozen=True)
class CosineDecay:
    """Half a cosine from `initial_lr` (epoch 0) to `final_lr` (epoch `epochs` and after)."""

    initial_lr: float
    epochs: int
    final_lr: float = 0.0

    def __post_init__(self) -> None:
        _keep(self, "initial_lr", nonnegative_real(self.initial_lr, "initial_lr"))
        _keep(self, "final_lr", nonnegative_real(self.final_lr, "final_lr"))
        _keep(self, "epochs", positive_int(self.epochs, "epochs", maximum=EXACT_IN_FLOAT))

    def __call__(self, epoch: int) -> float:
        progress = min(_epoch(epoch), self.epochs) / self.epochs
        cosine = (1 + math.cos(math.pi * progress)) / 2
        return self.final_lr + (self.initial_lr - self.final_lr) * cosine


@dataclass(frozen=True)
class LinearWarmup:
    """`warmup_epochs` epochs climbing linearly to ``schedule(0)``, then `schedule`."""

    schedule: Callable[[int], float]
    warmup_epochs: int

    def __post_init__(self) -> None:
        if not callable(self.schedule):
            raise TypeError(f"`schedule` must be a function of the epoch, got {self.schedule!r}")
        warmup = positive_int(self.warmup_epochs, "warmup_epochs", maximum=EXACT_IN_FLOAT)
        _keep(self, "warmup_epochs", warmup)  # a plain int: np.uint8(255) + 1 wraps

    def __call__(self, epoch: int) -> float:
        epoch = _epoch(epoch)
        if epoch < self.warmup_epochs:
            first = nonnegative_real(self.schedule(0), "the schedule's rate at epoch 0")
            return first * (epoch + 1) / (self.warmup_epochs + 1)
        later = epoch - self.warmup_epochs
        return nonnegative_real(self.schedule(later), f"the schedule's rate at epoch {later}")


class LearningRateScheduler(Callback):
    """Set the optimizer's learning rate from `schedule` before every epoch.

    Args:
        schedule: ``schedule(epoch)`` or, as in Keras, ``schedule(epoch, lr)`` (`lr` the
            current rate) returning the epoch's learning rate, a number >= 0. Epochs
            count from 0, and a resumed fit continues the schedule where it was.
        verbose: print each new rate: True or False (or, as in Keras, 1 or 0).

    Attributes:
        rates: the learning rate of every epoch this callback has set.

    Example:
        >>> from xconv.callbacks import LearningRateScheduler, StepDecay
        >>> LearningRateScheduler(StepDecay(0.1, every=5)).schedule(5)
        0.010000000000000002
    """

    def __init__(self, schedule: Callable[..., float], verbose: bool = False) -> None:
        if not callable(schedule):
            raise TypeError(f"`schedule` must be callable, got {schedule!r}")
        given: object = verbose  # checked as what a caller may really pass
        if not isinstance(given, bool | np.bool_) and as_int(given) not in (0, 1):
            raise TypeError(f"`verbose` must be True, False, 1 or 0, got {verbose!r}")
        self.schedule, self.verbose = schedule, bool(verbose)
        self._takes_rate = _takes_two_arguments(schedule)
        self.rates: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        optimizer = self.model.optimizer
        if self._takes_rate:
            rate = self.schedule(epoch, optimizer.learning_rate)
        else:
            rate = self.schedule(epoch)
        optimizer.learning_rate = nonnegative_real(rate, f"the schedule's rate at epoch {epoch}")
        self.rates.append(optimizer.learning_rate)
        if self.verbose:
            print(f"epoch {epoch + 1}: learning rate {optimizer.learning_rate:.6g}")


def _takes_two_arguments(function: Callable[..., Any]) -> bool:
    """Whether `function` can be called with (epoch, lr)."""
    try:
        inspect.signature(function).bind(0, 0.1)
    except TypeError:
        return False
    except ValueError:  # no signature (some builtins): call it as Keras does
        return True
    return True
