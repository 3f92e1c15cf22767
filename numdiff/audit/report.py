"""The audit's report: ``REPORT.md``, ``results.json``, ``samples.csv`` and two figures.

``gallery.png`` shows the closest sample / training pairs (as images when the
inputs are images, as coordinate profiles otherwise); ``ratios.png`` the
histogram of the nearest / second-nearest distance ratios with the threshold,
and the nearest distances of the samples against those of the reference.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import CLASSES

__all__ = ["write_report"]

#: Pairs shown in the gallery.
GALLERY = 8


def _atomic_text(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _figure(nrows, ncols, size):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _show(ax, vec, image_shape, lo, hi):
    if image_shape is not None:
        img = np.clip((vec - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0).reshape(image_shape)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.plot(vec, lw=0.8)


def gallery(result, train, samples, path, count=GALLERY, train_shift=None):
    """Write the closest sample / training pairs to ``path`` (PNG).

    Parameters
    ----------
    result : AuditResult
    train : ndarray, shape (N, d)
        Training points, in the original coordinates.
    samples : ndarray, shape (M, d)
        Generated points.
    path : pathlib.Path
    count : int
        Number of pairs, the closest first.
    train_shift : ndarray, shape (d,), optional
        Added to the training rows shown (for a training set centred in place).

    Returns
    -------
    pathlib.Path
    """
    order = np.argsort(result.nearest_distance, kind="stable")[:count]
    fig, axes = _figure(2, len(order), (1.6, 1.7))
    shape = result.image_shape
    shift = 0.0 if train_shift is None else train_shift
    rows = train[result.nearest_index[order]] + shift
    lo = float(min(rows.min(), samples[order].min()))
    hi = float(max(rows.max(), samples[order].max()))
    for j, i in enumerate(order):
        k = result.nearest_index[i]
        _show(axes[0, j], samples[i], shape, lo, hi)
        _show(axes[1, j], rows[j], shape, lo, hi)
        axes[0, j].set_title(f"sample {i}\n{CLASSES[result.classes[i]]}", fontsize=7)
        axes[1, j].set_title(f"train {k}\nd={result.nearest_distance[i]:.3g}, "
                             f"r={result.ratio[i]:.2f}", fontsize=7)
    fig.suptitle("closest generated samples (top) and their nearest training points (bottom)",
                 fontsize=9)
    fig.savefig(path, dpi=100)
    return path


def ratio_figure(result, path):
    """Histogram of the distance ratios with the threshold, and the distance laws.

    Parameters
    ----------
    result : AuditResult
    path : pathlib.Path

    Returns
    -------
    pathlib.Path
    """
    fig, axes = _figure(1, 2, (4.6, 3.4))
    ax_r, ax_d = axes[0]
    ax_r.hist(result.ratio, bins=np.linspace(0.0, 1.0, 51), color="C0")
    ax_r.axvline(result.thresholds["ratio"], color="C3", ls="--",
                 label=f"threshold {result.thresholds['ratio']:.3g}")
    ax_r.set(xlabel="nearest / second-nearest training distance", ylabel="samples",
             title=f"memorised {result.memorized_fraction:.3f} "
                   f"[{result.memorized_interval[0]:.3f}, {result.memorized_interval[1]:.3f}]")
    ax_r.legend(fontsize=8)
    both = np.concatenate([result.nearest_distance, result.reference_distance])
    positive = both[both > 0]
    lo = positive.min() if positive.size else 1e-12
    if positive.size < both.size:  # exact copies: drawn in the first bin, a decade lower
        lo /= 10.0
    bins = np.geomspace(lo, max(both.max() * 1.05, lo * 10), 50)
    ax_d.hist(np.maximum(result.nearest_distance, lo), bins=bins, alpha=0.6, density=True,
              label="samples")
    ax_d.hist(result.reference_distance, bins=bins, alpha=0.6, density=True,
              label=f"reference ({result.calibration})")
    ax_d.axvline(result.thresholds["near_distance"], color="C3", ls="--", label="near copy")
    ax_d.axvline(max(result.thresholds["verbatim_distance"], lo), color="k", ls=":",
                 label="verbatim")
    ax_d.set(xscale="log", xlabel="distance to the nearest training point", ylabel="density")
    ax_d.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    return path


def _markdown(result, files):
    s = result.summary()
    th = s["thresholds"]
    lo, hi = s["memorized_interval"]
    lines = [
        "# Memorisation audit", "",
        (f"{s['n_samples']} generated samples against {s['n_train']} training points "
        f"(d = {s['dim']}); held-out points: {s['n_holdout'] or 'none'}."), "",
        "## Set level", "",
        "| statistic | value |", "| --- | --- |",
        (f"| memorised fraction (ratio < {th['ratio']:.4g}) | {s['memorized_fraction']:.4f} "
        f"({s['memorized_count']} of {s['n_samples']}), {100 * s['level']:.4g}% Wilson "
        f"[{lo:.4f}, {hi:.4f}] |"),
    ]
    for name in CLASSES:
        lines.append(f"| {name} | {s['class_counts'][name]} |")
    if s["c_t"] is not None:
        ct, mw = s["c_t"], s["mann_whitney"]
        kept = sum(c["kept"] for c in ct["cells"])

        def fmt(v):
            return "n/a" if v is None else f"{v:.4g}"

        lines += [
            (f"| C_T (Meehan et al. 2020) | {fmt(ct['statistic'])} (z = {fmt(ct['z'])}, "
            f"{kept} of {ct['n_cells']} cells kept) |"),
            f"| C_T p-value, data-copying (one-sided) | {fmt(ct['pvalue'])} |",
            f"| C_T p-value, under-fitting (one-sided) | {fmt(ct['pvalue_underfit'])} |",
            f"| Mann-Whitney Z_U, generated vs held-out distances | {fmt(mw['z'])} |",
            (f"| Mann-Whitney p-value (generated closer / two-sided) | {fmt(mw['pvalue_less'])} / "
            f"{fmt(mw['pvalue_two_sided'])} |"),
            f"| data-copying flagged (C_T p < {s['alpha']}) | {s['flagged']} |",
        ]
    lines += [
        "", "## Thresholds", "",
        f"Reference distances (what a novel point looks like): {s['calibration']}.", "",
        f"* memorised: nearest / second-nearest training distance < {th['ratio']:.4g};",
        (f"* verbatim copy: memorised and nearest distance <= {th['verbatim_distance']:.6g} "
        f"(the {th['verbatim_quantile']:g} quantile of the reference distances);"),
        (f"* near copy: not verbatim, and memorised or nearest distance < "
        f"{th['near_distance']:.6g} (the {th['near_quantile']:g} quantile);"),
        "* novel: the rest.", "",
    ]
    if s["c_t"] is not None:
        lines += [
            "## C_T cells", "",
            ("k-means cells of the training set; a cell enters C_T when it holds at least "
            f"tau m = {s['c_t']['tau'] * s['n_samples']:.0f} generated points (and one "
            "held-out point)."), "",
            "| cell | generated | held-out | weight P_n | Z_U | kept |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for c in s["c_t"]["cells"]:
            z = "" if c["z_u"] is None else f"{c['z_u']:.3g}"
            lines.append(f"| {c['cell']} | {c['n_generated']} | {c['n_held_out']} | "
                         f"{c['weight']:.3f} | {z} | {c['kept']} |")
        lines.append("")
    lines += ["## Files", ""] + [f"* `{f}`" for f in files] + [""]
    lines += [f"![closest pairs]({files[-2]})", "", f"![ratios]({files[-1]})", ""]
    return "\n".join(lines)


def write_report(result, out, train, samples, train_shift=None):
    """Write the report of an audit to the folder ``out``.

    Parameters
    ----------
    result : AuditResult
    out : str or pathlib.Path
        Created if missing.
    train : ndarray, shape (N, d)
        Training points in their original coordinates (for the gallery).
    samples : ndarray, shape (M, d)
        Generated points.
    train_shift : ndarray, shape (d,), optional
        Added to the training rows shown (see :func:`gallery`).

    Returns
    -------
    dict
        File name -> path of what was written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results.json": out / "results.json", "samples.csv": out / "samples.csv",
             "gallery.png": out / "gallery.png", "ratios.png": out / "ratios.png",
             "REPORT.md": out / "REPORT.md"}
    _atomic_text(paths["results.json"], json.dumps(result.summary(), indent=2, allow_nan=False))
    rows = ["sample,nearest_index,nearest_distance,second_distance,ratio,class"]
    rows += [f"{i},{result.nearest_index[i]},{result.nearest_distance[i]:.10g},"
             f"{result.second_distance[i]:.10g},{result.ratio[i]:.10g},"
             f"{CLASSES[result.classes[i]]}" for i in range(result.n_samples)]
    _atomic_text(paths["samples.csv"], "\n".join(rows) + "\n")
    gallery(result, train, samples, paths["gallery.png"], train_shift=train_shift)
    ratio_figure(result, paths["ratios.png"])
    files = ["results.json", "samples.csv", "gallery.png", "ratios.png"]
    _atomic_text(paths["REPORT.md"], _markdown(result, files))
    return paths
