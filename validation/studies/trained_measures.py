"""Measurements of the study ``trained_denoisers``: r^2 of closed forms against a
net along its own path, the memorisation / agreement / quality metrics of two nets
on disjoint sets, and the Miyasawa gap of a denoiser.

Definitions (docs/validation.md#trained-denoisers):

* **r^2** of a model ``m`` against the net at one state ``x`` of the net's path:
  ``1 - |s_net - s_m|^2 / |s_net - mean(s_net)|^2``, the mean over the pixels of
  that state (Kamb & Ganguli's per-image r^2 of the outputs; scale-free, so the
  same for the score and for ``eps = -sigma s``).
* **memorised**: nearest / second-nearest training distance ``< 1/3`` (the audit's rule).
* **agreement** (defined here, relative to memorisation): the samples ``x1``, ``x2``
  of the nets on S1 and S2 from the same starting noise agree when they are
  closer to each other than each is to its nearest image of ``S1 u S2``.
* **quality**: the median distance of the samples to their nearest held-out real
  image, over the same median for training images (real-to-real); 1 is data-like.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .common import nearest_points

MEMORISED = 1.0 / 3.0


def r_squared(reference, other):
    """Per-row ``1 - |ref - other|^2 / |ref - mean(ref)|^2``.

    Parameters
    ----------
    reference, other : ndarray, shape (M, d)

    Returns
    -------
    ndarray, shape (M,)
    """
    centred = reference - reference.mean(axis=1, keepdims=True)
    return 1.0 - np.sum((reference - other) ** 2, axis=1) / np.sum(centred**2, axis=1)


def cosine(a, b):
    """Per-row cosine similarity (the rule of ``calibrate_to_reference``)."""
    num = np.einsum("ij,ij->i", a, b)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def median_interval(values, rng, level=0.95, resamples=2000):
    """Median of ``values`` and its percentile-bootstrap interval.

    Parameters
    ----------
    values : array_like, shape (n,)
    rng : numpy.random.Generator
    level : float
    resamples : int

    Returns
    -------
    (float, float, float)
        Median, lower and upper end.
    """
    values = np.asarray(values, dtype=float)
    idx = rng.integers(values.size, size=(resamples, values.size))
    meds = np.median(values[idx], axis=1)
    tail = 100 * (1 - level) / 2
    return (float(np.median(values)), float(np.percentile(meds, tail)),
            float(np.percentile(meds, 100 - tail)))


def family_r2(net_scores, family_scores, choose):
    """r^2 per step and sample of one model family whose ``k`` is chosen per step.

    Parameters
    ----------
    net_scores : ndarray, shape (S, n, d)
        The net's score at each step of its path.
    family_scores : dict
        ``k -> ndarray (S, n, d)``: the family's score at the same states.
    choose : callable
        ``(step index, {k: median cosine}) -> k``.

    Returns
    -------
    r2 : ndarray, shape (S, n)
    ks : list of int, length S
    """
    r2, ks = [], []
    for i, ref in enumerate(net_scores):
        sims = {k: float(np.median(cosine(sc[i], ref))) for k, sc in family_scores.items()}
        k = choose(i, sims)
        ks.append(int(k))
        r2.append(r_squared(ref, family_scores[k][i]))
    return np.asarray(r2), ks


def kde_bandwidth(flat):
    """Bandwidth ``h`` of the smoothed empirical law compared with the nets: the noise
    level of the predicted collapse, ``h^2 = 1 / collapse_snr(N, d, data_var)``
    (``theory.memorization``; the choice of the ``denoiser_geometry`` study).

    Parameters
    ----------
    flat : ndarray, shape (N, d)
        Training images, flattened.

    Returns
    -------
    float
        ``data_var`` is the mean variance per pixel (1/N normalisation).
    """
    from theory.memorization import collapse_snr

    n, d = flat.shape
    return float(1.0 / np.sqrt(collapse_snr(n, d, float(flat.var(axis=0).mean()))))


def global_scores(flat, schedule, h):
    """Scores of the closed forms that see whole images: the empirical score, the
    Wiener filter of the Gaussian fit, and the smoothed KDE of bandwidth ``h``.

    Parameters
    ----------
    flat : ndarray, shape (N, d)
    schedule : OU schedule
    h : float
        KDE bandwidth, >= 0 (0 is the empirical score).

    Returns
    -------
    dict
        Name -> ``score(t, x)`` with ``x`` of shape (M, d), returning (M, d). The
        Wiener and KDE scores are Tweedie's ``(alpha D - x) / sigma^2`` of the
        posterior means of ``theory.denoisers``.
    """
    import numdiff as nd
    from theory.denoisers import gaussian_denoiser, kde_denoiser

    emp = nd.EmpiricalScore(flat, schedule)
    mean, cov = flat.mean(axis=0), np.cov(flat, rowvar=False)

    def tweedie(denoiser):
        def score(t, x):
            alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
            return (alpha * denoiser(x, alpha, sigma2) - x) / sigma2
        return score

    return {"empirical": emp.score,
            "Wiener": tweedie(lambda x, a, s2: gaussian_denoiser(x, mean, cov, a, s2)),
            "KDE": tweedie(lambda x, a, s2: kde_denoiser(x, flat, h, a, s2))}


def closed_form_r2(net_scores, times, states, train_images, held_images, config, rng):
    """r^2 of every closed form against the net along the net's path.

    Parameters
    ----------
    net_scores : ndarray, shape (S, n, d)
    times : ndarray, shape (S,)
    states : ndarray, shape (S, n, d)
    train_images : ndarray, shape (N, H, W, 1)
    held_images : ndarray, shape (m, H, W, 1)
        For the network-free (held-out) calibration of the ELS patch size.
    config : dict
        ``candidates`` (odd patch sizes) and ``n_calibration`` (held-out images of
        the network-free calibration; 0 skips that row).
    rng : numpy.random.Generator

    Returns
    -------
    dict
        Model name -> ``{"r2": (S, n) list, "k": per-step patch sizes or None}``;
        the KDE row also has its bandwidth ``h``.
    """
    import numdiff as nd
    from numdiff.local import BoundaryAwareELS, EquivariantLocalScore, LocalScore
    from numdiff.local.calibration import calibrate_held_out

    schedule = nd.OU()
    flat = train_images.reshape(len(train_images), -1)
    h = kde_bandwidth(flat)
    out = {}
    for name, score in global_scores(flat, schedule, h).items():
        r2 = [r_squared(ref, score(t, x)) for t, x, ref in zip(times, states, net_scores)]
        out[name] = {"r2": np.asarray(r2), "k": None}

    def best(_, sims):
        return max(sims, key=sims.get)

    candidates = config["candidates"]
    families = {"LS": LocalScore, "ELS": EquivariantLocalScore, "BA-ELS": BoundaryAwareELS}
    scores = {}
    for name, cls in families.items():
        models = {k: cls(train_images, schedule, k) for k in candidates}
        scores[name] = {k: np.asarray([m.score(t, x) for t, x in zip(times, states)])
                        for k, m in models.items()}
        r2, ks = family_r2(net_scores, scores[name], best)
        out[f"{name} (net-calibrated)"] = {"r2": r2, "k": ks}
    if config["n_calibration"] > 0:
        # The network-free calibration: the k of least held-out denoising loss at each time.
        order = np.argsort(times)
        held = held_images[: config["n_calibration"]].reshape(-1, flat.shape[1])
        sched = calibrate_held_out(lambda k: EquivariantLocalScore(train_images, schedule, k),
                                   candidates, held, schedule, times[order], rng=rng)
        r2, ks = family_r2(net_scores, scores["ELS"], lambda i, _: sched(times[i]))
        out["ELS (held-out calibrated)"] = {"r2": r2, "k": ks}
    result = {k: {"r2": v["r2"].tolist(), "k": v["k"]} for k, v in out.items()}
    result["KDE"]["h"] = h
    return result


def pair_metrics(x1, x2, s1, s2, held):
    """Memorisation, agreement and quality of two nets' samples from the same noise.

    Parameters
    ----------
    x1, x2 : ndarray, shape (n, d)
        Samples of the nets trained on ``s1`` and ``s2``, row ``i`` of both from the
        same starting point.
    s1, s2 : ndarray, shape (N, d)
        The disjoint training sets.
    held : ndarray, shape (m, d)
        Held-out real images.

    Returns
    -------
    dict
        ``memorised`` (count per net), ``agree`` (count), ``n``, per-sample
        ``ratio1``, ``ratio2``, ``pair_distance``, ``train_distance`` (to the nearest
        image of ``s1 u s2``, the nearer of the pair's two), ``held_distance``
        (samples of net 1 to held-out) and ``real_distance`` (images of ``s1`` to
        held-out, the real-to-real reference).
    """
    both = np.concatenate([s1, s2])
    ratio1, ratio2 = nearest_points(x1, s1)[2], nearest_points(x2, s2)[2]
    tree = cKDTree(both)
    d1, d2 = tree.query(x1)[0], tree.query(x2)[0]
    pair = np.linalg.norm(x1 - x2, axis=1)
    agree = pair < np.minimum(d1, d2)
    held_tree = cKDTree(held)
    samples_held = np.concatenate([held_tree.query(x1)[0], held_tree.query(x2)[0]])
    return {"n": len(x1), "memorised": [int(np.sum(ratio1 < MEMORISED)),
                                             int(np.sum(ratio2 < MEMORISED))],
            "agree": int(agree.sum()), "ratio1": ratio1, "ratio2": ratio2,
            "pair_distance": pair, "train_distance": np.minimum(d1, d2),
            "held_distance": samples_held, "real_distance": held_tree.query(s1)[0]}


def quality(pair, rng, n_boot=1000):
    """Quality ratio of a net's samples and its bootstrap 95% interval.

    Parameters
    ----------
    pair : dict
        :func:`pair_metrics`' result (``held_distance``, ``real_distance``).
    rng : numpy.random.Generator
    n_boot : int, optional
        Bootstrap resamples (each distance set resampled independently).

    Returns
    -------
    (ratio, low, high)
        Median sample-to-held-out distance over the median real-to-held-out one.
    """
    a, b = np.asarray(pair["held_distance"]), np.asarray(pair["real_distance"])
    boot = [np.median(rng.choice(a, a.size)) / np.median(rng.choice(b, b.size))
            for _ in range(n_boot)]
    return float(np.median(a) / np.median(b)), *np.percentile(boot, [2.5, 97.5])


def is_reference(pair, rng):
    """DESIGN §8's check before a net serves as a reference: are its samples data-like?

    True when the quality ratio's bootstrap 95% interval (:func:`quality`) reaches
    down to 1, i.e. the samples are not measurably farther from held-out real images
    than real images are. Memorising nets pass it with copies; the r^2 study reads it
    together with the memorised fraction.
    """
    return bool(quality(pair, rng)[1] <= 1.0)


def miyasawa_terms(x0, denoised, trace, alpha, sigma2):
    """Per-image error ``|x0 - D|^2`` and Miyasawa right-hand side ``(sigma2 / alpha) tr grad D``.

    For the optimal denoiser of the law of ``x0`` both have the same mean
    (Miyasawa 1961; the seed's Tweedie identity); their difference's mean is the
    *Miyasawa gap* of any other denoiser.

    Parameters
    ----------
    x0 : ndarray, shape (M, d)
    denoised : ndarray, shape (M, d)
    trace : ndarray, shape (M,)
        ``tr grad_x D`` at the noisy points.
    alpha, sigma2 : float

    Returns
    -------
    err, rhs : ndarray, shape (M,)
    """
    return np.sum((x0 - denoised) ** 2, axis=1), sigma2 / alpha * np.asarray(trace)


def mean_se(values):
    """Mean and standard error of ``values``."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))
