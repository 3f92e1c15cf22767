"""numdiff: exact, fast and tested numerics for the memorization effect of diffusion models."""

from numdiff import data, grids, local, matching, metrics, nets, solvers
from numdiff.derivatives import JacobianEigs
from numdiff.neighbors import NeighborIndex, nearest_neighbors
from numdiff.sampling import SampleResult, sample
from numdiff.schedules import OU, VE, Schedule, VPCosine, VPLinear
from numdiff.score import EmpiricalScore

__all__ = [
    "OU",
    "VE",
    "EmpiricalScore",
    "JacobianEigs",
    "NeighborIndex",
    "SampleResult",
    "Schedule",
    "VPCosine",
    "VPLinear",
    "data",
    "grids",
    "local",
    "matching",
    "metrics",
    "nearest_neighbors",
    "nets",
    "sample",
    "solvers",
]
