"""Geometry of a trained denoiser (the seed's Section 3.2 and Figure 5) for the study
``trained_denoisers``: the spectrum of the symmetric part of ``grad D`` on held-out
images, the Miyasawa gap against the excess error over the best closed form, and the
data of Figure 5 for the net and for ELS.
"""

from __future__ import annotations

import numpy as np

from .trained_measures import mean_se, miyasawa_terms
from .trained_nets import level_time


def _alpha_sigma2(schedule, t):
    return float(schedule.alpha(t)), float(schedule.sigma2(t))


def net_trace(model, t, x):
    """``tr grad_x D`` of a score model at each query, from its ``divergence``."""
    alpha, sigma2 = _alpha_sigma2(model.schedule, t)
    return (sigma2 * model.divergence(t, x) + model.dim) / alpha


def spectrum(model, t, y):
    """Eigenvalues ``alpha lambda`` of the symmetric part of ``grad D``, descending, per query.

    Scaled by ``alpha`` so that they are the shrinkage factors of the image
    ``y / alpha`` (in ``[0, 1]`` for an optimal denoiser).

    Returns
    -------
    ndarray, shape (M, d)
    """
    alpha = float(model.schedule.alpha(t))
    return np.asarray([alpha * model.jacobian_eigs(t, row, k=model.dim).eigenvalues
                       for row in y])


def entropy_rank(spec):
    """``exp(H(p))`` with ``p`` the positive eigenvalues normalised to sum 1, per row: the
    number of directions the shrinkage is spread over (a slower decay gives more)."""
    pos = np.clip(spec, 0.0, None)
    p = pos / pos.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
    return np.exp(h)


def entropy_rank_difference(smooth, perturbed):
    """Perturbed minus smooth mean entropy rank at one level, and its normal s.e.

    Parameters
    ----------
    smooth, perturbed : dict
        One level of each net (``entropy_rank``: per-image values).

    Returns
    -------
    (float, float)
    """
    ra, rb = np.asarray(smooth["entropy_rank"]), np.asarray(perturbed["entropy_rank"])
    return (float(rb.mean() - ra.mean()),
            float(np.sqrt(ra.var(ddof=1) / ra.size + rb.var(ddof=1) / rb.size)))


def geometry_level(model, references, x0, s, n_spectra, rng):
    """Miyasawa gap, excess error and spectra of ``model`` at one noise level.

    Parameters
    ----------
    model : NetworkScore
        OU schedule.
    references : dict
        Name -> closed-form model (``denoise``); the best of them (lowest mean
        error on these images) is the reference of the excess error.
    x0 : ndarray, shape (M, d)
        Held-out clean images.
    s : float
        ``sigma / alpha``.
    n_spectra : int
        Images whose full spectrum is computed.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``mse``, ``gap`` and ``excess`` (mean, s.e. per image), the reference
        errors, the chosen reference, mean spectrum and per-image entropy ranks.
    """
    t = level_time(s)
    alpha, sigma2 = _alpha_sigma2(model.schedule, t)
    y = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal(x0.shape)
    err, rhs = miyasawa_terms(x0, model.denoise(t, y), net_trace(model, t, y), alpha, sigma2)
    ref_err = {name: np.sum((x0 - ref.denoise(t, y)) ** 2, axis=1)
               for name, ref in references.items()}
    best = min(ref_err, key=lambda name: ref_err[name].mean())
    spec = spectrum(model, t, y[:n_spectra])
    return {"s": s, "t": t, "mse": mean_se(err), "rhs": mean_se(rhs), "gap": mean_se(err - rhs),
            "excess": mean_se(err - ref_err[best]), "best": best,
            "gap_minus_excess": mean_se(ref_err[best] - rhs),
            "references": {name: mean_se(e) for name, e in ref_err.items()},
            "mean_spectrum": spec.mean(axis=0), "entropy_rank": entropy_rank(spec),
            "lowest_eig": float(spec.min())}


def fd_jacobian(model, t, y, h=1e-4):
    """``grad D`` of a closed-form model at one query by central differences, shape (d, d)."""
    d = y.size
    steps = h * np.eye(d)
    both = model.denoise(t, np.concatenate([y + steps, y - steps]))
    return ((both[:d] - both[d:]) / (2 * h)).T


def figure5_data(model, els, x0, s, rng, top=4):
    """Figure 5 for one image: clean, noisy, denoised and top eigenvectors, net and ELS.

    Parameters
    ----------
    model : NetworkScore
    els : closed-form model
        ELS at its held-out-optimal patch size for this level.
    x0 : ndarray, shape (d,)
    s : float
    rng : numpy.random.Generator
    top : int

    Returns
    -------
    dict
    """
    t = level_time(s)
    alpha, sigma2 = _alpha_sigma2(model.schedule, t)
    y = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal(x0.size)
    eig = model.jacobian_eigs(t, y, k=top)
    jac = fd_jacobian(els, t, y)
    vals, vecs = np.linalg.eigh(0.5 * (jac + jac.T))
    order = np.argsort(vals)[::-1][:top]
    return {"s": s, "clean": x0, "noisy": y / alpha,
            "net": {"denoised": model.denoise(t, y[None])[0], "values": alpha * eig.eigenvalues,
                    "vectors": eig.eigenvectors.T},
            "ELS": {"denoised": els.denoise(t, y[None])[0], "values": alpha * vals[order],
                    "vectors": vecs[:, order].T}}


def wiener_trace(cov, alpha, sigma2):
    """``tr grad D`` of the Wiener denoiser (``theory.denoisers``), the same at every query."""
    from theory.denoisers import gaussian_denoiser_jacobian

    return float(np.trace(gaussian_denoiser_jacobian(cov, alpha, sigma2)))


def wiener_gaps(prior_cov, filter_cov, levels, n, rng):
    """Miyasawa gap of the Wiener denoiser of ``N(0, filter_cov)`` on draws of
    ``N(0, prior_cov)`` at each level.

    With ``filter_cov = prior_cov`` it is the optimal denoiser, so the gap's mean is
    0 exactly; the same :func:`miyasawa_terms` measure the nets' gaps.

    Returns
    -------
    list of dict
        Per level: ``s``, the gap's mean and s.e., ``z``.
    """
    from theory.denoisers import gaussian_denoiser, gaussian_sample

    mean = np.zeros(prior_cov.shape[0])
    rows = []
    for s in levels:
        t = level_time(s)
        alpha, sigma2 = float(np.exp(-t)), float(-np.expm1(-2 * t))
        x0 = gaussian_sample(n, mean, prior_cov, rng)
        y = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal(x0.shape)
        denoised = gaussian_denoiser(y, mean, filter_cov, alpha, sigma2)
        trace = np.full(n, wiener_trace(filter_cov, alpha, sigma2))
        err, rhs = miyasawa_terms(x0, denoised, trace, alpha, sigma2)
        gap, se = mean_se(err - rhs)
        rows.append({"s": s, "gap": gap, "se": se, "z": gap / se, "mse": float(err.mean())})
    return rows
