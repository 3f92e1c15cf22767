"""The study ``trained_denoisers``: its measurements against independent references,
its claims against injected bugs, and a tiny configuration run end to end."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")

import numdiff as nd
from numdiff.learn import (
    NetConfig,
    NetworkScore,
    TrainConfig,
    network,
)
from numdiff.learn.training import TrainedNet
from validation.studies import trained_denoisers as study
from validation.studies import trained_findings as findings
from validation.studies import trained_geometry, trained_measures


def random_net(shape=(4, 4, 1), seed=0):
    """A bias-free net with random weights and non-constant gains (no training needed:
    homogeneity and Euler's identity hold for any weights)."""
    cfg = NetConfig(image_shape=shape, channels=(4, 8), blocks=1)
    params = network.init_params(cfg, seed)
    rng = np.random.default_rng(seed + 1)
    for key in ("w2", "b2", "b1"):
        params["cond"][key] = (0.3 * rng.standard_normal(params["cond"][key].shape)
                               ).astype(np.float32)
    return TrainedNet(cfg, TrainConfig(), params, params, None, {}, 0.0)


def identity_claims(trained):
    held = np.random.default_rng(3).uniform(size=(3, trained.net.dim))
    checks = study._checks(trained, held, 0.5, np.random.default_rng(4))
    result = {"n": 4, "checks": checks}
    return {c.name.split(":")[1].split(",")[0].strip(): c
            for c in findings.identity_claims([result], {})}


def test_identity_claims_pass_on_a_bias_free_net():
    claims = identity_claims(random_net())
    assert len(claims) == 3 and all(c.passed for c in claims.values()), claims
    # achieved in float64: rounding, far below the claim's 1e-9
    assert max(c.measured for c in claims.values()) < 1e-12


def test_homogeneity_claim_catches_a_bias_left_in_the_net(monkeypatch):
    original = network._conv
    monkeypatch.setattr(network, "_conv", lambda x, w, padding: original(x, w, padding) + 0.01)
    claims = identity_claims(random_net())
    assert not claims["D(c y) = c D(y)"].passed
    assert claims["D(c y) = c D(y)"].measured > 1e-4


def test_euler_claim_catches_the_jacobian_of_the_wrong_layer(monkeypatch):
    """The Jacobian of the inner network (the skip term c_skip y dropped) breaks D = J y."""
    original = NetworkScore.jacobian

    def inner(self, t, x, of="denoiser"):
        jac = original(self, t, x, of)
        s2 = float(self.schedule.sigma2(t) / self.schedule.alpha(t) ** 2)
        c_skip = self.net.net.data_scale**2 / (s2 + self.net.net.data_scale**2)
        return jac - c_skip * np.eye(self.dim) / float(self.schedule.alpha(t))

    monkeypatch.setattr(NetworkScore, "jacobian", inner)
    claims = identity_claims(random_net())
    assert not claims["Euler's identity D(y) = J(y) y (JAX Jacobian)"].passed
    assert claims["D(c y) = c D(y)"].passed


def wiener_result(rng):
    cov = np.cov(np.random.default_rng(0).standard_normal((200, 6)) @ np.diag([3, 2, 1, .5, .2, .1]),
                 rowvar=False)
    levels = [0.1, 0.5, 2.0]
    return {"own": trained_geometry.wiener_gaps(cov, cov, levels, 4000, rng),
            "wrong": trained_geometry.wiener_gaps(cov, 0.5 * cov, levels, 4000, rng)}


def test_wiener_miyasawa_claims():
    own, wrong = findings.wiener_claims(wiener_result(np.random.default_rng(1)))
    assert own.passed and wrong.passed, (own, wrong)


def test_miyasawa_claim_catches_a_wrong_trace(monkeypatch):
    """The trace of grad D without the factor alpha (the Jacobian of G / alpha) fails."""
    original = trained_geometry.wiener_trace
    monkeypatch.setattr(trained_geometry, "wiener_trace",
                        lambda cov, alpha, sigma2: original(cov, alpha, sigma2) / alpha)
    own, _ = findings.wiener_claims(wiener_result(np.random.default_rng(1)))
    assert not own.passed, own


def test_net_calibration_rule_matches_calibrate_to_reference():
    from numdiff.local import EquivariantLocalScore
    from numdiff.local.calibration import calibrate_to_reference

    rng = np.random.default_rng(2)
    images = rng.uniform(size=(10, 6, 6, 1))
    schedule = nd.OU()
    times = np.array([0.02, 0.2, 1.0])
    states = rng.standard_normal((3, 5, 36))
    reference = nd.EmpiricalScore(images.reshape(10, -1), schedule)
    ref_scores = np.asarray([reference.score(t, x) for t, x in zip(times, states)])
    family = {k: np.asarray([EquivariantLocalScore(images, schedule, k).score(t, x)
                             for t, x in zip(times, states)]) for k in (3, 5)}
    _, ks = trained_measures.family_r2(ref_scores, family, lambda _, s: max(s, key=s.get))
    sched = calibrate_to_reference(lambda k: EquivariantLocalScore(images, schedule, k), (3, 5),
                                   list(zip(times, states, ref_scores)))
    assert ks == [sched(t) for t in times]


def test_r_squared_and_pair_metrics_against_direct_formulas():
    rng = np.random.default_rng(5)
    ref, other = rng.standard_normal((2, 4, 9))
    direct = [1 - np.sum((a - b) ** 2) / np.sum((a - a.mean()) ** 2) for a, b in zip(ref, other)]
    assert np.allclose(trained_measures.r_squared(ref, other), direct, rtol=1e-14)
    s1, s2, held = rng.uniform(size=(3, 20, 9))
    # Net 1 copies S1 exactly (memorised), net 2 returns the same points nudged: agreement.
    x1 = s1[:8]
    x2 = x1 + 1e-3
    res = trained_measures.pair_metrics(x1, x2, s1, s2, held)
    assert res["memorised"][0] == 8 and res["agree"] == 0  # a copy is at distance 0 of S1
    x1 = rng.uniform(size=(8, 9)) + 5.0  # far from every training image
    res = trained_measures.pair_metrics(x1, x1 + 1e-3, s1, s2, held)
    assert res["agree"] == 8 and res["memorised"] == [0, 0]


@pytest.mark.parametrize("scale, data_like", [(1.0, True), (1.6, False)])
def test_reference_check_tells_data_like_samples_from_spread_ones(scale, data_like):
    # Oracle: "samples" drawn from the training law itself are data-like by definition
    # (their distances to held-out images are distributed as the real images'); the
    # same draws spread 1.6-fold about the mean are measurably farther. 400 + 400
    # samples, 400 real images, 1000 bootstrap resamples, seeds fixed.
    rng = np.random.default_rng(12)
    law = lambda n: rng.standard_normal((n, 6))
    s1, s2, held = law(400), law(400), law(300)
    x1, x2 = scale * law(400), scale * law(400)
    pair = trained_measures.pair_metrics(x1, x2, s1, s2, held)
    assert trained_measures.is_reference(pair, np.random.default_rng(0)) is data_like
    result = {"n": 400, "pair": pair}
    (finding,) = findings.reference_findings([result], np.random.default_rng(0))
    assert finding.agreement == ("undecided" if data_like else "disagrees")
    line = study.reference_line([result], np.random.default_rng(0))
    assert ("not data-like at N = [400]" in line) is not data_like


@pytest.mark.parametrize("process", ["ode", "sde"])
def test_reverse_path_gives_every_model_the_same_noise(process):
    # For a one-point data set {a} the reverse drift is affine in x with a linear part
    # that does not depend on a, so two models driven by the same Brownian path differ
    # by a deterministic curve: the difference must not depend on the noise seed.
    # A path that drew fresh noise per model would make it depend on it.
    from validation.studies.trained_nets import reverse_path

    a, b = np.full((1, 4), 0.3), np.full((1, 4), -0.2)
    models = [nd.EmpiricalScore(p, nd.OU()) for p in (a, b)]
    x_T = np.random.default_rng(0).standard_normal((3, 4))
    diffs = []
    for seed in (1, 2):
        path = {"s_start": 5.0, "s_end": 0.05, "steps": 6, "process": process,
                "substeps": 4, "noise_seed": seed}
        (times, sa), (_, sb) = (reverse_path(m, x_T, path) for m in models)
        assert sa.shape == (7, 3, 4) and np.array_equal(sa[0], x_T)
        assert np.allclose(times, nd.grids.uniform_lambda(nd.OU(), times[0], times[-1], 6))
        diffs.append(sa - sb)
    assert np.allclose(diffs[0], diffs[1], rtol=0, atol=1e-12)
    if process == "sde":  # the noise is there: the paths themselves differ between seeds
        assert not np.allclose(sa[-1], reverse_path(models[0], x_T, {**path, "noise_seed": 1})[1][-1])


def test_transition_interpolates_in_log_n():
    def cell(n, memorised, agree):
        return {"n": n, "pair": {"n": 100, "memorised": [memorised, memorised], "agree": agree}}

    grid = [cell(10, 90, 20), cell(100, 10, 60)]
    est, lo, hi = findings.transition(grid)
    assert est == pytest.approx(1.5)
    assert lo < est < hi
    # agreement rises through 1/2 three quarters of the way (0.2 -> 0.6) in log N
    est, lo, hi = findings.transition(grid, "agree")
    assert est == pytest.approx(1.75)
    assert lo < est < hi
    assert np.isnan(findings.transition([cell(10, 10, 0), cell(100, 5, 0)])[0])


def tiny_config():
    cfg = study.STUDY.quick
    digits = {**cfg["digits"], "n_values": [6, 24], "n_samples": 16, "gallery": 4,
              "train": {**cfg["digits"]["train"], "steps": 40, "eval_every": 20, "warmup": 5},
              "path": {**cfg["digits"]["path"], "steps": 4},
              "r2": {**cfg["digits"]["r2"], "n_samples": 6, "n_calibration": 8}}
    short = {**cfg["calpha"]["train"], "steps": 40, "eval_every": 20, "warmup": 5}
    calpha = {**cfg["calpha"], "n_train": 40, "n_heldout": 10, "n_eval": 6, "n_spectra": 3,
              "train": short, "more_alphas": {"alphas": [2.0], "train": short},
              "r2_more_n": [20],
              "r2": {**cfg["calpha"]["r2"], "n_samples": 3,
                     "path": {**cfg["calpha"]["r2"]["path"], "steps": 2}}}
    return {**cfg, "digits": digits, "calpha": calpha, "wiener": {**cfg["wiener"], "n": 500}}


@pytest.mark.slow
def test_tiny_configuration_runs_end_to_end(tmp_path):
    from validation.study import CellResult

    config = tiny_config()
    results = [CellResult(c.label, c.config, c.seed, c.func(c.config, c.seed))
               for c in study.STUDY.plan(config)]
    summary = study.STUDY.summarise(results, config, tmp_path)
    assert summary.claims and all(c.passed for c in summary.claims), summary.claims
    assert len(summary.figures) == 4 and all(p.exists() for p in summary.figures)
    names = [f.name for f in summary.findings]
    assert sum(name.startswith("trained nets: transition N") for name in names) == 2


def synthetic_results(rng):
    """Cell results of the shapes the study writes, with random numbers (no training)."""
    steps, n, names = 7, 6, ("empirical", "Wiener", "KDE", "LS (net-calibrated)",
                             "ELS (net-calibrated)", "ELS (held-out calibrated)",
                             "BA-ELS (net-calibrated)")
    digits = []
    for size, mem in ((4, 20), (64, 2)):
        pair = {"n": 32, "memorised": [mem, mem + 1], "agree": 32 - mem}
        digits.append({"n": size, "pair": pair, "times": np.linspace(2.3, 0.01, steps),
                       "r2": {k: {"r2": 1 - rng.uniform(0, 2, (steps, n)), "k": [3] * steps,
                                  "h": 0.5} for k in names},
                       "gallery": {k: rng.uniform(size=(4, 64)) for k in ("x1", "x2",
                                                                           "nearest1")}})
    calpha = {}
    for name in ("smooth", "perturbed"):
        levels = [{"s": s, "mean_spectrum": np.sort(rng.uniform(-0.1, 1, 64))[::-1]}
                  for s in (0.05, 0.8)]
        side = {"denoised": rng.uniform(size=64), "values": [1.0, 0.5],
                "vectors": rng.standard_normal((2, 64))}
        fig5 = {"s": 0.2, "clean": rng.uniform(size=64), "noisy": rng.uniform(size=64),
                "net": side, "ELS": side, "els_k": 3}
        calpha[name] = {"levels": levels, "figure5": fig5}
    return digits, calpha


def test_figures_read_cleanly(monkeypatch, tmp_path):
    from validation import plotting
    from validation.studies import trained_report

    seen = {}

    def keep(fig, outdir, name):
        seen[name] = plotting.layout_problems(fig)
        return tmp_path / f"{name}.png"

    monkeypatch.setattr(trained_report, "save_figure", keep)
    digits, calpha = synthetic_results(np.random.default_rng(0))
    trained_report.r2_figure(digits, tmp_path)
    trained_report.figure2_figure(digits, tmp_path)
    trained_report.figure5_figure(calpha, tmp_path)
    trained_report.decay_figure(calpha, tmp_path)
    assert seen == {name: [] for name in trained_report.CAPTIONS}


@pytest.mark.parametrize("which", ["default", "quick", "full"])
def test_cells_key_on_every_field_of_both_configurations(which):
    """The code-keyed cache keys a cell on its configuration: every field of NetConfig and
    TrainConfig must be in it, so that a changed default can never serve a stale net."""
    from dataclasses import fields

    config = getattr(study.STUDY, which)
    nets = [c.config for c in study.STUDY.plan(config) if "net" in c.config]
    n_alphas = 1 + len(config["calpha"]["more_alphas"]["alphas"])
    n_more = len(config["calpha"]["r2_more_n"])
    assert len(nets) == len(config["digits"]["n_values"]) + 2 * n_alphas + n_more
    alphas = [config["calpha"]["alpha"], *config["calpha"]["more_alphas"]["alphas"]]
    main = [config["calpha"]["alpha"]] * n_more
    assert sorted(c["alpha"] for c in nets if "alpha" in c) == sorted(2 * alphas + main)
    for cell in nets:
        assert set(cell["net"]) == {f.name for f in fields(NetConfig)}
        assert set(cell["train"]) == {f.name for f in fields(TrainConfig)}


def mixture_score(x, data, h, alpha, sigma2):
    """Dense score of ``(1/N) sum_k N(alpha x_k, (alpha^2 h^2 + sigma2) I)`` (the diffused KDE),
    written directly from the mixture density with a log-sum-exp."""
    s2 = alpha**2 * h**2 + sigma2
    diff = alpha * data[None, :, :] - x[:, None, :]  # (M, N, d)
    log_w = -np.sum(diff**2, axis=2) / (2 * s2)
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("mn,mnd->md", w, diff) / s2


def test_kde_bandwidth_is_the_collapse_noise():
    flat = np.random.default_rng(6).uniform(size=(30, 16))
    n, d = flat.shape
    data_var = np.mean(np.var(flat, axis=0))
    # alpha^2 data_var / sigma^2 = N^(2/d) - 1 at the collapse, and h = sigma / alpha there
    h_direct = np.sqrt(data_var / (n ** (2 / d) - 1))
    assert trained_measures.kde_bandwidth(flat) == pytest.approx(h_direct, rel=1e-12)


@pytest.mark.parametrize("h", [0.0, 0.4])
def test_kde_score_against_the_mixture_and_numdiffs_empirical_score(h):
    """At h = 0 the KDE score is numdiff's empirical score (independent code); at h > 0 it
    is the dense mixture score, which it is not when the bandwidth is ignored."""
    rng = np.random.default_rng(7)
    flat = rng.uniform(size=(12, 9))
    schedule = nd.OU()
    scores = trained_measures.global_scores(flat, schedule, h)
    x = rng.standard_normal((5, 9))
    for t in (0.05, 0.7):
        alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
        got = scores["KDE"](t, x)
        assert np.allclose(got, mixture_score(x, flat, h, alpha, sigma2), rtol=1e-9, atol=1e-12)
        if h == 0.0:
            emp = nd.EmpiricalScore(flat, schedule).score(t, x)
            assert np.allclose(got, emp, rtol=1e-9, atol=1e-12)


def test_closed_form_r2_is_one_for_the_model_the_net_is():
    """A 'net' whose score is exactly the KDE (dense formula, the bandwidth of the study)
    or exactly numdiff's empirical score gets r^2 = 1 for that row and < 1 for the other."""
    rng = np.random.default_rng(8)
    images = rng.uniform(size=(8, 4, 4, 1))
    flat = images.reshape(8, -1)
    schedule = nd.OU()
    times = np.array([1.0, 0.3, 0.05])
    states = rng.standard_normal((3, 4, 16))
    h = trained_measures.kde_bandwidth(flat)
    config = {"candidates": [1, 3], "n_calibration": 0}
    kde_net = np.asarray([mixture_score(x, flat, h, float(schedule.alpha(t)),
                                        float(schedule.sigma2(t))) for t, x in zip(times, states)])
    emp_net = np.asarray([nd.EmpiricalScore(flat, schedule).score(t, x)
                          for t, x in zip(times, states)])
    for net, own, other in ((kde_net, "KDE", "empirical"), (emp_net, "empirical", "KDE")):
        r2 = trained_measures.closed_form_r2(net, times, states, images, None, config, rng)
        assert "ELS (held-out calibrated)" not in r2 and r2["KDE"]["h"] == h
        assert np.allclose(r2[own]["r2"], 1.0, atol=1e-9)
        assert np.median(r2[other]["r2"]) < 0.99  # the two differ below t ~ 0.3


def synthetic_level(rng, s, ranks):
    return {"s": s, "entropy_rank": ranks, "gap_minus_excess": (0.1, 0.05), "gap": (0.0, 0.1),
            "excess": (0.0, 0.1), "best": "empirical",
            "mean_spectrum": np.sort(rng.uniform(-0.1, 1, 64))[::-1], "lowest_eig": -0.1}


def test_entropy_rank_findings_for_every_contour_exponent():
    """One finding per exponent and level: the difference of means with a normal interval
    (checked against a direct computation), and the table carries every exponent."""
    from validation.studies import trained_report

    rng = np.random.default_rng(9)
    by_alpha = {}
    for alpha, shift in ((1.0, 0.0), (2.0, 30.0)):
        pair = {}
        for name, extra in (("smooth", 0.0), ("perturbed", shift)):
            levels = [synthetic_level(rng, s, 20 + extra + rng.standard_normal(10))
                      for s in (0.05, 0.8)]
            pair[name] = {"levels": levels, "train": {"steps": 100}}
        by_alpha[alpha] = pair
    found = {f.name: f for f in findings.geometry_findings(by_alpha)
             if f.name.startswith("entropy rank")}
    assert len(found) == 4
    for alpha, pair in by_alpha.items():
        for a, b in zip(pair["smooth"]["levels"], pair["perturbed"]["levels"]):
            f = found[f"entropy rank of grad D, perturbed minus smooth border, "
                      f"C^alpha alpha={alpha:g}, s={a['s']:.3g}"]
            ra, rb = a["entropy_rank"], b["entropy_rank"]
            se = np.hypot(np.std(ra, ddof=1) / np.sqrt(10), np.std(rb, ddof=1) / np.sqrt(10))
            assert f.estimate == pytest.approx(rb.mean() - ra.mean(), rel=1e-12)
            assert f.high - f.low == pytest.approx(2 * 1.96 * se, rel=1e-12)
    table = trained_report.geometry_table(by_alpha)
    assert table.count("| 2 | perturbed |") == 2 and table.count("| 1 | smooth |") == 2


def test_r2_findings_and_table_carry_kde_and_c_alpha():
    from validation.studies import trained_report

    digits, _ = synthetic_results(np.random.default_rng(10))
    calpha_r2 = {k: v for k, v in digits[1]["r2"].items() if "held-out" not in k}
    found = {f.name: f for f in findings.r2_findings(digits, [(400, calpha_r2)],
                                                   np.random.default_rng(0))}
    r2 = digits[0]["r2"]
    diff = np.median(r2["KDE"]["r2"], axis=0) - np.median(r2["empirical"]["r2"], axis=0)
    assert found["r^2 KDE minus empirical, digits N=4"].estimate == pytest.approx(np.median(diff))
    diff = (np.median(calpha_r2["ELS (net-calibrated)"]["r2"], axis=0)
            - np.median(calpha_r2["empirical"]["r2"], axis=0))
    name = "r^2 ELS (net-calibrated k) minus empirical, C^alpha N=400"
    assert found[name].estimate == pytest.approx(np.median(diff))
    table = trained_report.r2_table([("C^alpha", calpha_r2)], np.random.default_rng(0))
    assert "| KDE |" in table and "held-out" not in table.split("\n\n")[0]
