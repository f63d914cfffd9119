"""Fast kernels, one module (or small package) per array library, behind `Kernels`.

- `_numpy`: in-place im2col/col2im, buffer reuse, batch chunks on threads with BLAS
  held to one thread, the row-layout convolution, pooling, activations and batch
  normalization in fused passes;
- `_cupy`: im2col/col2im as CUDA kernels;
- `_dask`: im2col/col2im one task per batch chunk;
- `_torch` and `_jax`: the libraries' own convolution, pooling, relu and batch norm
  (``xconv.config.delegate``).

Each is imported by `_dispatch` only when its library's arrays first arrive; none
imports another, a generic op or a layer (tests/test_architecture.py).
"""
