"""Run studies: plan their cells, reuse cached ones, execute the rest, summarise.

The cells of all selected studies are submitted together (so a cluster stays
busy across study boundaries); each finished cell is cached at once, and a
study is summarised as soon as its last cell is in.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .cache import CellCache
from .executors import InProcessExecutor
from .progress import Progress
from .study import CellResult, Study, Summary


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

    @property
    def passed(self) -> bool:
        return self.error is None and all(c.passed for c in self.summary.claims)


def run_studies(studies, configs, out, executor=None, progress=None) -> list[StudyOutcome]:
    """Run ``studies`` with ``configs[study.name]``, caching cells under ``out``.

    Parameters
    ----------
    studies : list of Study
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
        In the order of ``studies``. A study whose cell raised carries ``error``
        and no claims; its finished cells stay cached.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    executor = InProcessExecutor() if executor is None else executor
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

    pending = []
    for name, cells in plans.items():
        outcome = outcomes[name]
        for cell in cells:
            if cell.key in results[name]:
                continue  # a duplicate configuration runs once
            outcome.n_cells += 1
            record = caches[name].load(cell.key)
            if record is None:
                results[name][cell.key] = None
                pending.append(cell)
            else:
                results[name][cell.key] = record["result"]
                outcome.n_cached += 1
                progress.cell(name, cell.label, None, "cached")

    def maybe_summarise(name):
        outcome = outcomes[name]
        if outcome.error is None and all(r is not None for r in results[name].values()):
            _summarise(outcome, plans[name], results[name], out, progress)

    # Studies answered entirely from the cache are summarised first.
    for name in plans:
        if all(r is not None for r in results[name].values()):
            maybe_summarise(name)
    for cell, result, elapsed, error in executor.run(pending):
        outcome = outcomes[cell.study]
        if error is not None:
            progress.cell(cell.study, cell.label, elapsed, "FAILED")
            if outcome.error is None:
                outcome.error = f"cell {cell.label!r} raised:\n{error}"
                progress.note(f"{cell.study}: cell {cell.label!r} raised; see the report")
            continue
        caches[cell.study].store(
            cell.key,
            {"study": cell.study, "label": cell.label, "func": cell.func_name,
             "config": cell.config, "seed": cell.seed, "elapsed_s": elapsed, "result": result},
        )
        results[cell.study][cell.key] = result
        outcome.compute_s += elapsed
        progress.cell(cell.study, cell.label, elapsed)
        maybe_summarise(cell.study)
    progress.finish()
    return [outcomes[s.name] for s in studies]


def _summarise(outcome, cells, results, out, progress):
    study = outcome.study
    cell_results = [CellResult(c.label, c.config, c.seed, results[c.key]) for c in cells]
    start = time.perf_counter()
    try:
        summary = study.summarise(cell_results, outcome.config, out)
    except Exception:  # noqa: BLE001 - reported in the study's section
        outcome.error = f"summarise raised:\n{traceback.format_exc()}"
        progress.note(f"{study.name}: summarise raised; see the report")
        return
    if not isinstance(summary, Summary):
        outcome.error = f"summarise returned {type(summary).__name__}, not Summary"
        return
    summary.claims = [dataclasses.replace(c, study=study.name) for c in summary.claims]
    outcome.summary = summary
    outcome.compute_s += time.perf_counter() - start
    n_fail = sum(not c.passed for c in summary.claims)
    progress.note(
        f"{study.name}: {len(summary.claims)} claims, {n_fail} failed"
        f" ({outcome.n_cached}/{outcome.n_cells} cells from cache)"
    )
