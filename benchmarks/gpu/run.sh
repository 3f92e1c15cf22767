#!/usr/bin/env bash
# One run on a GPU machine (no package index needed): install this checkout without
# dependencies, run the GPU tests on the real GPU, then the benchmarks (the empirical
# score, then the equivariant local score at MNIST size).
#   bash benchmarks/gpu/run.sh          # full sizes (about 3 minutes on an H200)
#   bash benchmarks/gpu/run.sh --quick  # every size / 8
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1 NUMBA_ENABLE_CUDASIM=0
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -m pip install -q --no-deps --no-build-isolation -e . || exit 1
$PY - <<'PY'
import importlib
for name in ("numpy", "numba", "numba_cuda", "cupy", "torch", "scipy"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as err:
        print(name, "missing:", err)
PY
status=0
$PY -m pytest -p no:cacheprovider -q tests/numdiff/test_gpu.py tests/numdiff/test_local_gpu.py -o addopts="" \
    --import-mode=importlib -x --durations=5 || status=1
$PY benchmarks/gpu/bench_gpu.py "$@" || status=1
$PY benchmarks/gpu/bench_local_gpu.py "$@" || status=1
exit $status
