"""Figures of the memorization study: memorized and collapsed fractions against delta and N."""

from __future__ import annotations

import numpy as np

import numdiff as nd
from theory.memorization import collapse_time

from ..plotting import (
    log_axis,
    new_figure,
    ordered_colors,
    ordered_curves,
    save_figure,
    style_key,
)

#: Caption of each figure in the report.
CAPTIONS = {
    "memorization": (
        "One row per dataset: the memorized (left) and collapsed (middle) fractions against "
        "delta for each N, sampler against exact p_delta, with the predicted collapse time t_C "
        "dashed; right, the memorized fraction against N for every delta (the seed's Figure 2),"
        " coinciding curves counted in the title. The sampler's curves lie on the exact ones "
        "(the two-proportion and collapse-time claims); at finite d the collapse comes later "
        "than t_C (the asymptotic claim)."
    ),
}


def memorization_figure(groups, outdir):
    fig, axes = new_figure(len(groups), 3)
    schedule = nd.OU()
    for (name, runs), ax_row in zip(groups.items(), axes):
        ax_mem, ax_col, ax_n = ax_row
        # Another colormap than the deltas' of the third column: a colour means one thing.
        colors, _ = ordered_colors([n for n, _ in runs], cmap="plasma", span=0.75)
        for color, (n_data, res) in zip(colors, runs):
            deltas = np.array([row["delta"] for row in res["rows"]])
            mem = np.array([row["memorized"] for row in res["rows"]]) / res["n"]
            ci = np.array([row["ci"] for row in res["rows"]])
            t_c = collapse_time(n_data, res["dim"], schedule, data_var=res["data_var"])
            ax_mem.plot(deltas, mem, "o-", color=color, ms=3, label=f"N={n_data}")
            ax_mem.fill_between(deltas, ci[:, 0], ci[:, 1], color=color, alpha=0.2)
            ax_mem.plot(deltas, [row["memorized_exact"] / res["n_exact"] for row in res["rows"]],
                        ":", color=color)
            ax_col.plot(deltas, [row["collapsed_exact"] / res["n_exact"] for row in res["rows"]],
                        "s-", color=color, ms=3, label=f"N={n_data}")
            ax_col.plot(deltas, [row["collapsed"] / res["n"] for row in res["rows"]], "o:",
                        color=color, ms=2)
            for ax in (ax_mem, ax_col):
                if np.isfinite(t_c):
                    ax.axvline(t_c, color=color, ls="--", lw=1)
        _against_n(fig, ax_n, runs)
        ax_mem.set(xlabel="delta", ylabel="memorized fraction", ylim=(-0.02, 1.02),
                   title=f"{name}: memorized")
        ax_col.set(xlabel="delta", ylabel="collapsed fraction (max w > 1/2)",
                   ylim=(-0.02, 1.02), title=f"{name}: collapsed")
        for ax in (ax_mem, ax_col):
            log_axis(ax, "x")
        style_key(ax_mem, {"sampler (95% Wilson band)": {"marker": "o", "ms": 3},
                           "exact p_delta": {"ls": ":"}, "predicted t_C": {"ls": "--"}})
        style_key(ax_col, {"exact p_delta": {"marker": "s", "ms": 3},
                           "sampler": {"marker": "o", "ls": ":", "ms": 2},
                           "predicted t_C": {"ls": "--"}})
    return save_figure(fig, outdir, "memorization")


def _against_n(fig, ax, runs):
    """The seed's Figure 2: the sampler's memorized fraction against N, one curve per delta."""
    ns = [n for n, _ in runs]
    deltas = [row["delta"] for row in runs[0][1]["rows"]]
    fractions = [[res["rows"][k]["memorized"] / res["n"] for _, res in runs]
                 for k in range(len(deltas))]
    note = ordered_curves(fig, ax, ns, fractions, deltas, "delta")
    log_axis(ax, "x", ns)
    ax.set(xlabel="N", ylabel="memorized fraction", ylim=(-0.02, 1.02),
           title="against N (seed's Figure 2)" + (f"\n{note}" if note else ""))
