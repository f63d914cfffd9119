"""The command line: ``python -m xconv demo | train | info`` (also the ``xconv`` script)."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import xconv
from xconv import backends
from xconv.data import load_digits, train_test_split
from xconv.models import digits_cnn

__all__ = ["build_digits_cnn", "main"]

#: the digits CNN under its older name (it lives in `xconv.models` now)
build_digits_cnn = digits_cnn


def _progress(n_epochs: int, quiet: bool) -> tuple[Callable[[int, dict[str, float]], None], Any]:
    """A per-epoch callback drawing a progress bar (tqdm when installed)."""
    if quiet:
        return (lambda epoch, logs: None), None
    try:
        from tqdm import tqdm
    except ImportError:
        bar = None
    else:
        bar = tqdm(total=n_epochs, unit="epoch", file=sys.stderr)

    def update(epoch: int, logs: dict[str, float]) -> None:
        text = ", ".join(f"{k} {v:.4f}" for k, v in logs.items())
        if bar is not None:
            bar.set_postfix_str(text, refresh=False)
            bar.update(epoch + 1 - bar.n)  # a resumed run starts past epoch 0
        else:
            done = int(30 * (epoch + 1) / n_epochs)
            line = f"\r[{'#' * done}{'.' * (30 - done)}] epoch {epoch + 1}/{n_epochs} {text}"
            print(line, end="\n" if epoch + 1 == n_epochs else "", file=sys.stderr, flush=True)

    return update, bar


def _train(args: argparse.Namespace) -> int:
    backend = backends.get(args.backend) if args.backend else backends.get_backend()
    X, y = load_digits(dtype=args.dtype)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, seed=args.seed)
    model = build_digits_cnn(
        seed=args.seed, backend=backend.name, dtype=args.dtype, validation=(X_test, y_test)
    )
    if not args.quiet:
        model.summary()
    callback, bar = _progress(args.epochs, args.quiet)
    start = time.perf_counter()
    history = model.fit(
        X_train,
        y_train,
        args.epochs,
        args.batch_size,
        callback=callback,
        checkpoint=args.checkpoint,
        checkpoint_every=args.checkpoint_every,
        resume=args.resume,
    )
    backend.synchronize()
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    _, accuracy = model.evaluate(X_test, y_test)
    if args.save:
        model.save(args.save)
        print(f"saved the model to {args.save}")
    if args.plot:
        _plot(history, Path(args.plot))
    print(
        f"test accuracy {accuracy:.4f} after {args.epochs} epochs in {seconds:.1f} s "
        f"on backend {backend.name} ({args.dtype})"
    )
    return 0


def _plot(history: dict[str, list[float]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib (pip install matplotlib); no plot written", file=sys.stderr)
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
        try:
            version = importlib.metadata.version(_distribution(backend.module))
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        print(f"  {name:18} {version:12} default device: {backend.default_device}")
    return 0


def _distribution(module: str) -> str:
    return {"array_api_strict": "array-api-strict"}.get(module, module)


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
    """An argparse type: a file path whose folder exists (checked before training)."""
    path = Path(text)
    if not text or path.is_dir():
        raise argparse.ArgumentTypeError(f"must be a file path, got the folder {text!r}")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {str(path.parent)!r} does not exist")
    return text


def _input_file(text: str) -> str:
    """An argparse type: an existing file."""
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"no such file {text!r}")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="xconv", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text, epochs in (
        ("demo", "train the ancestor's CNN on digits (50 epochs)", 50),
        ("train", "train the digits CNN with your settings", 50),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--backend", type=_backend_name, help="backend name (default: the current backend)"
        )
        command.add_argument("--epochs", type=_positive_int("n_epochs"), default=epochs)
        command.add_argument("--batch-size", type=_positive_int("batch_size"), default=256)
        command.add_argument("--seed", type=_seed, default=0)
        command.add_argument("--dtype", choices=("float32", "float64"), default="float32")
        command.add_argument(
            "--save", type=_output_file, help="write the trained model to this .npz file"
        )
        command.add_argument(
            "--plot", type=_output_file, help="draw loss and accuracy curves to this image"
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
        command.set_defaults(run=_train)
    commands.add_parser("info", help="backends usable here, versions and devices").set_defaults(
        run=_info
    )
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (TypeError, ValueError) as exc:
        parser.exit(2, f"xconv {args.command}: error: {exc}\n")
