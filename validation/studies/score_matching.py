"""Study: score-matching objectives, Theorems 1 and 2, and the generalisation gap.

numdiff's score-matching objectives (``numdiff.matching``) and its empirical
score are compared with ``theory.score_matching`` (closed forms, 1-D adaptive
quadrature) on the OU process. Bands are 4.5 standard errors of the measured
statistic (two-sided false failure 6.8e-6 each); deterministic comparisons use
a stated small multiple of the error achieved.

* **Theorem 1** (Hyvarinen): ``E|grad log p - s|^2 - E[|s|^2 + 2 div s] = I(p)``.
  In ``d = 1`` for the empirical score ``s_hat`` (``EmpiricalScore.divergence``)
  under the training mixture and under the true law, each term its own
  quadrature; the relative residual is held to ``1e-12`` (*theorem*). In ``d = 5`` by Monte Carlo for the Gaussian score of a wrong
  law: ``dsm_loss``, ``implicit_loss`` (exact and Hutchinson divergence) and
  ``fisher_divergence`` against the closed forms (*theorem*), and the closed
  forms against each other (*theory-check*). The Hutchinson divergence of
  ``s_hat`` (central differences and ``EmpiricalScore.jvp``) against its exact
  divergence, ``d = 4``, mean over exact mixture samples (*theorem*).
* **Theorem 2 / eq. (10)**: the minimum of the DSM loss (9) at time ``t`` is
  ``d / sigma_t^2 - I(p_t)`` (derivation in ``theory.score_matching``):
  ``dsm_loss(s_hat)`` by Monte Carlo against that constant from quadrature
  (``d = 1``). The empirical score minimises (9): by quadrature in ``d = 1``,
  ``L(s_hat + eps h) - L(s_hat) = eps^2 E|h|^2`` to ``1e-10``; in ``d = 4`` by
  Monte Carlo on common random numbers, the cross term
  ``L(s_hat + eps h) - L(s_hat - eps h)`` is 0 within its s.e., and every
  alternative (true-law score, Gaussian fit, smoothed KDE scores) loses by
  exactly ``E_{p_t}|alt - s_hat|^2``, measured independently on exact mixture
  samples with ``theory.mixture``'s score.
* **Generalisation** (Li, Chen & Li 2024): for ``N`` training points from
  ``N(0, I_d)``, ``s_hat`` has a *lower* DSM loss than the true score on the
  training set, by ``E_{p_hat_t}|s_hat - s_true|^2``, and a *higher* one on fresh
  held-out points, by the score error ``E_{p_t}|s_hat - s_true|^2``. Both signs
  and both sizes are claims.
* **Finding**: the score error ``E_{p_t}|s_hat - grad log p_t|^2`` against
  ``N`` and ``t`` (figure and table), measured on exact samples of ``p_t``.
"""

from __future__ import annotations

import numpy as np

import numdiff as nd
from numdiff import matching
from theory.mixture import mixture_sample
from theory.score_matching import gaussian_score_matching, score_matching_1d

from ..claims import at_least, at_most, within
from ..report import markdown_table
from ..study import Study, Summary
from .common import SE_BAND, ou_alpha_sigma2
from .score_matching_plots import CAPTIONS, score_error_figure
from .score_models import OU, Combined, GaussianLawScore, KDEScore, Sine


def _est(e):
    return {"value": e.value, "se": e.stderr}


# -- cells --------------------------------------------------------------------------------------


def quadrature_cell(config, seed):
    """d = 1: Theorem 1 residuals, the minimiser check and Theorem 2's constant."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((config["n_data"], 1))
    f = nd.EmpiricalScore(data, OU)
    out = []
    for t in config["times"]:
        alpha, sigma2 = ou_alpha_sigma2(t)

        def s_hat(y, t=t):
            return f.score(t, y[:, None])[:, 0]

        def div(y, t=t):
            return matching.divergence(f, t, y[:, None]).value

        thm1 = []
        for law in ((data, alpha, sigma2), (np.zeros((1, 1)), 1.0, alpha**2 + sigma2)):
            res = score_matching_1d(s_hat, *law, divergence=div)
            thm1.append(abs(res.explicit - res.implicit - res.fisher)
                        / (res.explicit + res.fisher))
        base = score_matching_1d(s_hat, data, alpha, sigma2)
        worst = 0.0
        for h in (np.sin, np.tanh, lambda y: np.exp(-(y**2)), lambda y: 0.2 * y - 0.5):
            norm = score_matching_1d(lambda y, h=h: s_hat(y) + h(y), data, alpha, sigma2).explicit
            for eps in config["eps"]:
                moved = score_matching_1d(lambda y, h=h, e=eps: s_hat(y) + e * h(y),
                                          data, alpha, sigma2).dsm
                worst = max(worst, abs(moved - base.dsm - eps**2 * norm))
        mc = matching.dsm_loss(f, data, OU, t, n_noise=config["n_noise"], rng=rng)
        out.append({"t": t, "thm1_mixture": thm1[0], "thm1_true": thm1[1],
                    "minimiser": worst, "gap": base.dsm_gap,
                    "gap_rel": abs(base.dsm - base.dsm_gap) / base.dsm_gap, "dsm_mc": _est(mc)})
    return out


def gaussian_cell(config, seed):
    """d = 5 Gaussian data, the score of a wrong (correlated) Gaussian: Monte Carlo
    against closed forms. The model's Jacobian is a full matrix, so the Hutchinson
    probes are noisy."""
    rng = np.random.default_rng(seed)
    d, n, t = config["d"], config["n"], config["t"]
    mean = np.linspace(-1.0, 1.0, d)
    var = np.linspace(0.3, 2.0, d)
    alpha, sigma2 = ou_alpha_sigma2(t)
    cov = 0.5 * np.eye(d) + 0.5  # unit variances, correlation 1/2
    model = GaussianLawScore(np.zeros(d), cov)
    gain = model._gain(t)[1]
    ref = gaussian_score_matching(mean, var, alpha, sigma2, 0.5 * (gain + gain.T), 0.0)
    x0 = mean + np.sqrt(var) * rng.standard_normal((n, d))
    dsm = matching.dsm_loss(model, x0, OU, t, n_noise=1, rng=rng)
    xt = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal((n, d))
    exact = matching.implicit_loss(model, t, xt, method="exact")
    hutch = matching.implicit_loss(model, t, xt, method="hutchinson",
                                   n_probes=config["n_probes"], rng=rng)
    true = GaussianLawScore(mean, np.diag(var))
    fisher = matching.fisher_divergence(model, true, t, xt)
    info = matching.fisher_divergence(true, lambda t, x: np.zeros_like(x), t, xt)
    # Theorem 1 per sample on the same points: explicit - implicit - |s_p|^2 has mean 0.
    paired = matching.MonteCarloEstimate.from_terms(fisher.terms - hutch.terms - info.terms)
    closed = abs(ref.explicit - ref.implicit - ref.fisher) / (ref.explicit + ref.fisher)
    closed2 = abs(ref.dsm - ref.explicit - ref.dsm_gap) / (ref.dsm + ref.fisher)
    return {"ref": ref._asdict(), "dsm": _est(dsm), "implicit_exact": _est(exact),
            "implicit_hutchinson": _est(hutch), "fisher_divergence": _est(fisher),
            "thm1_paired": _est(paired), "closed_residual": max(closed, closed2)}


def _training_set(config, seed):
    return np.random.default_rng(seed).standard_normal((config["n_data"], config["d"]))


def minimiser_cell(config, seed):
    """d = 4, common random numbers: the cross term and the alternatives' excess loss."""
    rng = np.random.default_rng(seed)
    data = _training_set(config, rng.integers(2**32))
    t, n_noise, eps = config["t"], config["n_noise"], config["eps"]
    alpha, sigma2 = ou_alpha_sigma2(t)
    f = nd.EmpiricalScore(data, OU)
    d = data.shape[1]
    alternatives = {
        "true-law score": GaussianLawScore(np.zeros(d), np.eye(d)),
        "Gaussian fit": GaussianLawScore(data.mean(axis=0), np.cov(data.T)),
        **{f"smoothed KDE h={h:g}": KDEScore(data, h) for h in config["kde_h"]},
    }
    crn = int(rng.integers(2**32))  # one noise stream for every model: common random numbers
    base = matching.dsm_loss(f, data, OU, t, n_noise=n_noise, rng=crn)
    xs = mixture_sample(config["n_exact"], data, alpha, sigma2, rng)
    exact = KDEScore(data, 0.0)
    cross, excess = {}, {}
    for name, alt in {**alternatives, "sine": Sine(d)}.items():
        direction = alt if name == "sine" else Combined(alt, f, -1.0)  # alt - s_hat
        plus = matching.dsm_loss(Combined(f, direction, eps), data, OU, t, n_noise=n_noise,
                                 rng=crn)
        minus = matching.dsm_loss(Combined(f, direction, -eps), data, OU, t, n_noise=n_noise,
                                  rng=crn)
        cross[name] = _est(plus.minus(minus))
        if name != "sine":
            gap = matching.dsm_loss(alt, data, OU, t, n_noise=n_noise, rng=crn).minus(base)
            pred = matching.fisher_divergence(alt, exact, t, xs)
            excess[name] = {"measured": _est(gap), "predicted": _est(pred)}
    x = xs[: config["n_hutchinson"]]
    exact_div = matching.divergence(f, t, x).value
    hutch = {}
    for how, jvp in (("central differences", None), ("jvp", "model")):
        est = matching.hutchinson_divergence(f, t, x, n_probes=2, rng=rng, jvp=jvp)
        hutch[how] = _est(matching.MonteCarloEstimate.from_terms(est.value - exact_div))
    return {"cross": cross, "excess": excess, "hutchinson": hutch}


def generalisation_cell(config, seed):
    """Train vs held-out DSM loss of s_hat against the true score (Gaussian law)."""
    rng = np.random.default_rng(seed)
    d, t = config["d"], config["t"]
    data = _training_set(config, rng.integers(2**32))
    alpha, sigma2 = ou_alpha_sigma2(t)
    f, true = nd.EmpiricalScore(data, OU), GaussianLawScore(np.zeros(d), np.eye(d))
    crn = int(rng.integers(2**32))
    train = (matching.dsm_loss(f, data, OU, t, n_noise=config["n_noise"], rng=crn)
             .minus(matching.dsm_loss(true, data, OU, t, n_noise=config["n_noise"], rng=crn)))
    held = rng.standard_normal((config["n_held"], d))
    crn = int(rng.integers(2**32))
    test = (matching.dsm_loss(f, held, OU, t, n_noise=1, rng=crn)
            .minus(matching.dsm_loss(true, held, OU, t, n_noise=1, rng=crn)))
    exact = KDEScore(data, 0.0)
    on_train = matching.fisher_divergence(exact, true, t,
                                          mixture_sample(config["n_exact"], data, alpha, sigma2,
                                                         rng))
    on_law = matching.fisher_divergence(
        exact, true, t, np.sqrt(alpha**2 + sigma2) * rng.standard_normal((config["n_exact"], d)))
    return {"t": t, "train": _est(train), "held": _est(test),
            "error_train_law": _est(on_train), "error_true_law": _est(on_law)}


def score_error_cell(config, seed):
    """``E_{p_t}|s_hat - grad log p_t|^2`` for N(0, I_d) data, one N, several t."""
    rng = np.random.default_rng(seed)
    d = config["d"]
    data = rng.standard_normal((config["N"], d))
    f, true = nd.EmpiricalScore(data, OU), GaussianLawScore(np.zeros(d), np.eye(d))
    out = []
    for t in config["times"]:
        alpha, sigma2 = ou_alpha_sigma2(t)
        x = np.sqrt(alpha**2 + sigma2) * rng.standard_normal((config["n"], d))
        e = matching.fisher_divergence(f, true, t, x)
        out.append({"t": t, "error": e.value, "se": e.stderr, "fisher": d / (alpha**2 + sigma2)})
    return out


def cells(config):
    out = [("quadrature d=1", quadrature_cell, config["quadrature"]),
           ("Gaussian closed forms", gaussian_cell, config["gaussian"]),
           ("minimiser CRN", minimiser_cell, config["minimiser"])]
    for t in config["generalisation"]["times"]:
        cfg = {k: v for k, v in config["generalisation"].items() if k != "times"}
        out.append((f"generalisation t={t:g}", generalisation_cell, {**cfg, "t": t}))
    err = config["score_error"]
    for n_data in err["N"]:
        cfg = {k: v for k, v in err.items() if k != "N"}
        out.append((f"score error N={n_data}", score_error_cell, {**cfg, "N": n_data}))
    return out


# -- claims -------------------------------------------------------------------------------------


THM1_REL = 1e-12


MINIMISER_ABS = 1e-10


def _z_within(name, predicted, est, *, detail, kind="theorem", extra_se=0.0):
    se = float(np.hypot(est["se"], extra_se))
    return within(name, predicted, est["value"], SE_BAND * se, se, kind=kind,
                  detail=f"{detail}; band {SE_BAND} s.e.")


def _quadrature_claims(rows, config):
    times = [r["t"] for r in rows]
    cfg = config["quadrature"]
    claims = [
        at_most("Theorem 1 for s_hat under the training mixture, d=1 quadrature (rel. residual)",
                THM1_REL, max(r["thm1_mixture"] for r in rows),
                detail=f"|explicit - implicit - I(p)| / (explicit + I), N={cfg['n_data']}, "
                       f"t in {times}; EmpiricalScore.divergence; each term a quadrature to "
                       f"1e-13; bound {THM1_REL:g} (achieved ~1e-16)"),
        at_most("Theorem 1 for s_hat under the true law N(0,1), d=1 quadrature (rel. residual)",
                THM1_REL, max(r["thm1_true"] for r in rows),
                detail=f"same, under p_t = N(0, alpha^2 + sigma^2); bound {THM1_REL:g}"),
        at_most("eq. (10) minimises (9): |L(s_hat + eps h) - L(s_hat) - eps^2 E h^2|, d=1",
                MINIMISER_ABS, max(r["minimiser"] for r in rows),
                detail=f"4 directions h, eps in {cfg['eps']}, t in {times}, each L its own "
                       f"quadrature; bound {MINIMISER_ABS:g} (achieved ~1e-15)"),
    ]
    for r in rows:
        claims.append(_z_within(
            f"Theorem 2: min DSM loss = 1/sigma^2 - I(p_t), d=1, t={r['t']:g}", r["gap"],
            r["dsm_mc"],
            detail=f"dsm_loss(s_hat) with {cfg['n_noise']} draws per point (stratified s.e.) "
                   "against the quadrature constant"))
    return claims


def _gaussian_claims(res, config):
    ref, cfg = res["ref"], config["gaussian"]
    what = (f"d={cfg['d']}, n={cfg['n']}, t={cfg['t']:g}, score of N(0, C) (correlation 1/2) "
            "on N(m, diag v) data")
    return [
        _z_within("dsm_loss = closed form, Gaussian data", ref["dsm"], res["dsm"],
                  detail=f"{what}, n_noise=1"),
        _z_within("implicit_loss (exact divergence) = closed form", ref["implicit"],
                  res["implicit_exact"], detail=what),
        _z_within("implicit_loss (Hutchinson) = closed form", ref["implicit"],
                  res["implicit_hutchinson"], detail=f"{what}, {cfg['n_probes']} probes"),
        _z_within("fisher_divergence = closed form", ref["explicit"], res["fisher_divergence"],
                  detail=what),
        _z_within("Theorem 1 per sample (explicit - implicit - |grad log p|^2 = 0)", 0.0,
                  res["thm1_paired"], detail=f"{what}; Hutchinson divergence, paired"),
        at_most("Theorems 1 and 2, Gaussian closed forms (rel. residual)", 1e-13,
                res["closed_residual"], kind="theory-check",
                detail="each loss its own closed form; bound 1e-13 (rounding)"),
    ]


def _minimiser_claims(res, config):
    cfg = config["minimiser"]
    what = (f"N={cfg['n_data']} from N(0, I_{cfg['d']}), t={cfg['t']:g}, "
            f"{cfg['n_noise']} draws per point, common random numbers")
    claims = []
    for name, est in res["cross"].items():
        claims.append(_z_within(
            f"cross term L(s_hat + eps h) - L(s_hat - eps h) = 0, h = {name}"
            + ("" if name == "sine" else " - s_hat"), 0.0, est,
            detail=f"{what}, eps={cfg['eps']:g}"))
    for how, est in res["hutchinson"].items():
        claims.append(_z_within(
            f"Hutchinson divergence of s_hat ({how}) - exact divergence = 0", 0.0, est,
            detail=f"mean over {cfg['n_hutchinson']} exact mixture samples, 2 Rademacher "
                   f"probes each; N={cfg['n_data']}, d={cfg['d']}, t={cfg['t']:g}"))
    for name, pair in res["excess"].items():
        claims.append(_z_within(
            f"L({name}) - L(s_hat) = E_p_t |alt - s_hat|^2", pair["predicted"]["value"],
            pair["measured"], extra_se=pair["predicted"]["se"],
            detail=f"{what}; predicted on {cfg['n_exact']} exact mixture samples with "
                   "theory's score; s.e. combined"))
        claims.append(at_least(
            f"s_hat beats {name} on the training objective (excess loss in s.e.)", SE_BAND,
            pair["measured"]["value"] / pair["measured"]["se"],
            detail=f"{what}; z of L(alt) - L(s_hat) >= {SE_BAND}"))
    return claims


def _generalisation_claims(rows, config):
    cfg = config["generalisation"]
    claims = []
    for r in rows:
        tag = f"N={cfg['n_data']}, d={cfg['d']}, t={r['t']:g}"
        claims += [
            at_most(f"train: L(s_hat) - L(s_true) < 0 (z), {tag}", -SE_BAND,
                    r["train"]["value"] / r["train"]["se"],
                    detail=f"training set, {cfg['n_noise']} draws per point, common noise"),
            _z_within(f"train: L(s_hat) - L(s_true) = -E_p_hat|s_hat - s_true|^2, {tag}",
                      -r["error_train_law"]["value"], r["train"],
                      extra_se=r["error_train_law"]["se"],
                      detail=f"predicted on {cfg['n_exact']} exact samples of the training "
                             "mixture; s.e. combined"),
            at_least(f"held-out: L(s_hat) - L(s_true) > 0 (z), {tag}", SE_BAND,
                     r["held"]["value"] / r["held"]["se"],
                     detail=f"{cfg['n_held']} fresh N(0, I) points, one draw each"),
            _z_within(f"held-out: L(s_hat) - L(s_true) = E_p_t|s_hat - s_true|^2, {tag}",
                      r["error_true_law"]["value"], r["held"],
                      extra_se=r["error_true_law"]["se"],
                      detail=f"predicted on {cfg['n_exact']} exact samples of p_t; s.e. "
                             "combined"),
        ]
    return claims


def summarise(cell_results, config, outdir):
    res = {r.label: r.result for r in cell_results}
    gen = [r.result for r in cell_results if r.label.startswith("generalisation")]
    errors = {r.config["N"]: r.result for r in cell_results
              if r.label.startswith("score error")}
    claims = (_quadrature_claims(res["quadrature d=1"], config)
              + _gaussian_claims(res["Gaussian closed forms"], config)
              + _minimiser_claims(res["minimiser CRN"], config)
              + _generalisation_claims(gen, config))
    ns = sorted(errors)
    times = [r["t"] for r in errors[ns[0]]]
    rows = [(n, *(f"{errors[n][i]['error']:.4g} +- {errors[n][i]['se']:.2g}"
                  for i in range(len(times)))) for n in ns]
    err_cfg = config["score_error"]
    tables = [
        "Finding: score error `E_{p_t}|s_hat - grad log p_t|^2` of the empirical score for "
        f"N(0, I_{err_cfg['d']}) training data, on {err_cfg['n']} exact samples of p_t "
        "(mean +- s.e.; for scale, I(p_t) = d / (alpha^2 + sigma^2) = "
        f"{err_cfg['d']}; one training set per N, so the spread between sets is not in "
        "the s.e.):\n\n"
        + markdown_table(("N", *(f"t = {t:g}" for t in times)), rows),
        "Generalisation gap (paired DSM-loss differences L(s_hat) - L(s_true)):\n\n"
        + markdown_table(("t", "train", "predicted", "held-out", "predicted"),
                         [(r["t"], r["train"]["value"], -r["error_train_law"]["value"],
                           r["held"]["value"], r["error_true_law"]["value"]) for r in gen]),
    ]
    return Summary(claims, [score_error_figure(errors, outdir)], tables, captions=CAPTIONS)


_DEFAULT = {
    "seed": 8042,
    "quadrature": {"n_data": 6, "times": [0.02, 0.1, 0.5], "eps": [0.3, 0.03],
                   "n_noise": 20_000},
    "gaussian": {"d": 5, "n": 200_000, "t": 0.3, "n_probes": 4},
    "minimiser": {"n_data": 50, "d": 4, "t": 0.15, "n_noise": 400, "eps": 0.1,
                  "kde_h": [0.3, 0.6], "n_exact": 100_000, "n_hutchinson": 20_000},
    "generalisation": {"n_data": 50, "d": 4, "times": [0.05, 0.3], "n_noise": 400,
                       "n_held": 100_000, "n_exact": 100_000},
    "score_error": {"d": 4, "N": [10, 30, 100, 300, 1000, 3000], "times": [0.05, 0.2, 0.5, 1.0],
                    "n": 20_000},
}


_QUICK = {
    "seed": 8042,
    "quadrature": {"n_data": 6, "times": [0.02, 0.5], "eps": [0.3], "n_noise": 5_000},
    "gaussian": {"d": 5, "n": 40_000, "t": 0.3, "n_probes": 2},
    "minimiser": {"n_data": 50, "d": 4, "t": 0.15, "n_noise": 100, "eps": 0.1,
                  "kde_h": [0.3], "n_exact": 20_000, "n_hutchinson": 5_000},
    "generalisation": {"n_data": 50, "d": 4, "times": [0.05, 0.3], "n_noise": 100,
                       "n_held": 20_000, "n_exact": 20_000},
    "score_error": {"d": 4, "N": [10, 100, 1000], "times": [0.05, 0.5], "n": 4_000},
}


STUDY = Study(
    name="score_matching",
    title="Score matching: Theorems 1 and 2, the minimiser of (9), and the generalisation gap",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default=_DEFAULT,
    quick=_QUICK,
)
