"""Shared test configuration.

Hypothesis profiles carry ``deadline=None`` because the first call of a jitted
kernel compiles it, which can take seconds. ``HYPOTHESIS_PROFILE=ci`` runs more
examples; the default keeps the quick suite quick.
"""

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# The GPU backend's kernels run in Numba's CUDA simulator unless a run asks for the
# GPU (benchmarks/gpu/run.sh sets NUMBA_ENABLE_CUDASIM=0). Read when Numba is first
# imported, hence here; it changes nothing for the CPU kernels.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

settings.register_profile(
    "default",
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Shared test helpers (tests/numdiff/exact_mixture.py) are imported by name:
# --import-mode=importlib puts no test folder on sys.path by itself.
sys.path.insert(0, str(Path(__file__).parent / "numdiff"))
