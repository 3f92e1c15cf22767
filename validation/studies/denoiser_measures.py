"""Measurements of the denoiser-geometry study: data, the Tweedie identity, Jacobian spectra.

The data families and their held-out draws, the paired Monte Carlo estimate of
the Miyasawa / Tweedie identity for the empirical and Wiener denoisers, and the
eigenvalue spectra and effective ranks of ``grad D`` for the empirical, Wiener and
smoothed-KDE denoisers. See the ``denoiser_geometry`` study for the protocol.
"""

from __future__ import annotations

import numpy as np

from theory.denoisers import (
    entropy_rank,
    gaussian_denoiser,
    gaussian_denoiser_eigs,
    gaussian_sample,
    kde_denoiser_jacobian,
    trace_rank,
)
from theory.identities import tweedie_gaussian
from theory.memorization import collapse_snr

from .common import gaussian_data
from .memorization import load_digits_data

EPS = float(np.finfo(np.float64).eps)
#: A level enters the identity's claim when the empirical denoiser's error exceeds this
#: fraction of ``E|X_0|^2``. Below it the error is exponentially small (the posterior sits
#: on one training point) and ``|X_0 - D|^2`` and the right-hand side are rounding
#: (relative ``~1e-15``), whose bias the standard error does not cover.
RESOLVED = 1e-9
#: ... and when both sides are carried by at least this many samples (:func:`carriers`),
#: so that their means are near normal and the 4.5 s.e. band means what it says.
MIN_CARRIERS = 20


# -- data and priors ------------------------------------------------------------------------------


def family_data(fam):
    """Training set, held-out pool (digits) and the Gaussian prior of one data family.

    ``fam``: ``{"family": "gaussian", "d", "n_data", "data_seed"}`` or
    ``{"family": "digits", "n_data", "data_seed"}``.

    Returns
    -------
    dict
        ``train`` (N, d); ``held`` (digits: the held-out images; gaussian: None,
        fresh draws of ``N(0, I)`` are used); ``mean``, ``cov`` of the Gaussian
        prior (the data's law, or the fit to the training digits, 1/N covariance);
        ``data_var`` (mean variance per coordinate) and the KDE bandwidth ``h``.
    """
    if fam["family"] == "digits":
        full = load_digits_data()
        perm = np.random.default_rng(fam["data_seed"]).permutation(len(full))
        train, held = full[perm[: fam["n_data"]]], full[perm[fam["n_data"]:]]
        mean = train.mean(axis=0)
        cov = (train - mean).T @ (train - mean) / len(train)
    else:
        d = fam["d"]
        train, held = gaussian_data(fam["n_data"], d, fam["data_seed"]), None
        mean, cov = np.zeros(d), np.eye(d)
    data_var = float(np.trace(cov) / cov.shape[0])
    n_data, d = train.shape
    h = float(1.0 / np.sqrt(collapse_snr(n_data, d, data_var)))
    return {"train": train, "held": held, "mean": mean, "cov": cov, "data_var": data_var,
            "h": h}


def held_out_draws(data, n, rng):
    """``n`` draws of ``X_0`` from the true law, never the training set: fresh
    ``N(0, I)`` for Gaussian data, held-out images (with replacement) for the digits."""
    if data["held"] is None:
        return rng.standard_normal((n, data["train"].shape[1]))
    return data["held"][rng.integers(len(data["held"]), size=n)]


def ou_time(snr):
    """OU time with ``alpha^2 / sigma^2 = snr``: ``t = log(1 + 1 / snr) / 2``."""
    return float(0.5 * np.log1p(1.0 / snr))


# -- the identity ----------------------------------------------------------------------------------


def identity_terms(x0, denoised, trace, alpha, sigma2):
    """Per-sample sides of Tweedie's identity: ``|x0 - D|^2`` and ``(sigma2 / alpha) tr grad D``."""
    err = np.sum((x0 - denoised) ** 2, axis=1)
    return err, sigma2 / alpha * trace


def _paired(err, rhs):
    """Mean and s.e. of both sides and of their paired difference."""
    q = err - rhs
    n = len(q)

    def se(v):
        return float(np.std(v, ddof=1) / np.sqrt(n))

    mean_q, se_q = float(q.mean()), se(q)
    z = mean_q / se_q if se_q > 0 else (0.0 if mean_q == 0 else float(np.sign(mean_q) * np.inf))
    return {"n": n, "mse": float(err.mean()), "mse_se": se(err), "rhs": float(rhs.mean()),
            "rhs_se": se(rhs), "diff": mean_q, "diff_se": se_q, "z": float(z)}


def carriers(values):
    """How many of the largest samples carry half of the sum of ``values >= 0``.

    Below the collapse the error is a rare event (the posterior picks the wrong
    training point with a small probability): its mean is carried by a few samples
    and neither it nor its standard error is close to normal.
    """
    v = np.sort(np.abs(values))[::-1]
    total = v.sum()
    if total == 0:
        return 0
    return int(np.searchsorted(np.cumsum(v), 0.5 * total) + 1)


def numdiff_traces(score, t, x):
    """``tr grad D`` at each query from numdiff's ``divergence``: ``div s = (alpha tr grad D
    - d) / sigma2``, so ``tr grad D = (sigma2 div s + d) / alpha`` (``O(N d)`` per query).

    The addition of ``d`` costs an absolute error of a few ``eps d`` in ``alpha tr grad
    D``, a few ``eps d sigma2 / alpha^2`` in the identity's right-hand side: far below
    the error at every level the claim counts (see :data:`RESOLVED`).
    """
    alpha, sigma2 = float(score.schedule.alpha(t)), float(score.schedule.sigma2(t))
    return (sigma2 * score.divergence(t, x) + score.dim) / alpha


def empirical_identity(score, x0, t, alpha, sigma2, rng):
    xt = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal(x0.shape)
    trace = numdiff_traces(score, t, xt)
    res = _paired(*identity_terms(x0, score.denoise(t, xt), trace, alpha, sigma2))
    # Degrees of freedom alpha tr grad D under this law; the scale E|x0|^2 that decides
    # whether the error is resolved in float64.
    dof = alpha * trace
    res["dof"], res["dof_se"] = float(dof.mean()), float(dof.std(ddof=1) / np.sqrt(len(dof)))
    res["scale"] = float(np.mean(np.sum(x0 * x0, axis=1)))
    err = np.sum((x0 - score.denoise(t, xt)) ** 2, axis=1)
    res["carriers"] = min(carriers(err), carriers(trace))
    res["resolved"] = bool(res["mse"] > RESOLVED * res["scale"]
                           and res["carriers"] >= MIN_CARRIERS)
    return res


def wiener_identity(data, n, alpha, sigma2, rng):
    x0 = gaussian_sample(n, data["mean"], data["cov"], rng)
    xt = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal(x0.shape)
    lam, _ = gaussian_denoiser_eigs(data["cov"], alpha, sigma2)
    denoised = gaussian_denoiser(xt, data["mean"], data["cov"], alpha, sigma2)
    res = _paired(*identity_terms(x0, denoised, np.full(n, lam.sum()), alpha, sigma2))
    # Closed form of the error from the prior's eigenvalues (rotation invariant); it is
    # the right-hand side, a constant here.
    var = np.clip(np.linalg.eigvalsh(data["cov"]), 0.0, None)
    res["mse_exact"] = tweedie_gaussian(var, alpha, sigma2)[0]
    return res


# -- spectra ---------------------------------------------------------------------------------------


def rank_stats(spectra, alpha):
    """Mean and s.e. of both effective ranks over queries, and the mean sorted spectrum."""
    spectra = np.sort(np.clip(spectra, 0.0, None), axis=1)[:, ::-1]
    out = {}
    for name, vals in (("trace", trace_rank(spectra, alpha)), ("entropy", entropy_rank(spectra))):
        out[name] = float(vals.mean())
        out[name + "_median"] = float(np.median(vals))
        out[name + "_se"] = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else 0.0
    out["spectrum"] = (alpha * spectra.mean(axis=0)).tolist()
    return out


def spectra(score, data, t, alpha, sigma2, n, rng):
    """Spectra of the three denoisers' Jacobians at ``n`` noisy held-out points."""
    y = held_out_draws(data, n, rng)
    xt = alpha * y + np.sqrt(sigma2) * rng.standard_normal(y.shape)
    jac = score.jacobian(t, xt)
    reference = kde_denoiser_jacobian(xt, data["train"], 0.0, alpha, sigma2)
    train = data["train"]
    radius = float(np.sqrt(np.max(np.sum((train - train.mean(axis=0)) ** 2, axis=1))))
    scale = alpha * radius**2 / sigma2
    kde = kde_denoiser_jacobian(xt, train, data["h"], alpha, sigma2)
    lam_gauss, _ = gaussian_denoiser_eigs(data["cov"], alpha, sigma2)
    return {
        "empirical": rank_stats(np.linalg.eigvalsh(jac), alpha),
        "gaussian": rank_stats(lam_gauss[None, :], alpha),
        "kde": rank_stats(np.linalg.eigvalsh(kde), alpha),
        "jacobian_error": float(np.max(np.abs(jac - reference)) / scale),
    }
