"""Score-matching objectives: denoising, implicit (Hyvarinen) and Fisher divergence.

For the forward process ``X_t = alpha_t X_0 + sigma_t Z`` (``Z ~ N(0, I_d)``) and
a dataset ``x_1..x_N``, the seed essay's objectives for a score model ``s(t, x)``
are (its section 1.2 and eq. (9)):

* **Denoising score matching** at a fixed time ``t``: the conditional score is
  ``s(t, z | x_k) = -(z - alpha_t x_k) / sigma_t^2``, which at
  ``z = alpha_t x_k + sigma_t xi`` equals ``-xi / sigma_t``, so

      L_t(s) = (1/N) sum_k E_xi |s(t, alpha_t x_k + sigma_t xi) + xi / sigma_t|^2 .

  This is the normalisation of eq. (9) and of the seed's ``l_hat(theta)``
  (whose displayed ``|xi / sigma - s|^2`` has a sign slip: the target is
  ``-xi / sigma``, as in the line above it). Its minimiser over all ``s`` is
  the empirical optimal score of eq. (10), :class:`numdiff.EmpiricalScore`,
  and ``L_t(s) = L_t(s_hat) + E_{p_t}|s - s_hat|^2`` with ``p_t`` the diffused
  empirical law; the optimum is ``L_t(s_hat) = d / sigma_t^2 - I(p_t)``, with
  ``I`` the Fisher information (Theorem 2; ``theory.score_matching``).
  The time-weighted form draws ``tau ~ rho`` (``t_sampler``) and averages
  ``w(tau) |s(tau, alpha_tau x_k + sigma_tau xi) + xi / sigma_tau|^2``, an
  unbiased estimate of ``E_{tau ~ rho}[w(tau) L_tau(s)]``; with ``rho`` uniform
  on ``[0, T]`` and ``w = T w~`` that is ``int_0^T w~(t) L_t(s) dt``, and with
  ``w = 1`` it is the seed's ``l_hat``.
* **Implicit (Hyvarinen) score matching**, eq. (8): ``E[|s|^2 + 2 div s]`` over
  given samples; by Theorem 1 it differs from the Fisher divergence to the
  samples' law by that law's Fisher information, a constant.
* **Fisher divergence** to a reference score: ``E|s - s_ref|^2``.

Every estimate is a :class:`MonteCarloEstimate` holding its per-sample terms, so
two models evaluated on the same random numbers (the same ``rng`` seed, or the
same ``noise``) can be compared by :meth:`MonteCarloEstimate.minus`, whose
standard error is that of the paired differences (common random numbers).

The divergence is the model's own ``divergence(t, x)`` when it has one (exact),
else a Hutchinson estimate ``E_v[v . J v]`` with Rademacher probes ``v`` and
central differences of the score for ``J v``, with its standard error
(:func:`hutchinson_divergence`).
"""

from numdiff.matching.estimates import DivergenceEstimate, MonteCarloEstimate
from numdiff.matching.hutchinson import divergence, hutchinson_divergence
from numdiff.matching.objectives import dsm_loss, fisher_divergence, implicit_loss

__all__ = [
    "DivergenceEstimate",
    "MonteCarloEstimate",
    "divergence",
    "dsm_loss",
    "fisher_divergence",
    "hutchinson_divergence",
    "implicit_loss",
]

# Public under the name users import them by (repr, docs, pickles).
for _obj in (DivergenceEstimate, MonteCarloEstimate, divergence, dsm_loss, fisher_divergence,
             hutchinson_divergence, implicit_loss):
    _obj.__module__ = __name__
del _obj
