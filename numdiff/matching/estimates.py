"""Monte Carlo estimates with their standard errors: the results of the objectives."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte Carlo mean with its standard error and its per-sample terms.

    Parameters
    ----------
    value : float
        The estimate (mean of ``terms``).
    stderr : float
        Its standard error: ``std(terms) / sqrt(n)`` for 1-D ``terms``; for
        ``terms`` of shape ``(N, K)`` with ``K >= 2`` (``K`` draws for each of
        ``N`` data points, a stratified sample) ``sqrt(sum_k var_k / K) / N``
        with ``var_k`` the within-row variances, the error *given the data*;
        with ``K = 1`` the rows are treated as independent. NaN if there are
        too few terms to tell.
    n : int
        Number of terms.
    terms : ndarray, shape (n,) or (N, K)
        The per-sample terms; same random numbers, same layout.
    """

    value: float
    stderr: float
    n: int
    terms: np.ndarray = field(repr=False, compare=False)

    @classmethod
    def from_terms(cls, terms):
        """The estimate of the mean of ``terms``.

        Parameters
        ----------
        terms : ndarray, shape (n,) or (N, K)

        Returns
        -------
        MonteCarloEstimate
        """
        terms = np.asarray(terms, dtype=np.float64)
        n = terms.size
        value = float(terms.mean()) if n else float("nan")
        if terms.ndim == 2 and terms.shape[1] >= 2:
            rows, k = terms.shape
            var = terms.var(axis=1, ddof=1)
            stderr = float(np.sqrt(var.sum() / k) / rows)
        else:
            flat = terms.ravel()
            stderr = float(flat.std(ddof=1) / np.sqrt(n)) if n >= 2 else float("nan")
        return cls(value, stderr, n, terms)

    def minus(self, other):
        """``self - other`` on common random numbers: the paired differences.

        Parameters
        ----------
        other : MonteCarloEstimate
            Computed on the same random numbers (same ``rng`` seed or ``noise``,
            same sizes), so that its terms pair with these.

        Returns
        -------
        MonteCarloEstimate
            Mean and standard error of ``self.terms - other.terms``.
        """
        if not isinstance(other, MonteCarloEstimate):
            raise TypeError(f"other must be a MonteCarloEstimate; got {type(other).__name__}")
        if other.terms.shape != self.terms.shape:
            raise ValueError(
                f"other must have terms of shape {self.terms.shape} (the same random numbers); "
                f"got {other.terms.shape}"
            )
        return MonteCarloEstimate.from_terms(self.terms - other.terms)


@dataclass(frozen=True)
class DivergenceEstimate:
    """Divergence of a score model at each query, with its standard error.

    Parameters
    ----------
    value : ndarray, shape (M,)
        ``div_x s(t, x)`` per query.
    stderr : ndarray, shape (M,)
        Standard error per query: 0 for the exact divergence; for Hutchinson,
        the probes' sample standard deviation over ``sqrt(n_probes)`` (NaN
        with one probe). The finite-difference error (relative ``~1e-10``) is
        not included.
    n_probes : int
        Probes per query; 0 for the exact divergence.
    """

    value: np.ndarray
    stderr: np.ndarray
    n_probes: int
