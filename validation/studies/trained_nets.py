"""Trained denoisers for the study ``trained_denoisers``: training from plain
configuration dicts, the probability-flow path, and the checks of a net's algebra.

Everything here runs ``numdiff.learn`` (JAX, imported when a cell runs, never when
the study is registered) and returns plain numbers and lists, so that a cell's
result is JSON.
"""

from __future__ import annotations

import numpy as np

import numdiff as nd


def net_configs(net, train):
    """``NetConfig`` and ``TrainConfig`` from the cell's dicts (every field spelled out).

    Parameters
    ----------
    net, train : dict
        Keyword arguments of :class:`numdiff.learn.NetConfig` and
        :class:`numdiff.learn.TrainConfig`.

    Returns
    -------
    (NetConfig, TrainConfig)
    """
    from numdiff.learn import NetConfig, TrainConfig

    net = {**net, "image_shape": tuple(net["image_shape"]), "channels": tuple(net["channels"])}
    return NetConfig(**net), TrainConfig(**train)


def train_net(images, net, train, holdout=None):
    """Train one net on ``images`` and summarise its run.

    Parameters
    ----------
    images : ndarray, shape (N, d)
    net, train : dict
        See :func:`net_configs`.
    holdout : ndarray, shape (n, d), optional
        Images for the held-out per-level loss.

    Returns
    -------
    trained : numdiff.learn.TrainedNet
    record : dict
        ``seconds``, ``ms_per_update``, the evaluation ``levels`` and the last
        evaluation's per-level MSE per pixel (``train_mse``, ``holdout_mse``), and
        ``drop``: the relative fall of the training MSE per level over the last
        evaluation interval (how far from levelled off the run stopped).
    """
    from numdiff.learn import train as fit

    net_cfg, train_cfg = net_configs(net, train)
    trained = fit(images, net_cfg, train_cfg, holdout=holdout)
    hist = trained.history
    mse = np.asarray(hist["train_mse"])
    drop = (mse[-2] - mse[-1]) / mse[-2] if len(mse) > 1 else np.full(mse.shape[1], np.nan)
    record = {"seconds": trained.seconds, "steps": train_cfg.steps,
              "ms_per_update": 1e3 * trained.seconds / train_cfg.steps,
              "levels": np.asarray(hist["levels"]), "train_mse": mse[-1], "drop": drop,
              "loss_tail": float(np.mean(hist["loss"][-100:]))}
    if holdout is not None:
        record["holdout_mse"] = np.asarray(hist["holdout_mse"])[-1]
    return trained, record


def ou_times(s_start, s_end):
    """OU times ``(T, delta)`` at which ``sigma / alpha`` is ``s_start`` and ``s_end``.

    For the OU process ``lambda = log(alpha / sigma) = -log s``.
    """
    schedule = nd.OU()
    return (float(schedule.lam_inv(-np.log(s_start))), float(schedule.lam_inv(-np.log(s_end))))


def level_time(s):
    """OU time at which ``sigma / alpha = s``: ``t = log(1 + s^2) / 2``."""
    return float(0.5 * np.log1p(s * s))


def reverse_path(model, x_T, path):
    """The model's reverse path on a grid uniform in log-SNR, its state at every grid time.

    Parameters
    ----------
    model : score model
        Its schedule is OU.
    x_T : ndarray, shape (n, d)
        Starting points (shared by the models compared).
    path : dict
        ``s_start``, ``s_end`` (``sigma / alpha`` at both ends) and ``steps``.
        Optional ``process``: ``"ode"`` (default; probability-flow ODE, Heun) or
        ``"sde"`` (reverse SDE, exponential Euler-Maruyama, ``substeps`` steps per
        grid interval, Brownian path from ``noise_seed``: the same for every model).

    Returns
    -------
    times : ndarray, shape (steps + 1,)
        Decreasing from ``T``.
    states : ndarray, shape (steps + 1, n, d)
        The state at each grid time.
    """
    T, delta = ou_times(path["s_start"], path["s_end"])
    times = nd.grids.uniform_lambda(model.schedule, T, delta, path["steps"])
    if path.get("process", "ode") == "ode":
        run = {"process": "ode", "solver": "heun", "steps": path["steps"]}
    else:
        # The coarse grid is every substeps-th point of the fine one (uniform in lambda).
        run = {"process": "sde", "solver": "exp_em", "steps": path["steps"] * path["substeps"],
               "rng": np.random.default_rng(path["noise_seed"])}
    res = nd.sample(model, x_T.shape[0], T=T, delta=delta, grid="uniform_lambda", x_T=x_T,
                    save_at=times, progress=False, **run)
    return np.asarray(res.save_at), np.asarray(res.trajectory)


def homogeneity_error(model, t, x, factors=(0.5, 2.0)):
    """Largest ``|D(c x) - c D(x)| / |c D(x)|`` over queries and ``c`` (a bias-free net: 0).

    Parameters
    ----------
    model : NetworkScore
    t : float
    x : ndarray, shape (M, d)
    factors : sequence of float
        Positive scalings ``c``.

    Returns
    -------
    float
    """
    base = model.denoise(t, x)
    worst = 0.0
    for c in factors:
        err = np.linalg.norm(model.denoise(t, c * x) - c * base, axis=1)
        worst = max(worst, float(np.max(err / np.linalg.norm(c * base, axis=1))))
    return worst


def euler_error(model, t, x):
    """Largest ``|D(x) - J(x) x| / |D(x)|`` over queries, ``J = grad_x D`` from the model.

    Euler's identity for a function positively homogeneous of degree 1.
    """
    den = model.denoise(t, x)
    jac = model.jacobian(t, x)
    err = np.linalg.norm(den - np.einsum("mij,mj->mi", jac, x), axis=1)
    return float(np.max(err / np.linalg.norm(den, axis=1)))


def trace_error(model, t, x):
    """Largest ``|tr grad D - sum of the symmetric part's eigenvalues|`` over queries,
    relative to ``sum |eigenvalue|``: the divergence (exact trace) against the full
    spectrum of ``jacobian_eigs``."""
    alpha, sigma2 = float(model.schedule.alpha(t)), float(model.schedule.sigma2(t))
    trace = (sigma2 * model.divergence(t, x) + model.dim) / alpha
    worst = 0.0
    for row, tr in zip(x, trace):
        vals = model.jacobian_eigs(t, row[None, :], k=model.dim).eigenvalues
        worst = max(worst, abs(tr - vals.sum()) / np.abs(vals).sum())
    return float(worst)


def algebra_checks(model, t, x):
    """The three identities of a bias-free net on queries ``x`` at time ``t`` (float64 model)."""
    return {"homogeneity": homogeneity_error(model, t, x), "euler": euler_error(model, t, x),
            "trace": trace_error(model, t, x)}
