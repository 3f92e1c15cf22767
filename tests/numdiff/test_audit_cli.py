"""``python -m numdiff.audit`` end to end, and the named errors for bad inputs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from numdiff.audit import AuditInputError, audit
from numdiff.audit.__main__ import main
from numdiff.audit.loading import load_set


def write_images(folder, arrays, mode="L"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays):
        Image.fromarray(a.astype(np.uint8), mode=mode).save(folder / f"{i:03d}.png")


@pytest.fixture
def image_sets(tmp_path):
    rng = np.random.default_rng(0)
    write_images(tmp_path / "train", rng.integers(0, 256, (60, 8, 8)))
    write_images(tmp_path / "samples", rng.integers(0, 256, (40, 8, 8)))
    write_images(tmp_path / "holdout", rng.integers(0, 256, (40, 8, 8)))
    for i in range(12):  # 12 samples are exact copies of training images
        shutil.copy(tmp_path / "train" / f"{i:03d}.png", tmp_path / "samples" / f"{i:03d}.png")
    return tmp_path


def test_cli_on_png_folders(image_sets, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "numdiff.audit", "--train", str(image_sets / "train"),
         "--samples", str(image_sets / "samples"), "--holdout", str(image_sets / "holdout"),
         "--out", str(out), "--cells", "1"], capture_output=True, text=True, timeout=120,
        check=False)
    assert proc.returncode == 0, proc.stderr
    assert "memorised fraction 0.3000" in proc.stdout
    for name in ("REPORT.md", "results.json", "samples.csv", "gallery.png", "ratios.png"):
        assert (out / name).stat().st_size > 0
    res = json.loads((out / "results.json").read_text())
    assert res["memorized_count"] == 12 and res["class_counts"]["verbatim"] == 12
    assert res["dim"] == 64 and res["c_t"]["n_cells"] == 1
    report = (out / "REPORT.md").read_text()
    assert "C_T" in report and "Wilson" in report and "gallery.png" in report
    rows = (out / "samples.csv").read_text().splitlines()
    assert len(rows) == 41 and rows[1].endswith("verbatim")


def test_cli_on_npy_files(tmp_path, capsys):
    rng = np.random.default_rng(1)
    train = rng.standard_normal((200, 5))
    samples = rng.standard_normal((100, 5))
    samples[:25] = train[:25] + 1e-4
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "samples.npy", samples)
    np.savez(tmp_path / "holdout.npz", x=rng.standard_normal((100, 5)))
    status = main(["--train", str(tmp_path / "train.npy"), "--samples",
                   str(tmp_path / "samples.npy"), "--holdout", str(tmp_path / "holdout.npz"),
                   "--out", str(tmp_path / "out"), "--no-progress", "--cells", "2"])
    assert status == 0
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["memorized_count"] == 25 and res["n_holdout"] == 100
    assert "memorised fraction 0.2500" in capsys.readouterr().out
    # Without a held-out set: calibrated on the training set, no C_T.
    assert main(["--train", str(tmp_path / "train.npy"), "--samples",
                 str(tmp_path / "samples.npy"), "--out", str(tmp_path / "out2")]) == 0
    res = json.loads((tmp_path / "out2" / "results.json").read_text())
    assert res["c_t"] is None and res["calibration"] == "train leave-one-out"


def _status_and_error(capsys, argv):
    status = main(argv)
    return status, capsys.readouterr().err


@pytest.mark.parametrize("case, message", [
    ("missing", r"train: .*does not exist"),
    ("nan", r"samples.*NaN or infinite"),
    ("shape", r"samples: points have d = 4; the training points have d = 5"),
    ("empty", r"samples.*empty"),
    ("npz_two", r"holdout.*exactly one array"),
    ("garbage", r"samples: cannot read"),
    ("suffix", r"train: .*neither"),
])
def test_cli_names_bad_inputs(tmp_path, capsys, case, message):
    rng = np.random.default_rng(2)
    train, samples = tmp_path / "train.npy", tmp_path / "samples.npy"
    holdout = None
    np.save(train, rng.standard_normal((20, 5)))
    np.save(samples, rng.standard_normal((10, 5)))
    if case == "missing":
        train = tmp_path / "nope.npy"
    elif case == "nan":
        bad = rng.standard_normal((10, 5))
        bad[3, 2] = np.nan
        np.save(samples, bad)
    elif case == "shape":
        np.save(samples, rng.standard_normal((10, 4)))
    elif case == "empty":
        np.save(samples, np.zeros((0, 5)))
    elif case == "npz_two":
        holdout = tmp_path / "h.npz"
        np.savez(holdout, a=np.zeros((3, 5)), b=np.zeros((3, 5)))
    elif case == "garbage":
        samples.write_bytes(b"not an array")
    elif case == "suffix":
        train = tmp_path / "train.txt"
        train.write_text("1 2 3")
    argv = ["--train", str(train), "--samples", str(samples), "--out", str(tmp_path / "o")]
    if holdout is not None:
        argv += ["--holdout", str(holdout)]
    status, err = _status_and_error(capsys, argv)
    assert status == 2
    assert err.startswith("numdiff.audit: ")
    assert re.search(message, err), err


def test_image_folder_errors(tmp_path):
    rng = np.random.default_rng(3)
    write_images(tmp_path / "a", rng.integers(0, 256, (3, 8, 8)))
    write_images(tmp_path / "b", rng.integers(0, 256, (2, 8, 8)))
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(tmp_path / "b" / "zz.png")
    (tmp_path / "empty").mkdir()
    write_images(tmp_path / "c", rng.integers(0, 256, (2, 8, 8)))
    (tmp_path / "c" / "broken.png").write_bytes(b"\x89PNG broken")
    train = load_set(tmp_path / "a", "train")
    assert train.x.shape == (3, 64) and train.image_shape == (8, 8)
    assert 0.0 <= train.x.min() and train.x.max() <= 1.0
    with pytest.raises(AuditInputError, match=r"samples: image .*zz.png has shape \(6, 6\)"):
        load_set(tmp_path / "b", "samples", train)
    with pytest.raises(AuditInputError, match=r"holdout: no PNG or JPEG image"):
        load_set(tmp_path / "empty", "holdout")
    with pytest.raises(AuditInputError, match=r"samples: cannot read image .*broken.png"):
        load_set(tmp_path / "c", "samples")


def test_rgb_images_keep_their_channels(tmp_path):
    rng = np.random.default_rng(4)
    write_images(tmp_path / "rgb", rng.integers(0, 256, (4, 5, 6, 3)), mode="RGB")
    s = load_set(tmp_path / "rgb", "train")
    assert s.x.shape == (4, 90) and s.image_shape == (5, 6, 3)


def test_function_api_errors():
    rng = np.random.default_rng(5)
    train = rng.standard_normal((10, 3))
    with pytest.raises(AuditInputError, match="train: needs at least 2 points"):
        audit(train[:1], train)
    with pytest.raises(AuditInputError, match="samples: the set is empty"):
        audit(train, np.zeros((0, 3)))
    with pytest.raises(AuditInputError, match=r"holdout: 1 point\(s\) hold NaN"):
        audit(train, train, np.array([[0.0, np.inf, 1.0]]))
    with pytest.raises(AuditInputError, match="samples: expected a real numeric array"):
        audit(train, np.array([["a", "b", "c"]]))
    with pytest.raises(TypeError, match="threshold"):
        audit(train, train, threshold="x")
    with pytest.raises(ValueError, match="near_quantile"):
        audit(train, train, near_quantile=1.5)
