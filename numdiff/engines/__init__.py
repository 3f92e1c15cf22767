"""Engines: one exact softmax average over a finite key set (docs/architecture.md).

Every model in numdiff is an average of values under the weights

    w_k(q) ∝ exp(-|q - a y_k|^2 / (2 s2)),   k = 1..N,

over a finite set of keys ``y_k`` (the data for the empirical score; image patches
for the local scores). An engine answers, for queries ``q (M, d)`` and per-query
``a, s2 (M,)``:

* ``moments``: the log-sum of the weights, the weighted mean of the keys and the
  compensated residual ``a mean - q`` (:class:`~numdiff.engines.results.Moments`);
* ``centred``: the centred second moment's trace and its products with tangents
  (:class:`~numdiff.engines.results.Centred`); ``covariances`` the full matrices;
* ``weights``, ``top_weights`` and ``nearest``.

Engines: dense direct (:mod:`~numdiff.engines.direct`), dense BLAS
(:mod:`~numdiff.engines.blas`), certified pruning (:mod:`numdiff.pruned`), CUDA
(:mod:`numdiff.gpu.engine`) and Dask shards (:mod:`numdiff.sharded`). The
:class:`~numdiff.engines.dispatch.Dispatcher` picks one per call; partial results
of any of them combine by the one merge of :mod:`~numdiff.engines.merge`.
Engines import no model.

This package's ``__init__`` imports nothing, so that :mod:`numdiff._checks` can
read :mod:`~numdiff.engines.limits` without pulling in the kernels.
"""
