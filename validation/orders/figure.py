"""The orders as a table for the terminal and as a log-log figure for the report."""

from __future__ import annotations

import numpy as np

from ..plotting import DPI, PANEL, figure_legend, key_handle, log_axis, new_figure

HEADER = ("solver", "process", "schedule", "check", "predicted", "measured", "band", "pass")


def format_table(rows):
    """Plain-text table of the rows (columns of :data:`HEADER`)."""
    cells = [
        (r["solver"], r["process"], r["schedule"], r["check"], f"{r['predicted']:g}",
         f"{r['measured']:.3f}", f"+-{r['band']:g}", "PASS" if r["passed"] else "FAIL")
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADER)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)


SOLVERS = ("euler", "heun", "ddim", "dpmpp_2m", "exp_em")
#: One line style per schedule; colours say the solver (a hue) and the schedule (its shade).
SCHEDULE_STYLES = {"OU": "-", "VPLinear": "--", "custom": ":"}
MARKERS = {"euler": "o", "heun": "s", "ddim": "^", "dpmpp_2m": "D", "exp_em": "v"}
NOISE_FLOOR = {"color": "black", "ls": "-.", "lw": 1.0, "label": "3 Monte Carlo s.e. (noise floor)"}


def _color(solver, schedule):
    """Hue by solver, shade by schedule: the 20 colours of tab20c in groups of four."""
    import matplotlib as mpl

    hue = SOLVERS.index(solver) if solver in SOLVERS else len(SOLVERS) - 1
    shade = list(SCHEDULE_STYLES).index(schedule) if schedule in SCHEDULE_STYLES else 3
    return mpl.colormaps["tab20c"](4 * hue + shade)


def plot_orders(rows, path=None):
    """Log-log error-versus-steps figure, one panel per check, one legend below.

    Parameters
    ----------
    rows : list of dict
        As returned by :func:`validation.orders.measure_orders`.
    path : str or Path, optional
        Output file (format from the suffix); without it the figure is returned.

    Returns
    -------
    Path or Figure
        ``path`` when given, else the figure.
    """
    checks = list(dict.fromkeys(r["check"] for r in rows))
    ncols = min(3, len(checks))
    nrows = -(-len(checks) // ncols)
    fig, axes = new_figure(nrows, ncols, size=PANEL)
    axes = axes.ravel()
    for ax, check in zip(axes, checks):
        steps_run = []
        for r in (r for r in rows if r["check"] == check):
            steps, errors = np.array(r["steps"]), np.array(r["errors"])
            steps_run.extend(steps.tolist())
            ax.plot(steps, errors, color=_color(r["solver"], r["schedule"]),
                    ls=SCHEDULE_STYLES.get(r["schedule"], "-."), marker=MARKERS.get(r["solver"]),
                    ms=4, lw=1.2, label=f"{r['solver']} / {r['schedule']}")
            if "standard_errors" in r:  # Monte Carlo rows: below 3 s.e. an error is noise
                ax.plot(steps, 3.0 * np.array(r["standard_errors"]), **NOISE_FLOOR)
        log_axis(ax, "x", steps_run)
        log_axis(ax, "y")
        ax.set(title=check, xlabel="steps", ylabel="error")
    for ax in axes[len(checks):]:
        ax.set_visible(False)
    handles, labels = {}, []
    for ax in axes[: len(checks)]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in handles:
                handles[label] = h
                labels.append(label)
    # One legend column per solver, one row per schedule; the noise floor in a last column.
    # Missing combinations are blank entries, so that every column lines up.
    columns = [[f"{solver} / {schedule}" for schedule in SCHEDULE_STYLES] for solver in SOLVERS]
    columns.append([label for label in labels if " / " not in label])
    columns = [c for c in columns if any(label in handles for label in c)]
    blank = key_handle(alpha=0.0)
    entries = [(handles.get(label, blank), label if label in handles else "")
               for column in columns
               for label in column + [""] * (len(SCHEDULE_STYLES) - len(column))]
    figure_legend(fig, [h for h, _ in entries], [label for _, label in entries],
                  ncols=len(columns))
    if path is None:
        return fig
    fig.savefig(path, dpi=DPI)
    return path

