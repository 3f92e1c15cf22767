"""Validation studies: numdiff's results against the closed forms of :mod:`theory`.

Run everything and write a report::

    python -m validation [--out DIR] [--quick] [--only NAME] [--workers N | --scheduler ADDRESS]

Each study (:mod:`validation.studies`) splits its work into independent cells,
pure functions of ``(config, seed)`` whose JSON results are cached as they
finish under ``OUT/cells/<study>/``, so a rerun with the same ``--out`` resumes;
its summarising step turns them into claims (:class:`validation.claims.Claim`:
prediction, measurement, uncertainty, pass), figures and tables. The report is
``OUT/REPORT.md`` with ``OUT/results.json`` and ``OUT/figures/*.png``; the exit
status is 0 when every claim passes, 1 when one fails, 2 when a study raised.
"""

from .claims import Claim
from .study import Cell, CellResult, Study, Summary

__all__ = ["Cell", "CellResult", "Claim", "Study", "Summary"]
