"""Claims: one prediction of the theory set against one measurement.

A claim records what the theory predicts, what a study measured, the
measurement's uncertainty (a standard error, a null level or a confidence
half-width; the study's report says which), whether the comparison passed, and
a short string saying how the two were compared (``"<="``, ``"|m - p| <= 0.1"``).
The constructors below compute ``passed`` from the numbers so that a claim can
never be marked as passed by hand.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _encode(value):
    """Floats that JSON cannot hold become the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _decode(value):
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return value


def _number(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"`{name}` must be a real number, got {value!r}") from None
    return float(value)


@dataclass(frozen=True)
class Claim:
    """A prediction compared with a measurement.

    Parameters
    ----------
    name : str
        Short unique name, e.g. ``"TV <= eps (ODE, d=2, eps=0.1)"``.
    predicted : float
        The theory's value (a bound, a limit, an exponent).
    measured : float
        The study's measurement.
    uncertainty : float or None
        Uncertainty of ``measured``; ``None`` when it has none (a closed form).
    passed : bool
        Whether the comparison in ``comparison`` holds.
    comparison : str
        How ``measured`` was compared with ``predicted``.
    detail : str
        One line on what was measured and how.
    study : str
        Name of the study that made the claim (filled in by the runner).
    """

    name: str
    predicted: float
    measured: float
    uncertainty: float | None
    passed: bool
    comparison: str = ""
    detail: str = ""
    study: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("`name` must be a non-empty string")
        object.__setattr__(self, "predicted", _number(self.predicted, "predicted"))
        object.__setattr__(self, "measured", _number(self.measured, "measured"))
        if self.uncertainty is not None:
            object.__setattr__(self, "uncertainty", _number(self.uncertainty, "uncertainty"))
        object.__setattr__(self, "passed", bool(self.passed))

    def to_dict(self) -> dict:
        """JSON-ready dict; non-finite floats are written as strings."""
        return {k: _encode(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Claim:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        if not isinstance(data, dict):
            raise TypeError(f"`data` must be a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"`data` has unknown claim fields {sorted(unknown)}")
        return cls(**{k: _decode(v) for k, v in data.items()})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Claim:
        return cls.from_dict(json.loads(text))


def at_most(name, bound, measured, uncertainty=None, *, detail="") -> Claim:
    """Claim ``measured <= bound`` (a theorem's upper bound)."""
    measured, bound = _number(measured, "measured"), _number(bound, "bound")
    return Claim(name, bound, measured, uncertainty, measured <= bound, "<=", detail)


def at_least(name, bound, measured, uncertainty=None, *, detail="") -> Claim:
    """Claim ``measured >= bound`` (a limit approached from below, a p-value floor)."""
    measured, bound = _number(measured, "measured"), _number(bound, "bound")
    return Claim(name, bound, measured, uncertainty, measured >= bound, ">=", detail)


def within(name, predicted, measured, band, uncertainty=None, *, detail="") -> Claim:
    """Claim ``|measured - predicted| <= band``."""
    measured, predicted = _number(measured, "measured"), _number(predicted, "predicted")
    band = _number(band, "band")
    if not band >= 0:
        raise ValueError(f"`band` must be >= 0, got {band}")
    passed = abs(measured - predicted) <= band
    return Claim(name, predicted, measured, uncertainty, passed, f"|m - p| <= {band:.3g}", detail)
