"""numdiff: exact, fast and tested numerics for the memorization effect of diffusion models."""

from numdiff.schedules import OU, VE, Schedule, VPCosine, VPLinear
from numdiff.score import EmpiricalScore

__all__ = ["Schedule", "OU", "VPLinear", "VPCosine", "VE", "EmpiricalScore"]

from numdiff import grids, metrics, solvers
from numdiff.sampling import SampleResult, sample

__all__ += ["sample", "SampleResult", "grids", "metrics", "solvers"]
