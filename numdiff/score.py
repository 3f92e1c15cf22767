"""The empirical optimal score of a finite dataset.

For data ``x_1..x_N`` in ``R^d`` the diffused empirical law is the Gaussian
mixture ``p_t = (1/N) sum_k N(alpha_t x_k, sigma2_t I)``. Its score is the exact
minimiser of denoising score matching:

    w_k(t, x) = softmax_k(-|x - alpha_t x_k|^2 / (2 sigma2_t))
    D(t, x)   = sum_k w_k x_k                       (Tweedie denoiser)
    s(t, x)   = (alpha_t D(t, x) - x) / sigma2_t

Two kernels compute ``D`` and ``log sum_k exp(.)`` with an online,
log-sum-exp-stable merge over data blocks (docs/numerics.md#online-merge): a fused
direct-difference loop for small ``d`` and a BLAS cross term for large ``d``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import NamedTuple

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from numdiff import pruned
from numdiff._checks import as_count, as_real_array
from numdiff._checks import as_points as _as_points
from numdiff._kernels.direct import log_weights_direct, mixture_moments_direct
from numdiff._kernels.exact import residual_rows
from numdiff._kernels.second_moments import (
    MODE_MATRIX,
    MODE_TRACE,
    MODE_VECTOR,
    centred_moments_direct,
    tile_centred,
)
from numdiff._kernels.sweep import (
    SWEEP_MAX_DIM,
    SWEEP_MIN_POINTS,
    nearest_references,
    sweep_order,
)
from numdiff._kernels.tiles import tile_weights
from numdiff.derivatives import JacobianEigs, check_of
from numdiff.neighbors import knn
from numdiff.schedules import Schedule

__all__ = ["EmpiricalScore", "TopWeights"]

# Dimension up to which the direct-difference kernel beats the BLAS path
# (benchmarks/bench_score.py).
DIRECT_MAX_DIM = 16
# Data points per block of the online merge (direct kernel) and tile shape of the
# BLAS path; both keep the per-thread working set in L2. Blocks of 1024 rather
# than 512 points halve the per-block work (reductions, merge): 5-15% faster at
# d = 2 and 3 per pair on one core, no change at d = 8 and 16 (2048: slower).
DIRECT_BLOCK = 1024
TILE_ROWS = 512
TILE_COLS = 4096
# BLAS logits whose rounding estimate exceeds this are refined by direct
# differences (tests/numdiff/test_score_oracle.py holds both sides to a small
# multiple of eps).
LOGIT_TOL = 1e-12
# BLAS rows whose rounding estimate, times d, exceeds this many nats go to the
# direct kernel: the BLAS logits can no longer tell which entries are near the top.
DIRECT_ROW_NATS = 1.0
# Largest dense weight matrix (M * N entries, 1 GiB) before top_weights is required.
DENSE_WEIGHTS_MAX = 1 << 27
# Entries within this many nats of the reference (plus the row's rounding bound)
# are recomputed when refining; exp(-40) is below the float64 resolution of a sum
# whose largest term is 1.
REFINE_WINDOW = 40.0
# Coordinates are limited to this magnitude: beyond it the differences x_k - x_r
# of the kernels can overflow float64.
MAX_MAGNITUDE = 1e300
_BIGGEST = np.finfo(np.float64).max
# Largest dense Jacobian (M * d * d numbers, 1 GiB) before jvp / jacobian_eigs are required.
JACOBIAN_MAX = 1 << 27
# Weights below exp(-FLUSH_NATS) of the largest are 0, as in the kernels (vexp.FLUSH).
FLUSH_NATS = 100.0


class TopWeights(NamedTuple):
    """The largest posterior weights of each query (:meth:`EmpiricalScore.top_weights`).

    Parameters
    ----------
    index : ndarray of int64, shape (M, k)
        Data indices, by decreasing weight.
    weight : ndarray, shape (M, k)
        The weights ``w_k(t, x)`` (normalised over all ``N`` points).
    """

    index: np.ndarray
    weight: np.ndarray


@cache
def _blas_controller():
    """One scan of the loaded BLAS libraries (0.47 ms per ``threadpool_limits`` call
    against 0.02 ms per ``limit`` of a kept controller: sampling calls often)."""
    return ThreadpoolController()


def _check_magnitude(arr, name):
    if arr.size and np.abs(arr).max() > MAX_MAGNITUDE:
        raise ValueError(f"{name}: coordinates beyond {MAX_MAGNITUDE:g} are not supported")
    return arr


class EmpiricalScore:
    """Exact score, denoiser and log-density of a diffused empirical law.

    Parameters
    ----------
    data : array_like, shape (N, d)
        Training points, finite, ``|x_k| <= 1e300`` (any real dtype or memory order).
    schedule : Schedule
        The forward process (``nd.OU()``, ``nd.VPLinear()``, ...).
    device : {"cpu", "cuda"}, optional
        ``"cuda"`` gives a :class:`numdiff.gpu.CudaEmpiricalScore`: ``denoise``,
        ``score`` and ``log_density`` on an NVIDIA GPU (``pip install
        "numdiff[gpu]"``), returning CuPy arrays; default ``"cpu"``.

    Notes
    -----
    All methods take ``t`` as a scalar or an array of shape ``(M,)`` (one time
    per query), with ``0 < t <= schedule.t_max`` and ``sigma2_t`` a normal float
    (``>= 2.2e-308``), and ``x`` of shape ``(M, d)``. Memory is ``O((M + N) d)``
    plus one tile; there is never an ``M x N x d`` temporary. Accuracy and its
    limits: docs/numerics.md#accuracy (tests/numdiff/test_score_oracle.py and
    tests/numdiff/test_score_fuzz.py compare with 50-digit references).

    At small ``sigma2`` the score, denoiser, log-density, ``top_weights`` and
    ``nearest`` skip data points whose total weight is certified below ``2^-60``
    of the rest (docs/numerics.md#pruning); set ``pruning = "off"`` on an instance
    for the dense path only.
    """

    device = "cpu"
    # Certified pruning at small sigma2 (numdiff/pruned): "auto", "off" or "always".
    pruning = "auto"

    def __new__(cls, data=None, schedule=None, device="cpu"):
        if not isinstance(device, str) or device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
        if device == "cuda" and cls is EmpiricalScore:
            from numdiff.gpu.score import CudaEmpiricalScore

            return super().__new__(CudaEmpiricalScore)
        return super().__new__(cls)

    def __init__(self, data, schedule, device="cpu"):
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a numdiff Schedule; got {type(schedule).__name__}")
        data = _check_magnitude(_as_points(data, None, "data"), "data")
        if data.shape[0] == 0 or data.shape[1] == 0:
            raise ValueError(f"data must be non-empty; got shape {data.shape}")
        self.data = data
        self.schedule = schedule
        self.n_data, self.dim = data.shape
        self._data_t = np.ascontiguousarray(data.T)
        self._data_absmax = float(np.abs(data).max())
        # Centred copy for the BLAS path: the softmax is invariant to the shift,
        # and centring shrinks |y_k|, hence the rounding of x . y_k.
        self._centre = data.mean(axis=0)
        self._centred = data - self._centre
        with np.errstate(over="ignore"):
            self._sq_norms = np.einsum("ij,ij->i", self._centred, self._centred)
            # Scale of the rounding of x . y_k: |y_k| plus the centring's own error.
            self._radius = float(np.sqrt(self._sq_norms.max()) + np.linalg.norm(self._centre))
        self._sweep = None  # the direct kernels' sorted copy, built on first use

    def __repr__(self):
        return f"EmpiricalScore(N={self.n_data}, d={self.dim}, schedule={self.schedule!r})"

    # -- public API ---------------------------------------------------------
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
        x, alpha, sigma2 = self._prepare(t, x)
        return self._moments(x, alpha, sigma2)[0]

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
        x, alpha, sigma2 = self._prepare(t, x)
        resid = self._moments(x, alpha, sigma2)[2]
        with np.errstate(over="ignore"):
            return resid / sigma2[:, None]

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
        x, alpha, sigma2 = self._prepare(t, x)
        logsum = self._moments(x, alpha, sigma2)[1]
        return logsum - np.log(self.n_data) - 0.5 * self.dim * np.log(2.0 * np.pi * sigma2)

    def weights(self, t, x):
        """Posterior weights ``w_k(t, x) = softmax_k(-|x - alpha_t x_k|^2 / (2 sigma2_t))``.

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, d)
            At least one query; ``M * N <= 2^27`` (use :meth:`top_weights` beyond).

        Returns
        -------
        ndarray, shape (M, N)
            Rows sum to 1 within ``N`` ulps.
        """
        x, alpha, sigma2 = self._prepare(t, x)
        if x.shape[0] == 0:
            raise ValueError("x must hold at least one query; got shape (0, d)")
        if x.shape[0] * self.n_data > DENSE_WEIGHTS_MAX:
            raise ValueError(
                f"x: dense weights would hold M * N = {x.shape[0] * self.n_data} numbers; "
                "use top_weights(t, x, k) for large N"
            )
        return self._normalised_weights(x, alpha, sigma2)

    def top_weights(self, t, x, k):
        """The ``k`` largest posterior weights of each query.

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, d)
            At least one query.
        k : int
            ``1 <= k <= N``.

        Returns
        -------
        TopWeights
            ``index`` (int64) and ``weight``, both of shape ``(M, k)``, by
            decreasing weight (ties by lower index).
        """
        x, alpha, sigma2 = self._prepare(t, x)
        if x.shape[0] == 0:
            raise ValueError("x must hold at least one query; got shape (0, d)")
        k = as_count(k, "k", 1, self.n_data)
        # -- certified pruning (numdiff/pruned): the queries it takes, dense for the rest --
        found = pruned.top_weights(self, self._top_weights_dense, x, alpha, sigma2, k)
        if found is not None:
            return TopWeights(*found)
        return self._top_weights_dense(x, alpha, sigma2, k)

    def _top_weights_dense(self, x, alpha, sigma2, k):
        rows = max(1, (1 << 22) // self.n_data)
        idx_out, w_out = [], []
        for lo in range(0, x.shape[0], rows):
            sl = slice(lo, lo + rows)
            w = self._normalised_weights(x[sl], alpha[sl], sigma2[sl])
            idx = np.argsort(-w, axis=1, kind="stable")[:, :k]
            idx_out.append(idx)
            w_out.append(np.take_along_axis(w, idx, axis=1))
        return TopWeights(np.concatenate(idx_out).astype(np.int64), np.concatenate(w_out))

    def nearest(self, x, k=1):
        """The ``k`` training points nearest to each query (Euclidean).

        Parameters
        ----------
        x : array_like, shape (M, d)
            Queries.
        k : int, optional
            ``1 <= k <= N``; default 1.

        Returns
        -------
        idx : ndarray of int64, shape (M, k)
        dist : ndarray, shape (M, k)
            Sorted by increasing distance.
        """
        x = _as_points(x, self.dim)
        k = as_count(k, "k", 1, self.n_data)
        # -- certified pruning (numdiff/pruned): the queries it takes, dense for the rest --
        found = pruned.nearest(self, self._nearest_dense, x, k)
        return self._nearest_dense(x, k) if found is None else found

    def _nearest_dense(self, x, k):
        return knn(self.data, x, k, self._data_t, self._centred, self._sq_norms)

    # -- derivatives (docs/numerics.md#derivatives) ----------------------------
    def jacobian(self, t, x, of="denoiser"):
        """Jacobian of the denoiser or of the score, one ``d x d`` matrix per query.

        ``grad_x D = (alpha / sigma2) Cov_w[x_k]`` (symmetric PSD, rank ``<= min(d,
        N - 1)``) and ``grad_x s = (alpha grad_x D - I) / sigma2``. The covariance is
        formed about each query's nearest data point and centred in a second pass,
        so that no sum of squares cancels (docs/numerics.md#derivatives).

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
        n_query, dim = x.shape
        if n_query * dim * dim > JACOBIAN_MAX:
            raise ValueError(
                f"x: the Jacobians would hold M * d * d = {n_query * dim * dim} numbers; "
                "use jvp(t, x, v) or jacobian_eigs(t, x, k) for large M or d"
            )
        cov = self._covariances(x, alpha, sigma2)
        jac = (alpha / sigma2)[:, None, None] * cov
        if of == "score":
            jac = alpha[:, None, None] * jac
            idx = np.arange(dim)
            jac[:, idx, idx] -= 1.0
            jac /= sigma2[:, None, None]
        return jac

    def divergence(self, t, x):
        """Divergence of the score, ``div s = (alpha^2 / sigma2^2) tr Cov_w - d / sigma2``.

        ``O(N d)`` per query through the online merge, without any ``d x d`` array;
        ``tr Cov_w`` is merged as centred second moments about each query's nearest
        data point (docs/numerics.md#derivatives), never as ``E_w|x_k|^2 - |D|^2``.

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
        trace = self._second_moments(x, alpha, sigma2, None)[0]
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
        v = self._tangents(v, x.shape[0])
        out = self._second_moments(x, alpha, sigma2, v)[1] * (alpha / sigma2)[:, None]
        if of == "score":
            out = (alpha[:, None] * out - v) / sigma2[:, None]
        return out

    def jacobian_eigs(self, t, x, k=6):
        """The ``k`` largest eigenpairs of ``grad_x D(t, x)`` at one query.

        ``scipy.sparse.linalg.eigsh`` (Lanczos, largest algebraic) on a
        ``LinearOperator`` whose matvec is :meth:`jvp`: ``O(N d)`` per product and no
        ``d x d`` matrix. When ``k >= d - 1`` (``eigsh`` needs ``k < d``) it falls back
        to a dense ``numpy.linalg.eigh`` of :meth:`jacobian`; when ``tr grad D`` is
        exactly 0 (``N = 1``, or one weight 1 at tiny ``sigma2``) the eigenvalues are 0
        and the eigenvectors the first ``k`` unit vectors. The start vector is
        fixed, so the result is reproducible. ``grad D`` has rank ``<= min(d, N - 1)``:
        eigenvalues beyond that are 0 up to rounding.

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
        dim = self.dim
        k = as_count(k, "k", 1, dim)
        t_value = float(np.asarray(t, dtype=np.float64).reshape(-1)[0])
        if self._second_moments(x, alpha, sigma2, None)[0][0] == 0.0:
            # tr Cov_w = 0 exactly: one weight is 1 and the others 0 (N = 1, or tiny
            # sigma2), so grad D = 0; Lanczos would stop on a zero Krylov vector.
            vals, vecs = np.zeros(dim), np.eye(dim)
        elif k >= dim - 1:
            vals, vecs = np.linalg.eigh(self._covariances(x, alpha, sigma2)[0])
            vals = vals * (alpha[0] / sigma2[0])
        else:
            from scipy.sparse.linalg import LinearOperator, eigsh

            def matvec(vec):
                vec = np.ascontiguousarray(np.asarray(vec, dtype=np.float64).reshape(1, dim))
                return self._second_moments(x, alpha, sigma2, vec)[1][0] * (alpha[0] / sigma2[0])

            op = LinearOperator((dim, dim), matvec=matvec, dtype=np.float64)
            start = np.random.default_rng(0).standard_normal(dim)
            vals, vecs = eigsh(op, k=k, which="LA", v0=start)
        order = np.argsort(vals)[::-1][:k]
        return JacobianEigs(vals[order], vecs[:, order], t_value, x[0].copy())

    # -- internals ------------------------------------------------------------
    def _prepare(self, t, x):
        x = _check_magnitude(_as_points(x, self.dim), "x")
        return (x, *self._alpha_sigma2(t, x.shape[0]))

    def _alpha_sigma2(self, t, n_query):
        """``alpha_t`` and ``sigma2_t`` of shape ``(M,)``, or an error naming ``t``."""
        t_arr = as_real_array(t, "t")
        if t_arr.ndim != 0 and t_arr.shape != (n_query,):
            raise ValueError(f"t must be a scalar or of shape (M,) = ({n_query},); got {t_arr.shape}")
        if np.isnan(t_arr).any():
            raise ValueError("t contains NaN")
        if (t_arr <= 0).any():
            raise ValueError(f"t must be > 0 (sigma_t = 0 at t = 0); got min {t_arr.min()!r}")
        if t_arr.ndim == 0:
            # The sampler's case: one time for all queries, one schedule evaluation.
            alpha, sigma2 = (np.full(n_query, v) for v in self.schedule.alpha_sigma2(t_arr))
        else:
            uniq, inverse = np.unique(t_arr, return_inverse=True)
            alpha, sigma2 = (v[inverse] for v in self.schedule.alpha_sigma2(uniq))
        if not (sigma2 >= np.finfo(np.float64).tiny).all():
            # A subnormal sigma2 has lost relative precision (and 0 is a point mass).
            raise ValueError(
                "t: sigma_t^2 is below the smallest normal float (2.2e-308) at this time; "
                "use a larger t"
            )
        if not (alpha > 0).all():
            raise ValueError("t: alpha_t underflows to 0 at this time; use a smaller t")
        return alpha, sigma2

    def _scales(self, x, alpha, sigma2):
        """Per query: the power of two ``scale`` of the kernels, ``coef = alpha /
        (2 sigma2 scale)`` clamped to the float range, and ``(mant, expo)`` with
        ``1 / (2 sigma2 scale^2) = mant * 2^expo`` (formed without overflow)."""
        top = np.maximum(np.abs(x).max(axis=1, initial=0.0), alpha * self._data_absmax)
        # scale = 2^-e with 2^(e-1) <= top < 2^e; kept within [2^-1000, 2^500] so that
        # the split in the compensated product cannot overflow.
        expo_top = np.clip(np.frexp(np.where(top > 0, top, 1.0))[1], -500, 1000)
        scale = np.ldexp(1.0, -expo_top)
        mant, expo_s2 = np.frexp(sigma2)
        with np.errstate(over="ignore"):
            coef = np.minimum(np.ldexp(alpha / (2.0 * mant), expo_top - expo_s2), _BIGGEST)
        return scale, coef, 1.0 / (2.0 * mant), 2 * expo_top - expo_s2

    def _moments(self, x, alpha, sigma2):
        """``D (M, d)``, ``log sum_k exp(-|x - alpha x_k|^2 / (2 sigma2)) (M,)`` and
        ``sigma2 * score (M, d)``."""
        denoised = np.empty_like(x)
        logsum = np.empty(x.shape[0])
        resid = np.empty_like(x)
        if x.shape[0] == 0:
            return denoised, logsum, resid
        if self.dim <= DIRECT_MAX_DIM:
            self._moments_direct(x, alpha, sigma2, denoised, logsum, resid)
        else:
            self._moments_blas(x, alpha, sigma2, denoised, logsum, resid)
        return denoised, logsum, resid

    def _moments_direct(self, x, alpha, sigma2, denoised, logsum, resid):
        # -- certified pruning (numdiff/pruned): the queries it takes, dense for the rest --
        if not pruned.moments(self, self._moments_direct_dense, x, alpha, sigma2, denoised,
                              logsum, resid):
            self._moments_direct_dense(x, alpha, sigma2, denoised, logsum, resid)

    def _references(self, x, alpha, scale):
        """Each query's nearest data point ``(M,)``, as the direct kernels take it: by a
        sweep over the data sorted by one coordinate in low dimension, else a scan."""
        if self._sweep is None:
            if self.dim <= SWEEP_MAX_DIM and self.n_data >= SWEEP_MIN_POINTS:
                self._sweep = sweep_order(self.data)
            else:
                self._sweep = (np.empty(0, dtype=np.int64), np.empty((self.dim, 0)))
        refs = np.empty(x.shape[0], dtype=np.int64)
        nearest_references(x, alpha, scale, self._data_t, *self._sweep,
                           min(DIRECT_BLOCK, self.n_data), refs)
        return refs

    def _moments_direct_dense(self, x, alpha, sigma2, denoised, logsum, resid):
        scale, coef, mant, expo = self._scales(x, alpha, sigma2)
        u2 = np.empty(x.shape[0])
        block = min(DIRECT_BLOCK, self.n_data)
        refs = self._references(x, alpha, scale)
        mixture_moments_direct(
            x, alpha, scale, coef, self.data, self._data_t, refs, block, denoised, logsum, u2,
            resid,
        )
        # |u|^2 / (2 sigma2) = u2 * mant * 2^expo; ldexp saturates to inf, the
        # correctly rounded value when it exceeds the float range.
        with np.errstate(over="ignore"):
            logsum -= np.ldexp(u2 * mant, expo)

    def _moments_blas(self, x, alpha, sigma2, denoised, logsum, resid):
        # -- certified pruning (numdiff/pruned): the queries it takes, dense for the rest --
        if not pruned.moments(self, self._moments_blas_dense, x, alpha, sigma2, denoised,
                              logsum, resid):
            self._moments_blas_dense(x, alpha, sigma2, denoised, logsum, resid)

    def _moments_blas_dense(self, x, alpha, sigma2, denoised, logsum, resid):
        xc = x - alpha[:, None] * self._centre
        with np.errstate(over="ignore", invalid="ignore"):
            bound = (
                np.finfo(float).eps * alpha
                * (np.linalg.norm(xc, axis=1) * self._radius + alpha * self._radius**2) / sigma2
            )
        # Rows whose BLAS logits are too coarse to locate the top entries (or would
        # overflow) take the direct kernel: O(N d) scalar work, exact to rounding.
        with np.errstate(over="ignore", invalid="ignore"):
            direct = ~(bound * self.dim <= DIRECT_ROW_NATS)
        if direct.any():
            out = [np.empty_like(x[direct]), np.empty(direct.sum()), np.empty_like(x[direct])]
            self._moments_direct(x[direct], alpha[direct], sigma2[direct], *out)
            denoised[direct], logsum[direct], resid[direct] = out
        rows = np.flatnonzero(~direct)
        if rows.size == 0:
            return
        # Query blocks are independent; memory O(workers * TILE_ROWS * (TILE_COLS + d)).
        # Each worker runs single-threaded BLAS and the serial tile kernel, so the
        # matrix multiplies of one block overlap the exponentials of another: at
        # d = 64 (K = 64 GEMMs) this beats two-threaded BLAS calls in sequence.
        def run(lo):
            q = rows[lo : lo + TILE_ROWS]
            denoised[q], logsum[q], resid[q] = self._moments_blas_rows(
                x[q], xc[q], alpha[q], sigma2[q], bound[q]
            )

        starts = range(0, rows.size, TILE_ROWS)
        workers = min(numba.get_num_threads(), len(starts))
        if workers == 1:
            for lo in starts:
                run(lo)
            return
        with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, starts))

    def _moments_blas_rows(self, x, xc, alpha, sigma2, bound):
        y, sq_norms = self._centred, self._sq_norms
        xc_sq = np.einsum("ij,ij->i", xc, xc)
        refine = bound > LOGIT_TOL
        # The entries to recompute: within the window of the reference, widened by
        # the rounding of both the entry and the reference (each <= d * bound).
        window = REFINE_WINDOW + 4.0 * self.dim * bound
        # Refined rows work relative to their nearest data point x_r, in the raw
        # (uncentred) coordinates, where x_k - x_r is exact for close points.
        ref_point = np.zeros_like(x)
        ref_logit = np.zeros(x.shape[0])
        if refine.any():
            a = alpha[refine]
            ref = knn(self.data, x[refine] / a[:, None], 1, self._data_t, y, sq_norms)[0][:, 0]
            ref_point[refine] = self.data[ref]
            ref_logit[refine] = (a / sigma2[refine]) * (
                np.einsum("ij,ij->i", xc[refine], y[ref]) - 0.5 * a * sq_norms[ref]
            )
        u = residual_rows(x, alpha, ref_point)
        run_max = np.full(x.shape[0], -np.inf)
        run_sum = np.zeros(x.shape[0])
        # Unrefined rows accumulate sum w y_k (centred), refined rows sum w (x_k - x_r).
        acc = np.zeros_like(x)
        block_max = np.empty(x.shape[0])
        block_sum = np.empty(x.shape[0])
        block_shift = np.zeros_like(x)
        # One tile buffer, reused: a fresh 16 MB array per tile costs its page faults.
        buffer = np.empty((x.shape[0], min(TILE_COLS, self.n_data)))
        for start in range(0, self.n_data, TILE_COLS):
            cols = slice(start, start + TILE_COLS)
            tile = buffer[:, : min(TILE_COLS, self.n_data - start)]
            np.matmul(xc, y[cols].T, out=tile)
            tile_weights(
                tile, alpha, sigma2, sq_norms[cols], refine, ref_logit, ref_point, u,
                self.data[cols], window, block_max, block_sum, block_shift,
            )
            new_max = np.maximum(run_max, block_max)
            shrink = np.exp(run_max - new_max)
            grow = np.exp(block_max - new_max)
            run_sum = run_sum * shrink + block_sum * grow
            block_acc = np.where(refine[:, None], block_shift, tile @ y[cols])
            acc = acc * shrink[:, None] + block_acc * grow[:, None]
            run_max = new_max
        base = np.where(refine, np.einsum("ij,ij->i", u, u), xc_sq)
        shift = acc / run_sum[:, None]
        denoised = np.where(refine[:, None], ref_point + shift, self._centre + shift)
        resid = np.where(refine[:, None], alpha[:, None] * shift - u, alpha[:, None] * denoised - x)
        return denoised, run_max + np.log(run_sum) - base / (2.0 * sigma2), resid

    def _normalised_weights(self, x, alpha, sigma2):
        """Dense weights ``(M, N)`` from logits relative to each query's nearest point
        (the direct kernel's), normalised by their own sum."""
        scale, coef, _, _ = self._scales(x, alpha, sigma2)
        logits = np.empty((x.shape[0], self.n_data))
        block = min(DIRECT_BLOCK, self.n_data)
        log_weights_direct(x, alpha, scale, coef, self.data, self._data_t, block, logits)
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)

    # -- internals of the derivatives ------------------------------------------
    def _tangents(self, v, n_query):
        """``v`` as ``(M, d)`` (a single ``(d,)`` or ``(1, d)`` is repeated)."""
        v = _check_magnitude(_as_points(v, self.dim, "v"), "v")
        if v.shape[0] == 1 and n_query != 1:
            return np.ascontiguousarray(np.broadcast_to(v, (n_query, self.dim)))
        if v.shape[0] != n_query:
            raise ValueError(f"v must have shape (M, d) = ({n_query}, {self.dim}) or (d,); "
                             f"got {v.shape}")
        return v

    def _second_moments(self, x, alpha, sigma2, v):
        """``tr Cov_w (M,)`` and, when ``v (M, d)`` is given, ``Cov_w v (M, d)``."""
        trace = np.empty(x.shape[0])
        vec = np.empty_like(x) if v is not None else None
        if x.shape[0] == 0:
            return trace, vec
        if self.dim <= DIRECT_MAX_DIM:
            self._centred_direct(x, alpha, sigma2, v, trace, vec)
        else:
            self._centred_blas(x, alpha, sigma2, v, trace, vec)
        return trace, vec

    def _centred_direct(self, x, alpha, sigma2, v, trace, vec):
        scale, coef, _, _ = self._scales(x, alpha, sigma2)
        block = min(DIRECT_BLOCK, self.n_data)
        mode = MODE_TRACE if v is None else MODE_VECTOR
        tangents = np.zeros((1, self.dim)) if v is None else v
        out_vec = np.empty((1, self.dim)) if vec is None else vec
        centred_moments_direct(
            x, alpha, scale, coef, self.data, self._data_t, self._references(x, alpha, scale),
            block, tangents, mode, trace, out_vec, np.empty((1, 1, 1)),
        )

    def _covariances(self, x, alpha, sigma2):
        """``Cov_w[x_k] (M, d, d)``, exactly symmetric, centred about the nearest point."""
        n_query, dim = x.shape
        cov = np.empty((n_query, dim, dim))
        if n_query == 0:
            return cov
        if dim <= DIRECT_MAX_DIM:
            scale, coef, _, _ = self._scales(x, alpha, sigma2)
            block = min(DIRECT_BLOCK, self.n_data)
            centred_moments_direct(
                x, alpha, scale, coef, self.data, self._data_t,
                self._references(x, alpha, scale), block, np.zeros((1, dim)), MODE_MATRIX,
                np.empty(n_query), np.empty((1, dim)), cov,
            )
        else:
            # Dense logits by direct differences (O(N d) per query), then the covariance
            # of the points with non-zero weight by one matrix product per query.
            rows = max(1, (1 << 22) // self.n_data)
            for lo in range(0, n_query, rows):
                sl = slice(lo, lo + rows)
                cov[sl] = self._covariances_dense(x[sl], alpha[sl], sigma2[sl])
        # Symmetric to the last bit (the kernel fills both triangles alike; BLAS may not).
        return 0.5 * (cov + np.swapaxes(cov, 1, 2))

    def _covariances_dense(self, x, alpha, sigma2):
        scale, coef, _, _ = self._scales(x, alpha, sigma2)
        logits = np.empty((x.shape[0], self.n_data))
        block = min(DIRECT_BLOCK, self.n_data)
        log_weights_direct(x, alpha, scale, coef, self.data, self._data_t, block, logits)
        out = np.empty((x.shape[0], self.dim, self.dim))
        for m in range(x.shape[0]):
            row = logits[m]
            ref = int(np.argmax(row))
            # Flushed as in the kernels: below e^-100 of the top, a weight is 0.
            keep = np.flatnonzero(row >= row[ref] - FLUSH_NATS)
            w = np.exp(row[keep] - row[ref])
            w /= w.sum()
            offset = self.data[keep] - self.data[ref]  # exact for close points
            centred = offset - w @ offset
            out[m] = (centred * w[:, None]).T @ centred
        return out

    def _centred_blas(self, x, alpha, sigma2, v, trace, vec):
        """The BLAS path of :meth:`_second_moments` (d > 16): rows as in :meth:`_moments_blas`."""
        xc = x - alpha[:, None] * self._centre
        with np.errstate(over="ignore", invalid="ignore"):
            bound = (
                np.finfo(float).eps * alpha
                * (np.linalg.norm(xc, axis=1) * self._radius + alpha * self._radius**2) / sigma2
            )
            direct = ~(bound * self.dim <= DIRECT_ROW_NATS)
        if direct.any():
            sub_vec = None if v is None else np.empty((direct.sum(), self.dim))
            sub_trace = np.empty(direct.sum())
            self._centred_direct(x[direct], alpha[direct], sigma2[direct],
                                 None if v is None else v[direct], sub_trace, sub_vec)
            trace[direct] = sub_trace
            if v is not None:
                vec[direct] = sub_vec
        rows = np.flatnonzero(~direct)
        if rows.size == 0:
            return

        def run(lo):
            q = rows[lo : lo + TILE_ROWS]
            tr, cv = self._centred_blas_rows(
                x[q], xc[q], alpha[q], sigma2[q], bound[q], None if v is None else v[q]
            )
            trace[q] = tr
            if v is not None:
                vec[q] = cv

        starts = range(0, rows.size, TILE_ROWS)
        workers = min(numba.get_num_threads(), len(starts))
        if workers == 1:
            for lo in starts:
                run(lo)
            return
        with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, starts))

    @property
    def _centred_ext_t(self):
        """``[y_k, |y_k|^2, 1]^T`` (d + 2, N): one matrix product gives a tile's weighted
        sums of ``y_k``, of ``|y_k|^2`` and of the weights. Stored transposed: the
        product ``ext^T tile^T`` (long inner dimension, d + 2 output rows) runs 1.3-1.7x
        faster in OpenBLAS than ``tile ext`` with its narrow ``d + 2`` output columns."""
        ext_t = getattr(self, "_centred_ext_t_cache", None)
        if ext_t is None:
            ext_t = np.empty((self.dim + 2, self.n_data))
            ext_t[: self.dim] = self._data_t - self._centre[:, None]
            ext_t[self.dim] = self._sq_norms
            ext_t[self.dim + 1] = 1.0
            self._centred_ext_t_cache = ext_t
        return ext_t

    def _centred_blas_rows(self, x, xc, alpha, sigma2, bound, v):
        """One block of query rows: ``tr Cov_w`` and ``Cov_w v`` (or None).

        Unrefined rows take the tile's sums from matrix products about the data mean
        ``c`` (error ``~ eps alpha R^2 / sigma2 <= LOGIT_TOL`` in ``grad D``, see
        docs/numerics.md#derivatives); refined rows are centred about ``x_r`` by direct
        differences (:func:`tile_centred`). Blocks merge by Chan's formula.
        """
        y, sq_norms, ext_t = self._centred, self._sq_norms, self._centred_ext_t
        n_rows, dim = x.shape
        refine = bound > LOGIT_TOL
        window = REFINE_WINDOW + 4.0 * dim * bound
        ref_point = np.zeros_like(x)
        ref_logit = np.zeros(n_rows)
        if refine.any():
            a = alpha[refine]
            ref = knn(self.data, x[refine] / a[:, None], 1, self._data_t, y, sq_norms)[0][:, 0]
            ref_point[refine] = self.data[ref]
            ref_logit[refine] = (a / sigma2[refine]) * (
                np.einsum("ij,ij->i", xc[refine], y[ref]) - 0.5 * a * sq_norms[ref]
            )
        u = residual_rows(x, alpha, ref_point)
        use_v = v is not None
        tangents = v if use_v else np.zeros_like(x)
        mode = MODE_VECTOR if use_v else MODE_TRACE
        run_max = np.full(n_rows, -np.inf)
        run_sum = np.zeros(n_rows)
        mean = np.zeros_like(x)
        m2 = np.zeros(n_rows)
        acc = np.zeros_like(x)
        block_max = np.empty(n_rows)
        block_sum = np.empty(n_rows)
        block_shift = np.zeros_like(x)
        # With v, the tile's weights (top rows) and the weighted projections v . y_k
        # (bottom rows) share one buffer, so that one product with [y, |y|^2, 1]
        # gives all the block sums.
        n_buf = 2 * n_rows if use_v else n_rows
        buffer = np.empty((n_buf, min(TILE_COLS, self.n_data)))
        # The left factors of the cross terms, stacked: one product gives both x . y_k
        # and v . y_k (one larger matrix multiply runs faster than two).
        lhs = np.concatenate([xc, tangents]) if use_v else xc
        sums_t = np.empty((dim + 2, n_buf))
        sums = sums_t.T
        for start in range(0, self.n_data, TILE_COLS):
            cols = slice(start, start + TILE_COLS)
            n_cols = min(TILE_COLS, self.n_data - start)
            tile = buffer[:n_rows, :n_cols]
            np.matmul(lhs, y[cols].T, out=buffer[:, :n_cols])
            tile_weights(
                tile, alpha, sigma2, sq_norms[cols], refine, ref_logit, ref_point, u,
                self.data[cols], window, block_max, block_sum, block_shift,
            )
            valid = block_max > -np.inf
            safe_sum = np.where(valid, block_sum, 1.0)
            # Unrefined rows: block sums by matrix products (mean and moment about c).
            if use_v:
                proj = buffer[n_rows:, :n_cols]
                np.multiply(proj, tile, out=proj)
            np.matmul(ext_t[:, cols], buffer[:, :n_cols].T, out=sums_t)
            mean_b = sums[:n_rows, :dim] / safe_sum[:, None]
            m2_b = np.maximum(
                sums[:n_rows, dim] - np.einsum("ij,ij->i", sums[:n_rows, :dim], mean_b), 0.0
            )
            if use_v:
                # sum e (y - m)((y - m).v) = sum e y (y.v) - m sum e (y.v)
                acc_b = sums[n_rows:, :dim] - mean_b * sums[n_rows:, dim + 1][:, None]
            else:
                acc_b = np.zeros_like(x)
            if refine.any():
                tile_centred(tile, refine, ref_point, self.data[cols], block_sum, tangents, mode,
                             mean_b, m2_b, acc_b)
            # Chan's merge, rows at once.
            new_max = np.maximum(run_max, block_max)
            fa = np.exp(run_max - new_max)
            fb = np.where(valid, np.exp(block_max - new_max), 0.0)
            sa = run_sum * fa
            sb = np.where(valid, block_sum, 0.0) * fb
            total = sa + sb
            cross = sa * (sb / total)
            delta = np.where(valid[:, None], mean_b - mean, 0.0)
            m2 = m2 * fa + m2_b * fb + np.einsum("ij,ij->i", delta, delta) * cross
            if use_v:
                dv = np.einsum("ij,ij->i", delta, tangents)
                acc = acc * fa[:, None] + acc_b * fb[:, None] + delta * (dv * cross)[:, None]
            mean = mean + delta * (sb / total)[:, None]
            run_max = new_max
            run_sum = total
        return m2 / run_sum, (acc / run_sum[:, None] if use_v else None)
