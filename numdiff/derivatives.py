"""Result objects and argument checks for the derivatives of the empirical score.

The methods themselves live on :class:`numdiff.score.EmpiricalScore`
(``jacobian``, ``divergence``, ``jvp``, ``jacobian_eigs``); the mathematics and the
accuracy are in docs/numerics.md#derivatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["JacobianEigs"]

# The two Jacobians a method can return: of the denoiser D or of the score s.
OF_CHOICES = ("denoiser", "score")


@dataclass(frozen=True)
class JacobianEigs:
    """Top eigenpairs of the denoiser Jacobian ``grad_x D(t, x)`` at one query.

    Parameters
    ----------
    eigenvalues : ndarray, shape (k,)
        Descending; ``>= 0`` up to rounding (``grad D`` is symmetric PSD, rank
        ``<= min(d, N - 1)``).
    eigenvectors : ndarray, shape (d, k)
        Orthonormal columns, ``eigenvectors[:, i]`` for ``eigenvalues[i]``.
    t : float
        The time.
    x : ndarray, shape (d,)
        The query.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    t: float
    x: np.ndarray

    @property
    def k(self):
        """Number of eigenpairs."""
        return self.eigenvalues.shape[0]


def check_of(of):
    """``of`` as one of :data:`OF_CHOICES`, or a TypeError / ValueError naming it."""
    if not isinstance(of, str):
        raise TypeError(f"of must be a string, 'denoiser' or 'score'; got {type(of).__name__}")
    if of not in OF_CHOICES:
        raise ValueError(f"of must be 'denoiser' or 'score'; got {of!r}")
    return of
