"""Training reaches a model through typed, public members only.

`xconv.training` declares what it reads of a model (`StepModel`, `TrainableModel`);
these checks keep any function from taking an untyped model again, and any module but
the model's own from reaching for its private members.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from xconv import NeuralNetwork, training
from xconv.layers import Dense

PACKAGE = Path(__file__).resolve().parents[1] / "xconv"

#: parameters that hold a model, its network or the loop running it
NAMES = {"model", "network", "loop"}


def _trees() -> list[tuple[str, ast.AST]]:
    return [
        (str(path.relative_to(PACKAGE.parent)), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def _is_any(annotation: ast.expr | None) -> bool:
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        annotation = ast.parse(annotation.value, mode="eval").body
    return (isinstance(annotation, ast.Name) and annotation.id == "Any") or (
        isinstance(annotation, ast.Attribute) and annotation.attr == "Any"
    )


def test_no_function_takes_an_untyped_model():
    untyped = [
        f"{path}:{node.lineno} {node.name}({arg.arg}: Any)"
        for path, tree in _trees()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
        if arg.arg in NAMES and (arg.annotation is None or _is_any(arg.annotation))
    ]
    assert not untyped, "type these with xconv.training's protocols:\n" + "\n".join(untyped)


def _holds_a_model(node: ast.expr) -> bool:
    # `model`, or an attribute called so (`self.model`, `loop.model`)
    return (isinstance(node, ast.Name) and node.id == "model") or (
        isinstance(node, ast.Attribute) and node.attr == "model"
    )


def test_only_the_model_reads_its_private_members():
    private = [
        f"{path}:{node.lineno} .{node.attr}"
        for path, tree in _trees()
        if path != "xconv/model.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and _holds_a_model(node.value)
    ]
    assert not private, "a model's private members, read from outside:\n" + "\n".join(private)


def test_the_checks_catch_what_they_should():
    tree = ast.parse("def f(model: Any, network: 'typing.Any', loop): return model._take")
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    assert [_is_any(arg.annotation) for arg in function.args.args] == [True, True, False]
    attribute = next(
        n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "_take"
    )
    assert _holds_a_model(attribute.value)


def test_the_model_functions_do_what_the_model_did(backend):
    # NeuralNetwork's own inputs, labels, rows and scores are these functions'
    model = NeuralNetwork("sgd", "cross_entropy", seed=0, dtype="float64", backend=backend)
    model.add(Dense(3, input_shape=(2,)))
    X = training.model_inputs(model, [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    y = training.model_labels(model, np.array([0, 2, 1]), 3)
    np.testing.assert_array_equal(backend.to_numpy(y), np.eye(3)[[0, 2, 1]])
    rows = training.take_rows(model.backend, X, np.array([2, 0]))
    np.testing.assert_array_equal(backend.to_numpy(rows), [[4.0, 5.0], [0.0, 1.0]])
    np.testing.assert_array_equal(
        backend.to_numpy(training.forward(model, X, training=False)),
        backend.to_numpy(model.predict(X)),
    )
    logs = training.evaluate_arrays(model, X, y, 2, model.metrics)
    assert logs == model.evaluate(X, np.array([0, 2, 1]), batch_size=2, return_dict=True)
