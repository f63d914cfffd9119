"""The training step, written once: forward, loss, backward, the optimizer's update.

`NeuralNetwork.fit`, `NeuralNetwork.train_on_batch` and `xconv.distributed.fit` all
run these functions. Each takes every array it reads as an argument and returns every
array it changes -- parameters, buffers (running statistics), optimizer state, the
batch and its random noise in; new ones out -- so on JAX the model compiles the whole
step with `jax.jit`. The layers, the loss and the optimizer are the step's program:
Python objects read as code. The step installs the arrays it is given into the layers
before running them, and the caller keeps the arrays it returns (`TrainingStep.commit`).

The program is a `xconv.training.Network` (a stack of layers, or a graph of them with
merges); a plain list of layers runs as a stack.

- `gradients`: forward and backward over one batch; what every data-parallel shard runs.
- `apply_gradients`: the optimizer's rule for every trainable parameter.
- `train_step`: the two together.
- `TrainingStep`: a model's step: gathers its arrays, draws the noise, runs the step
  (compiled on JAX), and keeps the result only when asked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from xconv._typing import Array
from xconv.functional import kernel_threads
from xconv.layers import Layer
from xconv.losses import Loss, Metric
from xconv.optimizers import Optimizer

from ._network import Network, as_network
from ._protocols import StepModel

__all__ = [
    "StepResult",
    "TrainState",
    "TrainingStep",
    "apply_gradients",
    "gradients",
    "parameter_key",
    "train_step",
]

Store = dict[str, Array]


class TrainState(NamedTuple):
    """Every array one step reads and changes (a tuple, so JAX sees a pytree)."""

    params: list[Store]  # per layer, as `layer.params`
    buffers: list[Store]  # per layer, as `layer.buffers`
    slots: dict[str, Store]  # the optimizer's arrays per parameter key ("0.weight")


class StepResult(NamedTuple):
    """What `train_step` returns: the new state, the batch's loss and scores (0-d arrays).

    `scores` holds ``"accuracy"`` (the loss's) and each metric's value, by name.
    """

    state: TrainState
    loss: Array
    scores: dict[str, Array]


def parameter_key(index: int, name: str) -> str:
    """The optimizer's name for parameter `name` of layer `index` ("0.weight")."""
    return f"{index}.{name}"


def _trainable(layers: Sequence[Layer], params: Sequence[Store]) -> list[tuple[int, str]]:
    return [(i, name) for i, layer in enumerate(layers) if layer.trainable for name in params[i]]


def gradients(
    layers: Sequence[Layer] | Network,
    loss: Loss,
    params: Sequence[Store],
    buffers: Sequence[Store],
    X: Array,
    y: Array,
    noise: Sequence[Store | None],
    metrics: Sequence[Metric] = (),
) -> tuple[list[Store], list[Store], Array, dict[str, Array]]:
    """Forward and backward over one batch, in training mode.

    Returns the gradients of the batch's mean loss with respect to every layer's
    parameters, the layers' new buffers, the loss, and the scores by name: the loss's
    ``accuracy`` and each of `metrics` on the batch's predictions (0-d arrays).
    ``noise[i]`` is layer i's `sample_noise` (None: a stochastic layer draws its own).
    `layers` is a network (a stack or a graph) or a list of layers run as a stack.
    """
    network = as_network(layers)
    # install the arrays: the layers are the program, not the state
    for layer, layer_params, layer_buffers in zip(network, params, buffers, strict=True):
        layer.params, layer.buffers = dict(layer_params), dict(layer_buffers)
    if len(noise) != len(network):
        raise ValueError(f"`noise` has {len(noise)} entries for {len(network)} layers")
    # forward in the layers' order, loss, backward in reverse (gradients summed at forks)
    out = network.forward(X, training=True, noise=noise)
    value = loss.loss(y, out)
    scores = {"accuracy": loss.accuracy(y, out)}
    scores |= {metric.name: metric(y, out) for metric in metrics if metric.name not in scores}
    # (the gradient of the batch itself is never read: layers reading it skip it)
    network.backward(loss.gradient(y, out), input_gradient=False)
    layers = network.layers
    grads = [dict(layer.grads) if layer.params else {} for layer in layers]
    return grads, [dict(layer.buffers) for layer in layers], value, scores


def apply_gradients(
    layers: Sequence[Layer],
    optimizer: Optimizer,
    params: Sequence[Store],
    grads: Sequence[Store],
    slots: dict[str, Store],
    steps: dict[str, Any],
    learning_rate: Any,
) -> tuple[list[Store], dict[str, Store]]:
    """The optimizer's rule for every trainable parameter: (new params, new slots).

    `slots` and `steps` are keyed by `parameter_key`; ``steps[key]`` is the number of
    the update (1 for the first).
    """
    new_params = [dict(store) for store in params]
    new_slots: dict[str, Store] = {}
    for i, name in _trainable(layers, params):
        key = parameter_key(i, name)
        new_params[i][name], new_slots[key] = optimizer.apply(
            params[i][name],
            grads[i][name],
            slots[key],
            step=steps[key],
            learning_rate=learning_rate,
        )
    return new_params, new_slots


def train_step(
    layers: Sequence[Layer] | Network,
    loss: Loss,
    optimizer: Optimizer,
    state: TrainState,
    X: Array,
    y: Array,
    noise: Sequence[Store | None],
    steps: dict[str, Any],
    learning_rate: Any,
    metrics: Sequence[Metric] = (),
) -> StepResult:
    """One step: `gradients`, then `apply_gradients`. A pure function of its arrays."""
    grads, buffers, value, scores = gradients(
        layers, loss, state.params, state.buffers, X, y, noise, metrics
    )
    params, slots = apply_gradients(
        layers, optimizer, state.params, grads, state.slots, steps, learning_rate
    )
    return StepResult(TrainState(params, buffers, slots), value, scores)


class TrainingStep:
    """A model's training step: its arrays in, the step run, the result kept on request.

    On a backend whose library compiles (JAX), the step runs under `jax.jit`, compiled
    once per batch shape and program; the learning rate and the update's number are
    arguments, so a schedule does not recompile it. `compile=False` runs it eagerly.

    Args:
        model: a `NeuralNetwork`, or any `StepModel` (its `layers`, `network`,
            `loss_function`, `metrics`, `optimizer`, `backend` and `dtype` are read
            at each call).
        compile: None (default) compiles where the backend can (JAX); True or False.
    """

    def __init__(self, model: StepModel, *, compile: bool | None = None) -> None:
        self.model = model
        self.compile = compile
        self._compiled: Any = None
        self._program: str | None = None

    @property
    def compiles(self) -> bool:
        """Whether the step runs compiled on the model's current backend."""
        can = self.model.backend.name == "jax"
        return can if self.compile is None else bool(self.compile and can)

    # -- the model's arrays --------------------------------------------------------------

    def state(self) -> TrainState:
        """The model's arrays now (the optimizer's slots as zeros before a first update)."""
        layers = self.model.layers
        params = [dict(layer.params) for layer in layers]
        slots = {
            parameter_key(i, name): self.model.optimizer.slots_for(
                parameter_key(i, name), params[i][name]
            )
            for i, name in _trainable(layers, params)
        }
        return TrainState(params, [dict(layer.buffers) for layer in layers], slots)

    def next_steps(self) -> dict[str, int]:
        """The number of the next update of every trainable parameter."""
        layers = self.model.layers
        params = [layer.params for layer in layers]
        optimizer = self.model.optimizer
        return {
            parameter_key(i, name): optimizer.steps_taken(parameter_key(i, name)) + 1
            for i, name in _trainable(layers, params)
        }

    def noise(self, n_samples: int) -> list[Store | None]:
        """Each stochastic layer's random draws for a batch (None for the others)."""
        return [
            layer.sample_noise(n_samples) if layer.stochastic else None
            for layer in self.model.layers
        ]

    # -- running and keeping -------------------------------------------------------------

    def run(self, X: Array, y: Array) -> tuple[StepResult, dict[str, int]]:
        """The step on one batch, and the update numbers it used; the model is unchanged.

        The layers' generators move on (the noise is drawn), nothing else does.
        """
        model = self.model
        steps = self.next_steps()
        noise = self.noise(int(X.shape[0]))
        state = self.state()
        learning_rate = model.optimizer.learning_rate
        try:
            if not self.compiles:
                with kernel_threads(model.xp):
                    result = train_step(
                        model.network,
                        model.loss_function,
                        model.optimizer,
                        state,
                        X,
                        y,
                        noise,
                        steps,
                        learning_rate,
                        model.metrics,
                    )
                return result, steps
            xp = model.xp
            dtype = getattr(xp, model.dtype)
            # numbers as 0-d arrays of the model's dtype: arguments, not constants
            counts = {key: xp.asarray(step, dtype=dtype) for key, step in steps.items()}
            compiled = self._compiled_step()
            result = compiled(state, X, y, noise, counts, xp.asarray(learning_rate, dtype=dtype))
            return StepResult(*result), steps
        finally:
            # the step ran in the layers: give them back the model's arrays
            for layer, params, buffers in zip(
                model.layers, state.params, state.buffers, strict=True
            ):
                layer.params, layer.buffers = params, buffers

    def commit(self, state: TrainState, steps: dict[str, int]) -> None:
        """Keep a step's result: the layers' arrays and the optimizer's state."""
        model = self.model
        if model.backend.lazy:
            state = self._persisted(state)
        for layer, params, buffers in zip(model.layers, state.params, state.buffers, strict=True):
            layer.params, layer.buffers = dict(params), dict(buffers)
            if self.compiles:
                layer.grads = {}  # the traced gradients are not arrays
        model.optimizer.commit(state.slots, steps)

    def apply(self, grads: list[Store], buffers: list[Store]) -> None:
        """Update the model with gradients computed elsewhere (data-parallel shards)."""
        model = self.model
        steps, state = self.next_steps(), self.state()
        params, slots = apply_gradients(
            model.layers,
            model.optimizer,
            state.params,
            grads,
            state.slots,
            steps,
            model.optimizer.learning_rate,
        )
        self.commit(TrainState(params, buffers, slots), steps)

    def __call__(self, X: Array, y: Array) -> tuple[float, float]:
        """Run and keep one step; its (loss, accuracy) before the update."""
        result, steps = self.run(X, y)
        self.commit(result.state, steps)
        return float(result.loss), float(result.scores["accuracy"])

    # -- helpers -----------------------------------------------------------------------

    def _compiled_step(self) -> Any:
        """`train_step` under `jax.jit`, made again when the program changes."""
        model = self.model
        program = json.dumps(
            {
                "layers": [id(layer) for layer in model.layers],
                "wiring": model.network.get_config(),
                "loss": model.loss_function.get_config(),
                "metrics": [metric.get_config() for metric in model.metrics],
                "optimizer": {
                    k: v for k, v in model.optimizer.get_config().items() if k != "learning_rate"
                },
                "optimizer_id": id(model.optimizer),
                "dtype": model.dtype,
            },
            sort_keys=True,
            default=str,
        )
        if self._compiled is None or program != self._program:
            import jax

            layers, loss, optimizer = model.network, model.loss_function, model.optimizer
            metrics = list(model.metrics)

            def step(
                state: TrainState,
                X: Array,
                y: Array,
                noise: list[Store | None],
                steps: dict[str, Array],
                learning_rate: Array,
            ) -> StepResult:
                return train_step(
                    layers, loss, optimizer, state, X, y, noise, steps, learning_rate, metrics
                )

            self._compiled, self._program = jax.jit(step), program
        return self._compiled

    def _persisted(self, state: TrainState) -> TrainState:
        """On a lazy backend, compute what the next step reads, in one go."""
        stores = [*state.params, *state.buffers, *state.slots.values()]
        holders = [(store, key) for store in stores for key in store]
        settled = self.model.backend.persist(*(store[key] for store, key in holders))
        for (store, key), array in zip(holders, settled, strict=True):
            store[key] = array
        return state
