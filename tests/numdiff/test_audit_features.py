"""Audits in a feature space: a case where pixel distance fails and a known feature map succeeds.

The model copies training images *shifted* cyclically by a random offset. In
pixels a shifted random texture is as far from its source as any other image
is, so a pixel audit sees nothing. The modulus of the 2-D discrete Fourier
transform is invariant under cyclic shifts (a shift multiplies each
coefficient by a phase), so in that feature space every shifted copy sits at
distance 0 (to rounding) from its source: a feature audit must find exactly
the copies.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from numdiff.audit import AuditInputError, audit
from numdiff.audit.__main__ import main
from numdiff.audit.report import write_report


def dft_modulus(images):
    """Shift-invariant features, shape (n, 8 * 5): ``|rfft2|`` of each 8x8 image."""
    return np.abs(np.fft.rfft2(images)).reshape(images.shape[0], -1)


@pytest.fixture(scope="module")
def shifted_copies():
    """200 training textures, 100 samples of which the first 50 are shifted copies, 100
    held-out textures (uniform 8x8 noise), seed 21."""
    rng = np.random.default_rng(21)
    train = rng.random((200, 8, 8))
    holdout = rng.random((100, 8, 8))
    samples = rng.random((100, 8, 8))
    source = rng.choice(200, 50, replace=False)
    for i, k in enumerate(source):
        dy, dx = rng.integers(1, 8, size=2)  # never the identity shift
        samples[i] = np.roll(train[k], (dy, dx), axis=(0, 1))
    copied = np.arange(100) < 50
    return train, samples, holdout, copied, source


def test_pixels_miss_shifted_copies_and_dft_features_find_them(shifted_copies, tmp_path):
    train, samples, holdout, copied, source = shifted_copies
    pixels = audit(train, samples, holdout, progress=False)
    assert pixels.space == "points" and pixels.dim == 64
    assert pixels.memorized_count <= 2 and pixels.verdict != "data-copying"

    feats = audit(train, samples, holdout, train_features=dft_modulus(train),
                  sample_features=dft_modulus(samples), holdout_features=dft_modulus(holdout),
                  progress=False)
    assert feats.space == "features" and feats.dim == 40 and feats.image_shape == (8, 8)
    np.testing.assert_array_equal(feats.ratio < 1 / 3, copied)
    np.testing.assert_array_equal(feats.nearest_index[copied], source)
    assert feats.class_counts["verbatim"] == 50
    # 50 copies against 50 novel samples in one cell: expected z about -8.
    assert feats.verdict == "data-copying" and feats.c_t.z < -4.5
    # The gallery shows the images (pixels), paired by the feature-space neighbours.
    paths = write_report(feats, tmp_path, train.reshape(200, -1), samples.reshape(100, -1))
    assert paths["gallery.png"].stat().st_size > 0
    assert "features given for each set" in paths["REPORT.md"].read_text()


def test_cli_reads_features_from_flags_and_from_npz_keys(shifted_copies, tmp_path, capsys):
    train, samples, holdout, copied, _ = shifted_copies
    for name, arr in (("train", train), ("samples", samples), ("holdout", holdout)):
        np.save(tmp_path / f"{name}.npy", arr)
        np.save(tmp_path / f"{name}_f.npy", dft_modulus(arr))
        np.savez(tmp_path / f"{name}.npz", images=arr, features=dft_modulus(arr))
    flags = ["--train", str(tmp_path / "train.npy"), "--samples", str(tmp_path / "samples.npy"),
             "--holdout", str(tmp_path / "holdout.npy"), "--no-progress",
             "--fail-on", "copying"]
    for name in ("train", "samples", "holdout"):
        flags += [f"--features-{name}", str(tmp_path / f"{name}_f.npy")]
    keys = ["--train", str(tmp_path / "train.npz"), "--samples", str(tmp_path / "samples.npz"),
            "--holdout", str(tmp_path / "holdout.npz"), "--no-progress", "--fail-on", "copying"]
    for tag, argv in (("flags", flags), ("keys", keys)):
        out = tmp_path / tag
        assert main(argv + ["--out", str(out)]) == 3
        res = json.loads((out / "results.json").read_text())
        assert res["space"] == "features" and res["memorized_count"] == int(copied.sum())
    assert "verdict: data-copying" in capsys.readouterr().out
    # Pixels only: no copy found, exit 0.
    assert main(flags[:7] + ["--fail-on", "copying", "--out", str(tmp_path / "px")]) == 0


def test_feature_inputs_are_checked(shifted_copies):
    train, samples, _, _, _ = shifted_copies
    f_train, f_samples = dft_modulus(train), dft_modulus(samples)
    with pytest.raises(AuditInputError, match="sample_features: features were given for other"):
        audit(train, samples, train_features=f_train)
    with pytest.raises(AuditInputError, match="holdout_features: given without a holdout set"):
        audit(train, samples, train_features=f_train, sample_features=f_samples,
              holdout_features=f_samples)
    with pytest.raises(AuditInputError, match="sample_features: 99 rows for 100 points"):
        audit(train, samples, train_features=f_train, sample_features=f_samples[:99])
    with pytest.raises(AuditInputError, match="samples: features have d = 39"):
        audit(train, samples, train_features=f_train, sample_features=f_samples[:, :39])
    before = f_train.copy()
    audit(train, samples, train_features=f_train, sample_features=f_samples)
    np.testing.assert_array_equal(f_train, before)
