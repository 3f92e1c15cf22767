"""Study 9: the memorisation audit (`python -m numdiff.audit`) against known memorisation.

The audit (``numdiff.audit``) classes each generated sample by its nearest and
second-nearest training distances and tests the whole set with the ``C_T``
statistic of Meehan, Chaudhuri & Dasgupta (2020). It is checked here on models
whose memorisation is known, with bands of 4.5 standard errors:

* *ground truth* (data ``N(0, I_32)``, ``N = 500``): a model that copies each
  sample from a training point (plus ``N(0, 0.01^2 I)`` noise) with probability
  ``f`` and otherwise samples the law. The memorised fraction equals ``f``
  within 4.5 binomial standard errors (*theorem*); ``C_T`` flags copying: its
  z below ``-4.5`` for ``f >= 0.3`` and below the 0.05 level for ``f = 0.1``;
* *false positives*: the model that samples the law, over many seeds: the rate
  of the flag (one-sided ``C_T`` p-value below 0.05) equals 0.05 within 4.5
  binomial s.e., and so does the opposite (under-fitting) tail;
* *under-fitting*: samples of ``N(0, 1.5^2 I)``: ``C_T`` is positive, z above 4.5,
  the direction the paper predicts for a model that does not reach its data;
* *numdiff's sampler*: the reverse SDE with the exact empirical score,
  audited at a range of ``delta``, against exact samples of ``p_delta``
  (``theory.mixture.mixture_sample``) audited the same way: the memorised and
  the verbatim fractions agree at every ``delta`` (Agresti-Caffo two-proportion
  z), reproducing the memorisation curve of the other studies, and all samples
  are verbatim copies in the no-early-stopping limit (``delta = 1e-6``). The
  audit's memorised count equals that of an independent k-d tree (scipy);
* *digits 8x8* (case study): scikit-learn's digits split into a training set
  and two held-out halves; the audit of one held-out half as "samples" (a
  perfect model) is not flagged in either direction, and that of numdiff's
  sampler at a small ``delta`` is flagged (z below -4.5); a larger ``delta`` is
  reported as a finding.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

import numdiff as nd
from numdiff.audit import CLASSES, audit
from theory.mixture import mixture_sample

from ..claims import at_least, at_most, within
from ..study import Study, Summary
from .audit_report import (
    CAPTIONS,
    curve_figure,
    curve_table,
    digits_figure,
    digits_table,
    near_table,
    null_table,
    recovery_table,
)
from .common import (
    SE_BAND,
    gaussian_data,
    nearest_points,
    ou_alpha_sigma2,
    ou_steps,
    two_proportion_test,
)
from .memorization import grid_times_near, load_digits_data

VERBATIM = CLASSES.index("verbatim")


def _summary(res):
    """JSON-ready numbers of an :class:`~numdiff.audit.AuditResult`."""
    out = {"memorized": res.memorized_count, "n": res.n_samples,
           "interval": list(res.memorized_interval), "classes": res.class_counts}
    if res.c_t is not None:
        out.update(c_t=res.c_t.statistic, c_t_z=res.c_t.z, c_t_p=res.c_t.pvalue,
                   c_t_p_underfit=res.c_t.pvalue_underfit, mw_z=res.mann_whitney.z,
                   flagged=res.flagged)
    return out


def recovery_cell(config, seed):
    """The copying model at one fraction ``f``."""
    rng = np.random.default_rng(seed)
    d, n_train, n = config["d"], config["n_train"], config["n"]
    train = rng.standard_normal((n_train, d))
    holdout = rng.standard_normal((n, d))
    copied = rng.random(n) < config["fraction"]
    x = rng.standard_normal((n, d))
    k = rng.integers(n_train, size=int(copied.sum()))
    x[copied] = train[k] + config["noise"] * rng.standard_normal((k.size, d))
    res = audit(train, x, holdout, seed=seed, progress=False)
    out = _summary(res)
    out.update(copies=int(copied.sum()),
               copies_verbatim=int(np.sum(res.classes[copied] == VERBATIM)),
               novel_verbatim=int(np.sum(res.classes[~copied] == VERBATIM)))
    return out


def null_cell(config, seed):
    """The true-law model over ``config["repeats"]`` seeds: flag counts and C_T z-scores."""
    zs, flags, underfit = [], 0, 0
    for r in range(config["repeats"]):
        rng = np.random.default_rng([seed, r])
        train, holdout, x = (rng.standard_normal((config["n"], config["d"])) for _ in range(3))
        res = audit(train, x, holdout, alpha=config["alpha"], seed=r, progress=False)
        zs.append(res.c_t.z)
        flags += bool(res.flagged)
        underfit += bool(res.c_t.pvalue_underfit < config["alpha"])
    return {"flags": flags, "underfit": underfit, "z": zs}


def near_copy_cell(config, seed):
    """A model of which a fraction of samples are interpolations between two training
    points at ``lam`` in ``config["lam"]``: closer to the training set than novel points,
    yet too far between two points for the ratio test."""
    rng = np.random.default_rng(seed)
    d, n_train, n = config["d"], config["n_train"], config["n"]
    train, holdout = rng.standard_normal((n_train, d)), rng.standard_normal((n, d))
    planted = rng.random(n) < config["fraction"]
    x = rng.standard_normal((n, d))
    a = rng.integers(n_train, size=int(planted.sum()))
    b = (a + rng.integers(1, n_train, size=a.size)) % n_train  # two distinct points
    lam = rng.uniform(*config["lam"], size=a.size)[:, None]
    x[planted] = (1.0 - lam) * train[a] + lam * train[b]
    res = audit(train, x, holdout, seed=seed, progress=False)
    counts = {name: [int(np.sum(res.classes[rows] == i)) for rows in (planted, ~planted)]
              for i, name in enumerate(CLASSES)}
    out = _summary(res)
    out.update(planted=int(planted.sum()), counts=counts, n_reference=int(holdout.shape[0]),
               memorized_planted=int(np.sum(res.ratio[planted] < 1.0 / 3.0)),
               near_quantile=res.thresholds["near_quantile"])
    return out


def overdispersed_cell(config, seed):
    """Samples of ``N(0, scale^2 I)`` against training data of ``N(0, I)``."""
    rng = np.random.default_rng(seed)
    d, n = config["d"], config["n"]
    train, holdout = rng.standard_normal((config["n_train"], d)), rng.standard_normal((n, d))
    return _summary(audit(train, config["scale"] * rng.standard_normal((n, d)), holdout,
                          seed=seed, progress=False))


def _sampler(data, n, deltas, config, seed):
    """numdiff's reverse SDE from T, states saved at the grid times nearest ``deltas``."""
    schedule = nd.OU()
    steps = ou_steps(config["T"], min(deltas), config["h_lambda"])
    times = nd.grids.uniform_lambda(schedule, config["T"], min(deltas), steps)
    saved = grid_times_near(times, deltas)
    out = nd.sample(nd.EmpiricalScore(data, schedule), n, T=config["T"], delta=min(deltas),
                    steps=steps, process="sde", solver="exp_em", grid="uniform_lambda",
                    save_at=saved, rng=seed, progress=False)
    return saved, out.trajectory


def curve_cell(config, seed):
    """Audit of the sampler and of exact p_delta samples at each delta."""
    data = gaussian_data(config["n_data"], config["d"], config["data_seed"])
    rng = np.random.default_rng([seed, 1])
    holdout = rng.standard_normal((config["n_holdout"], config["d"]))
    saved, traj = _sampler(data, config["n"], config["deltas"], config, seed)
    rows = []
    for x, delta in zip(traj, saved):
        alpha, sigma2 = ou_alpha_sigma2(delta)
        exact = mixture_sample(config["n_exact"], data, alpha, sigma2, rng)
        a_s = audit(data, x, holdout, seed=seed, progress=False)
        a_e = audit(data, exact, holdout, seed=seed, progress=False)
        rows.append({
            "delta": float(delta), "sampler": _summary(a_s), "exact": _summary(a_e),
            "kdtree": int((nearest_points(x, data)[2] < 1.0 / 3.0).sum()),
        })
    return {"rows": rows}


def _digits_split(config):
    full = load_digits_data()
    perm = np.random.default_rng(config["data_seed"]).permutation(len(full))
    n_train = config["n_train"]
    rest = perm[n_train:]
    half = len(rest) // 2
    return full[perm[:n_train]], full[rest[:half]], full[rest[half:]]


def digits_cell(config, seed):
    """Digits: a held-out half as a perfect model, and numdiff's sampler at two deltas."""
    train, hold_a, hold_b = _digits_split(config)
    out = {"control": _summary(audit(train, hold_b, hold_a, seed=seed, progress=False))}
    saved, traj = _sampler(train, config["n"], config["deltas"], config, seed)
    out["sampler"] = []
    for x, delta in zip(traj, saved):
        res = audit(train, x, hold_a, seed=seed, progress=False)
        s = _summary(res)
        order = np.argsort(res.nearest_distance)[:8]
        s.update(delta=float(delta), ratio=res.ratio.tolist(),
                 gallery=[[int(i), int(res.nearest_index[i])] for i in order],
                 x=x[order].tolist())
        out["sampler"].append(s)
    return out


def cells(config):
    out = []
    for f in config["fractions"]:
        out.append((f"copying f={f}", recovery_cell, {**config["recovery"], "fraction": f}))
    out.append(("true law", null_cell, config["null"]))
    out.append(("near copies", near_copy_cell, config["near"]))
    out.append(("over-dispersed", overdispersed_cell, config["overdispersed"]))
    out.append(("sampler curve", curve_cell, config["curve"]))
    if config.get("digits") and load_digits_data() is not None:
        out.append(("digits", digits_cell, config["digits"]))
    return out


def _binomial_se(count, n):
    """Agresti-Caffo standard error of a fraction (positive even at 0 and n)."""
    q = (count + 1) / (n + 2)
    return float(np.sqrt(q * (1 - q) / (n + 2)))


def _recovery_claims(res, f):
    n = res["n"]
    se = _binomial_se(res["memorized"], n)
    claims = [within(
        f"audit's memorised fraction = copied fraction (f={f})", f, res["memorized"] / n,
        SE_BAND * se, se,
        detail=f"copying model, n={n}, {res['copies']} copies ({res['copies_verbatim']} "
               f"classed verbatim), novel samples classed verbatim: {res['novel_verbatim']}; "
               f"band {SE_BAND} binomial s.e.")]
    if f >= 0.3:
        claims.append(at_most(f"C_T flags copying: z <= -{SE_BAND} (f={f})", -SE_BAND,
                              res["c_t_z"], kind="theorem",
                              detail=f"C_T = {res['c_t']:.3g}, z = C_T / its null s.d."))
    elif f > 0:
        z_crit = float(ndtri(0.05))
        claims.append(at_most(f"C_T flags copying at level 0.05 (f={f})", z_crit, res["c_t_z"],
                              detail=f"C_T = {res['c_t']:.3g}; expected z about -5.5 at "
                                     f"n=2000 (miss probability < 1e-4)"))
    return claims


def _near_claims(res, config):
    planted, novel = res["planted"], res["n"] - res["planted"]
    near_planted, near_novel = res["counts"]["near copy"]
    se_planted = _binomial_se(near_planted, planted)
    q = res["near_quantile"]
    # The novel samples' rate is P(d1 < the q-quantile of n_reference held-out distances):
    # q up to the sampling errors of both sets.
    se_novel = float(np.sqrt(q * (1 - q) * (1 / novel + 1 / res["n_reference"])))
    lam = config["lam"]
    return [
        within("near copies classed near copy (interpolation model)", 1.0,
               near_planted / planted, SE_BAND * se_planted, se_planted,
               detail=f"{planted} samples (1-lam) x_a + lam x_b, lam in [{lam[0]}, {lam[1]}]; "
                      f"{res['memorized_planted']} of them pass the ratio test; band "
                      f"{SE_BAND} binomial s.e."),
        within("novel samples classed near copy at the near quantile", q, near_novel / novel,
               SE_BAND * se_novel, se_novel,
               detail=f"{novel} true-law samples, calibrated on {res['n_reference']} held-out "
                      f"points; s.e. from both sample sizes; band {SE_BAND} s.e."),
    ]


def _null_claims(res, config):
    reps, alpha = config["repeats"], config["alpha"]
    se = float(np.sqrt(alpha * (1 - alpha) / reps))
    z = np.asarray(res["z"])
    z_se = float(z.std(ddof=1) / np.sqrt(z.size))
    return [
        within("C_T false-positive rate = alpha (true-law model)", alpha, res["flags"] / reps,
               SE_BAND * se, se,
               detail=f"{reps} seeds, N = n = m = {config['n']}, d = {config['d']}; flag: "
                      f"one-sided C_T p-value < {alpha}; band {SE_BAND} binomial s.e."),
        within("C_T under-fitting tail rate = alpha (true-law model)", alpha,
               res["underfit"] / reps, SE_BAND * se, se,
               detail="the opposite one-sided p-value < alpha; same seeds"),
        within("C_T z has mean 0 under the null", 0.0, float(z.mean()), SE_BAND * z_se, z_se,
               detail=f"mean of {z.size} z-scores (s.d. {z.std(ddof=1):.3f}); band {SE_BAND} s.e."),
    ]


def _curve_claims(res, config):
    rows = res["rows"]
    claims = []
    for key, label in (("memorized", "memorised"), ("verbatim", "verbatim")):
        tests = []
        for row in rows:
            s, e = row["sampler"], row["exact"]
            k_s = s["memorized"] if key == "memorized" else s["classes"]["verbatim"]
            k_e = e["memorized"] if key == "memorized" else e["classes"]["verbatim"]
            tests.append(two_proportion_test(k_s, s["n"], k_e, e["n"]))
        widest = max(t.se for t in tests)
        claims.append(at_most(
            f"audit: sampler's {label} fraction = exact p_delta's at every delta, max |z|",
            SE_BAND, max(abs(t.z) for t in tests), detectable=SE_BAND,
            detail=f"Agresti-Caffo z at {len(tests)} deltas, sampler n={config['n']}, exact "
                   f"n={config['n_exact']}; a fraction bias of {SE_BAND * widest:.3f} at the "
                   "widest point"))
    last = rows[-1]
    n = last["sampler"]["n"]
    claims.append(at_least(
        f"no early stopping (delta={last['delta']:.2g}): every sample verbatim", 1.0,
        last["sampler"]["classes"]["verbatim"] / n, detectable=1.0 / n,
        detail=f"Theorem 3's limit: the uniform law on the data; n={n}; exact p_delta: "
               f"{last['exact']['classes']['verbatim']} of {last['exact']['n']} verbatim"))
    gap = max(abs(r["sampler"]["memorized"] - r["kdtree"]) for r in rows) / n
    claims.append(within(
        "audit's memorised count = independent k-d tree count, max over delta", 0.0, gap, 1.0 / n,
        detail="same samples, threshold 1/3; band one sample in n"))
    return claims


def _digits_claims(res):
    c = res["control"]
    claims = [
        at_most("digits: held-out half audited as samples is not flagged, |C_T z|", SE_BAND,
                abs(c["c_t_z"]), detectable=SE_BAND,
                detail=f"C_T = {c['c_t']:.3g}, z = {c['c_t_z']:.3g}; a perfect model"),
    ]
    small = res["sampler"][-1]
    claims.append(at_most(
        f"digits: sampler at delta={small['delta']:.2g} flagged, C_T z <= -{SE_BAND}",
        -SE_BAND, small["c_t_z"],
        detail=f"C_T = {small['c_t']:.3g}; memorised {small['memorized']} of {small['n']}"))
    return claims


def summarise(cell_results, config, outdir):
    by_label = {r.label: r.result for r in cell_results}
    claims = [c for f in config["fractions"]
              for c in _recovery_claims(by_label[f"copying f={f}"], f)]
    near, null = by_label["near copies"], by_label["true law"]
    over, curve = by_label["over-dispersed"], by_label["sampler curve"]
    claims += _near_claims(near, config["near"]) + _null_claims(null, config["null"])
    claims.append(at_least("C_T > 0 for an over-dispersed model: z >= 4.5", SE_BAND,
                           over["c_t_z"],
                           detail=f"samples of N(0, {config['overdispersed']['scale']}^2 I); "
                                  f"C_T = {over['c_t']:.3g}"))
    claims += _curve_claims(curve, config["curve"])
    tables = [recovery_table(by_label, config), near_table(near, config),
              null_table(null, over, config), curve_table(curve, config)]
    figures = [curve_figure(curve, outdir)]
    if "digits" in by_label:
        dig = by_label["digits"]
        claims.extend(_digits_claims(dig))
        tables.append(digits_table(dig, config))
        figures.append(digits_figure(dig, _digits_split(config["digits"])[0], outdir))
    elif config.get("digits"):
        tables.append("scikit-learn is not installed: the digits case study was skipped.")
    else:
        tables.append("The digits case study is not part of this configuration.")
    return Summary(claims, figures, tables, captions=CAPTIONS)


_COMMON = {"T": 8.0}


STUDY = Study(
    name="audit",
    title="The memorisation audit against known memorisation",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default={
        "seed": 3109, "fractions": [0.0, 0.1, 0.3, 0.6],
        "recovery": {"d": 32, "n_train": 500, "n": 2000, "noise": 0.01},
        "null": {"repeats": 400, "n": 300, "d": 8, "alpha": 0.05},
        "near": {"d": 32, "n_train": 500, "n": 2000, "fraction": 0.3, "lam": [0.3, 0.45]},
        "overdispersed": {"d": 8, "n_train": 500, "n": 1000, "scale": 1.5},
        "curve": {**_COMMON, "n_data": 100, "d": 8, "data_seed": 19, "n": 1000,
                  "n_exact": 4000, "n_holdout": 1000, "h_lambda": 0.025,
                  "deltas": [1.0, 0.3, 0.1, 0.03, 0.01, 1e-3, 1e-4, 1e-6]},
        "digits": {**_COMMON, "n_train": 1000, "data_seed": 23, "n": 400, "h_lambda": 0.05,
                   "deltas": [0.05, 1e-3]},
    },
    quick={
        "seed": 3109, "fractions": [0.0, 0.1, 0.3, 0.6],
        "recovery": {"d": 32, "n_train": 500, "n": 2000, "noise": 0.01},
        "null": {"repeats": 100, "n": 300, "d": 8, "alpha": 0.05},
        "near": {"d": 32, "n_train": 500, "n": 2000, "fraction": 0.3, "lam": [0.3, 0.45]},
        "overdispersed": {"d": 8, "n_train": 300, "n": 500, "scale": 1.5},
        "curve": {**_COMMON, "n_data": 50, "d": 8, "data_seed": 19, "n": 400,
                  "n_exact": 1000, "n_holdout": 400, "h_lambda": 0.05,
                  "deltas": [1.0, 0.1, 0.01, 1e-3, 1e-6]},
        "digits": {**_COMMON, "n_train": 1000, "data_seed": 23, "n": 200, "h_lambda": 0.05,
                   "deltas": [0.05, 1e-3]},
    },
)
