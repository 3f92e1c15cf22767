"""Closed-form local scores for images, built on the engines (docs/local_scores.md).

LocalScore              LS: each pixel's posterior over its own location's patches
EquivariantLocalScore   ELS: over every training patch, circular query padding
BoundaryAwareELS        ELS whose edge pixels match only patches at their edge offset
PCALocalityScore        per-coordinate masks from the data covariance

PatchSchedule           k(t), calibrated to a reference model or on held-out images

All take training images ``(N, H, W, C)``, a schedule and a patch size ``k`` (or a
schedule ``k(t)``), and follow the score-model protocol on flattened images.
"""

from numdiff.local.calibration import PatchSchedule, calibrate_held_out, calibrate_to_reference
from numdiff.local.els import BoundaryAwareELS, EquivariantLocalScore
from numdiff.local.masked import LocalScore, PCALocalityScore

__all__ = [
    "BoundaryAwareELS",
    "EquivariantLocalScore",
    "LocalScore",
    "PCALocalityScore",
    "PatchSchedule",
    "calibrate_held_out",
    "calibrate_to_reference",
]
