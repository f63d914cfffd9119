#!/usr/bin/env bash
# xconv on a GPU, in one call of the device tool: at most about 7.5 minutes, as each step
# stops at its own time limit and the next one goes on. From the project root, after
# `bash ../shared/device/prepare.sh` (array-api-compat and -extra wheels into .whl/) and
# `python3 -m pip download --no-deps --only-binary=:all: -d .whl pooch platformdirs`
# (the dataset tests' downloader; the device has no package index):
#   device run: command "bash benchmarks/gpu-check.sh", carry [".whl"], timeout_s 500
# Steps, most valuable first:
#   1. tests/test_gpu.py: the CuPy kernels against the generic code, conv2d on CuPy and
#      on torch CUDA against NumPy, DLPack between them, training on CuPy and on torch
#      CUDA, delegation to cuDNN and to XLA on the GPU             (limit  90 s)
#   2. the whole suite with XCONV_TEST_BACKENDS=cupy,numpy, 8 processes (limit 120 s)
#   3. python -m benchmarks --gpu --out $OUT: conv, train, delegation, conv with TF32
#                                                                     (limit 210 s)
#   4. the digits demo on cupy (NumPy, same seed: 0.9930 on the CPU)  (limit  45 s)
# Everything printed also lands in $OUT/gpu-check.log; pytest's reports in $OUT/*.xml.
set -uo pipefail
export PYTHONUNBUFFERED=1
out="${OUT:-/tmp/xconv-gpu-check}"
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
started=$SECONDS
step() { echo; echo "=== $* (at $((SECONDS - started)) s)"; }

step "install the carried wheels"
# into the interpreter's own site-packages, so that the subprocesses the tests start
# (which set PYTHONPATH themselves) find them too
# (where that is not writable: a folder on PYTHONPATH, and those subprocesses miss them)
if ! python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  .whl/*.whl; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# the image's pytest-benchmark warns under xdist, and the suite makes warnings errors
export PYTEST_ADDOPTS="-p no:benchmark"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 - <<'EOF'
import numpy, cupy, torch, array_api_compat, array_api_extra
print("numpy", numpy.__version__, "cupy", cupy.__version__, "torch", torch.__version__,
      "array-api-compat", array_api_compat.__version__, "array-api-extra", array_api_extra.__version__)
print("cupy devices", cupy.cuda.runtime.getDeviceCount(), "torch cuda", torch.cuda.is_available(),
      "cudnn", torch.backends.cudnn.version())
EOF
python3 -m xconv info

step "1. tests/test_gpu.py on cupy (kernels, conv2d, torch CUDA, DLPack, delegation)"
XCONV_TEST_BACKENDS=cupy,numpy timeout 90 python3 -m pytest -q -p no:cacheprovider -rfEs \
  --junitxml="$out/test_gpu.xml" --durations=5 tests/test_gpu.py 2>&1 | tail -40

step "2. the whole suite on cupy and numpy (8 processes)"
XCONV_TEST_BACKENDS=cupy,numpy timeout 120 python3 -m pytest -q -p no:cacheprovider -rfE \
  -n 8 --junitxml="$out/suite.xml" --maxfail=25 --durations=10 tests xconv 2>&1 | tail -60

step "3. python -m benchmarks --gpu"
timeout 210 python3 -m benchmarks --gpu --out "$out" 2>&1 | tail -90

step "4. digits demo on cupy (python -m xconv demo --backend numpy: test accuracy 0.9930)"
timeout 45 python3 -m xconv demo --backend cupy --quiet 2>&1 | tail -5

step "done"
