"""Run studies: plan their cells, reuse cached ones, execute the rest, summarise.

The cells of all selected studies are submitted together (so a cluster stays
busy across study boundaries); each finished cell is cached at once, and a
study is summarised as soon as its last cell is in.

Nothing is dropped silently: a cached cell without a usable result is
recomputed, a cell that returns ``None`` is an error, a study whose cells never
all came back is an error, and a study that makes no claim is an error.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from . import cache
from .cache import CellCache
from .executors import InProcessExecutor
from .progress import Progress
from .study import CellResult, Study, Summary

#: Placeholder of a cell whose result has not come back yet. Not ``None``: a
#: ``None`` result from a cell or a cache file must never read as "pending".
PENDING = object()


@dataclass
class StudyOutcome:
    """Everything the report needs about one study."""

    study: Study
    config: dict
    summary: Summary = field(default_factory=Summary)
    n_cells: int = 0
    cell_seeds: dict = field(default_factory=dict)
    n_cached: int = 0
    compute_s: float = 0.0
    error: str | None = None
    summarised: bool = False

    @property
    def passed(self) -> bool:
        """No error, at least one claim, and every claim passed."""
        claims = self.summary.claims
        return self.error is None and bool(claims) and all(c.passed for c in claims)

    def fail(self, message: str) -> bool:
        """Record ``message`` as the study's error unless one is already recorded.

        Returns
        -------
        bool
            Whether this was the study's first error.
        """
        if self.error is not None:
            return False
        self.error = message
        return True


def run_studies(studies, configs, out, executor=None, progress=None) -> list[StudyOutcome]:
    """Run ``studies`` with ``configs[study.name]``, caching cells under ``out``.

    Parameters
    ----------
    studies : list of Study
        The studies to run.
    configs : dict
        Study name -> configuration dict.
    out : path-like
        Output folder; cells are cached in ``out/cells/<study>/``.
    executor : optional
        An executor from :mod:`validation.executors`; in-process by default.
    progress : Progress or None, optional
        Progress display; by default one on stderr.

    Returns
    -------
    list of StudyOutcome
        In the order of ``studies``. A study whose cell raised or returned
        nothing, whose summary raised, or that made no claim carries ``error``;
        its finished cells stay cached.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    executor = InProcessExecutor() if executor is None else executor
    code = cache.code_fingerprint()["hash"]
    outcomes, plans, caches, results = {}, {}, {}, {}
    for study in studies:
        if study.name not in configs:
            raise ValueError(f"`configs` has no entry for study {study.name!r}")
        outcomes[study.name] = StudyOutcome(study, configs[study.name])
        plans[study.name] = study.plan(configs[study.name])
        outcomes[study.name].cell_seeds = {c.label: c.seed for c in plans[study.name]}
        caches[study.name] = CellCache(out, study.name)
        results[study.name] = {}
    total = sum(len({c.key for c in cells}) for cells in plans.values())
    progress = Progress(total) if progress is None else progress

    pending = _load_cached(plans, outcomes, caches, results, progress)

    def maybe_summarise(name):
        outcome = outcomes[name]
        if outcome.error is None and all(r is not PENDING for r in results[name].values()):
            _summarise(outcome, plans[name], results[name], out, progress)

    # Studies answered entirely from the cache are summarised first.
    for name in plans:
        maybe_summarise(name)
    for cell, result, elapsed, error in executor.run(pending):
        outcome = outcomes[cell.study]
        if error is None and result is None:
            error = "the cell returned None (no result)"
        if error is not None:
            progress.cell(cell.study, cell.label, elapsed, "FAILED")
            if outcome.fail(f"cell {cell.label!r} failed:\n{error}"):
                progress.note(f"{cell.study}: cell {cell.label!r} failed; see the report")
            continue
        caches[cell.study].store(
            cell.key,
            {"study": cell.study, "label": cell.label, "func": cell.func_name,
             "config": cell.config, "seed": cell.seed, "code": code, "elapsed_s": elapsed,
             "result": result},
        )
        results[cell.study][cell.key] = result
        outcome.compute_s += elapsed
        progress.cell(cell.study, cell.label, elapsed)
        maybe_summarise(cell.study)
    progress.finish()
    for outcome in outcomes.values():
        # An executor that loses a cell must not make its study disappear.
        if not outcome.summarised:
            outcome.fail("the study was not summarised: some of its cells never came back")
    return [outcomes[s.name] for s in studies]


def _load_cached(plans, outcomes, caches, results, progress) -> list:
    """Fill ``results`` from the cache; return the cells that must run."""
    pending = []
    for name, cells in plans.items():
        outcome = outcomes[name]
        for cell in cells:
            if cell.key in results[name]:
                continue  # a duplicate configuration runs once
            outcome.n_cells += 1
            expect = {"func": cell.func_name, "config": cell.config, "seed": cell.seed}
            record = caches[name].load(cell.key, expect=expect)
            if record is None:
                if caches[name].path(cell.key).exists():
                    progress.note(f"{name}: cell {cell.label!r}: unusable cache file, recomputing")
                results[name][cell.key] = PENDING
                pending.append(cell)
            else:
                results[name][cell.key] = record["result"]
                outcome.n_cached += 1
                progress.cell(name, cell.label, None, "cached")
    return pending


def _summarise(outcome, cells, results, out, progress):
    study = outcome.study
    outcome.summarised = True
    cell_results = [CellResult(c.label, c.config, c.seed, results[c.key]) for c in cells]
    start = time.perf_counter()
    try:
        summary = study.summarise(cell_results, outcome.config, out)
    except Exception:  # noqa: BLE001 - reported in the study's section
        outcome.fail(f"summarise raised:\n{traceback.format_exc()}")
        progress.note(f"{study.name}: summarise raised; see the report")
        return
    if not isinstance(summary, Summary):
        outcome.fail(f"summarise returned {type(summary).__name__}, not Summary")
        progress.note(f"{study.name}: {outcome.error}")
        return
    summary.claims = [dataclasses.replace(c, study=study.name) for c in summary.claims]
    outcome.summary = summary
    outcome.compute_s += time.perf_counter() - start
    if not summary.claims:
        # A study that checks nothing must not count as a pass.
        outcome.fail("the study made no claims")
        progress.note(f"{study.name}: made no claims; counted as a failure")
        return
    n_fail = sum(not c.passed for c in summary.claims)
    progress.note(
        f"{study.name}: {len(summary.claims)} claims, {n_fail} failed"
        f" ({outcome.n_cached}/{outcome.n_cells} cells from cache)"
    )
