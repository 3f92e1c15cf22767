"""The figure of the score-matching study: the empirical score's error against N."""

from __future__ import annotations

import numpy as np

from ..plotting import PANEL, legend_outside, log_axis, new_figure, ordered_colors, save_figure

#: Caption of each figure in the report.
CAPTIONS = {
    "score_matching_error": (
        "Mean squared error of the empirical score against the true score of N(0, I) data, "
        "against N, one curve per t (error bars 2 s.e.): it falls with N, more slowly at small "
        "t. The score-error finding; the claims are in the tables above."
    ),
}


def score_error_figure(errors, outdir):
    fig, axes = new_figure(1, 1, size=(1.2 * PANEL[0], 1.2 * PANEL[1]))
    ax = axes[0, 0]
    ns = sorted(errors)
    times = [r["t"] for r in errors[ns[0]]]
    colors, _ = ordered_colors(times)
    for i, (color, t) in enumerate(zip(colors, times)):
        vals = np.array([errors[n][i]["error"] for n in ns])
        ses = np.array([errors[n][i]["se"] for n in ns])
        ax.errorbar(ns, vals, yerr=2 * ses, marker="o", color=color, capsize=2, label=f"t = {t:g}")
    log_axis(ax, "x", ns)
    log_axis(ax, "y")
    ax.set_xlabel("training points N")
    ax.set_ylabel(r"$E_{p_t}|\hat s - \nabla\log p_t|^2$")
    ax.set_title("empirical score's error, N(0, I) data")
    legend_outside(ax, title="error bars: 2 s.e.")
    return save_figure(fig, outdir, "score_matching_error")
