"""The CUDA engine: first moments of the softmax on an NVIDIA GPU, the engine that
``EmpiricalScore(..., device="cuda")`` selects.

Same mathematics, same accuracy argument and same float64 as the CPU model
(:mod:`numdiff.engines`, docs/numerics.md#accuracy):

* ``d <= 32``: the fused direct-difference kernels of :mod:`numdiff.gpu._direct`
  (nearest point, then relative logits and the online merge in registers;
  partial results of data splits merged by :func:`numdiff.engines.merge.reduce_parts`).
  No ``M x N`` array.
* ``d > 32``: per tile of data, the cross term from cuBLAS on centred data, the row
  kernel of :mod:`numdiff.gpu._tiles` (weights and online merge, refinement of
  rows whose rounding bound exceeds ``LOGIT_TOL``), and the weighted sum of the
  data by a second cuBLAS product. Memory ``O((M + N) d)`` plus one tile (at most
  ``TILE_ENTRIES`` floats, 256 MiB).

Rows the GPU kernels do not cover are computed by the CPU engines and copied over:
direct-path queries whose nearest point by rounded distances falls short of the
largest logit by more than the float range (``|x|`` dwarfs the data's spacing),
and matrix-multiply rows whose rounding bound exceeds ``HOST_ROW_NATS`` (their
refinement window would span most of the data). Both are far from any sampler's
path; each costs a transfer of those rows.
"""

from __future__ import annotations

import math

import numpy as np

from numdiff._checks import alpha_sigma2, as_points
from numdiff.engines.limits import LOGIT_TOL, MAX_MAGNITUDE, check_magnitude
from numdiff.engines.merge import reduce_parts
from numdiff.engines.results import Moments
from numdiff.gpu import _direct, _tiles
from numdiff.gpu._runtime import runtime

__all__ = ["CudaEngine"]

_BIGGEST = float(np.finfo(np.float64).max)
_EPS = float(np.finfo(np.float64).eps)
# Data points per split of the direct kernels: enough splits to fill the GPU
# (65536 points give 32 splits, times the query blocks) at a small partial array.
PER_SPLIT = 2048
# Entries of one matrix-multiply tile (rows x columns), 256 MiB of float64: on an
# H200 at d = 64, 2^25 entries ran 2.6x faster than 2^23 (fewer launches, longer rows).
TILE_ENTRIES = 1 << 25
# Query rows per tile of the matrix-multiply path.
TILE_ROWS = 8192
# Fewest data columns per tile (narrow products run far below the GEMM rate).
MIN_TILE_COLS = 256
# Refined entries: within this many nats of the reference (plus the row's rounding
# bound) they are recomputed exactly; the others are 0, below N e^-60 of the sum.
REFINE_WINDOW = 60.0
# Matrix-multiply rows with d * (rounding bound) beyond this many nats are computed
# on the host (see the module docstring).
HOST_ROW_NATS = 1e3


class CudaEngine:
    """First moments on a CUDA GPU over a :class:`~numdiff.engines.keys.KeySet`.

    Parameters
    ----------
    keys : KeySet
        Copied to the GPU once (the host copy stays with the keys).
    host_moments : callable
        ``(x, alpha, sigma2) -> Moments`` on the host: the CPU engines, for the rows
        the GPU kernels do not cover.

    Notes
    -----
    :meth:`moments_at` takes ``x`` as a CuPy or NumPy array of shape ``(M, d)``
    and ``t`` as a scalar or a host array ``(M,)``, and returns CuPy arrays (NumPy
    ones in Numba's CUDA simulator). Each call synchronises once to validate ``x``
    (finite, ``|x| <= 1e300``) and once to find rows for the host; ``x`` itself
    never leaves the GPU.

    Raises
    ------
    numdiff.gpu.CudaUnavailableError
        Without numba-cuda and CuPy, or without a GPU (``NUMBA_ENABLE_CUDASIM=1``
        runs the kernels in Numba's simulator instead).
    """

    name = "cuda"

    def __init__(self, keys, host_moments):
        rt = runtime()
        self.keys = keys
        self.n_data, self.dim = keys.n_data, keys.dim
        self._rt = rt
        self._host_moments = host_moments
        self._d_data = rt.asarray(keys.data)
        if self.dim <= _direct.MAX_DIM:
            self._d_data_t = rt.asarray(keys.data_t)
        else:
            self._d_centre = rt.asarray(keys.centre)
            self._d_centred = rt.asarray(keys.centred)
            self._d_sq_norms = rt.asarray(keys.sq_norms)

    # -- arrays and randomness on the device (used by nd.sample) --------------------
    def to_device(self, a):
        """``a`` as a float64 array on the GPU (a CuPy array; NumPy in the simulator)."""
        return self._rt.asarray(a)

    def to_host(self, a):
        """``a`` as a NumPy array."""
        return self._rt.to_host(a)

    def host_copy(self, a):
        """``a`` on the host if it is a device array, else ``a`` unchanged."""
        return self._rt.to_host(a) if self._rt.is_device_array(a) else a

    def normal_stream(self, rng):
        """A function ``draw(shape)`` of standard normals on the GPU, seeded from the
        NumPy Generator ``rng``: the same ``rng`` state gives the same draws on the
        same GPU model and CuPy version (the simulator draws from ``rng`` itself)."""
        if self._rt.simulator:
            return rng.standard_normal
        gen = self._rt.xp.random.default_rng(int(rng.integers(2**63)))
        return gen.standard_normal

    # -- moments ----------------------------------------------------------------------
    def moments_at(self, schedule, t, x):
        """:class:`~numdiff.engines.results.Moments` of ``x`` at ``t`` and ``sigma2
        (M,)``, all on the device; ``x`` and ``t`` validated here."""
        x, alpha, sigma2 = self._prepare(schedule, t, x)
        return self._moments(x, alpha, sigma2), sigma2

    def moments(self, x, alpha, sigma2):
        """:class:`~numdiff.engines.results.Moments` of host rows, computed on the GPU
        and returned on the host: the engines' protocol (:meth:`Dispatcher.moments
        <numdiff.engines.dispatch.Dispatcher.moments>`), for models that build their
        queries on the host (the local image scores).

        Parameters
        ----------
        x : ndarray, shape (M, d)
            Validated by the caller (finite, within ``MAX_MAGNITUDE``).
        alpha, sigma2 : ndarray, shape (M,)

        Returns
        -------
        Moments
            NumPy arrays ``mean (M, d)``, ``logsum (M,)``, ``resid (M, d)``.
        """
        rt = self._rt
        out = self._moments(rt.asarray(x), rt.asarray(alpha), rt.asarray(sigma2))
        return Moments(*(rt.to_host(a) for a in out))

    def _prepare(self, schedule, t, x):
        rt, xp = self._rt, self._rt.xp
        if rt.is_device_array(x):
            if x.ndim != 2 or x.shape[1] != self.dim:
                raise ValueError(f"x must have shape (M, {self.dim}); got {x.shape}")
            if x.dtype.kind not in "fiu" or x.dtype.kind == "b":
                raise TypeError(f"x must hold real numbers; got dtype {x.dtype}")
            x = rt.asarray(x)
            if x.size:
                top = float(xp.abs(x).max())
                if math.isnan(top) or math.isinf(top):
                    raise ValueError("x contains NaN or infinite values")
                if top > MAX_MAGNITUDE:
                    raise ValueError(f"x: coordinates beyond {MAX_MAGNITUDE:g} are not supported")
        else:
            x = rt.asarray(check_magnitude(as_points(x, self.dim), "x"))
        t = self.host_copy(t)
        if np.ndim(t) == 0:
            alpha, sigma2 = alpha_sigma2(schedule, t, 1)
            return x, xp.full(x.shape[0], alpha[0]), xp.full(x.shape[0], sigma2[0])
        alpha, sigma2 = alpha_sigma2(schedule, t, x.shape[0])
        return x, rt.asarray(alpha), rt.asarray(sigma2)

    def _moments(self, x, alpha, sigma2):
        xp = self._rt.xp
        if x.shape[0] == 0:
            return Moments(x.copy(), xp.empty(0), x.copy())
        if self.dim <= _direct.MAX_DIM:
            out, host = self._moments_direct(x, alpha, sigma2)
        else:
            out, host = self._moments_gemm(x, alpha, sigma2)
        if bool(host.any()):
            rows = xp.flatnonzero(host)
            on_host = self._host_moments(*(self._rt.to_host(a[rows]) for a in (x, alpha, sigma2)))
            for arr, part in zip(out, on_host):
                arr[rows] = self._rt.asarray(part)
        return Moments(*out)

    def _device_scales(self, x, alpha, sigma2):
        """:meth:`KeySet.scales <numdiff.engines.keys.KeySet.scales>` on the device: ``scale``, ``coef``, and
        ``(mant, expo)`` with ``1 / (2 sigma2 scale^2) = mant * 2^expo``."""
        xp = self._rt.xp
        top = xp.maximum(xp.abs(x).max(axis=1), alpha * self.keys.absmax)
        expo_top = xp.clip(xp.frexp(xp.where(top > 0, top, 1.0))[1], -500, 1000)
        scale = xp.ldexp(xp.ones_like(top), -expo_top)
        mant, expo_s2 = xp.frexp(sigma2)
        coef = xp.minimum(xp.ldexp(alpha / (2.0 * mant), expo_top - expo_s2), _BIGGEST)
        return scale, coef, 1.0 / (2.0 * mant), 2 * expo_top - expo_s2

    def _moments_direct(self, x, alpha, sigma2):
        rt, xp = self._rt, self._rt.xp
        n_query, dim = x.shape
        scale, coef, mant, expo = self._device_scales(x, alpha, sigma2)
        a_s = alpha * scale
        n_split = -(-self.n_data // PER_SPLIT)
        per_split = -(-self.n_data // n_split)
        grid = (-(-n_query // _direct.THREADS), n_split)
        arg = rt.kernel_arg
        best = xp.empty((n_query, n_split))
        idx = xp.empty((n_query, n_split), dtype=np.int64)
        _direct.nearest_kernel(dim)[grid, _direct.THREADS](
            arg(x), arg(a_s), arg(scale), arg(self._d_data_t), per_split, arg(best), arg(idx)
        )
        # First minimum over splits: the CPU's first-of-ties.
        ref = xp.ascontiguousarray(idx[xp.arange(n_query), best.argmin(axis=1)])
        part_max = xp.empty((n_query, n_split))
        part_sum = xp.empty((n_query, n_split))
        part_acc = xp.empty((n_query, n_split, dim))
        _direct.moments_kernel(dim)[grid, _direct.THREADS](
            arg(x), arg(ref), arg(alpha), arg(scale), arg(coef), arg(self._d_data),
            arg(self._d_data_t), per_split, arg(part_max), arg(part_sum), arg(part_acc),
        )
        run_max, run_sum, shift = reduce_parts(part_max, part_sum, part_acc, xp)
        ref_point = self._d_data[ref]
        u = xp.empty_like(x)
        _tiles.launch_residual(x, a_s, scale, ref_point, u)
        denoised = ref_point + shift
        resid = alpha[:, None] * shift - u / scale[:, None]
        # |u|^2 / (2 sigma2) = u2 * mant * 2^expo, saturating to inf beyond the range.
        with np.errstate(over="ignore"):
            logsum = run_max + xp.log(run_sum) - xp.ldexp((u * u).sum(axis=1) * mant, expo)
        return (denoised, logsum, resid), run_max >= _BIGGEST

    def _moments_gemm(self, x, alpha, sigma2):
        xp = self._rt.xp
        n_query, dim = x.shape
        xc = x - alpha[:, None] * self._d_centre
        bound = _EPS * alpha * (xp.sqrt((xc * xc).sum(axis=1)) * self.keys.radius
                                + alpha * self.keys.radius**2) / sigma2
        host = ~(bound * dim <= HOST_ROW_NATS)
        denoised, logsum, resid = xp.empty_like(x), xp.empty(n_query), xp.empty_like(x)
        for lo in range(0, n_query, TILE_ROWS):
            q = slice(lo, lo + TILE_ROWS)
            part = self._gemm_rows(x[q], xc[q], alpha[q], sigma2[q], bound[q], host[q])
            denoised[q], logsum[q], resid[q] = part
        return (denoised, logsum, resid), host

    def _gemm_rows(self, x, xc, alpha, sigma2, bound, host):
        """One block of query rows of the matrix-multiply path; rows marked ``host``
        get placeholder values (the caller replaces them)."""
        rt, xp = self._rt, self._rt.xp
        n_rows, dim = x.shape
        y, sq_norms = self._d_centred, self._d_sq_norms
        coef2 = alpha / sigma2
        refine = (bound > LOGIT_TOL) & ~host
        window = REFINE_WINDOW + 4.0 * dim * xp.where(host, 0.0, bound)
        # Host rows take part with weight-0 inputs (their logits may overflow).
        coef2 = xp.where(host, 0.0, coef2)
        n_cols = min(self.n_data, max(MIN_TILE_COLS, TILE_ENTRIES // n_rows))
        ref_point = xp.zeros_like(x)
        ref_logit = xp.zeros(n_rows)
        if bool(refine.any()):
            rows = xp.flatnonzero(refine)
            ref = self._nearest_by_products(xc[rows], alpha[rows], n_cols)
            ref_point[rows] = self._d_data[ref]
            ref_logit[rows] = coef2[rows] * (
                (xc[rows] * y[ref]).sum(axis=1) - 0.5 * alpha[rows] * sq_norms[ref]
            )
        u = xp.empty_like(x)
        _tiles.launch_residual(x, alpha, xp.ones(n_rows), ref_point, u)
        run_max = xp.full(n_rows, -np.inf)
        run_sum = xp.zeros(n_rows)
        acc = xp.zeros_like(x)
        buffer = xp.empty((n_rows, n_cols))
        kernel = _tiles.tile_kernel()
        args = [rt.kernel_arg(a) for a in (
            alpha, coef2, sq_norms, refine.astype(np.uint8), ref_logit, ref_point, u,
            self._d_data, window, run_max, run_sum, acc,
        )]
        buffer_arg = rt.kernel_arg(buffer)
        for start in range(0, self.n_data, n_cols):
            cols = slice(start, min(self.n_data, start + n_cols))
            width = cols.stop - cols.start
            tile = buffer if width == n_cols else xp.empty((n_rows, width))
            xp.matmul(xc, y[cols].T, out=tile)
            tile_arg = buffer_arg if tile is buffer else rt.kernel_arg(tile)
            kernel[n_rows, _tiles.ROW_THREADS](tile_arg, width, start, *args)
            self._add_product(acc, tile, y[cols])
        shift = acc / run_sum[:, None]
        refine_col = refine[:, None]
        denoised = xp.where(refine_col, ref_point + shift, self._d_centre + shift)
        resid = xp.where(refine_col, alpha[:, None] * shift - u, alpha[:, None] * denoised - x)
        base = xp.where(refine, (u * u).sum(axis=1), (xc * xc).sum(axis=1))
        logsum = run_max + xp.log(run_sum) - base / (2.0 * sigma2)
        return denoised, logsum, resid

    def _nearest_by_products(self, xc, alpha, n_cols):
        """Index of the largest ``x . y_k - alpha |y_k|^2 / 2`` per row (the nearest
        data point to ``x / alpha`` up to the rounding of the cross term)."""
        xp = self._rt.xp
        y, sq_norms = self._d_centred, self._d_sq_norms
        best = xp.full(xc.shape[0], -np.inf)
        best_idx = xp.zeros(xc.shape[0], dtype=np.int64)
        for start in range(0, self.n_data, n_cols):
            cols = slice(start, min(self.n_data, start + n_cols))
            s = xc @ y[cols].T - (0.5 * alpha)[:, None] * sq_norms[cols]
            top = s.max(axis=1)
            better = top > best
            best_idx = xp.where(better, s.argmax(axis=1) + start, best_idx)
            best = xp.where(better, top, best)
        return best_idx

    def _add_product(self, acc, a, b):
        """``acc += a @ b`` (cuBLAS with beta = 1 on a GPU: no temporary)."""
        if self._rt.simulator:
            acc += a @ b
            return
        from cupy import cublas

        cublas.gemm("N", "N", a, b, out=acc, alpha=1.0, beta=1.0)
