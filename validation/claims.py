"""Claims: one prediction of the theory set against one measurement.

A claim records what the theory predicts, what a study measured, the
measurement's uncertainty (a standard error, a null level or a confidence
half-width; the study's report says which), whether the comparison passed, and
a short string saying how the two were compared (``"<="``, ``"|m - p| <= 0.1"``).
The constructors below compute ``passed`` from the numbers so that a claim can
never be marked as passed by hand.

Each claim also says what *kind* of statement it is (a theorem about numdiff's
output, a self-check of ``theory/`` that never runs numdiff's sampler, or a
negative control that must violate its bound), the smallest bias of the
measurement it would detect and its *headroom* (how far the measurement is from
changing the verdict), so that the report shows how sharp each test is. For a
one-sided bound without a designed sensitivity the two coincide, and the report
prints the number once, as headroom.

A :class:`Finding` is the other kind of result: a statistic measured for a
conjecture, with its confidence interval and the direction the interval points
in. It has no ``passed``: a conjecture is reported whichever way the data fall.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

#: The kinds of claim, see :class:`Claim`.
KINDS = ("theorem", "theory-check", "negative-control")


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
    kind : {"theorem", "theory-check", "negative-control"}
        ``"theorem"``: a claim about numdiff's output. ``"theory-check"``: a
        claim that never runs numdiff's sampler (a self-check of ``theory/``).
        ``"negative-control"``: a setting that must violate the bound;
        ``passed`` is True when the violation *is* observed.
    detectable : float or None
        The smallest bias of ``measured`` (in its units) that the claim would
        detect: a systematic error this large makes the claim fail at least
        half of the time. For a two-sided band set from the standard error it
        is the band; for a bound on a z-score the bound (4.5 standard errors);
        for a one-sided bound without a designed sensitivity, the distance from
        the measurement to the bound, i.e. its headroom (then
        ``detectable_is_headroom``). ``None`` when the study does not state it.
    detectable_is_headroom : bool
        Whether ``detectable`` is only the measurement's distance to a one-sided
        bound (filled in by :func:`at_most`, :func:`at_least`, :func:`violates`)
        rather than a sensitivity the study designed; the report then prints it
        as headroom, not as a detectable bias.
    headroom : float or None
        How far ``measured`` may move before the verdict changes: ``bound -
        measured`` for ``<=``, ``measured - bound`` for ``>=`` and ``>``,
        ``band - |measured - predicted|`` for a band; negative once it has
        changed. Set by the constructors below; ``None`` when not finite.
    """

    name: str
    predicted: float
    measured: float
    uncertainty: float | None
    passed: bool
    comparison: str = ""
    detail: str = ""
    study: str = ""
    kind: str = "theorem"
    detectable: float | None = None
    detectable_is_headroom: bool = False
    headroom: float | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("`name` must be a non-empty string")
        object.__setattr__(self, "predicted", _number(self.predicted, "predicted"))
        object.__setattr__(self, "measured", _number(self.measured, "measured"))
        if self.uncertainty is not None:
            object.__setattr__(self, "uncertainty", _number(self.uncertainty, "uncertainty"))
        object.__setattr__(self, "passed", bool(self.passed))
        if not isinstance(self.kind, str) or self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}, got {self.kind!r}")
        for key in ("detectable", "headroom"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, _number(getattr(self, key), key))

    def to_dict(self) -> dict:
        """JSON-ready dict; non-finite floats are written as strings."""
        return {k: _encode(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Claim:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them.

        Dicts written before ``kind``, ``detectable`` and ``headroom`` existed load
        with their defaults (``"theorem"``, ``None``, ``None``).
        """
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


def _headroom(gap):
    """Distance to the verdict's change; ``None`` if not finite."""
    return gap if math.isfinite(gap) else None


def _one_sided(name, bound, measured, uncertainty, passed, comparison, detail, kind,
               detectable, gap):
    """A one-sided claim; without a designed ``detectable``, its headroom stands in."""
    from_margin = detectable is None and math.isfinite(gap)
    if from_margin:
        detectable = max(gap, 0.0)
    return Claim(name, bound, measured, uncertainty, passed, comparison, detail, kind=kind,
                 detectable=detectable, detectable_is_headroom=from_margin,
                 headroom=_headroom(gap))


def at_most(name, bound, measured, uncertainty=None, *, detail="", kind="theorem",
            detectable=None) -> Claim:
    """Claim ``measured <= bound`` (a theorem's upper bound).

    Headroom ``bound - measured``; ``detectable`` defaults to the headroom (at least 0).
    """
    measured, bound = _number(measured, "measured"), _number(bound, "bound")
    return _one_sided(name, bound, measured, uncertainty, measured <= bound, "<=", detail, kind,
                      detectable, bound - measured)


def at_least(name, bound, measured, uncertainty=None, *, detail="", kind="theorem",
             detectable=None) -> Claim:
    """Claim ``measured >= bound`` (a limit approached from below, a p-value floor).

    Headroom ``measured - bound``; ``detectable`` defaults to the headroom (at least 0).
    """
    measured, bound = _number(measured, "measured"), _number(bound, "bound")
    return _one_sided(name, bound, measured, uncertainty, measured >= bound, ">=", detail, kind,
                      detectable, measured - bound)


def within(name, predicted, measured, band, uncertainty=None, *, detail="", kind="theorem",
           detectable=None) -> Claim:
    """Claim ``|measured - predicted| <= band``.

    ``detectable`` defaults to ``band``: a bias of the band's size puts the
    expected measurement on the edge, where it fails half of the time. Headroom
    ``band - |measured - predicted|``.
    """
    measured, predicted = _number(measured, "measured"), _number(predicted, "predicted")
    band = _number(band, "band")
    if not band >= 0:
        raise ValueError(f"`band` must be >= 0, got {band}")
    passed = abs(measured - predicted) <= band
    return Claim(name, predicted, measured, uncertainty, passed, f"|m - p| <= {band:.3g}", detail,
                 kind=kind, detectable=band if detectable is None else detectable,
                 headroom=_headroom(band - abs(measured - predicted)))


def violates(name, bound, measured, uncertainty=None, *, detail="", detectable=None) -> Claim:
    """Negative control: a setting that must violate ``measured <= bound``.

    ``passed`` is True when the violation is observed (``measured > bound``):
    the control shows that the comparison it shadows has the power to fail.
    Headroom ``measured - bound``: the loss of power that would make the control
    miss the violation; ``detectable`` defaults to it (at least 0).
    """
    measured, bound = _number(measured, "measured"), _number(bound, "bound")
    return _one_sided(name, bound, measured, uncertainty, measured > bound, ">", detail,
                      "negative-control", detectable, measured - bound)


#: Where a finding's interval points, see :class:`Finding`.
DIRECTIONS = ("down", "up", "undecided")


@dataclass(frozen=True)
class Finding:
    """A statistic measured for a conjecture: an estimate and its interval, never pass/fail.

    A conjecture (the seed's Section 3 mechanisms) is not a theorem that numdiff's
    output must satisfy, so it is reported whichever way the data point. The
    direction is computed from the interval, never set by hand.

    Parameters
    ----------
    name : str
        Short unique name, e.g. ``"memorised fraction against log10 eta, N=5"``.
    statistic : str
        What ``estimate`` is and how its interval was obtained.
    estimate : float
        The statistic's value.
    low, high : float
        The confidence interval, ``low <= estimate <= high`` when both are finite.
    level : float
        Its confidence level, in ``(0, 1)``.
    conjecture : str
        What the conjecture predicts, in words.
    predicted_sign : {-1, 1}
        The sign of the statistic the conjecture predicts.
    detail : str
        One line on what was measured.
    study : str
        Name of the study that reports it (filled in by the report).
    """

    name: str
    statistic: str
    estimate: float
    low: float
    high: float
    level: float = 0.95
    conjecture: str = ""
    predicted_sign: int = -1
    detail: str = ""
    study: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("`name` must be a non-empty string")
        for key in ("estimate", "low", "high", "level"):
            object.__setattr__(self, key, _number(getattr(self, key), key))
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"`level` must be in (0, 1), got {self.level}")
        if self.predicted_sign not in (-1, 1) or isinstance(self.predicted_sign, bool):
            raise ValueError(f"`predicted_sign` must be -1 or 1, got {self.predicted_sign!r}")
        if self.low > self.high:
            raise ValueError(f"`low` must be <= `high`, got [{self.low}, {self.high}]")

    @property
    def direction(self) -> str:
        """``"down"`` if the interval lies below 0, ``"up"`` if above, else ``"undecided"``."""
        if self.high < 0.0:
            return "down"
        if self.low > 0.0:
            return "up"
        return "undecided"

    @property
    def agreement(self) -> str:
        """``"agrees"`` or ``"disagrees"`` with ``predicted_sign``, or ``"undecided"``."""
        if self.direction == "undecided":
            return "undecided"
        return "agrees" if (self.direction == "down") == (self.predicted_sign < 0) else "disagrees"

    def to_dict(self) -> dict:
        """JSON-ready dict with the computed ``direction`` and ``agreement``."""
        out = {k: _encode(v) for k, v in asdict(self).items()}
        out.update(direction=self.direction, agreement=self.agreement)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Finding:
        """Inverse of :meth:`to_dict`; the computed fields are checked, unknown keys refused."""
        if not isinstance(data, dict):
            raise TypeError(f"`data` must be a dict, got {type(data).__name__}")
        computed = {k: data[k] for k in ("direction", "agreement") if k in data}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - set(computed)
        if unknown:
            raise ValueError(f"`data` has unknown finding fields {sorted(unknown)}")
        finding = cls(**{k: _decode(v) for k, v in data.items() if k in known})
        for key, value in computed.items():
            if getattr(finding, key) != value:
                raise ValueError(f"`data` says {key}={value!r}, its numbers give "
                                 f"{getattr(finding, key)!r}")
        return finding
