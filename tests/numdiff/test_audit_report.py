"""What a user of ``python -m numdiff.audit`` reads: exit codes, ``--help``, REPORT.md, figures."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from numdiff.audit import CLASSES, audit, classify
from numdiff.audit.__main__ import exit_status, main, parse_args
from numdiff.audit.figures import ratio_axes


def model_sets(kind, seed=0, n=400, d=8):
    """Training, held-out and generated sets: a perfect, a copying (30% copies plus noise
    0.01) or an over-dispersed (x1.5) model of N(0, I_d)."""
    rng = np.random.default_rng(seed)
    train, holdout, x = (rng.standard_normal((n, d)) for _ in range(3))
    if kind == "copying":
        k = rng.integers(n, size=n * 3 // 10)
        x[: k.size] = train[k] + 0.01 * rng.standard_normal((k.size, d))
    elif kind == "over-dispersed":
        x *= 1.5
    return train, holdout, x


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    for kind in ("null", "copying", "over-dispersed"):
        for name, arr in zip(("train", "holdout", "samples"), model_sets(kind)):
            np.save(root / f"{kind}_{name}.npy", arr)
    return root


def argv(files, kind, out, *extra, holdout=True):
    args = ["--train", str(files / f"{kind}_train.npy"), "--samples",
            str(files / f"{kind}_samples.npy"), "--out", str(out), "--no-progress"]
    if holdout:
        args += ["--holdout", str(files / f"{kind}_holdout.npy")]
    return args + list(extra)


@pytest.mark.parametrize("kind, verdict", [
    # n = 400, d = 8: copying z about -9, over-dispersed about +18, null (seed 0) |z| < 1.
    ("copying", "data-copying"), ("over-dispersed", "under-fitting"), ("null", "neither"),
])
def test_verdict_and_exit_status_with_fail_on_any(files, tmp_path, kind, verdict, capsys):
    status = {"data-copying": 3, "under-fitting": 4, "neither": 0}[verdict]
    assert main(argv(files, kind, tmp_path, "--fail-on", "any")) == status
    assert json.loads((tmp_path / "results.json").read_text())["verdict"] == verdict
    assert f"verdict: {verdict}" in capsys.readouterr().out


def test_exit_status_table():
    table = {None: (0, 0, 0, 0), "copying": (3, 0, 0, 5), "under-fitting": (0, 4, 0, 5),
             "any": (3, 4, 0, 5)}
    for fail_on, statuses in table.items():
        for verdict, status in zip(("data-copying", "under-fitting", "neither", None),
                                   statuses):
            assert exit_status(verdict, fail_on) == status, (fail_on, verdict)


def test_exit_status_edge_cases(files, tmp_path, capsys):
    assert main(argv(files, "copying", tmp_path / "a", "--fail-on-copying")) == 3
    assert main(argv(files, "copying", tmp_path / "c", "--fail-on", "any",
                     holdout=False)) == 2
    assert "--fail-on needs --holdout" in capsys.readouterr().err
    # No cell holds 401 samples: no verdict.
    assert main(argv(files, "copying", tmp_path / "d", "--fail-on", "any",
                     "--min-generated", "401")) == 5
    assert main(argv(files, "copying", tmp_path / "e", "--cells", "0")) == 2
    assert "n_cells must be >= 1" in capsys.readouterr().err


def test_help_states_defaults_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in (("--min-generated MIN_GENERATED generated points a cell needs to enter C_T "
                   "(default: 21)"), "folder to write REPORT.md",
                   "(default: min(samples, holdout) // 100, clipped to [1, 50])",
                   "--distance {train,cell}", "3 verdict \"data-copying\"", "--near-distance",
                   "--features-train FILE", "(default: 0.3333)"):
        assert phrase in text, phrase


def test_report_explains_its_numbers(files, tmp_path):
    assert main(argv(files, "copying", tmp_path, "--partition-repeats", "3")) == 0
    report = " ".join((tmp_path / "REPORT.md").read_text().split())
    res = json.loads((tmp_path / "results.json").read_text())
    for phrase in (
        "**data-copying**", "standard deviation sqrt(sum w^2) / sum w",
        "Phi(z) for data-copying, 1 - Phi(z) for under-fitting",
        "negative when the samples are closer (the data-copying side)",
        "Raw C_T depends on the number of cells", "`train` (used)",
        "the training points of the point's cell | mn/2 - 1/2",
        "Across partition seeds [0, 1, 2]",
        f"nearest distance <= {res['thresholds']['verbatim_distance']:.6g}",
        "a perfect model would get",
    ):
        assert phrase in report, phrase
    cell = res["c_t_by_distance"]["cell"]
    assert f"{cell['statistic']:.4g}" in report  # the reference-compatible C_T is printed


def test_absolute_thresholds_replace_the_quantiles():
    """Copies at noise 0.01 in d = 8 lie near 0.01 * sqrt(8) = 0.028 from their source: with a
    verbatim threshold of 1e-3 they are near copies, not verbatim."""
    train, holdout, x = model_sets("copying", seed=1)
    res = audit(train, x, holdout, verbatim_distance=1e-3, near_distance=0.5)
    th = res.thresholds
    assert (th["verbatim_distance"], th["near_distance"]) == (1e-3, 0.5)
    assert th["verbatim_source"] == th["near_source"] == "absolute"
    assert th["near_reference_share"] == np.mean(res.reference_distance < 0.5)
    d1 = np.linalg.norm(x[:, None] - train[None], axis=2)
    d1.sort(axis=1)
    memorised = d1[:, 0] / d1[:, 1] < 1 / 3
    expected = np.where(memorised & (d1[:, 0] <= 1e-3), 2,
                        np.where(memorised | (d1[:, 0] < 0.5), 1, 0))
    np.testing.assert_array_equal(res.classes, expected)
    assert res.class_counts["verbatim"] == 0 and res.class_counts["near copy"] >= 120
    with pytest.raises(ValueError, match="near_distance"):
        audit(train, x, near_distance=-1.0)
    with pytest.raises(TypeError, match="verbatim_distance"):
        audit(train, x, verbatim_distance="0.1")
    assert classify(np.array([True]), np.array([0.0]), 0.5, 1e-3)[0] == CLASSES.index("verbatim")


def _overlaps(labels):
    boxes = sorted((b.x0, b.x1) for b in labels)
    return any(a[1] > b[0] for a, b in itertools.pairwise(boxes))


@pytest.mark.parametrize("case", ["exact copies", "tiny distances", "narrow", "copying"])
def test_distance_axis_labels_do_not_overlap(case):
    rng = np.random.default_rng(2)
    train, holdout, x = model_sets("null", seed=2, n=300)
    if case == "exact copies":
        x[:60] = train[:60]
    elif case == "tiny distances":
        x[:60] = train[:60] + 1e-13 * rng.standard_normal((60, 8))
    elif case == "copying":
        x[:60] = train[:60] + 0.01 * rng.standard_normal((60, 8))
    fig = ratio_axes(audit(train, x, holdout))
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[1]
    ticks = ax.get_xticklabels() + ax.get_xticklabels(minor=True)
    labels = [t.get_window_extent(renderer) for t in ticks if t.get_text() and t.get_visible()
              and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
    assert len(labels) >= 2 and not _overlaps(labels)
    assert ax.get_ylabel() == "share of the set per bin"
    assert (ax.get_xscale() == "linear") == (case == "narrow")
