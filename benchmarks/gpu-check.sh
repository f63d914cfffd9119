#!/usr/bin/env bash
# xconv on a GPU, in one call of the device tool: at most about 7 minutes, as each step
# stops at its own time limit and the next one goes on. From the project root, after
# `bash ../shared/device/prepare.sh` (array-api-compat and -extra wheels into .whl/):
#   device run: command "bash benchmarks/gpu-check.sh", carry [".whl"], timeout_s 480
# Steps, most valuable first:
#   1. tests/test_gpu.py: the CuPy kernels against the generic code, conv2d on CuPy and
#      on torch CUDA against NumPy, DLPack between them, training   (limit  75 s)
#   2. the digits demo on cupy (NumPy, same seed: 0.9930 on the CPU)  (limit  60 s)
#   3. python -m benchmarks --gpu --out $OUT                           (limit 150 s)
#   4. the whole suite with XCONV_TEST_BACKENDS=cupy,numpy             (limit 120 s)
# Everything printed also lands in $OUT/gpu-check.log; pytest's reports in $OUT/*.xml.
set -uo pipefail
export PYTHONUNBUFFERED=1
out="${OUT:-/tmp/xconv-gpu-check}"
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
started=$SECONDS
step() { echo; echo "=== $* (at $((SECONDS - started)) s)"; }

step "install the carried wheels"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 - <<'EOF'
import numpy, cupy, torch, array_api_compat, array_api_extra
print("numpy", numpy.__version__, "cupy", cupy.__version__, "torch", torch.__version__,
      "array-api-compat", array_api_compat.__version__, "array-api-extra", array_api_extra.__version__)
print("cupy devices", cupy.cuda.runtime.getDeviceCount(), "torch cuda", torch.cuda.is_available(),
      "cudnn", torch.backends.cudnn.version())
EOF
python3 -m xconv info

step "1. tests/test_gpu.py on cupy (kernels, conv2d, torch CUDA, DLPack)"
XCONV_TEST_BACKENDS=cupy,numpy timeout 75 python3 -m pytest -q -p no:cacheprovider -rfEs \
  --junitxml="$out/test_gpu.xml" --durations=5 tests/test_gpu.py 2>&1 | tail -40

step "2. digits demo on cupy (python -m xconv demo --backend numpy: test accuracy 0.9930)"
timeout 60 python3 -m xconv demo --backend cupy --quiet 2>&1 | tail -5

step "3. python -m benchmarks --gpu"
timeout 150 python3 -m benchmarks --gpu --out "$out" 2>&1 | tail -70

step "4. the whole suite on cupy and numpy"
XCONV_TEST_BACKENDS=cupy,numpy timeout 120 python3 -m pytest -q -p no:cacheprovider -rfE \
  --junitxml="$out/suite.xml" --maxfail=25 --durations=10 tests xconv 2>&1 | tail -60

step "done"
