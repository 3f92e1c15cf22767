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

from numdiff._checks import as_count, as_real_array
from numdiff._checks import as_points as _as_points
from numdiff._kernels.direct import log_weights_direct, mixture_moments_direct
from numdiff._kernels.exact import residual_rows
from numdiff._kernels.tiles import tile_weights
from numdiff.neighbors import knn
from numdiff.schedules import Schedule

__all__ = ["EmpiricalScore", "TopWeights"]

# Dimension up to which the direct-difference kernel beats the BLAS path
# (benchmarks/bench_score.py).
DIRECT_MAX_DIM = 16
# Data points per block of the online merge (direct kernel) and tile shape of the
# BLAS path; both keep the per-thread working set in L2.
DIRECT_BLOCK = 512
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

    Notes
    -----
    All methods take ``t`` as a scalar or an array of shape ``(M,)`` (one time
    per query), with ``0 < t <= schedule.t_max`` and ``sigma2_t`` a normal float
    (``>= 2.2e-308``), and ``x`` of shape ``(M, d)``. Memory is ``O((M + N) d)``
    plus one tile; there is never an ``M x N x d`` temporary. Accuracy and its
    limits: docs/numerics.md#accuracy (tests/numdiff/test_score_oracle.py and
    tests/numdiff/test_score_fuzz.py compare with 50-digit references).
    """

    def __init__(self, data, schedule):
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
        return knn(self.data, x, k, self._data_t, self._centred, self._sq_norms)

    # -- internals ------------------------------------------------------------
    def _prepare(self, t, x):
        x = _check_magnitude(_as_points(x, self.dim), "x")
        t_arr = as_real_array(t, "t")
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
        if not (sigma2 >= np.finfo(np.float64).tiny).all():
            # A subnormal sigma2 has lost relative precision (and 0 is a point mass).
            raise ValueError(
                "t: sigma_t^2 is below the smallest normal float (2.2e-308) at this time; "
                "use a larger t"
            )
        if not (alpha > 0).all():
            raise ValueError("t: alpha_t underflows to 0 at this time; use a smaller t")
        return x, alpha, sigma2

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
        scale, coef, mant, expo = self._scales(x, alpha, sigma2)
        u2 = np.empty(x.shape[0])
        block = min(DIRECT_BLOCK, self.n_data)
        mixture_moments_direct(
            x, alpha, scale, coef, self.data, self._data_t, block, denoised, logsum, u2, resid
        )
        # |u|^2 / (2 sigma2) = u2 * mant * 2^expo; ldexp saturates to inf, the
        # correctly rounded value when it exceeds the float range.
        with np.errstate(over="ignore"):
            logsum -= np.ldexp(u2 * mant, expo)

    def _moments_blas(self, x, alpha, sigma2, denoised, logsum, resid):
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
