"""What the report shows of the generalisation study: the tables per dataset and model
against N, the Figure 2 grid, agreement / memorisation / quality against N."""

from __future__ import annotations

import numpy as np

from ..plotting import (
    REFERENCE_COLORS,
    distinct_colors,
    figure_legend,
    key_handle,
    log_axis,
    new_figure,
    save_figure,
)
from ..report import markdown_table
from .common import wilson_ci
from .generalisation_models import MODELS, QUALITY_QUANTILE, generalising

MARKERS = ("o", "s", "^", "v", "D", "P")


def caption(kind, dataset):
    """The caption of figure ``kind`` for ``dataset``."""
    return {
        "grid": (f"Seed Figure 2 on {dataset}: rows N, and for each model the sample of S1's "
                 "model, the sample of S2's model from the same initial noise, and the "
                 "training image of S1 nearest to the first. The empirical score copies a "
                 "different training image in each column at every N; agreement without "
                 "copying shows as two equal columns unlike the third."),
        "vs_n": (f"Agreement (the pair closer to each other than to any training image of S1 "
                 f"or S2), the memorised fraction (the audit's ratio rule against the own "
                 f"training set) and the generalising fraction (agree, novel and of data "
                 f"quality) against N on {dataset}, with 95% Wilson intervals. The empirical "
                 "score stays at zero agreement; the transition findings read the last panel."),
        "quality": (f"Quality against N on {dataset}: the fraction of samples whose distance "
                    f"to the held-out reference set is within the real images' "
                    f"{QUALITY_QUANTILE:.0%} quantile, and the mean top probability of a "
                    "logistic regression trained on held-out real digits, with the real "
                    "held-out level as a grey line. Agreement without quality (textures) "
                    "shows here as a low value."),
        "speciation": (f"Speciation on {dataset}: probability that two clones of a reverse "
                       "SDE path, split at time t, end in the same class (label of the "
                       "nearest training image), with Wilson intervals; dashed lines t_S of "
                       "theory.speciation per model, dotted the paper's (1/2) log Lambda. "
                       "The speciation findings read these curves."),
    }[kind]


def _fraction(values):
    values = np.asarray(values, dtype=bool)
    lo, hi = wilson_ci(int(values.sum()), values.size)
    return float(values.mean()), lo, hi


def median_interval(values, level=0.95):
    """Median and its distribution-free interval from binomial order statistics."""
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    lo = int(binom.ppf((1 - level) / 2, n, 0.5))
    hi = int(binom.isf((1 - level) / 2, n, 0.5))
    return float(np.median(x)), float(x[max(lo - 1, 0)]), float(x[min(hi, n - 1)])


def _pair_ratio(m):
    """Paired distance over the smaller distance to S1 u S2; inf for a verbatim copy."""
    pair = np.asarray(m["pair"])
    closest = np.minimum(m["union_a"], m["union_b"])
    with np.errstate(divide="ignore"):
        return np.where(closest > 0, pair / np.where(closest > 0, closest, 1.0), np.inf)


def rates(m, levels):
    """The per-cell rates with Wilson intervals, and the means with their s.e."""
    both = {key: np.concatenate([m[f"{key}_a"], m[f"{key}_b"]])
            for key in ("memorised", "nearest", "quality", "confidence")}
    conf = both["confidence"]
    return {
        "memorised": _fraction(both["memorised"]),
        "agree": _fraction(m["agree"]),
        "generalising": _fraction(generalising(m, levels)),
        "quality": _fraction(both["quality"]),
        "confidence": (float(conf.mean()), float(conf.std(ddof=1) / np.sqrt(conf.size))),
        "nearest": median_interval(both["nearest"]),
        "ratio": float(np.median(_pair_ratio(m))),
    }


def _interval(r):
    return f"{r[0]:.2f} [{r[1]:.2f}, {r[2]:.2f}]"


def model_table(cells, dataset, sizes):
    """Per model and N: memorised, agreement, quality, generalising (Wilson 95%)."""
    rows = []
    for name in MODELS:
        for n in sizes:
            res = cells.get((name, n))
            if res is None:
                continue
            r = rates(res["measures"], res["levels"])
            near = r["nearest"]
            rows.append((name, n, _interval(r["memorised"]),
                         f"{near[0]:.3g} [{near[1]:.3g}, {near[2]:.3g}]",
                         float(np.median(res["levels"]["held_to_s1"])), _interval(r["agree"]),
                         r["ratio"], _interval(r["quality"]),
                         f"{r['confidence'][0]:.3f} ± {r['confidence'][1]:.3f}",
                         _interval(r["generalising"])))
    return (f"{dataset}: per model and N, fractions over the pairs (agreement, generalising) "
            "or over both samples of each pair (memorised, quality), 95% Wilson intervals "
            "(conditional on the training sets); distances are medians with 95% order-statistic "
            "intervals; the held-out median is the distance of a real held-out image to S1 "
            "(the novel level).\n\n"
            + markdown_table(("model", "N", "memorised", "nearest train dist",
                              "held-out to S1", "agreement", "pair / train dist",
                              "quality", "classifier conf. ± s.e.", "generalising"), rows))


def schedule_table(cells, sizes):
    """The calibrated patch sizes k(t) per model and N (knots in increasing t)."""
    rows = []
    for (name, n), res in sorted(cells.items(), key=lambda kv: (MODELS.index(kv[0][0]),
                                                                 kv[0][1])):
        if res.get("k"):
            rows.append((name, n, " ".join(str(k) for k in res["k"])))
    if not rows:
        return "No patch model in this configuration."
    times = next(res["k_times"] for res in cells.values() if res.get("k"))
    return ("Calibrated patch sizes k(t) at the knots t = "
            + ", ".join(f"{t:.3g}" for t in times) + " (increasing t).\n\n"
            + markdown_table(("model", "N", "k at each knot"), rows))


def reference_text(levels, dataset):
    conf = np.asarray(levels["confidence"])
    return (f"{dataset}, real held-out images: classifier accuracy {levels['accuracy']:.3f} on "
            f"the reference half, mean top probability {conf.mean():.3f} ± "
            f"{conf.std(ddof=1) / np.sqrt(conf.size):.3f}; quality fraction of real probes "
            f"{QUALITY_QUANTILE:.2f} by construction.")


def _show(ax, image, shape):
    ax.imshow(np.reshape(image, shape[:2]), cmap="gray_r", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def grid_figure(cells, dataset, sizes, shape, outdir):
    """Rows N; for each model: S1's sample, S2's sample, the nearest image of S1."""
    models = [m for m in MODELS if any((m, n) in cells for n in sizes)]
    fig, axes = new_figure(len(sizes), 3 * len(models), size=(0.62, 0.7))
    for i, n in enumerate(sizes):
        for j, name in enumerate(models):
            res = cells.get((name, n))
            for c in range(3):
                ax = axes[i, 3 * j + c]
                if res is None:
                    ax.set_axis_off()
                    continue
                _show(ax, res["gallery"][c], shape)
                if i == 0:
                    ax.set_title(("S1", "S2", "NN")[c] if c else f"{name}\nS1", fontsize=7,
                                 loc="left" if c == 0 else "center")
            if j == 0:
                axes[i, 0].set_ylabel(f"N={n}", fontsize=8)
    fig.suptitle(f"{dataset}: paired samples (same initial noise) and the nearest training "
                 "image of S1", fontsize=9)
    return save_figure(fig, outdir, f"generalisation_grid_{dataset}")


def _curves(ax, cells, sizes, key, colors):
    for i, (color, marker, name) in enumerate(zip(colors, MARKERS, MODELS)):
        pts = [(n, rates(cells[(name, n)]["measures"], cells[(name, n)]["levels"])[key])
               for n in sizes
               if (name, n) in cells]
        if not pts:
            continue
        # Dodged in log N so that coinciding curves stay visible.
        n = np.array([p[0] for p in pts], dtype=float) * 1.06 ** (i - 2.5)
        r = np.array([p[1] for p in pts])
        if r.ndim == 1:
            continue
        if r.shape[1] == 3:
            yerr = [r[:, 0] - r[:, 1], r[:, 2] - r[:, 0]]
        else:
            yerr = 1.96 * r[:, 1]
        ax.errorbar(n, r[:, 0], yerr=yerr, fmt="-", marker=marker, ms=4, color=color,
                    capsize=2, elinewidth=0.8, alpha=0.85, label=name)
    log_axis(ax, "x", sizes)


def vs_n_figure(cells, dataset, sizes, outdir):
    fig, axes = new_figure(1, 3)
    colors = distinct_colors(len(MODELS))
    for ax, (key, label) in zip(axes[0], (("agree", "agreement"), ("memorised", "memorised"),
                                          ("generalising", "generalising"))):
        _curves(ax, cells, sizes, key, colors)
        ax.set(xlabel="N", ylabel=f"{label} fraction", ylim=(-0.03, 1.03),
               title=f"{label} ({dataset})")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure_legend(fig, handles, labels, ncols=6)
    return save_figure(fig, outdir, f"generalisation_vs_n_{dataset}")


def quality_figure(cells, levels, dataset, sizes, outdir):
    fig, axes = new_figure(1, 2)
    colors = distinct_colors(len(MODELS))
    conf = float(np.mean(levels["confidence"]))
    for ax, key, real, label in ((axes[0, 0], "quality", QUALITY_QUANTILE,
                                  "within real held-out distance"),
                                 (axes[0, 1], "confidence", conf, "classifier confidence")):
        _curves(ax, cells, sizes, key, colors)
        ax.axhline(real, color=REFERENCE_COLORS[1], ls="--", lw=1)
        ax.set(xlabel="N", ylabel=label, ylim=(-0.03, 1.03), title=f"{label} ({dataset})")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles.append(key_handle(color=REFERENCE_COLORS[1], ls="--"))
    labels.append("real held-out images")
    figure_legend(fig, handles, labels, ncols=4)
    return save_figure(fig, outdir, f"generalisation_quality_{dataset}")
