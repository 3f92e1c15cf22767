"""Result objects and argument checks for the derivatives of the empirical score.

The methods (``jacobian``, ``divergence``, ``jvp``, ``jacobian_eigs``) are the
formulas of :class:`MixtureDerivatives`, over an engine's centred second moments;
:class:`numdiff.score.EmpiricalScore` has them. The mathematics and the accuracy
are in docs/numerics.md#derivatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from numdiff._checks import as_count, as_tangents

__all__ = ["JacobianEigs", "MixtureDerivatives"]

# Largest dense Jacobian (M * d * d numbers, 1 GiB) before jvp / jacobian_eigs are required.
JACOBIAN_MAX = 1 << 27

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


def top_eigenpairs(trace, covariance, cov_matvec, dim, k, gain):
    """The ``k`` largest eigenpairs of ``gain * Cov`` for one query.

    Lanczos (``scipy.sparse.linalg.eigsh``, largest algebraic) on a
    ``LinearOperator`` whose matvec is ``cov_matvec``: no ``d x d`` matrix. When
    ``k >= d - 1`` (``eigsh`` needs ``k < d``) a dense ``numpy.linalg.eigh`` of
    ``covariance()``; when ``trace`` is exactly 0 the eigenvalues are 0 and the
    eigenvectors the first ``k`` unit vectors (Lanczos would stop on a zero Krylov
    vector). The start vector is fixed, so the result is reproducible.

    Parameters
    ----------
    trace : float
        ``tr Cov``.
    covariance : callable
        ``() -> ndarray (d, d)``.
    cov_matvec : callable
        ``(vec (1, d)) -> ndarray (d,)``, ``Cov vec``.
    dim, k : int
    gain : float

    Returns
    -------
    values : ndarray, shape (k,)
        Descending.
    vectors : ndarray, shape (d, k)
    """
    if trace == 0.0:
        vals, vecs = np.zeros(dim), np.eye(dim)
    elif k >= dim - 1:
        vals, vecs = np.linalg.eigh(covariance())
        vals = vals * gain
    else:
        from scipy.sparse.linalg import LinearOperator, eigsh

        def matvec(vec):
            vec = np.ascontiguousarray(np.asarray(vec, dtype=np.float64).reshape(1, dim))
            return cov_matvec(vec) * gain

        op = LinearOperator((dim, dim), matvec=matvec, dtype=np.float64)
        start = np.random.default_rng(0).standard_normal(dim)
        vals, vecs = eigsh(op, k=k, which="LA", v0=start)
    order = np.argsort(vals)[::-1][:k]
    return vals[order], vecs[:, order]


class MixtureDerivatives:
    """The derivatives of a Gaussian-mixture model from its engine's centred moments:
    ``grad_x D = (alpha / sigma2) Cov_w[y_k]`` and ``grad_x s = (alpha grad_x D - I) /
    sigma2``. A model using it has ``dim``, ``_prepare``, ``_host`` and ``_engines``
    (a :class:`~numdiff.engines.dispatch.Dispatcher`)."""

    def jacobian(self, t, x, of="denoiser"):
        """Jacobian of the denoiser or of the score, one ``d x d`` matrix per query.

        ``grad_x D = (alpha / sigma2) Cov_w[x_k]`` (symmetric PSD, rank ``<= min(d,
        N - 1)``) and ``grad_x s = (alpha grad_x D - I) / sigma2``. The covariance is
        formed about each query's nearest data point and centred in a second pass,
        so that no sum of squares cancels.

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, d)
            Queries; ``M * d * d <= 2^27`` (use :meth:`jvp` or :meth:`jacobian_eigs`
            beyond).
        of : {"denoiser", "score"}, optional
            Which Jacobian; default ``"denoiser"``.

        Returns
        -------
        ndarray, shape (M, d, d)
            Exactly symmetric.
        """
        x, alpha, sigma2 = self._prepare(t, x)
        of = check_of(of)
        if x.shape[0] * self.dim**2 > JACOBIAN_MAX:
            raise ValueError(
                f"x: the Jacobians would hold M * d * d = {x.shape[0] * self.dim**2} numbers; "
                "use jvp(t, x, v) or jacobian_eigs(t, x, k) for large M or d"
            )
        jac = (alpha / sigma2)[:, None, None] * self._engines.covariances(x, alpha, sigma2)
        if of == "score":
            jac = alpha[:, None, None] * jac
            idx = np.arange(self.dim)
            jac[:, idx, idx] -= 1.0
            jac /= sigma2[:, None, None]
        return jac

    def divergence(self, t, x):
        """Divergence of the score, ``div s = (alpha^2 / sigma2^2) tr Cov_w - d / sigma2``.

        ``O(N d)`` per query through the online merge of centred second moments
        about each query's nearest data point, never as ``E_w|x_k|^2 - |D|^2``.

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, d)
            Queries.

        Returns
        -------
        ndarray, shape (M,)
            ``>= -d / sigma2`` up to rounding.
        """
        x, alpha, sigma2 = self._prepare(t, x)
        trace = self._engines.centred(x, alpha, sigma2).trace
        with np.errstate(over="ignore", invalid="ignore"):
            return (alpha * ((alpha / sigma2) * trace) - self.dim) / sigma2

    def jvp(self, t, x, v, of="denoiser"):
        """Jacobian-vector products ``grad_x D(t, x) v`` (or ``grad_x s(t, x) v``).

        ``grad D v = (alpha / sigma2) Cov_w[x_k] v``, ``O(N d)`` per query by the same
        centred merge as :meth:`divergence`; the ``d x d`` matrix is never formed.

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, d)
            Queries.
        v : array_like, shape (M, d) or (d,)
            One tangent per query, or one for all.
        of : {"denoiser", "score"}, optional
            Which Jacobian; default ``"denoiser"``. ``grad s v = (alpha grad D v - v) /
            sigma2``.

        Returns
        -------
        ndarray, shape (M, d)
        """
        x, alpha, sigma2 = self._prepare(t, x)
        of = check_of(of)
        v = as_tangents(self._host(v), self.dim, x.shape[0])
        out = self._engines.centred(x, alpha, sigma2, v).vec * (alpha / sigma2)[:, None]
        if of == "score":
            out = (alpha[:, None] * out - v) / sigma2[:, None]
        return out

    def jacobian_eigs(self, t, x, k=6):
        """The ``k`` largest eigenpairs of ``grad_x D(t, x)`` at one query.

        Lanczos on ``v -> grad D v`` (:meth:`jvp`, no ``d x d`` matrix); a dense
        ``eigh`` of :meth:`jacobian` when ``k >= d - 1``; zeros and unit vectors
        when ``tr grad D`` is exactly 0 (:func:`numdiff.derivatives.top_eigenpairs`).
        Reproducible (fixed start vector). Eigenvalues beyond the rank ``min(d, N -
        1)`` are 0 up to rounding.

        Parameters
        ----------
        t : float or array_like, shape (1,)
            One time in ``(0, schedule.t_max]``.
        x : array_like, shape (d,) or (1, d)
            One query.
        k : int, optional
            ``1 <= k <= d``; default 6.

        Returns
        -------
        JacobianEigs
            ``eigenvalues (k,)`` descending, ``eigenvectors (d, k)``, ``t``, ``x (d,)``.
        """
        x, alpha, sigma2 = self._prepare(t, x)
        if x.shape[0] != 1:
            raise ValueError(f"x must be one query of shape (d,) or (1, d); got {x.shape}")
        k = as_count(k, "k", 1, self.dim)
        t_value = float(np.asarray(self._host(t), dtype=np.float64).reshape(-1)[0])
        engines = self._engines
        vals, vecs = top_eigenpairs(
            engines.centred(x, alpha, sigma2).trace[0],
            lambda: engines.covariances(x, alpha, sigma2)[0],
            lambda vec: engines.centred(x, alpha, sigma2, vec).vec[0],
            self.dim, k, alpha[0] / sigma2[0],
        )
        return JacobianEigs(vals, vecs, t_value, x[0].copy())

