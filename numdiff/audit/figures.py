"""The audit's two figures: ``gallery.png`` and ``ratios.png``.

``gallery.png`` shows the closest sample / training pairs (as images when the
inputs are images, as coordinate profiles otherwise). ``ratios.png`` shows, on
the left, the counts of the nearest / second-nearest distance ratios with the
threshold and, on the right, each set's share of points per bin of the nearest
training distance (samples against the reference), with the class thresholds
and the class shares of the samples. Shares per bin, not densities: on
log-spaced bins a density divides each bin by its width and shrinks the wide
bins where most points lie.
"""

from __future__ import annotations

import numpy as np

from .result import CLASSES

__all__ = ["gallery", "ratio_axes", "ratio_figure"]

#: Pairs shown in the gallery.
GALLERY = 8

#: A log axis is used when the positive distances span more than this factor.
LOG_SPAN = 20.0

#: Sample distances below the smallest reference distance over this factor share the
#: first bin of the distance histogram.
FLOOR_FACTOR = 1000.0


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
        Training points, in the original coordinates (the pixels when the audit
        measured features).
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
    where = " (nearest in feature space)" if result.space == "features" else ""
    fig.suptitle(f"closest generated samples (top) and their nearest training points "
                 f"(bottom){where}", fontsize=9)
    fig.savefig(path, dpi=100)
    return path


def _log_ticks(ax, lo, hi):
    """Labelled ticks that cannot overlap: a few decades over a wide range, 1-2-5 otherwise."""
    from matplotlib.ticker import (
        FuncFormatter,
        LogFormatterSciNotation,
        LogLocator,
        NullFormatter,
    )

    if np.log10(hi / lo) > 3:
        ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0,), numticks=6))
        ax.xaxis.set_major_formatter(LogFormatterSciNotation())
    else:
        ax.xaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def ratio_figure(result, path):
    """Write :func:`ratio_axes`'s figure to ``path`` (PNG).

    Parameters
    ----------
    result : AuditResult
    path : pathlib.Path

    Returns
    -------
    pathlib.Path
    """
    ratio_axes(result).savefig(path, dpi=100)
    return path


def ratio_axes(result):
    """Ratio counts with the threshold, and the distance laws with the class thresholds.

    Parameters
    ----------
    result : AuditResult

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the ratios, then the distances.
    """
    fig, axes = _figure(1, 2, (4.8, 3.6))
    ax_r, ax_d = axes[0]
    th = result.thresholds
    ax_r.hist(result.ratio, bins=np.linspace(0.0, 1.0, 51), color="C0")
    ax_r.axvline(th["ratio"], color="C3", ls="--",
                 label=f"threshold {th['ratio']:.3g}: {result.memorized_count} memorised")
    ax_r.set(xlabel="nearest / second-nearest training distance", ylabel="samples (count)",
             title=f"memorised {result.memorized_fraction:.3f} "
                   f"[{result.memorized_interval[0]:.3f}, {result.memorized_interval[1]:.3f}]")
    ax_r.legend(fontsize=7)

    d1, ref = result.nearest_distance, result.reference_distance
    # Samples far closer than any reference point (exact or noisy copies) are lumped at
    # a floor three decades below the closest reference point, so that the bins keep
    # resolving the reference's law instead of spreading over empty decades.
    positive = np.concatenate([d1, ref])
    positive = positive[positive > 0]
    ref_positive = ref[ref > 0]
    floor = (ref_positive.min() if ref_positive.size else
             positive.min() if positive.size else 1.0) / FLOOR_FACTOR
    lo = max(positive.min(), floor) if positive.size else floor
    hi = max(d1.max(), ref.max(), lo)
    lumped = int(np.sum(d1 < lo))
    log = lumped > 0 or hi / lo > LOG_SPAN
    if log:
        start = lo / 2.0 if lumped else lo
        bins = np.geomspace(start, max(hi * 1.05, start * 10), 60)
    else:
        bins = np.linspace(0.95 * lo, 1.05 * hi, 50)
    shares = ", ".join(f"{name} {100 * result.class_counts[name] / result.n_samples:.1f}%"
                       for name in CLASSES)
    ax_d.hist(np.maximum(d1, bins[0]), bins=bins, weights=np.full(d1.size, 1.0 / d1.size),
              histtype="stepfilled", alpha=0.5, color="C0", label=f"samples ({d1.size})")
    ax_d.hist(ref, bins=bins, weights=np.full(ref.size, 1.0 / ref.size), histtype="step",
              lw=1.5, color="C1", label=f"reference: {result.calibration} ({ref.size})")
    ax_d.axvline(th["near_distance"], color="C3", ls="--",
                 label=f"near copy below {th['near_distance']:.3g}")
    ax_d.axvline(max(th["verbatim_distance"], bins[0]), color="k", ls=":",
                 label=f"verbatim (if memorised) below {th['verbatim_distance']:.3g}")
    ax_d.set(xlabel="distance to the nearest training point", ylabel="share of the set per bin",
             title=f"samples: {shares}")
    ax_d.title.set_fontsize(8)
    if lumped:
        ax_d.annotate(f"{lumped} at distance < {lo:.2g}\n(first bin)", (bins[0], 0),
                      xytext=(4, 40), textcoords="offset points", fontsize=7,
                      arrowprops={"arrowstyle": "->", "lw": 0.6})
    if log:
        ax_d.set_xscale("log")
        _log_ticks(ax_d, bins[0], bins[-1])
    ax_d.legend(fontsize=6.5)
    return fig
