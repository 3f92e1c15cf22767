"""Figures of the audit study: the memorisation curve and the digits case study."""

from __future__ import annotations

import numpy as np

from ..plotting import (
    REFERENCE_COLORS,
    legend_outside,
    log_axis,
    new_figure,
    ordered_colors,
    save_figure,
    style_key,
)

#: Caption of each figure in the report.
CAPTIONS = {
    "audit_curve": (
        "The memorisation audit run on numdiff's sampler and on exact p_delta samples at each "
        "delta: the memorised and verbatim fractions of the two agree along the whole curve "
        "(the audit's curve claims)."
    ),
    "audit_digits": (
        "Eight digits sampled at the smallest delta above their nearest training digits, and "
        "the nearest / second-nearest distance ratio of the samples at both deltas against the "
        "threshold 1/3: at the smallest delta most samples are copies. The digits case study."
    ),
}


def curve_figure(curve, outdir):
    fig, axes = new_figure(1, 1)
    ax = axes[0, 0]
    rows = curve["rows"]
    deltas = [r["delta"] for r in rows]
    for key, label, color in (("memorized", "memorised", "tab:blue"),
                              ("verbatim", "verbatim", "tab:orange")):
        def frac(s, key=key):
            return (s["memorized"] if key == "memorized" else s["classes"]["verbatim"]) / s["n"]
        ax.plot(deltas, [frac(r["sampler"]) for r in rows], "o-", color=color, label=label)
        ax.plot(deltas, [frac(r["exact"]) for r in rows], "x:", color=color)
    log_axis(ax, "x")
    ax.set(xlabel="delta", ylabel="fraction of samples", ylim=(-0.02, 1.02),
           title="the audit reproduces the curve")
    style_key(ax, {"audit of the sampler": {"marker": "o"},
                   "audit of exact p_delta": {"marker": "x", "ls": ":"}})
    return save_figure(fig, outdir, "audit_curve")


def digits_figure(dig, train, outdir):
    """Samples above their nearest training digits, and the distance ratios at each delta.

    Parameters
    ----------
    dig : dict
        The digits cell's result.
    train : ndarray, shape (N, 64)
        The training digits.
    outdir : Path
    """
    small = dig["sampler"][-1]
    fig, axes = new_figure(3, 8, size=(1.3, 1.4))
    for j, ((i, k), x) in enumerate(zip(small["gallery"], small["x"])):
        axes[0, j].imshow(np.reshape(x, (8, 8)), cmap="gray_r", vmin=0, vmax=1)
        axes[1, j].imshow(train[k].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[0, j].set_title(f"sample {i}", fontsize=8)
        axes[1, j].set_title(f"train {k}", fontsize=8)
        for ax in (axes[0, j], axes[1, j]):
            ax.set_xticks([])
            ax.set_yticks([])
    gs = axes[2, 0].get_gridspec()
    for ax in axes[2]:
        ax.remove()
    ax = fig.add_subplot(gs[2, :])
    colors, _ = ordered_colors([s["delta"] for s in dig["sampler"]])
    for color, s in zip(colors, dig["sampler"]):
        ax.hist(s["ratio"], bins=np.linspace(0, 1, 41), alpha=0.5, color=color,
                label=f"samples, delta={s['delta']:.2g}")
    ax.axvline(1 / 3, color=REFERENCE_COLORS[0], ls="--", label="threshold 1/3")
    ax.set(xlabel="nearest / second-nearest training distance", ylabel="samples")
    legend_outside(ax)
    fig.suptitle(f"Samples at delta = {small['delta']:.2g} (top) above their nearest training "
                 "digits (middle)", fontsize=9)
    return save_figure(fig, outdir, "audit_digits")
