"""The command line: ``python -m xconv demo | train | info`` (also the ``xconv`` script)."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

import xconv
from xconv import backends, models
from xconv.callbacks import OneCycle
from xconv.data import (
    load_cifar10,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    train_test_split,
)
from xconv.model import NonFiniteLossError
from xconv.models import digits_cnn

__all__ = ["build_digits_cnn", "main"]

#: the parser's description (plain text: the module docstring is reST)
DESCRIPTION = (
    "Train convolutional networks written against the Python array API standard "
    "(NumPy, CuPy, PyTorch, JAX, Dask, array-api-strict)."
)

#: the digits CNN under its older name (it lives in `xconv.models` now)
build_digits_cnn = digits_cnn


#: the datasets `train` knows, and the model each trains by default
DATASETS = {
    "digits": "ancestor",
    "mnist": "mnist_bn",
    "fashion_mnist": "lenet5",
    "cifar10": "resnet20",
}
#: the models `train` builds
MODELS = ("ancestor", "mnist_bn", "lenet5", "resnet20")
#: (epochs, batch size) when not given, per dataset
_DEFAULTS = {
    "digits": (50, 256),
    "mnist": (models.MNIST_RECIPE["epochs"], models.MNIST_RECIPE["batch_size"]),
    "fashion_mnist": (3, 128),
    "cifar10": (10, 128),
}


#: the end of ``xconv train --help``: MNIST's default recipe and what it gives here
TRAIN_EPILOG = """\
MNIST's default recipe (xconv train --dataset mnist, no other flag):
  model     mnist_bn: conv 32@3x3 - BN - ReLU - max pool, conv 64@3x3 - BN - ReLU -
            max pool, Dense 128 - BN - ReLU, Dense 10 (225,386 parameters)
  training  3 epochs, batch 128, AdamW (weight decay 0.01) under a one-cycle learning
            rate peaking at 0.01 after a quarter of the batches (callbacks.OneCycle)
  result    test accuracy 0.9930-0.9936 over seeds 0, 1, 2 (PyTorch, same recipe,
            weights and batches: 0.9930-0.9939); 31-42 s an epoch on NumPy on a
            2-core CPU (benchmarks/results/mnist-recipe-cpu-2026-12-07.md)
  --model lenet5 trains LeNet-5 (Adam, no schedule) instead: 0.978 in 3 epochs.

Data: --data-dir FOLDER with the dataset's original files, else the cache folder
$XCONV_DATA_DIR/<dataset>, downloaded there once."""


def _load(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) of `args.dataset`; digits split 60/40."""
    if args.dataset == "digits":
        X, y = load_digits(dtype=args.dtype)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, seed=args.seed)
        return X_train, y_train, X_test, y_test
    loader = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist, "cifar10": load_cifar10}
    (X_train, y_train), (X_test, y_test) = loader[args.dataset](path=args.data_dir)
    return X_train, y_train, X_test, y_test


def _build(args: argparse.Namespace, input_shape: tuple[int, int, int], backend: str) -> Any:
    """The model `args.model` for samples of `input_shape`."""
    options: dict[str, Any] = {"seed": args.seed, "backend": backend, "dtype": args.dtype}
    if args.model == "ancestor":  # digits only (checked with the arguments)
        return digits_cnn(**options)
    build = {"mnist_bn": models.mnist_bn, "lenet5": models.lenet5}.get(args.model, models.resnet20)
    return build(input_shape=input_shape, **options)


def _schedule(args: argparse.Namespace) -> list[Any]:
    """The callbacks of the model's recipe: mnist_bn's one-cycle learning rate."""
    if args.model != "mnist_bn":
        return []
    recipe = models.MNIST_RECIPE
    return [OneCycle(recipe["max_lr"], pct_start=recipe["pct_start"])]


def _train(args: argparse.Namespace) -> int:
    backend = backends.get(args.backend) if args.backend else backends.get_backend()
    default_epochs, default_batch = _DEFAULTS[args.dataset]
    epochs = args.epochs or default_epochs
    batch_size = args.batch_size or default_batch
    try:
        X_train, y_train, X_test, y_test = _load(args)
    except (OSError, ImportError) as exc:  # no network, no pooch, no permission
        raise ValueError(f"cannot load {args.dataset}: {exc}") from None
    if args.train_samples is not None:
        X_train, y_train = X_train[: args.train_samples], y_train[: args.train_samples]
    channels, height, width = X_train.shape[1:]
    model = _build(args, (int(channels), int(height), int(width)), backend.name)
    if not args.quiet:
        model.summary()
    start = time.perf_counter()
    history = model.fit(
        X_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(X_test, y_test),
        verbose=0 if args.quiet else 1,
        callbacks=_schedule(args),
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    backend.synchronize()
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(X_test, y_test)
    if args.save:
        model.save(args.save)
        print(f"saved the model to {args.save}")
    if args.plot:
        _plot(history, Path(args.plot))
    print(
        f"test accuracy {accuracy:.4f} after {epochs} epochs in {seconds:.1f} s "
        f"on backend {backend.name} ({args.dtype}; {args.dataset}, {args.model})"
    )
    return 0


def _plot(history: dict[str, list[float]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # checked when the arguments were parsed; gone since?
        print(
            "--plot needs matplotlib (pip install 'xconv[cli]'); no plot written", file=sys.stderr
        )
        return
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history["loss"]) + 1)
    for axis, key in ((left, "loss"), (right, "accuracy")):
        axis.plot(epochs, history[key], label="train")
        if f"val_{key}" in history:
            axis.plot(epochs, history[f"val_{key}"], label="validation")
        axis.xaxis.get_major_locator().set_params(integer=True)
        axis.set_xlabel("epoch")
        axis.set_ylabel(key)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    print(f"wrote {path}")


def _info(args: argparse.Namespace) -> int:
    print(f"xconv {xconv.__version__}; current backend: {backends.get_backend().name}")
    for name in backends.registered():
        backend = backends._registry._backends[name]
        reason = backend.unavailable_reason()
        if reason is not None:
            print(f"  {name:18} unavailable: {reason}")
            continue
        version = _version(backend.module)
        try:
            device = f"default device: {backend.default_device}"
        except Exception as exc:  # the library imports but cannot start (a GPU plugin)
            device = f"no usable device: {type(exc).__name__}: {exc}"
        print(f"  {name:18} {version:12} {device}")
    return 0


def _version(module: str) -> str:
    """The installed version of an array library (CuPy's wheels are cupy-cuda12x, ...)."""
    try:
        return importlib.metadata.version(
            {"array_api_strict": "array-api-strict"}.get(module, module)
        )
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(importlib.import_module(module), "__version__", "?"))


def _positive_int(name: str) -> Callable[[str], int]:
    """An argparse type: an integer >= 1, errors naming the argument as `fit` does."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"`{name}` must be a positive integer, got {text}")
        return value

    return parse


def _seed(text: str) -> int:
    """An argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"`seed` must be a non-negative integer, got {text}")
    return value


def _backend_name(text: str) -> str:
    """An argparse type: the name of a backend usable here."""
    try:
        return backends.get(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _output_file(text: str) -> str:
    """An argparse type: a file path that a save can write (checked before training).

    A file is created and removed beside it, named as the save's own temporary file:
    a folder that is missing or not writable, a read-only file system (``/sys``) or
    a name too long for the file system fails now, not after training.
    """
    try:
        path = Path(text)
        if not text or path.is_dir():
            raise argparse.ArgumentTypeError(f"must be a file path, got the folder {text!r}")
        if not path.parent.is_dir():
            raise argparse.ArgumentTypeError(
                f"the folder {_short(str(path.parent))!r} does not exist"
            )
        handle, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"cannot write {_short(text)!r}: {exc.strerror or exc}"
        ) from None
    return text


def _short(text: str, limit: int = 80) -> str:
    """`text` cut to `limit` characters, for a one-line message."""
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _plot_file(text: str) -> str:
    """An argparse type: an image path whose folder exists, with matplotlib installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise argparse.ArgumentTypeError(
            "needs matplotlib (pip install 'xconv[cli]'); checked before training"
        ) from None
    return _output_file(text)


def _folder(text: str) -> str:
    """An argparse type: an existing folder."""
    try:
        found = Path(text).is_dir()
    except OSError as exc:  # a name too long, a loop of links
        raise argparse.ArgumentTypeError(f"cannot read {_short(text)!r}: {exc.strerror}") from None
    if not found:
        raise argparse.ArgumentTypeError(f"no such folder {_short(text)!r}")
    return text


def _input_file(text: str) -> str:
    """An argparse type: an existing file that can be read."""
    try:
        found = Path(text).is_file()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {_short(text)!r}: {exc.strerror}") from None
    if not found:
        raise argparse.ArgumentTypeError(f"no such file {_short(text)!r}")
    if not os.access(text, os.R_OK):
        raise argparse.ArgumentTypeError(f"cannot read {_short(text)!r}: permission denied")
    return text


def _closed_pipe() -> int:
    """The reader of stdout went away (``xconv info | head -1``): exit quietly.

    The standard way (Python's documentation, "Note on SIGPIPE"): point stdout at
    devnull so that the interpreter's final flush finds no pipe to fail on, and exit
    with 128 + SIGPIPE's number as a shell's commands do.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


class _Parser(argparse.ArgumentParser):
    """argparse, its errors one line (no usage block): ``xconv train: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        try:
            return _run(argv)
        finally:  # a closed pipe shows here, not at the interpreter's last flush
            sys.stdout.flush()
    except BrokenPipeError:
        return _closed_pipe()


def _run(argv: Sequence[str] | None) -> int:
    parser = _Parser(prog="xconv", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"xconv {xconv.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("demo", "train the ancestor's CNN on the bundled digits (50 epochs)"),
        ("train", "train a built-in model on a dataset with your settings"),
    ):
        if name == "train":
            command = commands.add_parser(
                name,
                help=help_text,
                epilog=TRAIN_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        else:
            command = commands.add_parser(name, help=help_text)
        if name == "train":
            command.add_argument(
                "--dataset",
                choices=list(DATASETS),
                default="digits",
                help="digits is bundled; the others are read from --data-dir or downloaded "
                "once into the cache (XCONV_DATA_DIR)",
            )
            command.add_argument(
                "--model",
                choices=MODELS,
                help="default: ancestor for digits, mnist_bn for MNIST (see below), lenet5 "
                "for Fashion-MNIST, resnet20 for CIFAR-10",
            )
            command.add_argument(
                "--data-dir", type=_folder, help="a folder with the dataset's original files"
            )
            command.add_argument(
                "--train-samples",
                type=_positive_int("train_samples"),
                help="train on the first N training samples only (a quick run)",
            )
        command.add_argument(
            "--backend", type=_backend_name, help="backend name (default: the current backend)"
        )
        command.add_argument(
            "--epochs",
            type=_positive_int("n_epochs"),
            help="default: 50 digits, 3 MNIST, 10 CIFAR",
        )
        command.add_argument(
            "--batch-size",
            type=_positive_int("batch_size"),
            help="default: 256 digits, 128 others",
        )
        command.add_argument("--seed", type=_seed, default=0)
        command.add_argument("--dtype", choices=("float32", "float64"), default="float32")
        command.add_argument(
            "--save", type=_output_file, help="write the trained model to this .npz file"
        )
        command.add_argument(
            "--plot", type=_plot_file, help="draw loss and accuracy curves to this image"
        )
        command.add_argument(
            "--checkpoint",
            type=_output_file,
            help="save the training state to this file every --checkpoint-every epochs",
        )
        command.add_argument(
            "--checkpoint-every", type=_positive_int("checkpoint_every"), default=1
        )
        command.add_argument(
            "--resume", type=_input_file, help="continue the training saved in this checkpoint"
        )
        command.add_argument("--quiet", action="store_true", help="no summary or progress bar")
        command.set_defaults(run=_train, dataset="digits", model=None, data_dir=None)
        command.set_defaults(train_samples=None)
    commands.add_parser("info", help="backends usable here, versions and devices").set_defaults(
        run=_info
    )
    args = parser.parse_args(argv)
    if args.command != "info":
        args.model = args.model or DATASETS[args.dataset]
        if args.model == "ancestor" and args.dataset != "digits":
            parser.exit(
                2,
                f"xconv {args.command}: error: --model ancestor is the 8x8 digits CNN; "
                f"for {args.dataset} use --model mnist_bn, lenet5 or resnet20\n",
            )
    # a user's mistake (or a full disk) is one line, never a traceback
    try:
        return int(args.run(args))
    except BrokenPipeError:  # an OSError, but no mistake: main() ends quietly
        raise
    except (TypeError, ValueError) as exc:
        parser.exit(2, f"xconv {args.command}: error: {exc}\n")
    except OSError as exc:
        parser.exit(2, f"xconv {args.command}: error: {exc}\n")
    except NonFiniteLossError as exc:
        parser.exit(1, f"xconv {args.command}: error: {exc}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"xconv {args.command}: interrupted\n")
