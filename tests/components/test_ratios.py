"""Ratio points: fraction by default, 0-100 once a device shows it, never an impossible %."""
from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, Dict, Optional

import pytest

from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.components.fleet import PointMap
from sungrow2mqtt.components.ratios import RatioPoints
from sungrow2mqtt.model import Device, device_from_row, plant_from_row

CATALOG = load_catalog()
PLANT = plant_from_row({"ps_id": 5012345, "ps_name": "Home"}, "Plant")
ESS = device_from_row({"ps_key": "5012345_14_1_1", "device_type": 14, "device_sn": "A1"}, PLANT,
                      "Energy Storage System")
OTHER = device_from_row({"ps_key": "5012345_14_1_2", "device_type": 14, "device_sn": "A2"},
                        PLANT, "Energy Storage System")
SPECS = CATALOG.enabled(14)
POINTS = PointMap(SPECS)
SOC = next(s for s in SPECS if s.key == "battery_soc")          # 13141, a ratio
SOH = next(s for s in SPECS if s.key == "battery_soh")          # 13142, a ratio
POLLED = dt.datetime(2026, 1, 15, 11, 0, tzinfo=dt.timezone.utc)


def read(ratios: RatioPoints, device: Device, soc: Any, soh: Any = None) -> Dict[str, Any]:
    """One realtime row of ``device`` through the ratio points, as CloudJobs.update_device does."""
    row = {SOC.api_key: soc, SOH.api_key: soh}
    points = ratios.points_for(device, POINTS, row)
    return ratios.possible(device, points, points.map_row(row, device.tz, POLLED))


def soc_of(ratios: RatioPoints, device: Device, raw: str) -> Optional[Any]:
    return read(ratios, device, raw).get("battery_soc")


def test_the_catalog_says_which_points_are_ratios_and_shares():
    assert SOC.is_ratio and SOH.is_ratio and SOC.is_share and SOH.is_share
    percent_soc = CATALOG.get(11, 83334)               # sent as 0-100: scale 1, still a share
    assert percent_soc is not None and not percent_soc.is_ratio and percent_soc.is_share
    power = next(s for s in SPECS if s.key == "active_power")
    assert not power.is_ratio and not power.is_share


def test_a_fraction_device_keeps_one_as_a_hundred_percent(tmp_path):
    ratios = RatioPoints(tmp_path / "ratio_points.json")
    assert [soc_of(ratios, ESS, raw) for raw in ("0.44", "1.0", "0.05", "1")] == [44, 100, 5, 100]
    assert not (tmp_path / "ratio_points.json").exists()


def test_a_value_above_one_makes_the_point_0_100_for_that_device_and_point_only(tmp_path):
    ratios = RatioPoints(tmp_path / "ratio_points.json")
    assert soc_of(ratios, ESS, "44.0") == 44
    assert soc_of(ratios, ESS, "1.0") == 1               # learned: 1 %, not 100 %
    assert soc_of(ratios, OTHER, "1.0") == 100           # another device is still a fraction
    assert read(ratios, ESS, "50", "0.98")["battery_soh"] == 98   # another point too


def test_what_was_learned_survives_a_restart(tmp_path):
    path = tmp_path / "ratio_points.json"
    assert soc_of(RatioPoints(path), ESS, "44.0") == 44
    assert json.loads(path.read_text()) == {ESS.ps_key: [SOC.point_id]}
    assert path.stat().st_mode & 0o777 == 0o600
    assert soc_of(RatioPoints(path), ESS, "1.0") == 1
    assert soc_of(RatioPoints(path), OTHER, "1.0") == 100


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"x": 5}', '{"5012345_14_1_1": "a"}'])
def test_a_corrupt_state_file_is_ignored(tmp_path, content):
    path = tmp_path / "ratio_points.json"
    path.write_text(content)
    assert soc_of(RatioPoints(path), ESS, "1.0") == 100


@pytest.mark.parametrize("raw", ["1.2", "-0.1", "150", "7910"])
def test_an_impossible_share_is_dropped_with_one_line_per_episode(tmp_path, caplog, raw):
    ratios = RatioPoints(tmp_path / "ratio_points.json")
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    assert [soc_of(ratios, ESS, raw) for _ in range(3)] == [None] * 3
    dropped = [r for r in caplog.records if "impossible" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].levelno == logging.WARNING
    assert f"Battery level of {ESS.ps_key}" in dropped[0].getMessage()
    assert soc_of(ratios, ESS, "0.5") in (50, 0.5)       # a possible value ends the episode
    soc_of(ratios, ESS, raw)
    assert len([r for r in caplog.records if "impossible" in r.getMessage()]) == 2


def test_a_0_100_share_of_the_catalog_is_bounded_too():
    spec = CATALOG.get(11, 83334)
    assert spec is not None
    plant_ratios = RatioPoints()
    row = {spec.api_key: "101"}
    points = plant_ratios.points_for(PLANT, PointMap([spec]), row)
    values = points.map_row(row, PLANT.tz, POLLED)
    assert values[spec.key] == 101 and spec.key not in plant_ratios.possible(PLANT, points, values)


def test_learning_is_logged_once_and_without_a_state_dir_kept_in_memory(caplog):
    ratios = RatioPoints(None)
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    for raw in ("44", "45", "1.0"):
        soc_of(ratios, ESS, raw)
    learned = [r.getMessage() for r in caplog.records if "0-100" in r.getMessage()]
    assert learned == [f"Battery level (13141) of {ESS.ps_key} arrives as 0-100, not as a 0-1 "
                       "fraction: reading it so from now on"]
    assert soc_of(ratios, ESS, "1.0") == 1


def test_an_unwritable_state_dir_is_one_warning_and_memory(tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("")
    ratios = RatioPoints(blocked / "ratio_points.json")      # its directory is a file
    assert soc_of(ratios, ESS, "44") == 44 and soc_of(ratios, OTHER, "45") == 45
    assert soc_of(ratios, ESS, "1.0") == 1
    writes = [r for r in caplog.records if "Cannot write state file" in r.getMessage()]
    assert len(writes) == 1 and writes[0].levelno == logging.WARNING
