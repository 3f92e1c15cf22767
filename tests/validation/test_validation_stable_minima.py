"""The stable-minima study passes on clean code and fails on injected bugs.

The quick configuration runs in this process (no cache, so patches are seen),
with the study's own seeds: deterministic. Each bug test reruns only the cells
of one problem, which is enough for the claim family it targets.
"""

from __future__ import annotations

import numpy as np
import pytest

from numdiff import nets
from numdiff.nets import curvature, function_space
from validation.claims import DIRECTIONS, Finding
from validation.executors import call_cell
from validation.studies import stable_minima as sm
from validation.study import CellResult

CONFIG = sm.STUDY.quick
PROBLEM = "kink, noise 0.05"


def run(problem=None):
    cells = [c for c in sm.STUDY.plan(CONFIG) if problem is None or c.config["problem"] == problem]
    return [CellResult(c.label, c.config, c.seed, call_cell(c.func, c.config, c.seed)[0])
            for c in cells]


def problem_claims(problem=PROBLEM):
    groups = sm._by_problem(run(problem))
    return sm._stability_claims(groups) + [sm._flatness_claim(problem, groups[problem])]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("stable_minima")
    results = run()
    return results, sm.STUDY.summarise(results, CONFIG, out)


def test_clean_code_passes_every_claim(clean):
    _, summary = clean
    assert not [c.name for c in summary.claims if not c.passed]
    assert len(summary.claims) == 2 + len(CONFIG["problems"])
    assert all(c.detectable is not None and c.detectable > 0 for c in summary.claims)
    assert all(p.exists() for p in summary.figures)
    # The bound is not vacuous: somewhere TV reaches a third of it.
    assert max(c.measured for c in summary.claims if "every final iterate" in c.name) > 0.3


def test_every_run_is_classed_and_none_is_dropped(clean):
    results, _ = clean
    for r in results:
        assert len(r.result["runs"]) == CONFIG["seeds"]
        assert {run["class"] for run in r.result["runs"]} <= set(sm.CLASSES)
    converged = [run for r in results for run in r.result["runs"] if run["class"] == "converged"]
    assert converged and all("tight_sharpness" in run for run in converged)


def test_trends_are_findings_not_claims(clean):
    _, summary = clean
    assert len(summary.findings) == 2 * len(CONFIG["problems"])
    for f in summary.findings:
        assert isinstance(f, Finding) and f.direction in DIRECTIONS
        assert not hasattr(f, "passed")
    assert not [c for c in summary.claims if "Kendall" in c.name]


def test_stratified_kendall_pairs_only_within_a_stratum():
    rising = [([1, 2, 3], [1, 2, 3]), ([1, 2, 3], [10, 20, 30])]
    tau, low, high = sm.stratified_kendall(rising)
    assert tau == high == 1.0 and -1.0 < low < 1.0  # clipped to tau's range
    # Across strata the levels fall, within each they rise: tau stays 1.
    assert sm.stratified_kendall([([1, 2], [5, 6]), ([3, 4], [1, 2])])[0] == 1.0
    assert sm.stratified_kendall([([1, 2, 3], [3, 2, 1])])[0] == -1.0


def test_registered():
    from validation.studies import STUDIES

    assert STUDIES["stable_minima"] is sm.STUDY


def test_target_weighted_tv_of_the_kink_is_its_point_mass():
    x = np.linspace(-1.0, 1.0, 41)
    tv = sm.target_weighted_tv("kink", 4.0, 1.0, x)
    assert tv == pytest.approx(8.0 * float(nets.weight_function(x, 0.0)))


def test_hessian_doubled_fails_linear_stability(monkeypatch):
    """Hessian-vector products off by a factor 2 (so lambda_max is doubled)."""
    right = curvature._Pieces.product
    monkeypatch.setattr(curvature._Pieces, "product", lambda self, v, part: 2.0 * right(self, v, part))
    bad = {c.name for c in problem_claims() if not c.passed}
    assert "converged runs: lambda_max eta / 2 <= 1 (linear stability), max" in bad


def test_tv_without_the_weight_fails_both_bounds(monkeypatch):
    """The total variation of f' without the data weight g."""
    monkeypatch.setattr(function_space, "weight_function",
                        lambda x, at, side="min": np.ones(np.shape(at)))
    bad = {c.name for c in problem_claims() if not c.passed}
    assert f"every final iterate: weighted TV / (lambda_max/2 - 1/2 + (R+1) sqrt(2L)) <= 1, max " \
           f"({PROBLEM})" in bad
    assert "converged runs: weighted TV / (1/eta - 1/2 + (R+1) sqrt(2L)) <= 1, max" in bad


def test_step_halved_in_the_training_loop_fails_linear_stability(monkeypatch):
    """Gradient descent that takes eta / 2 (a gradient off by 1/2) while eta is reported."""
    right = nets.train_gd

    def halved(x, y, params, eta, **options):
        return right(x, y, params, eta / 2.0, **options)

    monkeypatch.setattr(nets, "train_gd", halved)
    bad = {c.name for c in problem_claims() if not c.passed}
    assert "converged runs: lambda_max eta / 2 <= 1 (linear stability), max" in bad
