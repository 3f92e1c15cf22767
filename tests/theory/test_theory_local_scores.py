"""Tests of theory.local_scores: LS, ELS, boundary-aware ELS and PCA-locality.

The oracles are independent of the module's patch code: the empirical denoiser of
theory.mixture (LS with a window covering the image, ELS with k = 1 or k = H), a
50-digit mpmath evaluation written from the definitions with explicit index
arithmetic, and the Wiener gain of theory.denoisers for the PCA masks.
"""

import exact_local
import mpmath as mp
import numpy as np
import pytest

import theory.local_scores as ls
from theory.denoisers import gaussian_denoiser_jacobian
from theory.local_scores import (
    boundary_els_denoise,
    els_denoise,
    image_score,
    local_denoise,
    pca_locality_denoise,
    pca_locality_mask,
)
from theory.mixture import mixture_denoise

EPS = np.finfo(float).eps


def problem(n=6, m=3, h=5, w=4, c=2, seed=0):
    rng = np.random.default_rng(seed)
    train = rng.uniform(size=(n, h, w, c))
    query = 0.7 * train[rng.integers(n, size=m)] + 0.6 * rng.standard_normal((m, h, w, c))
    return train, query


def empirical(train, query, alpha, sigma2):
    flat = mixture_denoise(query.reshape(len(query), -1), train.reshape(len(train), -1),
                           alpha, sigma2)
    return flat.reshape(query.shape)


# ---------------------------------------------------------------- LS


@pytest.mark.parametrize("sigma2", [0.05, 0.4, 3.0])
def test_ls_with_a_window_covering_the_image_is_the_empirical_denoiser(sigma2):
    train, query = problem()
    # Window centred on the corner pixel covers the image iff k >= 2 max(H, W) - 1.
    out = local_denoise(train, query, 0.7, sigma2, k=9)
    np.testing.assert_allclose(out, empirical(train, query, 0.7, sigma2), rtol=0, atol=64 * EPS)


def test_ls_with_k_equal_to_the_image_side_is_not_the_empirical_denoiser():
    # The convention matters: with zero padding and k = H the corner pixel sees
    # only a quarter of the image, so LS(k = H) differs from the empirical denoiser.
    train, query = problem(h=5, w=5)
    gap = np.abs(local_denoise(train, query, 0.7, 0.4, k=5) - empirical(train, query, 0.7, 0.4))
    assert gap[:, 2, 2].max() < 64 * EPS  # the centre's window is the whole image
    assert gap[:, 0, 0].max() > 1e-3


def test_one_training_image_gives_the_gaussian_score():
    train, query = problem(n=1)
    alpha, sigma2 = 0.6, 0.2
    gaussian = (alpha * train - query) / sigma2
    # (The boundary-aware ELS is LS for k >= max(H, W); below that its interior
    # pixels still average over the patches of the one image.)
    for denoised in (local_denoise(train, query, alpha, sigma2, 3),
                     boundary_els_denoise(train, query, alpha, sigma2, 5),
                     pca_locality_denoise(train, query, alpha, sigma2, np.eye(40))):
        np.testing.assert_allclose(image_score(denoised, query, alpha, sigma2), gaussian,
                                   rtol=1e-15, atol=1e-13)
    # ELS with one image and one patch per image (k = H = W): the centre pixel everywhere.
    train, query = problem(n=1, h=3, w=3)
    out = els_denoise(train, query, alpha, sigma2, 3)
    np.testing.assert_array_equal(out, np.broadcast_to(train[:, 1:2, 1:2], out.shape))


# ---------------------------------------------------------------- ELS


@pytest.mark.parametrize("padding", ["valid", "circular"])
def test_els_with_k_1_is_a_per_pixel_mixture_over_all_pixel_values(padding):
    train, query = problem(c=2)
    alpha, sigma2 = 0.8, 0.05
    out = els_denoise(train, query, alpha, sigma2, 1, train_padding=padding)
    pixels = mixture_denoise(query.reshape(-1, 2), train.reshape(-1, 2), alpha, sigma2)
    np.testing.assert_allclose(out.reshape(-1, 2), pixels, rtol=0, atol=64 * EPS)


@pytest.mark.parametrize("padding", ["valid", "circular"])
@pytest.mark.parametrize("shift", [(1, 0), (0, 3), (2, 1), (-1, -2)])
def test_els_is_exactly_translation_equivariant(padding, shift):
    train, query = problem(h=6, w=5)
    out = els_denoise(train, query, 0.8, 0.3, 3, train_padding=padding)
    moved = els_denoise(train, np.roll(query, shift, axis=(1, 2)), 0.8, 0.3, 3,
                        train_padding=padding)
    np.testing.assert_array_equal(moved, np.roll(out, shift, axis=(1, 2)))


def test_els_with_one_patch_per_image_is_the_empirical_denoiser_of_the_rolled_query():
    # k = H = W: the keys are the whole training images and each value is the
    # image's centre pixel; pixel (i, j)'s query patch is the query rolled so that
    # (i, j) sits at the centre. This pins the centre index and the circular padding.
    train, query = problem(h=5, w=5)
    alpha, sigma2 = 0.8, 0.3
    out = els_denoise(train, query, alpha, sigma2, 5)
    for i, j in [(2, 2), (0, 0), (4, 1), (3, 4)]:
        rolled = np.roll(query, (2 - i, 2 - j), axis=(1, 2))
        expected = empirical(train, rolled, alpha, sigma2)[:, 2, 2]
        np.testing.assert_allclose(out[:, i, j], expected, rtol=0, atol=64 * EPS)


def test_a_zero_padded_query_breaks_equivariance(monkeypatch):
    # Negative control: the equivariance test above must catch ELS without
    # circular padding of the query.
    patches = ls._patches
    monkeypatch.setattr(ls, "_patches", lambda images, k, mode: patches(images, k, "constant"))
    train, query = problem(h=6, w=5)
    out = ls.els_denoise(train, query, 0.8, 0.3, 3)
    moved = ls.els_denoise(train, np.roll(query, (1, 0), axis=(1, 2)), 0.8, 0.3, 3)
    assert not np.array_equal(moved, np.roll(out, (1, 0), axis=(1, 2)))


# ---------------------------------------------------------------- boundary-aware ELS


def test_boundary_els_reduces_to_its_parts():
    train, query = problem(h=7, w=6)
    alpha, sigma2 = 0.8, 0.3
    # k = 1: no pixel is near an edge, every pixel matches every pixel.
    np.testing.assert_array_equal(boundary_els_denoise(train, query, alpha, sigma2, 1),
                                  els_denoise(train, query, alpha, sigma2, 1))
    # k >= max(H, W): every pixel keeps its own location, which is LS.
    np.testing.assert_allclose(boundary_els_denoise(train, query, alpha, sigma2, 7),
                               local_denoise(train, query, alpha, sigma2, 7), rtol=0,
                               atol=64 * EPS)
    k, r = 3, 1
    out = boundary_els_denoise(train, query, alpha, sigma2, k)
    # Interior pixels: the valid ELS (their patches need no padding).
    inner = (slice(None), slice(r, 7 - r), slice(r, 6 - r))
    np.testing.assert_allclose(out[inner], els_denoise(train, query, alpha, sigma2, k)[inner],
                               rtol=0, atol=64 * EPS)
    # Corners: LS.
    local = local_denoise(train, query, alpha, sigma2, k)
    for i, j in [(0, 0), (0, 5), (6, 0), (6, 5)]:
        np.testing.assert_allclose(out[:, i, j], local[:, i, j], rtol=0, atol=64 * EPS)


# ---------------------------------------------------------------- 50-digit oracle


@pytest.mark.parametrize("sigma2", [1e-3, 0.5])
@pytest.mark.parametrize("model", ["ls", "els_valid", "els_circular", "boundary"])
def test_against_50_digit_oracle(model, sigma2):
    mp.mp.dps = 50
    train, query = problem(n=2, m=2, h=4, w=5, c=2, seed=3)
    alpha, k = 0.9, 3
    functions = {
        "ls": lambda: local_denoise(train, query, alpha, sigma2, k),
        "els_valid": lambda: els_denoise(train, query, alpha, sigma2, k),
        "els_circular": lambda: els_denoise(train, query, alpha, sigma2, k, "circular"),
        "boundary": lambda: boundary_els_denoise(train, query, alpha, sigma2, k),
    }
    out = functions[model]()
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, exact_local.denoise(train, query, alpha, sigma2, k, model),
                               rtol=0,
                               atol=64 * EPS)


# ---------------------------------------------------------------- PCA-locality


def test_pca_mask_is_the_row_normalised_wiener_gain():
    train, _ = problem(n=30, h=3, w=3, c=1)
    alpha, sigma2 = 0.7, 0.2
    cov = np.cov(train.reshape(30, -1), rowvar=False)
    gain = gaussian_denoiser_jacobian(cov, alpha, sigma2)  # alpha Sigma (alpha^2 Sigma + s2)^-1
    expected = (gain / np.diagonal(gain)[:, None]).T
    np.testing.assert_allclose(pca_locality_mask(train, alpha, sigma2), expected, rtol=1e-10,
                               atol=1e-12)
    binary = pca_locality_mask(train, alpha, sigma2, threshold=0.3)
    np.testing.assert_array_equal(binary, np.abs(expected) >= 0.3 * np.abs(expected).max())


def test_pca_locality_with_full_and_identity_masks():
    train, query = problem(c=1)
    alpha, sigma2 = 0.8, 0.3
    d = 20
    np.testing.assert_allclose(pca_locality_denoise(train, query, alpha, sigma2, np.ones((d, d))),
                               empirical(train, query, alpha, sigma2), rtol=0, atol=64 * EPS)
    per_coordinate = pca_locality_denoise(train, query, alpha, sigma2, np.eye(d))
    flat_q, flat_t = query.reshape(3, d), train.reshape(6, d)
    for i in (0, 7, 19):
        expected = mixture_denoise(flat_q[:, i:i + 1], flat_t[:, i:i + 1], alpha, sigma2)
        np.testing.assert_allclose(per_coordinate.reshape(3, d)[:, i], expected[:, 0], rtol=0,
                                   atol=64 * EPS)


def test_pca_locality_with_a_square_window_mask_is_ls():
    train, query = problem(c=1)
    h, w, k = 5, 4, 3
    rows, cols = np.divmod(np.arange(h * w), w)
    window = ((np.abs(rows[:, None] - rows[None, :]) <= k // 2)
              & (np.abs(cols[:, None] - cols[None, :]) <= k // 2)).astype(float)
    np.testing.assert_allclose(pca_locality_denoise(train, query, 0.8, 0.3, window),
                               local_denoise(train, query, 0.8, 0.3, k), rtol=0, atol=64 * EPS)


# ---------------------------------------------------------------- input checks


def test_bad_inputs_raise_naming_the_argument():
    train, query = problem()
    with pytest.raises(ValueError, match="k must be an odd"):
        els_denoise(train, query, 0.8, 0.3, 2)
    with pytest.raises(TypeError, match="k must be"):
        local_denoise(train, query, 0.8, 0.3, 3.0)
    with pytest.raises(ValueError, match="query"):
        local_denoise(train, query[:, :4], 0.8, 0.3, 3)
    with pytest.raises(ValueError, match="k must be <="):
        els_denoise(train, query, 0.8, 0.3, 5)
    with pytest.raises(ValueError, match="train_padding"):
        els_denoise(train, query, 0.8, 0.3, 3, train_padding="zeros")
    with pytest.raises(ValueError, match="sigma2"):
        boundary_els_denoise(train, query, 0.8, 0.0, 3)
    bad = train.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="train"):
        local_denoise(bad, query, 0.8, 0.3, 3)
    with pytest.raises(ValueError, match="mask"):
        pca_locality_denoise(train, query, 0.8, 0.3, np.ones((3, 3)))
    with pytest.raises(ValueError, match="threshold"):
        pca_locality_mask(train, 0.8, 0.3, threshold=2.0)


def test_no_nan_at_extreme_noise_levels():
    train, query = problem()
    for sigma2 in (1e-12, 1e8):
        for out in (local_denoise(train, 1e3 * query, 1.0, sigma2, 3),
                    els_denoise(train, 1e3 * query, 1.0, sigma2, 3),
                    boundary_els_denoise(train, 1e3 * query, 1.0, sigma2, 3)):
            assert np.isfinite(out).all()
            assert out.min() >= train.min() - 1e-12 and out.max() <= train.max() + 1e-12
