"""The empirical optimal score of a finite dataset.

For data ``x_1..x_N`` in ``R^d`` the diffused empirical law is the Gaussian
mixture ``p_t = (1/N) sum_k N(alpha_t x_k, sigma2_t I)``. Its score is the exact
minimiser of denoising score matching:

    w_k(t, x) = softmax_k(-|x - alpha_t x_k|^2 / (2 sigma2_t))
    D(t, x)   = sum_k w_k x_k                       (Tweedie denoiser)
    s(t, x)   = (alpha_t D(t, x) - x) / sigma2_t

The model is data plus formulas: the keys and values of the softmax are the data,
and the engines (:mod:`numdiff.engines`) compute its moments; this module turns
them into the score, the log-density and the derivatives.
"""

from __future__ import annotations

from numdiff._checks import as_count, as_points
from numdiff.derivatives import MixtureDerivatives
from numdiff.engines.dispatch import Dispatcher
from numdiff.engines.keys import KeySet
from numdiff.engines.limits import check_magnitude
from numdiff.engines.results import TopWeights
from numdiff.model import MixtureScoreModel
from numdiff.schedules import Schedule

__all__ = ["EmpiricalScore", "TopWeights"]

# Largest dense weight matrix (M * N entries, 1 GiB) before top_weights is required.
DENSE_WEIGHTS_MAX = 1 << 27


class EmpiricalScore(MixtureDerivatives, MixtureScoreModel):
    """Exact score, denoiser and log-density of a diffused empirical law.

    Parameters
    ----------
    data : array_like, shape (N, d)
        Training points, finite, ``|x_k| <= 1e300`` (any real dtype or memory order).
    schedule : Schedule
        The forward process (``nd.OU()``, ``nd.VPLinear()``, ...).
    device : {"cpu", "cuda"}, optional
        ``"cuda"`` runs ``denoise``, ``score`` and ``log_density`` on an NVIDIA GPU
        (``pip install "numdiff[gpu]"``; :mod:`numdiff.gpu.engine`): they take CuPy or
        NumPy ``x`` and return CuPy arrays; the other methods run on the CPU on a
        host copy. Default ``"cpu"``.

    Notes
    -----
    All methods take ``t`` as a scalar or an array of shape ``(M,)`` (one time
    per query), with ``0 < t <= schedule.t_max`` and ``sigma2_t`` a normal float
    (``>= 2.2e-308``), and ``x`` of shape ``(M, d)``. Memory is ``O((M + N) d)``
    plus one tile; there is never an ``M x N x d`` temporary. Accuracy:
    docs/numerics.md#accuracy (tests/numdiff/test_score_oracle.py and
    test_score_fuzz.py compare with 50-digit references).

    At small ``sigma2`` the score, denoiser, log-density, ``top_weights`` and
    ``nearest`` skip data points whose total weight is certified below ``2^-60``
    of the rest (docs/numerics.md#pruning); set ``pruning = "off"`` on an instance
    for the dense path only.
    """

    # Certified pruning at small sigma2 (numdiff/pruned): "auto", "off" or "always".
    pruning = "auto"

    def __init__(self, data, schedule, device="cpu"):
        if not isinstance(device, str) or device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a numdiff Schedule; got {type(schedule).__name__}")
        data = check_magnitude(as_points(data, None, "data"), "data")
        if data.shape[0] == 0 or data.shape[1] == 0:
            raise ValueError(f"data must be non-empty; got shape {data.shape}")
        self.data, self.schedule, self.device = data, schedule, device
        self.n_data, self.dim = data.shape
        self.keys = KeySet(data)
        self._engines = Dispatcher(self.keys, lambda: self.pruning)
        self._gpu = None
        if device == "cuda":
            from numdiff.gpu.engine import CudaEngine

            self._gpu = CudaEngine(self.keys, self._engines.moments)

    def __repr__(self):
        on = ", device='cuda'" if self._gpu else ""
        return f"EmpiricalScore(N={self.n_data}, d={self.dim}, schedule={self.schedule!r}{on})"

    # -- weights and neighbours --------------------------------------------------
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
        x, alpha, sigma2 = self._prepare(t, x, non_empty=True)
        if x.shape[0] * self.n_data > DENSE_WEIGHTS_MAX:
            raise ValueError(
                f"x: dense weights would hold M * N = {x.shape[0] * self.n_data} numbers; "
                "use top_weights(t, x, k) for large N"
            )
        return self._engines.weights(x, alpha, sigma2)

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
        x, alpha, sigma2 = self._prepare(t, x, non_empty=True)
        return self._engines.top_weights(x, alpha, sigma2, as_count(k, "k", 1, self.n_data))

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
        x = as_points(self._host(x), self.dim)
        return self._engines.nearest(x, as_count(k, "k", 1, self.n_data))

    # -- internals ----------------------------------------------------------------
    def _host(self, a):
        return a if self._gpu is None else self._gpu.host_copy(a)

    def _moments(self, t, x):
        """:class:`~numdiff.engines.results.Moments` and ``sigma2 (M,)``, on the
        model's device."""
        if self._gpu is not None:
            return self._gpu.moments_at(self.schedule, t, x)
        x, alpha, sigma2 = self._prepare(t, x)
        return self._engines.moments(x, alpha, sigma2), sigma2


    def to_device(self, a):
        return a if self._gpu is None else self._gpu.to_device(a)

    def to_host(self, a):
        return a if self._gpu is None else self._gpu.to_host(a)

    def normal_stream(self, rng):
        return rng.standard_normal if self._gpu is None else self._gpu.normal_stream(rng)
