"""The empirical score of data sharded over a Dask cluster (docs/sharded.md).

:class:`ShardedScore` holds the data in shards on the workers, each with its own
:class:`~numdiff.EmpiricalScore`; a call ships only the queries there and merges the
shards' per-query statistics on the client by the associative log-sum-exp merge of
docs/numerics.md#online-merge. Dask is imported when a model is built, so that
importing numdiff needs no Dask (``pip install 'numdiff[dask]'``).
"""

from numdiff.sharded._model import ShardedScore
from numdiff.sharded._rows import ShardedRows
from numdiff.sharded._traffic import Traffic, traffic

__all__ = ["ShardedRows", "ShardedScore", "Traffic", "traffic"]
