"""The `Layer` base class: forward, backward, parameters and their gradients."""

from __future__ import annotations

import inspect
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from xconv._typing import Array as Array  # (re-exported: _regularization imports it from here)
from xconv._typing import Namespace
from xconv._validation import namespace_of, nonnegative_int
from xconv.backends import Backend, backend_for, get, get_backend

from ._initializers import initial_weights

if TYPE_CHECKING:
    from ._graph import SymbolicTensor

__all__ = ["Layer", "StochasticLayer", "make_rng"]


def make_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """A host generator from a seed, or the generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    try:
        return np.random.default_rng(nonnegative_int(seed, "seed"))
    except (TypeError, ValueError):  # one kind of error, naming both accepted kinds
        raise TypeError(
            f"`seed` must be a non-negative integer or a numpy Generator, got {seed!r}"
        ) from None


class Layer:
    """A stateful building block of a network.

    Layers compute gradients; they do not update themselves. `backward_pass` returns
    the gradient for the layer below and leaves the gradients of the layer's own
    parameters in `grads`, keyed like `params`; an optimizer (or you) then replaces
    the arrays in `params`. That keeps gradient checks, accumulation and
    data-parallel reduction simple, and works with immutable arrays (JAX).

    A layer with parameters creates them in `build`, which `initialize` calls once
    the input shape, the host generator and the backend are settled; see
    ``docs/custom-layer.md``.
    """

    #: whether an optimizer should update this layer's parameters
    trainable: bool = True
    #: whether training draws random numbers (dropout masks, augmentation offsets): such
    #: a layer implements `sample_noise` and takes ``forward_pass(X, training, noise=)``
    stochastic: bool = False
    #: a `stochastic` layer's host generator, which `initialize` makes from the seed
    _rng: np.random.Generator | None = None

    def __init__(self, input_shape: tuple[int, ...] | None = None) -> None:
        self.input_shape: tuple[int, ...] | None = None
        #: the layer's parameters by name, arrays of its backend
        self.params: dict[str, Array] = {}
        #: gradients of the loss with respect to `params`, set by `backward_pass`
        self.grads: dict[str, Array] = {}
        #: state that is saved with the layer but not learned (running statistics)
        self.buffers: dict[str, Array] = {}
        self.backend: Backend | None = None
        if input_shape is not None:
            self.set_input_shape(input_shape)

    def __repr__(self) -> str:
        return f"{self.layer_name()}(input_shape={self.input_shape})"

    def layer_name(self) -> str:
        """The layer's class name, for summaries."""
        return type(self).__name__

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        """Tell the layer the shape of one sample it will get (no batch axis)."""
        self.input_shape = tuple(shape)

    def initialize(
        self,
        *,
        seed: int | np.random.Generator = 0,
        dtype: Any = "float32",
        backend: str | Backend | None = None,
    ) -> None:
        """Create the parameters on `backend` (default: the current backend).

        What every layer does first is written here, once: a layer that builds
        parameters needs its input shape; `seed` (an int or a NumPy Generator) becomes
        the one host generator the layer draws from (so one seed gives the same layer
        on every backend); the backend is chosen. Then `build` makes the parameters.
        Layers write `build`, not this. (A layer that overrides `initialize` and calls
        ``super().initialize(...)`` first, as custom layers once did, still works.)
        """
        if self.input_shape is None and self._builds():
            raise ValueError(
                f"{self.layer_name()} needs its input shape before initialize(): pass "
                "input_shape= or call set_input_shape()"
            )
        rng = make_rng(seed)
        self.backend = get(backend) if backend is not None else get_backend()
        self.grads = {}
        if self.stochastic:
            self._rng = rng  # training noise is drawn from it too
        if self.input_shape is not None:
            self.build(self.input_shape, rng=rng, dtype=dtype)

    def build(
        self, input_shape: tuple[int, ...], /, *, rng: np.random.Generator, dtype: Any
    ) -> None:
        """Create the parameters (and buffers), the shape of one input sample known.

        `initialize` calls it once it has checked the input shape and chosen the
        backend (`self.backend`); draw every random number from `rng`, and make
        arrays with `make_weight`. A layer without parameters has nothing to build.
        """

    @classmethod
    def _builds(cls) -> bool:
        """Whether the layer has a `build` of its own (hence needs its input shape)."""
        return cls.build is not Layer.build

    def make_weight(
        self,
        shape: tuple[int, ...],
        *,
        dtype: Any,
        initializer: str = "zeros",
        rng: np.random.Generator | None = None,
        fan_in: int | None = None,
        fan_out: int | None = None,
    ) -> Array:
        """An array of `shape` on the layer's backend, for `build` to keep in `params`
        or `buffers`: made on the host by `initializer` (a name of
        `xconv.layers.INITIALIZERS`: the random ones draw from `rng` and need `fan_in`
        and `fan_out`), then moved to the backend."""
        if self.backend is None:
            raise RuntimeError(f"{self.layer_name()} makes weights in build(), after initialize()")
        return initial_weights(
            initializer,
            shape,
            fan_in=fan_in,
            fan_out=fan_out,
            rng=rng,
            backend=self.backend,
            dtype=dtype,
        )

    @property
    def initialized(self) -> bool:
        """Whether `initialize` has run."""
        return self.backend is not None

    def ensure_initialized(self, X: Array) -> None:
        """Build on first use: input shape, dtype and backend from the batch `X`."""
        if self.initialized:
            return
        xp = self.check_input(X)
        backend = backend_for(xp)
        if backend is None:
            raise TypeError(f"`X` is an array of no registered backend: {type(X)!r}")
        self.initialize(dtype=X.dtype, backend=backend)

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-able, read back from attributes of the same name.

        ``type(layer)(**layer.get_config())`` builds an equal, uninitialised layer; models
        save this. A layer that stores an argument under another name overrides this.
        """
        config: dict[str, Any] = {}
        for name, parameter in inspect.signature(type(self).__init__).parameters.items():
            if name == "self" or parameter.kind in (
                parameter.VAR_POSITIONAL,
                parameter.VAR_KEYWORD,
            ):
                continue
            if not hasattr(self, name):
                raise TypeError(
                    f"{type(self).__name__} keeps no attribute for its argument {name!r}: "
                    "override get_config()"
                )
            config[name] = _jsonable(getattr(self, name))
        return config

    def random_state(self) -> dict[str, Any] | None:
        """The state of the host generator the layer draws from in training, or None.

        Checkpoints save it (JSON-able), so a resumed training draws the same dropout
        masks as an uninterrupted one. Layers without training-time randomness have none.
        """
        return None

    def set_random_state(self, state: dict[str, Any] | None, /) -> None:
        """Restore what `random_state` returned."""
        if state is not None:
            raise ValueError(f"{self.layer_name()} draws no random numbers, got a state {state!r}")

    def sample_noise(self, n_samples: int, /) -> dict[str, Array]:
        """Draw what one training forward pass on `n_samples` samples needs at random.

        Only `stochastic` layers draw anything: from their host generator, as arrays of
        their backend, so the training step can take the noise as an argument (and be
        compiled, on JAX). ``forward_pass(X, training=True, noise=None)`` draws itself.
        """
        return {}

    def parameters(self) -> int:
        """How many numbers the layer learns (the ancestor's meaning of the name)."""
        return sum(math.prod(p.shape) for p in self.params.values())

    def output_shape(self) -> tuple[int, ...]:
        """Shape of one output sample (no batch axis); by default the input's."""
        if self.input_shape is None:
            raise ValueError(
                f"{self.layer_name()}'s output shape is unknown until its input shape is set"
            )
        return self.input_shape

    def check_input(self, X: Array, /, **arrays: Array | None) -> Namespace:
        """Validate a batch against `input_shape` (learnt from it if unset); return xp.

        This is where a forward pass infers its namespace, once: `arrays`, by name
        (None skipped), are the layer's own arrays the batch meets (its parameters),
        which must be of the batch's library, on its device, of its dtype.
        """
        xp = namespace_of(X=X, **arrays)
        self._check_sample_shape(X)
        return xp

    def _check_sample_shape(self, X: Array) -> None:
        """`check_input`'s check of the shape of `X`'s samples against `input_shape`."""
        if self.input_shape is None:
            self.set_input_shape(tuple(X.shape[1:]))
        elif tuple(X.shape[1:]) != self.input_shape:
            raise ValueError(
                f"`X` must have shape (N, {', '.join(map(str, self.input_shape))}) for "
                f"this {self.layer_name()}'s input_shape, got {tuple(X.shape)}"
            )

    def __call__(self, inputs: Any) -> SymbolicTensor:
        """Connect the layer in a graph model: ``y = Conv2D(16, 3)(x)``.

        `inputs` is a symbolic tensor (`xconv.Input`, or another layer's call), a list
        of them for a merge layer; the result is the layer's symbolic output. Each
        layer is called once. On arrays, use `forward_pass`.
        """
        from ._graph import connect  # the graph module builds on this one

        return connect(self, inputs)

    def forward_pass(self, X: Array, training: bool = True) -> Array:
        """The layer's output for the batch `X`; `training` keeps what backward needs."""
        raise NotImplementedError

    def backward_pass(self, accum_grad: Array) -> Array:
        """Gradient for the layer below, from the gradient of this layer's output."""
        raise NotImplementedError


def _jsonable(value: Any) -> Any:
    """Tuples as lists and NumPy scalars as Python numbers, for JSON."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


class StochasticLayer(Layer):
    """A layer that draws random numbers in training (dropout masks, augmentation).

    It keeps the host NumPy generator `initialize` makes from its seed (so one seed
    gives the same draws on every backend), and saves and restores its state for
    checkpoints. Subclasses implement `sample_noise` (drawing from `_rng`) and take
    ``forward_pass(X, training, noise=...)``.
    """

    stochastic = True

    def random_state(self) -> dict[str, Any] | None:
        return None if self._rng is None else dict(self._rng.bit_generator.state)

    def set_random_state(self, state: dict[str, Any] | None, /) -> None:
        if state is None:
            raise ValueError(f"{self.layer_name()} needs a generator state, got None")
        if self._rng is None:
            raise ValueError(f"{self.layer_name()} has no generator before initialize()")
        try:
            # a fresh generator of the same kind takes the state, then replaces ours
            rng = np.random.Generator(type(self._rng.bit_generator)())
            rng.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(
                f"not a {type(self._rng.bit_generator).__name__} state: {exc}"
            ) from None
        self._rng = rng
