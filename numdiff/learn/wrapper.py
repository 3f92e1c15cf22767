"""A trained denoiser in the score-model protocol (what ``nd.sample`` and the metrics call).

Points are numdiff's ``(M, d)`` float64 rows; a row is one image ``(H, W, C)``
flattened in C order (``x.reshape(M, H, W, C)``), ``d = H W C``. The network
sees ``y = x / alpha_t`` and ``s = sigma_t / alpha_t`` (the denoiser of any
linear forward process depends on ``t`` only through them), so
``D(t, x) = D_net(x / alpha_t, s_t)`` and ``grad_x D = grad_y D_net / alpha_t``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from numdiff._checks import as_count, as_points, as_real_array
from numdiff.derivatives import JacobianEigs, check_of
from numdiff.learn.network import denoise_images
from numdiff.learn.training import TrainedNet
from numdiff.neighbors import nearest_neighbors
from numdiff.schedules import Schedule

__all__ = ["NetworkScore"]

# Queries per network call: bounds the activations (a few MB per 1024 8x8 images).
CHUNK = 1024
# Same bound as EmpiricalScore.jacobian: M d^2 numbers at most.
JACOBIAN_MAX = 1 << 27
# Up to this d, jacobian_eigs forms the d x d Jacobian; beyond, Lanczos on products.
DENSE_EIGS_MAX = 1024
DTYPES = {"float32": np.float32, "float64": np.float64}


class NetworkScore:
    """Score model of a trained denoiser: ``denoise``, ``score`` and their derivatives.

    Parameters
    ----------
    net : TrainedNet
        From :func:`numdiff.learn.train` or :func:`numdiff.learn.load`.
    schedule : Schedule
        The forward process the samplers run (any: the network is conditioned on
        ``sigma / alpha`` only).
    data : array_like, shape (N, d), optional
        The training points, for ``nearest`` (and so for ``nd.sample``'s nearest
        points and ``nd.metrics.nearest_ratio(x, model)``).
    ema : bool, optional
        Use the EMA weights (default) or the last iterate.
    dtype : {"float32", "float64"}, optional
        Arithmetic of the network: float32 (default, as trained) or float64 (the
        float32 weights run in float64 under ``jax.enable_x64``, for derivative
        checks). Outputs are float64 either way.

    Notes
    -----
    Times ``t`` are a scalar or one per query, ``0 < t <= schedule.t_max``.
    The Jacobian of a trained network is not exactly symmetric;
    :meth:`jacobian` returns it as it is, :meth:`jacobian_eigs` the eigenpairs of
    its symmetric part.
    """

    def __init__(self, net, schedule, data=None, ema=True, dtype="float32"):
        if not isinstance(net, TrainedNet):
            raise TypeError(f"net must be a TrainedNet; got {type(net).__name__}")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a numdiff Schedule; got {type(schedule).__name__}")
        if not isinstance(ema, bool):
            raise TypeError(f"ema must be a bool; got {ema!r}")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")
        self.net, self.schedule, self.dtype = net, schedule, DTYPES[dtype]
        self.image_shape, self.dim = net.net.image_shape, net.net.dim
        self.data = None if data is None else as_points(data, self.dim, "data")
        self.n_data = None if self.data is None else self.data.shape[0]
        cfg, mean = net.net, net.mean
        self._params = jax.tree_util.tree_map(lambda a: np.asarray(a, self.dtype),
                                              net.weights(ema))
        self._mean = None if mean is None else np.asarray(mean, self.dtype)
        shape = self.image_shape

        def one(params, y_flat, s):
            """``D_net`` of one flattened image, shape (d,) -> (d,)."""
            img = y_flat.reshape(1, *shape)
            out = denoise_images(params, cfg, img, s[None], self._mean)
            return out.reshape(-1)

        batched = jax.vmap(one, in_axes=(None, 0, 0))
        self._denoise = jax.jit(batched)
        self._jacobian = jax.jit(jax.vmap(jax.jacfwd(one, argnums=1), in_axes=(None, 0, 0)))
        self._jvp = jax.jit(jax.vmap(
            lambda p, y, s, v: jax.jvp(lambda u: one(p, u, s), (y,), (v,))[1],
            in_axes=(None, 0, 0, 0)))
        self._vjp = jax.jit(jax.vmap(
            lambda p, y, s, v: jax.vjp(lambda u: one(p, u, s), y)[1](v)[0],
            in_axes=(None, 0, 0, 0)))

    def __repr__(self):
        return (f"NetworkScore(image_shape={self.image_shape}, channels={self.net.net.channels}, "
                f"schedule={self.schedule!r})")

    # -- the protocol ----------------------------------------------------------
    def denoise(self, t, x):
        """``D(t, x)``, the network's estimate of ``E[X_0 | X_t = x]``.

        Parameters
        ----------
        t : float or array_like, shape (M,)
        x : array_like, shape (M, d)

        Returns
        -------
        ndarray, shape (M, d)
        """
        x, alpha, s = self._prepare(t, x)
        return self._run(self._denoise, x / alpha[:, None], s)

    def score(self, t, x):
        """``(alpha_t D(t, x) - x) / sigma2_t``.

        Parameters
        ----------
        t : float or array_like, shape (M,)
        x : array_like, shape (M, d)

        Returns
        -------
        ndarray, shape (M, d)
        """
        x, alpha, s = self._prepare(t, x)
        den = self._run(self._denoise, x / alpha[:, None], s)
        sigma2 = (s * alpha) ** 2
        return (alpha[:, None] * den - x) / sigma2[:, None]

    def jacobian(self, t, x, of="denoiser"):
        """``grad_x D(t, x)`` (or ``grad_x s = (alpha grad D - I) / sigma2``), by ``jax.jacfwd``.

        Parameters
        ----------
        t : float or array_like, shape (M,)
        x : array_like, shape (M, d); ``M d^2 <= 2^27``
        of : {"denoiser", "score"}

        Returns
        -------
        ndarray, shape (M, d, d)
            ``[m, i, j] = d D_i / d x_j``.
        """
        x, alpha, s = self._prepare(t, x)
        of = check_of(of)
        if x.shape[0] * self.dim**2 > JACOBIAN_MAX:
            raise ValueError(f"x: the Jacobians would hold M * d * d = {x.shape[0] * self.dim**2} "
                             "numbers; use jvp(t, x, v) or jacobian_eigs(t, x, k)")
        jac = self._run(self._jacobian, x / alpha[:, None], s) / alpha[:, None, None]
        return self._of(jac, alpha, s, of)

    def jvp(self, t, x, v, of="denoiser"):
        """``grad_x D(t, x) v`` (or of the score), by ``jax.jvp``.

        Parameters
        ----------
        t : float or array_like, shape (M,)
        x : array_like, shape (M, d)
        v : array_like, shape (M, d) or (d,)
        of : {"denoiser", "score"}

        Returns
        -------
        ndarray, shape (M, d)
        """
        x, alpha, s = self._prepare(t, x)
        of = check_of(of)
        v = self._tangents(v, x.shape[0])
        out = self._run(self._jvp, x / alpha[:, None], s, v) / alpha[:, None]
        if of == "score":
            out = (alpha[:, None] * out - v) / ((s * alpha) ** 2)[:, None]
        return out

    def divergence(self, t, x):
        """Divergence of the score, ``(alpha tr grad D - d) / sigma2`` (exact trace).

        Parameters
        ----------
        t : float or array_like, shape (M,)
        x : array_like, shape (M, d)

        Returns
        -------
        ndarray, shape (M,)
        """
        x, alpha, s = self._prepare(t, x)
        trace = np.empty(x.shape[0])
        rows = max(1, JACOBIAN_MAX // (8 * self.dim**2))
        for lo in range(0, x.shape[0], rows):
            sl = slice(lo, lo + rows)
            jac = self._run(self._jacobian, x[sl] / alpha[sl, None], s[sl])
            trace[sl] = np.trace(jac, axis1=1, axis2=2)  # of grad_y D_net = alpha grad_x D
        return (trace - self.dim) / (s * alpha) ** 2

    def jacobian_eigs(self, t, x, k=6):
        """The ``k`` largest eigenpairs of the symmetric part of ``grad_x D(t, x)``.

        Dense ``eigh`` for ``d <= 1024``; beyond, ``scipy.sparse.linalg.eigsh`` on
        products ``(J v + J^T v) / 2`` from ``jax.jvp`` and ``jax.vjp``.

        Parameters
        ----------
        t : float or array_like, shape (1,)
        x : array_like, shape (d,) or (1, d)
        k : int, optional
            ``1 <= k <= d``; default 6.

        Returns
        -------
        JacobianEigs
        """
        x, alpha, s = self._prepare(t, x)
        if x.shape[0] != 1:
            raise ValueError(f"x must be one query of shape (d,) or (1, d); got {x.shape}")
        k = as_count(k, "k", 1, self.dim)
        t_value = float(np.asarray(t, dtype=np.float64).reshape(-1)[0])
        y = x / alpha[0]
        if self.dim <= DENSE_EIGS_MAX or k >= self.dim - 1:
            jac = self._run(self._jacobian, y, s)[0] / alpha[0]
            vals, vecs = np.linalg.eigh(0.5 * (jac + jac.T))
        else:
            from scipy.sparse.linalg import LinearOperator, eigsh

            def matvec(vec):
                v = np.asarray(vec, np.float64).reshape(1, self.dim)
                both = self._run(self._jvp, y, s, v) + self._run(self._vjp, y, s, v)
                return 0.5 * both[0] / alpha[0]

            op = LinearOperator((self.dim, self.dim), matvec=matvec, dtype=np.float64)
            start = np.random.default_rng(0).standard_normal(self.dim)
            vals, vecs = eigsh(op, k=k, which="LA", v0=start)
        order = np.argsort(vals)[::-1][:k]
        return JacobianEigs(vals[order], vecs[:, order], t_value, x[0].copy())

    def nearest(self, x, k=1):
        """The ``k`` training points nearest to each query (needs ``data``).

        Parameters
        ----------
        x : array_like, shape (M, d)
        k : int, optional

        Returns
        -------
        idx : ndarray of int64, shape (M, k)
        dist : ndarray, shape (M, k)
        """
        if self.data is None:
            raise ValueError("nearest needs the training points: NetworkScore(..., data=...)")
        return nearest_neighbors(self.data, x, k)

    # -- internals -------------------------------------------------------------
    def _prepare(self, t, x):
        """Checked ``x`` (M, d) and per-query ``alpha``, ``s = sigma / alpha`` (M,)."""
        x = as_points(x, self.dim)
        t_arr = as_real_array(t, "t")
        if t_arr.ndim != 0 and t_arr.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or of shape (M,) = ({x.shape[0]},); "
                             f"got {t_arr.shape}")
        if np.isnan(t_arr).any() or (t_arr <= 0).any():
            raise ValueError("t must be > 0 and not NaN")
        alpha, sigma2 = (np.broadcast_to(v, (x.shape[0],)).astype(np.float64)
                         for v in self.schedule.alpha_sigma2(t_arr))
        if not ((alpha > 0) & (sigma2 > 0)).all():
            raise ValueError("t: alpha_t or sigma_t^2 underflows to 0 at this time")
        return x, alpha, np.sqrt(sigma2) / alpha

    def _tangents(self, v, n_query):
        v = as_real_array(v, "v")
        if v.shape == (self.dim,):
            v = np.broadcast_to(v, (n_query, self.dim))
        if v.shape != (n_query, self.dim):
            raise ValueError(f"v must have shape ({n_query}, {self.dim}) or ({self.dim},); "
                             f"got {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError("v contains NaN or infinite values")
        return v

    def _run(self, fn, y, s, *extra):
        """``fn(params, y, s, *extra)`` in chunks of queries, in the network's dtype."""
        parts = []
        with jax.enable_x64(self.dtype == np.float64):
            for lo in range(0, y.shape[0], CHUNK):
                sl = slice(lo, lo + CHUNK)
                args = [jnp.asarray(a[sl], self.dtype) for a in (y, s, *extra)]
                parts.append(np.asarray(fn(self._params, *args), dtype=np.float64))
        return np.concatenate(parts)

    @staticmethod
    def _of(jac, alpha, s, of):
        if of == "score":
            jac = alpha[:, None, None] * jac
            idx = np.arange(jac.shape[1])
            jac[:, idx, idx] -= 1.0
            jac /= ((s * alpha) ** 2)[:, None, None]
        return jac
