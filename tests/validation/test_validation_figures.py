"""Every figure of the report, rendered on small data, reads at a glance.

The check (:func:`validation.plotting.layout_problems`) is first shown to catch each
fault it looks for on a figure built with that fault; then every figure function
of the studies is rendered on small synthetic inputs of the shape its cells
return, and must show none of them: no legend over the data, no overlapping tick
labels, no two curves of a panel drawn alike, no text cut off at the edge.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from validation import plotting
from validation.orders import plot_orders
from validation.studies import (
    audit,
    audit_report,
    early_stopping,
    figures,
    memorization,
    memorization_plots,
    no_early_stopping,
    scale,
    score_matching,
    score_matching_plots,
)
from validation.studies import denoiser_geometry_plots as dg_plots
from validation.studies import stable_minima_plots as sm_plots
from validation.studies import step_size_report as ss_report
from validation.studies.memorization import load_digits_data

RNG = np.random.default_rng(0)


@pytest.fixture
def rendered(monkeypatch, tmp_path):
    """Figures handed to ``save_figure``, by name, with their layout problems."""
    seen = {}

    def keep(fig, outdir, name):
        seen[name] = plotting.layout_problems(fig)
        return tmp_path / f"{name}.png"

    for module in (plotting, early_stopping, no_early_stopping, memorization_plots, figures,
                   scale, score_matching_plots, audit_report, dg_plots, sm_plots, ss_report):
        monkeypatch.setattr(module, "save_figure", keep)
    return seen


# -- the check catches what it looks for ------------------------------------------------------


def _lines(ax, n=3, **kw):
    x = np.linspace(0.0, 1.0, 20)
    for i in range(n):
        ax.plot(x, x * (i + 1), label=f"curve {i}", **kw)


def test_a_clean_figure_has_no_problems():
    fig, axes = plotting.new_figure()
    _lines(axes[0, 0])
    plotting.legend_outside(axes[0, 0])
    assert plotting.layout_problems(fig) == []


def test_a_legend_over_the_data_is_caught():
    fig, axes = plotting.new_figure()
    _lines(axes[0, 0])
    axes[0, 0].legend(loc="center")
    assert any("legend covers" in p for p in plotting.layout_problems(fig))


def test_overlapping_tick_labels_are_caught():
    fig, axes = plotting.new_figure()
    _lines(axes[0, 0])
    axes[0, 0].set_xticks(np.linspace(0, 1, 30))
    assert any("tick labels overlap" in p for p in plotting.layout_problems(fig))


def test_crowded_minor_log_labels_are_caught_and_log_axis_avoids_them():
    # Less than a decade: matplotlib labels the minor ticks (the old orders.png).
    fig, axes = plotting.new_figure(size=(2.5, 3.0))
    axes[0, 0].loglog([16, 32, 64, 128], [1.0, 0.5, 0.25, 0.12], "o-")
    assert any("tick labels overlap" in p for p in plotting.layout_problems(fig))
    plotting.log_axis(axes[0, 0], "x", [16, 32, 64, 128])
    assert plotting.layout_problems(fig) == []


def test_repeated_colours_are_caught():
    fig, axes = plotting.new_figure()
    x = np.linspace(0.0, 1.0, 5)
    for i in range(12):  # 12 curves on the 10-colour cycle: the old orders.png
        axes[0, 0].plot(x, x * i, label=f"c{i}")
    plotting.legend_outside(axes[0, 0], ncols=2)
    assert any("share" in p or "alike" in p for p in plotting.layout_problems(fig))


def test_a_title_cut_off_by_the_edge_is_caught():
    fig, axes = plotting.new_figure(size=(2.0, 2.0))
    _lines(axes[0, 0], 1)
    axes[0, 0].set_title("a title far too long for a panel this narrow, so it runs off")
    assert any("cut off" in p for p in plotting.layout_problems(fig))


def test_ordered_curves_counts_the_curves_that_coincide():
    fig, axes = plotting.new_figure()
    ys = [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.5, 0.4, 0.2], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0],
          [0.0, 0.0, 0.0]]
    note = plotting.ordered_curves(fig, axes[0, 0], [10, 100, 1000], ys, np.geomspace(1e-4, 1, 6),
                                   "delta")
    assert note == "6 curves; overlapping: 2 at 1, 3 at 0"


# -- every figure function on small data -------------------------------------------------------


def _frac(n=5):
    return np.sort(RNG.uniform(0.05, 0.95, n))[::-1]


def test_early_stopping_figure(rendered):
    eps = [0.03, 0.1, 0.3]
    dims = [1, 2, 16]
    init = {(d, e): {"bound": 2 * e, "tv": e / 5} for d in dims for e in eps}
    disc = {(d, e, p): {"measured": e / 3, "null": e / 4} for d in dims for e in eps
            for p in ("ode", "sde")}
    config = {"dims": [{"d": d} for d in dims], "eps": eps, "solvers": {"ode": 0, "sde": 0}}
    early_stopping._figure(init, disc, config, ".")
    assert rendered == {"early_stopping": []}


def test_no_early_stopping_figure(rendered):
    deltas = [1e-2, 1e-4, 1e-6]
    res = [{"sigma": np.sqrt(d), "mean_dist": np.sqrt(d), "se_dist": 0.01 * np.sqrt(d),
            "memorized_count": 50 * (i + 1), "exact_memorized_count": 100 * (i + 1),
            "counts": RNG.integers(40, 60, 20).tolist()} for i, d in enumerate(deltas)]
    by_process = {p: list(zip(deltas, res)) for p in ("ode", "sde")}
    config = {"d": 2, "n": 200, "n_exact": 400, "n_data": 20}
    no_early_stopping._figure(by_process, config, ".")
    assert rendered == {"no_early_stopping": []}


def _memorization_runs(ns, deltas):
    runs = []
    for n_data in ns:
        rows = [{"delta": d, "memorized": int(800 * f), "ci": [f - 0.03, f + 0.03],
                 "memorized_exact": int(1600 * f), "collapsed": int(800 * f),
                 "collapsed_exact": int(1600 * f)} for d, f in zip(deltas, _frac(len(deltas)))]
        runs.append((n_data, {"rows": rows, "n": 800, "n_exact": 1600, "dim": 2,
                              "data_var": 1.0}))
    return runs


def test_memorization_figure(rendered):
    deltas = list(np.logspace(-5, 0.5, 6))
    memorization_plots.memorization_figure(
        {"gaussian d=2": _memorization_runs([10, 100, 1000], deltas),
         "gaussian d=16": _memorization_runs([10, 100, 1000], deltas)}, ".")
    assert rendered == {"memorization": []}


def test_scale_figure(rendered):
    sigma2 = [3e-3, 3e-4, 3e-5, 3e-6, 3e-7, 1e-8]
    runs = [(n, {"rows": [{"sigma2": s, "memorized": int(800 * f), "ci": [f - 0.03, f + 0.03],
                           "memorized_exact": int(1600 * f)}
                          for s, f in zip(sigma2, np.sort(_frac(6)))],
                 "n": 800, "n_exact": 1600}) for n in (1000, 100_000)]
    scale._figure(runs, ".")
    assert rendered == {"scale": []}


def test_seed_figures(rendered):
    data = np.array([-1.5, -0.4, 0.2, 0.9, 1.6])
    times = np.linspace(0.0, 3.0, 50)
    paths = np.cumsum(RNG.normal(0, 0.1, (50, 8)), axis=0)
    res1 = {"data": data, "forward_times": times, "forward": paths,
            "backward": {p: {"times": times[::-1], "paths": paths} for p in ("sde", "ode")}}
    figures._figure1(res1, {}, ".")
    data2 = RNG.normal(size=(8, 2))
    res3 = {"data": data2, "T": 2.6, **{p: data2[RNG.integers(0, 8, 300)]
                                        + 0.1 * RNG.normal(size=(300, 2)) for p in ("sde", "ode")}}
    figures._figure3(res3, {"solvers": {"sde": 0, "ode": 0}, "delta": 0.01}, ".")
    x = np.linspace(-3, 3, 101)
    res4 = {"x": x, "data": data, "scores": [-x * (1 + t) for t in range(4)]}
    figures._figure4(res4, {"times": [0.01, 0.05, 0.2, 1.0]}, ".")
    assert rendered == {"figure1_trajectories": [], "figure3_samples": [], "figure4_score": []}


def test_orders_figure():
    rows = []
    for check in ("ode gauss", "strong", "weak E[X]"):
        for solver in ("euler", "heun", "ddim", "dpmpp_2m", "exp_em"):
            for schedule in ("OU", "VPLinear", "custom"):
                steps = [16, 32, 64, 128]
                row = {"check": check, "solver": solver, "schedule": schedule, "steps": steps,
                       "errors": [RNG.uniform(0.5, 2) / k for k in steps], "measured": 1.0}
                if check == "weak E[X]":
                    if (solver, schedule) != ("euler", "OU"):
                        continue
                    row["standard_errors"] = [1e-3] * 4
                rows.append(row)
    assert plotting.layout_problems(plot_orders(rows)) == []


def test_score_matching_figure(rendered):
    errors = {n: [{"t": t, "error": 10 * t / n, "se": 0.1 * t / n} for t in (0.05, 0.2, 0.5, 1.0)]
              for n in (10, 100, 1000)}
    score_matching_plots.score_error_figure(errors, ".")
    assert rendered == {"score_matching_error": []}


def _spectra_row(t, k=16):
    alpha, sigma2 = np.exp(-t), 1 - np.exp(-2 * t)
    spectrum = np.geomspace(1, 1e-6 / (1 + t), k).tolist()
    side = {"trace_median": 4 * t, "entropy_median": 8 * t, "spectrum": spectrum}
    return {"t": t, "sigma2": sigma2, "alpha": alpha, "n_data": 200, "dim": k, "data_var": 1.0,
            "empirical": {"dof": 3 * t},
            "spectra": {"empirical": side, "kde": {**side, "trace_median": 6 * t},
                        "gaussian": {"trace": 10 * t, "entropy_median": 12 * t}}}


def test_denoiser_geometry_figures(rendered):
    rows = [_spectra_row(t) for t in (0.01, 0.05, 0.2, 0.8, 2.0)]
    dg_plots.spectra_figure({"gaussian d=16 N=200": rows, "digits 8x8 N=400": rows}, ".")
    keys = ("empirical", "gaussian", "kde")
    level = {"vectors": {k: RNG.normal(size=(64, 5)).tolist() for k in keys},
             "noisy": RNG.uniform(size=64), "denoised": {k: RNG.uniform(size=64) for k in keys},
             "sigma2": 0.3, "alpha": 0.9, "top": {k: [0.9, 0.5, 0.2, 0.1, 0.05] for k in keys},
             "spectrum": {k: np.geomspace(1, 1e-8, 64).tolist() for k in keys}}
    dg_plots.figure5({"clean": RNG.uniform(size=64), "levels": [level] * 3}, ".")
    assert rendered == {"denoiser_geometry_ranks": [],
                        "denoiser_geometry_figure5_eigenvectors": [],
                        "denoiser_geometry_figure5_decay": []}


def _gd_rows(etas, plot_points):
    classes = ("converged", "unconverged", "collapsed")
    rows = []
    for eta in etas:
        runs = [{"class": classes[i % 3], "sharpness": RNG.uniform(0.4, 1.0),
                 "tv": RNG.uniform(0.1, 1.0), "stable_bound": 1.5, "knots": RNG.integers(2, 20),
                 "error": RNG.uniform(0.01, 0.2)} for i in range(4)]
        runs[0]["curve"] = np.sin(np.linspace(-3, 3, plot_points)).tolist()
        rows.append((eta, {"runs": runs, "target_tv": [0.8, 0.9]}))
    return rows


def test_stable_minima_figures(rendered):
    etas = list(np.geomspace(0.05, 1.6, 6))
    groups = {f"{t}, noise {n}": _gd_rows(etas, 51) for n in (0.05, 0.25)
              for t in ("sine", "kink")}
    problems = {f"{t}, noise {n}": {"target": t, "amplitude": 2.0} for n in (0.05, 0.25)
                for t in ("sine", "kink")}
    sm_plots.curvature_figure(groups, ".")
    sm_plots.smoothness_figure(groups, {"x_max": 1.0, "plot_points": 51,
                                        "problems": problems}, ".")
    assert rendered == {"stable_minima_curvature": [], "stable_minima_smoothness": []}


def test_step_size_figures(rendered):
    config = {"figure": {"n_data": 5, "times": [0.002, 0.008, 0.03], "x_max": 2.5,
                         "points": 101}}
    times = np.geomspace(4.0, 1e-3, 24)
    plot = np.linspace(-2.5, 2.5, 101)
    data = np.array([-1.2, -0.5, 0.1, 0.6, 1.3])
    law = {"memorized": 500, "n": 1000}
    references = {(n, r): {"times": times, "data": data, "min_gap": 0.5,
                           "score_curves": [np.sin(5 * plot) * 10 for _ in range(3)],
                           "exact_grid": {"memorized": 980 - 5 * r, "n": 1000},
                           "exact_pdelta": {"memorized": 990 - 5 * r, "n": 1000},
                           "true_law": law}
                  for n in (5, 20) for r in (0, 1)}
    classes = ("resolving", "smooth", "failed")
    models = {n: [(eta, [{"replicate": r, "score_curves": [np.sin(plot) for _ in range(3)],
                          "nets": [{"rel_error": 0.3, "class": "converged", "tv": 0.5 / eta}
                                   for _ in times],
                          "sigmas": np.sqrt(1 - np.exp(-2 * times)).tolist(), "gap": 0.5,
                          "memorized": 700, "n": 1000, "ci": [0.67, 0.73],
                          "class": classes[(j + r) % 3]} for r in (0, 1)])
                  for j, eta in enumerate((0.03, 0.3, 1.0))] for n in (5, 20)}
    ss_report.score_figure(references, models, config, ".")
    ss_report.memorization_figure(references, models, ".")
    ss_report.tv_figure(models, ".")
    assert rendered == {"step_size_score": [], "step_size_memorization": [], "step_size_tv": []}


def test_audit_curve_figure(rendered):
    def side(f):
        return {"memorized": int(400 * f), "n": 400, "classes": {"verbatim": int(300 * f)}}

    rows = [{"delta": d, "sampler": side(f), "exact": side(f)}
            for d, f in zip([1.0, 0.1, 1e-2, 1e-3, 1e-6], [0.0, 0.05, 0.9, 1.0, 1.0])]
    audit_report.curve_figure({"rows": rows}, ".")
    assert rendered == {"audit_curve": []}


@pytest.mark.skipif(load_digits_data() is None, reason="scikit-learn is not installed")
def test_audit_digits_figure(rendered):
    sampler = [{"delta": d, "ratio": RNG.uniform(lo, hi, 200).tolist(),
                "gallery": [[i, i] for i in range(8)], "x": RNG.uniform(size=(8, 64)).tolist()}
               for d, lo, hi in ((0.05, 0.8, 1.0), (1e-3, 0.2, 0.5))]
    audit_report.digits_figure({"sampler": sampler}, load_digits_data()[:100], ".")
    assert rendered == {"audit_digits": []}


def test_every_figure_of_the_main_job_is_rendered_here_and_has_a_caption():
    names = {"early_stopping", "no_early_stopping", "memorization", "scale",
             "figure1_trajectories", "figure3_samples", "figure4_score", "orders",
             "score_matching_error", "denoiser_geometry_ranks",
             "denoiser_geometry_figure5_eigenvectors", "denoiser_geometry_figure5_decay",
             "stable_minima_curvature", "stable_minima_smoothness", "step_size_score",
             "step_size_memorization", "step_size_tv", "audit_curve", "audit_digits",
             "trained_denoisers_r2", "trained_denoisers_figure2", "trained_denoisers_figure5",
             "trained_denoisers_decay"}
    from validation.orders import study as orders_study
    from validation.studies import (
        denoiser_geometry,
        stable_minima,
        step_size_memorization,
        trained_report,
    )

    captions = {}
    for module in (early_stopping, no_early_stopping, memorization, scale, figures,
                   orders_study, score_matching, denoiser_geometry, stable_minima,
                   step_size_memorization, audit, trained_report):
        captions.update(module.CAPTIONS)
    assert set(captions) == names
    assert all(len(c) > 60 for c in captions.values())


def test_captions_are_written_under_their_figures(tmp_path):
    from validation.report import write_report
    from validation.study import Summary

    path = tmp_path / "figures" / "scale.png"
    summary = Summary(figures=[path], captions={"scale": "What the panel shows."})
    study = SimpleNamespace(name="s", title="S", description="d")
    outcome = SimpleNamespace(study=study, summary=summary, config={"seed": 1}, n_cells=0,
                              n_cached=0, compute_s=0.0, cell_seeds={}, error=None)
    report, _ = write_report(tmp_path, [outcome], {"quick": True})
    lines = report.read_text().splitlines()
    at = lines.index("![scale](figures/scale.png)")
    assert lines[at + 2] == "*Figure `scale.png`.* What the panel shows."


def test_save_figure_warns_about_a_figure_that_reads_badly(tmp_path):
    fig, axes = plotting.new_figure()
    _lines(axes[0, 0])
    axes[0, 0].legend(loc="center")
    with pytest.warns(UserWarning, match="figure bad: .*legend covers"):
        path = plotting.save_figure(fig, tmp_path, "bad")
    assert path.read_bytes()[:4] == b"\x89PNG"
