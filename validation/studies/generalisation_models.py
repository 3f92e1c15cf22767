"""Set-up of the generalisation study: data splits, the models and their patch-size
calibrations, paired sampling, and the per-sample measurements.

Everything here serves :mod:`validation.studies.generalisation`: its cells call
:func:`split`, :func:`build_models` and :func:`paired_samples`, then :func:`measure`.
The measurements use scipy's k-d tree and scikit-learn, not numdiff's neighbour
search, so that they do not depend on the code they judge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import numdiff as nd
from numdiff.data import digits, disjoint_splits, mnist5k
from numdiff.local import (
    BoundaryAwareELS,
    EquivariantLocalScore,
    LocalScore,
    PCALocalityScore,
    calibrate_held_out,
    calibrate_to_reference,
)

from .common import nearest_points

#: The models, in the report's order. "ELS reference k" is Kamb & Ganguli's calibration
#: against a reference model's reverse path; the reference here is the empirical score of
#: S1 (trained networks are compared in the learn studies), "held-out k" the calibration
#: on held-out denoising loss, which needs no network.
MODELS = ("empirical", "LS", "ELS held-out k", "ELS reference k", "boundary ELS",
          "PCA-locality")

#: The audit's ratio rule (numdiff.audit, docs/audit.md): memorised when the nearest
#: training distance is below a third of the second-nearest.
MEMORISED_RATIO = 1.0 / 3.0
#: A sample is of data quality when its distance to the held-out reference set is at
#: most this quantile of real held-out images' distances to that set.
QUALITY_QUANTILE = 0.95
#: ... and (for a generalising pair) when the classifier's top probability is at least
#: this quantile of its top probability on real held-out images.
CONFIDENCE_QUANTILE = 0.10


def load(dataset):
    """``ImageData`` of ``"digits"`` (1797 of 8x8) or ``"mnist5k"`` (5000 of 28x28)."""
    if dataset == "digits":
        return digits()
    if dataset == "mnist5k":
        return mnist5k()
    raise ValueError(f"dataset must be 'digits' or 'mnist5k'; got {dataset!r}")


@dataclass(frozen=True)
class Split:
    """Two disjoint training sets of size N and the held-out images.

    The held-out set is split in two halves: ``reference`` (the set whose nearest-image
    distance measures quality, and the images of the held-out calibration) and
    ``probes`` (real images measured against ``reference``: the real-to-real level; and
    the classifier's training set).
    """

    s1: np.ndarray  # (N, H, W, C)
    s2: np.ndarray
    labels1: np.ndarray  # (N,)
    labels2: np.ndarray
    reference: np.ndarray  # (R, H, W, C)
    probes: np.ndarray
    reference_labels: np.ndarray
    probe_labels: np.ndarray


def split(config, n):
    """S1, S2 of size ``n`` and the held-out halves; nested in ``n`` for one ``data_seed``."""
    data = load(config["dataset"])
    i1, i2, held = disjoint_splits(len(data.labels), n, config["n_heldout"],
                                   rng=config["data_seed"], labels=data.labels)
    ref, probe = held[0::2], held[1::2]
    im, lab = data.images, data.labels
    return Split(im[i1], im[i2], lab[i1], lab[i2], im[ref], im[probe], lab[ref], lab[probe])


def flat(images):
    """``(N, H, W, C) -> (N, H W C)`` as a C-contiguous copy."""
    return np.ascontiguousarray(images.reshape(images.shape[0], -1))


def sampling_grid(config):
    """The reverse ODE's time grid (uniform in ``lambda``), decreasing from T to delta."""
    return nd.grids.uniform_lambda(nd.OU(), config["T"], config["delta"], config["steps"])


def calibration_times(config):
    """``n_calibration`` times of the sampling grid, increasing (the k(t) knots)."""
    grid = sampling_grid(config)
    idx = np.unique(np.linspace(0, grid.size - 1, config["n_calibration"]).round().astype(int))
    return np.sort(grid[idx])


def _family(name):
    if name == "LS":
        return LocalScore
    if name == "boundary ELS":
        return BoundaryAwareELS
    return EquivariantLocalScore


def calibrate(name, train, split_, config, seed):
    """The patch-size schedule of a patch model, calibrated on ``train`` (S1).

    ``"... reference k"``: per knot, the candidate whose score has the highest median
    cosine similarity with the empirical score of ``train`` along that score's own
    reverse ODE paths; otherwise the candidate with the smallest held-out denoising loss
    on the reference half of the held-out images.
    """
    schedule = nd.OU()
    cls = _family(name)

    def model_for(k):
        return cls(train, schedule, k)

    times = calibration_times(config)
    candidates = config["candidates"]
    if name.endswith("reference k"):
        reference = nd.EmpiricalScore(flat(train), schedule)
        run = nd.sample(reference, config["n_calibration_images"], T=config["T"],
                        delta=config["delta"], steps=config["steps"], process="ode",
                        solver="ddim", grid="uniform_lambda", save_at=times[::-1],
                        rng=[seed, 7], progress=False)
        path = [(t, x, reference.score(t, x)) for t, x in zip(times[::-1], run.trajectory)]
        return calibrate_to_reference(model_for, candidates, path)
    held = flat(split_.reference[: config["n_calibration_images"]])
    return calibrate_held_out(model_for, candidates, held, schedule, times, rng=[seed, 8])


def build_model(name, train, config, k=None):
    """Model ``name`` on training images ``train (N, H, W, C)``.

    ``k`` is the patch-size schedule of a patch model (from :func:`calibrate`); the
    empirical score needs none, PCA-locality takes ``config["pca_threshold"]``.
    """
    schedule = nd.OU()
    if name == "empirical":
        return nd.EmpiricalScore(flat(train), schedule)
    if name == "PCA-locality":
        return PCALocalityScore(train, schedule, threshold=config["pca_threshold"])
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}")
    return _family(name)(train, schedule, k)


def build_models(name, split_, config, seed):
    """The model of S1 and of S2 (one k(t), calibrated on S1, shared) and the schedule."""
    k = None
    if name not in ("empirical", "PCA-locality"):
        k = calibrate(name, split_.s1, split_, config, seed)
    return build_model(name, split_.s1, config, k), build_model(name, split_.s2, config, k), k


def initial_noise(config, dim):
    """The shared starts ``x_T``: one draw per dataset, the same for every N and model."""
    return np.random.default_rng([config["noise_seed"], dim]).standard_normal(
        (config["pairs"], dim))


def sample(model, x_T, config):
    """Reverse probability-flow ODE (DDIM, uniform in lambda) from ``x_T``, then the
    model's own denoiser at ``delta`` (Tweedie's estimate of the clean image)."""
    run = nd.sample(model, x_T.shape[0], T=config["T"], delta=config["delta"],
                    steps=config["steps"], process="ode", solver="ddim", grid="uniform_lambda",
                    x_T=x_T, progress=False)
    return model.denoise(config["delta"], run.x)


def paired_samples(m1, m2, config):
    """Samples of S1's and S2's models from the same starts, shape (pairs, D) each."""
    x_T = initial_noise(config, m1.dim)
    return sample(m1, x_T, config), sample(m2, x_T, config)


def _memorised(x, train):
    """The audit's ratio rule against ``train (N, D)`` (it needs N >= 2, so the study's
    N start at 2); and the nearest distance."""
    idx, dist, ratio = nearest_points(x, train)
    return ratio < MEMORISED_RATIO, dist, idx


def classifier(split_):
    """Logistic regression on the probe half of the held-out images (never on S1, S2)."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(max_iter=5000)
    return fit.fit(flat(split_.probes), split_.probe_labels)


def reference_levels(split_):
    """The real-to-real levels: probes' distances to the reference half, the classifier's
    confidence on the reference half, and the held-out images' distance to S1."""
    ref = flat(split_.reference)
    probe_dist = nearest_points(flat(split_.probes), ref)[1]
    clf = classifier(split_)
    confidence = clf.predict_proba(ref).max(axis=1)
    accuracy = float(np.mean(clf.predict(ref) == split_.reference_labels))
    held_to_train = nearest_points(ref, flat(split_.s1))[1]
    return {"probe_distance": probe_dist.tolist(), "confidence": confidence.tolist(),
            "accuracy": accuracy, "held_to_s1": held_to_train.tolist()}, clf


def measure(a, b, split_, clf, levels):
    """Per-pair measurements of paired samples ``a`` (S1's model) and ``b`` (S2's).

    Returns
    -------
    dict of lists, one entry per pair
        ``memorised_a/b`` (the audit's rule against the own training set),
        ``nearest_a/b`` (distance to the own training set), ``agree`` (the pair is closer
        to each other than either sample is to any image of S1 or S2), ``pair`` (their
        distance), ``union_a/b`` (distance to S1 u S2), ``quality_a/b`` (distance to the
        held-out reference set within the real images' 95% quantile), ``confidence_a/b``
        (the classifier's top probability) and ``class_a/b`` (its label).
    """
    s1, s2 = flat(split_.s1), flat(split_.s2)
    both = np.vstack([s1, s2])
    out = {}
    cut = np.quantile(levels["probe_distance"], QUALITY_QUANTILE)
    for tag, x, own in (("a", a, s1), ("b", b, s2)):
        mem, dist, _ = _memorised(x, own)
        out[f"memorised_{tag}"] = mem.tolist()
        out[f"nearest_{tag}"] = dist.tolist()
        out[f"union_{tag}"] = nearest_points(x, both)[1].tolist()
        out[f"quality_{tag}"] = (nearest_points(x, flat(split_.reference))[1] <= cut).tolist()
        proba = clf.predict_proba(x)
        out[f"confidence_{tag}"] = proba.max(axis=1).tolist()
        out[f"class_{tag}"] = clf.classes_[proba.argmax(axis=1)].tolist()
    pair = np.linalg.norm(a - b, axis=1)
    closest = np.minimum(out["union_a"], out["union_b"])
    out["agree"] = (pair < closest).tolist()
    out["pair"] = pair.tolist()
    return out


def generalising(m, levels):
    """Per pair: agree, neither memorised, both of data quality by both measures (near a
    held-out image as real images are, and classified as confidently as the real images
    above their 10% quantile); a numpy bool array."""
    cut = np.quantile(levels["confidence"], CONFIDENCE_QUANTILE)
    return (np.asarray(m["agree"]) & ~np.asarray(m["memorised_a"])
            & ~np.asarray(m["memorised_b"]) & np.asarray(m["quality_a"])
            & np.asarray(m["quality_b"]) & (np.asarray(m["confidence_a"]) >= cut)
            & (np.asarray(m["confidence_b"]) >= cut))
