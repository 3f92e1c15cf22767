"""Closed-form predictions for numdiff, written independently of its kernels.

numpy / scipy only (mpmath in the tests): this package is the oracle the compute
core and its samplers are checked against, so it never calls numdiff's score
kernels or solvers. A numdiff schedule may be passed as a description of the
forward process; only its ``alpha(t)`` and ``sigma2(t)`` methods are used.

Modules
-------
mixture       the diffused empirical law (Gaussian mixture): density, score,
              denoiser, exact samples, moments
horizons      Theorem 3 of Li, Chen & Li (2024): horizons and KL / TV prior bounds
tv            total variation from two log-densities: Monte Carlo and 1-D quadrature
flows         exact probability-flow and reverse-SDE maps for Gaussian data
identities    the Miyasawa / Tweedie identity for Gaussian data
denoisers     Wiener and smoothed-KDE denoisers and their Jacobians; effective ranks
memorization  collapse SNR and time of Biroli, Bonnaire, de Bortoli & Mezard (2024)
score_matching  Theorems 1 and 2 (implicit / denoising score matching) as identities:
              Gaussian closed forms, 1-D quadrature under a Gaussian mixture
"""

from theory.denoisers import (
    entropy_rank,
    gaussian_denoiser,
    gaussian_denoiser_eigs,
    gaussian_denoiser_jacobian,
    gaussian_sample,
    kde_denoiser,
    kde_denoiser_jacobian,
    kde_sample,
    trace_rank,
)
from theory.flows import gaussian_marginal, gaussian_pf_flow, gaussian_reverse_transition
from theory.horizons import kl_prior_bound, theorem3_delta, theorem3_T, tv_prior_bound
from theory.identities import tweedie_gaussian
from theory.memorization import collapse_snr, collapse_time
from theory.mixture import (
    mixture_cov,
    mixture_denoise,
    mixture_logpdf,
    mixture_mean,
    mixture_sample,
    mixture_score,
    mixture_second_moment,
)
from theory.score_matching import (
    ScoreMatchingLosses,
    fisher_information_1d,
    gaussian_score_matching,
    score_matching_1d,
)
from theory.tv import tv_monte_carlo, tv_quadrature_1d

__all__ = [
    "ScoreMatchingLosses",
    "collapse_snr",
    "collapse_time",
    "entropy_rank",
    "fisher_information_1d",
    "gaussian_denoiser",
    "gaussian_denoiser_eigs",
    "gaussian_denoiser_jacobian",
    "gaussian_marginal",
    "gaussian_pf_flow",
    "gaussian_reverse_transition",
    "gaussian_sample",
    "gaussian_score_matching",
    "kde_denoiser",
    "kde_denoiser_jacobian",
    "kde_sample",
    "kl_prior_bound",
    "mixture_cov",
    "mixture_denoise",
    "mixture_logpdf",
    "mixture_mean",
    "mixture_sample",
    "mixture_score",
    "mixture_second_moment",
    "score_matching_1d",
    "theorem3_T",
    "theorem3_delta",
    "trace_rank",
    "tv_monte_carlo",
    "tv_prior_bound",
    "tv_quadrature_1d",
    "tweedie_gaussian",
]
