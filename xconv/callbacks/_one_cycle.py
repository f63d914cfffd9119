"""The one-cycle learning-rate policy, set before every batch.

Smith and Topin (2017), "Super-Convergence": the rate climbs from a low start to
`max_lr` over the first `pct_start` of the run's steps, then falls along half a cosine
to far below its start. The formula is ``torch.optim.lr_scheduler.OneCycleLR``'s
(two phases, cosine annealing), without its momentum cycling, so the rates here are
the ones PyTorch's scheduler gives step by step (`tests/test_one_cycle.py` compares).

Example:
    >>> from xconv.callbacks import OneCycle
    >>> schedule = OneCycle(0.1, total_steps=10)
    >>> [round(schedule.rate(step), 5) for step in (0, 2, 9)]
    [0.004, 0.1, 0.0]
"""

from __future__ import annotations

import math

from xconv._validation import EXACT_IN_FLOAT, nonnegative_int, positive_int, positive_real

from ._base import Callback, Logs

__all__ = ["OneCycle"]


def _cosine(start: float, end: float, progress: float) -> float:
    """From `start` (progress 0) to `end` (progress 1) along half a cosine."""
    return end + (start - end) / 2 * (math.cos(math.pi * progress) + 1)


class OneCycle(Callback):
    """Set the optimizer's learning rate before every batch, along one cycle.

    Step ``s`` (counting batches from 0 over the whole fit) gets
    ``cos(initial_lr -> max_lr)`` over steps ``0 .. pct_start * total_steps - 1``,
    then ``cos(max_lr -> min_lr)`` up to step ``total_steps - 1``, where
    ``initial_lr = max_lr / div_factor`` and ``min_lr = initial_lr / final_div_factor``.

    Args:
        max_lr: the peak rate, > 0.
        total_steps: batches in the whole run, at most 2**53; by default the fit's
            epochs times its batches per epoch (``ceil(n_samples / batch_size)``), read
            when it starts.
        pct_start: the fraction of the steps spent climbing, in (0, 1).
        div_factor: ``max_lr / initial_lr``, > 0.
        final_div_factor: ``initial_lr / min_lr``, > 0.

    Attributes:
        rates: the rate of every batch this callback has set.

    A resumed fit continues the cycle at its epoch's first step.
    """

    def __init__(
        self,
        max_lr: float,
        *,
        total_steps: int | None = None,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        self.max_lr = positive_real(max_lr, "max_lr")
        self.total_steps = (
            None
            if total_steps is None
            else positive_int(total_steps, "total_steps", maximum=EXACT_IN_FLOAT)
        )
        pct = positive_real(pct_start, "pct_start")
        if not pct < 1:
            raise ValueError(f"`pct_start` must be in (0, 1), got {pct_start!r}")
        self.pct_start = pct
        self.div_factor = positive_real(div_factor, "div_factor")
        self.final_div_factor = positive_real(final_div_factor, "final_div_factor")
        self.rates: list[float] = []
        self._steps = self.total_steps or 1
        self._per_epoch = 0
        self._epoch = 0

    def rate(self, step: int) -> float:
        """The learning rate of batch `step` (from 0) of a run of `total_steps` batches."""
        step = nonnegative_int(step, "step", maximum=EXACT_IN_FLOAT)
        total = self.total_steps or self._steps
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        peak_step = float(self.pct_start * total) - 1
        if step <= peak_step:
            # climbing: steps 0 .. peak_step
            return _cosine(initial, self.max_lr, step / peak_step if peak_step > 0 else 1.0)
        # falling: peak_step .. total - 1 (later steps stay at the end)
        span = (total - 1) - peak_step
        progress = min((step - peak_step) / span, 1.0) if span > 0 else 1.0
        return _cosine(self.max_lr, final, progress)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        loop = self.loop
        self._per_epoch = -(-int(loop.n_samples) // int(loop.batch_size))
        if self.total_steps is None:
            self._steps = max(int(loop.epochs) * self._per_epoch, 1)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = int(epoch)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        rate = self.rate(self._epoch * self._per_epoch + int(batch))
        self.model.optimizer.learning_rate = rate
        self.rates.append(rate)
