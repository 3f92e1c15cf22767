"""Study: memorisation to generalisation with N, for exact closed-form image scores
(seed Figure 2, Section 3.2), and the speciation time.

Two disjoint training sets S1, S2 of size N (``numdiff.data.disjoint_splits``, nested
in N, stratified by class) and a held-out set. For each N and each model (the
empirical score; Kamb & Ganguli's local score LS, equivariant local score ELS with
both k(t) calibrations, the boundary-aware ELS; Lukoianov et al.'s PCA-locality)
S1's and S2's models sample from the same initial noise by the reverse
probability-flow ODE (DDIM, deterministic, grid uniform in ``lambda``), followed by
the model's own denoiser at ``delta``. Measured per N and model, with 95% Wilson
intervals over the pairs (conditional on the training sets):

* the *memorised* fraction: the audit's rule, nearest / second-nearest training
  distance below 1/3, against the sample's own training set; the study's N start at 2
  because the rule needs a second-nearest image;
* the distance to the nearest training image, beside a held-out image's;
* *agreement*, defined relative to memorisation: a pair agrees when the two samples
  are closer to each other than either is to any training image of S1 or S2. Two
  copies of different training images never agree, however similar those images are
  (paired cosine similarity grows with N for the empirical score, whose samples are
  all copies), and two equal novel images always do;
* *quality*: the fraction of samples whose distance to a held-out reference set is
  within the 95% quantile of real held-out images' distances to it, and the top
  probability of a logistic regression trained on other held-out real images. A
  texture that both models agree on fails here.

A pair *generalises* when it agrees, neither sample is memorised, and both are of data
quality by both measures (within the distance quantile, and a classifier top
probability at least the 10% quantile of the real images'). The transition N of each model and dataset (the generalising fraction
crossing 1/2, interpolated in log N, with a bootstrap interval over pairs) is a
finding. The patch size k(t) of LS, ELS and boundary ELS is calibrated per N on S1
and shared by S2's model: by the held-out denoising loss, and, for ELS also, by
Kamb & Ganguli's rule against a reference model's reverse path, the reference here
being the empirical score of S1 (it memorises, so the rule picks the patch size
nearest to copying: trained networks as references come with the learn studies).

Theorem claims (each able to fail, tests inject bugs): LS with a window covering the
image equals the empirical denoiser, LS with N = 1 returns the training image, ELS
with k = 1 is the per-pixel one-dimensional mixture over all training pixel values,
ELS is equivariant to circular shifts, ELS and boundary ELS equal the dense float64
reference of ``theory.local_scores``; and the sample law of LS with the covering
window equals the empirical score's (memorised fraction and mean nearest distance,
independent starts, bands of 4.5 s.e.).

Speciation (Biroli, Bonnaire, de Bortoli & Mezard 2024): cloned reverse SDE paths,
the probability that both clones end in the same class against the clone time,
compared with ``t_S`` of ``theory.speciation`` for the empirical score and ELS; a
finding, not a claim (see its detail).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

import numdiff as nd
from numdiff.local import BoundaryAwareELS, EquivariantLocalScore, LocalScore
from theory import local_scores as oracle

from ..claims import Finding, at_most, within
from ..report import markdown_table
from ..study import Study, Summary
from . import generalisation_report as rep
from .common import SE_BAND, nearest_points, two_proportion_test
from .generalisation_models import (
    MODELS,
    build_models,
    calibration_times,
    flat,
    generalising,
    load,
    measure,
    paired_samples,
    reference_levels,
    sample,
    split,
)
from .generalisation_speciation import speciation_cell, speciation_figure, speciation_findings

# -- cells --------------------------------------------------------------------------------


def pair_cell(config, seed):
    """One model at one N: calibrate k(t) on S1, sample pairs, measure them."""
    sp = split(config, config["n"])
    m1, m2, k = build_models(config["model"], sp, config, seed)
    a, b = paired_samples(m1, m2, config)
    levels, clf = reference_levels(sp)
    nearest = nearest_points(a[:1], flat(sp.s1))[0][0]
    return {"measures": measure(a, b, sp, clf, levels), "levels": levels,
            "gallery": [a[0].tolist(), b[0].tolist(), flat(sp.s1)[nearest].tolist()],
            "k": None if k is None else [int(v) for v in k.sizes],
            "k_times": calibration_times(config).tolist()}


def _noisy(images, t, rng):
    alpha, sigma2 = float(nd.OU().alpha(t)), float(nd.OU().sigma2(t))
    return alpha * images + np.sqrt(sigma2) * rng.standard_normal(images.shape), alpha, sigma2


def _mixture_1d(x, values, alpha, sigma2):
    """The empirical denoiser in dimension 1, per coordinate of ``x``: keys ``values``."""
    logits = -((x.reshape(-1, 1) - alpha * values[None, :]) ** 2) / (2.0 * sigma2)
    w = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    return (w @ values).reshape(x.shape)


def identity_cell(config, seed):
    """Largest deviations of the model identities, over the configured times."""
    data = load("digits").images
    rng = np.random.default_rng(seed)
    train = data[rng.choice(len(data), config["n"], replace=False)]
    queries = data[rng.choice(len(data), config["queries"], replace=False)]
    schedule, (h, w) = nd.OU(), train.shape[1:3]
    cover = 2 * max(h, w) - 1
    empirical = nd.EmpiricalScore(flat(train), schedule)
    one = LocalScore(train[:1], schedule, 3)
    els1 = EquivariantLocalScore(train, schedule, 1)
    out = {key: 0.0 for key in ("ls_cover", "ls_one", "els_k1", "shift", "els_oracle",
                                "boundary_oracle")}
    ls = LocalScore(train, schedule, cover)
    for t in config["times"]:
        x, alpha, sigma2 = _noisy(queries, t, rng)
        xf = flat(x)

        def dev(key, got, want):
            out[key] = max(out[key], float(np.max(np.abs(got - want))))

        dev("ls_cover", ls.denoise(t, xf), empirical.denoise(t, xf))
        dev("ls_one", one.denoise(t, xf), np.broadcast_to(flat(train[:1]), xf.shape))
        dev("els_k1", els1.denoise(t, xf), _mixture_1d(xf, train.ravel(), alpha, sigma2))
        for k in config["shift_k"]:
            for padding in ("valid", "circular"):
                els = EquivariantLocalScore(train, schedule, k, train_padding=padding)
                base = els.denoise(t, xf).reshape(x.shape)
                for di, dj in config["shifts"]:
                    rolled = flat(np.roll(x, (di, dj), axis=(1, 2)))
                    dev("shift", els.denoise(t, rolled),
                        flat(np.roll(base, (di, dj), axis=(1, 2))))
        k = config["oracle_k"]
        dev("els_oracle", EquivariantLocalScore(train, schedule, k).denoise(t, xf),
            flat(oracle.els_denoise(train, x, alpha, sigma2, k)))
        dev("boundary_oracle", BoundaryAwareELS(train, schedule, k).denoise(t, xf),
            flat(oracle.boundary_els_denoise(train, x, alpha, sigma2, k)))
    return out


def law_cell(config, seed):
    """LS with the covering window and the empirical score, independent starts."""
    sp = split(config, config["n"])
    schedule = nd.OU()
    cover = 2 * max(sp.s1.shape[1:3]) - 1
    out = {}
    for j, (name, model) in enumerate((("empirical", nd.EmpiricalScore(flat(sp.s1), schedule)),
                                       ("LS", LocalScore(sp.s1, schedule, cover)))):
        x_T = np.random.default_rng([seed, j]).standard_normal((config["samples"], model.dim))
        x = sample(model, x_T, config)
        _, dist, ratio = nearest_points(x, flat(sp.s1))
        out[name] = {"memorised": int((ratio < 1.0 / 3.0).sum()), "n": len(x),
                     "nearest": dist.tolist()}
    return out


def cells(config):
    out = [("identities", identity_cell, config["identities"]),
           ("LS law", law_cell, config["law"])]
    for dataset in config["datasets"]:
        for n in dataset["sizes"]:
            for model in dataset["models"]:
                if n <= dataset.get("max_n", {}).get(model, n):
                    base = {k: v for k, v in dataset.items()
                            if k not in ("sizes", "models", "max_n")}
                    out.append((f"{dataset['dataset']} N={n} {model}", pair_cell,
                                {**base, "n": n, "model": model}))
    for sp in config["speciation"]:
        for model in sp["models"]:
            out.append((f"speciation {sp['dataset']} {model}", speciation_cell,
                        {**{k: v for k, v in sp.items() if k != "models"}, "model": model}))
    return out


# -- claims and findings ------------------------------------------------------------------

IDENTITIES = {
    "ls_cover": "LS with a covering window (k = 2 max(H, W) - 1) = empirical denoiser",
    "ls_one": "LS with N = 1 returns the training image",
    "els_k1": "ELS with k = 1 = per-pixel 1-D mixture over all training pixels",
    "shift": "ELS commutes with circular shifts (valid and circular keys)",
    "els_oracle": "ELS = dense float64 reference (theory.local_scores)",
    "boundary_oracle": "boundary ELS = dense float64 reference (theory.local_scores)",
}


def identity_claims(res, config):
    tol = config["tolerance"]
    return [at_most(f"identity: {text}, max |difference|", tol, res[key], detectable=tol,
                    detail=f"digits, N = {config['n']}, {config['queries']} noisy queries at "
                           f"t in {config['times']}; exact in exact arithmetic; tolerance "
                           f"{tol:g} on pixel values in [0, 1]")
            for key, text in IDENTITIES.items()]


def law_claims(res, config):
    e, s = res["empirical"], res["LS"]
    test = two_proportion_test(s["memorised"], s["n"], e["memorised"], e["n"])
    de, ds = np.asarray(e["nearest"]), np.asarray(s["nearest"])
    se = float(np.sqrt(de.var(ddof=1) / de.size + ds.var(ddof=1) / ds.size))
    where = (f"digits, N = {config['n']}, {e['n']} samples each from independent starts, "
             f"ODE DDIM {config['steps']} steps to delta = {config['delta']:g}")
    return [
        within("LS (covering k) memorised fraction = empirical score's", e["memorised"] / e["n"],
               s["memorised"] / s["n"], SE_BAND * test.se, test.se,
               detail=f"{where}; band {SE_BAND} Agresti-Caffo s.e."),
        within("LS (covering k) mean nearest distance = empirical score's", float(de.mean()),
               float(ds.mean()), SE_BAND * se, se, detail=f"{where}; band {SE_BAND} s.e."),
    ]


def transition(gen, sizes, rng, resamples=2000):
    """``N*`` where the generalising fraction first reaches 1/2 (log-N interpolation),
    ``inf`` if never; and a 95% bootstrap interval (pairs resampled per N)."""
    def crossing(g):
        above = np.flatnonzero(g >= 0.5)
        if above.size == 0:
            return np.inf
        i = above[0]
        if i == 0:
            return float(sizes[0])
        w = (0.5 - g[i - 1]) / (g[i] - g[i - 1])
        return float(np.exp((1 - w) * np.log(sizes[i - 1]) + w * np.log(sizes[i])))

    counts = np.array([g.size for g in gen])
    est = np.array([g.mean() for g in gen])
    boot = [crossing(rng.binomial(counts, est) / counts) for _ in range(resamples)]
    lo, hi = np.quantile(boot, [0.025, 0.975], method="inverted_cdf")
    return crossing(est), float(lo), float(hi)


def transition_findings(cells_, dataset, seed):
    findings, rows = [], []
    sizes_all = dataset["sizes"]
    for name in MODELS:
        sizes = [n for n in sizes_all if (name, n) in cells_]
        if len(sizes) < 2:
            continue
        gen = [generalising(cells_[(name, n)]["measures"], cells_[(name, n)]["levels"])
               for n in sizes]
        est, lo, hi = transition(gen, np.asarray(sizes, float), np.random.default_rng(seed))
        top = sizes[-1]
        never = name == "empirical"
        rows.append((name, est, f"[{lo:.3g}, {hi:.3g}]", max(g.mean() for g in gen)))
        findings.append(Finding(
            f"transition N, {dataset['dataset']}, {name}",
            "log10(N* / N_max), N* where the generalising fraction (agree, novel, data "
            "quality) first reaches 1/2, log-N interpolation; 95% bootstrap over pairs",
            np.log10(est / top), np.log10(lo / top), np.log10(hi / top),
            conjecture=("the empirical score never generalises (N* beyond every N)" if never
                        else "the model generalises within the range of N run (seed Figure 2)"),
            predicted_sign=1 if never else -1,
            detail=f"N* = {est:.3g} [{lo:.3g}, {hi:.3g}] (inf: never reached), N_max = {top}, "
                   f"largest generalising fraction {max(g.mean() for g in gen):.2f}"))
    table = (f"{dataset['dataset']}: transition N* (generalising fraction reaches 1/2), 95% "
             "bootstrap interval; inf = not reached by the largest N.\n\n"
             + markdown_table(("model", "N*", "95% interval", "max generalising"), rows))
    return findings, table


def summarise(cell_results, config, outdir):
    by_label = {r.label: r.result for r in cell_results}
    claims = identity_claims(by_label["identities"], config["identities"])
    claims += law_claims(by_label["LS law"], config["law"])
    tables, figures, findings, captions = [], [], [], {}
    for dataset in config["datasets"]:
        name = dataset["dataset"]
        cells_ = {(r.config["model"], r.config["n"]): r.result for r in cell_results
                  if r.label.startswith(f"{name} N=")}
        sizes = dataset["sizes"]
        levels = next(iter(cells_.values()))["levels"]
        shape = load(name).images.shape[1:]
        tables += [rep.model_table(cells_, name, sizes), rep.reference_text(levels, name),
                   rep.schedule_table(cells_, sizes)]
        found, table = transition_findings(cells_, dataset, config["seed"])
        findings += found
        tables.append(table)
        for kind, fig in (("grid", rep.grid_figure(cells_, name, sizes, shape, outdir)),
                          ("vs_n", rep.vs_n_figure(cells_, name, sizes, outdir)),
                          ("quality", rep.quality_figure(cells_, levels, name, sizes, outdir))):
            figures.append(fig)
            captions[fig.stem] = rep.caption(kind, name)
    for sp in config["speciation"]:
        results = {m: by_label[f"speciation {sp['dataset']} {m}"] for m in sp["models"]}
        found, table = speciation_findings(results, {**sp, "seed": config["seed"]})
        findings += found
        tables.append(table)
        fig = speciation_figure(results, outdir, f"generalisation_speciation_{sp['dataset']}",
                                sp["dataset"])
        figures.append(fig)
        captions[fig.stem] = rep.caption("speciation", sp["dataset"])
    return Summary(claims, figures, tables, findings, captions)


# -- registration -------------------------------------------------------------------------

_SAMPLING = {"T": 5.0, "delta": 1e-3, "noise_seed": 11, "n_calibration": 8,
             "n_calibration_images": 32, "pca_threshold": 0.02}
_DIGITS = {**_SAMPLING, "dataset": "digits", "n_heldout": 397, "data_seed": 5,
           "candidates": [1, 3, 5, 7]}
_MNIST = {**_SAMPLING, "dataset": "mnist5k", "n_heldout": 1000, "data_seed": 5,
          "candidates": [3, 5, 7, 9]}

# An ELS call on 28x28 is M H W query patches against N P training patches
# (repeated patches merged): the equivariant models stop at N = 100 (Kamb's
# calibration at 10), LS and PCA-locality (784 small softmax averages per
# call) at 1000, within the budget (docs/validation.md).
_MNIST_DEFAULT = {**_MNIST, "sizes": [2, 10, 100, 1000, 2000],
                  "models": ["empirical", "LS", "ELS held-out k", "ELS reference k",
                             "boundary ELS", "PCA-locality"],
                  "max_n": {"ELS held-out k": 100, "ELS reference k": 10, "boundary ELS": 100,
                            "LS": 1000, "PCA-locality": 1000}, "pairs": 20, "steps": 20,
                  "n_calibration": 6, "n_calibration_images": 8}
# The whole range (--full): every model to N = 2000 on MNIST. An ELS cell at
# N = 1000 costs about 10x the 84.5 s of N = 100 on this machine, so the full profile
# takes hours on 2 cores; Dask (--workers, --scheduler) spreads its cells.
_MNIST_FULL = {**_MNIST_DEFAULT, "max_n": {}}


_DEFAULT = {
    "seed": 2020,
    "identities": {"n": 40, "queries": 6, "times": [0.02, 0.3, 2.0], "shift_k": [3, 5],
                   "shifts": [[1, 0], [0, 3], [5, 2]], "oracle_k": 3, "tolerance": 1e-12},
    "law": {**_DIGITS, "n": 30, "samples": 600, "steps": 24, "delta": 0.2},
    "datasets": [
        {**_DIGITS, "sizes": [2, 5, 10, 30, 100, 300, 700], "models": list(MODELS),
         "pairs": 40, "steps": 24},
        _MNIST_DEFAULT,
    ],
    "speciation": [
        {**_DIGITS, "n_train": 300, "models": ["empirical", "ELS held-out k"],
         "trajectories": 100, "sde_steps": 60, "steps": 24,
         "clone_times": [0.03, 0.06, 0.12, 0.25, 0.5, 1.0, 2.0]},
        # MNIST's top eigenvalue (about 5) is where the large-d formula applies; the
        # empirical score only (an ELS on 28x28 is too slow for the clones).
        {**_MNIST, "n_train": 1000, "models": ["empirical"], "trajectories": 200,
         "sde_steps": 60, "steps": 20,
         "clone_times": [0.06, 0.12, 0.25, 0.5, 0.8, 1.2, 2.0]},
    ],
}

STUDY = Study(
    name="generalisation",
    title="Memorisation to generalisation with N: exact local scores (seed Figure 2)",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default=_DEFAULT,
    full={**_DEFAULT, "datasets": [_DEFAULT["datasets"][0], _MNIST_FULL]},
    quick={
        "seed": 2020,
        "identities": {"n": 20, "queries": 3, "times": [0.02, 1.0], "shift_k": [3],
                       "shifts": [[1, 0], [3, 5]], "oracle_k": 3, "tolerance": 1e-12},
        "law": {**_DIGITS, "n": 30, "samples": 200, "steps": 12, "delta": 0.2},
        "datasets": [
            {**_DIGITS, "sizes": [2, 30, 300], "models": list(MODELS), "pairs": 16,
             "steps": 12, "n_calibration": 4, "n_calibration_images": 12},
        ],
        "speciation": [
            {**_DIGITS, "n_train": 100, "models": ["empirical", "ELS held-out k"],
             "trajectories": 40, "sde_steps": 30, "steps": 12, "n_calibration": 4,
             "n_calibration_images": 12, "clone_times": [0.05, 0.2, 0.8, 2.0]},
        ],
    },
)
