"""Hostile arguments, fuzzed (Hypothesis), for `fit`'s keywords, the callbacks, the
dataset helpers of `xconv.data` and the helpers of `xconv.testing` (issue #27).

The promise: a bad argument is a TypeError or ValueError that names it, before any
work is done. Each case replaces ONE argument of one callable by a drawn hostile
value (None, bools, strings, bytes, containers, NaN and infinities, negative, zero and
huge numbers, NumPy scalars and arrays, complex numbers, ...) and calls it. Allowed:
success (the value happened to be acceptable), or a TypeError/ValueError whose message
names the argument outside the quoted value: as `name` in backquotes where the message
quotes names so (xconv's style), else as a word (`names_argument`). Anything else --
AttributeError, OverflowError, ZeroDivisionError, IndexError, a warning (the suite
turns warnings into errors), a hang -- fails.

The cases come from introspection: every class of ``xconv.callbacks.__all__`` and
every parameter of its signature, every parameter of `NeuralNetwork.fit`, every
function of ``xconv.data.__all__`` and of ``xconv.testing.__all__``; a new callback,
keyword or helper is fuzzed without an edit here. The tables below only give valid
values for required arguments (`BASE`), exclusions (`EXCLUDED`) and the defects known
today (`KNOWN_DEFECTS`, `MISNAMED`: each also a strict xfail, so a fix shows).

A callback that is built is then used in a one-epoch fit; a schedule is called; an
iterator is drained: an argument accepted when built and refused later must still be
refused by name, before the model changes. A refused ``fit`` must leave the model as
it was and begin no epoch.

CI draws `EXAMPLES` reproducible examples per case; ``nox -s fuzz`` draws many more
(see tests/_hypothesis.py). Host-side argument checks: NumPy only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import math
import os
import re
import signal
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from _hypothesis import fuzz_settings
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import xconv.callbacks as callbacks
import xconv.data as data
import xconv.testing as testing
from xconv import NeuralNetwork, NonFiniteLossError
from xconv._validation import as_int
from xconv.layers import Activation, Dense

#: seconds one call may take before it counts as a hang
DEADLINE = 10.0


# -- hostile values ---------------------------------------------------------------------


class _Opaque:
    """An object of no kind any argument takes."""

    def __repr__(self) -> str:
        return "<opaque>"


FIXED_VALUES: list[Any] = [
    None,
    True,
    False,
    "",
    "x",
    "auto",
    "nan",
    "-1",
    "\x00",
    "{",
    "a" * 300,
    b"",
    b"x",
    [],
    [1],
    [None],
    (),
    (1, 2),
    ("a", "b"),
    {},
    {"a": 1},
    object(),
    _Opaque(),
    math.nan,
    math.inf,
    -math.inf,
    -1,
    -1.5,
    0,
    0.0,
    -0.0,
    1,
    2,
    10**400,
    -(10**400),
    2**63,
    5e-324,
    1e-300,
    1e308,
    np.float64(math.nan),
    np.float32(math.inf),
    np.float32(0.5),
    np.int64(-1),
    np.int64(0),
    np.int64(2**62),
    np.uint8(255),
    np.bool_(True),
    np.array(1.0),
    np.array(3),
    np.array([1.0, 2.0]),
    np.array([]),
    np.array([math.nan]),
    np.array(["a"]),
    1j,
    complex(math.nan, 0),
    np.complex128(1 + 1j),
]

#: characters for drawn strings: letters, format fields, dots, a NUL (no separators:
#: a drawn path stays in the example's own temporary folder)
_TEXT = st.text(alphabet="ax01{}.:%- \x00", max_size=6)

hostile_values = st.one_of(
    st.sampled_from(FIXED_VALUES),
    st.integers(),
    st.integers(-(10**30), 10**30).map(lambda n: n * 10**300),  # beyond float's range
    st.floats(),
    _TEXT,
    st.binary(max_size=4),
    st.lists(st.one_of(st.integers(-3, 3), st.floats(), _TEXT), max_size=3),
    st.tuples(st.floats(), st.floats()),
    st.dictionaries(_TEXT, st.integers(), max_size=2),
    st.complex_numbers(max_magnitude=1e6),
    st.floats().map(np.float64),
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.lists(st.floats(), max_size=3).map(np.array),
    st.floats().map(np.array),
)


# -- the outcome checker ----------------------------------------------------------------


class BrokenPromise(AssertionError):
    """A call broke the promise: a raw exception, or a refusal not naming its argument."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """A TimeoutError in the calling (main) thread after `seconds`: a hang fails."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _shown(value: Any) -> str:
    try:
        return repr(value)[:200]
    except Exception:  # pragma: no cover - every value drawn here has a repr
        return f"<{type(value).__name__}>"


def names_argument(message: str, value: Any, names: tuple[str, ...]) -> bool:
    """Whether `message` names one of `names`, outside the quoted `value` (``got 'x'``
    does not name an argument ``x``): in backquotes where the message quotes names so
    (xconv's style: "`resume` must be a file path" does not name `path`), else as a
    word."""
    with contextlib.suppress(Exception):
        text = repr(value)
        if text:
            message = message.replace(text, " ")
    if "`" in message:
        return any(f"`{name}`" in message for name in names)
    return any(
        re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", message) is not None for name in names
    )


def check_outcome(
    run: Callable[[], Any],
    name: str,
    value: Any,
    *,
    aliases: tuple[str, ...] = (),
    tolerated: tuple[type[BaseException], ...] = (),
    refusals: tuple[type[BaseException], ...] = (TypeError, ValueError),
    deadline: float = DEADLINE,
) -> str:
    """Call `run` (which passed `value` as argument `name`): "accepted", "refused",
    "tolerated" or "unavailable"; a `BrokenPromise` for any other outcome.

    `refusals` must name the argument (`name` or one of `aliases`); `tolerated` are
    exceptions that are a verdict of the callable, not a refusal of the argument (an
    assertion helper's AssertionError). "unavailable" is a valid value whose optional
    library is not installed here, told by an ImportError that says what to install.
    """
    what = f"`{name}`={_shown(value)}"
    try:
        with _deadline(deadline), warnings.catch_warnings():
            warnings.simplefilter("error")
            run()
    except BrokenPromise:
        raise
    except tolerated:
        return "tolerated"
    except refusals as exc:
        if not names_argument(str(exc), value, (name, *aliases)):
            raise BrokenPromise(
                f"{what}: {type(exc).__name__} does not name `{name}`: {exc}"
            ) from exc
        return "refused"
    except pytest.skip.Exception as exc:  # a skip would hide the case
        raise BrokenPromise(f"{what}: skipped the test: {exc}") from exc
    except ImportError as exc:
        if "pip install 'xconv[" not in str(exc):
            raise BrokenPromise(f"{what}: {type(exc).__name__}: {exc}") from exc
        return "unavailable"
    except Exception as exc:
        raise BrokenPromise(f"{what}: {type(exc).__name__}: {exc}") from exc
    return "accepted"


# -- a tiny model, and fit ---------------------------------------------------------------

X = np.random.default_rng(0).normal(size=(8, 4))
Y = np.arange(8) % 3


def _model() -> NeuralNetwork:
    model = NeuralNetwork("adam", "cross_entropy", dtype="float64", seed=0, backend="numpy")
    model.add(Dense(3, input_shape=(4,)))
    model.add(Activation("softmax"))
    return model


def _state(model: NeuralNetwork) -> list[dict[str, np.ndarray]]:
    return [{k: np.array(v) for k, v in layer.params.items()} for layer in model.layers]


def _same_state(a: list[dict[str, np.ndarray]], b: list[dict[str, np.ndarray]]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
        for x, y in zip(a, b, strict=True)
    )


class _Recorder(callbacks.Callback):
    """Records the epochs begun; stops after the first (a huge `epochs` is no hang)."""

    def __init__(self) -> None:
        self.begun: list[int] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.begun.append(epoch)

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.model.stop_training = True


class _RecorderList:
    """`fit`'s base ``callbacks``: replaced by ``[a fresh _Recorder]`` in `_fit`."""


def _fit_refusing_before_work(
    model: NeuralNetwork, recorder: _Recorder | None, **kwargs: Any
) -> None:
    """``model.fit(**kwargs)``; a refusal must leave the model as it was and, where the
    recorder is attached, begin no epoch (else a `BrokenPromise`)."""
    before = _state(model)
    try:
        model.fit(**kwargs)
    except (TypeError, ValueError, FileNotFoundError) as exc:
        changed = not _same_state(before, _state(model))
        if changed or (recorder is not None and recorder.begun):
            raise BrokenPromise(
                f"fit refused only after training (epochs begun "
                f"{recorder.begun if recorder else '?'}, parameters changed: {changed}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        raise


def _fit(**kwargs: Any) -> None:
    """`NeuralNetwork.fit` of a fresh tiny model with `kwargs`."""
    recorder = None
    if isinstance(kwargs.get("callbacks"), _RecorderList):
        recorder = _Recorder()
        kwargs["callbacks"] = [recorder]
    _fit_refusing_before_work(_model(), recorder, **kwargs)


def _fit_with(callback: callbacks.Callback) -> None:
    """A one-epoch fit with validation data, using `callback`."""
    recorder = _Recorder()
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),  # LearningRateScheduler(verbose=True)
        warnings.catch_warnings(),
    ):
        # a huge (valid) learning rate makes the model's own arithmetic overflow before
        # the loss is NaN (a NonFiniteLossError, tolerated); a callback's own warnings
        # still fail
        warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"xconv\.(?!callbacks)")
        _fit_refusing_before_work(
            _model(),
            recorder,
            X=X,
            y=Y,
            epochs=1,
            batch_size=4,
            verbose=0,
            validation_data=(X, Y),
            callbacks=[callback, recorder],
        )


# -- the cases ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Target:
    """A callable to fuzz: its parameters come from `signature_of`'s signature.

    `call` is what runs (defaults to `signature_of`); `then` uses its result (a fit
    with a built callback, a schedule called), still before the verdict.
    """

    id: str
    signature_of: Callable[..., Any]
    call: Callable[..., Any] | None = None
    then: Callable[[Any], Any] | None = None
    #: names passed for ``**kwargs`` (fuzzed as parameters)
    keywords: tuple[str, ...] = ()

    def parameters(self) -> list[inspect.Parameter]:
        found = []
        for parameter in inspect.signature(self.signature_of).parameters.values():
            if parameter.name == "self" or parameter.kind is inspect.Parameter.VAR_POSITIONAL:
                continue  # *args: passed through unchecked by design (reference_torch)
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                found += [
                    inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=None)
                    for key in self.keywords
                ]
                continue
            found.append(parameter)
        return found


def _schedule_call(schedule: Any) -> None:
    schedule(3)


def _callback_targets() -> list[Target]:
    """Every public class of xconv.callbacks: built, then used (a fit, or called)."""
    targets = []
    for name in callbacks.__all__:
        cls = getattr(callbacks, name)
        if not inspect.isclass(cls):
            continue
        if issubclass(cls, callbacks.Callback):
            then = _fit_with
        else:  # a schedule: a function of the epoch
            then = _schedule_call if "__call__" in vars(cls) else None
        keywords = LAMBDA_HOOKS if cls is callbacks.LambdaCallback else ()
        targets.append(Target(f"callbacks.{name}", cls, then=then, keywords=keywords))
        # public methods of their own, beyond the hooks every callback has
        for method, function in vars(cls).items():
            if method.startswith("_") and method != "__call__":
                continue
            if not inspect.isfunction(function) or method in dir(callbacks.Callback):
                continue
            if method == "__call__" or not method.startswith("on_"):
                targets.append(
                    Target(
                        f"callbacks.{name}.{method}",
                        function,
                        call=_method_caller(cls, method),
                    )
                )
    return targets


def _method_caller(cls: type, method: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        instance = cls(
            **{key: make() for key, make in BASE.get(f"callbacks.{cls.__name__}", {}).items()}
        )
        return getattr(instance, method)(*args, **kwargs)

    return call


#: LambdaCallback's ``**hooks``: each a function
LAMBDA_HOOKS = ("on_epoch_end", "on_batch_begin")


def _drain(result: Any) -> None:
    if isinstance(result, Iterator):
        for _ in result:
            pass


def _data_targets() -> list[Target]:
    """Every public function of xconv.data (an iterator is drained)."""
    return [
        Target(f"data.{name}", getattr(data, name), then=_drain)
        for name in data.__all__
        if inspect.isfunction(getattr(data, name))
    ]


@contextlib.contextmanager
def _fresh_nox_registry() -> Iterator[None]:
    """nox's global session registry, empty during the call and restored after it."""
    import nox.registry

    saved = nox.registry._REGISTRY
    nox.registry._REGISTRY = {}
    try:
        yield
    finally:
        nox.registry._REGISTRY = saved


def _nox_sessions(*args: Any, **kwargs: Any) -> Any:
    with _fresh_nox_registry():
        return testing.nox_sessions(*args, **kwargs)


#: `testing.nox_sessions` builds nox sessions: its cases need nox, which the light
#: test environments (a backend's CI session) do not install
NEEDS_NOX = (
    frozenset({"testing.nox_sessions"}) if importlib.util.find_spec("nox") is None else frozenset()
)


def _testing_targets() -> list[Target]:
    """Every public function of xconv.testing (but those needing an absent nox)."""
    calls: dict[str, Callable[..., Any]] = {"nox_sessions": _nox_sessions}
    return [
        Target(f"testing.{name}", getattr(testing, name), call=calls.get(name))
        for name in testing.__all__
        if inspect.isfunction(getattr(testing, name)) and f"testing.{name}" not in NEEDS_NOX
    ]


FIT = Target("NeuralNetwork.fit", NeuralNetwork.fit, call=_fit)

#: valid values (factories) of the arguments each call needs or is given, by target;
#: the rest keep their defaults. Paths are relative: each call runs in a fresh folder.
BASE: dict[str, dict[str, Callable[[], Any]]] = {
    "NeuralNetwork.fit": {
        "X": lambda: X,
        "y": lambda: Y,
        "batch_size": lambda: 4,
        "verbose": lambda: 0,
        "callbacks": _RecorderList,
    },
    "callbacks.CSVLogger": {"filename": lambda: "log.csv"},
    "callbacks.Checkpoint": {"path": lambda: "run.ckpt"},
    "callbacks.CosineDecay": {"initial_lr": lambda: 0.1, "epochs": lambda: 3},
    "callbacks.LearningRateScheduler": {"schedule": lambda: callbacks.StepDecay(0.1)},
    "callbacks.LinearWarmup": {
        "schedule": lambda: callbacks.StepDecay(0.1),
        "warmup_epochs": lambda: 2,
    },
    "callbacks.ModelCheckpoint": {"filepath": lambda: "model.npz", "monitor": lambda: "loss"},
    "callbacks.OneCycle": {"max_lr": lambda: 0.1},
    "callbacks.StepDecay": {"initial_lr": lambda: 0.1},
    "callbacks.EarlyStopping": {"monitor": lambda: "loss"},
    "callbacks.ReduceLROnPlateau": {"monitor": lambda: "loss"},
    "callbacks.StepDecay.__call__": {"epoch": lambda: 3},
    "callbacks.CosineDecay.__call__": {"epoch": lambda: 3},
    "callbacks.LinearWarmup.__call__": {"epoch": lambda: 3},
    "callbacks.OneCycle.rate": {"step": lambda: 3},
    "data.batch_iterator": {"X": lambda: np.arange(10.0)},
    "data.to_categorical": {"y": lambda: [0, 2, 1]},
    "data.train_test_split": {
        "X": lambda: np.arange(20.0).reshape(10, 2),
        "y": lambda: np.arange(10),
    },
    "testing.assert_close": {
        "actual": lambda: np.array([1.0, 2.0]),
        "expected": lambda: np.array([1.0, 2.0]),
    },
    "testing.check_gradient": {
        "fn": lambda: lambda x: np.sum(np.abs(x)),
        "inputs": lambda: np.array([1.0, 2.0]),
        "grads": lambda: np.array([1.0, 1.0]),
    },
    "testing.numerical_gradient": {
        "f": lambda: lambda a: float(np.max(np.abs(a))),  # no overflow: a may be 1e308
        "a": lambda: np.array([1.0, -2.0]),
    },
    "testing.to_numpy": {"x": lambda: np.array([1.0])},
    "testing.from_numpy": {"a": lambda: [1.0, 2.0], "xp": lambda: np},
    "testing.xconv_requirement": {"source": lambda: "xconv"},
    "testing.reference_torch": {"fn_name": lambda: "relu"},
    "testing.nox_sessions": {"backends": lambda: ["numpy"]},
}

_DOWNLOAD = "None downloads (the network): never fuzzed"
#: values never drawn for an argument, by (target, argument), each with why
EXCLUDED: dict[tuple[str, str], tuple[Callable[[Any], bool], str]] = {
    ("data.load_mnist", "path"): (lambda v: v is None, _DOWNLOAD),
    ("data.load_fashion_mnist", "path"): (lambda v: v is None, _DOWNLOAD),
    ("data.load_cifar10", "path"): (lambda v: v is None, _DOWNLOAD),
    # a valid but huge number of classes allocates (N, n_classes): memory, not a check
    # (2**40 and more: see KNOWN_DEFECTS)
    ("data.to_categorical", "n_classes"): (
        lambda v: (n := as_int(v)) is not None and 10**6 < n < 2**40,
        "allocates n_classes columns",
    ),
}

#: arguments not fuzzed at all, each with why
SKIPPED: dict[tuple[str, str], str] = {}
if importlib.util.find_spec("torch") is None:  # pragma: no cover - torch is installed here
    SKIPPED["testing.reference_torch", "fn_name"] = "without PyTorch it skips, as documented"

#: other words a refusal may name an argument by, each with why
ALIASES: dict[tuple[str, str], tuple[str, ...]] = {
    # the monitored name is refused at the fit's start: "EarlyStopping monitors 'x', ..."
    **{
        (f"callbacks.{cls}", "monitor"): ("monitors",)
        for cls in ("EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint")
    },
    # its two entries are checked as the data they are: "`validation X` must ..."
    ("NeuralNetwork.fit", "validation_data"): ("validation X", "validation y"),
    # a claimed gradient is checked against its input: "the gradient for input 0 ..."
    ("testing.check_gradient", "grads"): ("gradient",),
    # "xconv's source './x' does not exist"
    ("testing.xconv_requirement", "source"): ("xconv's source",),
}

#: exceptions that are a verdict rather than a refusal, by target, each with why
TOLERATED: dict[str, tuple[type[BaseException], ...]] = {
    # comparing: a value that differs from the other array is an AssertionError
    "testing.assert_close": (AssertionError,),
    # checking: a gradient that disagrees with the differences is an AssertionError
    "testing.check_gradient": (AssertionError,),
}

#: exceptions tolerated while a built callback is used in a fit, each with why
TOLERATED_IN_FIT: tuple[type[BaseException], ...] = (
    NonFiniteLossError,  # a huge (valid) learning rate diverges: documented, model safe
)

#: arguments read as files: a missing one is a FileNotFoundError naming the argument,
#: as `readable_file` documents (``fit(resume=)``, the loaders' folders)
READ_PATHS = {
    ("NeuralNetwork.fit", "resume"),
    ("callbacks.Resume", "path"),
    ("data.load_mnist", "path"),
    ("data.load_fashion_mnist", "path"),
    ("data.load_cifar10", "path"),
}

#: fuzzed with RuntimeWarnings off, each with why
QUIET_OVERFLOW = {
    # a huge (valid) step makes the *user's* function overflow: its warning, not ours
    ("testing.check_gradient", "eps"),
    ("testing.numerical_gradient", "eps"),
    # inputs of 2**1023 overflow BASE's own np.sum(np.abs(x)), not xconv
    ("testing.check_gradient", "inputs"),
}


def _every(value: Any) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Defect:
    """A known broken promise of (`target`, `name`): the values `matches` (its example
    among them) get a raw exception or a refusal that does not name the argument."""

    target: str
    name: str
    matches: Callable[[Any], bool]
    example: Any
    reason: str

    @property
    def whole(self) -> bool:
        """Whether (nearly) every hostile value breaks it: the fuzz case is an xfail."""
        return self.matches is _every


#: defects found by this suite and not yet fixed; the fuzz skips the values that
#: `matches` (a `whole` defect's case is a strict xfail), and
#: `test_known_defects_still_break_the_promise` (a strict xfail each) shows every one,
#: so that a fix is noticed and its entry removed. None today: the 44 that issue #27's
#: probe and this suite found are fixed, each with a regression test in a
#: test_hardening_*.py module.
KNOWN_DEFECTS: list[Defect] = []
DEFECTS: dict[tuple[str, str], list[Defect]] = {}
for _defect in KNOWN_DEFECTS:
    DEFECTS.setdefault((_defect.target, _defect.name), []).append(_defect)


def _whole_defect(target_id: str, name: str) -> Defect | None:
    return next((d for d in DEFECTS.get((target_id, name), []) if d.whole), None)


#: refusals naming an argument by another name, by (target, argument): that name, and
#: a value refused so
MISNAMED: dict[tuple[str, str], tuple[str, Any]] = {}  # none known today


def _all_targets() -> list[Target]:
    return [FIT, *_callback_targets(), *_data_targets(), *_testing_targets()]


TARGETS = {target.id: target for target in _all_targets()}
CASES = [
    (target.id, parameter.name)
    for target in TARGETS.values()
    for parameter in target.parameters()
    if (target.id, parameter.name) not in SKIPPED
]


# -- one call -------------------------------------------------------------------------


def _invoke(target: Target, name: str, value: Any) -> Callable[[], Any]:
    """A thunk calling `target` with `value` as argument `name` and the `BASE` values."""
    base = BASE.get(target.id, {})

    def run() -> Any:
        args, kwargs = [], {}
        for parameter in target.parameters():
            if parameter.name == name:
                given = value
            elif parameter.name in base:
                given = base[parameter.name]()
            elif parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
                given = parameter.default  # keeps later positional arguments in place
                if given is inspect.Parameter.empty:
                    raise AssertionError(f"{target.id}: no BASE value for `{parameter.name}`")
            else:
                continue
            if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(given)
            else:
                kwargs[parameter.name] = given
        with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
            result = (target.call or target.signature_of)(*args, **kwargs)
            if target.then is not None:
                target.then(result)
        return result

    return run


def check_case(target_id: str, name: str, value: Any) -> str:
    """The outcome of one hostile value; a `BrokenPromise` if it breaks the promise."""
    target = TARGETS[target_id]
    key = (target_id, name)
    run = _invoke(target, name, value)
    if key in QUIET_OVERFLOW:
        inner = run

        def run() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return inner()

    aliases = ALIASES.get(key, ()) + ((MISNAMED[key][0],) if key in MISNAMED else ())
    tolerated = TOLERATED.get(target_id, ())
    if target_id.startswith("callbacks.") and target.then is _fit_with:
        tolerated += TOLERATED_IN_FIT
    refusals: tuple[type[BaseException], ...] = (TypeError, ValueError)
    if key in READ_PATHS:
        refusals += (FileNotFoundError,)
        if isinstance(value, str) and value in (".", ".."):
            # an existing folder without the files: the message names that folder
            tolerated += (FileNotFoundError,)
    return check_outcome(run, name, value, aliases=aliases, tolerated=tolerated, refusals=refusals)


def _allowed(target_id: str, name: str, value: Any) -> bool:
    key = (target_id, name)
    excluded = EXCLUDED.get(key)
    if excluded is not None and excluded[0](value):
        return False
    return not any(defect.matches(value) for defect in DEFECTS.get(key, []))


# -- the tests ------------------------------------------------------------------------


#: a known defect may filter out most draws (every non-str `fn_name`): that is fine
_SUPPRESSED = [*fuzz_settings().suppress_health_check, HealthCheck.filter_too_much]


def _fuzz_param(target_id: str, name: str) -> Any:
    defect = _whole_defect(target_id, name)
    marks = []
    if defect is not None:
        marks = [pytest.mark.xfail(strict=True, reason=defect.reason)]
    return pytest.param(target_id, name, marks=marks, id=f"{target_id}-{name}")


@pytest.mark.parametrize(("target_id", "name"), [_fuzz_param(*case) for case in CASES])
def test_a_hostile_argument_is_accepted_or_refused_by_name(target_id, name):
    @settings(fuzz_settings(), suppress_health_check=_SUPPRESSED)
    @given(value=hostile_values)
    def check(value):
        assume(_allowed(target_id, name, value))
        check_case(target_id, name, value)

    check()


def test_the_fixed_hostile_values_all_keep_the_promise():
    """Every fixed value for every case (a whole defect's case aside), at once: the
    fuzz draws only some of them."""
    broken = []
    for target_id, name in CASES:
        if _whole_defect(target_id, name) is not None:
            continue
        for value in FIXED_VALUES:
            if not _allowed(target_id, name, value):
                continue
            try:
                check_case(target_id, name, value)
            except BrokenPromise as exc:
                broken.append(f"{target_id}({name}): {exc}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("target_id", "name", "value", "misnamed"),
    [
        pytest.param(
            d.target,
            d.name,
            d.example,
            False,
            marks=pytest.mark.xfail(strict=True, raises=BrokenPromise, reason=d.reason),
            id=f"{d.target}-{d.name}-{i}",
        )
        for i, d in enumerate(KNOWN_DEFECTS)
        if d.target not in NEEDS_NOX
    ]
    + [
        pytest.param(
            *key,
            example,
            True,
            marks=pytest.mark.xfail(
                strict=True, raises=BrokenPromise, reason=f"refused as `{wrong}`"
            ),
            id=f"{key[0]}-{key[1]}-misnamed",
        )
        for key, (wrong, example) in MISNAMED.items()
    ],
)
def test_known_defects_still_break_the_promise(target_id, name, value, misnamed, monkeypatch):
    """Each known defect, shown by its example; a misnamed refusal without its alias."""
    if misnamed:
        monkeypatch.delitem(MISNAMED, (target_id, name))
    check_case(target_id, name, value)


def test_the_cases_cover_every_kind_of_callable():
    """Introspection found them: the suite cannot go vacuous."""
    by_kind: dict[str, set[str]] = {}
    parameters: dict[str, int] = {}
    for target_id, _ in CASES:
        kind = target_id.split(".")[0]
        by_kind.setdefault(kind, set()).add(target_id)
        parameters[kind] = parameters.get(kind, 0) + 1
    classes = {t for t in by_kind["callbacks"] if t.count(".") == 1}
    assert len(classes) >= 14, classes
    assert {
        f"callbacks.{n}" for n in callbacks.__all__ if inspect.isclass(getattr(callbacks, n))
    } <= (classes | {"callbacks.Callback", "callbacks.SkipNonFinite", "callbacks.TerminateOnNaN"})
    assert parameters["callbacks"] >= 40, parameters
    fit_names = {n for t, n in CASES if t == "NeuralNetwork.fit"}
    assert fit_names >= {
        "epochs",
        "n_epochs",
        "batch_size",
        "shuffle",
        "validation_data",
        "validation_split",
        "callbacks",
        "verbose",
        "callback",
        "checkpoint",
        "checkpoint_every",
        "resume",
        "on_nonfinite",
    }, fit_names
    assert len(by_kind["data"]) >= 7, by_kind["data"]
    assert parameters["data"] >= 15, parameters
    assert len(by_kind["testing"]) >= 7 - len(NEEDS_NOX), by_kind["testing"]
    assert parameters["testing"] >= 20 - 3 * len(NEEDS_NOX), parameters
    # every table entry names a real case (a renamed argument must not leave one stale)
    names = set(CASES) | set(SKIPPED)
    for table in (EXCLUDED, ALIASES, DEFECTS, MISNAMED):
        stale = {key for key in set(table) - names if key[0] not in NEEDS_NOX}
        assert not stale, stale
    for defect in KNOWN_DEFECTS:  # each example is one of the values it describes
        assert defect.matches(defect.example), defect
    assert names >= READ_PATHS | QUIET_OVERFLOW
    assert set(BASE) - NEEDS_NOX <= set(TARGETS), set(BASE) - set(TARGETS)
    assert len(FIXED_VALUES) >= 50


# -- the checker itself -----------------------------------------------------------------


def _toy_attribute_error(n):
    return n.bit_length() + 1


def _toy_unnamed(n):
    raise ValueError(f"must be positive, got {n!r}")


def _toy_named(n):
    raise ValueError(f"`n` must be positive, got {n!r}")


def _toy_misnamed(n):
    raise TypeError(f"`count` must be n or more, got {n!r}")  # names n, but not as `n`


def _toy_overflow(n):
    return float(n)


def _toy_warning(n):
    return np.float64(n) * np.float64(1e308)


def _toy_hang(n):
    time.sleep(5)


@pytest.mark.parametrize(
    ("toy", "value", "message"),
    [
        (_toy_attribute_error, "n", "AttributeError"),
        (_toy_unnamed, -1, "does not name `n`"),
        (_toy_unnamed, "n", "does not name `n`"),  # the value is not the name
        (_toy_misnamed, 0, "does not name `n`"),
        (_toy_overflow, 10**400, "OverflowError"),
        (_toy_warning, 10.0, "RuntimeWarning"),
        (_toy_hang, 0, "TimeoutError"),
    ],
)
def test_the_checker_flags_a_broken_promise(toy, value, message):
    with pytest.raises(BrokenPromise, match=message):
        check_outcome(lambda: toy(value), "n", value, deadline=0.2)


def test_the_checker_passes_a_kept_promise():
    assert check_outcome(lambda: _toy_named(-1), "n", -1) == "refused"
    assert check_outcome(lambda: _toy_attribute_error(3), "n", 3) == "accepted"
    assert check_outcome(lambda: _toy_unnamed(0), "m", 0, aliases=("positive",)) == "refused"


def test_the_checker_flags_a_fit_that_trains_before_refusing():
    class LateRefusal(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise ValueError("`late` refused after an epoch")

    model, recorder = _model(), _Recorder()
    with pytest.raises(BrokenPromise, match="only after training"):
        check_outcome(
            lambda: _fit_refusing_before_work(
                model, recorder, X=X, y=Y, verbose=0, callbacks=[recorder, LateRefusal()]
            ),
            "late",
            None,
        )


def test_a_refused_fit_keeps_the_model_and_begins_no_epoch():
    """The fit wrapper's own check, on a value that is refused."""
    assert check_case("NeuralNetwork.fit", "batch_size", 0) == "refused"
    assert check_case("NeuralNetwork.fit", "batch_size", 2) == "accepted"
