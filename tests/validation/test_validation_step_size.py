"""The step-size memorisation study: claims pass on clean code, injected bugs fail them,
the conjecture is a finding, and the report carries findings apart from claims.

The quick configuration runs in this process (no cache, so patches are seen),
with the study's own seeds: deterministic. Bug tests rerun only the cells their
claim family needs.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import numdiff as nd
from numdiff import nets
from numdiff.nets import curvature
from numdiff.solvers import exp_em
from validation.claims import Finding
from validation.executors import call_cell
from validation.report import write_report
from validation.runner import StudyOutcome
from validation.studies import step_size_memorization as ssm
from validation.studies import step_size_models
from validation.study import CellResult

CONFIG = ssm.STUDY.quick


def run(keep=lambda cell: True):
    cells = [c for c in ssm.STUDY.plan(CONFIG) if keep(c)]
    return [CellResult(c.label, c.config, c.seed, call_cell(c.func, c.config, c.seed)[0])
            for c in cells]


def references_only(cell):
    return "eta" not in cell.config


def one_size(cell):
    return cell.config["n_data"] == CONFIG["n_data"][0]


def failed(claims):
    return {c.name for c in claims if not c.passed}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    return ssm.STUDY.summarise(run(), CONFIG, tmp_path_factory.mktemp("step_size"))


def test_clean_code_passes_every_claim(clean):
    summary = clean
    assert not failed(summary.claims)
    assert len(summary.claims) == 7
    assert all(c.detectable is not None and c.detectable > 0 for c in summary.claims)
    assert all(p.exists() for p in summary.figures)
    assert any("Wilson" in t for t in summary.tables)


def test_the_conjecture_is_a_finding_with_an_interval(clean):
    summary = clean
    findings = summary.findings
    assert len(findings) == 2 * (len(CONFIG["n_data"]) + 1)
    assert all(isinstance(f, Finding) and f.predicted_sign == -1 for f in findings)
    assert all(f.low <= f.estimate <= f.high for f in findings)
    assert not [c for c in summary.claims if "log10 eta" in c.name]


def test_report_lists_findings_apart_from_claims(clean, tmp_path):
    summary = clean
    outcome = StudyOutcome(ssm.STUDY, CONFIG, summary=summary, n_cells=1)
    report, results = write_report(tmp_path, [outcome], {"quick": True})
    data = json.loads(results.read_text())
    assert len(data["findings"]) == len(summary.findings)
    assert {f["study"] for f in data["findings"]} == {ssm.STUDY.name}
    assert all(f["direction"] in ("down", "up", "undecided") for f in data["findings"])
    assert data["passed"] is True
    text = report.read_text()
    assert "## Findings" in text and "Findings (not pass/fail)" in text
    back = Finding.from_dict(data["findings"][0])
    assert back == dataclasses.replace(summary.findings[0], study=ssm.STUDY.name)


def test_registered():
    from validation.studies import STUDIES

    assert STUDIES["step_size_memorization"] is ssm.STUDY


def test_grid_model_refuses_times_off_its_grid():
    schedule = nd.OU()
    times = np.array([1.0, 0.5, 0.1])
    model = step_size_models.GridScoreModel(schedule, times,
                                            [step_size_models.ConstantNoise(0.0)] * 3)
    assert model.denoise(0.5, np.zeros((2, 1))).shape == (2, 1)
    with pytest.raises(ValueError, match="not a time of the model's grid"):
        model.denoise(0.3, np.zeros((2, 1)))


def test_denoiser_with_sigma_squared_fails_both_wrapper_claims(monkeypatch):
    """The wrapper's denoiser with sigma^2 where sigma belongs."""
    def wrong(self, t, x):
        i = self.index(t)
        sigma2 = float(self.schedule.sigma2(t))
        return (x - sigma2 * self.eps[i](x[:, 0])[:, None]) / float(self.schedule.alpha(t))

    monkeypatch.setattr(ssm.GridScoreModel, "denoise", wrong)
    results = run(lambda c: references_only(c) or (one_size(c) and c.config["eta"] == 0.3))
    references, models = ssm._collect(results)
    claims = ssm._reference_claims(references, CONFIG["refine"]) + [ssm._wrapper_claim(models)]
    bad = failed(claims)
    assert bad == {
        "GridScoreModel with the exact noise prediction = nd.sample with EmpiricalScore, max |dx|",
        "learned model: error of its denoiser in eps units = its nets' fit errors, max difference",
    }


def test_sampler_noise_too_large_fails_the_offset_claim(monkeypatch):
    """exp_em with 1.5 times its noise: the exact score no longer reproduces p_delta.

    The memorised fraction is near 1 at this delta and does not see it; the
    squared offset to the nearest training point does.
    """
    right = exp_em.ExponentialEM.step

    def noisy(self, model, iv, x, z=None, state=None):
        return right(self, model, iv, x, 1.5 * z, state)

    monkeypatch.setattr(exp_em.ExponentialEM, "step", noisy)
    references, _ = ssm._collect(run(references_only))
    bad = failed(ssm._reference_claims(references, CONFIG["refine"]))
    assert bad == {("exact score, sampler's grid refined 4x: mean (nearest distance / "
                    "sigma_delta)^2 = exact p_delta's, max |z|")}


def test_step_halved_in_the_training_loop_fails_the_nets_stability_claim(monkeypatch):
    """Gradient descent that takes eta / 2 (a gradient off by 1/2) while eta is reported.

    (A Hessian doubled everywhere is not seen here: it only makes the stable and
    warm starts smaller, and no converged net then reaches the edge; the
    stable-minima study catches that one.)
    """
    right = nets.train_gd
    monkeypatch.setattr(nets, "train_gd",
                        lambda x, y, params, eta, **options: right(x, y, params, eta / 2.0,
                                                                   **options))
    _, models = ssm._collect(run(one_size))
    assert "score nets, converged: lambda_max eta / 2 <= 1, max" in failed(ssm._net_claims(models))


def test_hessian_halved_fails_the_flatness_claim(monkeypatch):
    right = curvature._Pieces.product
    monkeypatch.setattr(curvature._Pieces, "product",
                        lambda self, v, part: 0.5 * right(self, v, part))
    _, models = ssm._collect(run(one_size))
    assert ("score nets, every final iterate: weighted TV / flatness bound <= 1, max"
            in failed(ssm._net_claims(models)))


def test_tv_without_the_weight_fails_the_flatness_claim(monkeypatch):
    from numdiff.nets import function_space

    monkeypatch.setattr(function_space, "weight_function",
                        lambda x, at, side="min": np.ones(np.shape(at)))
    _, models = ssm._collect(run(one_size))
    assert ("score nets, every final iterate: weighted TV / flatness bound <= 1, max"
            in failed(ssm._net_claims(models)))
