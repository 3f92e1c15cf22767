"""What every Gaussian-mixture score model shares: time handling and the formulas
that turn an engine's first moments into the denoiser, the score and the
log-density.

A model holds keys ``y_k`` (``N`` of them, in ``R^d``), a schedule, and an engine
that returns :class:`~numdiff.engines.results.Moments` of the softmax
``w_k ∝ exp(-|x - alpha_t y_k|^2 / (2 sigma2_t))``. Subclasses provide
``_moments(t, x) -> (Moments, sigma2)``; this class provides the public formulas.
"""

from __future__ import annotations

import numpy as np

from numdiff._checks import alpha_sigma2, as_points
from numdiff.engines.limits import check_magnitude


class MixtureScoreModel:
    """Base of the models whose law is ``(1/N) sum_k N(alpha_t y_k, sigma2_t I)``.

    Attributes
    ----------
    schedule : Schedule
    n_data, dim : int
        ``N`` and ``d``.
    """

    def denoise(self, t, x):
        """Posterior mean ``D(t, x) = E[X_0 | X_t = x]``.

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, d)
            Queries.

        Returns
        -------
        ndarray, shape (M, d)
            Inside the convex hull of the data.
        """
        return self._moments(t, x)[0].mean

    def score(self, t, x):
        """Score ``grad log p_t(x) = (alpha_t D(t, x) - x) / sigma2_t``.

        Formed as ``(alpha (D - x_r) - u) / sigma2`` with ``x_r`` the nearest data
        point and ``u = x - alpha x_r`` compensated, so that a large ``|x|`` costs
        no relative accuracy (docs/numerics.md#accuracy).

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, d)
            Queries.

        Returns
        -------
        ndarray, shape (M, d)
            ``inf`` only where the exact score exceeds the float64 range.
        """
        moments, sigma2 = self._moments(t, x)
        with np.errstate(over="ignore"):
            return moments.resid / sigma2[:, None]

    def log_density(self, t, x):
        """Normalised ``log p_t(x)`` of the Gaussian mixture.

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, d)
            Queries.

        Returns
        -------
        ndarray, shape (M,)
            ``-inf`` only where the exact value is below ``-1.8e308``.
        """
        moments, sigma2 = self._moments(t, x)
        return moments.logsum - np.log(self.n_data) - 0.5 * self.dim * np.log(2.0 * np.pi * sigma2)

    # -- arrays where the model computes (nd.sample uses these) -------------------
    def to_device(self, a):
        """``a`` as a float64 array where the model computes (CuPy on a GPU).

        Parameters
        ----------
        a : array_like

        Returns
        -------
        ndarray
            ``a`` itself for a model on the CPU.
        """
        return a

    def to_host(self, a):
        """``a`` as a NumPy array.

        Parameters
        ----------
        a : array_like
            An array where the model computes.

        Returns
        -------
        ndarray
        """
        return a

    def normal_stream(self, rng):
        """Standard normal draws where the model computes.

        Parameters
        ----------
        rng : numpy.random.Generator
            Seeds the stream (on the CPU, its own ``standard_normal``).

        Returns
        -------
        callable
            ``draw(shape) -> ndarray`` of standard normals.
        """
        return rng.standard_normal

    # -- internals ----------------------------------------------------------------
    def _host(self, a):
        """``a`` on the host (models on a GPU override this)."""
        return a

    def _prepare(self, t, x, non_empty=False):
        """``x (M, d)`` validated, and ``alpha_t``, ``sigma2_t`` of shape ``(M,)``."""
        x = check_magnitude(as_points(self._host(x), self.dim), "x")
        if non_empty and x.shape[0] == 0:
            raise ValueError("x must hold at least one query; got shape (0, d)")
        return (x, *alpha_sigma2(self.schedule, self._host(t), x.shape[0]))

    def _moments(self, t, x):
        """:class:`~numdiff.engines.results.Moments` of ``x`` at ``t``, and ``sigma2 (M,)``."""
        raise NotImplementedError
