"""Two-layer univariate ReLU nets trained by gradient descent: curvature and function space.

Section 3.1 of the seed essay: gradient descent at a large constant step ``eta``
can only settle at minima with ``lambda_max <= 2 / eta``, and there the network
function is smooth in a data-weighted sense (Mulayoff, Michaeli & Soudry 2021;
Qiao, Zhang, Singh, Soudry & Wang 2024; Liang, Qiao, Wang & Parhi 2025).

* :mod:`~numdiff.nets.relu`: the model ``f(x) = sum_j w2_j relu(w1_j x + b1_j) + b2``,
  its flat parameter layout, the loss and its gradient;
* :mod:`~numdiff.nets.initialisation`: standard and stable starting points;
* :mod:`~numdiff.nets.training`: full-batch GD (a Numba loop), sweeps over
  step sizes and seeds;
* :mod:`~numdiff.nets.curvature`: exact Hessian-vector products, the dense
  Hessian, ``lambda_max`` by Lanczos;
* :mod:`~numdiff.nets.function_space`: knots, ``f''`` as point masses, the
  weight ``g``, the weighted total variation and the papers' bounds.
"""

from numdiff.nets.curvature import hessian, hessian_operator, hvp, lambda_max
from numdiff.nets.function_space import (
    PointMasses,
    flatness_tv_bound,
    knots,
    second_derivative,
    stable_tv_bound,
    weight_function,
    weighted_tv,
)
from numdiff.nets.initialisation import init_stable, init_standard
from numdiff.nets.relu import Params, loss, loss_and_gradient, n_params, pack, predict, unpack
from numdiff.nets.training import GDResult, gd_sweep, train_gd

__all__ = [
    "GDResult",
    "Params",
    "PointMasses",
    "flatness_tv_bound",
    "gd_sweep",
    "hessian",
    "hessian_operator",
    "hvp",
    "init_stable",
    "init_standard",
    "knots",
    "lambda_max",
    "loss",
    "loss_and_gradient",
    "n_params",
    "pack",
    "predict",
    "second_derivative",
    "stable_tv_bound",
    "train_gd",
    "unpack",
    "weight_function",
    "weighted_tv",
]
