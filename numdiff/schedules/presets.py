"""The preset schedules in closed form: ``OU``, ``VPLinear``, ``VPCosine``, ``VE``.

Each overrides :class:`~numdiff.schedules.base.Schedule`'s quadrature with formulas
written to avoid cancellation near ``t = 0`` (``expm1``, ``log1p``).
"""

from __future__ import annotations

import numpy as np

from numdiff.schedules.base import Schedule, _as_parameter


class _ClosedForm(Schedule):
    """A preset: closed forms for ``b, a^2, mu, sigma2`` (and ``lam_inv``)."""

    def __init__(self, t_max):
        self.t_max = float(t_max)

    def _b_at(self, t):
        return self._b_closed(t)

    def _a2_at(self, t):
        return self._a2_closed(t)

    def _mu(self, t):
        return self._mu_closed(t)

    def _sigma2(self, t):
        return self._sigma2_closed(t)

    def _mu_sigma2(self, t):
        return self._mu_closed(t), self._sigma2_closed(t)


class _VariancePreserving(_ClosedForm):
    """``a_t^2 = 2 b_t``: then ``sigma2_t = 1 - alpha_t^2 = -expm1(-2 mu_t)``."""

    def _a2_closed(self, t):
        return 2.0 * self._b_closed(t)

    def _sigma2_closed(self, t):
        return -np.expm1(-2.0 * self._mu_closed(t))

    def _mu_of_lam(self, lam):
        # alpha^2 / sigma^2 = e^{2 lam}  with  sigma^2 = 1 - alpha^2.
        return 0.5 * np.logaddexp(0.0, -2.0 * lam)  # log1p(e^{-2 lam}), no overflow


class OU(_VariancePreserving):
    """Ornstein-Uhlenbeck process ``b = 1``, ``a = sqrt(2)`` on ``[0, inf)``.

    ``alpha_t = e^{-t}``, ``sigma2_t = 1 - e^{-2t}``; the stationary law is
    ``N(0, I)``. This is the process of Theorem 3 of Li, Chen & Li (2024).
    """

    def __init__(self):
        super().__init__(np.inf)

    def __repr__(self):
        return "OU()"

    def _b_closed(self, t):
        return np.ones_like(t)

    def _mu_closed(self, t):
        return t.copy()

    def _lam_inv(self, lam):
        return self._mu_of_lam(lam)


class VPLinear(_VariancePreserving):
    """Variance-preserving SDE with linear ``beta_t`` on ``[0, 1]``.

    ``beta_t = beta_min + t (beta_max - beta_min)``, ``b = beta / 2``,
    ``a = sqrt(beta)`` (Song et al. 2021).

    Parameters
    ----------
    beta_min : float, optional
        ``beta_0 >= 0``; default 0.1.
    beta_max : float, optional
        ``beta_1 >= beta_min``, ``> 0``; default 20.
    """

    def __init__(self, beta_min=0.1, beta_max=20.0):
        beta_min = _as_parameter(beta_min, "beta_min")
        beta_max = _as_parameter(beta_max, "beta_max")
        if not (np.isfinite(beta_min) and beta_min >= 0):
            raise ValueError(f"beta_min must be finite and >= 0; got {beta_min!r}")
        if not (np.isfinite(beta_max) and beta_max >= beta_min and beta_max > 0):
            raise ValueError(f"beta_max must be finite, > 0 and >= beta_min; got {beta_max!r}")
        self.beta_min, self.beta_max = beta_min, beta_max
        super().__init__(1.0)

    def __repr__(self):
        return f"VPLinear(beta_min={self.beta_min}, beta_max={self.beta_max})"

    def _b_closed(self, t):
        return 0.5 * (self.beta_min + t * (self.beta_max - self.beta_min))

    def _mu_closed(self, t):
        return 0.5 * t * (self.beta_min + 0.5 * t * (self.beta_max - self.beta_min))

    def _lam_inv(self, lam):
        mu = self._mu_of_lam(lam)
        half_slope = 0.25 * (self.beta_max - self.beta_min)
        half_min = 0.5 * self.beta_min
        # Root of half_slope t^2 + half_min t - mu = 0, in the form without cancellation.
        return 2.0 * mu / (half_min + np.sqrt(half_min**2 + 4.0 * half_slope * mu))


class VPCosine(_VariancePreserving):
    """Cosine schedule of Nichol & Dhariwal (2021) as a VP SDE on ``[0, t_max]``.

    ``alpha_t = cos(theta_t) / cos(theta_0)``, ``theta_t = (pi/2)(t + s)/(1 + s)``.
    ``alpha`` vanishes at ``t = 1``, so the domain stops at ``t_max = 0.999``.

    Parameters
    ----------
    s : float, optional
        Offset ``s > 0`` of the angle; default 0.008.
    t_max : float, optional
        End of the domain, in ``(0, 1)``; default 0.999.
    """

    def __init__(self, s=0.008, t_max=0.999):
        s, t_max = _as_parameter(s, "s"), _as_parameter(t_max, "t_max")
        if not (np.isfinite(s) and s > 0):
            raise ValueError(f"s must be finite and > 0; got {s!r}")
        if not 0 < t_max < 1:
            raise ValueError(f"t_max must be in (0, 1); got {t_max!r}")
        self.s = s
        super().__init__(t_max)

    def __repr__(self):
        return f"VPCosine(s={self.s}, t_max={self.t_max})"

    def _theta(self, t):
        return 0.5 * np.pi * (t + self.s) / (1.0 + self.s)

    def _b_closed(self, t):
        return 0.5 * np.pi / (1.0 + self.s) * np.tan(self._theta(t))

    def _mu_closed(self, t):
        return np.log(np.cos(self._theta(0.0))) - np.log(np.cos(self._theta(t)))

    def _sigma2_closed(self, t):
        # 1 - cos^2(th)/cos^2(th0) = sin(th - th0) sin(th + th0) / cos^2(th0): no cancellation.
        # th - th0 is formed directly from t, not as a difference.
        th0 = self._theta(0.0)
        return np.sin(self._half_pi_scaled(t)) * np.sin(self._theta(t) + th0) / np.cos(th0) ** 2

    def _half_pi_scaled(self, t):
        return 0.5 * np.pi * t / (1.0 + self.s)

    def _lam_inv(self, lam):
        # With phi = theta_t - theta_0 and c = cos^2(theta_0) sigma2 (sigma2 =
        # sigmoid(-2 lam)), sin(phi) sin(phi + 2 theta_0) = c is a quadratic in
        # u = tan(phi); its root is taken in the form without cancellation so
        # that tiny t keep full relative accuracy (arccos would lose it).
        th0 = self._theta(0.0)
        c = np.cos(th0) ** 2 * np.exp(-np.logaddexp(0.0, 2.0 * lam))
        quad_a, quad_b = np.cos(2.0 * th0) - c, np.sin(2.0 * th0)
        u = 2.0 * c / (quad_b + np.sqrt(np.maximum(quad_b**2 + 4.0 * quad_a * c, 0.0)))
        return np.arctan(u) * (1.0 + self.s) / (0.5 * np.pi)


class VE(_ClosedForm):
    """Variance-exploding SDE (Song et al. 2021) on ``[0, 1]``.

    ``b = 0``, ``sigma(t) = sigma_min (sigma_max / sigma_min)^t``,
    ``a_t^2 = d sigma(t)^2 / dt``, hence ``sigma2_t = sigma(t)^2 - sigma_min^2``.

    Parameters
    ----------
    sigma_min : float, optional
        ``sigma(0) > 0``; default 0.01.
    sigma_max : float, optional
        ``sigma(1) > sigma_min``; default 50.
    """

    def __init__(self, sigma_min=0.01, sigma_max=50.0):
        sigma_min = _as_parameter(sigma_min, "sigma_min")
        sigma_max = _as_parameter(sigma_max, "sigma_max")
        if not (np.isfinite(sigma_min) and sigma_min > 0):
            raise ValueError(f"sigma_min must be finite and > 0; got {sigma_min!r}")
        if not (np.isfinite(sigma_max) and sigma_max > sigma_min):
            raise ValueError(f"sigma_max must be finite and > sigma_min; got {sigma_max!r}")
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self._log_ratio = np.log(sigma_max / sigma_min)
        super().__init__(1.0)

    def __repr__(self):
        return f"VE(sigma_min={self.sigma_min}, sigma_max={self.sigma_max})"

    def _b_closed(self, t):
        return np.zeros_like(t)

    def _a2_closed(self, t):
        return 2.0 * self._log_ratio * np.exp(2.0 * (np.log(self.sigma_min) + self._log_ratio * t))

    def _mu_closed(self, t):
        return np.zeros_like(t)

    def _sigma2_closed(self, t):
        # sigma(t)^2 (1 - e^{-2 L t}): no overflow of sigma_min^2 e^{2 L t} - sigma_min^2
        # for a wide range (sigma_max = 1e150), no cancellation near t = 0.
        growth = 2.0 * self._log_ratio * t
        return np.exp(2.0 * np.log(self.sigma_min) + growth) * -np.expm1(-growth)

    def _lam_inv(self, lam):
        # log1p(e^{-2 lam} / sigma_min^2), formed without overflow.
        log_ratio2 = np.logaddexp(0.0, -2.0 * (lam + np.log(self.sigma_min)))
        return log_ratio2 / (2.0 * self._log_ratio)
