"""The denoiser-geometry study: its quick configuration passes, and each claim family can fail.

Like tests/validation/test_validation_power.py, each bug is patched in with
``monkeypatch`` and the study's cells are called in this process (no cache, no
executor, which would not see the patch). The bug tests use the quick
configuration without the digits (Gaussian data only, about a second); the
seeds are the study's own, so each outcome is deterministic.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import numdiff as nd
from validation.executors import call_cell
from validation.studies import STUDIES, denoiser_geometry, denoiser_measures
from validation.studies.memorization import load_digits_data
from validation.study import CellResult

STUDY = denoiser_geometry.STUDY


def run_study(config, outdir):
    results = [CellResult(c.label, c.config, c.seed, call_cell(c.func, c.config, c.seed)[0])
               for c in STUDY.plan(config)]
    return STUDY.summarise(results, config, outdir)


def by_name(claims, text):
    found = [c for c in claims if text in c.name]
    assert found, f"no claim matches {text!r}"
    return found


def gaussian_only():
    config = copy.deepcopy(STUDY.quick)
    config["digits_n"] = 0
    return config


IDENTITY_EMPIRICAL = "empirical denoiser under the empirical law"
IDENTITY_WIENER = "Wiener denoiser under its Gaussian prior"
CONTROL = "negative control"
JACOBIAN = "numdiff grad D = dense weighted covariance"


def test_registered():
    assert STUDIES["denoiser_geometry"] is STUDY


@pytest.fixture(scope="module")
def quick_summary(tmp_path_factory):
    return run_study(copy.deepcopy(STUDY.quick), tmp_path_factory.mktemp("geometry"))


def test_quick_configuration_passes(quick_summary):
    claims = quick_summary.claims
    assert not [c.name for c in claims if not c.passed]
    families = 2 if load_digits_data() is not None else 1
    assert len(claims) == 4 * families
    for text in (IDENTITY_EMPIRICAL, IDENTITY_WIENER, CONTROL, JACOBIAN):
        assert len(by_name(claims, text)) == families
    kinds = {c.kind for c in claims}
    assert kinds == {"theorem", "theory-check", "negative-control"}
    assert all(p.exists() for p in quick_summary.figures)
    assert len(quick_summary.figures) == 1 + 2 * (families == 2)
    assert any("Trace rank" in t for t in quick_summary.tables)


def test_collapse_crossing():
    # ratio 0.2 at t = 1, 0.8 at t = 4: the half is at log t = log 1 + (0.3 / 0.6) log 4.
    t, se = denoiser_geometry.collapse_crossing([4.0, 1.0], [0.8, 0.2], [0.0, 0.0])
    assert t == pytest.approx(2.0) and se == 0.0
    assert np.isnan(denoiser_geometry.collapse_crossing([1.0, 4.0], [0.6, 0.8], [0.1, 0.1])[0])


def test_carriers():
    assert denoiser_measures.carriers(np.array([10.0, 0.0, 0.0, 0.0])) == 1
    assert denoiser_measures.carriers(np.ones(100)) == 50
    assert denoiser_measures.carriers(np.zeros(5)) == 0


# -- injected bugs ---------------------------------------------------------------------------------


def test_identity_without_the_alpha_factor_fails(monkeypatch, tmp_path):
    # The right-hand side sigma2 tr grad D instead of (sigma2 / alpha) tr grad D.
    def bug(x0, denoised, trace, alpha, sigma2):
        err = np.sum((x0 - denoised) ** 2, axis=1)
        return err, sigma2 * trace

    monkeypatch.setattr(denoiser_measures, "identity_terms", bug)
    claims = run_study(gaussian_only(), tmp_path).claims
    for text in (IDENTITY_EMPIRICAL, IDENTITY_WIENER):
        assert not any(c.passed for c in by_name(claims, text)), text


def test_divergence_with_a_wrong_alpha_power_fails(monkeypatch, tmp_path):
    # numdiff's divergence with (alpha / sigma2^2) tr Cov_w instead of alpha^2 / sigma2^2.
    real = nd.EmpiricalScore.divergence

    def bug(self, t, x):
        alpha, sigma2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        return (real(self, t, x) + self.dim / sigma2) / alpha - self.dim / sigma2

    monkeypatch.setattr(nd.EmpiricalScore, "divergence", bug)
    claims = run_study(gaussian_only(), tmp_path).claims
    assert not any(c.passed for c in by_name(claims, IDENTITY_EMPIRICAL))
    assert all(c.passed for c in by_name(claims, IDENTITY_WIENER))  # no numdiff there


def test_jacobian_without_the_alpha_factor_fails(monkeypatch, tmp_path):
    # numdiff's grad D = Cov_w / sigma2 instead of (alpha / sigma2) Cov_w.
    real = nd.EmpiricalScore.jacobian

    def bug(self, t, x, of="denoiser"):
        return real(self, t, x, of) / float(self.schedule.alpha(t))

    monkeypatch.setattr(nd.EmpiricalScore, "jacobian", bug)
    claims = run_study(gaussian_only(), tmp_path).claims
    assert not any(c.passed for c in by_name(claims, JACOBIAN))


def test_control_fails_when_held_out_points_leak_from_the_training_set(monkeypatch, tmp_path):
    # "Held-out" x0 drawn from the training set: the empirical denoiser is optimal
    # there, the identity holds, and the control no longer sees a violation.
    def leak(data, n, rng):
        return data["train"][rng.integers(len(data["train"]), size=n)]

    monkeypatch.setattr(denoiser_geometry, "held_out_draws", leak)
    claims = run_study(gaussian_only(), tmp_path).claims
    (control,) = by_name(claims, CONTROL)
    assert not control.passed
    assert abs(control.measured) < 4.5


def test_control_still_violates_under_another_prior(monkeypatch, tmp_path):
    # Any law other than the training set will do: x0 ~ N(0, 4 I) instead of N(0, I).
    monkeypatch.setattr(denoiser_geometry, "held_out_draws",
                        lambda data, n, rng: 2.0 * rng.standard_normal(
                            (n, data["train"].shape[1])))
    claims = run_study(gaussian_only(), tmp_path).claims
    (control,) = by_name(claims, CONTROL)
    assert control.passed and control.measured > 4.5
