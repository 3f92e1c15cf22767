"""The audit study passes on clean code and fails on injected bugs.

The quick configuration runs in this process (no cache, so patches are seen),
with the study's own seeds: deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest

from numdiff.audit import search, statistics
from validation.executors import call_cell
from validation.studies import audit as au
from validation.study import CellResult

CONFIG = au.STUDY.quick


def run(outdir, labels=None):
    cells = [c for c in au.STUDY.plan(CONFIG) if labels is None or c.label in labels]
    return [CellResult(c.label, c.config, c.seed, call_cell(c.func, c.config, c.seed)[0])
            for c in cells]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    return au.STUDY.summarise(run(out), CONFIG, out)


def test_clean_code_passes_every_claim(clean):
    failed = [c.name for c in clean.claims if not c.passed]
    assert not failed
    assert len(clean.claims) >= 14
    assert all(c.detectable is not None for c in clean.claims)
    assert all(p.exists() for p in clean.figures)
    assert any("Wilson" in t for t in clean.tables)


def test_registered():
    from validation.studies import STUDIES

    assert STUDIES["audit"] is au.STUDY
    assert list(STUDIES)[-1] == "audit"


def test_flipped_mann_whitney_sign_fails_the_direction_claims(monkeypatch, tmp_path):
    """A Z_U with its sign flipped (U of the held-out set instead of the generated one)."""
    right = statistics.z_u
    monkeypatch.setattr(statistics, "z_u", lambda g, h: -right(g, h))
    results = {r.label: r.result for r in run(tmp_path, {"copying f=0.3", "over-dispersed"})}
    copy_claims = au._recovery_claims(results["copying f=0.3"], 0.3)
    assert [c.passed for c in copy_claims] == [True, False]  # the fraction is still right
    assert results["over-dispersed"]["c_t_z"] < -4.5


def test_nearest_and_second_swapped_fails_recovery_and_curve(monkeypatch, tmp_path):
    """A search returning its neighbours in the wrong order (ratio = second / nearest)."""
    right = search.TrainIndex._chunk

    def swapped(self, x, k):
        idx, dist = right(self, x, k)
        return idx[:, ::-1].copy(), dist[:, ::-1].copy()

    monkeypatch.setattr(search.TrainIndex, "_chunk", swapped)
    results = {r.label: r.result for r in run(tmp_path, {"copying f=0.3", "sampler curve"})}
    assert not au._recovery_claims(results["copying f=0.3"], 0.3)[0].passed
    curve = au._curve_claims(results["sampler curve"], CONFIG["curve"])
    assert not {c.name for c in curve if not c.passed}.isdisjoint(
        {"audit's memorised count = independent k-d tree count, max over delta"})



def test_near_copy_rule_without_the_distance_quantile_fails_the_near_claim(monkeypatch, tmp_path):
    """Near copies defined by the ratio test alone: interpolations go unseen."""
    import numdiff.audit as audit_module

    def ratio_only(memorized, d1, near_distance, verbatim_distance):
        verbatim = memorized & (d1 <= verbatim_distance)
        return np.where(verbatim, 2, np.where(memorized & ~verbatim, 1, 0))

    monkeypatch.setattr(audit_module, "classify", ratio_only)
    result = run(tmp_path, {"near copies"})[0].result
    passed = [c.passed for c in au._near_claims(result, CONFIG["near"])]
    assert passed == [False, False]
