"""Figures of the stable-minima study: curvature and bound per run, smoothness against eta."""

from __future__ import annotations

import numpy as np

from ..plotting import (
    REFERENCE_COLORS,
    figure_legend,
    key_handle,
    legend_below,
    log_axis,
    new_figure,
    ordered_colors,
    save_figure,
)
from .common import t_interval
from .gd_regression import LIVE, select_runs, target

#: Marker and colour of each class of run that has a final iterate to plot.
CLASS_STYLE = {"converged": {"marker": "o", "color": "tab:blue", "ms": 4},
               "unconverged": {"marker": ".", "color": "tab:orange", "ms": 5},
               "collapsed": {"marker": "x", "color": "tab:red", "ms": 5}}
ONE = {"color": REFERENCE_COLORS[0], "lw": 1}
#: Caption of each figure in the report.
CAPTIONS = {
    "stable_minima_curvature": (
        "Every run, by class and problem: lambda_max eta / 2 (top; 1 is the edge of stability) "
        "and its weighted TV over the stable bound (bottom; 1 is the bound). Converged runs lie"
        " at or below 1 in both rows: the linear-stability and Corollary 3.3 claims."
    ),
    "stable_minima_smoothness": (
        "Weighted TV, effective knots and error to f0 against eta (means and Student-t 95% "
        "intervals over the live runs), with the stable bound's leading term 1/eta - 1/2 and "
        "the target's own TV; bottom, the fits of seed 0 at four step sizes. The Kendall-tau "
        "findings measure whether the learned function gets smoother as eta grows."
    ),
}


def _eta_axis(ax, rows):
    """Log axis over the whole eta grid (the same in every panel of a column)."""
    etas = [eta for eta, _ in rows]
    log_axis(ax, "x", etas)
    ax.set(xlabel="eta", xlim=(min(etas) / 1.2, max(etas) * 1.2))


def curvature_figure(groups, outdir):
    """Per run: ``lambda_max eta / 2`` (top) and TV over the stable bound (bottom), per problem."""
    fig, axes = new_figure(2, len(groups))
    for col, (name, rows) in enumerate(groups.items()):
        top, bottom = axes[0][col], axes[1][col]
        for cls, style in CLASS_STYLE.items():
            runs = select_runs(rows, (cls,))
            if runs:
                etas = [eta for eta, _, _ in runs]
                top.plot(etas, [r["sharpness"] for _, _, r in runs], ls="", label=cls, **style)
                bottom.plot(etas, [r["tv"] / r["stable_bound"] for _, _, r in runs], ls="",
                            **style)
        for ax in (top, bottom):
            ax.axhline(1.0, **ONE)
            _eta_axis(ax, rows)
        top.set(ylabel="lambda_max eta / 2", title=f"{name}: curvature")
        bottom.set(ylabel="TV / (1/eta - 1/2 + (R+1) sqrt(2L))", ylim=(0, 1.1),
                   title=f"{name}: TV over the stable bound")
    handles = [key_handle(ls="", **style) for style in CLASS_STYLE.values()]
    figure_legend(fig, handles + [key_handle(**ONE)],
                  [f"{cls} run" for cls in CLASS_STYLE]
                  + ["1: edge of stability (top), the bound (bottom)"], ncols=4)
    return save_figure(fig, outdir, "stable_minima_curvature")


def smoothness_figure(groups, config, outdir):
    """Weighted TV, effective knots and error to ``f0`` against eta; example fits."""
    fig, axes = new_figure(4, len(groups))
    plot = np.linspace(-config["x_max"], config["x_max"], config["plot_points"])
    mean_style = {"color": "tab:blue", "marker": "o", "ms": 3}
    for col, (name, rows) in enumerate(groups.items()):
        etas = np.array([eta for eta, _ in rows])
        for row, (key, label) in enumerate((("tv", "weighted TV"), ("knots", "effective knots"),
                                            ("error", "error to f0"))):
            ax = axes[row][col]
            stats = [t_interval([r[key] for r in res["runs"] if r["class"] in LIVE])
                     for _, res in rows]
            ax.plot(etas, [s[0] for s in stats], "-", **mean_style)
            ax.fill_between(etas, [s[1] for s in stats], [s[2] for s in stats], color="tab:blue",
                            alpha=0.2)
            ax.set(ylabel=f"{label} (live runs)", title=f"{name}: {label}")
            _eta_axis(ax, rows)
        target_tv = float(np.mean(rows[0][1]["target_tv"]))
        axes[0][col].plot(etas, np.maximum(1.0 / etas - 0.5, 1e-3), "--", **ONE)
        axes[0][col].axhline(target_tv, color=REFERENCE_COLORS[2], ls=":")
        axes[0][col].set(yscale="log")
        _example_fits(axes[3][col], rows, config["problems"][name], plot, config["x_max"])
    figure_legend(fig, [key_handle(ls="-", **mean_style), key_handle(lw=6, alpha=0.3,
                                                                     color="tab:blue"),
                        key_handle(ls="--", **ONE), key_handle(ls=":", color=REFERENCE_COLORS[2])],
                  ["mean over the live runs", "its Student-t 95% interval",
                   "1/eta - 1/2 (the stable bound's leading term)", "TV_g(f0), the target's own"],
                  ncols=4)
    return save_figure(fig, outdir, "stable_minima_smoothness")


def _example_fits(ax, rows, problem, plot, x_max):
    """Seed 0's learned functions at up to four step sizes, beside ``f0``."""
    ax.plot(plot, target(problem["target"], plot, problem["amplitude"], x_max), "-",
            color=REFERENCE_COLORS[0], lw=2, label="f0")
    fitted = [(eta, res["runs"][0]) for eta, res in rows if "curve" in res["runs"][0]]
    picks = np.unique(np.linspace(0, len(fitted) - 1, 4).round().astype(int))
    colors, _ = ordered_colors([fitted[p][0] for p in picks], cmap="plasma", span=0.8)
    for color, p in zip(colors, picks):
        eta, run = fitted[p]
        ax.plot(plot, run["curve"], "-", color=color, lw=1, label=f"eta={eta:.2g} ({run['class']})")
    ax.set(xlabel="x", ylabel="f(x), seed 0", title="fits of seed 0")
    legend_below(ax, ncols=2)
