"""The generalisation study: it runs on a tiny configuration with every claim passing,
its figures read cleanly, and its theorem claims fail under injected bugs of the local
scores (query padding, centre index, noise scale, LS value pixel).

Cells run in this process (no cache, so the patches are seen), with the study's own
seeds: deterministic. Bug tests rerun only the cells their claims need.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

from numdiff.local import els, masked
from validation.executors import call_cell
from validation.studies import generalisation as gen
from validation.studies import generalisation_report as rep
from validation.studies.generalisation_speciation import transition as speciation_transition
from validation.study import CellResult

CONFIG = copy.deepcopy(gen.STUDY.quick)
CONFIG["identities"].update(n=8, queries=2, times=[0.02, 0.5])
CONFIG["law"].update(n=12, samples=60, steps=8)
CONFIG["datasets"][0].update(sizes=[2, 10], pairs=6, steps=6, n_calibration=3,
                             n_calibration_images=4)
CONFIG["speciation"][0].update(n_train=20, trajectories=12, sde_steps=10, steps=6,
                            n_calibration=3, n_calibration_images=4)


def run(keep=lambda cell: True):
    cells = [c for c in gen.STUDY.plan(CONFIG) if keep(c)]
    return [CellResult(c.label, c.config, c.seed, call_cell(c.func, c.config, c.seed)[0])
            for c in cells]


def failed(claims):
    return {c.name for c in claims if not c.passed}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = gen.STUDY.summarise(run(), CONFIG, tmp_path_factory.mktemp("gen"))
    return summary, [str(w.message) for w in caught if "figure" in str(w.message)]


def identity_claims():
    res = run(lambda c: c.label == "identities")[0].result
    return gen.identity_claims(res, CONFIG["identities"])


def law_claims():
    res = run(lambda c: c.label == "LS law")[0].result
    return gen.law_claims(res, CONFIG["law"])


def test_the_study_is_registered():
    from validation.studies import STUDIES

    assert STUDIES["generalisation"] is gen.STUDY


def test_clean_code_passes_every_claim_and_reports_findings(clean):
    summary, figure_warnings = clean
    assert not failed(summary.claims)
    assert len(summary.claims) == len(gen.IDENTITIES) + 2
    assert all(c.detectable is not None and c.detectable > 0 for c in summary.claims)
    # One transition finding per model (two N or more) and one speciation finding per model.
    assert len(summary.findings) == len(gen.MODELS) + len(CONFIG["speciation"][0]["models"])
    assert all(f.low <= f.high for f in summary.findings)
    assert all(p.exists() for p in summary.figures)
    assert set(summary.captions) == {p.stem for p in summary.figures}
    assert not figure_warnings, figure_warnings


def test_the_empirical_score_memorises_and_never_agrees(clean):
    summary, _ = clean
    table = next(t for t in summary.tables if t.startswith("digits: per model"))
    rows = [r for r in table.splitlines() if r.startswith("| empirical |")]
    assert rows and all(r.split("|")[3].strip().startswith("1.00") for r in rows)  # memorised
    assert all(r.split("|")[6].strip().startswith("0.00") for r in rows)  # agreement


def test_zero_padded_els_query_fails_the_shift_and_reference_claims(monkeypatch):
    original = els.all_patches
    monkeypatch.setattr(els, "all_patches", lambda images, k, padding: original(images, k,
                                                                                 "zero"))
    bad = failed(identity_claims())
    assert any("circular shifts" in name for name in bad)
    assert any("ELS = dense" in name for name in bad)


def test_wrong_els_centre_index_fails_the_reference_claims(monkeypatch):
    original = els.centre_coordinates
    monkeypatch.setattr(els, "centre_coordinates",
                        lambda k, c: (original(k, c) + 1) % (k * k * c))
    bad = failed(identity_claims())
    assert any("ELS = dense" in name for name in bad)
    assert any("boundary ELS = dense" in name for name in bad)


def test_wrong_noise_scale_fails_the_k1_mixture_claim(monkeypatch):
    original = els.patch_means
    monkeypatch.setattr(els, "patch_means", lambda engines, queries, alpha, sigma2, centre:
                        original(engines, queries, alpha, 2.0 * sigma2, centre))
    bad = failed(identity_claims())
    assert any("k = 1" in name for name in bad)


def test_ls_value_off_its_pixel_fails_the_covering_identity_and_the_law(monkeypatch):
    original = masked.centre_coordinates
    monkeypatch.setattr(masked, "centre_coordinates",
                        lambda k, c: (original(k, c) + 1) % (k * k * c))
    assert any("covering window" in name for name in failed(identity_claims()))
    assert failed(law_claims())


def test_transition_interpolates_in_log_n_and_reports_never():
    sizes = np.array([10.0, 100.0, 1000.0])
    rng = np.random.default_rng(0)
    cross = [np.array([0] * 100), np.array([1] * 25 + [0] * 75), np.array([1] * 75 + [0] * 25)]
    est, lo, hi = gen.transition(cross, sizes, rng)
    # g = 0.25 at 100 and 0.75 at 1000: half-way in log N, N* = 10^2.5.
    assert est == pytest.approx(10**2.5, rel=1e-12)
    assert lo < est < hi
    never = [np.zeros(50, bool)] * 3
    assert gen.transition(never, sizes, rng) == (np.inf, np.inf, np.inf)


def test_speciation_half_time_against_a_hand_computed_curve():
    # Two classes, equal ends: chance level 1/2, half level 3/4; P(same) 1, 0.5 at t = 0.1, 1.
    end = np.array([0, 1] * 20)
    same = np.vstack([np.ones(40), np.r_[np.ones(20), np.zeros(20)]])
    res = {"times": [0.1, 1.0], "same": same.tolist(), "end_classes": end.tolist()}
    t_half, level, lo, hi, censored = speciation_transition(res, seed=1)
    assert level == pytest.approx(0.75)
    assert t_half == pytest.approx(10**-0.5, rel=1e-12)
    assert lo <= t_half <= hi and censored == ""


def test_median_interval_covers_the_median_at_its_level():
    # 2000 samples of 40 standard normals: the exact coverage is 0.9615 (order statistics
    # 14 and 27); its Monte Carlo s.e. is 0.0043, the band 4.5 s.e.
    rng = np.random.default_rng(3)
    hits = [lo <= 0.0 <= hi for _, lo, hi in
            (rep.median_interval(rng.standard_normal(40)) for _ in range(2000))]
    assert abs(np.mean(hits) - 0.9615) <= 4.5 * 0.0043


def test_speciation_half_time_says_when_the_curve_never_crosses():
    end = np.array([0, 1] * 10)
    # P(same) = 1/2 at both times, below the half level 3/4.
    res = {"times": [0.1, 1.0], "same": [[1, 0] * 10, [0, 1] * 10], "end_classes": end.tolist()}
    t_half, _, _, _, censored = speciation_transition(res, seed=1)
    assert t_half == pytest.approx(0.1) and censored == "below the smallest clone time"


def test_agreement_is_relative_to_memorisation():
    """Copies of two different training images never agree, however alike the images;
    two equal novel samples always do; the audit's rule marks the copies memorised."""
    from validation.studies.generalisation_models import Split, classifier, measure

    rng = np.random.default_rng(4)
    base = rng.random((1, 4, 4, 1))
    # S1 and S2 hold near-twins of one image (distance 0.05) and other random images.
    s1 = np.concatenate([base, rng.random((5, 4, 4, 1))])
    s2 = np.concatenate([base + 0.05 / 4, rng.random((5, 4, 4, 1))])
    held = rng.random((8, 4, 4, 1))
    labels = np.arange(8) % 2
    sp = Split(s1, s2, labels[:6], labels[:6], held, held + 0.01, labels, labels)
    clf = classifier(sp)
    levels = {"probe_distance": [1.0] * 8, "confidence": [0.5] * 8}
    copies = measure(s1[:1].reshape(1, -1), s2[:1].reshape(1, -1), sp, clf, levels)
    novel = np.full((1, 16), 0.5)
    same = measure(novel, novel.copy(), sp, clf, levels)
    assert copies["memorised_a"] == [True] and copies["agree"] == [False]
    assert same["memorised_a"] == [False] and same["agree"] == [True]
