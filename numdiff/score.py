"""The empirical optimal score of a finite dataset.

For data ``x_1..x_N`` in ``R^d`` the diffused empirical law is the Gaussian
mixture ``p_t = (1/N) sum_k N(alpha_t x_k, sigma2_t I)``. Its score is the exact
minimiser of denoising score matching:

    w_k(t, x) = softmax_k(-|x - alpha_t x_k|^2 / (2 sigma2_t))
    D(t, x)   = sum_k w_k x_k                       (Tweedie denoiser)
    s(t, x)   = (alpha_t D(t, x) - x) / sigma2_t

Two kernels compute ``D`` and ``log sum_k exp(.)`` with an online,
log-sum-exp-stable merge over data blocks (DESIGN.md §4): a fused
direct-difference loop for small ``d`` and a BLAS cross term for large ``d``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from numdiff._kernels.direct import knn_direct, mixture_moments_direct
from numdiff._kernels.exact import residual_rows
from numdiff._kernels.tiles import tile_weights
from numdiff.schedules import Schedule

__all__ = ["EmpiricalScore"]

# Dimension up to which the direct-difference kernel beats the BLAS path
# (benchmarks/bench_score.py).
DIRECT_MAX_DIM = 16
# Data points per block of the online merge (direct kernel) and tile shape of the
# BLAS path; both keep the per-thread working set in L2.
DIRECT_BLOCK = 512
TILE_ROWS = 512
TILE_COLS = 4096
# BLAS logits whose rounding estimate exceeds this are refined by direct
# differences (tests/numdiff/test_score_oracle.py holds both sides to 1e-12).
LOGIT_TOL = 1e-12
# Largest dense weight matrix (M * N entries, 1 GiB) before top_k is required.
DENSE_WEIGHTS_MAX = 1 << 27
# Entries within this many nats of the reference are recomputed when refining;
# exp(-40) is below the float64 resolution of a sum whose largest term is 1.
REFINE_WINDOW = 40.0


@cache
def _blas_controller():
    """One scan of the loaded BLAS libraries (0.47 ms per ``threadpool_limits`` call
    against 0.02 ms per ``limit`` of a kept controller: sampling calls often)."""
    return ThreadpoolController()


def _as_points(x, dim, name="x"):
    """Validate points: ``(M, d)`` (or ``(d,)``) finite reals -> float64 ``(M, d)``."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be an array of real numbers")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of real numbers") from err
    if arr.ndim == 1 and dim is not None:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (M, d); got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have d = {dim} columns; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(arr)


class EmpiricalScore:
    """Exact score, denoiser and log-density of a diffused empirical law.

    Parameters
    ----------
    data : array_like, shape (N, d)
        Training points, finite.
    schedule : Schedule
        The forward process (``nd.OU()``, ``nd.VPLinear()``, ...).

    Notes
    -----
    All methods take ``t`` as a scalar or an array of shape ``(M,)`` (one time
    per query), with ``0 < t <= schedule.t_max``, and ``x`` of shape ``(M, d)``.
    Memory is ``O((M + N) d)`` plus one tile; there is never an ``M x N x d``
    temporary. Results are accurate to about 1e-14 relative to the data's scale
    (tests/numdiff/test_score_oracle.py compares with 50-digit mpmath).
    """

    def __init__(self, data, schedule):
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a numdiff Schedule; got {type(schedule).__name__}")
        data = _as_points(data, None, "data")
        if data.shape[0] == 0 or data.shape[1] == 0:
            raise ValueError(f"data must be non-empty; got shape {data.shape}")
        self.data = data
        self.schedule = schedule
        self.n_data, self.dim = data.shape
        self._data_t = np.ascontiguousarray(data.T)
        # Centred copy for the BLAS path: the softmax is invariant to the shift,
        # and centring shrinks |y_k|, hence the rounding of x . y_k.
        self._centre = data.mean(axis=0)
        self._centred = data - self._centre
        self._centred_t = np.ascontiguousarray(self._centred.T)
        self._sq_norms = np.einsum("ij,ij->i", self._centred, self._centred)
        # Scale of the rounding of x . y_k: |y_k| plus the centring's own error.
        self._radius = float(np.sqrt(self._sq_norms.max()) + np.linalg.norm(self._centre))

    def __repr__(self):
        return f"EmpiricalScore(N={self.n_data}, d={self.dim}, schedule={self.schedule!r})"

    # -- public API ---------------------------------------------------------
    def denoise(self, t, x):
        """Posterior mean ``D(t, x) = E[X_0 | X_t = x]``.

        Parameters
        ----------
        t : float or ndarray, shape (M,)
        x : ndarray, shape (M, d)

        Returns
        -------
        ndarray, shape (M, d)
        """
        x, alpha, sigma2 = self._prepare(t, x)
        return self._moments(x, alpha, sigma2)[0]

    def score(self, t, x):
        """Score ``grad log p_t(x) = (alpha_t D(t, x) - x) / sigma2_t``, shape ``(M, d)``."""
        x, alpha, sigma2 = self._prepare(t, x)
        denoised = self._moments(x, alpha, sigma2)[0]
        return (alpha[:, None] * denoised - x) / sigma2[:, None]

    def log_density(self, t, x):
        """Normalised ``log p_t(x)`` of the Gaussian mixture, shape ``(M,)``."""
        x, alpha, sigma2 = self._prepare(t, x)
        logsum = self._moments(x, alpha, sigma2)[1]
        return logsum - np.log(self.n_data) - 0.5 * self.dim * np.log(2.0 * np.pi * sigma2)

    def weights(self, t, x, top_k=None):
        """Posterior weights ``w_k(t, x)`` over the data indices.

        Parameters
        ----------
        t : float or ndarray, shape (M,)
        x : ndarray, shape (M, d)
        top_k : int, optional
            Return only the ``top_k`` largest weights per query.

        Returns
        -------
        ndarray, shape (M, N)
            Dense weights (rows sum to 1), when ``top_k`` is None.
        (idx, w) : ndarray int64, shape (M, top_k), and ndarray, shape (M, top_k)
            Indices and weights sorted by decreasing weight, otherwise.
        """
        x, alpha, sigma2 = self._prepare(t, x)
        if top_k is not None:
            if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
                raise TypeError("top_k must be an int")
            if not 1 <= top_k <= self.n_data:
                raise ValueError(f"top_k must be in [1, N = {self.n_data}]; got {top_k}")
        if top_k is None and x.shape[0] * self.n_data > DENSE_WEIGHTS_MAX:
            raise ValueError(
                f"top_k: dense weights would hold M * N = {x.shape[0] * self.n_data} numbers; "
                f"pass top_k (e.g. top_k=16) for large N"
            )
        logsum = self._moments(x, alpha, sigma2)[1]
        rows = max(1, (1 << 22) // self.n_data)
        dense, idx_out, w_out = [], [], []
        for lo in range(0, x.shape[0], rows):
            sl = slice(lo, lo + rows)
            sq = self._scaled_sq_dist(x[sl], alpha[sl])
            logw = -sq / (2.0 * sigma2[sl, None]) - logsum[sl, None]
            if top_k is None:
                dense.append(np.exp(logw))
                continue
            idx = np.argpartition(-logw, top_k - 1, axis=1)[:, :top_k]
            part = np.take_along_axis(logw, idx, axis=1)
            order = np.argsort(-part, axis=1, kind="stable")
            idx_out.append(np.take_along_axis(idx, order, axis=1))
            w_out.append(np.exp(np.take_along_axis(part, order, axis=1)))
        if top_k is None:
            return np.concatenate(dense)
        return np.concatenate(idx_out).astype(np.int64), np.concatenate(w_out)

    def nearest(self, x, k=1):
        """The ``k`` training points nearest to each query (Euclidean).

        Parameters
        ----------
        x : ndarray, shape (M, d)
        k : int

        Returns
        -------
        idx : ndarray of int64, shape (M, k)
        dist : ndarray, shape (M, k)
            Sorted by increasing distance.
        """
        x = _as_points(x, self.dim)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError("k must be an int")
        if not 1 <= k <= self.n_data:
            raise ValueError(f"k must be in [1, N = {self.n_data}]; got {k}")
        return self._knn(x - self._centre, k)

    # -- internals ------------------------------------------------------------
    def _prepare(self, t, x):
        x = _as_points(x, self.dim)
        t_arr = np.asarray(t, dtype=np.float64) if not isinstance(t, (str, bytes)) else None
        if t_arr is None:
            raise TypeError("t must be a real number or an array of shape (M,)")
        if t_arr.ndim != 0 and t_arr.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or of shape (M,) = ({x.shape[0]},); got {t_arr.shape}")
        if np.isnan(t_arr).any():
            raise ValueError("t contains NaN")
        if (t_arr <= 0).any():
            raise ValueError(f"t must be > 0 (sigma_t = 0 at t = 0); got min {t_arr.min()!r}")
        if t_arr.ndim == 0:
            # The sampler's case: one time for all queries, one schedule evaluation.
            alpha = np.full(x.shape[0], self.schedule.alpha(t_arr))
            sigma2 = np.full(x.shape[0], self.schedule.sigma2(t_arr))
        else:
            uniq, inverse = np.unique(t_arr, return_inverse=True)
            alpha = self.schedule.alpha(uniq)[inverse]
            sigma2 = self.schedule.sigma2(uniq)[inverse]
        if not (sigma2 > 0).all():
            raise ValueError("t: sigma_t^2 underflows to 0 at this time; use a larger t")
        return x, alpha, sigma2

    def _moments(self, x, alpha, sigma2):
        """``D (M, d)`` and ``log sum_k exp(-|x - alpha x_k|^2 / (2 sigma2)) (M,)``."""
        denoised = np.empty_like(x)
        logsum = np.empty(x.shape[0])
        if x.shape[0] == 0:
            return denoised, logsum
        if self.dim <= DIRECT_MAX_DIM:
            block = min(DIRECT_BLOCK, self.n_data)
            mixture_moments_direct(x, alpha, sigma2, self.data, self._data_t, block, denoised, logsum)
        else:
            self._moments_blas(x, alpha, sigma2, denoised, logsum)
        return denoised, logsum

    def _moments_blas(self, x, alpha, sigma2, denoised, logsum):
        # Query blocks are independent; memory O(workers * TILE_ROWS * (TILE_COLS + d)).
        # Each worker runs single-threaded BLAS and the serial tile kernel, so the
        # matrix multiplies of one block overlap the exponentials of another: at
        # d = 64 (K = 64 GEMMs) this beats two-threaded BLAS calls in sequence.
        def run(lo):
            q = slice(lo, lo + TILE_ROWS)
            denoised[q], logsum[q] = self._moments_blas_rows(x[q], alpha[q], sigma2[q])

        starts = range(0, x.shape[0], TILE_ROWS)
        workers = min(numba.get_num_threads(), len(starts))
        if workers == 1:
            for lo in starts:
                run(lo)
            return
        with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, starts))

    def _moments_blas_rows(self, x, alpha, sigma2):
        y, sq_norms = self._centred, self._sq_norms
        xc = x - alpha[:, None] * self._centre
        xc_sq = np.einsum("ij,ij->i", xc, xc)
        bound = (
            np.finfo(float).eps * alpha
            * (np.sqrt(xc_sq) * self._radius + alpha * self._radius**2) / sigma2
        )
        refine = bound > LOGIT_TOL
        # Refined rows work relative to their nearest data point x_r, in the raw
        # (uncentred) coordinates, where x_k - x_r is exact for close points.
        ref_point = np.zeros_like(x)
        ref_logit = np.zeros(x.shape[0])
        if refine.any():
            a = alpha[refine]
            ref = self._knn(xc[refine] / a[:, None], 1)[0][:, 0]
            ref_point[refine] = self.data[ref]
            ref_logit[refine] = (a / sigma2[refine]) * (
                np.einsum("ij,ij->i", xc[refine], y[ref]) - 0.5 * a * sq_norms[ref]
            )
        u = residual_rows(x, alpha, ref_point)
        run_max = np.full(x.shape[0], -np.inf)
        run_sum = np.zeros(x.shape[0])
        acc = np.zeros_like(x)
        block_max = np.empty(x.shape[0])
        block_sum = np.empty(x.shape[0])
        # One tile buffer, reused: a fresh 16 MB array per tile costs its page faults.
        buffer = np.empty((x.shape[0], min(TILE_COLS, self.n_data)))
        for start in range(0, self.n_data, TILE_COLS):
            cols = slice(start, start + TILE_COLS)
            tile = buffer[:, : min(TILE_COLS, self.n_data - start)]
            np.matmul(xc, y[cols].T, out=tile)
            tile_weights(
                tile, alpha, sigma2, sq_norms[cols], refine, ref_logit, ref_point, u,
                self.data[cols], REFINE_WINDOW, block_max, block_sum,
            )
            new_max = np.maximum(run_max, block_max)
            shrink = np.exp(run_max - new_max)
            grow = np.exp(block_max - new_max)
            run_sum = run_sum * shrink + block_sum * grow
            acc = acc * shrink[:, None] + (tile @ y[cols]) * grow[:, None]
            run_max = new_max
        base = np.where(refine, np.einsum("ij,ij->i", u, u), xc_sq)
        return self._centre + acc / run_sum[:, None], run_max + np.log(run_sum) - base / (2.0 * sigma2)

    def _scaled_sq_dist(self, x, alpha):
        """``|x_m - alpha_m x_k|^2`` by direct differences, shape ``(M, N)``."""
        out = np.zeros((x.shape[0], self.n_data))
        for j in range(self.dim):
            diff = x[:, j, None] - alpha[:, None] * self._data_t[j][None, :]
            out += diff * diff
        return out

    def _knn(self, xc, k):
        """k nearest centred data points to centred queries ``xc``: (idx, dist)."""
        idx_out = np.empty((xc.shape[0], k), dtype=np.int64)
        dist_out = np.empty((xc.shape[0], k))
        if self.dim <= DIRECT_MAX_DIM:
            knn_direct(xc, self._centred_t, min(DIRECT_BLOCK, self.n_data), idx_out, dist_out)
            return idx_out, np.sqrt(dist_out)
        y, sq_norms = self._centred, self._sq_norms
        n_cand = min(self.n_data, k + 7)
        rows = max(1, (1 << 22) // self.n_data)
        for lo in range(0, xc.shape[0], rows):
            q = slice(lo, lo + rows)
            # Rank by the BLAS expansion, then recompute the few candidates exactly.
            approx = sq_norms[None, :] - 2.0 * (xc[q] @ y.T)
            cand = np.argpartition(approx, n_cand - 1, axis=1)[:, :n_cand]
            diff = xc[q][:, None, :] - y[cand]
            exact = np.einsum("mcj,mcj->mc", diff, diff)
            order = np.argsort(exact, axis=1, kind="stable")[:, :k]
            idx_out[q] = np.take_along_axis(cand, order, axis=1)
            dist_out[q] = np.sqrt(np.take_along_axis(exact, order, axis=1))
        return idx_out, dist_out
