"""Score models of the score-matching study, written from theory: test doubles of numdiff's.

Each gives its score in closed form, independently of numdiff's kernels, for
:mod:`numdiff.matching` to evaluate: the exact score of Gaussian data (with its
divergence), the smoothed-KDE score, and perturbations of a score (``Combined``:
plus ``eps`` times a direction; ``Sine``).
"""

from __future__ import annotations

import numpy as np

import numdiff as nd
from theory.mixture import mixture_score

from .common import ou_alpha_sigma2

#: The forward process of the study (``b = 1``, ``a = sqrt 2``).
OU = nd.OU()


class GaussianLawScore:
    """Exact score of Gaussian data ``N(mean, cov)`` diffused by OU; closed-form divergence.

    ``s(t, x) = -(x - alpha mean) G``, ``G = (alpha^2 cov + sigma^2 I)^-1``; one time per call.
    """

    def __init__(self, mean, cov, with_divergence=True):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.cov = np.atleast_2d(np.asarray(cov, dtype=np.float64))
        self.dim, self.schedule = self.mean.size, OU
        if with_divergence:
            self.divergence = self._divergence

    def _gain(self, t):
        alpha, sigma2 = ou_alpha_sigma2(float(np.asarray(t).ravel()[0]))
        return alpha, np.linalg.inv(alpha**2 * self.cov + sigma2 * np.eye(self.dim))

    def score(self, t, x):
        alpha, gain = self._gain(t)
        return -(np.asarray(x) - alpha * self.mean) @ gain

    def _divergence(self, t, x):
        return np.full(len(x), -np.trace(self._gain(t)[1]))


class KDEScore:
    """Score of the diffused smoothed KDE ``(1/N) sum_k N(x_k, h^2 I)`` (``theory.mixture``)."""

    def __init__(self, data, h):
        self.data, self.h, self.dim, self.schedule = data, h, data.shape[1], OU

    def score(self, t, x):
        alpha, sigma2 = ou_alpha_sigma2(float(np.asarray(t).ravel()[0]))
        return mixture_score(x, self.data, alpha, alpha**2 * self.h**2 + sigma2)


class Combined:
    """``base + eps * direction`` (``direction`` may be any score model)."""

    def __init__(self, base, direction, eps):
        self.base, self.direction, self.eps = base, direction, eps
        self.dim, self.schedule = base.dim, OU

    def score(self, t, x):
        return self.base.score(t, x) + self.eps * self.direction.score(t, x)


class Sine:
    """A bounded nonlinear direction field ``h(x) = sin(x reversed)``."""

    def __init__(self, dim):
        self.dim, self.schedule = dim, OU

    def score(self, t, x):
        return np.sin(np.asarray(x)[:, ::-1])
