"""Callbacks that report: a progress bar (or lines), and a CSV file of the history."""

from __future__ import annotations

import csv
import os
import sys
import time
from typing import IO, Any

from xconv._validation import true_or_false, writable_file

from ._base import Callback, Logs

__all__ = ["CSVLogger", "ProgressBar"]


def _describe(logs: Logs) -> str:
    return " - ".join(f"{key} {value:.4f}" for key, value in logs.items())


class ProgressBar(Callback):
    """Show training progress on standard error (``fit(verbose=...)`` adds one).

    On a terminal with tqdm installed, a bar per epoch that moves with each batch and
    shows the running loss; otherwise one plain line per epoch (its logs and seconds).

    Args:
        stream: where to write (default ``sys.stderr``, looked up when training starts).
        bar: True for the bar, False for lines, None (default) for the bar only on a
            terminal with tqdm installed.
    """

    def __init__(self, stream: IO[str] | None = None, bar: bool | None = None) -> None:
        if bar is not None and not isinstance(bar, bool):
            raise TypeError(f"`bar` must be True, False or None, got {bar!r}")
        if stream is not None and not (
            callable(getattr(stream, "write", None)) and callable(getattr(stream, "flush", None))
        ):
            raise TypeError(
                f"`stream` must be a text stream (with write and flush) or None, got {stream!r}"
            )
        self.stream, self.bar = stream, bar
        self._tqdm: Any = None
        self._bar: Any = None
        self._started = 0.0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        self._out = stream
        use_bar = self.bar
        if use_bar is None:
            use_bar = bool(getattr(stream, "isatty", lambda: False)())
        self._tqdm = None
        if use_bar:
            try:
                from tqdm import tqdm
            except ImportError:
                if self.bar:
                    raise ImportError(
                        "ProgressBar(bar=True) needs tqdm: pip install 'xconv[cli]'"
                    ) from None
            else:
                self._tqdm = tqdm

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._started = time.perf_counter()
        self._loss_sum = self._count = 0.0
        if self._tqdm is not None:
            loop = self.loop
            batches = -(-loop.n_samples // loop.batch_size)
            self._bar = self._tqdm(
                total=batches,
                desc=f"epoch {epoch + 1}/{loop.epochs}",
                unit="batch",
                file=self._out,
                leave=True,
            )

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self._bar is not None and logs is not None:
            self._loss_sum += logs["loss"] * logs["size"]
            self._count += logs["size"]
            self._bar.set_postfix_str(f"loss {self._loss_sum / self._count:.4f}", refresh=False)
            self._bar.update(1)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        seconds = time.perf_counter() - self._started
        text = _describe(logs or {})
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self._bar.close()
            self._bar = None
            return
        line = f"epoch {epoch + 1}/{self.loop.epochs} - {seconds:.2f}s - {text}"
        print(line, file=self._out, flush=True)

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._bar is not None:  # training stopped inside an epoch
            self._bar.close()
            self._bar = None


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file (header: ``epoch`` and the keys).

    Args:
        filename: the file; its folder must exist.
        separator: the field separator.
        append: add rows to an existing file (a resumed fit) instead of starting anew.
    """

    def __init__(
        self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False
    ) -> None:
        path = writable_file(filename, "filename")  # a folder, /sys/...: now, not later
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"`separator` must be one character, got {separator!r}")
        self.filename, self.separator = path, separator
        self.append = true_or_false(append, "append")

    def on_train_begin(self, logs: Logs | None = None) -> None:
        keys = ["epoch", *self.loop.history]
        exists = self.append and self.filename.exists() and self.filename.stat().st_size > 0
        with open(self.filename, "a" if self.append else "w", newline="") as file:
            if not exists:
                csv.writer(file, delimiter=self.separator).writerow(keys)
        self._keys = keys

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        values = dict(logs or {}, epoch=epoch)
        with open(self.filename, "a", newline="") as file:
            csv.writer(file, delimiter=self.separator).writerow(
                [values.get(key, "") for key in self._keys]
            )
