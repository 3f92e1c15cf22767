"""What the report shows of the step-size study: its tables and its three figures."""

from __future__ import annotations

import numpy as np

from ..plotting import (
    PANEL,
    REFERENCE_COLORS,
    colorbar,
    distinct_colors,
    figure_legend,
    key_handle,
    legend_below,
    log_axis,
    new_figure,
    ordered_colors,
    save_figure,
)
from ..report import markdown_table
from .gd_regression import LIVE
from .step_size_models import figure_indices, figure_points

#: Caption of each figure in the report.
CAPTIONS = {
    "step_size_score": (
        "The seed's Figure 4 extended: the exact score of 5 points at three small times with "
        "the score nets learned at each step size overlaid (their fit errors in the legends). "
        "Below the gap between points the nets trained with large steps do not follow the teeth"
        " of the exact score."
    ),
    "step_size_memorization": (
        "Memorised fraction of every learned model against eta (marker: its class; colour: its "
        "replicate training set; 95% Wilson intervals) beside that replicate's references: the "
        "exact score on the same grid, exact p_delta, and the true law (about 1/2, no "
        "memorisation). The conjecture predicts a fall with eta; the trend findings measure it."
    ),
    "step_size_tv": (
        "Weighted TV of every live score net against 1/eta - 1/2, coloured by how far below the"
        " gap between points its time is. The nets of converged runs respect the bound (the "
        "Corollary 3.3 claim on the nets), and the fine-scale nets are the rough ones."
    ),
}


def model_entries(models):
    """(N, eta, replicate entry) of every learned model."""
    return [(n_data, eta, m) for n_data, rows in models.items() for eta, entries in rows
            for m in entries]


def _fraction(m):
    """``memorised fraction [Wilson interval]`` as table text."""
    lo, hi = m["ci"]
    return f"{m['memorized'] / m['n']:.3f} [{lo:.3f}, {hi:.3f}]"


MODEL_HEADER = ("N", "eta", "replicate", "class", "memorised [Wilson 95%]",
                "exact score, same grid", "exact p_delta", "true law", "spread / data's",
                "mean nearest distance / gap", "KS to N(0,1)", "max fit error",
                "resolved sigma / gap", "max TV / stable bound")


def model_rows(references, models):
    rows = []
    for n_data, eta, m in model_entries(models):
        ref = references[(n_data, m["replicate"])]
        rows.append((
            n_data, eta, m["replicate"], m["class"], _fraction(m), _fraction(ref["exact_grid"]),
            _fraction(ref["exact_pdelta"]), _fraction(ref["true_law"]), m["spread"],
            m["nearest"], m["ks"], max(r["rel_error"] for r in m["nets"]), m["resolved_sigma"],
            max((r["tv"] / r["stable_bound"] for r in m["nets"] if "tv" in r), default=None)))
    return rows


SIGMA_BINS = (0.0, 0.25, 1.0, 4.0, np.inf)


SIGMA_LABELS = ("< 0.25", "0.25-1", "1-4", "> 4")


def _by_sigma(m, value):
    """``value(net)`` of the live nets of ``m``, in the bins of ``sigma_t / gap``."""
    slots = [[] for _ in SIGMA_LABELS]
    for rec, sigma in zip(m["nets"], m["sigmas"]):
        if rec["class"] in LIVE:
            slots[np.searchsorted(SIGMA_BINS, sigma / m["gap"], side="right") - 1].append(
                value(rec))
    return slots


def binned_table(models, value, reduce):
    rows = []
    for n_data, rows_n in models.items():
        for eta, entries in rows_n:
            slots = [[v for part in parts for v in part]
                     for parts in zip(*(_by_sigma(m, value) for m in entries))]
            rows.append((n_data, eta, 1.0 / eta - 0.5,
                         *(reduce(v) if v else None for v in slots)))
    return markdown_table(("N", "eta", "1/eta - 1/2",
                           *(f"sigma_t / gap {lab}" for lab in SIGMA_LABELS)), rows)


def score_figure(references, models, config, outdir):
    """The seed's Figure 4 extended: s_hat at small t for N = 5, learned scores overlaid."""
    n_data = config["figure"]["n_data"]
    ref = references[(n_data, 0)]
    times = np.asarray(ref["times"])
    indices = figure_indices(config, times)
    fig, axes = new_figure(1, len(indices), size=(PANEL[0], 1.15 * PANEL[1]))
    plot = figure_points(config)
    data = np.asarray(ref["data"])
    colors, _ = ordered_colors([eta for eta, _ in models[n_data]], cmap="plasma", span=0.8)
    for col, i in enumerate(indices):
        ax = axes[0][col]
        ax.plot(plot, ref["score_curves"][col], "-", color=REFERENCE_COLORS[0], lw=2,
                label="s_hat (exact)")
        for color, (eta, entries) in zip(colors, models[n_data]):
            m = next(e for e in entries if e["replicate"] == 0)
            ax.plot(plot, m["score_curves"][col], "-", color=color, lw=1,
                    label=f"eta={eta:g}, fit error {m['nets'][i]['rel_error']:.2f}")
        ax.plot(data, np.zeros_like(data), "x", color=REFERENCE_COLORS[0], ms=8,
                label="training points")
        # Outside the data the score is the steep line -(x - alpha x_k) / sigma^2: the
        # view is the data's range, where s_hat has its teeth.
        hull = (plot > data.min() - 0.3) & (plot < data.max() + 0.3)
        scale = np.abs(np.asarray(ref["score_curves"][col])[hull]).max()
        ratio = np.sqrt(-np.expm1(-2.0 * times[i])) / ref["min_gap"]
        ax.set(xlabel="x", ylabel="score", ylim=(-1.3 * scale, 1.3 * scale),
               xlim=(data.min() - 0.3, data.max() + 0.3),
               title=f"N={n_data}, t={times[i]:.3g}, sigma_t / gap = {ratio:.2f}")
        legend_below(ax)
    return save_figure(fig, outdir, "step_size_score")


#: Marker of each class of learned model.
MARKERS = {"resolving": "o", "smooth": "s", "failed": "x"}
#: Line style of each reference, drawn per replicate in the replicate's colour.
REFERENCES = {"exact_grid": ("exact score, same grid", "-"),
              "exact_pdelta": ("exact p_delta", ":"), "true_law": ("true law N(0, 1)", "--")}


def memorization_figure(references, models, outdir):
    """Memorised fraction of each learned model against eta, beside the references."""
    fig, axes = new_figure(1, len(models))
    n_replicates = 1 + max(m["replicate"] for rows in models.values() for _, entries in rows
                           for m in entries)
    colors = distinct_colors(n_replicates)
    for col, (n_data, rows) in enumerate(models.items()):
        ax = axes[0][col]
        for eta, entries in rows:
            for m in entries:
                frac, (lo, hi) = m["memorized"] / m["n"], m["ci"]
                shift = eta * 1.05 ** (m["replicate"] - len(entries) / 2)
                ax.errorbar(shift, frac, yerr=[[frac - lo], [hi - frac]],
                            fmt=MARKERS[m["class"]], color=colors[m["replicate"]], ms=4)
        for (n, r), ref in references.items():
            if n == n_data:
                for key, (_, style) in REFERENCES.items():
                    ax.axhline(ref[key]["memorized"] / ref[key]["n"], color=colors[r], ls=style,
                               lw=0.8)
        log_axis(ax, "x", [eta for eta, _ in rows])
        ax.set(xlabel="eta", ylabel="memorised fraction", ylim=(0.3, 1.02), title=f"N={n_data}")
    handles = ([key_handle(marker=mark, ls="") for mark in MARKERS.values()]
               + [key_handle(ls=style, lw=0.8) for _, style in REFERENCES.values()]
               + [key_handle(marker="s", ls="", color=c) for c in colors])
    labels = ([f"{cls} model (95% Wilson interval)" for cls in MARKERS]
              + [label for label, _ in REFERENCES.values()]
              + [f"replicate {r} (training set)" for r in range(n_replicates)])
    figure_legend(fig, handles, labels, ncols=3)
    return save_figure(fig, outdir, "step_size_memorization")


def tv_figure(models, outdir):
    """Weighted TV of every live net against the bound's leading term ``1/eta - 1/2``."""
    fig, axes = new_figure(1, len(models))
    for col, (n_data, rows) in enumerate(models.items()):
        ax = axes[0][col]
        bound, tv, scale = [], [], []
        for eta, entries in rows:
            for m in entries:
                for rec, sigma in zip(m["nets"], m["sigmas"]):
                    if rec["class"] in LIVE:
                        bound.append(1.0 / eta - 0.5)
                        tv.append(rec["tv"])
                        scale.append(np.log10(sigma / m["gap"]))
        points = ax.scatter(bound, tv, c=scale, s=6, cmap="viridis")
        line = np.geomspace(min(bound), max(bound), 50)
        ax.plot(line, line, "--", color=REFERENCE_COLORS[0], lw=1, label="TV = 1/eta - 1/2")
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.set(xlabel="1/eta - 1/2", ylabel="weighted TV of the net",
               title=f"N={n_data}: one point per net",
               ylim=(1e-3 * max(tv), 2.0 * max(max(tv), line[-1])))
        colorbar(fig, ax, points, "log10 sigma_t / gap")
    figure_legend(fig, *axes[0][0].get_legend_handles_labels(), ncols=1)
    return save_figure(fig, outdir, "step_size_tv")
