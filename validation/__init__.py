"""Validation studies: numdiff's results against the closed forms of :mod:`theory`.

Run everything and write a report::

    python -m validation [--out DIR] [--quick | --full] [--only NAME] [--workers N | --scheduler ADDRESS]

Each study (:mod:`validation.studies`) splits its work into independent cells,
pure functions of ``(config, seed)`` whose JSON results are cached as they
finish under ``OUT/cells/<study>/``, keyed on the cell and on the code that
computes it (the sources of numdiff, theory and validation, and the versions of
numpy, numba and scipy), so a rerun with the same ``--out`` resumes and a rerun
after a code change recomputes. Its summarising step turns the results into
claims (:class:`validation.claims.Claim`: prediction, measurement, uncertainty,
pass, kind), figures and tables. The report is ``OUT/REPORT.md`` with
``OUT/results.json`` and ``OUT/figures/*.png``. The exit status is 0 when every
claim passes, 1 when one fails, 2 when a study fails with an error (including a
study that makes no claims), 3 when nothing ran (a wrong command line or an
unusable ``--out``).
"""

from .claims import Claim
from .study import Cell, CellResult, Study, Summary

__all__ = ["Cell", "CellResult", "Claim", "Study", "Summary"]
