"""Target descriptions: dict form (dataset manifest), short form (command line), errors naming the field."""

from __future__ import annotations

import pytest

from ptz_calibration.calibration import (
    CharucoTarget,
    Checkerboard,
    TargetSpecError,
    describe_target,
    parse_target,
    target_from_dict,
    target_to_dict,
)
from ptz_calibration.simulation import load_rig


def test_checkerboard_dict_round_trip_is_the_simulator_class():
    t = target_from_dict({"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.025})
    assert t == Checkerboard(6, 9, 0.025)
    assert t.pattern_size == (9, 6)
    assert target_from_dict(target_to_dict(t)) == t
    m = target_from_dict({"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.025, "margin": 0})
    assert m.margin == 0.0 and target_from_dict(target_to_dict(m)) == m


def test_charuco_dict_round_trip():
    data = {"type": "charuco", "squares_x": 10, "squares_y": 7, "square": 0.09, "marker": 0.07,
            "dictionary": "DICT_5X5_100", "margin": 0.045}
    t = target_from_dict(data)
    assert t == CharucoTarget(10, 7, 0.09, 0.07, "DICT_5X5_100", 0.045)
    assert target_to_dict(t) == data
    legacy = target_from_dict({**data, "legacy_pattern": True})
    assert legacy.legacy_pattern and target_from_dict(target_to_dict(legacy)) == legacy
    # dictionary defaults to the simulator's
    assert target_from_dict({k: v for k, v in data.items() if k != "dictionary"}).dictionary == "DICT_5X5_100"


def test_same_schema_as_the_rig_scene_targets():
    """A rig's target block (minus pose and levels) is a valid target description."""
    for placed in load_rig().scene.targets:
        assert target_from_dict(target_to_dict(placed.target)) == placed.target


@pytest.mark.parametrize("data, field, words", [
    ({"rows": 6, "cols": 9, "square": 0.025}, "type", "expected 'checkerboard' or 'charuco'"),
    ({"type": "chessboard", "rows": 6, "cols": 9, "square": 0.025}, "type", "'chessboard'"),
    ({"type": "checkerboard", "cols": 9, "square": 0.025}, "rows", "missing"),
    ({"type": "checkerboard", "rows": 1, "cols": 9, "square": 0.025}, "rows", "integer >= 2"),
    ({"type": "checkerboard", "rows": 6.5, "cols": 9, "square": 0.025}, "rows", "integer"),
    ({"type": "checkerboard", "rows": 6, "cols": 9, "square": -1}, "square", "> 0"),
    ({"type": "checkerboard", "rows": 6, "cols": 9, "square": "25mm"}, "square", "'25mm'"),
    ({"type": "checkerboard", "rows": 6, "cols": 9, "square": float("nan")}, "square", "finite"),
    ({"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.025, "margin": -0.1}, "margin", ">= 0"),
    ({"type": "checkerboard", "rows": 6, "cols": 9, "square": 0.025, "size": 3}, "size", "unknown field"),
    ({"type": "charuco", "squares_x": 10, "squares_y": 7, "square": 0.09}, "marker", "missing"),
    ({"type": "charuco", "squares_x": 10, "squares_y": 7, "square": 0.09, "marker": 0.09}, "marker",
     "smaller than the square"),
    ({"type": "charuco", "squares_x": 10, "squares_y": 7, "square": 0.09, "marker": 0.07,
      "dictionary": "DICT_5X5"}, "dictionary", "unknown ArUco dictionary"),
    ({"type": "charuco", "squares_x": 30, "squares_y": 20, "square": 0.09, "marker": 0.07,
      "dictionary": "DICT_4X4_50"}, "dictionary", "fewer than the 300 markers"),
    ({"type": "charuco", "squares_x": 10, "squares_y": 7, "square": 0.09, "marker": 0.07,
      "legacy_pattern": "yes"}, "legacy_pattern", "true or false"),
])
def test_errors_name_the_source_and_field(data, field, words):
    with pytest.raises(TargetSpecError) as info:
        target_from_dict(data, "dataset.yaml", "target")
    err = info.value
    assert err.source == "dataset.yaml" and err.field == f"target.{field}"
    assert f"dataset.yaml: field 'target.{field}'" in str(err) and words in str(err)


def test_not_a_mapping():
    with pytest.raises(TargetSpecError, match="expected a mapping, got list"):
        target_from_dict([1, 2], "m.yaml", "target")


def test_short_form():
    assert parse_target("checkerboard:9x6:0.025") == Checkerboard(6, 9, 0.025)  # OpenCV (cols, rows)
    assert parse_target("Checkerboard:9X6:0.025") == Checkerboard(6, 9, 0.025)
    assert parse_target("charuco:10x7:0.09:0.07") == CharucoTarget(10, 7, 0.09, 0.07)
    assert parse_target("charuco:5x7:0.04:0.03:dict_4x4_50") == CharucoTarget(5, 7, 0.04, 0.03, "DICT_4X4_50")


@pytest.mark.parametrize("text, words", [
    ("chess:9x6:0.025", "expected checkerboard:COLSxROWS:SQUARE"),
    ("checkerboard:9x6", "expected checkerboard:COLSxROWS:SQUARE"),
    ("checkerboard:9by6:0.025", "expected checkerboard:COLSxROWS:SQUARE"),
    ("checkerboard:9x6:abc", "sizes must be numbers"),
    ("checkerboard:1x6:0.025", "field 'cols': expected an integer >= 2"),
    ("charuco:10x7:0.09", "expected charuco:SQUARES_XxSQUARES_Y:SQUARE:MARKER"),
    ("charuco:10x7:0.09:0.1", "field 'marker': must be smaller than the square"),
])
def test_short_form_errors(text, words):
    with pytest.raises(TargetSpecError, match="^--board") as info:
        parse_target(text)
    assert words in str(info.value)


def test_describe():
    assert describe_target(parse_target("checkerboard:9x6:0.025")) == \
        "checkerboard 9x6 inner corners, 25 mm squares"
    assert "ChArUco 10x7 squares (DICT_5X5_100), 90 mm squares, 70 mm markers" == \
        describe_target(parse_target("charuco:10x7:0.09:0.07"))
