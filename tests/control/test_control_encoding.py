"""Every wire encoding, both ways: HA value -> paramSetting text -> HA value."""
from __future__ import annotations

from typing import Optional

import pytest

from sungrow2mqtt.control import (
    RATED_POWER, Bound, ParameterSpec, SettingError, allowed_values, decode, encode,
    load_parameters, property_limit,
)

CATALOG = load_parameters()


def spec(key: str, device_type: int = 14) -> ParameterSpec:
    found = CATALOG.get(device_type, key)
    assert found is not None, key
    return found


@pytest.mark.parametrize("key, value, wire, shown", [
    # tenths of a percent (appendix 10: 700-1000 = 70-100 %)
    ("soc_upper_limit", 90, "900", 90),
    ("soc_upper_limit", "100", "1000", 100),
    ("soc_upper_limit", 70.0, "700", 70),
    ("soc_lower_limit", 0, "0", 0),
    ("soc_lower_limit", 15, "150", 15),
    ("feed_in_limit_ratio", 37.5, "375", 37.5),
    ("feed_in_limit_ratio", "0.1", "1", 0.1),
    ("power_limit_ratio", 100, "1000", 100),
    # whole percent (forced charging target SOC)
    ("forced_charging_1_target_soc", 80, "80", 80),
    ("forced_charging_2_target_soc", "100", "100", 100),
    # watts
    ("charge_discharge_power", 2500, "2500", 2500),
    ("charge_discharge_power", "5000", "5000", 5000),
    # hundredths of a kW (10091/10092: default range 10-1060)
    ("max_charging_power", 10.6, "1060", 10.6),
    ("max_discharging_power", 0.1, "10", 0.1),
    ("max_charging_power", 3.33, "333", 3.33),
    # hours and minutes of the forced charging window
    ("forced_charging_1_start_hour", 24, "24", 24),
    ("forced_charging_1_end_minute", 59, "59", 59),
    # seconds
    ("external_ems_heartbeat", 1000, "1000", 1000),
])
def test_numbers(key: str, value: object, wire: str, shown: object) -> None:
    assert encode(spec(key), value) == wire
    assert decode(spec(key), wire) == shown


@pytest.mark.parametrize("key, value, wire", [
    ("feed_in_limitation", "ON", "170"), ("feed_in_limitation", "OFF", "85"),
    ("feed_in_limitation", "on", "170"), ("battery_first", True, "170"),
    ("battery_first", False, "85"), ("forced_charging", " off ", "85"),
    ("power_limitation", "ON", "170"),
])
def test_switches_are_170_and_85(key: str, value: object, wire: str) -> None:
    assert encode(spec(key), value) == wire
    assert decode(spec(key), wire) == ("ON" if wire == "170" else "OFF")


def test_a_switch_with_other_wire_values() -> None:
    logger_switch = ParameterSpec(code=10012, key="feed_in", name="Feed-in", device_types=
                                  frozenset({9}), component="switch", source="t", on_value="1",
                                  off_value="0")
    assert encode(logger_switch, "ON") == "1" and encode(logger_switch, "OFF") == "0"
    assert decode(logger_switch, "0") == "OFF"


@pytest.mark.parametrize("key, label, wire", [
    ("energy_management_mode", "Self-consumption", "0"),
    ("energy_management_mode", "Compulsory", "2"),
    ("energy_management_mode", "External energy dispatch", "3"),
    ("energy_management_mode", "VPP dispatch", "4"),
    ("charge_discharge_command", "Charge", "170"),
    ("charge_discharge_command", "Discharge", "187"),
    ("charge_discharge_command", "Stop", "204"),
    ("forced_charging_days", "Weekdays", "0"),
    ("forced_charging_days", "Every day", "1"),
])
def test_enumerations_by_label(key: str, label: str, wire: str) -> None:
    assert encode(spec(key), label) == wire
    assert encode(spec(key), label.upper()) == wire
    assert decode(spec(key), wire) == label


def test_a_button_sends_its_press_value_and_has_no_state() -> None:
    restart = spec("restart", 1)
    assert encode(restart, "PRESS") == "174"
    assert decode(restart, "174") is None
    with pytest.raises(SettingError, match=r"^restart: 'ON' is not allowed \(expected PRESS\)$"):
        encode(restart, "ON")


@pytest.mark.parametrize("wire", [900, "900", " 900 ", "900.0", 900.0])
def test_read_back_values_in_any_shape(wire: object) -> None:
    assert decode(spec("soc_upper_limit"), wire) == 90


@pytest.mark.parametrize("wire", [None, "", "--", "null"])
def test_no_value_reads_as_none(wire: object) -> None:
    assert decode(spec("soc_upper_limit"), wire) is None
    assert decode(spec("energy_management_mode"), wire) is None


def test_read_backs_are_shown_even_out_of_range() -> None:
    assert decode(spec("soc_upper_limit"), "650") == 65  # the device's truth, not the write range


@pytest.mark.parametrize("key, wire, message", [
    ("soc_upper_limit", "abc", "soc_upper_limit: the device value 'abc' is not a number"),
    ("energy_management_mode", "9",
     "energy_management_mode: the device value '9' is none of the known codes 0, 2, 3, 4"),
    ("battery_first", "1", "battery_first: the device value '1' is none of the known codes "
                           "170, 85"),
])
def test_undecodable_read_backs(key: str, wire: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        decode(spec(key), wire)
    assert str(info.value) == message


@pytest.mark.parametrize("key, value, message", [
    ("soc_upper_limit", 69, "soc_upper_limit: 69 is out of range (expected 70 to 100 % in steps "
                            "of 1)"),
    ("soc_upper_limit", 101, "soc_upper_limit: 101 is out of range (expected 70 to 100 % in "
                             "steps of 1)"),
    ("soc_upper_limit", 90.5, "soc_upper_limit: 90.5 is not a step of 1 (expected 70 to 100 % in "
                              "steps of 1)"),
    ("soc_upper_limit", "ninety", "soc_upper_limit: 'ninety' is not a number (expected 70 to 100 "
                                  "% in steps of 1)"),
    ("soc_upper_limit", True, "soc_upper_limit: 'True' is not a number (expected 70 to 100 % in "
                              "steps of 1)"),
    ("soc_upper_limit", "nan", "soc_upper_limit: 'nan' is not a number (expected 70 to 100 % in "
                               "steps of 1)"),
    ("charge_discharge_power", 5001, "charge_discharge_power: 5001 is out of range (expected 0 "
                                     "to 5000 W in steps of 10)"),
    ("charge_discharge_power", 2505, "charge_discharge_power: 2505 is not a step of 10 (expected "
                                     "0 to 5000 W in steps of 10)"),
    ("feed_in_limit_ratio", 37.55, "feed_in_limit_ratio: 37.55 is not a step of 0.1 (expected 0 "
                                   "to 100 % in steps of 0.1)"),
    ("feed_in_limitation", "yes", "feed_in_limitation: 'yes' is not allowed (expected ON or "
                                  "OFF)"),
    ("feed_in_limitation", 1, "feed_in_limitation: 1 is not allowed (expected ON or OFF)"),
    ("energy_management_mode", "Eco", "energy_management_mode: 'Eco' is not allowed (expected "
                                      "one of 'Self-consumption', 'Compulsory', 'External energy "
                                      "dispatch', 'VPP dispatch')"),
    ("energy_management_mode", "0", "energy_management_mode: '0' is not allowed (expected one "
                                    "of 'Self-consumption', 'Compulsory', 'External energy "
                                    "dispatch', 'VPP dispatch')"),
])
def test_refusals_name_the_setting_and_the_allowed_values(key: str, value: object,
                                                          message: str) -> None:
    with pytest.raises(SettingError) as info:
        encode(spec(key), value)
    assert str(info.value) == message


def test_rated_power_bounds_the_feed_in_limit() -> None:
    limit = spec("feed_in_limit", 1)
    assert encode(limit, 5000, {RATED_POWER: 5000}) == "5000"
    with pytest.raises(SettingError, match=r"^feed_in_limit: 5010 is out of range \(expected 0 "
                                           r"to 5000 W in steps of 10\)$"):
        encode(limit, 5010, {RATED_POWER: 5000})
    with pytest.raises(SettingError, match=r"^feed_in_limit: the allowed range depends on the "
                                           r"device's rated power, which is not known$"):
        encode(limit, 3000)


def test_property_points_bound_charging_power_with_a_fallback() -> None:
    charging = spec("max_charging_power")
    assert allowed_values(charging, {}) == "0.1 to 10.6 kW in steps of 0.01"
    assert allowed_values(charging, {property_limit(18290): 5.0}) == "0.1 to 5 kW in steps of 0.01"
    assert encode(charging, 12, {property_limit(18290): 12.5}) == "1200"
    with pytest.raises(SettingError, match="out of range"):
        encode(charging, 12)


@pytest.mark.parametrize("bound, limits, expected", [
    (Bound(value=3.0), {}, 3.0),
    (Bound(limit=RATED_POWER), {}, None),
    (Bound(limit=RATED_POWER, default=1.0), {}, 1.0),
    (Bound(limit=RATED_POWER, default=1.0), {RATED_POWER: 8000.0}, 8000.0),
])
def test_bounds(bound: Bound, limits: dict, expected: Optional[float]) -> None:
    assert bound.resolve(limits) == expected
