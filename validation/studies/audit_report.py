"""What the report shows of the audit study: its tables, and the figures of the
memorisation curve and of the digits case study."""

from __future__ import annotations

import numpy as np

from numdiff.audit import CLASSES

from ..plotting import (
    REFERENCE_COLORS,
    legend_outside,
    log_axis,
    new_figure,
    ordered_colors,
    save_figure,
    style_key,
)
from ..report import markdown_table

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
    # The two fractions often coincide: memorised is drawn wide and pale underneath,
    # verbatim narrow on top, so that both stay visible where they do.
    for key, label, color, width, size in (("memorized", "memorised", "tab:blue", 5.0, 9),
                                           ("verbatim", "verbatim", "tab:orange", 1.5, 5)):
        def frac(s, key=key):
            return (s["memorized"] if key == "memorized" else s["classes"]["verbatim"]) / s["n"]
        ax.plot(deltas, [frac(r["sampler"]) for r in rows], "o-", color=color, label=label,
                lw=width, ms=size, alpha=0.55 if key == "memorized" else 1.0)
        ax.plot(deltas, [frac(r["exact"]) for r in rows], "x:", color=color, ms=size,
                lw=width / 2)
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


def recovery_table(by_label, config):
    """The copying models: realised and recovered fractions, ``C_T`` and ``Z_U``."""
    rows = []
    for f in config["fractions"]:
        res = by_label[f"copying f={f}"]
        lo, hi = res["interval"]
        rows.append((f, res["copies"] / res["n"], res["memorized"] / res["n"],
                     f"[{lo:.4f}, {hi:.4f}]", res["classes"]["verbatim"], res["c_t"],
                     res["c_t_z"], res["mw_z"]))
    rec = config["recovery"]
    return (f"Ground truth: copying model (N(0, I), d={rec['d']}, N={rec['n_train']}, "
            f"n={rec['n']} samples and held-out, copy noise {rec['noise']}); 95% Wilson "
            "intervals.\n\n" + markdown_table(
                ("f", "copied (realised)", "recovered", "Wilson 95%", "verbatim", "C_T", "C_T z",
                 "Mann-Whitney Z_U"), rows))


def near_table(near, config):
    """Planted interpolations between training points against samples of the law."""
    cfg = config["near"]
    return (
        "Near copies (subtle memorisation): interpolations between two training points, "
        f"lam in {cfg['lam']}, a fraction {cfg['fraction']} of n = {near['n']} samples "
        f"(d = {cfg['d']}, N = {cfg['n_train']}).\n\n" + markdown_table(
            ("samples", "count", "novel", "near copy", "verbatim", "pass the ratio test"),
            [("interpolations", near["planted"], *(near["counts"][c][0] for c in CLASSES),
              near["memorized_planted"]),
             ("true law", near["n"] - near["planted"], *(near["counts"][c][1] for c in CLASSES),
              "")]))


def null_table(null, over, config):
    """The flag rate of the true law over many runs, and the over-dispersed model."""
    return markdown_table(
        ("model", "flags / runs", "C_T", "C_T z"),
        [("true law", f"{null['flags']} / {config['null']['repeats']}",
          f"mean z {np.mean(null['z']):.3f}", f"s.d. {np.std(null['z'], ddof=1):.3f}"),
         (f"over-dispersed x{config['overdispersed']['scale']}", "", over["c_t"],
          over["c_t_z"])])


def curve_table(curve, config):
    """The sampler and exact ``p_delta`` samples audited at each ``delta``."""
    def frac(s, key):
        return (s["memorized"] if key == "memorized" else s["classes"]["verbatim"]) / s["n"]

    return ("numdiff's SDE sampler (exp_em, uniform_lambda) audited at each delta against "
            f"exact p_delta samples (N={config['curve']['n_data']}, d={config['curve']['d']})."
            "\n\n" + markdown_table(
                ("delta", "memorised (sampler)", "memorised (exact)", "verbatim (sampler)",
                 "verbatim (exact)", "C_T z (sampler)"),
                [(r["delta"], frac(r["sampler"], "memorized"), frac(r["exact"], "memorized"),
                  frac(r["sampler"], "verbatim"), frac(r["exact"], "verbatim"),
                  r["sampler"]["c_t_z"]) for r in curve["rows"]]))


def digits_table(dig, config):
    """The digits case study: the held-out control and the sampler at each ``delta``."""
    control = dig["control"]
    rows = [("held-out half (control)", "", control["memorized"] / control["n"],
             control["classes"]["verbatim"], control["c_t"], control["c_t_z"])]
    rows += [("numdiff SDE", s["delta"], s["memorized"] / s["n"], s["classes"]["verbatim"],
              s["c_t"], s["c_t_z"]) for s in dig["sampler"]]
    return ("Case study, 8x8 digits: training set of "
            f"{config['digits']['n_train']} images, the rest split into two held-out "
            "halves (one is the reference P_n, the other the control's samples). "
            "The larger delta is a finding, not a claim.\n\n" + markdown_table(
                ("samples", "delta", "memorised", "verbatim", "C_T", "C_T z"), rows))
