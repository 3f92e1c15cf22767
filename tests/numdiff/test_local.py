"""The local image scores (numdiff.local) against the dense oracle of
theory/local_scores.py and the identities they must satisfy.

Tolerance: both sides are float64 softmax averages of values in [0, 1] with each
query's own maximum; they differ by the rounding of the logits and sums, a few
eps. ``TOL = 64 eps`` (DESIGN: the accuracy contract of ``EmpiricalScore``) where
the engine works by direct differences (``k^2 C <= 16``); the BLAS engine's logits
are exact to ``LOGIT_TOL`` nats (docs/numerics.md#accuracy), which moves a weight,
hence a mean of values in [0, 1], by up to ``LOGIT_TOL`` more.
"""

from __future__ import annotations

import exact_local
import mpmath as mp
import numpy as np
import pytest

import numdiff as nd
from numdiff.engines import limits
from numdiff.local import BoundaryAwareELS, EquivariantLocalScore, LocalScore, PCALocalityScore
from numdiff.local import els as els_module
from theory import local_scores as oracle

TOL = 64 * np.finfo(np.float64).eps
SCHEDULE = nd.OU()


def case(seed=0, n=12, shape=(7, 6, 2), m=3):
    rng = np.random.default_rng(seed)
    return rng.random((n, *shape)), rng.random((m, *shape)) + 0.3 * rng.standard_normal((m, *shape))


def at(t):
    return float(SCHEDULE.alpha(t)), float(SCHEDULE.sigma2(t))


def denoise(model, t, query):
    return model.denoise(t, query.reshape(query.shape[0], -1)).reshape(query.shape)


MODELS = {
    "ls": (lambda d, k: LocalScore(d, SCHEDULE, k),
           lambda d, q, a, s2, k: oracle.local_denoise(d, q, a, s2, k)),
    "els_valid": (lambda d, k: EquivariantLocalScore(d, SCHEDULE, k),
                  lambda d, q, a, s2, k: oracle.els_denoise(d, q, a, s2, k)),
    "els_circular": (lambda d, k: EquivariantLocalScore(d, SCHEDULE, k, "circular"),
                     lambda d, q, a, s2, k: oracle.els_denoise(d, q, a, s2, k, "circular")),
    "boundary_els": (lambda d, k: BoundaryAwareELS(d, SCHEDULE, k),
                     lambda d, q, a, s2, k: oracle.boundary_els_denoise(d, q, a, s2, k)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("t", [1e-3, 0.05, 1.0])
def test_models_match_the_oracle(name, k, t):
    data, query = case()
    build, reference = MODELS[name]
    got = denoise(build(data, k), t, query)
    want = reference(data, query, *at(t), k)
    blas = k * k * data.shape[3] > limits.DIRECT_MAX_DIM
    assert np.abs(got - want).max() <= TOL + (limits.LOGIT_TOL if blas else 0.0)


def repeated_patch_case(seed=5, n=6, shape=(7, 6, 1), m=3):
    """Images on a zero background with a 3-level blob: most patches repeat."""
    rng = np.random.default_rng(seed)
    data = np.zeros((n, *shape))
    data[:, 2:5, 2:4] = rng.integers(0, 3, size=(n, 3, 2, shape[2])) / 2.0
    return data, data[:m] + 0.2 * rng.standard_normal((m, *shape))


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(("k", "t"), [(3, 5e-7), (3, 0.3), (5, 1e-3), (5, 1.0)])
def test_repeated_patches_merged_with_counts_match_the_oracle(name, k, t):
    """Repeated training patches are merged into one key with its count
    (ImageScoreModel.engine); against the float64 oracle, which loops over every
    patch, direct (k = 3, d = 9) and BLAS (k = 5, d = 25)."""
    data, query = repeated_patch_case()
    model = MODELS[name][0](data, k)
    got = denoise(model, t, query)
    want = MODELS[name][1](data, query, *at(t), k)
    blas = k * k > limits.DIRECT_MAX_DIM
    assert np.abs(got - want).max() <= TOL + (limits.LOGIT_TOL if blas else 0.0)
    if name == "els_circular":  # all-zero patches around the blob: the counted path ran
        assert model.engines(k).keys.log_counts is not None


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize(("channels", "t"), [(1, 5e-7), (1, 0.3), (2, 0.3)])
def test_models_match_the_256_bit_oracle(name, channels, t):
    """Directly against the definitions in 256-bit arithmetic (tests/numdiff/
    exact_local.py), not through the float64 oracle: ``k = 3``, one channel (the
    direct engine, ``d = 9``; ``t = 5e-7`` is ``sigma2 = 1e-6``) or two (BLAS, ``d =
    18``)."""
    data, query = case(4, n=2, shape=(4, 5, channels), m=2)
    build = MODELS[name][0]
    oracle_name = {"boundary_els": "boundary"}.get(name, name)
    with mp.workprec(256):
        want = exact_local.denoise(data, query, *at(t), 3, oracle_name)
    blas = 9 * channels > limits.DIRECT_MAX_DIM
    got = denoise(build(data, 3), t, query)
    assert np.abs(got - want).max() <= TOL + (limits.LOGIT_TOL if blas else 0.0)


def test_pca_locality_matches_the_oracle_and_its_mask():
    data, query = case(1)
    for t in (0.01, 0.3):
        alpha, sigma2 = at(t)
        model = PCALocalityScore(data, SCHEDULE, threshold=0.2)
        mask = oracle.pca_locality_mask(data, alpha, sigma2, 0.2)
        assert np.array_equal(model.mask(alpha, sigma2), mask > 0)
        want = oracle.pca_locality_denoise(data, query, alpha, sigma2, mask)
        assert np.abs(denoise(model, t, query) - want).max() <= TOL


def test_ls_with_a_window_over_the_whole_image_is_the_empirical_score():
    data, query = case(2, shape=(4, 5, 1))
    k = 2 * 5 - 1  # every pixel's window covers the image
    flat = query.reshape(query.shape[0], -1)
    empirical = nd.EmpiricalScore(data.reshape(data.shape[0], -1), SCHEDULE)
    for t in (0.01, 0.5):
        got = LocalScore(data, SCHEDULE, k).score(t, flat)
        want = empirical.score(t, flat)
        assert np.abs(got - want).max() <= TOL * np.abs(want).max()


def test_a_single_image_gives_the_gaussian_score():
    data, query = case(3, n=1)
    flat = query.reshape(query.shape[0], -1)
    t = 0.2
    alpha, sigma2 = at(t)
    want = (alpha * data.reshape(1, -1) - flat) / sigma2
    for model in (LocalScore(data, SCHEDULE, 3), BoundaryAwareELS(data, SCHEDULE, 9)):
        assert np.abs(model.score(t, flat) - want).max() <= TOL * np.abs(want).max()


def test_els_with_one_pixel_patches_is_a_per_pixel_mixture_of_all_pixel_values():
    data, query = case(4)
    t = 0.1
    pixels = nd.EmpiricalScore(data.reshape(-1, data.shape[3]), SCHEDULE)
    want = pixels.denoise(t, query.reshape(-1, query.shape[3])).reshape(query.shape)
    got = denoise(EquivariantLocalScore(data, SCHEDULE, 1), t, query)
    assert np.abs(got - want).max() <= TOL


@pytest.mark.parametrize("k", [3, 5])
def test_els_is_equivariant_to_circular_shifts(k):
    data, query = case(5)
    model = EquivariantLocalScore(data, SCHEDULE, k)
    shifted = np.roll(query, (2, -3), axis=(1, 2))
    blas = k * k * data.shape[3] > limits.DIRECT_MAX_DIM
    for t in (0.01, 0.3):
        out = denoise(model, t, query)
        err = np.abs(denoise(model, t, shifted) - np.roll(out, (2, -3), axis=(1, 2))).max()
        assert err <= TOL + (limits.LOGIT_TOL if blas else 0.0)


def test_injected_bugs_are_caught(monkeypatch):
    """A zero-padded query (instead of circular) breaks equivariance and the oracle;
    an off-centre value breaks the oracle."""
    data, query = case(6)
    t, k = 0.05, 3
    want = oracle.els_denoise(data, query, *at(t), k)
    real = els_module.all_patches
    monkeypatch.setattr(els_module, "all_patches",
                        lambda images, kk, padding: real(images, kk, "zero"))
    assert np.abs(denoise(EquivariantLocalScore(data, SCHEDULE, k), t, query) - want).max() > 1e-3
    monkeypatch.undo()
    monkeypatch.setattr(els_module, "centre_coordinates",
                        lambda kk, c: np.arange(c) * kk * kk + (kk // 2) * kk + kk // 2 + 1)
    assert np.abs(denoise(EquivariantLocalScore(data, SCHEDULE, k), t, query) - want).max() > 1e-3


def test_patch_size_schedule_and_sampling():
    data, _ = case(7, shape=(6, 6, 1))
    model = EquivariantLocalScore(data, SCHEDULE, k=lambda t: 5 if t > 0.3 else 3)
    assert model.patch_size(1.0) == 5 and model.patch_size(0.1) == 3
    out = nd.sample(model, 4, T=2.0, delta=0.05, steps=6, process="ode", solver="ddim", rng=0)
    assert out.x.shape == (4, 36) and np.isfinite(out.x).all()


def test_bad_input_is_named():
    data, _ = case()
    with pytest.raises(ValueError, match="k must be an odd"):
        EquivariantLocalScore(data, SCHEDULE, 4)
    with pytest.raises(TypeError, match="k must be an odd int"):
        LocalScore(data, SCHEDULE, 3.0)
    with pytest.raises(ValueError, match="k must be <= min"):
        EquivariantLocalScore(data, SCHEDULE, 7)
    with pytest.raises(ValueError, match="train_padding"):
        EquivariantLocalScore(data, SCHEDULE, 3, "reflect")
    with pytest.raises(ValueError, match="data must have shape"):
        LocalScore(data[0], SCHEDULE, 3)
    with pytest.raises(ValueError, match="threshold"):
        PCALocalityScore(data, SCHEDULE, threshold=0.0)
    with pytest.raises(ValueError, match="x must have d"):
        LocalScore(data, SCHEDULE, 3).denoise(0.1, np.zeros((1, 5)))
    with pytest.raises(ValueError, match="NaN"):
        LocalScore(data, SCHEDULE, 3).denoise(0.1, np.full((1, data[0].size), np.nan))


def test_calibration_to_a_reference_recovers_its_patch_size():
    """The reference is itself an ELS at k = 5: its own k has cosine similarity 1 at
    every step. The others are clearly below 1 at small t only: at large t every
    score is close to the prior's ``-x / sigma^2`` (measured 0.9999 at t = 1)."""
    from numdiff.local import calibrate_to_reference

    data, _ = case(8, shape=(6, 6, 1))
    rng = np.random.default_rng(0)
    reference = EquivariantLocalScore(data, SCHEDULE, 5)
    path = []
    for t in (0.05, 0.3, 1.0):
        x = rng.standard_normal((4, 36))
        path.append((t, x, reference.score(t, x)))
    fitted = calibrate_to_reference(lambda k: EquivariantLocalScore(data, SCHEDULE, k),
                                    [1, 3, 5], path)
    assert list(fitted.sizes) == [5, 5, 5]
    assert np.allclose(fitted.scores[:, 2], 1.0, atol=1e-12) and (fitted.scores[0, :2] < 0.99).all()
    assert fitted(0.06) == 5


def test_held_out_calibration_picks_the_smallest_loss():
    from numdiff.local import calibrate_held_out

    data, _ = case(9, n=30, shape=(6, 6, 1))
    fitted = calibrate_held_out(lambda k: EquivariantLocalScore(data[:20], SCHEDULE, k), [1, 3, 5],
                                data[20:].reshape(10, -1), SCHEDULE, [0.05, 1.0], rng=0)
    assert [fitted.candidates[j] for j in fitted.scores.argmin(axis=1)] == list(fitted.sizes)
    with pytest.raises(ValueError, match="increasing"):
        type(fitted)([1.0, 0.5], [3, 3])
    with pytest.raises(ValueError, match="odd"):
        type(fitted)([0.5, 1.0], [3, 4])
