"""The `Optimizer` base class: functional updates with per-parameter state.

An optimizer never changes an array in place. ``update(key, param, grad)`` returns
the new parameter and remembers, under `key`, what the rule needs next time (moment
arrays in the parameter's own namespace, on its device, and a step count). That works
for immutable arrays (JAX) as well as mutable ones.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from xconv._typing import Array, Namespace
from xconv._validation import (
    check_shape,
    namespace_of,
    nonnegative_real,
    positive_int,
)
from xconv.backends import Backend, backend_for, get, get_backend

__all__ = ["Optimizer"]


def _to_host(x: Array, backend: Backend | None) -> np.ndarray:
    """A NumPy copy of an array of `backend` (by default, found from the array)."""
    if backend is None:
        backend = backend_for(array_api_compat.array_namespace(x))
    if backend is None:
        raise TypeError(f"optimizer state holds an array of no registered backend: {type(x)!r}")
    return np.array(backend.to_numpy(x), copy=True)


#: every Optimizer subclass by its folded class name (the first one defined keeps a
#: name), for `Optimizer.from_config`: the built-in ones, and any a user defines
_CLASSES: dict[str, type[Optimizer]] = {}


def _folded(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


class Optimizer:
    """Base class of the update rules: ``new_param = rule(param, grad, state)``.

    Subclasses set `slots` (the names of the arrays they keep per parameter, each
    shaped like the parameter and starting at zero), implement `_step` and
    `_hyperparameters`, and validate their arguments in ``__init__``.

    Args:
        learning_rate: step size, >= 0. A plain attribute: change it between steps to
            follow a schedule.
    """

    #: names of the arrays kept per parameter; the keys of `state_dict` besides "step"
    slots: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CLASSES.setdefault(_folded(cls.__name__), cls)

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = nonnegative_real(learning_rate, "learning_rate")
        self._steps: dict[str, int] = {}
        self._state: dict[str, dict[str, Array]] = {}

    def __repr__(self) -> str:
        config = self.get_config()
        name = config.pop("class")
        return f"{name}({', '.join(f'{k}={v!r}' for k, v in config.items())})"

    # -- the update rule ----------------------------------------------------------------

    def update(self, key: str, param: Array, grad: Array, /) -> Array:
        """One step for the parameter called `key`: return its new value.

        `param` is not modified. The state kept under `key` (moments, step count)
        moves one step forward; the first call for a key starts it at zero.

        Args:
            key: a name unique to this parameter in the model (e.g. "0.weight").
            param: the parameter's current value.
            grad: the gradient of the loss with respect to `param`.

        Returns:
            The updated parameter, in `param`'s namespace, dtype and device.

        Shape:
            `grad` and the result have the shape of `param`.
        """
        if not isinstance(key, str):
            raise TypeError(f"`key` must be a string, got {key!r}")
        xp = namespace_of(param=param, grad=grad)
        shape = tuple(param.shape)
        check_shape(grad, "grad", shape, "the shape of `param`")
        # the state of this key, or zeros on its first step
        state = self._state.get(key)
        if state is None:
            state = {name: xp.zeros_like(param) for name in self.slots}
        else:
            for array in state.values():
                if tuple(array.shape) != shape:
                    raise ValueError(
                        f"`param` {key!r} has shape {shape}, but the optimizer's state for "
                        f"it has shape {tuple(array.shape)}; call reset() after changing "
                        "the model"
                    )
            namespace_of(param=param, **state)
        # step, then keep the new state only once the step succeeded
        step = self._steps.get(key, 0) + 1
        new_param, new_state = self._step(param, grad, state, step, xp, self.learning_rate)
        self._state[key] = new_state
        self._steps[key] = step
        return new_param

    def _step(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        step: Any,
        xp: Namespace,
        learning_rate: Any,
    ) -> tuple[Array, dict[str, Array]]:
        """The rule: new parameter and new state at step `step` (1 on the first call).

        A pure function of its arguments: `step` and `learning_rate` are numbers, or
        0-d arrays inside a compiled training step (`jax.jit`).
        """
        raise NotImplementedError

    # -- the functional form, for the training step ---------------------------------------

    def slots_for(self, key: str, param: Array, /) -> dict[str, Array]:
        """The arrays kept for `key`, or zeros like `param` before its first step."""
        state = self._state.get(key)
        if state is None:
            xp = namespace_of(param=param)
            return {name: xp.zeros_like(param) for name in self.slots}
        return dict(state)

    def steps_taken(self, key: str, /) -> int:
        """How many updates `key` has had."""
        return self._steps.get(key, 0)

    def apply(
        self,
        param: Array,
        grad: Array,
        state: dict[str, Array],
        /,
        *,
        step: Any,
        learning_rate: Any,
    ) -> tuple[Array, dict[str, Array]]:
        """The update rule as a pure function: ``(new param, new state)``; keeps nothing.

        `state` is what `slots_for` gave, `step` the update's number (1 for the first).
        The training step calls this, then `commit`; `update` does both for one key.
        """
        xp = namespace_of(param=param, grad=grad)
        return self._step(param, grad, state, step, xp, learning_rate)

    def commit(self, states: dict[str, dict[str, Array]], steps: dict[str, int], /) -> None:
        """Keep the state of a step taken with `apply`: `states[key]` after `steps[key]`."""
        for key, state in states.items():
            self._state[key] = dict(state)
            self._steps[key] = int(steps[key])

    # -- state --------------------------------------------------------------------------

    def state_arrays(self) -> list[Array]:
        """Every state array, in a stable order (for `set_state_arrays`)."""
        return [
            state[name]
            for key in sorted(self._state)
            for state in [self._state[key]]
            for name in sorted(state)
        ]

    def set_state_arrays(self, arrays: list[Array], /) -> None:
        """Replace the state arrays by `arrays`, given in the order of `state_arrays`.

        For handing the state through a transformation, such as persisting Dask graphs.
        """
        holders = [(key, name) for key in sorted(self._state) for name in sorted(self._state[key])]
        if len(arrays) != len(holders):
            raise ValueError(f"`arrays` must hold {len(holders)} arrays, got {len(arrays)}")
        for (key, name), array in zip(holders, arrays, strict=True):
            old = self._state[key][name]
            if tuple(array.shape) != tuple(old.shape):
                raise ValueError(
                    f"`arrays` entry for {key!r}/{name!r} has shape {tuple(array.shape)}, "
                    f"expected {tuple(old.shape)}"
                )
        for (key, name), array in zip(holders, arrays, strict=True):
            self._state[key][name] = array

    def reset(self) -> None:
        """Forget all state: the next update of every key is a first step."""
        self._steps = {}
        self._state = {}

    def state_dict(self, *, backend: str | Backend | None = None) -> dict[str, dict[str, Any]]:
        """The state as host data: ``{"step": {key: int}, slot: {key: ndarray}, ...}``.

        One entry per name in `slots` (e.g. ``"exp_avg"``), each mapping the keys
        given to `update` to NumPy copies of the arrays, so the whole state can be
        written to an ``.npz`` file. Hyperparameters are in `get_config`.

        Args:
            backend: the backend the state's arrays belong to (default: found from
                each array's namespace).
        """
        source = get(backend) if backend is not None else None
        result: dict[str, dict[str, Any]] = {"step": dict(self._steps)}
        for name in self.slots:
            result[name] = {
                key: _to_host(state[name], source) for key, state in self._state.items()
            }
        return result

    def load_state_dict(
        self,
        state: dict[str, dict[str, Any]],
        /,
        *,
        backend: str | Backend | None = None,
        device: Any = None,
    ) -> None:
        """Replace the state with one from `state_dict`, moving arrays to `backend`.

        Args:
            state: what `state_dict` returned (possibly read back from a file).
            backend: where the parameters live (default: the current backend).
            device: the parameters' device (default: the backend's default device).
        """
        if not isinstance(state, dict):
            raise TypeError(f"`state` must be a dict from state_dict(), got {type(state)!r}")
        expected = {"step", *self.slots}
        if set(state) != expected:
            raise ValueError(
                f"`state` must have the entries {sorted(expected)} for "
                f"{type(self).__name__}, got {sorted(state)}"
            )
        steps = state["step"]
        if not isinstance(steps, dict):
            raise TypeError(f"`state['step']` must be a dict, got {type(steps)!r}")
        for key, step in steps.items():
            if not isinstance(key, str):
                raise TypeError(f"`state['step']` keys must be strings, got {key!r}")
            positive_int(step, f"state['step'][{key!r}]")
        for name in self.slots:
            arrays = state[name]
            if not isinstance(arrays, dict) or set(arrays) != set(steps):
                raise ValueError(
                    f"`state[{name!r}]` must hold one array for each key of "
                    f"`state['step']` ({sorted(steps)})"
                )
            for key, array in arrays.items():
                if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
                    raise TypeError(
                        f"`state[{name!r}][{key!r}]` must be a floating NumPy array, "
                        f"got {type(array).__name__}"
                    )
        # everything checked: move the arrays over
        target = get(backend) if backend is not None else get_backend()
        self._steps = {key: int(step) for key, step in steps.items()}
        self._state = {
            key: {name: target.asarray(state[name][key], device=device) for name in self.slots}
            for key in steps
        }

    # -- configuration ------------------------------------------------------------------

    def _hyperparameters(self) -> dict[str, Any]:
        """The constructor's arguments, as plain Python values."""
        return {"learning_rate": self.learning_rate}

    def get_config(self) -> dict[str, Any]:
        """``{"class": class name, **hyperparameters}``, JSON-able.

        ``get(config.pop("class"), **config)`` or `from_config` rebuilds the optimizer.
        """
        return {"class": type(self).__name__, **self._hyperparameters()}

    @classmethod
    def from_config(cls, config: dict[str, Any], /) -> Optimizer:
        """A new optimizer (no state) from what `get_config` returned."""
        if not isinstance(config, dict) or "class" not in config:
            raise ValueError(f"`config` must be a dict from get_config(), got {config!r}")
        options = {k: v for k, v in config.items() if k != "class"}
        name = config["class"]
        named = _CLASSES.get(_folded(name)) if isinstance(name, str) else None
        if named is None:
            raise ValueError(f"unknown optimizer {config['class']!r} in `config`")
        optimizer = named(**options)
        if not isinstance(optimizer, cls):
            raise ValueError(f"`config` describes a {config['class']}, not a {cls.__name__}")
        return optimizer
