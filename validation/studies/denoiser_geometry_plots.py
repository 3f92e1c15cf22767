"""Figures of the denoiser-geometry study: effective ranks, eigenvalue decay, eigenvectors."""

from __future__ import annotations

import numpy as np

import numdiff as nd
from theory.memorization import collapse_time

from ..plotting import (
    REFERENCE_COLORS,
    colorbar,
    figure_legend,
    key_handle,
    log_axis,
    new_figure,
    ordered_colors,
    save_figure,
    style_key,
)
from .common import ou_alpha_sigma2

#: One colour per denoiser (and per way of averaging the empirical one), in every panel.
MODEL_STYLES = {
    "empirical (law)": {"color": "tab:blue", "marker": "o"},
    "empirical (held-out, median)": {"color": "tab:purple", "marker": "s"},
    "Wiener": {"color": "tab:orange", "marker": "^"},
    "KDE (median)": {"color": "tab:green", "marker": "v"},
}
COLLAPSE = {"color": REFERENCE_COLORS[0], "ls": "--", "lw": 1}


#: Caption of each figure in the report.
CAPTIONS = {
    "denoiser_geometry_ranks": (
        "One row per dataset: the trace rank (degrees of freedom) and entropy rank of grad D "
        "against the noise sigma/alpha for the empirical, Wiener and KDE denoisers, with the "
        "predicted collapse dashed, and the mean eigenvalue decay at several noise levels. "
        "Below the collapse the empirical denoiser's ranks fall to 0 while the Wiener "
        "denoiser's stay high: it memorises. The effective-rank table and the collapse "
        "finding in a picture."
    ),
    "denoiser_geometry_figure5_eigenvectors": (
        "The seed's Figure 5 analogue: one held-out digit at three noise levels, denoised by "
        "each denoiser, and the top eigenvectors of grad D with their eigenvalues. An "
        "illustration of the spectra; no claim."
    ),
    "denoiser_geometry_figure5_decay": (
        "Eigenvalues of grad D at the digit of the previous figure, one panel per noise level: "
        "at small noise the empirical denoiser's spectrum collapses to a few directions, the "
        "Wiener and KDE spectra do not."
    ),
}


def _noise(r):
    return np.sqrt(r["sigma2"]) / r["alpha"]


def spectra_figure(groups, outdir):
    """Trace and entropy ranks against the noise, and the mean eigenvalue decay, per dataset.

    Parameters
    ----------
    groups : dict
        Dataset name -> list of the level cells' results.
    outdir : Path
    """
    fig, axes = new_figure(len(groups), 3)
    for (name, rows), (ax_tr, ax_en, ax_dec) in zip(groups.items(), axes):
        rows = sorted(rows, key=lambda r: r["t"])
        noise = [_noise(r) for r in rows]
        first = rows[0]
        t_c = collapse_time(first["n_data"], first["dim"], nd.OU(), data_var=first["data_var"])
        a_c, s2_c = ou_alpha_sigma2(t_c)
        trace = {"empirical (law)": [r["empirical"]["dof"] for r in rows],
                 "empirical (held-out, median)":
                     [r["spectra"]["empirical"]["trace_median"] for r in rows],
                 "Wiener": [r["spectra"]["gaussian"]["trace"] for r in rows],
                 "KDE (median)": [r["spectra"]["kde"]["trace_median"] for r in rows]}
        for label, values in trace.items():
            ax_tr.plot(noise, values, "-", ms=4, label=label, **MODEL_STYLES[label])
        for key, label in (("empirical", "empirical (held-out, median)"),
                           ("gaussian", "Wiener"), ("kde", "KDE (median)")):
            ax_en.plot(noise, [r["spectra"][key]["entropy_median"] for r in rows], "-", ms=4,
                       **MODEL_STYLES[label])
        for ax in (ax_tr, ax_en):
            ax.axvline(np.sqrt(s2_c) / a_c, **COLLAPSE)
            log_axis(ax, "x")
        ax_tr.set(yscale="symlog", ylim=(0, None), xlabel="sigma / alpha",
                  ylabel="trace rank alpha tr grad D", title=f"{name}: trace rank")
        ax_en.set(xlabel="sigma / alpha", ylabel="entropy rank",
                  title=f"{name}: entropy rank")
        picked = rows[:: max(1, len(rows) // 4)]
        colors, mappable = ordered_colors([_noise(r) for r in picked])
        for color, r in zip(colors, picked):
            for key, ls in (("empirical", "-"), ("kde", ":")):
                spec = np.asarray(r["spectra"][key]["spectrum"])
                ax_dec.plot(np.arange(1, len(spec) + 1), np.maximum(spec, 1e-16), ls,
                            color=color)
        colorbar(fig, ax_dec, mappable, "sigma / alpha", [_noise(r) for r in picked])
        ax_dec.set(yscale="log", xlabel="index k", ylabel="mean alpha lambda_k",
                   title=f"{name}: eigenvalue decay", ylim=(1e-8, 2))
        style_key(ax_dec, {"empirical": {"ls": "-"}, "KDE": {"ls": ":"}})
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure_legend(fig, handles + [key_handle(**COLLAPSE)],
                  labels + ["predicted collapse (t_C)"], ncols=5)
    return save_figure(fig, outdir, "denoiser_geometry_ranks")


def figure5(res, outdir):
    """The seed's Figure 5 analogue: top eigenvectors as images, and the eigenvalue decay.

    Parameters
    ----------
    res : dict
        The figure cell's result.
    outdir : Path

    Returns
    -------
    list of Path
        The eigenvector grid and the decay figure.
    """
    keys = ("empirical", "gaussian", "kde")
    names = {"empirical": "empirical", "gaussian": "Wiener", "kde": "KDE"}
    levels = res["levels"]
    k = len(levels[0]["vectors"]["empirical"][0])
    fig, axes = new_figure(len(levels) * len(keys), k + 3, size=(1.5, 1.6))
    for i, lev in enumerate(levels):
        for j, key in enumerate(keys):
            row = axes[i * len(keys) + j]
            images = ([res["clean"], lev["noisy"], lev["denoised"][key]]
                      + list(np.asarray(lev["vectors"][key]).T))
            titles = (["clean", f"noisy, s/a={_noise(lev):.2g}", f"D {names[key]}"]
                      + [f"{names[key]} {v:.2g}" for v in lev["top"][key]])
            for col, (ax, img, title) in enumerate(zip(row, images, titles)):
                img = np.asarray(img).reshape(8, 8)
                if col < 3:
                    ax.imshow(img, cmap="gray_r", vmin=0, vmax=1)
                else:
                    lim = np.abs(img).max()
                    ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
                ax.set_title(title, fontsize=8)
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle("One held-out digit at three noise levels (s/a = sigma / alpha), one row per "
                 "denoiser:\nclean, noisy, denoised, then the top eigenvectors of grad D "
                 "(red +, blue -), titled by their eigenvalue alpha lambda", fontsize=9)
    path_vectors = save_figure(fig, outdir, "denoiser_geometry_figure5_eigenvectors")
    fig, axes = new_figure(1, len(levels))
    styles = {"empirical": MODEL_STYLES["empirical (law)"], "gaussian": MODEL_STYLES["Wiener"],
              "kde": MODEL_STYLES["KDE (median)"]}
    for ax, lev in zip(axes[0], levels):
        for key in keys:
            spec = np.maximum(np.asarray(lev["spectrum"][key]), 1e-16)
            ax.plot(np.arange(1, len(spec) + 1), spec, "-", ms=2, label=names[key],
                    **styles[key])
        ax.set(yscale="log", xlabel="index k", ylabel="alpha lambda_k", ylim=(1e-10, 2),
               title=f"sigma/alpha = {_noise(lev):.2g}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure_legend(fig, handles, labels, ncols=3)
    path_decay = save_figure(fig, outdir, "denoiser_geometry_figure5_decay")
    return [path_vectors, path_decay]
