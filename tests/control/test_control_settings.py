"""A whole set request checked against the catalog: all of it passes, or nothing is sent."""
from __future__ import annotations

import pytest

from sungrow2mqtt.control import RATED_POWER, SettingError, load_parameters, plan_writes

CATALOG = load_parameters()
HYBRID, PV = 14, 1


def refusal(device_type: int, settings: dict, **kwargs: object) -> str:
    with pytest.raises(SettingError) as info:
        plan_writes(CATALOG, device_type, settings, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_one_setting_becomes_one_wire_value() -> None:
    [write] = plan_writes(CATALOG, HYBRID, {"soc_upper_limit": 90})
    assert (write.spec.param_code, write.wire, write.value) == ("10001", "900", 90)


def test_values_are_canonical_for_the_audit_log() -> None:
    writes = plan_writes(CATALOG, HYBRID, {"soc_upper_limit": "90.0",
                                           "energy_management_mode": "compulsory"})
    assert [(w.value, w.wire) for w in writes] == [(90, "900"), ("Compulsory", "2")]


def test_prerequisites_go_first() -> None:
    writes = plan_writes(CATALOG, PV, {"feed_in_limit": 3000, "feed_in_limitation": "ON"},
                         limits={RATED_POWER: 5000})
    assert [w.spec.key for w in writes] == ["feed_in_limitation", "feed_in_limit"]


def test_a_requirement_met_by_the_device_read_back() -> None:
    writes = plan_writes(CATALOG, PV, {"feed_in_limit_ratio": 50},
                         current={"feed_in_limitation": "170"})
    assert [(w.spec.param_code, w.wire) for w in writes] == [("10014", "500")]


@pytest.mark.parametrize("settings, current, state", [
    ({"feed_in_limit_ratio": 50}, {}, "its current value is not known"),
    ({"feed_in_limit_ratio": 50}, {"feed_in_limitation": "85"}, "the device has OFF"),
    ({"feed_in_limit_ratio": 50}, {"feed_in_limitation": "3"}, "the device has '3'"),
    ({"feed_in_limit_ratio": 50, "feed_in_limitation": "OFF"}, {"feed_in_limitation": "170"},
     "this request sets it to OFF"),
])
def test_unmet_requirements_are_refused(settings: dict, current: dict, state: str) -> None:
    assert refusal(PV, settings, current=current) == (
        f"feed_in_limit_ratio: needs feed_in_limitation ON first ({state}); set both in one "
        f"request")


def test_every_problem_of_a_request_is_named() -> None:
    message = refusal(HYBRID, {"soc_upper_limit": 120, "soc_uper_limit": 80,
                               "energy_management_mode": "Eco"})
    assert message == (
        "soc_upper_limit: 120 is out of range (expected 70 to 100 % in steps of 1); "
        "soc_uper_limit: not a setting of device type 14 (did you mean 'soc_upper_limit'?); "
        "energy_management_mode: 'Eco' is not allowed (expected one of 'Self-consumption', "
        "'Compulsory', 'External energy dispatch', 'VPP dispatch')")


def test_settings_of_other_device_types_are_refused() -> None:
    assert refusal(PV, {"soc_upper_limit": 90}) == (
        "soc_upper_limit: not a setting of device type 1")
    assert refusal(7, {"feed_in_limitation": "ON"}) == (
        "feed_in_limitation: not a setting of device type 7")


def test_an_empty_request_is_refused() -> None:
    assert refusal(HYBRID, {}) == "settings: expected at least one setting"


def test_an_unknown_range_refuses_only_that_setting() -> None:
    assert refusal(PV, {"feed_in_limitation": "ON", "feed_in_limit": 3000}) == (
        "feed_in_limit: the allowed range depends on the device's rated power, which is not known")
