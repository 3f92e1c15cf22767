"""The patch size as a schedule ``k(t)``, and two ways to calibrate it.

* :func:`calibrate_to_reference` (Kamb & Ganguli's): at each step of a reference
  model's own reverse path, the ``k`` whose score has the highest median cosine
  similarity with the reference's score there.
* :func:`calibrate_held_out` (no network needed): at each time, the ``k`` with the
  smallest held-out denoising loss (eq. (9) of the seed on images not in the
  training set), ``E |D_k(t, alpha x_0 + sigma z) - x_0|^2``.
"""

from __future__ import annotations

import numpy as np

from numdiff._checks import as_points, as_real_array
from numdiff.local.base import as_patch_size


class PatchSchedule:
    """A piecewise-constant patch size: ``k(t)`` of the grid time nearest to ``t``
    in ``log t``.

    Parameters
    ----------
    times : array_like, shape (S,)
        Positive, strictly increasing.
    sizes : array_like of int, shape (S,)
        Odd patch sizes.

    Attributes
    ----------
    scores : ndarray, shape (S, len(candidates)) or None
        The criterion per time and candidate ``k`` when calibrated (similarity or
        loss), for reports.
    """

    def __init__(self, times, sizes, scores=None, candidates=None):
        self.times = as_real_array(times, "times").reshape(-1)
        if self.times.size == 0 or not (self.times > 0).all() or (np.diff(self.times) <= 0).any():
            raise ValueError("times must be positive and strictly increasing")
        sizes = list(np.asarray(sizes).reshape(-1))
        if len(sizes) != self.times.size:
            raise ValueError(f"sizes must have {self.times.size} entries; got {len(sizes)}")
        self.sizes = np.array([as_patch_size(int(k), "sizes") for k in sizes])
        self.scores = scores
        self.candidates = candidates

    def __call__(self, t):
        i = np.argmin(np.abs(np.log(self.times) - np.log(float(t))))
        return int(self.sizes[i])

    def __repr__(self):
        pairs = ", ".join(f"{t:.3g}: {k}" for t, k in zip(self.times, self.sizes))
        return f"PatchSchedule({{{pairs}}})"


def _cosine(a, b):
    num = np.einsum("ij,ij->i", a, b)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def calibrate_to_reference(model_for, candidates, reference_path):
    """Per step, the ``k`` whose score best matches a reference model's score.

    Parameters
    ----------
    model_for : callable
        ``k -> model`` (e.g. ``lambda k: EquivariantLocalScore(data, schedule, k)``).
    candidates : sequence of int
        Odd patch sizes to choose from.
    reference_path : sequence of (t, x, score)
        Per step of the reference's reverse path: the time, its states ``x (M, D)``
        and the reference's score there ``(M, D)``.

    Returns
    -------
    PatchSchedule
        With ``scores[i, j]`` the median cosine similarity at step ``i`` of
        candidate ``j``.
    """
    candidates = [as_patch_size(k, "candidates") for k in candidates]
    models = {k: model_for(k) for k in candidates}
    steps = sorted(reference_path, key=lambda step: step[0])
    sims = np.empty((len(steps), len(candidates)))
    for i, (t, x, ref_score) in enumerate(steps):
        x = as_points(x, None, "reference_path x")
        for j, k in enumerate(candidates):
            sims[i, j] = np.median(_cosine(models[k].score(t, x), np.asarray(ref_score)))
    best = [candidates[j] for j in sims.argmax(axis=1)]
    return PatchSchedule([s[0] for s in steps], best, sims, candidates)


def calibrate_held_out(model_for, candidates, held_out, schedule, times, rng=None):
    """Per time, the ``k`` with the smallest held-out denoising loss.

    Parameters
    ----------
    model_for : callable
        ``k -> model``.
    candidates : sequence of int
        Odd patch sizes.
    held_out : array_like, shape (M, D)
        Flattened images not in the training set.
    schedule : Schedule
    times : array_like, shape (S,)
        Positive, increasing.
    rng : seed or Generator, optional
        The noise ``z`` (the same draws for every candidate: common random numbers).

    Returns
    -------
    PatchSchedule
        With ``scores[i, j]`` the mean loss ``|D_k - x_0|^2`` per image.
    """
    candidates = [as_patch_size(k, "candidates") for k in candidates]
    held_out = as_points(held_out, None, "held_out")
    times = as_real_array(times, "times").reshape(-1)
    rng = np.random.default_rng(rng)
    models = {k: model_for(k) for k in candidates}
    losses = np.empty((times.size, len(candidates)))
    for i, t in enumerate(times):
        z = rng.standard_normal(held_out.shape)
        x = schedule.alpha(t) * held_out + np.sqrt(schedule.sigma2(t)) * z
        for j, k in enumerate(candidates):
            err = models[k].denoise(t, x) - held_out
            losses[i, j] = np.mean(np.einsum("ij,ij->i", err, err))
    best = [candidates[j] for j in losses.argmin(axis=1)]
    return PatchSchedule(times, best, losses, candidates)
