"""The same network in PyTorch as an xconv model, from the same weights.

`mirror` reads an xconv model's layers and wiring (a stack or a graph) and builds a
`torch.nn.Module` that runs one PyTorch module per xconv layer, wired alike, with
xconv's parameters and running statistics copied in. The benchmarks and the accuracy
record compare the two libraries on that pair: same network, same initial weights.

Layouts: Conv2D weights are (F, C, kh, kw) in both; a Dense weight is (in, out) in
xconv and (out, in) in `torch.nn.Linear`, so it is transposed; Flatten is NCHW order in
both. BatchNormalization's ``momentum`` weighs the running average (0.9 keeps 90 % of
it) where PyTorch's weighs the new batch, so PyTorch gets ``1 - momentum``. The running
statistics still follow each library's own rule as training goes on (xconv's moving
averages are bias-corrected and keep the biased variance; PyTorch's are plain and keep
the unbiased one), so after training the two differ in inference, never in training
steps (which use the batch's statistics); `copy_weights` again to compare inference.

A final softmax under a cross-entropy of probabilities (the digits CNN) becomes an
identity, and PyTorch takes the cross-entropy of the logits: the same loss, computed
as PyTorch users do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["copy_weights", "mirror", "torch_loss", "torch_optimizer"]


def _torch() -> Any:
    import torch

    return torch


def _padding(layer: Any) -> Any:
    """PyTorch's padding argument for a convolution or pooling layer's `padding`."""
    padding = layer.padding
    if padding == "valid":
        return 0
    if padding == "same" and tuple(layer.stride) == (1, 1):
        return "same"
    if isinstance(padding, int):
        return padding
    if (
        isinstance(padding, tuple | list)
        and len(padding) == 2
        and all(isinstance(p, int) for p in padding)
    ):
        return tuple(padding)
    raise ValueError(
        f"{layer.layer_name()}: no PyTorch equivalent here for padding={padding!r} "
        f"with stride={layer.stride!r}"
    )


def _activation(name: str | None) -> Any:
    nn = _torch().nn
    functions = {
        None: nn.Identity,
        "linear": nn.Identity,
        "relu": nn.ReLU,
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "softmax": lambda: nn.Softmax(dim=1),
    }
    if name not in functions:
        raise ValueError(f"no PyTorch equivalent here for activation {name!r}")
    return functions[name]()


def _module(layer: Any, *, last_softmax_is_loss: bool) -> Any:
    """One PyTorch module doing what `layer` does."""
    torch = _torch()
    nn = torch.nn
    kind = type(layer).__name__
    shape = layer.input_shape
    if kind == "Conv2D":
        conv = nn.Conv2d(
            shape[0],
            layer.n_filters,
            tuple(layer.filter_shape),
            stride=tuple(layer.stride),
            padding=_padding(layer),
            dilation=tuple(layer.dilation),
            groups=layer.groups,
            bias=layer.use_bias,
        )
        return nn.Sequential(conv, _activation(layer.activation))
    if kind == "Dense":
        return nn.Sequential(nn.Linear(shape[0], layer.n_units), _activation(layer.activation))
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        pool = nn.MaxPool2d if kind == "MaxPooling2D" else nn.AvgPool2d
        return pool(tuple(layer.pool_shape), tuple(layer.stride), padding=_padding(layer))
    if kind == "Activation":
        if last_softmax_is_loss:
            return nn.Identity()
        return _activation(layer.activation_name)
    if kind == "BatchNormalization":
        norm = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
        return norm(shape[0], eps=layer.eps, momentum=1 - layer.momentum)
    if kind == "Dropout":
        return nn.Dropout(layer.p)
    if kind == "Flatten":
        return nn.Flatten()
    if kind == "Add":
        return _Add()
    if kind == "GlobalAveragePooling2D":
        return _GlobalAveragePooling()
    raise ValueError(f"no PyTorch equivalent here for layer {kind}")


def _softmax_into_loss(model: Any) -> bool:
    """Whether the model ends in a softmax and takes the cross-entropy of probabilities."""
    last = model.layers[-1]
    loss = model.loss_function
    return (
        type(last).__name__ == "Activation"
        and last.activation_name == "softmax"
        and type(loss).__name__ == "CrossEntropy"
        and not getattr(loss, "from_logits", False)
    )


class _Add(_torch().nn.Module):  # type: ignore[misc]
    """The sum of the inputs (xconv's Add)."""

    def forward(self, *inputs: Any) -> Any:
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


class _GlobalAveragePooling(_torch().nn.Module):  # type: ignore[misc]
    """The mean of each channel (xconv's GlobalAveragePooling2D)."""

    def forward(self, x: Any) -> Any:
        return x.mean(dim=(2, 3))


class Mirror(_torch().nn.Module):  # type: ignore[misc]
    """PyTorch modules wired as an xconv network: ``layers[i]`` reads ``wiring[i]``.

    Tensor 0 is the input, tensor ``i + 1`` the output of ``layers[i]``; the result is
    tensor `output`. `kinds` names the xconv layer type of each module.
    """

    def __init__(
        self,
        modules: list[Any],
        wiring: tuple[tuple[int, ...], ...],
        output: int,
        kinds: list[str],
    ) -> None:
        super().__init__()
        self.layers = _torch().nn.ModuleList(modules)
        self.wiring = wiring
        self.output = output
        self.kinds = kinds

    def forward(self, x: Any) -> Any:
        values = [x]
        for module, sources in zip(self.layers, self.wiring, strict=True):
            values.append(module(*(values[j] for j in sources)))
        return values[self.output]


def mirror(model: Any, *, dtype: str = "float32") -> Any:
    """A `Mirror` of the xconv `model` with its current weights copied in.

    Args:
        model: an initialised xconv `NeuralNetwork` (built layers).
        dtype: "float32" or "float64", the PyTorch module's dtype.

    Example:
        >>> from xconv.models import lenet5
        >>> type(mirror(lenet5())).__name__
        'Mirror'
    """
    network = model.network
    softmax_is_loss = _softmax_into_loss(model)
    last = len(network.layers) - 1
    modules = [
        _module(layer, last_softmax_is_loss=softmax_is_loss and i == last)
        for i, layer in enumerate(network.layers)
    ]
    kinds = [type(layer).__name__ for layer in network.layers]
    result = Mirror(modules, network.wiring, network.output, kinds)
    result = result.to(getattr(_torch(), dtype))
    copy_weights(model, result)
    return result


def copy_weights(model: Any, module: Any) -> None:
    """Copy the xconv `model`'s parameters and running statistics into its `Mirror`."""
    torch = _torch()
    nn = torch.nn

    def put(target: Any, value: Any, transpose: bool = False) -> None:
        array = np.asarray(value)
        tensor = torch.from_numpy(np.ascontiguousarray(array.T if transpose else array))
        target.copy_(tensor.to(target.dtype))

    with torch.no_grad():
        for layer, torch_layer in zip(model.network.layers, module.layers, strict=True):
            kind = type(layer).__name__
            if kind in ("Conv2D", "Dense"):
                inner = torch_layer[0]
                put(inner.weight, layer.params["weight"], transpose=kind == "Dense")
                if "bias" in layer.params:
                    put(inner.bias, layer.params["bias"])
            elif kind == "BatchNormalization":
                assert isinstance(torch_layer, nn.modules.batchnorm._BatchNorm)
                put(torch_layer.weight, layer.params["gamma"])
                put(torch_layer.bias, layer.params["beta"])
                put(torch_layer.running_mean, np.reshape(layer.buffers["running_mean"], -1))
                put(torch_layer.running_var, np.reshape(layer.buffers["running_var"], -1))
            elif layer.params:
                raise ValueError(f"no weight copy here for layer {kind}")


def torch_optimizer(optimizer: Any, parameters: Any) -> Any:
    """PyTorch's optimizer with the xconv `optimizer`'s rule and settings (Adam, AdamW, SGD)."""
    torch = _torch()
    config = optimizer.get_config()
    kind = config["class"]
    if kind == "Adam":
        return torch.optim.Adam(
            parameters,
            lr=config["learning_rate"],
            betas=(config["b1"], config["b2"]),
            eps=config["eps"],
        )
    if kind == "AdamW":
        return torch.optim.AdamW(
            parameters,
            lr=config["learning_rate"],
            betas=(config["b1"], config["b2"]),
            eps=config["eps"],
            weight_decay=config["weight_decay"],
        )
    if kind == "SGD":
        return torch.optim.SGD(
            parameters,
            lr=config["learning_rate"],
            momentum=config["momentum"],
            nesterov=config["nesterov"],
            weight_decay=config["weight_decay"],
        )
    raise ValueError(f"no PyTorch equivalent here for optimizer {kind}")


def torch_loss(model: Any) -> Any:
    """PyTorch's loss for the xconv `model`'s: the mean cross-entropy of the logits."""
    if type(model.loss_function).__name__ != "CrossEntropy":
        raise ValueError(f"no PyTorch equivalent here for loss {model.loss_function!r}")
    return _torch().nn.CrossEntropyLoss()
