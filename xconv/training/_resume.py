"""Checks of a checkpoint's training state against the fit resuming it.

`restore_checkpoint` (in `_files`) reads a checkpoint; these decide whether it belongs
to this fit: the same architecture, loss and optimizer (`check_same_model`), the same
run (data size and fingerprint, batch size, shuffling: `check_same_run`) and a
training state that fits this fit's history (`check_training`).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path
from typing import Any

from xconv import losses as _losses

from ._protocols import TrainableModel

__all__ = ["DATA_KEY", "check_same_model", "check_same_run", "check_training"]


def check_training(
    training: dict[str, Any],
    run: dict[str, Any],
    keys: list[str],
    n_epochs: int,
    n_layers: int,
    path: Path,
) -> tuple[int, dict[str, list[float]], dict[str, Any], Any, list[Any]]:
    """A checkpoint's training state, checked against this fit."""
    try:
        epoch, history = training["epoch"], training["history"]
        saved_run, steps = training["run"], training["optimizer_steps"]
        batch_state, layer_states = training["batch_rng"], training["layer_rngs"]
    except (KeyError, TypeError):
        raise ValueError(f"{path}: incomplete training state in the checkpoint") from None
    check_same_run(saved_run, run, path)
    if (
        isinstance(epoch, bool)
        or not isinstance(epoch, int)
        or epoch < 1
        or not isinstance(history, dict)
        or sorted(history) != sorted(keys)
        or any(not isinstance(v, list) or len(v) != epoch for v in history.values())
    ):
        raise ValueError(
            f"{path}: the checkpoint's epoch {epoch!r} and history (keys "
            f"{sorted(history) if isinstance(history, dict) else history!r}) do not fit "
            f"this fit(), which records {keys}"
        )
    if epoch > n_epochs:
        raise ValueError(
            f"{path}: the checkpoint is after epoch {epoch}, beyond `n_epochs`={n_epochs}"
        )
    try:
        values = {key: [float(v) for v in values] for key, values in history.items()}
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{path}: the checkpoint's history holds non-numbers") from None
    if not isinstance(layer_states, list) or len(layer_states) != n_layers:
        raise ValueError(f"{path}: the checkpoint has no generator state for each layer")
    return epoch, values, steps, batch_state, layer_states


#: the key of the training data's fingerprint in a run's description
DATA_KEY = "data_sha256"


def check_same_run(saved_run: Any, run: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint of another run; warn where it predates data fingerprints."""
    if not isinstance(saved_run, dict):
        raise ValueError(f"{path}: incomplete training state in the checkpoint")
    saved_size = {k: v for k, v in saved_run.items() if k != DATA_KEY}
    size = {k: v for k, v in run.items() if k != DATA_KEY}
    if saved_size != size:
        raise ValueError(
            f"{path}: the checkpoint is of a run with {saved_size!r}, this one has {size!r}; "
            "resume with the same data, batch_size and shuffle"
        )
    saved_data, data = saved_run.get(DATA_KEY), run.get(DATA_KEY)
    if (saved_data is None) != (data is None):  # a checkpoint from before fingerprints
        warnings.warn(
            f"{path}: {'the checkpoint' if saved_data is None else 'this data (on a cluster)'}"
            " has no fingerprint of the training data; resuming trusts that X and y are "
            "those of the interrupted run",
            UserWarning,
            stacklevel=5,  # Resume.on_train_begin, which asked for the checkpoint
        )
    elif saved_data != data:
        raise ValueError(
            f"{path}: the checkpoint was written training on other data (same size, other "
            "values: SHA-256 of X and y differ); resume with the same X and y"
        )


def check_same_model(model: TrainableModel, config: dict[str, Any], path: Path) -> float:
    """Refuse a checkpoint of another architecture, loss or optimizer; its learning rate."""
    mine = model.get_config()
    config = dict(config)
    if isinstance(config.get("loss"), str):  # older files: the loss's class name
        with contextlib.suppress(TypeError, ValueError):  # else it differs below
            config["loss"] = _losses.from_config(config["loss"]).get_config()
    for key in ("dtype", "loss", "layers", "graph"):
        if config.get(key) != mine.get(key):
            raise ValueError(
                f"{path}: the checkpoint's {key} {config.get(key)!r} differs from this "
                f"model's {mine.get(key)!r}"
            )
    saved_optimizer = config.get("optimizer")
    if not isinstance(saved_optimizer, dict):
        raise ValueError(
            f"{path}: the checkpoint's optimizer {saved_optimizer!r} is not a JSON object"
        )
    saved_optimizer = dict(saved_optimizer)
    learning_rate = saved_optimizer.pop("learning_rate", None)
    current_optimizer = {k: v for k, v in mine["optimizer"].items() if k != "learning_rate"}
    if saved_optimizer != current_optimizer or not isinstance(learning_rate, int | float):
        raise ValueError(
            f"{path}: the checkpoint's optimizer {config.get('optimizer')!r} differs from "
            f"this model's {mine['optimizer']!r}"
        )
    # as the optimizers take it: finite, >= 0 (JSON may hold NaN, Infinity, 10**400)
    rate = float(learning_rate) if abs(learning_rate) < 1e300 else math.inf
    if isinstance(learning_rate, bool) or not math.isfinite(rate) or rate < 0:
        raise ValueError(
            f"{path}: the checkpoint's learning rate {learning_rate!r} is not a finite, "
            "non-negative number"
        )
    return rate
