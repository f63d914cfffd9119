"""Training: the network a model runs, the training step, the fit loop, data, files.

What `NeuralNetwork` (`xconv.model`) and `xconv.distributed` build on, from the
bottom up:

- `_network`: `Network`, layers and their wiring (a stack or a graph), run forward
  and backward.
- `_protocols`: `StepModel` and `TrainableModel`, what the modules below read and
  call of a model (`NeuralNetwork` is both).
- `_inputs`: data handed to a model, checked and converted to its backend and dtype.
- `_evaluate`: a model's output and scores on arrays of its backend (inference).
- `_resume`, `_files`: a model's ``.npz`` files, checkpoints and the checks that a
  checkpoint belongs to the fit resuming it.
- `_step`: the training step, written once (forward, loss, backward, update), as
  functions of arrays; `TrainingStep` runs it for a model (compiled on JAX).
- `_loop`: `FitLoop`, the epochs of batches that `NeuralNetwork.fit` and
  `xconv.distributed.fit` share, with their callbacks (`xconv.callbacks`, a lower
  part: a callback reaches the model and the files through the loop it is given).

The names below are what the parts above (`xconv.model`, `xconv.distributed`)
import; none is in `xconv.__all__`. `StepModel` and `TrainableModel` are the types of
the models that `xconv.distributed.fit` and `predict` take (a `NeuralNetwork`).
"""

from ._evaluate import evaluate_arrays, forward
from ._files import FORMAT_VERSION, build_layer, load_model, save_model
from ._inputs import (
    as_inputs,
    as_labels,
    check_backend_dtype,
    model_inputs,
    model_labels,
    take_rows,
)
from ._loop import (
    BatchOutcome,
    FitLoop,
    NonFiniteLossError,
    check_training_data,
    data_fingerprint,
    fit_callbacks,
    fit_model,
    score_names,
)
from ._network import Network, as_network, summary_text
from ._protocols import StepModel, TrainableModel
from ._step import (
    StepResult,
    TrainingStep,
    TrainState,
    apply_gradients,
    gradients,
    parameter_key,
    train_step,
)

__all__ = [
    "FORMAT_VERSION",
    "BatchOutcome",
    "FitLoop",
    "Network",
    "NonFiniteLossError",
    "StepModel",
    "StepResult",
    "TrainState",
    "TrainableModel",
    "TrainingStep",
    "apply_gradients",
    "as_inputs",
    "as_labels",
    "as_network",
    "build_layer",
    "check_backend_dtype",
    "check_training_data",
    "data_fingerprint",
    "evaluate_arrays",
    "fit_callbacks",
    "fit_model",
    "forward",
    "gradients",
    "load_model",
    "model_inputs",
    "model_labels",
    "parameter_key",
    "save_model",
    "score_names",
    "summary_text",
    "take_rows",
    "train_step",
]
