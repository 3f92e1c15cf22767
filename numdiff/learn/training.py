"""Training on the denoising objective, and the trained weights' file format.

The objective is the seed's eq. (9) written for the denoiser: with ``x_t = alpha
x_0 + sigma z`` and ``s = sigma / alpha``, ``|s_theta - grad log p_t(x_t | x_0)|^2 =
(alpha^2 / sigma^4) |D_theta - x_0|^2``, and the time weight ``w(t)`` is taken so
that the loss per image is ``|D_theta(x_0 + s z, s) - x_0|^2 / (d c_out(s)^2)`` with
``log s`` uniform on ``[log s_min, log s_max]`` or normal clipped to it
(``TrainConfig.level_law``; Karras et al. 2022's weighting: each level's target has
unit variance). docs/learn.md#training gives the details.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax

from numdiff.learn.config import NetConfig, TrainConfig, from_json, to_json
from numdiff.learn.network import denoise_images, init_params, to_numpy

__all__ = ["TrainedNet", "as_images", "config_of", "denoising_loss", "draw_log_levels",
           "eval_levels", "load", "train"]

FORMAT = "numdiff.learn/1"


def as_images(data, config, name="data"):
    """``data`` as float32 images ``(N, H, W, C)``; ``(N, d)`` rows are reshaped in C order.

    Parameters
    ----------
    data : array_like, shape (N, d) or (N, H, W, C)
    config : NetConfig
    name : str
        Argument name for the error messages.

    Returns
    -------
    ndarray of float32, shape (N, H, W, C)
    """
    arr = np.asarray(data)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real numbers; got dtype {arr.dtype}")
    shape = config.image_shape
    if arr.ndim == 2 and arr.shape[1] == config.dim:
        arr = arr.reshape(arr.shape[0], *shape)
    if arr.ndim != 4 or arr.shape[1:] != shape:
        raise ValueError(f"{name} must have shape (N, {config.dim}) or (N, *{shape}); "
                         f"got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr.astype(np.float32)


def denoising_loss(params, config, x0, s, z, mean=None):
    """Weighted denoising loss of one batch (docs/learn.md#training).

    Parameters
    ----------
    params : dict
        Network parameters.
    config : NetConfig
    x0 : jax.Array, shape (B, H, W, C)
        Clean images.
    s : jax.Array, shape (B,)
        Noise levels ``sigma / alpha``.
    z : jax.Array, shape (B, H, W, C)
        Standard normal noise.
    mean : jax.Array, shape (H, W, C), optional
        The network's centre (``config.center``).

    Returns
    -------
    jax.Array, scalar
        ``mean_b |D(x0_b + s_b z_b, s_b) - x0_b|^2 / (d c_out(s_b)^2)``.
    """
    y = x0 + s[:, None, None, None] * z
    err = denoise_images(params, config, y, s, mean) - x0
    sd2 = config.data_scale**2
    c_out2 = s * s * sd2 / (s * s + sd2)
    return jnp.mean(jnp.sum(err * err, axis=(1, 2, 3)) / (config.dim * c_out2))


def eval_levels(train_config):
    """The evaluation's noise levels, log-spaced in ``[s_min, s_max]``, shape (eval_levels,)."""
    return np.geomspace(train_config.s_min, train_config.s_max, train_config.eval_levels)


@dataclass
class TrainedNet:
    """A trained denoiser: configuration, weights and training record.

    Parameters
    ----------
    net : NetConfig
    train : TrainConfig
    params, ema_params : dict
        Last iterate and its exponential moving average (numpy float32 trees).
    mean : ndarray of float32, shape (H, W, C), or None
        The centre (only when ``net.center``).
    history : dict of ndarray
        ``"loss"`` (steps,): the batch loss of each update; ``"eval_steps"``
        (n_eval,); ``"levels"`` (eval_levels,); ``"train_mse"`` and, with a
        held-out set, ``"holdout_mse"`` (n_eval, eval_levels): mean squared error
        per pixel of the EMA weights at each level, on fixed images and noise.
    seconds : float
        Wall time of the training loop (not part of the weights' identity).
    """

    net: NetConfig
    train: TrainConfig
    params: dict
    ema_params: dict
    mean: np.ndarray | None
    history: dict
    seconds: float

    def weights(self, ema=True):
        """The EMA weights (default) or the last iterate.

        Parameters
        ----------
        ema : bool, optional

        Returns
        -------
        dict
        """
        return self.ema_params if ema else self.params

    def save(self, path):
        """Write an ``.npz``: weights, history and the configurations as JSON inside.

        Parameters
        ----------
        path : str or PathLike
        """
        arrays = {"format": np.array(FORMAT), "config": np.array(to_json(self.net, self.train)),
                  "seconds": np.array(self.seconds)}
        for tag, tree in (("params", self.params), ("ema", self.ema_params)):
            for i, w in enumerate(tree["convs"]):
                arrays[f"{tag}.convs.{i}"] = w
            for k, v in tree["cond"].items():
                arrays[f"{tag}.cond.{k}"] = v
        if self.mean is not None:
            arrays["mean"] = self.mean
        for k, v in self.history.items():
            arrays[f"history.{k}"] = v
        np.savez(path, **arrays)


def load(path):
    """Read a :class:`TrainedNet` written by :meth:`TrainedNet.save`.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    TrainedNet
    """
    with np.load(path, allow_pickle=False) as f:
        if "format" not in f or str(f["format"]) != FORMAT:
            raise ValueError(f"path: not a numdiff.learn weights file ({FORMAT}): {path!r}")
        net, train_cfg = from_json(str(f["config"]))
        trees = {}
        for tag in ("params", "ema"):
            n_conv = sum(1 for k in f.files if k.startswith(f"{tag}.convs."))
            trees[tag] = {
                "convs": [f[f"{tag}.convs.{i}"] for i in range(n_conv)],
                "cond": {k: f[f"{tag}.cond.{k}"] for k in ("w1", "b1", "w2", "b2")},
            }
        mean = f["mean"] if "mean" in f.files else None
        history = {k[len("history."):]: f[k] for k in f.files if k.startswith("history.")}
        return TrainedNet(net, train_cfg, trees["params"], trees["ema"], mean, history,
                          float(f["seconds"]))


def _optimizer(cfg):
    warmup = min(cfg.warmup, cfg.steps - 1)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, cfg.lr, max(warmup, 1), max(cfg.steps, warmup + 1), end_value=cfg.lr / 10
    )
    return optax.chain(optax.clip_by_global_norm(cfg.clip), optax.adam(schedule))


def train(data, net=None, train_config=None, *, holdout=None, log=None):
    """Train a bias-free denoiser on ``data`` (float32, deterministic for a seed).

    Parameters
    ----------
    data : array_like, shape (N, d) or (N, H, W, C)
        Training images (``d = H W C``, rows flattened in C order).
    net : NetConfig, optional
        Default ``NetConfig()``; ``data_scale`` is used as given.
    train_config : TrainConfig, optional
        Default ``TrainConfig()``.
    holdout : array_like, shape (n, d) or (n, H, W, C), optional
        Images for a held-out per-level loss.
    log : callable, optional
        Called as ``log(step, train_mse_per_level)`` after each evaluation.

    Returns
    -------
    TrainedNet

    Notes
    -----
    The same seed, data and configurations give bit-identical weights on one
    machine (JAX's counter-based PRNG draws the batches and the noise; XLA's CPU
    reductions are deterministic).
    """
    net = NetConfig() if net is None else net
    cfg = TrainConfig() if train_config is None else train_config
    if not isinstance(net, NetConfig):
        raise TypeError(f"net must be a NetConfig; got {type(net).__name__}")
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig; got {type(cfg).__name__}")
    images = as_images(data, net)
    held = None if holdout is None else as_images(holdout, net, "holdout")
    mean_np = images.mean(axis=0) if net.center else None
    mean = None if mean_np is None else jnp.asarray(mean_np)
    # Initial weights from numpy's generator, batches and noise from JAX's: both
    # seeded by cfg.seed, in separate streams.
    params = jax.tree_util.tree_map(jnp.asarray, init_params(net, cfg.seed))
    step_key, eval_key = jax.random.split(jax.random.PRNGKey(cfg.seed))
    data_j = jnp.asarray(images)
    levels = eval_levels(cfg)
    carry = (params, params, _optimizer(cfg).init(params))
    # The seed reaches the update only through step_key, and the evaluation settings
    # not at all: runs that differ only in those reuse one compilation.
    static = replace(cfg, seed=0, eval_every=1, eval_levels=1, eval_size=1)
    losses, eval_steps, train_mse, hold_mse = [], [], [], []
    start = time.perf_counter()
    for lo in range(0, cfg.steps, cfg.eval_every):
        hi = min(cfg.steps, lo + cfg.eval_every)
        chunk_loss = []
        for i in range(lo, hi):
            carry, loss = _update(carry, jnp.int32(i), step_key, data_j, mean, net, static)
            chunk_loss.append(loss)
        losses.append(np.asarray(jnp.stack(chunk_loss)))
        eval_steps.append(hi)
        train_mse.append(_evaluate(carry[1], net, images, levels, eval_key, cfg.eval_size, mean))
        if held is not None:
            hold_mse.append(_evaluate(carry[1], net, held, levels, eval_key, cfg.eval_size, mean))
        if log is not None:
            log(hi, train_mse[-1])
    seconds = time.perf_counter() - start
    history = {"loss": np.concatenate(losses), "eval_steps": np.asarray(eval_steps),
               "levels": levels, "train_mse": np.asarray(train_mse)}
    if held is not None:
        history["holdout_mse"] = np.asarray(hold_mse)
    return TrainedNet(net, cfg, to_numpy(carry[0]), to_numpy(carry[1]), mean_np, history,
                      seconds)


def draw_log_levels(key, cfg):
    """``log s`` of one batch under ``cfg.level_law``, shape (cfg.batch,), float32.

    Parameters
    ----------
    key : jax.random.PRNGKey
    cfg : TrainConfig

    Returns
    -------
    jax.Array, shape (cfg.batch,)
        Uniform on ``[log s_min, log s_max]``, or ``N(log_mean, log_std^2)`` clipped
        to that interval.
    """
    lo, hi = math.log(cfg.s_min), math.log(cfg.s_max)
    if cfg.level_law == "log_uniform":
        return jax.random.uniform(key, (cfg.batch,), jnp.float32, lo, hi)
    normal = jax.random.normal(key, (cfg.batch,), jnp.float32)
    return jnp.clip(cfg.log_mean + cfg.log_std * normal, lo, hi)


# One jitted update per Python iteration: XLA's CPU backend ran the convolutions
# inside a lax.scan body about 100x slower than at top level (measured here). The
# configurations are static (hashable frozen dataclasses), so runs with the same
# configurations share one compilation.
@partial(jax.jit, static_argnames=("net", "cfg"))
def _update(carry, i, step_key, data, mean, net, cfg):
    """One Adam update and EMA step; the batch and noise come from ``fold_in(step_key, i)``."""
    params, ema, opt_state = carry
    k_idx, k_s, k_z = jax.random.split(jax.random.fold_in(step_key, i), 3)
    x0 = data[jax.random.randint(k_idx, (cfg.batch,), 0, data.shape[0])]
    z = jax.random.normal(k_z, x0.shape, jnp.float32)
    s = jnp.exp(draw_log_levels(k_s, cfg))
    loss, grads = jax.value_and_grad(denoising_loss)(params, net, x0, s, z, mean)
    updates, opt_state = _optimizer(cfg).update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    decay = cfg.ema_decay
    ema = jax.tree_util.tree_map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)
    return (params, ema, opt_state), loss


@partial(jax.jit, static_argnames=("net",))
def _level_mse(params, net, x0, s, key, mean):
    z = jax.random.normal(key, x0.shape, jnp.float32)
    err = denoise_images(params, net, x0 + s * z, jnp.full((x0.shape[0],), s), mean) - x0
    return jnp.mean(err * err)


def _evaluate(params, net, images, levels, key, size, mean):
    """Mean squared error per pixel at each level, on the first ``size`` images, fixed noise."""
    x0 = jnp.asarray(images[:size])
    return np.array([float(_level_mse(params, net, x0, jnp.float32(s), key, mean))
                     for s in levels])


def config_of(path):
    """The configurations stored in a weights file, without loading the weights.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    dict
        ``{"net": {...}, "train": {...}}``.
    """
    with np.load(path, allow_pickle=False) as f:
        return json.loads(str(f["config"]))
