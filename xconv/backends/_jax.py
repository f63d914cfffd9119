"""JAX arrays: immutable, on the CPU or an accelerator."""

from __future__ import annotations

from typing import Any

import numpy as np

from xconv._typing import Array, Namespace

from ._base import Backend


class JaxBackend(Backend):
    """``jax.Array`` through ``jax.numpy`` (array-API compliant since JAX 0.4.32).

    JAX computes in float32 unless ``jax_enable_x64`` is on; xconv follows whatever
    dtype it is given. Arrays are immutable, so xconv updates them functionally.
    """

    name = "jax"
    module = "jax"
    array_api_name = "jax"
    extra = "jax"

    @property
    def namespace(self) -> Namespace:
        import jax.numpy

        return jax.numpy

    @property
    def default_device(self) -> Any:
        # jax.numpy's inspection API answers None ("let JAX decide"): name the device
        jax = self.library
        return jax.config.jax_default_device or jax.devices()[0]

    def to_numpy(self, x: Array, /) -> np.ndarray:
        return np.asarray(x)

    def synchronize(self, *arrays: Array) -> None:
        # JAX dispatches asynchronously: wait for the arrays we were given.
        for x in arrays:
            x.block_until_ready()
