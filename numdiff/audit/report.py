"""The audit's report: ``REPORT.md``, ``results.json``, ``samples.csv`` and two figures.

``REPORT.md`` is written for a reader who has not seen the code: it states the
verdict, what each number means, the thresholds actually used and what a model
that samples the data law itself would have got. The figures are drawn by
:mod:`numdiff.audit.figures`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .figures import gallery, ratio_figure
from .result import CLASSES

__all__ = ["write_report"]

_VERDICT_TEXT = {
    "data-copying": ("the samples lie closer to the training set than held-out data do: the "
                     "model reproduces its training points more than the data law would."),
    "under-fitting": ("the samples lie farther from the training set than held-out data do: "
                      "the model misses regions where the data are."),
    "neither": ("the samples lie as far from the training set as held-out data do, to the "
                "precision of the test."),
}


_REFERENCE = {
    "holdout": "the held-out points' distances to their nearest training point.",
    "train leave-one-out": ("the distances of training points to their nearest *other* "
                            "training point (leave-one-out, as no held-out set was given: an "
                            "approximation, since each sees one training point fewer)."),
}


def _atomic_text(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _fmt(v, spec=".4g"):
    return "n/a" if v is None else format(v, spec)


def _verdict_lines(s):
    if s["c_t"] is None:
        return ["## Verdict", "", ("None: the data-copying test C_T needs held-out points "
                "(`--holdout`). The classes below are calibrated on the training set itself."),
                ""]
    if s["verdict"] is None:
        return ["## Verdict", "", ("None: no cell held enough generated points for C_T "
                "(lower `--cells` or `--min-generated`)."), ""]
    ct = s["c_t"]
    return ["## Verdict", "", f"**{s['verdict']}**: {_VERDICT_TEXT[s['verdict']]}", "",
            (f"From C_T with `--distance {s['distance']}`: z = {_fmt(ct['z'], '.3f')}; "
             f"one-sided p-value for data-copying {_fmt(ct['pvalue'], '.3g')}, for "
             f"under-fitting {_fmt(ct['pvalue_underfit'], '.3g')}; each side is tested at "
             f"level {s['alpha']:g}, so a model that samples the data law itself gets a verdict "
             f"other than \"neither\" with probability {2 * s['alpha']:g}. The classes below "
             "are a separate, per-sample reading."), ""]


def _class_lines(s):
    th, lo, hi = s["thresholds"], *s["memorized_interval"]
    pct = f"{100 * s['level']:.4g}%"
    lines = [
        "## Samples by class", "",
        f"| class | samples | a perfect model would get ({pct} interval) |",
        "| --- | --- | --- |",
    ]
    for name in CLASSES:
        perfect = s["perfect_model"].get(name)
        ref = ("" if perfect is None else
               f"{perfect['expected']:.1f} [{perfect['interval'][0]}, {perfect['interval'][1]}]")
        lines.append(f"| {name} | {s['class_counts'][name]} | {ref} |")
    lines += [
        "",
        (f"Memorised fraction (ratio test, nearest / second-nearest training distance < "
         f"{th['ratio']:.4g}): {s['memorized_fraction']:.4f} ({s['memorized_count']} of "
         f"{s['n_samples']}), {pct} Wilson interval [{lo:.4f}, {hi:.4f}]. Samples at distance "
         f"exactly 0 from a training point: {s['exact_copies']}."), "",
        "### What the classes mean here", "",
        "Reference distances, i.e. what novel points look like: " + _REFERENCE[s["calibration"]],
        "",
        (f"* **verbatim**: memorised and nearest distance <= {th['verbatim_distance']:.6g} "
         f"({_source(th, 'verbatim')}). Verbatim is relative to this threshold: a training "
         "point plus noise smaller than it is verbatim, not only a bit-identical copy;"),
        (f"* **near copy**: not verbatim, and memorised or nearest distance < "
         f"{th['near_distance']:.6g} ({_source(th, 'near')});"),
        "* **novel**: the rest.", "",
        ("A model that samples the data law itself has samples exchangeable with the "
         "reference points, so it gets near copies at the rate the reference itself does "
         f"under these thresholds ({100 * th['near_reference_share']:.3g}% of reference "
         "distances lie below the near-copy threshold): the counts in the last column are "
         "that expectation, with an interval that adds the uncertainty of the rate, "
         "estimated from the reference points (beta-binomial). A count inside it is no "
         "evidence of copying. Give `--near-distance` / `--verbatim-distance` if you know "
         "what distance makes a copy in your data."), "",
    ]
    return lines


def _source(th, name):
    if th[f"{name}_source"] == "absolute":
        return (f"given by the user; {100 * th[f'{name}_reference_share']:.3g}% of reference "
                "distances lie below it")
    return f"the {th[f'{name}_quantile']:g} quantile of the reference distances"


def _c_t_lines(s):
    ct, mw, both = s["c_t"], s["mann_whitney"], s["c_t_by_distance"]
    kept = sum(c["kept"] for c in ct["cells"])
    lines = [
        "## The data-copying test C_T (Meehan, Chaudhuri & Dasgupta 2020)", "",
        (f"The training set is cut into {ct['n_cells']} k-means cells. In each cell holding "
         f"at least {round(ct['tau'] * s['n_samples'])} generated points and one held-out point "
         f"({kept} cells here), Z_U is the Mann-Whitney statistic of the samples' distances to "
         "the training set against the held-out points' distances, as a z-score: negative "
         "when the samples are closer (the data-copying side), positive when farther (the "
         "under-fitting side). C_T is the mean of the Z_U weighted by each cell's share w of "
         "held-out points."), "",
        ("Under the null (samples as far as fresh data) each Z_U is nearly standard normal and "
         "the cells are independent, so C_T has standard deviation sqrt(sum w^2) / sum w; "
         "**z** is C_T divided by it, and the p-values are the standard normal tails of z: "
         "Phi(z) for data-copying, 1 - Phi(z) for under-fitting."), "",
        ("Raw C_T depends on the number of cells: a real difference gives in-cell Z_U that "
         "grow like the square root of the points per cell, so on the same data C_T shrinks "
         "as cells are added while z changes little. Compare z between audits; compare raw "
         "C_T only at equal cell counts and set sizes."), "",
        "| distance | L measured to | Z_U centred at | C_T | z | p copying | p under-fitting |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    meaning = {"train": ("the whole training set", "mn/2"),
               "cell": ("the training points of the point's cell", "mn/2 - 1/2")}
    for name, res in both.items():
        used = " (used)" if name == s["distance"] else ""
        lines.append(f"| `{name}`{used} | {meaning[name][0]} | {meaning[name][1]} | "
                     f"{_fmt(res['statistic'])} | {_fmt(res['z'])} | {_fmt(res['pvalue'], '.3g')} "
                     f"| {_fmt(res['pvalue_underfit'], '.3g')} |")
    lines += [
        "",
        ("`cell` is the statistic of the paper's companion code (github.com/casey-meehan/"
         "data-copying): use its C_T to compare with published values. `train` is numdiff's "
         "default: it follows the paper's definition of L (distance to the training set), "
         "so a point near a cell boundary is not pushed away from a training point that "
         "lies just across it. The two differ for points whose nearest training point lies "
         "in another cell."), "",
    ]
    spread = s["partition_spread"]
    if spread:
        lines += [f"Across partition seeds {spread['seeds']}:", ""]
        for name in both:
            z = [v for v in spread[name]["z"] if v is not None]
            if z:
                lines.append(f"* `{name}`: z from {min(z):.3f} to {max(z):.3f}")
        lines.append("")
    lines += [
        (f"Mann-Whitney over all points (no cells): Z_U = {_fmt(mw['z'])}, p-value "
         f"{_fmt(mw['pvalue_less'], '.3g')} (samples closer) / "
         f"{_fmt(mw['pvalue_two_sided'], '.3g')} (two-sided)."), "",
        "### Cells", "",
        "| cell | generated | held-out | weight w | Z_U (`train`) | Z_U (`cell`) | kept |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c, other in zip(both["train"]["cells"], both["cell"]["cells"]):
        z_train = "" if c["z_u"] is None else f"{c['z_u']:.3g}"
        z_cell = "" if other["z_u"] is None else f"{other['z_u']:.3g}"
        lines.append(f"| {c['cell']} | {c['n_generated']} | {c['n_held_out']} | "
                     f"{c['weight']:.3f} | {z_train} | {z_cell} | {c['kept']} |")
    return lines + [""]


def _markdown(s, files):
    space = ("features given for each set (the images are only shown)"
             if s["space"] == "features" else "the points themselves")
    lines = [
        "# Memorisation audit", "",
        (f"{s['n_samples']} generated samples against {s['n_train']} training points; "
         f"held-out points: {s['n_holdout'] or 'none'}. Distances are Euclidean, in "
         f"dimension {s['dim']}, between {space}."), "",
    ]
    lines += _verdict_lines(s) + _class_lines(s)
    if s["c_t"] is not None:
        lines += _c_t_lines(s)
    lines += ["## Files", ""] + [f"* `{f}`" for f in files] + [""]
    lines += [f"![closest pairs]({files[-2]})", "",
              ("Left: how many samples have each nearest / second-nearest distance ratio. "
               "Right: each set's share of points per bin of distance to the nearest training "
               "point, with the class thresholds."), "", f"![ratios]({files[-1]})", ""]
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
        Added to the training rows shown (see :func:`~numdiff.audit.figures.gallery`).

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
    summary = result.summary()
    _atomic_text(paths["results.json"], json.dumps(summary, indent=2, allow_nan=False))
    rows = ["sample,nearest_index,nearest_distance,second_distance,ratio,class"]
    rows += [f"{i},{result.nearest_index[i]},{result.nearest_distance[i]:.10g},"
             f"{result.second_distance[i]:.10g},{result.ratio[i]:.10g},"
             f"{CLASSES[result.classes[i]]}" for i in range(result.n_samples)]
    _atomic_text(paths["samples.csv"], "\n".join(rows) + "\n")
    gallery(result, train, samples, paths["gallery.png"], train_shift=train_shift)
    ratio_figure(result, paths["ratios.png"])
    files = ["results.json", "samples.csv", "gallery.png", "ratios.png"]
    _atomic_text(paths["REPORT.md"], _markdown(summary, files))
    return paths
