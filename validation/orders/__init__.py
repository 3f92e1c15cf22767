"""Measured convergence orders of numdiff's solvers.

Every order is a fitted log-log slope of an error against the number of steps
on nested grids, compared with the order the solver declares
(``numdiff.solvers``), inside a stated band:

* **ODE** (``check = "ode N=1"``, ``"ode gauss"``): the probability-flow ODE
  against the closed-form flow of ``theory.flows.gaussian_pf_flow``, for one
  data point (the real :class:`numdiff.EmpiricalScore` with ``N = 1``) and for
  Gaussian data ``N(mu, diag s^2)`` (:class:`GaussianScore`). The exponential
  solvers are exact for ``N = 1`` (tests check that to 1e-10), so they are
  measured on Gaussian data only. Grid uniform in ``lambda``, ``delta = 1e-3``:
  on it the error is in its asymptotic regime from about 32 steps, whereas a
  grid uniform in ``t`` needs ``h << delta`` first (the ``1 / t`` stiffness).
  Error: max over 32 starting points. Band +-0.25.
* **ODE, varying step ratio** (``"ode gauss r=3"``): the exponential solvers
  on Gaussian data against the closed-form flow, on a grid whose steps in
  ``lambda`` alternate between ``h`` and ``3 h``. A uniform-``lambda`` grid has
  step ratio 1, where DPM-Solver++(2M)'s history weight is never exercised: a
  weight that ignores the ratio (``1/2`` for ``h / (2 h_prev)``) passes there
  and drops to order 1 here. (Swapping ``h / h_prev`` for its inverse stays
  second order on every grid -- the leading local errors telescope -- and is
  caught by the recursion check of ``validation.studies.exact_reference``.)
  Band +-0.25.
* **SDE strong, exact reference** (``"strong exact N=1"``, ``"strong exact
  gauss"``): one data point and Gaussian data, 256 paths, against the *exact*
  solution of the (linear) reverse SDE on the same Brownian path. Per step,
  ``Y_s = m(Y_t) + I`` with ``m`` and ``Var I`` the exact transition
  (``theory.flows.gaussian_reverse_transition``); ``I = int A(s, r) a_r dW_r``
  (``A(s, r) = alpha_r V_s / (alpha_s V_r)``, ``V = alpha^2 var + sigma^2``)
  is drawn jointly with the step's increment ``dW = sqrt(h) z``: its
  regression ``(int A a dr / h) dW`` (Gauss-Legendre, 16 nodes) plus an
  independent normal with the remaining variance. Unlike the self-referenced
  check below, a scheme converging to the wrong law fails it. Band +-0.3.
* **SDE strong** (``"strong"``): a finite dataset (``N = 5``, ``d = 2``), 128
  paths from fixed starting points, against the same solver on a geometric
  grid 16 times finer (8 in the quick run) driven by the same Brownian path
  (coarse grids are ``fine[::m]``, their increments sums of the fine ones). Error:
  root-mean-square distance. Band +-0.3. ``delta = 0.25``: at ``delta = 0.1``
  the few paths that end near the boundary between two data points' basins
  (where the score's Lipschitz constant ``~ alpha^2 |x_j - x_k|^2 / sigma^4``
  is largest) are still pre-asymptotic at 128 steps and dominate the RMS,
  while the median path already converges at order 1.
* **SDE weak, Monte Carlo** (``"weak E[X]"``, ``"weak E|X|^2"``):
  Euler-Maruyama started from the exact ``p_T`` (``init="exact"``) on a finite
  dataset; ``E[u . X]`` (``u`` the unit vector along the exact mean) and
  ``E|X|^2`` at ``delta`` against the exact mixture ``p_delta``
  (``theory.mixture``). Only levels whose error exceeds 3 Monte Carlo standard
  errors enter the fit. Band +-0.3.
* **SDE weak, exact moments** (``"weak mean"``, ``"weak var"``, Gaussian data):
  for Gaussian data every SDE step is affine in ``(x, z)``, so the mean and
  variance of the numerical solution propagate exactly, without Monte Carlo
  noise; compared with ``theory.flows.gaussian_marginal`` at ``delta``.
  ``exp_em`` reproduces the mean exactly (no order to fit; tests check it).
  Band +-0.25.

``python -m validation.orders [--quick] [--plot PATH]`` prints the table. The
package holds the reference solutions (:mod:`.references`), the measurements
(:mod:`.measure`), the table and figure (:mod:`.figure`) and the study of the
report that turns the rows into claims (:mod:`.study`).
"""

from .figure import HEADER, format_table, plot_orders
from .measure import (
    fit_order,
    measure_orders,
    ode_orders,
    ode_orders_ratio,
    strong_orders,
    strong_orders_exact,
    weak_orders_gaussian,
    weak_orders_mc,
)
from .references import (
    MEAN,
    SCHEDULES,
    VAR,
    GaussianScore,
    custom_schedule,
    exact_reverse_path,
    nested_noise,
    ratio_grids,
)

__all__ = [
    "HEADER", "MEAN", "SCHEDULES", "VAR", "GaussianScore", "custom_schedule",
    "exact_reverse_path", "fit_order", "format_table", "measure_orders", "nested_noise",
    "ode_orders", "ode_orders_ratio", "plot_orders", "ratio_grids", "strong_orders",
    "strong_orders_exact", "weak_orders_gaussian", "weak_orders_mc",
]
