"""A network: layers and how they connect, run forward and backward.

A model's layers run as a `Network`. Tensor 0 is the network's input and tensor
``i + 1`` the output of layer ``i``; ``wiring[i]`` lists the tensors layer ``i``
reads (one, or several for a merge layer such as `Add`), and `output` is the tensor
the network returns. Layers come in an order in which each reads only tensors made
before it, so the forward pass runs them in order and the backward pass in reverse,
summing the gradients of a tensor that several layers read. A stack of layers
(`NeuralNetwork.add`) is the chain ``wiring = ((0,), (1,), (2,), ...)``.

The training step (`xconv.training._step`) runs a network. The passes branch on the wiring
only, never on array values, so on JAX the step compiles.

Example: a residual connection, built with the functional API.

    >>> from xconv import Input, NeuralNetwork
    >>> from xconv.layers import Add, Dense
    >>> x = Input((2,))
    >>> h = Dense(2, activation="relu")(x)
    >>> y = Dense(3)(Add()([x, h]))
    >>> model = NeuralNetwork("sgd", "mse", inputs=x, outputs=y, seed=0)
    >>> [layer.layer_name() for layer in model.layers]
    ['Dense', 'Add', 'Dense']
    >>> model.network.wiring
    ((0,), (0, 1), (2,))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from xconv._typing import Array
from xconv.layers import Input, Layer, SymbolicTensor

__all__ = ["Network", "as_network", "summary_rows", "summary_text"]


class Network(Sequence[Layer]):
    """Layers wired into a graph; a sequence of its layers in the order they run.

    Args:
        layers: the layers, in an order where each reads only earlier tensors.
        wiring: the tensors each layer reads (see the module's docstring); None: a chain.
        output: the tensor returned; None: the last layer's output.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        wiring: Sequence[Sequence[int]] | None = None,
        output: int | None = None,
    ) -> None:
        self.layers = list(layers)
        n = len(self.layers)
        self.wiring = (
            tuple((i,) for i in range(n))
            if wiring is None
            else tuple(tuple(int(j) for j in sources) for sources in wiring)
        )
        self.output = n if output is None else int(output)
        if len(self.wiring) != n:
            raise ValueError(f"the wiring names {len(self.wiring)} layers' inputs, for {n} layers")
        for i, (layer, sources) in enumerate(zip(self.layers, self.wiring, strict=True)):
            merges = bool(getattr(layer, "merges", False))
            if not sources or any(not 0 <= j <= i for j in sources):
                raise ValueError(
                    f"layer {i} ({layer.layer_name()}) must read tensors made before it "
                    f"(0 to {i}), got {list(sources)}"
                )
            if merges != (len(sources) > 1) or (merges and len(sources) < 2):
                raise ValueError(
                    f"layer {i} ({layer.layer_name()}) reads {len(sources)} tensors; merge "
                    "layers read two or more, the others one"
                )
        if not 0 <= self.output <= n:
            raise ValueError(f"the output tensor must be one of 0..{n}, got {self.output}")

    # -- a sequence of layers -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, index: Any) -> Any:
        return self.layers[index]

    @property
    def is_chain(self) -> bool:
        """Whether the layers form a plain stack (each reads the one before)."""
        n = len(self.layers)
        return self.output == n and self.wiring == tuple((i,) for i in range(n))

    # -- building -----------------------------------------------------------------------

    @classmethod
    def from_tensors(cls, inputs: Any, outputs: Any) -> Network:
        """The network between an `Input` and a symbolic tensor computed from it.

        The layers are those `outputs` depends on, in the order they were called.
        """
        source = _single(inputs, "inputs")
        target = _single(outputs, "outputs")
        if source.layer is not None:
            raise ValueError(
                "`inputs` must be an xconv.Input, not a layer's output "
                f"({source.layer.layer_name()})"
            )
        # every tensor that `target` depends on
        seen: dict[int, SymbolicTensor] = {}
        stack = [target]
        while stack:
            tensor = stack.pop()
            if id(tensor) in seen:
                continue
            seen[id(tensor)] = tensor
            if tensor.layer is None and tensor is not source:
                raise ValueError(
                    f"`outputs` depends on an Input of shape {tensor.shape} that is not "
                    "`inputs`: a model has one input"
                )
            stack.extend(tensor.inputs)
        if id(source) not in seen:
            raise ValueError("`outputs` is not computed from `inputs`")
        made = sorted((t for t in seen.values() if t.layer is not None), key=lambda t: t.order)
        if not made:
            raise ValueError("`outputs` is `inputs`: the model has no layers")
        number = {id(source): 0} | {id(t): i + 1 for i, t in enumerate(made)}
        layers = [t.layer for t in made if t.layer is not None]
        wiring = [[number[id(parent)] for parent in t.inputs] for t in made]
        return cls(layers, wiring, number[id(target)])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input sample (from the first layer that reads the input)."""
        first = self.layers[0]
        shapes = getattr(first, "input_shapes", None)
        shape = shapes[self.wiring[0].index(0)] if shapes is not None else first.input_shape
        if shape is None:
            raise ValueError("the network's input shape is unknown")
        return tuple(shape)

    def output_shape(self) -> tuple[int, ...]:
        """The shape of one output sample."""
        if self.output == 0:
            return self.input_shape
        return tuple(self.layers[self.output - 1].output_shape())

    def get_config(self) -> dict[str, Any]:
        """The wiring as JSON-able data (the layers are saved apart)."""
        return {
            "input_shape": list(self.input_shape),
            "inputs": [list(sources) for sources in self.wiring],
            "output": self.output,
        }

    @staticmethod
    def connect(
        layers: Sequence[Layer], config: dict[str, Any]
    ) -> tuple[SymbolicTensor, SymbolicTensor]:
        """Call new `layers` on symbolic tensors as `config` (`get_config`) says.

        Returns the input and the output, for ``NeuralNetwork(inputs=, outputs=)``.
        """
        try:
            input_shape, wiring, output = config["input_shape"], config["inputs"], config["output"]
        except (KeyError, TypeError):
            raise ValueError(
                f"a graph must be saved as input_shape, inputs, output: {config!r}"
            ) from None
        if not isinstance(wiring, list) or len(wiring) != len(layers):
            raise ValueError(f"the graph's wiring does not list {len(layers)} layers' inputs")
        tensors = [Input(tuple(input_shape))]
        for i, (layer, sources) in enumerate(zip(layers, wiring, strict=True)):
            if (
                not isinstance(sources, list)
                or not sources
                or any(
                    isinstance(j, bool) or not isinstance(j, int) or not 0 <= j <= i
                    for j in sources
                )
            ):
                raise ValueError(f"layer {i} of the graph reads invalid tensors {sources!r}")
            merges = getattr(layer, "merges", False)
            if not merges and len(sources) != 1:  # else all but the first were dropped
                raise ValueError(
                    f"layer {i} of the graph ({type(layer).__name__}) reads one tensor, but "
                    f"the file lists {len(sources)}: {sources!r}"
                )
            parents = [tensors[j] for j in sources]
            tensors.append(layer(parents if merges else parents[0]))
        if (
            isinstance(output, bool)
            or not isinstance(output, int)
            or not 0 < output < len(tensors)
        ):
            raise ValueError(f"the graph's output must be a layer's tensor, got {output!r}")
        return tensors[0], tensors[output]

    # -- running ------------------------------------------------------------------------

    def forward(
        self, X: Array, *, training: bool, noise: Sequence[dict[str, Array] | None] | None = None
    ) -> Array:
        """The network's output for the batch `X`.

        ``noise[i]`` is the random draws of stochastic layer ``i`` (None: it draws its own).
        """
        values: list[Array] = [X]
        for i, (layer, sources) in enumerate(zip(self.layers, self.wiring, strict=True)):
            args = [values[j] for j in sources]
            x = args if getattr(layer, "merges", False) else args[0]
            if layer.stochastic and training:
                layer_noise = None if noise is None else noise[i]
                out = layer.forward_pass(x, training=True, noise=layer_noise)  # type: ignore[call-arg]
            else:
                out = layer.forward_pass(x, training=training)
            values.append(out)
            # free what no later layer reads
            if i + 1 != self.output:
                self._forget(values, i)
        return values[self.output]

    def _forget(self, values: list[Array], i: int) -> None:
        last_use = self._last_use()
        for j in self.wiring[i]:
            if last_use[j] == i and j != self.output:
                values[j] = None

    def _last_use(self) -> list[int]:
        cached: list[int] | None = getattr(self, "_last_use_cache", None)
        if cached is None:
            cached = [-1] * (len(self.layers) + 1)
            for i, sources in enumerate(self.wiring):
                for j in sources:
                    cached[j] = i
            self._last_use_cache = cached
        return cached

    def _skips_input_gradient(self, i: int) -> bool:
        """Whether layer i reads only the network's input and can leave its gradient out."""
        skips = getattr(self.layers[i], "skips_input_gradient", False)
        return bool(skips) and all(j == 0 for j in self.wiring[i])

    def backward(self, grad: Array, *, input_gradient: bool = True) -> Array | None:
        """The gradient for the network's input, from the gradient of its output.

        Each layer keeps the gradients of its parameters (`Layer.grads`); a tensor read
        by several layers gets the sum of their gradients. Without `input_gradient`
        (a training step, which never reads it) the layers that read only the
        network's input and can leave their input's gradient out (``Conv2D``) do,
        and None comes back where that gradient would have been.
        """
        grads: list[Array | None] = [None] * (len(self.layers) + 1)
        grads[self.output] = grad
        for i in reversed(range(len(self.layers))):
            grad_output = grads[i + 1]
            if grad_output is None:  # no path to the output
                continue
            grads[i + 1] = None
            layer, sources = self.layers[i], self.wiring[i]
            if input_gradient or not self._skips_input_gradient(i):
                back = layer.backward_pass(grad_output)
            else:
                _without_input_gradient(layer, grad_output)
                back = None
            parts = back if getattr(layer, "merges", False) else [back]
            for j, part in zip(sources, parts, strict=True):
                previous = grads[j]
                if part is not None:  # (None: a gradient of the input, left out)
                    grads[j] = part if previous is None else previous + part
        return grads[0]


def _without_input_gradient(layer: Any, grad_output: Array) -> None:
    """`layer.backward_pass`, its parameters' gradients only (`skips_input_gradient`)."""
    layer.backward_pass(grad_output, input_gradient=False)


def as_network(layers: Sequence[Layer] | Network) -> Network:
    """`layers` as a network: itself, or the chain of a list of layers."""
    return layers if isinstance(layers, Network) else Network(list(layers))


def summary_rows(network: Network) -> list[tuple[str, ...]]:
    """A model summary's table: a header, then one row per layer.

    A graph's table numbers the layers and says what each reads: ``input`` (the
    model's input) or the numbers of the layers whose outputs it takes.
    """
    rows: list[tuple[str, ...]]
    if network.is_chain:
        rows = [("Layer Type", "Parameters", "Output Shape")]
        rows += [
            (layer.layer_name(), str(layer.parameters()), str(layer.output_shape()))
            for layer in network
        ]
        return rows
    rows = [("#", "Layer Type", "Inputs", "Parameters", "Output Shape")]
    for i, (layer, sources) in enumerate(zip(network, network.wiring, strict=True)):
        reads = ", ".join("input" if j == 0 else str(j) for j in sources)
        rows.append(
            (
                str(i + 1),
                layer.layer_name(),
                reads,
                str(layer.parameters()),
                str(layer.output_shape()),
            )
        )
    return rows


def summary_text(network: Network, title: str) -> str:
    """A model summary: `title`, the input shape, the table, the parameter count."""
    rows = summary_rows(network)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    table = [line]
    for i, row in enumerate(rows):
        table.append(
            "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        )
        if i == 0:
            table.append(line)
    table.append(line)
    total = sum(layer.parameters() for layer in network)
    return "\n".join(
        [title, f"Input Shape: {network.input_shape}", *table, f"Total Parameters: {total}"]
    )


def _single(value: Any, name: str) -> SymbolicTensor:
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if not isinstance(value, SymbolicTensor):
        raise TypeError(
            f"`{name}` must be one symbolic tensor (xconv.Input, or a layer's call on "
            f"one), got {value!r}"
        )
    return value
