"""The score-matching study can fail: one injected bug per claim family.

Each test patches a plausible bug into numdiff with ``monkeypatch``, runs the
study's cells in this process (no cache, no executor, so the patch is seen)
on its quick configuration and seeds, and checks that the claims of the family
fail while the clean code passes them all. Deterministic given the seeds.
"""

from __future__ import annotations

import numpy as np
import pytest

import numdiff as nd
from numdiff.matching import hutchinson, objectives
from validation.executors import call_cell
from validation.studies import score_matching as sm
from validation.study import CellResult

CONFIG = sm.STUDY.quick


def run_claims(outdir):
    results = [CellResult(c.label, c.config, c.seed, call_cell(c.func, c.config, c.seed)[0])
               for c in sm.STUDY.plan(CONFIG)]
    return sm.STUDY.summarise(results, CONFIG, outdir).claims


def failed(claims):
    return {c.name for c in claims if not c.passed}


def matching_names(claims, text):
    found = {c.name for c in claims if text in c.name}
    assert found, f"no claim matches {text!r}"
    return found


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return run_claims(tmp_path_factory.mktemp("score_matching"))


def test_clean_code_passes_every_claim(clean):
    assert not failed(clean)
    assert len(clean) >= 30
    assert all(c.detectable is not None for c in clean)
    assert {c.kind for c in clean} == {"theorem", "theory-check"}


def test_registered():
    from validation.studies import STUDIES

    assert STUDIES["score_matching"] is sm.STUDY


# -- Theorem 1: a divergence with alpha instead of alpha^2 -------------------------------------


def test_wrong_divergence_fails_theorem1(monkeypatch, tmp_path):
    original = nd.EmpiricalScore.divergence

    def wrong(self, t, x):
        alpha = float(self.schedule.alpha(t))
        sigma2 = float(self.schedule.sigma2(t))
        shift = self.dim / sigma2
        return (original(self, t, x) + shift) / alpha - shift  # alpha^2 -> alpha

    monkeypatch.setattr(nd.EmpiricalScore, "divergence", wrong)
    claims = run_claims(tmp_path)
    bad = failed(claims)
    assert matching_names(claims, "Theorem 1 for s_hat") <= bad
    assert "Hutchinson divergence of s_hat (central differences) - exact divergence = 0" in bad
    # The Gaussian-model and DSM claims do not use it.
    assert not bad & matching_names(claims, "closed form")
    assert not bad & matching_names(claims, "Theorem 2")


# -- Theorem 2 / eq. (10): the DSM target without its 1 / sigma ------------------------------


def test_dsm_target_without_one_over_sigma_fails(monkeypatch, tmp_path):
    monkeypatch.setattr(objectives, "_target", lambda xi, sigma: xi)
    claims = run_claims(tmp_path)
    bad = failed(claims)
    assert matching_names(claims, "Theorem 2: min DSM loss") <= bad
    assert "dsm_loss = closed form, Gaussian data" in bad
    # eq. (10) no longer minimises the (wrong) objective: cross terms and excess losses.
    assert bad & matching_names(claims, "cross term")
    assert bad & matching_names(claims, "= E_p_t |alt - s_hat|^2")
    assert bad & matching_names(claims, "train: L(s_hat) - L(s_true) = ")
    # Claims without the DSM loss are untouched.
    assert not bad & matching_names(claims, "Theorem 1 for s_hat")
    assert not bad & matching_names(claims, "implicit_loss")


# -- Hutchinson: central differences divided by h instead of 2 h ------------------------------


def test_hutchinson_step_bug_fails(monkeypatch, tmp_path):
    def doubled(s_plus, s_minus, probes, h):
        return np.einsum("...md,...md->...m", s_plus - s_minus, probes) / h

    monkeypatch.setattr(hutchinson, "_central_difference", doubled)
    claims = run_claims(tmp_path)
    bad = failed(claims)
    assert "implicit_loss (Hutchinson) = closed form" in bad
    assert "Theorem 1 per sample (explicit - implicit - |grad log p|^2 = 0)" in bad
    assert "Hutchinson divergence of s_hat (central differences) - exact divergence = 0" in bad
    assert "implicit_loss (exact divergence) = closed form" not in bad
    assert "Hutchinson divergence of s_hat (jvp) - exact divergence = 0" not in bad


# -- generalisation: the score evaluated at a shifted time -------------------------------------


def test_score_at_shifted_time_fails_the_generalisation_sizes(monkeypatch, tmp_path):
    original = nd.EmpiricalScore.score

    def shifted(self, t, x):
        return original(self, 1.3 * np.asarray(t), x)  # an off-by-one grid time

    monkeypatch.setattr(nd.EmpiricalScore, "score", shifted)
    claims = run_claims(tmp_path)
    bad = failed(claims)
    assert bad & matching_names(claims, "train: L(s_hat) - L(s_true) = ")
    assert bad & matching_names(claims, "held-out: L(s_hat) - L(s_true) = ")
    assert matching_names(claims, "Theorem 2: min DSM loss") & bad
