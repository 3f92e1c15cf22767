"""The studies' plotting conventions, and a check that a figure reads at a glance.

Every figure of the report is built with these helpers, so that all of them share
one panel size, one set of font sizes and the same rules:

* legends sit outside the data (:func:`legend_outside`, :func:`figure_legend`);
* a family of many ordered curves (one per ``delta``, ``N`` or ``sigma^2``) takes
  its colours from a sequential colormap and gets a colour bar
  (:func:`ordered_colors`), never a cycled qualitative palette whose colours repeat;
* unordered curves take distinct colours (:func:`distinct_colors`); where one
  colour must stand for one thing across several curves (a sampler and its exact
  reference), the line style tells them apart and a style key explains it
  (:func:`style_key`);
* log axes over steps or sample sizes label the values that were run
  (:func:`log_axis`), and no other log axis labels its minor ticks, so labels
  cannot crowd.

:func:`layout_problems` checks what a machine can check of this: no legend over
the data, no overlapping tick labels, no two curves of a panel drawn alike.
"""

from __future__ import annotations

import warnings
from itertools import combinations
from pathlib import Path

import numpy as np

#: Size of one panel in inches (width, height); figures are a grid of panels.
PANEL = (4.2, 3.2)
#: Font sizes in points, for the report's width (figures are shown at about 100 dpi).
FONT = {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8,
        "ytick.labelsize": 8, "legend.fontsize": 8, "figure.titlesize": 10}
DPI = 110
#: Colours of reference marks (bounds, exact laws, thresholds), drawn apart from the data.
REFERENCE_COLORS = ("black", "0.5", "tab:brown")


def new_figure(nrows=1, ncols=1, size=PANEL):
    """A figure on the Agg canvas (no pyplot state) with the house fonts, and its axes.

    Parameters
    ----------
    nrows, ncols : int
        Grid of panels.
    size : (float, float)
        Size of one panel in inches.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of Axes, shape (nrows, ncols)
    """
    import matplotlib as mpl
    from matplotlib.figure import Figure

    with mpl.rc_context(FONT):
        fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.get_layout_engine().set(h_pad=0.06, w_pad=0.06)
    return fig, axes


def save_figure(fig, outdir, name) -> Path:
    """Save ``fig`` as ``outdir/figures/<name>.png`` and return the path.

    A figure with :func:`layout_problems` is saved all the same, with a warning that
    names them, so that a new figure that reads badly shows in the run's output.
    """
    problems = layout_problems(fig)
    if problems:
        warnings.warn(f"figure {name}: " + "; ".join(problems), stacklevel=2)
    folder = Path(outdir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    fig.savefig(path, dpi=DPI)
    return path


def legend_outside(ax, handles=None, labels=None, title=None, ncols=1):
    """A legend to the right of ``ax``, outside its data area.

    Constrained layout makes room for it. ``handles`` and ``labels`` default to
    the labelled artists of ``ax``.
    """
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                     borderaxespad=0.0, title=title, ncols=ncols,
                     fontsize=FONT["legend.fontsize"], title_fontsize=FONT["legend.fontsize"])


def legend_below(ax, handles=None, labels=None, ncols=1):
    """A legend under ``ax`` (below its x label), outside its data area."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.22),
                     borderaxespad=0.0, ncols=ncols, fontsize=FONT["legend.fontsize"])


def figure_legend(fig, handles, labels, ncols=4):
    """One legend for the whole figure, below its panels."""
    return fig.legend(handles, labels, loc="outside lower center", ncols=ncols,
                      fontsize=FONT["legend.fontsize"])


def key_handle(**style):
    """A legend handle drawn with ``style`` (``Line2D`` keywords) that is in no panel."""
    from matplotlib.lines import Line2D

    return Line2D([], [], **{"color": "black", **style})


def style_key(ax, styles, color="black", title=None, ncols=1):
    """Legend entries that explain line styles or markers, not colours.

    Parameters
    ----------
    ax : Axes
        The legend goes to its right (:func:`legend_outside`), after its own labels.
    styles : dict
        Label -> keyword arguments of a ``Line2D`` (``ls``, ``marker``, ``color``).
    """
    handles, labels = ax.get_legend_handles_labels()
    for label, kw in styles.items():
        handles.append(key_handle(**{"color": color, **kw}))
        labels.append(label)
    return legend_outside(ax, handles, labels, title=title, ncols=ncols)


def distinct_colors(n):
    """``n`` pairwise distinct colours for unordered curves (tab10, tab20 past 10)."""
    import matplotlib as mpl

    if n <= 10:
        return [mpl.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [mpl.colormaps["tab20"](i) for i in range(n)]
    return [mpl.colormaps["turbo"](x) for x in np.linspace(0.05, 0.95, n)]


def ordered_colors(values, log=True, cmap="viridis", span=0.9):
    """Colours of ordered curves from a sequential colormap, and the mappable for its bar.

    Parameters
    ----------
    values : array_like, shape (n,)
        The parameter that orders the curves (positive when ``log``).
    log : bool
        Map ``log10(values)`` rather than ``values``.
    cmap : str
        A sequential colormap; two families in one figure take two different ones.
    span : float
        The part ``[0, span]`` of the colormap used (its bright end is hard to see
        on white).

    Returns
    -------
    colors : list of RGBA tuples, length n
    mappable : ScalarMappable
        For :func:`colorbar`.
    """
    import matplotlib as mpl
    from matplotlib.colors import LogNorm, Normalize

    values = np.asarray(values, dtype=float)
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        lo, hi = (lo / 2, hi * 2) if log else (lo - 1, hi + 1)
    norm = LogNorm(lo, hi) if log else Normalize(lo, hi)
    cmap = mpl.colors.ListedColormap(mpl.colormaps[cmap](np.linspace(0.0, span, 256)))
    mappable = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    return [tuple(mappable.to_rgba(v)) for v in values], mappable


def colorbar(fig, ax, mappable, label, values=None):
    """A colour bar beside ``ax`` (or a list of axes) for :func:`ordered_colors`.

    With ``values`` (the curves' parameters) its ticks are those values, thinned
    to at most six; otherwise those of the norm, minor ones unlabelled.
    """
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter, NullLocator

    bar = fig.colorbar(mappable, ax=ax, label=label, pad=0.02, fraction=0.06)
    bar.ax.tick_params(labelsize=FONT["ytick.labelsize"])
    axis = bar.ax.yaxis
    if values is not None:
        values = np.unique(np.asarray(values, dtype=float))
        axis.set_major_locator(FixedLocator(values[:: max(1, int(np.ceil(len(values) / 6)))]))
        axis.set_major_formatter(FormatStrFormatter("%.2g"))
        axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())
    return bar


def ordered_curves(fig, ax, x, ys, values, label, cmap="viridis", tol=0.01):
    """Curves ordered by a parameter, coloured by it, with a colour bar; say which coincide.

    Parameters
    ----------
    fig : Figure
    ax : Axes
    x : array_like, shape (n,)
    ys : array_like, shape (k, n)
        One curve per value.
    values : array_like, shape (k,)
        The parameter (positive; a log colour scale).
    label : str
        Name of the parameter, for the colour bar.
    tol : float
        Curves within ``tol`` of another everywhere are drawn on top of it.

    Returns
    -------
    str
        ``""``, or a note for the title such as ``"6 curves; overlapping: 3 at 1"``.
    """
    ys = np.asarray(ys, dtype=float)
    colors, mappable = ordered_colors(values, cmap=cmap)
    groups = []  # [representative curve, count]
    for y, color in zip(ys, colors):
        ax.plot(x, y, "o-", color=color, ms=3)
        for group in groups:
            if np.all(np.abs(group[0] - y) < tol):
                group[1] += 1
                break
        else:
            groups.append([y, 1])
    colorbar(fig, ax, mappable, label, values)
    shared = [f"{count} at {np.mean(y):.2g}" for y, count in groups if count > 1]
    return f"{len(ys)} curves; overlapping: {', '.join(shared)}" if shared else ""


def log_axis(ax, axis="x", values=None):
    """Log scale whose labels cannot crowd.

    With ``values`` (the steps or sizes that were run) the ticks are those values,
    thinned to at most six, written as plain numbers; otherwise powers of ten only.
    """
    from matplotlib.ticker import FixedLocator, LogLocator, NullFormatter, ScalarFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    if values is not None:
        values = np.unique(np.asarray(values, dtype=float))
        step = max(1, int(np.ceil(len(values) / 6)))
        target.set_major_locator(FixedLocator(values[::step]))
        formatter = ScalarFormatter()
        formatter.set_scientific(False)
        target.set_major_formatter(formatter)
    else:
        target.set_major_locator(LogLocator(base=10, numticks=6))
    target.set_minor_formatter(NullFormatter())


# -- the check -------------------------------------------------------------------------------


def _curves(ax):
    """Lines of ``ax`` drawn as lines (not markers alone) through at least two finite points."""
    out = []
    for line in ax.get_lines():
        x, y = (np.asarray(v, dtype=float) for v in line.get_data())
        finite = np.isfinite(x) & np.isfinite(y)
        if (line.get_visible() and finite.sum() >= 2
                and line.get_linestyle() not in ("None", "none", "", " ")):
            out.append(line)
    return out


def _data_pixels(ax, samples=12):
    """Points (in pixels) along the visible data of ``ax``: lines densely, scatter points."""
    from matplotlib.collections import LineCollection

    box = ax.get_window_extent()
    pts = []
    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xy = np.column_stack([np.asarray(v, dtype=float) for v in line.get_data()])
        if xy.size == 0:
            continue
        with np.errstate(all="ignore"):
            px = line.get_transform().transform(xy)
        px = px[np.all(np.isfinite(px), axis=1)]
        if line.get_linestyle() not in ("None", "none", "", " ") and len(px) > 1:
            u = np.linspace(0.0, 1.0, samples, endpoint=False)[None, :, None]
            px = (px[:-1, None, :] * (1 - u) + px[1:, None, :] * u).reshape(-1, 2)
        pts.append(px)
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        offsets = np.asarray(coll.get_offsets(), dtype=float)
        if offsets.size and not (offsets == 0).all():
            pts.append(coll.get_offset_transform().transform(offsets))
        if isinstance(coll, LineCollection):  # an ensemble of paths: their vertices
            for seg in coll.get_segments():
                if len(seg):
                    pts.append(coll.get_transform().transform(np.asarray(seg, dtype=float)))
    if not pts:
        return np.empty((0, 2))
    pts = np.concatenate(pts)
    inside = ((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1)
              & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1))
    return pts[inside]


def _tick_overlaps(ax, renderer):
    problems = []
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        boxes = [t.get_window_extent(renderer) for t in axis.get_ticklabels(which="both")
                 if t.get_visible() and t.get_text().strip()]
        # Only labels that were drawn: the locator may place some outside the view.
        view = ax.get_window_extent()
        boxes = [b for b in boxes if (view.x0 - 1 <= (b.x0 + b.x1) / 2 <= view.x1 + 1
                                      if name == "x" else
                                      view.y0 - 1 <= (b.y0 + b.y1) / 2 <= view.y1 + 1)]
        for a, b in combinations(boxes, 2):
            if (min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5
                    and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5):
                problems.append(f"{name} tick labels overlap")
                break
    return problems


def layout_problems(fig) -> list[str]:
    """What makes ``fig`` hard to read, as far as a machine can tell; empty when none.

    Checked in every panel that shows data:

    * no legend (of any panel or of the figure) covers a point of the panel's data,
      lines sampled between their points;
    * tick labels of an axis do not overlap one another;
    * no two curves are drawn alike: each (colour, line style, marker) is used once,
      and curves with legend labels have pairwise distinct colours;
    * no title, axis label or legend is cut off by the edge of the figure.

    Parameters
    ----------
    fig : matplotlib.figure.Figure

    Returns
    -------
    list of str
        One line per problem, naming the panel by its title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_hex
    from matplotlib.text import Text

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    boxes = [leg.get_window_extent(renderer) for leg in legends]
    problems = []
    edge = fig.bbox
    texts = [t for ax in fig.axes if ax.get_visible()
             for t in (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label)]
    texts += [t for t in fig.texts if t is not fig._suptitle]
    texts += [fig._suptitle] if fig._suptitle else []
    for artist in texts + legends:
        if isinstance(artist, Text) and not artist.get_text().strip():
            continue
        box = artist.get_window_extent(renderer)
        if (box.x0 < edge.x0 - 1 or box.x1 > edge.x1 + 1 or box.y0 < edge.y0 - 1
                or box.y1 > edge.y1 + 1):
            what = artist.get_text() if isinstance(artist, Text) else "a legend"
            problems.append(f"{what!r} is cut off by the edge of the figure")
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        name = ax.get_title() or ax.get_ylabel() or "panel"
        pts = _data_pixels(ax)
        for box in boxes:
            covered = ((pts[:, 0] > box.x0) & (pts[:, 0] < box.x1)
                       & (pts[:, 1] > box.y0) & (pts[:, 1] < box.y1))
            if covered.any():
                problems.append(f"{name}: a legend covers {int(covered.sum())} data points")
        problems += [f"{name}: {p}" for p in _tick_overlaps(ax, renderer)]
        curves = _curves(ax)
        looks = [(to_hex(c.get_color(), keep_alpha=False), c.get_linestyle(), c.get_marker())
                 for c in curves]
        if len(set(looks)) < len(looks):
            problems.append(f"{name}: {len(looks) - len(set(looks))} curves drawn alike")
        labelled = [to_hex(c.get_color(), keep_alpha=False) for c in curves
                    if not c.get_label().startswith("_")]
        if len(set(labelled)) < len(labelled):
            problems.append(f"{name}: {len(labelled)} labelled curves share "
                            f"{len(set(labelled))} colours")
    return problems
