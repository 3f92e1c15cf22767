"""Noise schedules of the linear forward SDE ``dX = -b_t X dt + a_t dW``.

:class:`Schedule` (:mod:`~numdiff.schedules.base`) computes ``alpha_t``,
``sigma2_t`` and ``lam_t = log(alpha_t / sigma_t)`` by spectral quadrature for any
smooth ``b_t``, ``a_t``; the presets (:mod:`~numdiff.schedules.presets`) in closed
form. The public names live here.
"""

from numdiff.schedules.base import Schedule
from numdiff.schedules.presets import OU, VE, VPCosine, VPLinear

__all__ = ["OU", "VE", "Schedule", "VPCosine", "VPLinear"]

# Public under the name users import them by (repr, docs, pickles).
for _cls in (OU, VE, Schedule, VPCosine, VPLinear):
    _cls.__module__ = __name__
del _cls
