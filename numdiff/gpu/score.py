"""The empirical optimal score on an NVIDIA GPU: ``EmpiricalScore(..., device="cuda")``.

Same mathematics, same accuracy argument and same float64 as the CPU model
(:mod:`numdiff.score`, docs/numerics.md#accuracy):

* ``d <= 32``: the fused direct-difference kernels of :mod:`numdiff.gpu._direct`
  (nearest point, then relative logits and the online merge in registers;
  partial results of data splits merged here). No ``M x N`` array.
* ``d > 32``: per tile of data, the cross term from cuBLAS on centred data, the row
  kernel of :mod:`numdiff.gpu._tiles` (weights and online merge, refinement of
  rows whose rounding bound exceeds ``LOGIT_TOL``), and the weighted sum of the
  data by a second cuBLAS product. Memory ``O((M + N) d)`` plus one tile (at most
  ``TILE_ENTRIES`` floats, 256 MiB).

Rows the GPU kernels do not cover are computed by the CPU model and copied over:
direct-path queries whose nearest point by rounded distances falls short of the
largest logit by more than the float range (``|x|`` dwarfs the data's spacing),
and matrix-multiply rows whose rounding bound exceeds ``HOST_ROW_NATS`` (their
refinement window would span most of the data). Both are far from any sampler's
path; each costs a transfer of those rows.
"""

from __future__ import annotations

import math

import numpy as np

from numdiff._checks import as_points
from numdiff.gpu import _direct, _tiles
from numdiff.gpu._runtime import runtime
from numdiff.score import LOGIT_TOL, MAX_MAGNITUDE, EmpiricalScore, _check_magnitude

__all__ = ["CudaEmpiricalScore"]

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


class CudaEmpiricalScore(EmpiricalScore):
    """:class:`~numdiff.EmpiricalScore` with ``denoise``, ``score`` and
    ``log_density`` on a CUDA GPU; create it as ``EmpiricalScore(data, schedule,
    device="cuda")``.

    Parameters
    ----------
    data : array_like, shape (N, d)
        Training points (copied to the GPU once; the host copy stays as ``data``).
    schedule : Schedule
        The forward process.
    device : {"cuda"}
        Present for the constructor's signature.

    Notes
    -----
    ``denoise``, ``score`` and ``log_density`` take ``x`` as a CuPy or NumPy array
    of shape ``(M, d)`` and ``t`` as a scalar or a host array ``(M,)``, and return
    CuPy arrays (NumPy ones in Numba's CUDA simulator). Each call synchronises once
    to validate ``x`` (finite, ``|x| <= 1e300``) and once to find rows for the host;
    ``x`` itself never leaves the GPU. The other methods (``weights``,
    ``top_weights``, ``nearest`` and the derivatives) run the CPU model on a host
    copy of their input and return NumPy arrays.

    Raises
    ------
    numdiff.gpu.CudaUnavailableError
        Without numba-cuda and CuPy, or without a GPU (``NUMBA_ENABLE_CUDASIM=1``
        runs the kernels in Numba's simulator instead).
    """

    device = "cuda"

    def __init__(self, data, schedule, device="cuda"):
        rt = runtime()
        super().__init__(data, schedule)
        self._rt = rt
        self._cpu = None
        self._d_data = rt.asarray(self.data)
        if self.dim <= _direct.MAX_DIM:
            self._d_data_t = rt.asarray(self._data_t)
        else:
            self._d_centre = rt.asarray(self._centre)
            self._d_centred = rt.asarray(self._centred)
            self._d_sq_norms = rt.asarray(self._sq_norms)

    def __repr__(self):
        return (f"EmpiricalScore(N={self.n_data}, d={self.dim}, schedule={self.schedule!r}, "
                "device='cuda')")

    def cpu(self):
        """The CPU model of the same data and schedule (built once)."""
        if self._cpu is None:
            self._cpu = EmpiricalScore(self.data, self.schedule)
        return self._cpu

    # -- arrays and randomness on the device (used by nd.sample) --------------------
    def to_device(self, a):
        """``a`` as a float64 array on the GPU (a CuPy array; NumPy in the simulator)."""
        return self._rt.asarray(a)

    def to_host(self, a):
        """``a`` as a NumPy array."""
        return self._rt.to_host(a)

    def normal_stream(self, rng):
        """A function ``draw(shape)`` of standard normals on the GPU, seeded from the
        NumPy Generator ``rng``: the same ``rng`` state gives the same draws on the
        same GPU model and CuPy version (the simulator draws from ``rng`` itself)."""
        if self._rt.simulator:
            return rng.standard_normal
        gen = self._rt.xp.random.default_rng(int(rng.integers(2**63)))
        return gen.standard_normal

    # -- methods run by the CPU model -------------------------------------------
    def weights(self, t, x):
        return self.cpu().weights(self._host(t), self._host(x))

    def top_weights(self, t, x, k):
        return self.cpu().top_weights(self._host(t), self._host(x), k)

    def nearest(self, x, k=1):
        return self.cpu().nearest(self._host(x), k)

    def jacobian(self, t, x, of="denoiser"):
        return self.cpu().jacobian(self._host(t), self._host(x), of)

    def divergence(self, t, x):
        return self.cpu().divergence(self._host(t), self._host(x))

    def jvp(self, t, x, v, of="denoiser"):
        return self.cpu().jvp(self._host(t), self._host(x), self._host(v), of)

    def jacobian_eigs(self, t, x, k=6):
        return self.cpu().jacobian_eigs(self._host(t), self._host(x), k)

    for _name in ("weights", "top_weights", "nearest", "jacobian", "divergence", "jvp",
                  "jacobian_eigs"):
        locals()[_name].__doc__ = (
            f"As :meth:`numdiff.EmpiricalScore.{_name}`, computed by the CPU model on a "
            "host copy of the arguments; returns NumPy arrays."
        )
    del _name

    # -- internals ----------------------------------------------------------------
    def _host(self, a):
        return self._rt.to_host(a) if self._rt.is_device_array(a) else a

    def _prepare(self, t, x):
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
            x = rt.asarray(_check_magnitude(as_points(x, self.dim), "x"))
        t = self._host(t)
        if np.ndim(t) == 0:
            alpha, sigma2 = self._alpha_sigma2(t, 1)
            return x, xp.full(x.shape[0], alpha[0]), xp.full(x.shape[0], sigma2[0])
        alpha, sigma2 = self._alpha_sigma2(t, x.shape[0])
        return x, rt.asarray(alpha), rt.asarray(sigma2)

    def _moments(self, x, alpha, sigma2):
        xp = self._rt.xp
        if x.shape[0] == 0:
            return x.copy(), xp.empty(0), x.copy()
        if self.dim <= _direct.MAX_DIM:
            out, host = self._moments_direct(x, alpha, sigma2)
        else:
            out, host = self._moments_gemm(x, alpha, sigma2)
        if bool(host.any()):
            rows = xp.flatnonzero(host)
            on_host = self.cpu()._moments(*(self._rt.to_host(a[rows]) for a in (x, alpha, sigma2)))
            for arr, part in zip(out, on_host):
                arr[rows] = self._rt.asarray(part)
        return out

    def _device_scales(self, x, alpha, sigma2):
        """:meth:`EmpiricalScore._scales` on the device: ``scale``, ``coef``, and
        ``(mant, expo)`` with ``1 / (2 sigma2 scale^2) = mant * 2^expo``."""
        xp = self._rt.xp
        top = xp.maximum(xp.abs(x).max(axis=1), alpha * self._data_absmax)
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
        run_max = part_max.max(axis=1)
        grow = xp.exp(part_max - run_max[:, None])
        run_sum = (grow * part_sum).sum(axis=1)
        shift = (grow[:, :, None] * part_acc).sum(axis=1) / run_sum[:, None]
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
        bound = _EPS * alpha * (xp.sqrt((xc * xc).sum(axis=1)) * self._radius
                                + alpha * self._radius**2) / sigma2
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
