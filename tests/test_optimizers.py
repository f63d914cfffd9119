"""Optimizers: trajectories equal to torch.optim, functional updates, state, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import relative_error, requires_torch_reason, to_np, to_xp, torch

from xconv import optimizers
from xconv.optimizers import SGD, Adadelta, Adagrad, Adam, AdamW, Optimizer, RMSprop

# (our class, our options, torch's class name, torch's options)
CASES = {
    "sgd": (SGD, {"learning_rate": 0.1}, "SGD", {"lr": 0.1}),
    "sgd-momentum": (
        SGD,
        {"learning_rate": 0.05, "momentum": 0.9},
        "SGD",
        {"lr": 0.05, "momentum": 0.9},
    ),
    "sgd-nesterov-decay": (
        SGD,
        {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1},
        "SGD",
        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1},
    ),
    "adam": (Adam, {"learning_rate": 0.01}, "Adam", {"lr": 0.01}),
    "adam-options": (
        Adam,
        {"learning_rate": 0.02, "b1": 0.5, "b2": 0.8, "eps": 1e-6},
        "Adam",
        {"lr": 0.02, "betas": (0.5, 0.8), "eps": 1e-6},
    ),
    "adamw": (
        AdamW,
        {"learning_rate": 0.01, "weight_decay": 0.2},
        "AdamW",
        {"lr": 0.01, "weight_decay": 0.2},
    ),
    "rmsprop": (
        RMSprop,
        {"learning_rate": 0.01, "rho": 0.8, "eps": 1e-7},
        "RMSprop",
        {"lr": 0.01, "alpha": 0.8, "eps": 1e-7},
    ),
    "adagrad": (Adagrad, {"learning_rate": 0.1}, "Adagrad", {"lr": 0.1}),
    "adadelta": (
        Adadelta,
        {"learning_rate": 0.5, "rho": 0.95, "eps": 1e-5},
        "Adadelta",
        {"lr": 0.5, "rho": 0.95, "eps": 1e-5},
    ),
}

SHAPES = {"conv.weight": (2, 3, 2), "conv.bias": (4,)}
N_STEPS = 6


def _gradients(seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Gradients with exact zeros and tiny entries, where eps placement shows."""
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(N_STEPS):
        grads = {}
        for key, shape in SHAPES.items():
            g = rng.standard_normal(shape) * rng.choice([1.0, 1e-3, 1e-8], size=shape)
            grads[key] = np.where(rng.random(shape) < 0.15, 0.0, g)
        steps.append(grads)
    return steps


def _initial() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {key: rng.standard_normal(shape) for key, shape in SHAPES.items()}


def _torch_trajectory(torch_name, torch_options):
    params = {k: torch.tensor(v, dtype=torch.float64) for k, v in _initial().items()}
    opt = getattr(torch.optim, torch_name)(list(params.values()), **torch_options)
    trajectory = []
    for grads in _gradients():
        for key, p in params.items():
            p.grad = torch.tensor(grads[key], dtype=torch.float64)
        opt.step()
        trajectory.append({k: p.detach().numpy().copy() for k, p in params.items()})
    return trajectory


def _run(opt, xp, params, grads_sequence, dtype="float64"):
    """Update the parameters in `params` (host arrays) along a gradient sequence."""
    current = {k: to_xp(v, xp, dtype) for k, v in params.items()}
    trajectory = []
    for grads in grads_sequence:
        # alternate the key order: the state of each key must not depend on it
        for key in sorted(current, reverse=len(trajectory) % 2 == 1):
            current[key] = opt.update(key, current[key], to_xp(grads[key], xp, dtype))
        trajectory.append({k: to_np(v) for k, v in current.items()})
    return trajectory


@pytest.mark.skipif(torch is None, reason=requires_torch_reason)
@pytest.mark.parametrize("case", list(CASES))
def test_trajectory_matches_torch(xp, case):
    cls, options, torch_name, torch_options = CASES[case]
    expected = _torch_trajectory(torch_name, torch_options)
    actual = _run(cls(**options), xp, _initial(), _gradients())
    for step, (ours, theirs) in enumerate(zip(actual, expected, strict=True)):
        for key in SHAPES:
            assert ours[key].dtype == np.float64
            error = relative_error(ours[key], theirs[key])
            assert error <= 1e-12, f"step {step + 1}, {key}: relative error {error:.2e}"


def test_adam_bias_correction_makes_the_first_step_the_learning_rate(xp):
    # m_hat = g and v_hat = g**2 after one step, so each coordinate moves by lr
    g = np.array([3.0, -0.25, 1e-3])
    new = Adam(learning_rate=0.01).update("w", to_xp(np.zeros(3), xp), to_xp(g, xp))
    np.testing.assert_allclose(to_np(new), -0.01 * np.sign(g), rtol=1e-4)


@pytest.mark.parametrize("case", list(CASES))
def test_update_is_functional_and_keeps_dtype(xp, case):
    cls, options, *_ = CASES[case]
    param = to_xp(np.array([[1.0, -2.0], [0.5, 3.0]]), xp, "float32")
    before = to_np(param).copy()
    opt = cls(**options)
    new = param
    for _ in range(2):
        new = opt.update("w", new, to_xp(np.array([[0.5, -1.0], [2.0, 0.0]]), xp, "float32"))
    np.testing.assert_array_equal(to_np(param), before)  # the input is untouched
    assert new.dtype == xp.float32
    assert new.shape == param.shape
    assert not np.array_equal(to_np(new), before)


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_round_trip(xp, backend, case):
    cls, options, *_ = CASES[case]
    grads = _gradients()
    first = cls(**options)
    halfway = _run(first, xp, _initial(), grads[:3])[-1]
    state = first.state_dict()
    # host data only: NumPy arrays and ints, one entry per slot
    assert set(state) == {"step", *first.slots}
    assert state["step"] == dict.fromkeys(SHAPES, 3)
    for name in first.slots:
        assert set(state[name]) == set(SHAPES)
        assert all(type(a) is np.ndarray for a in state[name].values())
    explicit = first.state_dict(backend=backend)  # naming the backend changes nothing
    for name in first.slots:
        for key in SHAPES:
            np.testing.assert_array_equal(explicit[name][key], state[name][key])
    # a new optimizer from the config and the state goes on exactly like the first
    config = json.loads(json.dumps(first.get_config()))
    second = Optimizer.from_config(config)
    assert type(optimizers.get(config.pop("class"), **config)) is cls
    assert type(second) is cls
    second.load_state_dict(state, backend=backend)
    for name in first.slots:  # the state was copied, not shared
        for array in state[name].values():
            array[...] = np.nan
    expected = _run(first, xp, halfway, grads[3:])
    actual = _run(second, xp, halfway, grads[3:])
    for ours, theirs in zip(actual, expected, strict=True):
        for key in SHAPES:
            np.testing.assert_array_equal(ours[key], theirs[key])


def test_reset_starts_every_key_afresh(xp):
    opt = Adam(learning_rate=0.1)
    w, g = to_xp(np.array([1.0, 2.0]), xp), to_xp(np.array([0.5, -0.5]), xp)
    first = to_np(opt.update("w", w, g))
    second = to_np(opt.update("w", w, g))
    assert not np.array_equal(first, second)  # the state moved on
    opt.reset()
    assert opt.state_dict() == {"step": {}, "exp_avg": {}, "exp_avg_sq": {}}
    np.testing.assert_array_equal(to_np(opt.update("w", w, g)), first)


def test_plain_sgd_keeps_only_the_step_count(xp):
    opt = SGD(learning_rate=0.5)
    new = opt.update("w", to_xp(np.array([1.0, 2.0]), xp), to_xp(np.array([2.0, -4.0]), xp))
    np.testing.assert_array_equal(to_np(new), [0.0, 4.0])
    assert opt.state_dict() == {"step": {"w": 1}}


def test_nesterov_by_hand(xp):
    # buf = g; step = g + mu * buf = 1.5 g on the first step
    opt = SGD(learning_rate=0.1, momentum=0.5, nesterov=True)
    new = opt.update("w", to_xp(np.array([1.0]), xp), to_xp(np.array([2.0]), xp))
    np.testing.assert_allclose(to_np(new), [1.0 - 0.1 * 3.0], rtol=1e-15)


def test_update_checks_its_arguments(xp):
    opt = Adam()
    w = to_xp(np.ones((2, 3)), xp)
    with pytest.raises(ValueError, match=r"`grad` must have shape \(2, 3\)"):
        opt.update("w", w, to_xp(np.ones((3, 2)), xp))
    with pytest.raises(TypeError, match="`key` must be a string"):
        opt.update(0, w, w)
    with pytest.raises(TypeError, match="arrays of different dtypes"):
        opt.update("w", w, to_xp(np.ones((2, 3)), xp, "float32"))
    with pytest.raises(TypeError, match="`param` must have a real floating dtype"):
        opt.update("w", to_xp(np.ones((2, 3), dtype=np.int64), xp), w)
    opt.update("w", w, w)
    with pytest.raises(ValueError, match=r"state for it has shape \(2, 3\); call reset\(\)"):
        opt.update("w", to_xp(np.ones(4), xp), to_xp(np.ones(4), xp))
    assert opt.state_dict()["step"] == {"w": 1}  # a failed update changes nothing


def test_state_from_another_library_is_an_error(xp):
    opt = Adagrad()
    opt.load_state_dict({"step": {"w": 1}, "sum": {"w": np.ones(2)}}, backend="numpy")
    w = to_xp(np.ones(2), xp)
    if isinstance(w, np.ndarray):
        np.testing.assert_allclose(opt.update("w", w, w), 1 - 0.01 / np.sqrt(2), rtol=1e-12)
    else:
        with pytest.raises(TypeError, match="arrays from different libraries"):
            opt.update("w", w, w)


@pytest.mark.parametrize(
    ("state", "error", "match"),
    [
        ({"step": {}}, ValueError, r"entries \['exp_avg', 'exp_avg_sq', 'step'\] for Adam"),
        (
            {"step": {"w": 0}, "exp_avg": {"w": np.zeros(1)}, "exp_avg_sq": {"w": np.zeros(1)}},
            ValueError,
            r"`state\['step'\]\['w'\]` must be a positive integer, got 0",
        ),
        (
            {"step": {"w": 1}, "exp_avg": {}, "exp_avg_sq": {"w": np.zeros(1)}},
            ValueError,
            r"`state\['exp_avg'\]` must hold one array for each key",
        ),
        (
            {"step": {"w": 1}, "exp_avg": {"w": [0.0]}, "exp_avg_sq": {"w": np.zeros(1)}},
            TypeError,
            r"`state\['exp_avg'\]\['w'\]` must be a floating NumPy array, got list",
        ),
        ([], TypeError, "`state` must be a dict"),
    ],
)
def test_load_state_dict_checks_before_changing_anything(state, error, match):
    opt = Adam()
    opt.load_state_dict(
        {"step": {"b": 2}, "exp_avg": {"b": np.ones(1)}, "exp_avg_sq": {"b": np.ones(1)}},
        backend="numpy",
    )
    with pytest.raises(error, match=match):
        opt.load_state_dict(state, backend="numpy")
    assert opt.state_dict()["step"] == {"b": 2}


@pytest.mark.parametrize(
    ("cls", "options", "match"),
    [
        (SGD, {"learning_rate": -0.1}, "`learning_rate` must be a non-negative number, got -0.1"),
        (SGD, {"momentum": 1.0}, r"`momentum` must be in \[0, 1\), got 1.0"),
        (SGD, {"nesterov": True}, "`nesterov=True` needs `momentum` > 0, got 0.0"),
        (SGD, {"weight_decay": -1}, "`weight_decay` must be a non-negative number, got -1"),
        (Adam, {"b1": 1.0}, r"`b1` must be in \[0, 1\), got 1.0"),
        (Adam, {"b1": -0.1}, r"`b1` must be in \[0, 1\), got -0.1"),
        (Adam, {"b2": 1.5}, r"`b2` must be in \[0, 1\), got 1.5"),
        (Adam, {"eps": 0.0}, "`eps` must be a positive number, got 0.0"),
        (Adam, {"learning_rate": float("nan")}, "`learning_rate` must be a finite number"),
        (AdamW, {"weight_decay": -0.01}, "`weight_decay` must be a non-negative number"),
        (RMSprop, {"rho": 1.0}, r"`rho` must be in \[0, 1\), got 1.0"),
        (Adagrad, {"eps": -1e-10}, "`eps` must be a positive number, got -1e-10"),
        (Adadelta, {"rho": -0.5}, r"`rho` must be in \[0, 1\), got -0.5"),
    ],
)
def test_bad_hyperparameters_are_value_errors(cls, options, match):
    with pytest.raises(ValueError, match=match):
        cls(**options)


@pytest.mark.parametrize(
    ("cls", "options", "match"),
    [
        (SGD, {"learning_rate": "0.1"}, "`learning_rate` must be a real number, got '0.1'"),
        (SGD, {"nesterov": 1, "momentum": 0.9}, "`nesterov` must be True or False, got 1"),
        (Adam, {"b1": True}, "`b1` must be a real number, got True"),
    ],
)
def test_hyperparameters_of_the_wrong_type_are_type_errors(cls, options, match):
    with pytest.raises(TypeError, match=match):
        cls(**options)


def test_defaults_and_config():
    assert Adam().get_config() == {
        "class": "Adam",
        "learning_rate": 0.001,
        "b1": 0.9,
        "b2": 0.999,
        "eps": 1e-8,
    }
    assert AdamW().get_config()["weight_decay"] == 0.01
    assert SGD().get_config() == {
        "class": "SGD",
        "learning_rate": 0.01,
        "momentum": 0.0,
        "nesterov": False,
        "weight_decay": 0.0,
    }
    assert RMSprop().get_config() == {
        "class": "RMSprop",
        "learning_rate": 0.01,
        "rho": 0.9,
        "eps": 1e-8,
    }
    assert Adagrad().get_config() == {"class": "Adagrad", "learning_rate": 0.01, "eps": 1e-10}
    assert Adadelta().get_config() == {
        "class": "Adadelta",
        "learning_rate": 1.0,
        "rho": 0.9,
        "eps": 1e-6,
    }
    # numpy scalars become plain floats, so the config is JSON-able
    config = SGD(learning_rate=np.float32(0.5), momentum=np.float64(0.25)).get_config()
    assert json.loads(json.dumps(config)) == config
    assert repr(Adagrad()) == "Adagrad(learning_rate=0.01, eps=1e-10)"


def test_from_config_checks_the_class():
    with pytest.raises(ValueError, match="describes a Adam, not a SGD"):
        SGD.from_config(Adam().get_config())
    with pytest.raises(ValueError, match="`config` must be a dict from get_config"):
        Optimizer.from_config({"learning_rate": 0.1})


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("sgd", SGD),
        ("SGD", SGD),
        ("stochastic_gradient_descent", SGD),
        ("StochasticGradientDescent", SGD),
        ("adam", Adam),
        ("AdamW", AdamW),
        ("rmsprop", RMSprop),
        ("RMSprop", RMSprop),
        ("adagrad", Adagrad),
        ("adadelta", Adadelta),
    ],
)
def test_get_by_name(name, cls):
    opt = optimizers.get(name, learning_rate=0.5)
    assert type(opt) is cls
    assert opt.learning_rate == 0.5


def test_get_by_class_or_instance():
    assert optimizers.StochasticGradientDescent is SGD  # the ancestor's name
    opt = optimizers.get(optimizers.StochasticGradientDescent, momentum=0.9)
    assert type(opt) is SGD
    assert opt.momentum == 0.9
    assert optimizers.get(opt) is opt
    with pytest.raises(TypeError, match=r"options \['momentum'\] given with an optimizer"):
        optimizers.get(opt, momentum=0.5)
    with pytest.raises(ValueError, match="unknown optimizer 'nadam'; valid names: sgd, adam"):
        optimizers.get("nadam")
    with pytest.raises(TypeError, match="`optimizer` must be a name"):
        optimizers.get(3)
    with pytest.raises(ValueError, match="`b1` must be in"):
        optimizers.get("adam", b1=2)


def test_state_arrays_round_trip(xp):
    optimizer = Adam()
    param = to_xp(np.ones((2, 3)), xp)
    optimizer.update("a", param, to_xp(np.full((2, 3), 0.5), xp))
    optimizer.update("b", param[0, ...], to_xp(np.ones(3), xp))
    arrays = optimizer.state_arrays()
    assert len(arrays) == 4  # exp_avg and exp_avg_sq for two keys
    optimizer.set_state_arrays([a * 2 for a in arrays])
    np.testing.assert_allclose(to_np(optimizer.state_arrays()[0]), 2 * to_np(arrays[0]))
    with pytest.raises(ValueError, match="`arrays` must hold 4 arrays, got 3"):
        optimizer.set_state_arrays(arrays[:3])
