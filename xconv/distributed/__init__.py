"""Scale-out on Dask: lazy prediction over batch chunks, data-parallel training.

`predict` maps a model over the batch chunks of a Dask array, lazily; `fit` trains a
model on a `dask.distributed` cluster, one shard of every batch per worker. Both send
the model as two parts: a small description of its layers (classes and
constructor arguments) and its parameters as host arrays. Each worker rebuilds the
layers once and loads the parameters into its chunks' library: NumPy, CuPy for
CuPy-backed chunks, or the backend you name.

Data-parallel training without batch normalization or dropout gives the same model
as `NeuralNetwork.fit` with the same seed and batch size, up to rounding: the
gradient of each batch is the size-weighted sum of its shards' mean gradients, which
is the batch's mean gradient. With batch normalization each shard normalises with
its own statistics (as in PyTorch's DistributedDataParallel without SyncBatchNorm)
and the running statistics are the size-weighted mean of the shards'. Dropout masks
are drawn per shard from the seed, the step and the shard.
"""

from ._data_parallel import fit
from ._predict import predict

__all__ = ["fit", "predict"]
