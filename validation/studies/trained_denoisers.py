"""Study 13: trained denoisers against the closed forms, and their geometry (the seed's
Section 3.2, Figures 2 and 5).

Small bias-free, noise-conditioned UNets of ``numdiff.learn`` (docs/learn.md) are
trained here, inside the cells, on this machine; every number below is about these
nets, not quoted. Sizes and training times are in the report's first table.

* **Digits, at several N** (scikit-learn's 8x8 digits, pixels in ``[0, 1]``, N = 4, 16, 96, 700): two
  nets on disjoint, class-stratified sets S1 and S2 of size N
  (``numdiff.data.disjoint_splits``, nested in N; 397 images held out), the same
  configuration and training seed. Both run the probability-flow ODE (Heun, 24
  steps uniform in log-SNR, ``sigma / alpha`` from 10 to 0.01) from the same
  starting noise.

  - *r^2 along the net's own path* (Kamb & Ganguli's measurement): at every grid
    state of the S1 net's path, ``r^2 = 1 - |s_net - s_m|^2 / |s_net -
    mean(s_net)|^2`` per image, for the empirical score, the Wiener filter of the
    Gaussian fit to S1, the smoothed KDE of S1 (bandwidth ``h``: the noise of the
    predicted collapse, as in ``denoiser_geometry``), LS, ELS and boundary-aware ELS with the patch size ``k(t)``
    chosen per step by the best median cosine with the net (Kamb & Ganguli's
    calibration), and ELS with ``k(t)`` of least held-out denoising loss (no net).
    Per model: the median over samples of each sample's median r^2 over the path's
    steps, with a bootstrap 95% interval (a median over steps: at small noise a
    score's error grows like ``1 / sigma^2`` against its spread, so a mean over
    steps is set by the last few), and the median per step in a figure. The
    expectations (the empirical score explains the net at small N, ELS at large
    N) are *findings*: the paired difference of that statistic, empirical minus
    held-out-calibrated ELS, with a bootstrap interval; so is KDE minus empirical.
  - *Figure 2*: the memorised fraction of each net's samples (nearest / second
    nearest training distance ``< 1/3``), the *agreement* (defined here, relative
    to memorisation: a pair of samples from the same noise agrees when the two are
    closer to each other than each is to its nearest image of S1 u S2) and the
    *quality* (median distance to the nearest held-out image over that of the
    S1 images: 1 is data-like), with Wilson or bootstrap intervals. The
    transition N (the memorised fraction falling and the agreement rising through
    1/2, interpolated in log N, the interval from the Wilson bands) is a finding.
  - *The reference check* (DESIGN §8: a net is a reference once its samples are
    data-like): the quality ratio minus 1 per N is a finding, and the r^2 table
    opens by naming the N whose nets fail it (interval above 1), so that no r^2
    against an imperfect net reads as one against a reference.

* **C^alpha images** (``numdiff.data.c_alpha_images``, 16x16 by default), one net
  on smooth contours and one on contours perturbed by pixel noise, for the contour
  exponent ``alpha = 1`` and, with half the updates, ``alpha = 2`` (smoother
  contours). On held-out images at a few noise levels:

  - *eigenvalue decay*: the full spectrum of the symmetric part of ``grad D``
    (``jacobian_eigs``), scaled by ``alpha``; its entropy rank (the number of
    directions the shrinkage spreads over). The seed says the decay is slower for
    the perturbed border: the finding is the difference of mean entropy ranks,
    perturbed minus smooth, with a normal 95% interval;
  - *the Miyasawa gap* ``E|x0 - D|^2 - (sigma^2 / alpha) E tr grad D`` (0 for the
    optimal denoiser) next to the net's *excess error* over the best closed form
    available (the empirical denoiser or ELS at the held-out-best ``k``). Is the
    gap a certificate of the excess? The finding is gap minus excess (= the best
    reference's error minus the net's Miyasawa right-hand side, per image) and
    its interval: ``>= 0`` would make the gap a conservative certificate;
  - *Figure 5* (``alpha = 1``): one held-out image, its noisy version, the denoised
    image and the top eigenvectors, for the net and for ELS;
  - *r^2 along the net's own path* for smooth-border nets of ``alpha = 1`` at two
    N (400, the net above, and 50, a net trained for this alone), as for the
    digits but with fewer samples and steps and ``k`` in {3, 5}, calibrated on the
    net and on 8 held-out images (ELS costs about 0.1 s per query and patch size
    here); the findings, per N, are ELS minus empirical and KDE minus empirical.
    Their samples are not checked for quality: on these images the nearest-image
    distance cannot tell samples of a Gaussian fit from real ones
    (docs/learn.md).

* **``--full``**: the digits nets trained to reference quality (two convolutions per
  level, 20000 updates, EMA 0.999) and sampled by the reverse SDE on one Brownian
  path per pair; about 1.5 hours more than the default (docs/learn.md, "Reaching
  data quality").

**Claims** (each can fail; tests inject the bugs):

* every trained net is homogeneous, ``D(c y) = c D(y)`` for ``c`` in {0.5, 2}, and
  satisfies Euler's identity ``D(y) = J(y) y`` with JAX's Jacobian, both in float64
  to ``1e-9`` relative (achieved: about ``1e-15``; a bias of 0.01 after every
  convolution gives about ``1e-2``, the Jacobian of the wrong layer about 1); the
  exact trace of ``divergence`` equals the sum of the full spectrum of
  ``jacobian_eigs``;
* the Miyasawa gap, measured with the same code as the nets', is 0 within 4.5
  s.e. for the Wiener filter under its own Gaussian prior (the covariance of the
  smooth C^alpha training images) at every level (*theory self-check*), and a
  Wiener filter of half that covariance violates it (*negative control*).
"""

from __future__ import annotations

import numpy as np

import numdiff as nd

from ..study import Study, Summary
from .trained_findings import (
    by_alpha,
    figure2_findings,
    flat_calpha,
    geometry_findings,
    identity_claims,
    r2_findings,
    reference_findings,
    transition,
    wiener_claims,
)
from .trained_geometry import figure5_data, geometry_level, wiener_gaps
from .trained_measures import closed_form_r2, is_reference, pair_metrics
from .trained_nets import algebra_checks, level_time, reverse_path, train_net
from .trained_report import (
    CAPTIONS,
    decay_figure,
    figure2_figure,
    figure5_figure,
    geometry_table,
    miyasawa_table,
    pair_table,
    r2_figure,
    r2_table,
    training_table,
)


def _float64(trained, data=None):
    from numdiff.learn import NetworkScore

    return NetworkScore(trained, nd.OU(), data=data, dtype="float64")


def _checks(trained, held, s, rng):
    """The algebra of one net at noisy held-out images (float64)."""
    t = level_time(s)
    alpha, sigma2 = float(nd.OU().alpha(t)), float(nd.OU().sigma2(t))
    y = alpha * held + np.sqrt(sigma2) * rng.standard_normal(held.shape)
    return algebra_checks(_float64(trained), t, y)


def digits_cell(config, seed):
    """Two nets on disjoint S1, S2 of size N: Figure 2 metrics and r^2 along net 1's path."""
    from numdiff.data import digits, disjoint_splits
    from numdiff.learn import NetworkScore

    data = digits()
    images = np.asarray(data.images)
    flat = images.reshape(len(images), -1)
    s1, s2, held = disjoint_splits(len(images), config["n"], config["n_heldout"],
                                   rng=config["split_seed"], labels=data.labels)
    net1, rec1 = train_net(flat[s1], config["net"], config["train"], holdout=flat[held])
    net2, rec2 = train_net(flat[s2], config["net"], config["train"], holdout=flat[held])
    schedule = nd.OU()
    m1 = NetworkScore(net1, schedule, data=flat[s1])
    m2 = NetworkScore(net2, schedule, data=flat[s2])
    rng = np.random.default_rng(seed)
    x_T = rng.standard_normal((config["n_samples"], flat.shape[1]))
    times, states1 = reverse_path(m1, x_T, config["path"])
    _, states2 = reverse_path(m2, x_T, config["path"])
    pair = pair_metrics(states1[-1], states2[-1], flat[s1], flat[s2], flat[held])
    sub = states1[:, : config["r2"]["n_samples"]]
    net_scores = np.asarray([m1.score(t, x) for t, x in zip(times, sub)])
    r2 = closed_form_r2(net_scores, times, sub, images[s1], images[held], config["r2"], rng)
    gallery = config["gallery"]
    nearest = flat[s1][m1.nearest(states1[-1][:gallery])[0][:, 0]]
    return {"n": config["n"], "train": [rec1, rec2], "pair": pair, "r2": r2,
            "times": times, "checks": _checks(net1, flat[held][:8], 0.5, rng),
            "gallery": {"x1": states1[-1][:gallery], "x2": states2[-1][:gallery],
                        "nearest1": nearest}}


def calpha_cell(config, seed):
    """One net on C^alpha images: spectra, Miyasawa gap and excess error, Figure 5."""
    from numdiff.data import c_alpha_images
    from numdiff.learn import NetworkScore
    from numdiff.local import EquivariantLocalScore

    n_train, n_held = config["n_train"], config["n_heldout"]
    gen = c_alpha_images(n_train + n_held, config["size"], config["alpha"], config["beta"],
                         border_noise=config["border_noise"], rng=config["data_seed"])
    images = gen.images
    flat = images.reshape(len(images), -1)
    train, held = flat[:n_train], flat[n_train:]
    trained, record = train_net(train, config["net"], config["train"], holdout=held)
    schedule = nd.OU()
    model = NetworkScore(trained, schedule, data=train)
    refs = {"empirical": nd.EmpiricalScore(train, schedule)}
    for k in config["candidates"]:
        refs[f"ELS k={k}"] = EquivariantLocalScore(images[:n_train], schedule, k)
    rng = np.random.default_rng(seed)
    levels = [geometry_level(model, refs, held[: config["n_eval"]], s, config["n_spectra"], rng)
              for s in config["levels"]]
    out = {"train": record, "levels": levels, "n_train": n_train}
    if config["figure5"]:
        at_fig = min(levels, key=lambda lev: abs(np.log(lev["s"] / config["figure_level"])))
        els = {k: v for k, v in at_fig["references"].items() if k.startswith("ELS")}
        best_els = refs[min(els, key=lambda k: els[k][0])]
        out["figure5"] = figure5_data(model, best_els, held[0], at_fig["s"], rng)
        out["figure5"]["els_k"] = best_els.k
    out["checks"] = _checks(trained, held[:4], 0.3, rng)
    if config["r2"]:
        # r^2 along the net's own path, as for the digits (no held-out calibration row).
        r2 = config["r2"]
        x_T = rng.standard_normal((r2["n_samples"], flat.shape[1]))
        times, states = reverse_path(model, x_T, r2["path"])
        net_scores = np.asarray([model.score(t, x) for t, x in zip(times, states)])
        out["r2"] = closed_form_r2(net_scores, times, states, images[:n_train],
                                   images[n_train:], r2, rng)
        out["times"] = times
    return out


def wiener_cell(config, seed):
    """The Miyasawa gap of the Wiener filter under its own prior, and under a wrong one."""
    from numdiff.data import c_alpha_images

    gen = c_alpha_images(config["n_cov"], config["size"], config["alpha"], config["beta"],
                         rng=config["data_seed"])
    flat = gen.images.reshape(config["n_cov"], -1)
    cov = np.cov(flat, rowvar=False)
    rng = np.random.default_rng(seed)
    own = wiener_gaps(cov, cov, config["levels"], config["n"], rng)
    # The filter of cov / 2 applied to draws of cov: not the posterior mean there.
    wrong = wiener_gaps(cov, 0.5 * cov, config["levels"], config["n"], rng)
    return {"own": own, "wrong": wrong}


def cells(config):
    out = []
    for n in config["digits"]["n_values"]:
        cell = {k: v for k, v in config["digits"].items() if k != "n_values"}
        out.append((f"digits N={n}", digits_cell, {**cell, "n": n}))
    calpha = config["calpha"]
    base = {k: v for k, v in calpha.items()
            if k not in ("perturbed_noise", "more_alphas", "r2_more_n")}
    for variant, noise in (("smooth", 0.0), ("perturbed", calpha["perturbed_noise"])):
        out.append((f"C^alpha {variant}", calpha_cell,
                    {**base, "border_noise": noise, "figure5": True,
                     "r2": calpha["r2"] if variant == "smooth" else None}))
    more = calpha["more_alphas"]
    for a in more["alphas"]:
        for variant, noise in (("smooth", 0.0), ("perturbed", calpha["perturbed_noise"])):
            out.append((f"C^alpha {variant} alpha={a:g}", calpha_cell,
                        {**base, "alpha": a, "border_noise": noise, "train": more["train"],
                         "figure5": False, "r2": None}))
    for n in calpha["r2_more_n"]:
        # r^2 only: no spectra (no levels) and no Figure 5 for these nets.
        out.append((f"C^alpha smooth N={n}", calpha_cell,
                    {**base, "n_train": n, "border_noise": 0.0, "levels": [],
                     "figure5": False, "r2": calpha["r2"]}))
    out.append(("Wiener", wiener_cell, config["wiener"]))
    return out


def summarise(cell_results, config, outdir):
    by_label = {r.label: r.result for r in cell_results}
    digits = [by_label[f"digits N={n}"] for n in config["digits"]["n_values"]]
    per_alpha = by_alpha(by_label, config)
    calpha = per_alpha[config["calpha"]["alpha"]]  # the nets of the figures
    every_calpha = flat_calpha(per_alpha)
    smooth = calpha["smooth"]
    more_n = {f"smooth N={n}": by_label[f"C^alpha smooth N={n}"]
              for n in config["calpha"]["r2_more_n"]}
    claims = (identity_claims(digits, {**every_calpha, **more_n})
              + wiener_claims(by_label["Wiener"]))
    rng = np.random.default_rng(config["seed"])
    calpha_r2 = sorted([(r["n_train"], r["r2"]) for r in (smooth, *more_n.values())],
                       key=lambda item: item[0])
    findings = (r2_findings(digits, calpha_r2, rng)
                + figure2_findings(digits) + reference_findings(digits, rng)
                + geometry_findings(per_alpha))
    r2_columns = [(f"N={r['n']}", r["r2"]) for r in digits]
    calpha_columns = [(f"smooth, alpha={config['calpha']['alpha']:g}, N={n}", r2)
                      for n, r2 in calpha_r2]
    tables = [training_table(digits, every_calpha, config),
              "Digits.\n\n" + reference_line(digits, rng) + r2_table(r2_columns, rng),
              "C^alpha images (nets of the smooth border).\n\n" + r2_table(calpha_columns, rng),
              pair_table(digits, {key: transition(digits, key) for key in ("memorised", "agree")}),
              geometry_table(per_alpha),
              miyasawa_table(every_calpha, by_label["Wiener"])]
    figures = [r2_figure(digits, outdir), figure2_figure(digits, outdir),
               figure5_figure(calpha, outdir), decay_figure(calpha, outdir)]
    return Summary(claims, figures, tables, findings, captions=CAPTIONS)


def reference_line(digits, rng):
    """The reference check above the r^2 table: which N's nets have data-like samples."""
    ok = {r["n"]: is_reference(r["pair"], rng) for r in digits}
    passed = [n for n, good in ok.items() if good]
    failed = [n for n, good in ok.items() if not good]
    text = ("Reference check (DESIGN §8: a net is a reference once its samples are data-like, "
            "quality interval reaching 1; see the Figure 2 table): ")
    parts = [f"data-like at N = {passed}"] if passed else []
    if failed:
        parts.append(f"not data-like at N = {failed}, where the r^2 below compares the closed "
                     "forms with an imperfect net, not with a reference")
    return text + "; ".join(parts) + ".\n\n"


_NET_DIGITS = {"image_shape": [8, 8, 1], "channels": [32, 64], "blocks": 1, "padding": "zero",
               "cond_width": 64, "data_scale": 0.55, "center": False}
_NET_CALPHA = {"image_shape": [16, 16, 1], "channels": [16, 32, 32], "blocks": 1,
               "padding": "zero", "cond_width": 64, "data_scale": 0.55, "center": False}


def _train(steps, batch, eval_every):
    return {"steps": steps, "batch": batch, "lr": 2e-3, "warmup": min(200, steps // 5),
            "ema_decay": 0.998 if steps >= 1000 else 0.99, "s_min": 0.005, "s_max": 20.0,
            # Karras et al.'s law of log s: at the same updates it brought the digits
            # net's quality ratio from 1.49 to 1.43 (N = 700, docs/learn.md).
            "level_law": "log_normal", "log_mean": -1.2, "log_std": 1.2, "seed": 0,
            "eval_every": eval_every, "eval_levels": 8, "eval_size": 256, "clip": 1.0}


def _config(n_values, steps, calpha_steps, samples, r2_samples, n_eval, quick):
    path = {"s_start": 10.0, "s_end": 0.01, "steps": 12 if quick else 24}
    # r^2 on C^alpha: ELS at 16x16 with N = 400 costs about 0.1 s per query and patch size
    # on this machine, hence few samples, a short path and two candidates.
    calpha_r2 = {"n_samples": 6 if quick else 12, "candidates": [3, 5],
                 "n_calibration": 4 if quick else 8, "path": {**path, "steps": 4 if quick else 8}}
    # A second contour exponent (smoother contours), at half the updates for the budget.
    more_steps = 150 if quick else calpha_steps // 2
    return {
        "seed": 2121,
        "digits": {"n_values": n_values, "n_heldout": 397, "split_seed": 5,
                   "net": _NET_DIGITS if not quick else {**_NET_DIGITS, "channels": [16, 32]},
                   "train": _train(steps, 64, max(steps // 4, 1)), "path": path,
                   "n_samples": samples, "gallery": 8,
                   "r2": {"n_samples": r2_samples, "candidates": [1, 3, 5, 7],
                          "n_calibration": 64}},
        "calpha": {"size": 8 if quick else 16, "alpha": 1.0, "beta": 1.0, "data_seed": 11,
                   "perturbed_noise": 1.0, "n_train": 256 if quick else 400, "n_heldout": 64,
                   "net": ({**_NET_CALPHA, "image_shape": [8, 8, 1], "channels": [16, 32]}
                           if quick else _NET_CALPHA),
                   "train": _train(calpha_steps, 64, max(calpha_steps // 4, 1)),
                   "levels": [0.05, 0.2, 0.8], "figure_level": 0.2, "n_eval": n_eval,
                   "n_spectra": 8 if quick else 12, "candidates": [3, 5], "r2": calpha_r2,
                   "r2_more_n": [64] if quick else [50],
                   "more_alphas": {"alphas": [2.0],
                                   "train": _train(more_steps, 64, max(more_steps // 4, 1))}},
        "wiener": {"size": 8 if quick else 16, "alpha": 1.0, "beta": 1.0, "data_seed": 11,
                   "n_cov": 400, "n": 2000 if quick else 4000, "levels": [0.05, 0.2, 0.8]},
    }


def _reference_quality(config, steps):
    """``config`` with digits nets trained to reference quality (``--full``): two 3x3
    convolutions per level, ``steps`` updates, EMA 0.999, and the reverse SDE (8 steps
    per grid interval, one Brownian path for both nets) for the samples and the r^2
    path. docs/learn.md gives what each change bought in quality and time."""
    digits = config["digits"]
    train = {**_train(steps, 64, steps // 4), "ema_decay": 0.999}
    path = {**digits["path"], "process": "sde", "substeps": 8, "noise_seed": 17}
    return {**config, "digits": {**digits, "net": {**_NET_DIGITS, "blocks": 2},
                                 "train": train, "path": path}}


_DEFAULT = _config([4, 16, 96, 700], 2000, 2000, 128, 48, 32, quick=False)

STUDY = Study(
    name="trained_denoisers",
    title="Trained denoisers against the closed forms, and their geometry",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default=_DEFAULT,
    full=_reference_quality(_DEFAULT, 20000),
    quick=_config([8, 128], 300, 300, 64, 24, 24, quick=True),
)
