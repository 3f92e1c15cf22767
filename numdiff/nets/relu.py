"""The two-layer univariate ReLU net, its square loss and the loss gradient.

``f(x) = sum_{j<k} w2_j relu(w1_j x + b1_j) + b2`` with ``k`` hidden neurons: the
model of Qiao, Zhang, Singh, Soudry & Wang (2024), "Stable minima cannot overfit
in univariate ReLU networks", Section 2, and of Mulayoff, Michaeli & Soudry
(2021), "The implicit bias of minima stability: a view from function space".

Parameter layout
----------------
One flat float64 vector of length ``3 k + 1``::

    theta = [w1_0 .. w1_{k-1},  b1_0 .. b1_{k-1},  w2_0 .. w2_{k-1},  b2]

:class:`Params` is a named view of its four blocks (:func:`unpack`), and
:func:`pack` builds the flat vector from them.

Loss: ``L(theta) = (1 / (2 n)) sum_i (f(x_i) - y_i)^2`` over the data
``(x_i, y_i)``, ``i < n``. The ReLU derivative at 0 is taken as 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from numdiff._checks import as_real_array
from numdiff.nets import _kernels
from numdiff.nets._checks import concat_blocks, data, flat_params, vector, width_of

__all__ = ["Params", "loss", "loss_and_gradient", "n_params", "pack", "predict", "unpack"]


class Params(NamedTuple):
    """Named view of a flat parameter vector (no copy when made by :func:`unpack`).

    Parameters
    ----------
    w1 : ndarray, shape (k,)
        Input weights.
    b1 : ndarray, shape (k,)
        Hidden biases.
    w2 : ndarray, shape (k,)
        Output weights.
    b2 : float
        Output bias.
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: float

    @property
    def k(self):
        """Number of hidden neurons."""
        return self.w1.shape[0]


def n_params(k):
    """Length of the flat parameter vector of a net with ``k`` neurons.

    Parameters
    ----------
    k : int

    Returns
    -------
    int
        ``3 k + 1``.
    """
    return 3 * int(k) + 1


def pack(w1, b1, w2, b2):
    """The flat parameter vector ``[w1, b1, w2, b2]``.

    Parameters
    ----------
    w1, b1, w2 : array_like, shape (k,)
    b2 : float

    Returns
    -------
    ndarray, shape (3 k + 1,)
    """
    return flat_params(concat_blocks(w1, b1, w2, b2))


def unpack(params):
    """:class:`Params` view of a flat parameter vector.

    Parameters
    ----------
    params : array_like, shape (3 k + 1,)

    Returns
    -------
    Params
        ``w1, b1, w2`` are views into ``params`` when it is a float64 array.
    """
    theta = flat_params(params)
    k = width_of(theta)
    return Params(theta[:k], theta[k:2 * k], theta[2 * k:3 * k], float(theta[3 * k]))


def predict(params, x):
    """The network function ``f(x)``.

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params
    x : array_like, shape (m,)
        Inputs; any finite reals.

    Returns
    -------
    ndarray, shape (m,)
    """
    theta = flat_params(params)
    x = as_real_array(x, "x")
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D; got shape {x.shape}")
    out = np.empty(x.shape[0])
    if x.shape[0]:
        x = vector(x, "x")
        _kernels.predict_into(theta, width_of(theta), x, out)
    return out


def loss(params, x, y):
    """The training loss ``L = sum_i (f(x_i) - y_i)^2 / (2 n)``.

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params
    x, y : array_like, shape (n,)
        Training inputs and labels.

    Returns
    -------
    float
    """
    theta = flat_params(params)
    x, y = data(x, y)
    return float(_kernels.residual_loss(theta, width_of(theta), x, y, np.empty(x.shape[0])))


def loss_and_gradient(params, x, y):
    """The loss and its exact gradient (the same kernel as the GD loop).

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params
    x, y : array_like, shape (n,)

    Returns
    -------
    loss : float
    grad : ndarray, shape (3 k + 1,)
        ``dL/dw1_j = (1/n) sum_i r_i w2_j 1[z_ij > 0] x_i``,
        ``dL/db1_j = (1/n) sum_i r_i w2_j 1[z_ij > 0]``,
        ``dL/dw2_j = (1/n) sum_i r_i relu(z_ij)``, ``dL/db2 = (1/n) sum_i r_i``,
        with residuals ``r_i = f(x_i) - y_i`` and ``z_ij = w1_j x_i + b1_j``.
    """
    theta = flat_params(params)
    x, y = data(x, y)
    k = width_of(theta)
    r = np.empty(x.shape[0])
    value = _kernels.residual_loss(theta, k, x, y, r)
    grad = np.empty_like(theta)
    _kernels.gradient_into(theta, k, x, r, grad)
    return float(value), grad
