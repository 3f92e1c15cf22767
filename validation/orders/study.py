"""Study 5: measured convergence orders of the integrators.

Wraps ``validation.orders``: errors on nested grids against closed-form flows
(also on grids whose step ratios alternate 3 and 1/3), against the exact
solution of the reverse SDE on the same Brownian path (one data point and
Gaussian data), against a much finer solution on the same path (a finite
dataset), or against the exact mixture moments, and the fitted log-log slope
of each against the number of steps. Each row is one solver, process,
schedule and check, with the order the solver declares, the measured slope and
the band it must fall in; an order error as large as the band is the smallest
the claim detects. See that module for the set-up of each check.
"""

from __future__ import annotations

import dataclasses

from ..claims import within
from ..plotting import save_figure
from ..report import markdown_table
from ..study import Study, Summary
from .figure import plot_orders
from .measure import measure_orders

COLUMNS = ("solver", "process", "schedule", "check", "predicted", "measured", "band", "passed")


def orders_cell(config, seed):
    """All order measurements (their seeds are fixed inside :mod:`validation.orders.measure`)."""
    return measure_orders(bool(config["quick"]))


def _claim(row):
    claim = within(
        f"order {row['solver']} {row['process']} {row['schedule']} ({row['check']})",
        row["predicted"], row["measured"], row["band"],
        detail=f"log-log slope of the error over steps {row['steps']}",
    )
    if claim.passed and not row["passed"]:
        # validation.orders also fails a row whose errors are not resolved above
        # the Monte Carlo noise on enough levels; the claim keeps that verdict.
        claim = dataclasses.replace(
            claim, passed=False, detail=claim.detail + "; too few levels above the noise")
    return claim


def summarise(cell_results, config, outdir):
    rows = cell_results[0].result
    path = save_figure(plot_orders(rows), outdir, "orders")
    table = markdown_table(COLUMNS, [[row[k] for k in COLUMNS] for row in rows])
    return Summary([_claim(row) for row in rows], [path], [table], captions=CAPTIONS)


#: Caption of the figure in the report.
CAPTIONS = {"orders": (
    "Error against the number of steps (log-log) for every check (one panel each), solver "
    "(hue and marker) and schedule (shade and line style); the fitted slopes are the measured "
    "orders of the table. Each slope must lie in its band around the solver's declared order "
    "(the `order ...` claims); in the Monte Carlo panels the dash-dotted line is the noise "
    "floor below which a level is left out of the fit.")}


STUDY = Study(
    name="orders",
    title="Integrator convergence orders",
    description=__doc__.split("\n", 2)[2],
    cells=lambda config: [("measure orders", orders_cell, {"quick": config["quick"]})],
    summarise=summarise,
    default={"seed": 3105, "quick": False},
    quick={"seed": 3105, "quick": True},
)
