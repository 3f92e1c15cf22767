"""What the report shows of the study ``trained_denoisers``: its tables and figures."""

from __future__ import annotations

import numpy as np

from ..plotting import (
    REFERENCE_COLORS,
    distinct_colors,
    figure_legend,
    log_axis,
    new_figure,
    save_figure,
)
from ..report import markdown_table
from .common import wilson_ci
from .trained_geometry import entropy_rank_difference
from .trained_measures import median_interval, quality

#: Caption of each figure in the report.
CAPTIONS = {
    "trained_denoisers_r2": (
        "The unexplained fraction 1 - r^2 (median over samples) of the trained net's score by "
        "each closed form's, at each state of the net's own probability-flow path (sigma/alpha "
        "from 10 down to 0.01, left to right), one panel per N; above the dotted line r^2 < 0. "
        "The lower curve explains the net better: the empirical score where the net memorises, "
        "the ELS curves where a patch mosaic explains it (the r^2 findings). Values below 1e-4 "
        "are drawn at 1e-4."
    ),
    "trained_denoisers_figure2": (
        "The seed's Figure 2 with trained nets: per N, samples of the net on S1 (top row) and of "
        "the net on S2 (middle) from the same noise, and the nearest S1 image of each top sample "
        "(bottom); right: the memorised fraction (both nets pooled) and the agreement against N "
        "with Wilson 95% intervals (the Figure 2 findings; quality is in the table)."
    ),
    "trained_denoisers_figure5": (
        "The seed's Figure 5 with a trained net: a held-out C^alpha image, its noisy version, "
        "the denoised image and the top eigenvectors of the symmetric part of grad D (red +, "
        "blue -, titled by alpha lambda), for the net and for ELS, smooth and perturbed border."
    ),
    "trained_denoisers_decay": (
        "Mean eigenvalue decay (alpha lambda_k, symmetric part of grad D, averaged over held-out "
        "C^alpha images at each index) of the nets at each noise level, smooth against perturbed "
        "border (the entropy-rank findings); the symmetric part of a net's Jacobian has small "
        "negative eigenvalues, drawn at the floor 1e-3."
    ),
}

_NAMES = ("empirical", "Wiener", "KDE", "LS (net-calibrated)", "ELS (net-calibrated)",
          "ELS (held-out calibrated)", "BA-ELS (net-calibrated)")
_LEVELS_SHOWN = (0, 3, 5, 7)  # evaluation levels of the training table (of 8)


def path_median(r2):
    """Per sample, the median of r^2 over the path's states (its typical step); shape (n,).

    A median, not a mean: at small noise a score's error is amplified like
    ``1 / sigma^2`` relative to its spread, so a mean is set by the last steps alone.
    """
    return np.median(np.asarray(r2), axis=0)


def _interval(est, lo, hi):
    return f"{est:.3f} [{lo:.3f}, {hi:.3f}]"


def training_table(digits, calpha, config):
    levels = np.asarray(digits[0]["train"][0]["levels"])
    shown = [i for i in _LEVELS_SHOWN if i < len(levels)]
    rows = []
    nets = [(f"digits N={r['n']} (S{j + 1})", config["digits"]["net"], rec)
            for r in digits for j, rec in enumerate(r["train"])]
    nets += [(f"C^alpha {name}", config["calpha"]["net"], r["train"]) for name, r in calpha.items()]
    for name, net, rec in nets:
        mse = " / ".join(f"{rec['train_mse'][i]:.2g}" for i in shown)
        held = " / ".join(f"{rec['holdout_mse'][i]:.2g}" for i in shown)
        drop = max(rec["drop"][i] for i in shown)
        rows.append([name, f"{net['channels']} x{net['blocks']}", rec["steps"],
                     f"{rec['seconds']:.0f}", f"{rec['ms_per_update']:.0f}", mse, held,
                     f"{drop:.3f}"])
    head = ["net", "channels x blocks", "updates", "s", "ms/update",
            "train MSE/pixel at s=" + ", ".join(f"{levels[i]:.2g}" for i in shown),
            "held-out MSE/pixel", "largest fall over last interval"]
    note = ("Training runs of this study (Adam, EMA, batch "
            f"{config['digits']['train']['batch']} for digits, "
            f"{config['calpha']['train']['batch']} for C^alpha; machine shared, times "
            "pessimistic). The last column is the relative fall of the training MSE over "
            "the last evaluation interval at the levels shown: near 0 is levelled off.")
    return note + "\n\n" + markdown_table(head, rows)


def r2_table(columns, rng):
    """r^2 table: one row per closed form, one column per net.

    Parameters
    ----------
    columns : list of (str, dict)
        Column header and the r^2 result of one net (``closed_form_r2``).
    rng : numpy.random.Generator
        For the bootstrap intervals.
    """
    head = ["model"] + [header for header, _ in columns]
    rows = []
    for name in _NAMES:
        if any(name not in r2 for _, r2 in columns):
            continue
        rows.append([name] + [_interval(*median_interval(path_median(r2[name]["r2"]), rng))
                              for _, r2 in columns])
    lines = [f"{header}: KDE bandwidth h = {r2['KDE']['h']:.3g}" for header, r2 in columns]
    for header, r2 in columns:
        for name in ("ELS (net-calibrated)", "ELS (held-out calibrated)"):
            if name in r2:
                lines.append(f"{header} {name}: k(t) from T to delta = {r2[name]['k']}")
    note = ("r^2 of each closed form's score against the net's along the net's path: median "
            "over samples of the per-sample median of r^2 over the path's steps [bootstrap 95% "
            "interval]. KDE: the training set smoothed by N(0, h^2 I), h the noise of the "
            "predicted collapse. Bandwidths and patch sizes per step:\n\n"
            + "\n".join(f"- {line}" for line in lines))
    return markdown_table(head, rows) + "\n\n" + note


def _fraction(k, n):
    lo, hi = wilson_ci(k, n)
    return f"{k}/{n} [{lo:.2f}, {hi:.2f}]"


def pair_table(digits, crossing):
    rng = np.random.default_rng(0)
    rows = []
    for r in digits:
        p = r["pair"]
        rows.append([r["n"], _fraction(p["memorised"][0], p["n"]),
                     _fraction(p["memorised"][1], p["n"]), _fraction(p["agree"], p["n"]),
                     _interval(*quality(p, rng)),
                     f"{np.median(p['pair_distance']):.3g} / {np.median(p['train_distance']):.3g}"])
    head = ["N", "memorised (S1 net) [Wilson 95%]", "memorised (S2 net)", "agreement",
            "quality [bootstrap 95%]", "median pair / nearest-training distance"]
    lines = []
    for key, what in (("memorised", "memorised fraction of both nets falling"),
                      ("agree", "agreement rising")):
        est, lo, hi = (10 ** v if np.isfinite(v) else float("nan") for v in crossing[key])
        lines.append(f"Transition N ({what} through 1/2, log-interpolated): {est:.3g}, "
                     f"interval [{lo:.3g}, {hi:.3g}] from the Wilson bands (nan: no crossing "
                     "in the grid).")
    note = (" ".join(lines) + " Agreement: the two samples from one noise are closer to each "
            "other than each to its nearest image of S1 u S2. Quality 1 is data-like.")
    return markdown_table(head, rows) + "\n\n" + note


def geometry_table(by_alpha):
    """Spectra per contour exponent, border and level, then the entropy-rank differences.

    ``by_alpha``: alpha -> {"smooth": result, "perturbed": result}.
    """
    rows, diffs = [], []
    for alpha, pair in by_alpha.items():
        for name, res in pair.items():
            for lev in res["levels"]:
                ranks = np.asarray(lev["entropy_rank"])
                spec = np.asarray(lev["mean_spectrum"])
                rows.append([f"{alpha:g}", name, res["train"]["steps"], f"{lev['s']:.3g}",
                             f"{ranks.mean():.3g} +- {ranks.std(ddof=1) / np.sqrt(ranks.size):.2g}",
                             f"{spec[0]:.3g}", f"{spec[9]:.3g}", f"{spec[49]:.3g}",
                             f"{lev['lowest_eig']:.2g}"])
        for a, b in zip(pair["smooth"]["levels"], pair["perturbed"]["levels"]):
            diff, se = entropy_rank_difference(a, b)
            diffs.append([f"{alpha:g}", f"{a['s']:.3g}",
                          _interval(diff, diff - 1.96 * se, diff + 1.96 * se)])
    head = ["contour alpha", "border", "updates", "sigma/alpha", "entropy rank (mean +- s.e.)",
            "alpha lambda_1", "alpha lambda_10", "alpha lambda_50", "lowest eigenvalue"]
    return (markdown_table(head, rows) + "\n\nEntropy rank, perturbed minus smooth border "
            "(difference of means, normal 95% interval):\n\n"
            + markdown_table(["contour alpha", "sigma/alpha", "difference"], diffs))


def miyasawa_table(calpha, wiener):
    rows = []
    for name, res in calpha.items():
        for lev in res["levels"]:
            rows.append([f"net, {name}", f"{lev['s']:.3g}", f"{lev['mse'][0]:.4g}",
                         f"{lev['rhs'][0]:.4g}", f"{lev['gap'][0]:.3g} +- {lev['gap'][1]:.2g}",
                         lev["best"], f"{lev['excess'][0]:.3g} +- {lev['excess'][1]:.2g}"])
    for key, label in (("own", "Wiener, own prior"), ("wrong", "Wiener of cov/2")):
        for row in wiener[key]:
            rows.append([label, f"{row['s']:.3g}", f"{row['mse']:.4g}", "",
                         f"{row['gap']:.3g} +- {row['se']:.2g}", "", ""])
    head = ["denoiser", "sigma/alpha", "E|x0 - D|^2", "(sigma^2/alpha) E tr grad D",
            "Miyasawa gap (+- s.e.)", "best reference", "excess over it (+- s.e.)"]
    return ("Miyasawa gap per image (sum over pixels) on held-out images, and the net's "
            "excess error over the best closed form on the same noisy images.\n\n"
            + markdown_table(head, rows))


def r2_figure(digits, outdir):
    fig, axes = new_figure(1, len(digits))
    colors = distinct_colors(len(_NAMES))
    for ax, r in zip(axes[0], digits):
        times = np.asarray(r["times"])
        s = np.sqrt(np.expm1(2 * times))  # sigma / alpha of the OU process
        for name, color in zip(_NAMES, colors):
            unexplained = 1.0 - np.median(np.asarray(r["r2"][name]["r2"]), axis=1)
            ax.plot(s, np.maximum(unexplained, 1e-4), "--" if "held-out" in name else "-",
                    color=color, label=name)
        ax.axhline(1.0, color=REFERENCE_COLORS[1], ls=":", lw=1)
        log_axis(ax, "x")
        log_axis(ax, "y")
        ax.invert_xaxis()
        ax.set(xlabel="sigma / alpha (the path runs left to right)",
               ylabel="1 - median r^2 (dotted: r^2 = 0)", title=f"N = {r['n']}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure_legend(fig, handles, labels, ncols=3)
    return save_figure(fig, outdir, "trained_denoisers_r2")


def _image(ax, img, title, signed=False):
    img = np.asarray(img)
    side = round(np.sqrt(img.size))
    img = img.reshape(side, side)
    if signed:
        lim = max(np.abs(img).max(), 1e-12)
        ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
    else:
        ax.imshow(img, cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])


def figure2_figure(digits, outdir):
    gallery = len(digits[0]["gallery"]["x1"])
    fig, axes = new_figure(3 * len(digits), gallery + 4, size=(0.9, 0.95))
    rows = ("x1", "x2", "nearest1")
    names = {"x1": "S1 net", "x2": "S2 net", "nearest1": "nearest in S1"}
    for i, r in enumerate(digits):
        for j, key in enumerate(rows):
            row = axes[3 * i + j]
            for col in range(gallery):
                _image(row[col], r["gallery"][key][col], "")
            row[0].set_ylabel(f"N={r['n']}\n{names[key]}", fontsize=7)
    # The metrics against N in one panel spanning the last three columns (one spacer).
    for ax in axes[:, gallery:].ravel():
        ax.remove()
    grid = axes[0, 0].get_gridspec()
    ax = fig.add_subplot(grid[:, gallery + 1:])
    ns = [r["n"] for r in digits]
    for key, label, color in (("memorised", "memorised", "tab:red"),
                              ("agree", "agreement", "tab:blue")):
        fr, lo, hi = [], [], []
        for r in digits:
            p = r["pair"]
            k, n = (sum(p["memorised"]), 2 * p["n"]) if key == "memorised" else (p["agree"], p["n"])
            a, b = wilson_ci(k, n)
            fr.append(k / n)
            lo.append(k / n - a)
            hi.append(b - k / n)
        ax.errorbar(ns, fr, yerr=[lo, hi], fmt="o-", color=color, label=label, capsize=2)
    ax.axhline(0.5, color=REFERENCE_COLORS[1], ls=":", lw=1)
    log_axis(ax, "x", ns)
    ax.set(xlabel="N", ylabel="fraction of samples", ylim=(-0.02, 1.02),
           title="both nets (dotted: 1/2)")
    figure_legend(fig, *ax.get_legend_handles_labels(), ncols=2)
    return save_figure(fig, outdir, "trained_denoisers_figure2")


def figure5_figure(calpha, outdir):
    top = len(calpha["smooth"]["figure5"]["net"]["values"])
    fig, axes = new_figure(4, top + 3, size=(1.3, 1.45))
    r = 0
    for name, res in calpha.items():
        f5 = res["figure5"]
        for model in ("net", "ELS"):
            row = axes[r]
            label = model if model == "net" else f"ELS k={f5['els_k']}"
            _image(row[0], f5["clean"], f"{name}: clean")
            _image(row[1], f5["noisy"], f"noisy s={f5['s']:.2g}")
            _image(row[2], f5[model]["denoised"], f"D {label}")
            for j in range(top):
                _image(row[3 + j], f5[model]["vectors"][j],
                       f"{label} {f5[model]['values'][j]:.2g}", signed=True)
            r += 1
    return save_figure(fig, outdir, "trained_denoisers_figure5")


def decay_figure(calpha, outdir):
    levels = calpha["smooth"]["levels"]
    fig, axes = new_figure(1, len(levels))
    colors = {"smooth": "tab:blue", "perturbed": "tab:red"}
    for i, ax in enumerate(axes[0]):
        for name, res in calpha.items():
            spec = np.clip(np.asarray(res["levels"][i]["mean_spectrum"]), 1e-3, None)
            ax.plot(np.arange(1, spec.size + 1), spec, "-", color=colors[name],
                    label=f"{name} border")
        log_axis(ax, "y")
        ax.set(xlabel="index k", ylabel="alpha lambda_k (mean)", ylim=(8e-4, 3),
               title=f"sigma/alpha = {levels[i]['s']:.2g}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure_legend(fig, handles, labels, ncols=2)
    return save_figure(fig, outdir, "trained_denoisers_decay")
