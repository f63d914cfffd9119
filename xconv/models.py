"""Built-in models: ResNet-20 for CIFAR-10, MNIST's BatchNormalization CNN, LeNet-5,
and the ancestor's digits CNN.

Each function returns a new `NeuralNetwork`, its parameters created from `seed`.
The classifiers put out logits and train with ``CrossEntropy(from_logits=True)``
unless told otherwise (the digits CNN keeps the ancestor's softmax).
"""

from __future__ import annotations

from typing import Any

from xconv.backends import Backend
from xconv.layers import (
    Activation,
    Add,
    AveragePooling2D,
    BatchNormalization,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAveragePooling2D,
    Input,
    MaxPooling2D,
    SymbolicTensor,
)
from xconv.losses import CrossEntropy
from xconv.model import NeuralNetwork
from xconv.optimizers import SGD, Adam, AdamW

__all__ = ["MNIST_RECIPE", "digits_cnn", "lenet5", "mnist_bn", "resnet20"]

#: how `xconv train --dataset mnist` trains `mnist_bn` by default: epochs, batch size,
#: and the peak rate and rising fraction of a `xconv.callbacks.OneCycle` schedule
MNIST_RECIPE = {"epochs": 3, "batch_size": 128, "max_lr": 0.01, "pct_start": 0.25}


def _conv_bn(x: SymbolicTensor, filters: int, size: int, stride: int) -> SymbolicTensor:
    """A convolution without bias (the normalisation shifts), then BatchNormalization."""
    # symmetric padding (PyTorch's), where 'same' would pad a stride-2 input bottom/right
    conv = Conv2D(
        filters,
        size,
        padding=size // 2,
        stride=stride,
        use_bias=False,
        kernel_initializer="he_normal",
    )
    # PyTorch's BatchNorm2d defaults: running averages of weight 0.1, eps 1e-5
    return BatchNormalization(momentum=0.9, eps=1e-5)(conv(x))


def _basic_block(x: SymbolicTensor, filters: int, stride: int) -> SymbolicTensor:
    """He et al.'s basic block: two 3x3 conv-BN, a shortcut, their sum, ReLU."""
    h = Activation("relu")(_conv_bn(x, filters, 3, stride))
    h = _conv_bn(h, filters, 3, 1)
    # the shortcut: identity, or a 1x1 projection where the shape changes
    shortcut = x if stride == 1 and x.shape[0] == filters else _conv_bn(x, filters, 1, stride)
    return Activation("relu")(Add()([h, shortcut]))


def resnet20(
    *,
    n_classes: int = 10,
    input_shape: tuple[int, int, int] = (3, 32, 32),
    optimizer: Any = None,
    loss: Any = None,
    dtype: str = "float32",
    seed: int = 0,
    backend: str | Backend | None = None,
    **options: Any,
) -> NeuralNetwork:
    """ResNet-20, the CIFAR variant of He et al. (2016), "Deep Residual Learning".

    A 3x3 convolution of 16 filters with BatchNormalization and ReLU; three stages of
    three basic blocks (16, 32 and 64 filters; the first block of the second and third
    stages halves the image with stride 2 and its shortcut is a 1x1 convolution with
    BatchNormalization); global average pooling; a Dense layer of `n_classes` logits.
    Convolutions have no bias and start from ``he_normal``. For CIFAR-10 it has
    272,474 parameters (BatchNormalization's scales and shifts included).

    Args:
        n_classes: outputs of the classifier.
        input_shape: (C, H, W) of one image.
        optimizer: default ``SGD(learning_rate=0.1, momentum=0.9, weight_decay=1e-4)``.
        loss: default ``CrossEntropy(from_logits=True)``.
        dtype, seed, backend, **options: as for `NeuralNetwork` (``jit_compile``,
            ``metrics``, ``validation_data``).

    Example:
        >>> model = resnet20()
        >>> sum(layer.parameters() for layer in model.layers)
        272474
    """
    x = Input(input_shape)
    h = Activation("relu")(_conv_bn(x, 16, 3, 1))
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            h = _basic_block(h, filters, 2 if stage > 0 and block == 0 else 1)
    logits = Dense(n_classes)(GlobalAveragePooling2D()(h))
    return NeuralNetwork(
        SGD(learning_rate=0.1, momentum=0.9, weight_decay=1e-4)
        if optimizer is None
        else optimizer,
        CrossEntropy(from_logits=True) if loss is None else loss,
        inputs=x,
        outputs=logits,
        dtype=dtype,
        seed=seed,
        backend=backend,
        **options,
    )


def mnist_bn(
    *,
    n_classes: int = 10,
    input_shape: tuple[int, int, int] = (1, 28, 28),
    optimizer: Any = None,
    loss: Any = None,
    dtype: str = "float32",
    seed: int = 0,
    backend: str | Backend | None = None,
    **options: Any,
) -> NeuralNetwork:
    """A small CNN with BatchNormalization for 28x28 digits: MNIST's default network.

    Conv 32@3x3 ('valid', no bias) - BatchNormalization - ReLU - 2x2 max pooling -
    conv 64@3x3 (likewise) - BatchNormalization - ReLU - pooling - Dense 128 -
    BatchNormalization - ReLU - Dense `n_classes` (logits); 28 -> 26 -> 13 -> 11 -> 5.
    Convolutions start from ``he_normal``; BatchNormalization has PyTorch's defaults
    (momentum 0.9 for the running averages, eps 1e-5).

    Trained as `MNIST_RECIPE` says (what ``xconv train --dataset mnist`` does: 3 epochs,
    batch 128, AdamW under a `xconv.callbacks.OneCycle` schedule peaking at 0.01), it
    reaches 0.9930-0.9936 test accuracy over seeds 0-2
    (``benchmarks/results/mnist-recipe-*.md``).

    Args:
        optimizer: default ``AdamW(learning_rate=0.01, weight_decay=0.01)`` (its rate
            is the schedule's peak; a `OneCycle` callback sets it batch by batch).
        loss: default ``CrossEntropy(from_logits=True)``; the others as for `resnet20`.

    Example:
        >>> model = mnist_bn()
        >>> sum(layer.parameters() for layer in model.layers)
        225386
    """
    model = NeuralNetwork(
        AdamW(learning_rate=MNIST_RECIPE["max_lr"], weight_decay=0.01)
        if optimizer is None
        else optimizer,
        CrossEntropy(from_logits=True) if loss is None else loss,
        dtype=dtype,
        seed=seed,
        backend=backend,
        **options,
    )
    for filters in (32, 64):
        model.add(
            Conv2D(
                filters,
                3,
                padding="valid",
                use_bias=False,
                kernel_initializer="he_normal",
                input_shape=input_shape if filters == 32 else None,
            )
        )
        model.add(BatchNormalization(momentum=0.9, eps=1e-5))
        model.add(Activation("relu"))
        model.add(MaxPooling2D(2))
    model.add(Flatten())
    model.add(Dense(128))
    model.add(BatchNormalization(momentum=0.9, eps=1e-5))
    model.add(Activation("relu"))
    model.add(Dense(n_classes))
    return model


def lenet5(
    *,
    n_classes: int = 10,
    input_shape: tuple[int, int, int] = (1, 28, 28),
    optimizer: Any = None,
    loss: Any = None,
    dtype: str = "float32",
    seed: int = 0,
    backend: str | Backend | None = None,
    **options: Any,
) -> NeuralNetwork:
    """LeNet-5 (LeCun et al. 1998) for 28x28 digits, as a stack.

    Conv 6@5x5 ('same') - tanh - 2x2 average pooling - conv 16@5x5 ('valid') - tanh -
    pooling - Dense 120 - tanh - Dense 84 - tanh - Dense `n_classes` (logits).

    Args:
        optimizer: default ``Adam()``; loss: default ``CrossEntropy(from_logits=True)``;
        the others as for `resnet20`.

    Example:
        >>> model = lenet5()
        >>> sum(layer.parameters() for layer in model.layers)
        61706
    """
    model = NeuralNetwork(
        Adam() if optimizer is None else optimizer,
        CrossEntropy(from_logits=True) if loss is None else loss,
        dtype=dtype,
        seed=seed,
        backend=backend,
        **options,
    )
    model.add(Conv2D(6, 5, input_shape=input_shape, activation="tanh"))
    model.add(AveragePooling2D(2))
    model.add(Conv2D(16, 5, padding="valid", activation="tanh"))
    model.add(AveragePooling2D(2))
    model.add(Flatten())
    model.add(Dense(120, activation="tanh"))
    model.add(Dense(84, activation="tanh"))
    model.add(Dense(n_classes))
    return model


def digits_cnn(
    *,
    seed: int = 0,
    backend: str | Backend | None = None,
    dtype: str = "float32",
    validation: Any = None,
) -> NeuralNetwork:
    """The ancestor's CNN for 8x8 digits: two conv blocks, a dense block, softmax.

    Trained with Adam on cross-entropy of probabilities, as the ancestor did; what
    ``python -m xconv demo`` trains.

    Args:
        validation: optional ``(X, y)`` for `NeuralNetwork`'s `validation_data`.

    Example:
        >>> len(digits_cnn().layers)
        15
    """
    model = NeuralNetwork(
        Adam(), "cross_entropy", validation, dtype=dtype, seed=seed, backend=backend
    )
    model.add(Conv2D(16, (3, 3), input_shape=(1, 8, 8), padding="same"))
    model.add(Activation("relu"))
    model.add(Dropout(0.25))
    model.add(BatchNormalization())
    model.add(Conv2D(32, (3, 3), padding="same"))
    model.add(Activation("relu"))
    model.add(Dropout(0.25))
    model.add(BatchNormalization())
    model.add(Flatten())
    model.add(Dense(256))
    model.add(Activation("relu"))
    model.add(Dropout(0.4))
    model.add(BatchNormalization())
    model.add(Dense(10))
    model.add(Activation("softmax"))
    return model
