"""The dense BLAS engine (``d > 16``): the cross term ``q . y_k`` from matrix
products on centred keys, refined by direct differences where it is too coarse.

Rows whose rounding bound, times ``d``, exceeds ``DIRECT_ROW_NATS`` cannot tell
which keys are near the top and go to the direct engine (``fallback``); rows
whose bound exceeds ``LOGIT_TOL`` are refined about their nearest key
(docs/numerics.md#accuracy). Query blocks run on a thread pool, each with
single-threaded BLAS and the serial tile kernel, so that the matrix products of
one block overlap the exponentials of another.
"""

from __future__ import annotations

import numpy as np

from numdiff._kernels.exact import residual_rows
from numdiff._kernels.second_moments import MODE_TRACE, MODE_VECTOR, tile_centred
from numdiff._kernels.threads import in_threads
from numdiff._kernels.tiles import tile_weights
from numdiff.engines import limits
from numdiff.engines.merge import Summary, combine
from numdiff.neighbors import knn


def run_row_blocks(rows, run):
    """``run(block)`` for each block of ``TILE_ROWS`` of ``rows``, on Numba's thread
    count of workers with single-threaded BLAS (memory ``O(workers * TILE_ROWS *
    (TILE_COLS + d))``)."""
    in_threads(run, [rows[lo : lo + limits.TILE_ROWS]
                     for lo in range(0, rows.size, limits.TILE_ROWS)])


class BlasEngine:
    """BLAS tiles with refinement over a :class:`~numdiff.engines.keys.KeySet`.

    Parameters
    ----------
    keys : KeySet
    direct : DirectEngine
        Computes the rows the BLAS logits cannot resolve.
    moments_fallback : callable, optional
        ``f(x, alpha, sigma2, mean, logsum, resid)`` for those rows' first moments
        (default: ``direct.moments_into``; the dispatcher passes the pruned-or-direct
        path).
    """

    name = "blas"

    def __init__(self, keys, direct, moments_fallback=None):
        self.keys = keys
        self.direct = direct
        self.moments_fallback = moments_fallback or direct.moments_into

    def _split(self, x, alpha, sigma2):
        """``xc = x - alpha c``, the rows' rounding bounds, and which rows go direct."""
        xc = x - alpha[:, None] * self.keys.centre
        bound = self.keys.rounding_bounds(xc, alpha, sigma2)
        with np.errstate(over="ignore", invalid="ignore"):
            direct = ~(bound * self.keys.dim <= limits.DIRECT_ROW_NATS)
        return xc, bound, direct

    def moments_into(self, x, alpha, sigma2, mean, logsum, resid):
        """Fill ``(mean, logsum, resid)`` as :meth:`DirectEngine.moments_into`."""
        xc, bound, direct = self._split(x, alpha, sigma2)
        if direct.any():
            out = [np.empty_like(x[direct]), np.empty(direct.sum()), np.empty_like(x[direct])]
            self.moments_fallback(x[direct], alpha[direct], sigma2[direct], *out)
            mean[direct], logsum[direct], resid[direct] = out

        def run(q):
            mean[q], logsum[q], resid[q] = self._moment_rows(x[q], xc[q], alpha[q], sigma2[q],
                                                             bound[q])

        run_row_blocks(np.flatnonzero(~direct), run)

    def centred_into(self, x, alpha, sigma2, v, trace, vec):
        """Fill ``trace`` and ``vec`` as :meth:`DirectEngine.centred_into`."""
        xc, bound, direct = self._split(x, alpha, sigma2)
        if direct.any():
            sub_vec = None if v is None else np.empty((direct.sum(), self.keys.dim))
            sub_trace = np.empty(direct.sum())
            self.direct.centred_into(x[direct], alpha[direct], sigma2[direct],
                                     None if v is None else v[direct], sub_trace, sub_vec)
            trace[direct] = sub_trace
            if v is not None:
                vec[direct] = sub_vec

        def run(q):
            tr, cv = self._centred_rows(x[q], xc[q], alpha[q], sigma2[q], bound[q],
                                        None if v is None else v[q])
            trace[q] = tr
            if v is not None:
                vec[q] = cv

        run_row_blocks(np.flatnonzero(~direct), run)

    def covariances(self, x, alpha, sigma2):
        """``Cov_w (M, d, d)``: dense logits by direct differences (``O(N d)`` per
        query), then the covariance of the keys with non-zero weight by one matrix
        product per query, about the nearest key."""
        keys = self.keys
        cov = np.empty((x.shape[0], keys.dim, keys.dim))
        rows = max(1, limits.DENSE_BLOCK_ENTRIES // keys.n_data)
        for lo in range(0, x.shape[0], rows):
            sl = slice(lo, lo + rows)
            logits = self.direct.log_weights(x[sl], alpha[sl], sigma2[sl])
            for m, row in enumerate(logits, start=lo):
                ref = int(np.argmax(row))
                # Flushed as in the kernels: below e^-100 of the top, a weight is 0.
                keep = np.flatnonzero(row >= row[ref] - limits.FLUSH_NATS)
                w = np.exp(row[keep] - row[ref])
                w /= w.sum()
                offset = keys.data[keep] - keys.data[ref]  # exact for close keys
                centred = offset - w @ offset
                cov[m] = (centred * w[:, None]).T @ centred
        return cov

    # -- one block of query rows -------------------------------------------------
    def _references(self, x, xc, alpha, sigma2, refine):
        """Refined rows' nearest key ``x_r`` (zeros elsewhere), its BLAS logit, and the
        compensated residual ``u = x - alpha x_r``. Refined rows work relative to
        ``x_r`` in the raw (uncentred) coordinates, where ``y_k - x_r`` is exact for
        close keys."""
        keys = self.keys
        ref_point = np.zeros_like(x)
        ref_logit = np.zeros(x.shape[0])
        if refine.any():
            a = alpha[refine]
            ref = knn(keys.data, x[refine] / a[:, None], 1, keys.data_t, keys.centred,
                      keys.sq_norms)[0][:, 0]
            ref_point[refine] = keys.data[ref]
            ref_logit[refine] = (a / sigma2[refine]) * (
                np.einsum("ij,ij->i", xc[refine], keys.centred[ref])
                - 0.5 * a * keys.sq_norms[ref]
            )
        return ref_point, ref_logit, residual_rows(x, alpha, ref_point)

    def _moment_rows(self, x, xc, alpha, sigma2, bound):
        keys = self.keys
        y, n_data = keys.centred, keys.n_data
        refine = bound > limits.LOGIT_TOL
        # The entries to recompute: within the window of the reference, widened by
        # the rounding of both the entry and the reference (each <= d * bound).
        window = limits.REFINE_WINDOW + 4.0 * keys.dim * bound + keys.log_count_max
        ref_point, ref_logit, u = self._references(x, xc, alpha, sigma2, refine)
        no_counts = np.empty(0)
        # Unrefined rows accumulate sum w y_k (centred), refined rows sum w (y_k - x_r).
        run = Summary.zero(*x.shape)
        block_max = np.empty(x.shape[0])
        block_sum = np.empty(x.shape[0])
        block_shift = np.zeros_like(x)
        # One tile buffer, reused: a fresh 16 MB array per tile costs its page faults.
        buffer = np.empty((x.shape[0], min(limits.TILE_COLS, n_data)))
        for start in range(0, n_data, limits.TILE_COLS):
            cols = slice(start, start + limits.TILE_COLS)
            tile = buffer[:, : min(limits.TILE_COLS, n_data - start)]
            np.matmul(xc, y[cols].T, out=tile)
            tile_weights(
                tile, alpha, sigma2, keys.sq_norms[cols], refine, ref_logit, ref_point, u,
                keys.data[cols], window,
                no_counts if keys.log_counts is None else keys.log_counts[cols],
                block_max, block_sum, block_shift,
            )
            block_acc = np.where(refine[:, None], block_shift, tile @ y[cols])
            run = combine(run, Summary(block_max, block_sum, block_acc))
        base = np.where(refine, np.einsum("ij,ij->i", u, u), np.einsum("ij,ij->i", xc, xc))
        shift = run.mean / run.sum[:, None]
        mean = np.where(refine[:, None], ref_point + shift, keys.centre + shift)
        resid = np.where(refine[:, None], alpha[:, None] * shift - u, alpha[:, None] * mean - x)
        return mean, run.max + np.log(run.sum) - base / (2.0 * sigma2), resid

    def _centred_rows(self, x, xc, alpha, sigma2, bound, v):
        """One block of query rows: ``tr Cov_w`` and ``Cov_w v`` (or None).

        Unrefined rows take the tile's sums from matrix products about the key mean
        ``c`` (error ``~ eps alpha R^2 / sigma2 <= LOGIT_TOL`` in ``grad D``, see
        docs/numerics.md#derivatives); refined rows are centred about ``x_r`` by direct
        differences (:func:`tile_centred`). Tiles merge by :func:`combine`.
        """
        keys = self.keys
        y, ext_t, n_data = keys.centred, keys.ext_t, keys.n_data
        n_rows, dim = x.shape
        refine = bound > limits.LOGIT_TOL
        window = limits.REFINE_WINDOW + 4.0 * dim * bound
        ref_point, ref_logit, u = self._references(x, xc, alpha, sigma2, refine)
        use_v = v is not None
        tangents = v if use_v else np.zeros_like(x)
        mode = MODE_VECTOR if use_v else MODE_TRACE
        run = Summary.zero(n_rows, dim, centred=True, tangents=use_v)
        block_max = np.empty(n_rows)
        block_sum = np.empty(n_rows)
        block_shift = np.zeros_like(x)
        # With v, the tile's weights (top rows) and the weighted projections v . y_k
        # (bottom rows) share one buffer, so that one product with [y, |y|^2, 1]
        # gives all the block sums.
        n_buf = 2 * n_rows if use_v else n_rows
        buffer = np.empty((n_buf, min(limits.TILE_COLS, n_data)))
        # The left factors of the cross terms, stacked: one product gives both x . y_k
        # and v . y_k (one larger matrix multiply runs faster than two).
        lhs = np.concatenate([xc, tangents]) if use_v else xc
        sums_t = np.empty((dim + 2, n_buf))
        sums = sums_t.T
        for start in range(0, n_data, limits.TILE_COLS):
            cols = slice(start, start + limits.TILE_COLS)
            n_cols = min(limits.TILE_COLS, n_data - start)
            tile = buffer[:n_rows, :n_cols]
            np.matmul(lhs, y[cols].T, out=buffer[:, :n_cols])
            tile_weights(
                tile, alpha, sigma2, keys.sq_norms[cols], refine, ref_logit, ref_point, u,
                keys.data[cols], window, np.empty(0), block_max, block_sum, block_shift,
            )
            safe_sum = np.where(block_max > -np.inf, block_sum, 1.0)
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
                tile_centred(tile, refine, ref_point, keys.data[cols], block_sum, tangents, mode,
                             mean_b, m2_b, acc_b)
            block = Summary(block_max, block_sum, mean_b, m2_b, acc_b if use_v else None)
            run = combine(run, block, tangents)
        return run.m2 / run.sum, (run.acc / run.sum[:, None] if use_v else None)
