"""NeuralNetwork: layers trained with a loss and an optimizer, on any backend.

This module builds models and runs them (inference, evaluation); the fit loop, the
training step and files are in `xconv.training`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from xconv import callbacks as _callbacks
from xconv import layers as _layers
from xconv import losses as _losses
from xconv import optimizers as _optimizers
from xconv._typing import Array, Namespace
from xconv._validation import (
    claim_layers,
    nonnegative_int,
    positive_int,
    readable_file,
    writable_file,
)
from xconv.backends import Backend, get, get_backend
from xconv.training import (
    FORMAT_VERSION,
    Network,
    NonFiniteLossError,
    TrainingStep,
    check_backend_dtype,
    evaluate_arrays,
    fit_callbacks,
    fit_model,
    forward,
    load_model,
    model_inputs,
    model_labels,
    save_model,
    summary_text,
)

__all__ = ["FORMAT_VERSION", "NeuralNetwork", "NonFiniteLossError"]


class NeuralNetwork:
    """A network: `add` layers (a stack) or give `inputs` and `outputs` (a graph), then
    `fit`, `evaluate` and `predict`.

    Args:
        optimizer: an optimizer instance, class or name (``"adam"``); it receives each
            parameter with its gradient after every batch.
        loss: a loss instance, class or name (``"cross_entropy"``).
        validation_data: optional ``(X, y)`` evaluated after every epoch of `fit`.
        dtype: floating dtype of parameters and inputs, ``"float32"`` or ``"float64"``.
        seed: fixes the initial parameters, dropout masks and batch order, identically
            on every backend.
        backend: name or `Backend` for parameters and computation; None means the
            current backend (`xconv.set_backend` / `xconv.use_backend`).
        jit_compile: whether the training step runs compiled (`jax.jit`); None (the
            default) compiles where the backend can, on JAX. Results agree with the
            uncompiled step up to rounding.
        inputs, outputs: a graph model (Keras's functional API): an `xconv.Input`, and
            a symbolic tensor computed from it by calling layers (``Conv2D(8, 3)(x)``,
            ``Add()([a, b])``). The layers between them are the model's, created now.
        metrics: metrics `evaluate` reports besides the loss (``"accuracy"``,
            ``"top_k_accuracy"``, `xconv.losses.Metric` objects); default accuracy.

    Inputs may be NumPy arrays or arrays of the model's backend; labels may be integer
    class indices or one-hot rows.

    Example:
        >>> import numpy as np
        >>> from xconv.layers import Activation, Dense
        >>> model = NeuralNetwork("sgd", "square_loss", seed=0)
        >>> model.add(Dense(3, input_shape=(2,)))
        >>> model.add(Activation("sigmoid"))
        >>> model.predict(np.zeros((4, 2))).shape
        (4, 3)

    A graph model is built from symbolic tensors (see `xconv.training.Network` and the README).
    """

    def __init__(
        self,
        optimizer: Any,
        loss: Any,
        validation_data: tuple[Any, Any] | None = None,
        *,
        dtype: str = "float32",
        seed: int = 0,
        backend: str | Backend | None = None,
        jit_compile: bool | None = None,
        inputs: Any = None,
        outputs: Any = None,
        metrics: Sequence[Any] | None = None,
    ) -> None:
        if dtype not in ("float32", "float64"):
            raise ValueError(f"`dtype` must be 'float32' or 'float64', got {dtype!r}")
        seed = nonnegative_int(seed, "seed")  # NumPy integers too; saved as JSON
        if validation_data is not None and (
            not isinstance(validation_data, tuple | list) or len(validation_data) != 2
        ):
            raise ValueError("`validation_data` must be a pair (X, y)")
        if jit_compile is not None and not isinstance(jit_compile, bool):
            raise TypeError(f"`jit_compile` must be True, False or None, got {jit_compile!r}")
        self.optimizer = _optimizers.get(optimizer)
        self.loss_function = _losses.get(loss)
        self.validation_data = validation_data
        self.dtype = dtype
        self.seed = seed
        self.backend = get(backend) if backend is not None else get_backend()
        check_backend_dtype(self.backend, dtype)
        self.layers: list[_layers.Layer] = []
        #: the graph's wiring, None for a stack (`add`)
        self._graph: Network | None = None
        #: what `evaluate(..., return_dict=True)` reports besides the loss
        self.metrics = _losses.get_metrics(["accuracy"] if metrics is None else metrics)
        # independent random streams: one per layer (parameters, dropout), one for batches
        self._seeds = np.random.SeedSequence(seed)
        #: the generator that orders the samples of each epoch (checkpoints keep it)
        self.batch_rng = np.random.default_rng(self._seeds.spawn(1)[0])
        #: set by a callback to end `fit` after the current batch
        self.stop_training = False
        #: the history of the last `fit`
        self.history: dict[str, list[float]] = {}
        #: the training step that `fit` and `train_on_batch` run (compiled on JAX)
        self.training_step = TrainingStep(self, compile=jit_compile)
        if inputs is not None or outputs is not None:
            self._build_graph(inputs, outputs)

    @property
    def xp(self) -> Namespace:
        """The array namespace of the model's backend."""
        return self.backend.namespace

    # -- building ------------------------------------------------------------------

    @property
    def network(self) -> Network:
        """The layers and their wiring, as the training step runs them."""
        return self._graph if self._graph is not None else Network(self.layers)

    def _build_graph(self, inputs: Any, outputs: Any) -> None:
        graph = Network.from_tensors(inputs, outputs)
        claim_layers(graph.layers, self)  # never re-initialise another model's layers
        for layer in graph:
            self._initialize(layer)
        self._graph, self.layers = graph, graph.layers

    def _initialize(self, layer: _layers.Layer) -> None:
        """Create `layer`'s parameters from the next of the model's random streams."""
        rng = np.random.default_rng(self._seeds.spawn(1)[0])
        layer.initialize(seed=rng, dtype=self.dtype, backend=self.backend)

    def add(self, layer: _layers.Layer) -> None:
        """Append `layer`, give it its input shape and create its parameters now."""
        if self._graph is not None:
            raise ValueError(
                "this is a graph model (inputs=, outputs=); its layers are fixed: "
                "call the new layer on a tensor and build a new model"
            )
        if not isinstance(layer, _layers.Layer):
            raise TypeError(f"`layer` must be an xconv layer, got {type(layer).__name__}")
        if any(layer is added for added in self.layers):
            raise ValueError(f"this {layer.layer_name()} is in the model already; add a new one")
        if self.layers:
            previous = self.layers[-1].output_shape()
            if layer.input_shape is not None and tuple(layer.input_shape) != tuple(previous):
                raise ValueError(
                    f"{layer.layer_name()} was given input_shape {tuple(layer.input_shape)}, "
                    f"but the layer before it ({self.layers[-1].layer_name()}) puts out "
                    f"{tuple(previous)}"
                )
            layer.set_input_shape(previous)
        elif layer.input_shape is None:
            raise ValueError(
                f"the first layer ({layer.layer_name()}) needs an input_shape, e.g. "
                "Conv2D(16, 3, input_shape=(1, 8, 8))"
            )
        claim_layers([layer], self)  # never re-initialise another model's layers
        self._initialize(layer)
        self.layers.append(layer)

    def summary(
        self, name: str = "Model Summary", *, print_fn: Callable[[str], object] = print
    ) -> None:
        """Print a table of the layers, their output shapes and parameter counts.

        It prints and returns None (as Keras does), so a REPL shows the table once.

        Args:
            name: the table's title.
            print_fn: called once with the whole table; ``print_fn=lines.append``
                keeps it as a string instead.
        """
        if not self.layers:
            raise ValueError("the model has no layers yet: add() some first")
        if not callable(print_fn):
            raise TypeError(f"`print_fn` must be callable, got {print_fn!r}")
        print_fn(summary_text(self.network, f"{name} (backend {self.backend.name}, {self.dtype})"))

    # -- data ----------------------------------------------------------------------

    def batch_order(self, n_samples: int, shuffle: bool = True) -> np.ndarray:
        """The order of the samples in the next epoch: a permutation from `batch_rng`.

        With ``shuffle=False``, ``0, 1, ..., n_samples - 1`` (and no draw).
        """
        return self.batch_rng.permutation(n_samples) if shuffle else np.arange(n_samples)

    # -- training ----------------------------------------------------------------------

    def train_on_batch(self, X: Any, y: Any) -> tuple[float, float]:
        """One optimisation step on a batch; returns its (loss, accuracy) before the step."""
        self._require_layers()
        X = model_inputs(self, X)
        return self.training_step(X, model_labels(self, y, X.shape[0]))

    def test_on_batch(self, X: Any, y: Any) -> tuple[float, float]:
        """(loss, accuracy) on a batch, in inference mode."""
        self._require_layers()
        X = model_inputs(self, X)
        y = model_labels(self, y, X.shape[0])
        y_pred = forward(self, X, training=False)
        return float(self.loss_function.loss(y, y_pred)), float(self.loss_function.acc(y, y_pred))

    def fit(
        self,
        X: Any,
        y: Any,
        n_epochs: int | None = None,
        batch_size: int | None = None,
        shuffle: bool = True,
        *,
        epochs: int | None = None,
        validation_data: tuple[Any, Any] | None = None,
        validation_split: float = 0.0,
        callbacks: Sequence[_callbacks.Callback] | None = None,
        verbose: int | str = "auto",
        callback: Callable[[int, dict[str, float]], None] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 1,
        resume: str | os.PathLike[str] | None = None,
        on_nonfinite: str = "raise",
    ) -> dict[str, list[float]]:
        """Train for `epochs` passes over (X, y) in batches of `batch_size`.

        Both the ancestor's ``fit(X, y, n_epochs, batch_size)`` and Keras's keywords
        work. Batches are reshuffled every epoch (the ancestor never did) from the
        model's seed. Returns the history (also kept as ``model.history``), a dict of
        lists as Keras's: per epoch the mean training ``loss`` and ``accuracy`` over the
        samples, ``val_loss``/``val_accuracy`` with validation data, ``skipped`` where
        a callback skips non-finite batches.

        Args:
            n_epochs, epochs: the number of epochs (one name or the other; default 1).
            batch_size: samples per batch (default 32).
            shuffle: reshuffle the samples every epoch.
            validation_data: ``(X_val, y_val)`` evaluated after every epoch (default:
                the constructor's `validation_data`).
            validation_split: a fraction in [0, 1) of the samples, the last ones (before
                shuffling, as Keras), held out as validation data instead.
            callbacks: `xconv.callbacks.Callback` objects, called in order at the start
                and end of training, of each epoch and of each batch; one may stop
                training (``self.model.stop_training = True``).
            verbose: 0 silent; 1 a progress bar on a terminal (one line per epoch
                elsewhere); 2 one line per epoch; ``"auto"`` (default) is 1. On
                standard error, by a `ProgressBar` callback.
            callback: ``callback(epoch, logs)`` after each epoch (epochs count from 0):
                a `LambdaCallback`, after `callbacks`.
            checkpoint: a file to save the whole training state to, atomically, after
                every `checkpoint_every` epochs and after the last one (after the
                other callbacks): a `Checkpoint` callback.
            checkpoint_every: epochs between checkpoints, >= 1.
            resume: a checkpoint written by an earlier ``fit(..., checkpoint=...)`` of
                this architecture on the same data and batch size: training continues
                after its epoch, and ends exactly as if it had never been interrupted;
                the history returned covers every epoch (a `Resume` callback, first).
            on_nonfinite: a NaN or infinite batch loss either ``"raise"``-s a
                `NonFiniteLossError` naming the epoch and batch, or ``"skip"``-s the
                batch (a `SkipNonFinite` callback). Either way the model keeps its
                state from before that batch.

        Raises:
            TypeError, ValueError: bad arguments or data, or an unusable `resume`
                file; nothing is trained then.
            NonFiniteLossError: a non-finite loss that no callback skips.
        """
        self._require_layers()
        history = fit_model(
            self,
            X,
            y,
            epochs=_one_of(n_epochs, epochs),
            batch_size=32 if batch_size is None else batch_size,
            shuffle=shuffle,
            validation_data=self.validation_data if validation_data is None else validation_data,
            validation_split=validation_split,
            callbacks=fit_callbacks(
                callbacks, callback, checkpoint, checkpoint_every, resume, on_nonfinite, verbose
            ),
        )
        self.history = history
        return history

    # -- inference -----------------------------------------------------------------------

    def evaluate(self, X: Any, y: Any, batch_size: int = 256, *, return_dict: bool = False) -> Any:
        """(loss, accuracy) over all of (X, y), in inference mode.

        With ``return_dict=True``: ``{"loss": ..., <metric name>: ...}`` for each of
        the model's `metrics`.
        """
        self._require_layers()
        batch_size = positive_int(batch_size, "batch_size")
        X = model_inputs(self, X)
        if X.shape[0] == 0:
            raise ValueError(
                f"`X` must hold at least one sample to evaluate, got {tuple(X.shape)}"
            )
        y = model_labels(self, y, X.shape[0])
        logs = evaluate_arrays(self, X, y, batch_size, self.metrics)
        return logs if return_dict else (logs["loss"], logs["accuracy"])

    def predict(self, X: Any) -> Array:
        """The network's output for `X`, in inference mode, as an array of the backend.

        A Dask array `X` on an eager backend gives a lazy Dask array with X's batch
        chunks (`xconv.distributed.predict`: parameters enter the graph once).
        """
        self._require_layers()
        if array_api_compat.is_dask_array(X) and not self.backend.lazy:
            from xconv.distributed import predict as predict_chunks

            return predict_chunks(self, X)
        return forward(self, model_inputs(self, X), training=False)

    def _require_layers(self) -> None:
        if not self.layers:
            raise ValueError("the model has no layers yet: add() some first")

    # -- moving and saving -----------------------------------------------------------

    def to(self, backend: str | Backend) -> NeuralNetwork:
        """Move parameters, buffers and optimizer state to `backend`; returns self."""
        target = get(backend)
        state = self.optimizer.state_dict(backend=self.backend)
        for layer in self.layers:
            layer.params = {k: _move(v, self.backend, target) for k, v in layer.params.items()}
            layer.buffers = {k: _move(v, self.backend, target) for k, v in layer.buffers.items()}
            layer.grads = {}
            layer.backend = target
        self.backend = target
        self.optimizer.load_state_dict(state, backend=target)
        return self

    def get_config(self) -> dict[str, Any]:
        """The architecture and settings as JSON-able data (no arrays)."""
        return {
            "format_version": FORMAT_VERSION,
            "dtype": self.dtype,
            "seed": self.seed,
            "optimizer": self.optimizer.get_config(),
            "loss": self.loss_function.get_config(),
            "metrics": [metric.get_config() for metric in self.metrics],
            "layers": [
                {"class": _layers.registered_name(type(layer)), "config": layer.get_config()}
                for layer in self.layers
            ],
            **({"graph": self._graph.get_config()} if self._graph is not None else {}),
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write architecture and parameters to a ``.npz`` file, atomically, without pickle.

        The file holds the architecture as JSON (``__config__``, with `FORMAT_VERSION`)
        and one array per parameter and buffer. It is written under a temporary name
        beside `path`, flushed to disk and renamed over `path`, so an interrupted save
        leaves the old file (or none), never a half-written one.
        """
        self._require_layers()
        save_model(self, writable_file(path, "path"))  # a folder, /sys/...: ValueError now

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], backend: str | Backend | None = None
    ) -> NeuralNetwork:
        """A new model from a file written by `save` (or a checkpoint), on `backend`.

        Raises:
            ValueError: the file is not a complete, uncorrupted xconv model file of this
                format version (truncated, corrupted, holding pickled objects, missing or
                extra arrays, wrong shapes or dtypes), naming the file and the problem.
            FileNotFoundError: no file at `path`.
        """
        target = get(backend) if backend is not None else get_backend()
        model: NeuralNetwork = load_model(cls, readable_file(path, "path"), target)
        return model


def _one_of(n_epochs: int | None, epochs: int | None) -> int:
    """`fit`'s number of epochs, given under the ancestor's name or Keras's."""
    if n_epochs is not None and epochs is not None:
        raise TypeError(
            f"`n_epochs` ({n_epochs!r}) and `epochs` ({epochs!r}) are one argument: give one"
        )
    chosen = epochs if n_epochs is None else n_epochs
    return (
        1 if chosen is None else positive_int(chosen, "n_epochs" if epochs is None else "epochs")
    )


def _move(x: Array, source: Backend, target: Backend) -> Array:
    return target.asarray(source.to_numpy(x))
