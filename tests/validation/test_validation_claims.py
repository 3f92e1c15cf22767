"""Claims: kinds, the detectable bias, negative controls, and their JSON round trip."""

import json
import math

import pytest

from validation.claims import KINDS, Claim, at_least, at_most, violates, within


def test_kind_and_detectable_default_to_a_theorem_without_a_stated_bias():
    c = Claim("a", 1.0, 0.5, None, True)
    assert c.kind == "theorem" and c.detectable is None


@pytest.mark.parametrize("kind", ["lemma", "", None, 3])
def test_unknown_kind_is_a_value_error_naming_it(kind):
    with pytest.raises(ValueError, match=r"`kind`"):
        Claim("a", 1.0, 0.5, None, True, kind=kind)


def test_detectable_must_be_a_number():
    with pytest.raises(TypeError, match=r"`detectable`"):
        Claim("a", 1.0, 0.5, None, True, detectable="big")
    assert Claim("a", 1.0, 0.5, None, True, detectable=1).detectable == 1.0


def test_constructors_take_kind_and_detectable():
    c = at_most("bound", 0.1, 0.04, 0.01, kind="theory-check", detectable=0.05)
    assert (c.kind, c.detectable, c.passed) == ("theory-check", 0.05, True)
    c = at_least("floor", 1.0, 2.0, kind="theory-check")
    assert c.kind == "theory-check"
    c = within("band", 1.0, 1.2, 0.5, 0.1, detectable=0.7)
    assert c.detectable == 0.7


def test_default_detectable_is_the_band_or_the_margin():
    assert within("w", 1.0, 1.05, 0.45, 0.1).detectable == 0.45
    assert at_most("m", 0.1, 0.04).detectable == pytest.approx(0.06)
    assert at_least("l", 1.0, 3.0).detectable == pytest.approx(2.0)
    assert at_most("failed", 0.1, 0.2).detectable == 0.0
    assert at_most("nan", 0.1, math.nan).detectable is None


def test_violates_is_a_negative_control_passing_on_the_violation():
    c = violates("control", 0.1, 0.38, 0.02)
    assert c.kind == "negative-control" and c.passed and c.comparison == ">"
    assert c.detectable == pytest.approx(0.28)
    missed = violates("control", 0.1, 0.05)
    assert not missed.passed and missed.detectable == 0.0
    assert not violates("edge", 0.1, 0.1).passed  # equality is no violation


def test_round_trip_keeps_kind_and_detectable():
    claims = [violates("c", 0.1, 0.38, 0.02, detail="d"),
              at_most("t", 0.1, 0.05, kind="theory-check", detectable=math.inf),
              within("w", 1.0, 1.0, 0.1)]
    for c in claims:
        back = Claim.from_json(c.to_json())
        assert back == c
    assert json.loads(claims[1].to_json())["detectable"] == "inf"


def test_old_dicts_without_kind_or_detectable_still_load():
    old = {"name": "x", "predicted": 1.0, "measured": 0.5, "uncertainty": None,
           "passed": True, "comparison": "<=", "detail": "", "study": "s"}
    c = Claim.from_dict(old)
    assert c.kind == "theorem" and c.detectable is None
    assert set(KINDS) == {"theorem", "theory-check", "negative-control"}


def test_headroom_is_the_distance_to_the_verdicts_change():
    assert at_most("m", 0.1, 0.04).headroom == pytest.approx(0.06)
    assert at_least("l", 1.0, 3.0).headroom == pytest.approx(2.0)
    assert within("w", 1.0, 1.05, 0.45).headroom == pytest.approx(0.40)
    assert within("w", 1.0, 0.5, 0.45).headroom == pytest.approx(-0.05)  # failed: negative
    assert at_most("failed", 0.1, 0.2).headroom == pytest.approx(-0.1)
    assert violates("v", 0.1, 0.05).headroom == pytest.approx(-0.05)
    assert at_most("nan", 0.1, math.nan).headroom is None
    for c in (at_most("a", 1.0, 0.3), at_least("b", 1.0, 1.7), within("c", 0.0, 0.2, 0.5),
              violates("d", 0.1, 0.38), at_most("e", 1.0, 1.3), within("f", 0.0, 0.7, 0.5)):
        assert (c.headroom >= 0) == c.passed


def test_a_one_sided_margin_is_marked_as_headroom_and_a_designed_bias_is_not():
    # TV <= eps measured at 0.02129: 0.02871 is how far the measurement sits from the
    # bound, not a sensitivity the claim was designed with.
    default = at_most("tv <= eps", 0.05, 0.02129)
    assert default.detectable_is_headroom and default.detectable == pytest.approx(0.02871)
    designed = at_most("max |z|", 4.5, 1.2, detectable=4.5)
    assert not designed.detectable_is_headroom and designed.detectable == 4.5
    assert not within("w", 1.0, 1.05, 0.45).detectable_is_headroom
    assert violates("v", 0.1, 0.38).detectable_is_headroom
    assert not at_most("nan", 0.1, math.nan).detectable_is_headroom  # nothing to mark
    back = Claim.from_json(default.to_json())
    assert back == default
