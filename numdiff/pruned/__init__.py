"""Certified pruning of the empirical score at small noise (docs/numerics.md#pruning).

When ``sigma_t^2`` is small next to the spacing of the data, all but a few data
points weigh less than ``2^-60`` of the largest. A kd-tree partition of the data
into leaves with tight boxes (:mod:`numdiff.pruned.index`) gives, per query, an
upper bound on every leaf's weights (:mod:`numdiff.pruned.bounds`); leaves are
skipped, smallest bound first, only while the bound on their total stays below
``2^-60`` of the kept sum, and the dense kernel's merge runs over the kept leaves
(:mod:`numdiff.pruned.moments`). The same plan serves ``top_weights`` and an exact
k-nearest-neighbour search.

:class:`~numdiff.EmpiricalScore` uses it by itself (its dispatcher offers every
call to this engine first): ``f.pruning = "auto"``
(the default) prunes the queries whose bound scan keeps few points, ``"off"``
runs the dense path only, ``"always"`` prunes every query the bound certifies
(for tests). The index is built on first use and kept on the model's key set.
"""

from numdiff.pruned.bounds import SKIP_MASS
from numdiff.pruned.dispatch import MODES, index_of, kept_points, moments, nearest, top_weights
from numdiff.pruned.index import LeafIndex, build_index

__all__ = [
    "MODES",
    "SKIP_MASS",
    "LeafIndex",
    "build_index",
    "index_of",
    "kept_points",
    "moments",
    "nearest",
    "top_weights",
]
