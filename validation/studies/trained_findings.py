"""Claims and findings of the study ``trained_denoisers`` (its module docstring gives
the protocol): the algebra of the nets, the Miyasawa self-check, the r^2 expectations,
the Figure 2 transition, and the geometry of the C^alpha nets per contour exponent.
"""

from __future__ import annotations

import numpy as np

from ..claims import Finding, at_most, violates
from .common import SE_BAND, wilson_ci
from .trained_geometry import entropy_rank_difference
from .trained_measures import median_interval, quality
from .trained_report import path_median

#: Relative error allowed in the float64 identities of a bias-free net (achieved ~1e-15).
IDENTITY_TOL = 1e-9



def identity_claims(digits, calpha):
    nets = [(f"digits N={r['n']}", r["checks"]) for r in digits]
    nets += [(f"C^alpha {name}", r["checks"]) for name, r in calpha.items()]
    claims = []
    for key, what in (("homogeneity", "D(c y) = c D(y), c in {0.5, 2}"),
                      ("euler", "Euler's identity D(y) = J(y) y (JAX Jacobian)"),
                      ("trace", "tr grad D (divergence) = sum of jacobian_eigs' spectrum")):
        worst = max(nets, key=lambda item: item[1][key])
        claims.append(at_most(
            f"trained nets: {what}, largest relative error", IDENTITY_TOL, worst[1][key],
            detectable=IDENTITY_TOL,
            detail=f"float64 evaluation of the float32 weights at noisy held-out images, "
                   f"{len(nets)} nets; largest at {worst[0]}"))
    return claims


def wiener_claims(res):
    own = max(abs(r["z"]) for r in res["own"])
    wrong = max(abs(r["z"]) for r in res["wrong"])
    n = len(res["own"])
    return [
        at_most("Miyasawa gap = 0 for the Wiener filter under its prior, max |z|", SE_BAND, own,
                kind="theory-check", detectable=SE_BAND,
                detail=f"{n} levels; the gap measured by the code that measures the nets'"),
        violates("Miyasawa gap of a mis-specified Wiener filter (cov / 2), max |z|", SE_BAND,
                 wrong, detail="the filter of half the covariance on draws of the covariance"),
    ]


def paired_r2(r2, first, second, name, conjecture, sign, rng, detail):
    """Finding: the median over samples of ``first``'s minus ``second``'s path-median r^2."""
    diff = path_median(r2[first]["r2"]) - path_median(r2[second]["r2"])
    est, lo, hi = median_interval(diff, rng)
    return Finding(name, "median over samples of the paired difference of the per-sample "
                   "median r^2 over the path's steps; bootstrap 95%", est, lo, hi,
                   conjecture=conjecture, predicted_sign=sign,
                   detail=f"{len(diff)} samples of the {detail} net's path")


def r2_findings(digits, calpha_r2, rng):
    """Digits: empirical against held-out ELS and KDE against empirical at both ends of
    the N grid; C^alpha (``calpha_r2``: ``(N, r2)`` of each smooth net): ELS against the
    empirical score and KDE against the empirical score, per N."""
    out = []
    small = "the empirical score explains the net better than ELS (memorisation at small N)"
    ends = ((digits[0], 1, small),
            (digits[-1], -1, "ELS explains the net better than the empirical score (large N)"))
    kde = "the smoothed empirical law explains the net better than the empirical score"
    for res, sign, conjecture in ends:
        out.append(paired_r2(res["r2"], "empirical", "ELS (held-out calibrated)",
                              f"r^2 empirical minus ELS (held-out k), N={res['n']}",
                              conjecture, sign, rng, "S1"))
        out.append(paired_r2(res["r2"], "KDE", "empirical",
                              f"r^2 KDE minus empirical, digits N={res['n']}", kde, 1, rng,
                              f"S1 (h = {res['r2']['KDE']['h']:.3g})"))
    for n, r2 in calpha_r2:
        out.append(paired_r2(r2, "ELS (net-calibrated)", "empirical",
                              f"r^2 ELS (net-calibrated k) minus empirical, C^alpha N={n}",
                              "ELS explains a net on C^alpha images better than the empirical "
                              "score", 1, rng, "smooth C^alpha"))
        out.append(paired_r2(r2, "KDE", "empirical", f"r^2 KDE minus empirical, C^alpha N={n}",
                              kde, 1, rng, f"smooth C^alpha (h = {r2['KDE']['h']:.3g})"))
    return out


def _fractions(r, key):
    """``(successes, trials)`` of the memorised fraction (both nets) or of the agreement."""
    p = r["pair"]
    return (sum(p["memorised"]), 2 * p["n"]) if key == "memorised" else (p["agree"], p["n"])


def transition(digits, key="memorised"):
    """Where the memorised fraction (both nets pooled) falls, or the agreement rises,
    through 1/2, interpolated in log10 N.

    Returns
    -------
    (float, float, float)
        ``log10 N*`` and its interval from the crossings of the Wilson 95% bands
        (``nan`` where a curve does not cross inside the grid).
    """
    log_n = np.log10([r["n"] for r in digits])
    sign = 1.0 if key == "memorised" else -1.0  # a falling curve, or a rising one
    curves = [], [], []
    for r in digits:
        k, n = _fractions(r, key)
        for curve, value in zip(curves, (k / n, *wilson_ci(k, n))):
            curve.append(sign * (value - 0.5))

    def crossing(excess):
        for i in range(len(excess) - 1):
            a, b = excess[i], excess[i + 1]
            if a >= 0 > b:
                return float(log_n[i] + (log_n[i + 1] - log_n[i]) * a / (a - b))
        return float("nan")

    est, low_band, high_band = (crossing(c) for c in curves)
    # A falling curve's lower band crosses first; a rising curve's upper band does.
    low, high = (low_band, high_band) if key == "memorised" else (high_band, low_band)
    return est, low, high


def figure2_findings(digits):
    n_min = np.log10(digits[0]["n"])
    out = []
    for key, what in (("memorised", "memorised fraction falls"), ("agree", "agreement rises")):
        est, lo, hi = transition(digits, key)
        out.append(Finding(
            f"trained nets: transition N ({what} through 1/2), log10(N* / N_min)",
            "interpolated in log N; interval from the crossings of the Wilson 95% bands "
            "(nan: no crossing in the grid)", est - n_min, lo - n_min, hi - n_min,
            conjecture="memorisation at the smallest N gives way to generalisation inside "
                       "the grid", predicted_sign=1,
            detail=f"N* = {10 ** est:.3g}" if np.isfinite(est) else "no crossing in the grid"))
    first, last = digits[0]["pair"], digits[-1]["pair"]
    agree = last["agree"] / last["n"] - first["agree"] / first["n"]
    se = np.sqrt(sum((p["agree"] + 1) / (p["n"] + 2) * (1 - (p["agree"] + 1) / (p["n"] + 2))
                     / (p["n"] + 2) for p in (first, last)))
    out.append(Finding(
        f"agreement fraction, N={digits[-1]['n']} minus N={digits[0]['n']}",
        "difference of fractions, normal 95% interval (Agresti-Caffo s.e.)", agree,
        agree - 1.96 * se, agree + 1.96 * se,
        conjecture="nets on disjoint sets agree more at large N", predicted_sign=1))
    return out


def reference_findings(digits, rng):
    """DESIGN §8's reference check per N: the quality ratio of the S1 net's and S2 net's
    samples minus 1, with its bootstrap interval (0 or below: data-like)."""
    out = []
    for r in digits:
        ratio, lo, hi = quality(r["pair"], rng)
        out.append(Finding(
            f"trained nets: sample quality ratio minus 1, N={r['n']}",
            "median nearest-held-out distance of the samples over that of the S1 images, "
            "minus 1; bootstrap 95% interval", ratio - 1, lo - 1, hi - 1,
            conjecture="the nets' samples are data-like (a reference, DESIGN §8)",
            predicted_sign=-1,
            detail=f"{2 * r['pair']['n']} samples of both nets; memorised "
                   f"{sum(r['pair']['memorised'])} of them"))
    return out


def geometry_findings(by_alpha):
    """Entropy rank, perturbed minus smooth, per contour exponent and level; the Miyasawa
    gap minus the excess error per net and level. ``by_alpha``: alpha -> {variant: result}."""
    out = []
    for alpha, pair in by_alpha.items():
        for a, b in zip(pair["smooth"]["levels"], pair["perturbed"]["levels"]):
            diff, se = entropy_rank_difference(a, b)
            out.append(Finding(
                f"entropy rank of grad D, perturbed minus smooth border, C^alpha alpha={alpha:g},"
                f" s={a['s']:.3g}",
                "difference of means over held-out images, normal 95% interval", diff,
                diff - 1.96 * se, diff + 1.96 * se,
                conjecture="the perturbed border gives a slower eigenvalue decay",
                predicted_sign=1,
                detail=f"{len(a['entropy_rank'])} + {len(b['entropy_rank'])} images; smooth "
                       f"{np.mean(a['entropy_rank']):.3g}, perturbed "
                       f"{np.mean(b['entropy_rank']):.3g}; nets of "
                       f"{pair['smooth']['train']['steps']} updates"))
    for name, res in flat_calpha(by_alpha).items():
        for lev in res["levels"]:
            est, se = lev["gap_minus_excess"]
            out.append(Finding(
                f"Miyasawa gap minus excess error, {name}, s={lev['s']:.3g}",
                "mean over held-out images of (best reference's error - (sigma^2/alpha) tr "
                "grad D), normal 95% interval", est, est - 1.96 * se, est + 1.96 * se,
                conjecture="the gap is a conservative certificate of the excess error",
                predicted_sign=1,
                detail=f"gap {lev['gap'][0]:.3g}, excess {lev['excess'][0]:.3g} over "
                       f"{lev['best']}"))
    return out


def by_alpha(by_label, config):
    """alpha -> {"smooth": result, "perturbed": result} of every C^alpha cell, main alpha first."""
    variants = ("smooth", "perturbed")
    out = {config["calpha"]["alpha"]: {v: by_label[f"C^alpha {v}"] for v in variants}}
    for a in config["calpha"]["more_alphas"]["alphas"]:
        out[a] = {v: by_label[f"C^alpha {v} alpha={a:g}"] for v in variants}
    return out


def flat_calpha(by_alpha):
    """``"{variant}, alpha={a}"`` -> result, over every C^alpha net."""
    return {f"{v}, alpha={a:g}": res for a, pair in by_alpha.items() for v, res in pair.items()}


