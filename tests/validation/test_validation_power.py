"""The validation can fail: plausible bugs injected into numdiff make its claims fail.

Each test patches one bug into numdiff with ``monkeypatch`` (wrapping the real
step or method, so the patch follows the code it breaks), runs the study that
should notice it in this process -- its cells called directly, with no cache
and no executor, since a cached or remote result would not see the patch --
and checks that the named claims fail, and that they pass without the bug.
The configurations are the studies' quick ones, reduced where stated; the
seeds are the studies' own, so each outcome is deterministic.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import numdiff as nd
import numdiff.engines.limits
from numdiff.solvers.dpmpp_2m import DPMSolverPP2M
from numdiff.solvers.exp_em import ExponentialEM
from numdiff.solvers.heun import Heun
from validation import orders
from validation.executors import call_cell
from validation.studies import early_stopping, exact_reference, memorization, no_early_stopping
from validation.studies import orders as orders_study
from validation.study import CellResult


def run_study(study, config, outdir):
    """All claims of ``study`` under ``config``, computed here (no cache, no workers)."""
    results = [CellResult(c.label, c.config, c.seed, call_cell(c.func, c.config, c.seed)[0])
               for c in study.plan(config)]
    return study.summarise(results, config, outdir).claims


def by_name(claims, text):
    """The claims whose name contains ``text`` (at least one)."""
    found = [c for c in claims if text in c.name]
    assert found, f"no claim matches {text!r}"
    return found


def _exact_reference_config():
    # The quick configuration with 4000 instead of 20000 samples for the moments.
    config = copy.deepcopy(exact_reference.STUDY.quick)
    config["moments"]["n"] = 4000
    return config


@pytest.fixture(scope="module")
def clean_exact_reference(tmp_path_factory):
    return run_study(exact_reference.STUDY, _exact_reference_config(),
                     tmp_path_factory.mktemp("exact_reference"))


def test_exact_reference_passes_on_correct_code(clean_exact_reference):
    failed = [c.name for c in clean_exact_reference if not c.passed]
    assert not failed
    assert all(c.detectable is not None for c in clean_exact_reference)


# -- log_density without its -log N -----------------------------------------------------------


def test_log_density_without_log_n_fails_the_normalisation(monkeypatch, tmp_path):
    original = nd.EmpiricalScore.log_density

    def unnormalised(self, t, x):
        return original(self, t, x) + np.log(self.n_data)  # the -log N dropped

    monkeypatch.setattr(nd.EmpiricalScore, "log_density", unnormalised)
    config = _exact_reference_config()
    res, _ = call_cell(exact_reference.density_cell, config["density"], 1)
    claims = exact_reference._density_claims(res, config)
    # With N = 5 the integral is 5, and the values are off by log 5 = 1.6 nats.
    assert not by_name(claims, "integral of exp(log_density) = 1")[0].passed
    assert not any(c.passed for c in by_name(claims, "log_density = theory.mixture_logpdf"))
    assert by_name(claims, "denoise = theory.mixture_denoise")[0].passed


def test_loose_blas_refinement_fails_the_d40_log_density(monkeypatch):
    # numdiff refines BLAS logits whose rounding estimate exceeds LOGIT_TOL = 1e-12;
    # at 1e-6 the log-density in d = 40 at sigma^2 = 1e-6 is off by thousands of units.
    monkeypatch.setattr(numdiff.engines.limits, "LOGIT_TOL", 1e-6)
    config = _exact_reference_config()
    res, _ = call_cell(exact_reference.density_cell, config["density"], 1)
    claim = by_name(exact_reference._density_claims(res, config), "d=40 samples (condition")[0]
    assert not claim.passed
    assert claim.measured > 100 * claim.predicted


# -- the exponential Euler-Maruyama step with sigma_t where sigma_s belongs ----------------------


def test_exp_em_with_sigma_t_noise_fails_the_exact_transition(monkeypatch, tmp_path,
                                                              clean_exact_reference):
    original = ExponentialEM.step

    def sigma_t_noise(self, model, iv, x, z=None, state=None):
        x_s, state = original(self, model, iv, x, z, state)
        # The step adds sigma_s sqrt(1 - e^{-2h}) z; the bug adds sigma_t times the same.
        return x_s + (iv.sigma_t - iv.sigma_s) * np.sqrt(-np.expm1(-2.0 * iv.dlam)) * z, state

    monkeypatch.setattr(ExponentialEM, "step", sigma_t_noise)
    claims = run_study(exact_reference.STUDY, _exact_reference_config(), tmp_path)
    path = by_name(claims, "exp_em (sde) with N=1 = the exact reverse transitions")[0]
    moments = by_name(claims, "exact p_delta, exp_em (sde), one data point")[0]
    assert not path.passed and path.measured > 1e6  # millions of rounding units
    assert not moments.passed
    clean = {c.name: c.passed for c in clean_exact_reference}
    assert clean[path.name] and clean[moments.name]


@pytest.mark.slow
def test_exp_em_with_sigma_t_noise_passes_the_self_referenced_strong_order(monkeypatch):
    # Why the exact transition is needed: the scheme still converges at order 1 to
    # a law, so comparing it with itself on a finer grid cannot see the bug.
    original = ExponentialEM.step

    def sigma_t_noise(self, model, iv, x, z=None, state=None):
        x_s, state = original(self, model, iv, x, z, state)
        return x_s + (iv.sigma_t - iv.sigma_s) * np.sqrt(-np.expm1(-2.0 * iv.dlam)) * z, state

    monkeypatch.setattr(ExponentialEM, "step", sigma_t_noise)
    assert all(r["passed"] for r in orders.strong_orders(True) if r["solver"] == "exp_em")


# -- stochastic Heun with only the end-point noise ----------------------------------------------


def test_heun_with_end_point_noise_fails_the_weak_variance_order(monkeypatch):
    original = Heun.step

    def end_point_noise(self, model, iv, x, z=None, state=None):
        x_s, state = original(self, model, iv, x, z, state)
        if self.process == "sde":  # corrector noise a_s dW instead of (a_t + a_s) / 2 dW
            x_s = x_s + 0.5 * (np.sqrt(iv.a2_s) - np.sqrt(iv.a2_t)) * np.sqrt(iv.h) * z
        return x_s, state

    clean = [orders_study._claim(r) for r in orders.weak_orders_gaussian(True)]
    monkeypatch.setattr(Heun, "step", end_point_noise)
    broken = [orders_study._claim(r) for r in orders.weak_orders_gaussian(True)]
    for claims, expect in ((clean, True), (broken, False)):
        for schedule in ("VPLinear", "custom"):  # a_t varies; on OU (a constant) it is no bug
            claim = by_name(claims, f"order heun sde {schedule} (weak var)")[0]
            assert claim.passed is expect, claim
    # Measured order about 1 instead of 2.
    assert by_name(broken, "order heun sde VPLinear (weak var)")[0].measured < 1.3


# -- DPM-Solver++(2M) with h / h_prev swapped ---------------------------------------------------


def test_dpmpp_2m_with_swapped_step_ratio_fails_the_recursion(monkeypatch, tmp_path,
                                                             clean_exact_reference):
    original = DPMSolverPP2M.step

    def swapped(self, model, iv, x, z=None, state=None):
        x_s, new_state = original(self, model, iv, x, z, state)
        if state is None:
            return x_s, new_state
        (prev, h_prev), (now, h) = state, new_state
        # The blend weight c = h / (2 h_prev) replaced by h_prev / (2 h).
        dc = 0.5 * (h_prev / h - h / h_prev)
        return x_s - iv.alpha_s * np.expm1(-h) * dc * (now - prev), new_state

    monkeypatch.setattr(DPMSolverPP2M, "step", swapped)
    claims = run_study(exact_reference.STUDY, _exact_reference_config(), tmp_path)
    claim = by_name(claims, "published DPM-Solver++(2M) recursion")[0]
    assert not claim.passed
    assert {c.name: c.passed for c in clean_exact_reference}[claim.name]
    # Why the recursion is needed: the swap stays second order against the exact flow,
    # even on grids whose step ratios alternate 3 and 1/3.
    rows = [r for r in orders.ode_orders_ratio(True) if r["solver"] == "dpmpp_2m"]
    assert rows and all(r["passed"] for r in rows)


def test_dpmpp_2m_ignoring_the_step_ratio_fails_the_ratio_grid_order(monkeypatch):
    original = DPMSolverPP2M.step

    def fixed_weight(self, model, iv, x, z=None, state=None):
        x_s, new_state = original(self, model, iv, x, z, state)
        if state is None:
            return x_s, new_state
        (prev, h_prev), (now, h) = state, new_state
        dc = 0.5 - 0.5 * h / h_prev  # the weight 1/2 of a uniform grid, whatever the ratio
        return x_s - iv.alpha_s * np.expm1(-h) * dc * (now - prev), new_state

    monkeypatch.setattr(DPMSolverPP2M, "step", fixed_weight)
    claims = [orders_study._claim(r) for r in orders.ode_orders_ratio(True)]
    broken = by_name(claims, "order dpmpp_2m ode")
    assert broken and not any(c.passed for c in broken)


# -- a sampler that ends at the wrong noise level -----------------------------------------------


def _inflate_exp_em_noise(monkeypatch, factor):
    original = ExponentialEM.step

    def inflated(self, model, iv, x, z=None, state=None):
        x_s, state = original(self, model, iv, x, z, state)
        return x_s + (factor - 1.0) * iv.sigma_s * np.sqrt(-np.expm1(-2.0 * iv.dlam)) * z, state

    monkeypatch.setattr(ExponentialEM, "step", inflated)


def test_inflated_noise_fails_no_early_stopping_where_the_old_limit_claim_passed(
        monkeypatch, tmp_path):
    config = copy.deepcopy(no_early_stopping.STUDY.quick)
    config["solvers"] = {"sde": "exp_em"}
    clean = run_study(no_early_stopping.STUDY, config, tmp_path)
    assert all(c.passed and c.detectable is not None for c in clean)
    _inflate_exp_em_noise(monkeypatch, 1.5)
    claims = run_study(no_early_stopping.STUDY, config, tmp_path)
    assert not by_name(claims, "nearest distance / sigma_delta = E|Z|")[0].passed
    # Every sample is still memorized at the smallest delta: the former claim
    # "memorized fraction -> 1" (band 0.01) would have passed.
    results = [call_cell(c.func, c.config, c.seed)[0]
               for c in no_early_stopping.STUDY.plan(config)]
    smallest = min(results, key=lambda r: r["sigma"])
    assert smallest["memorized_count"] / config["n"] >= 0.99


def test_inflated_noise_fails_the_memorization_claims(monkeypatch, tmp_path):
    config = copy.deepcopy(memorization.STUDY.quick)
    config["dims"] = [2]
    clean = run_study(memorization.STUDY, config, tmp_path)
    assert all(c.passed and c.detectable is not None for c in clean)
    _inflate_exp_em_noise(monkeypatch, 1.5)
    claims = run_study(memorization.STUDY, config, tmp_path)
    assert not by_name(claims, "memorized fraction = exact p_delta's on the (N, delta)")[0].passed
    assert not by_name(claims, "collapse time of the sampler")[0].passed


# -- the negative control ----------------------------------------------------------------------


def test_negative_control_fails_when_the_control_is_accurate(tmp_path):
    # The control claims a violation; an accurate solver in its place removes the
    # violation, and the control then fails: it is a real test, not a label.
    config = copy.deepcopy(early_stopping.STUDY.quick)
    config["dims"] = [{**config["dims"][0], "n": 5000}]  # d = 1 only, fewer samples
    config["end_to_end"] = []
    claims = run_study(early_stopping.STUDY, config, tmp_path)
    assert all(c.passed and c.detectable is not None for c in claims)
    assert {c.kind for c in claims} == {"theorem", "theory-check", "negative-control"}
    control = by_name(claims, "negative control")[0]
    assert control.kind == "negative-control" and control.passed
    config["control"] = {"solver": "ddim", "grid": "uniform_lambda", "steps": 200}
    claims = run_study(early_stopping.STUDY, config, tmp_path)
    assert not by_name(claims, "negative control")[0].passed
