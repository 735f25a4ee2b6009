"""The built-in parameter catalog and the loader's one-line errors for broken files."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sungrow2mqtt.catalog.ha import DEVICE_CLASS_UNITS
from sungrow2mqtt.control import RATED_POWER, load_parameters, parse_parameters, property_limit
from sungrow2mqtt.errors import CatalogError

HYBRID, PV = 14, 1
REFERENCE = Path(os.environ.get(
    "SUNGROW2MQTT_REFERENCE_DIR",
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "isolarcloud-portal",
))
# appendix 10's "Device Type" column -> appendix-1 device types
APPENDIX_GROUPS = {"Hybrid Inverter": HYBRID, "Energy Storage System": HYBRID, "PV Inverter": PV}

GOOD_ENTRY = """\
  - code: 10001
    key: soc_upper_limit
    name: SOC upper limit
    device_types: [14]
    component: number
    unit: "%"
    scale: 10
    min: 70
    max: 100
    source: test
"""


def parse(entries: str) -> object:
    return parse_parameters(f"source: test\nparameters:\n{entries}", "p.yaml")


def error_lines(entries: str) -> list:
    with pytest.raises(CatalogError) as info:
        parse(entries)
    return str(info.value).splitlines()


def test_builtin_catalog_loads_and_covers_what_people_ask_for() -> None:
    catalog = load_parameters()
    hybrid = {spec.key for spec in catalog.for_device_type(HYBRID)}
    assert {"soc_upper_limit", "soc_lower_limit", "energy_management_mode",
            "charge_discharge_command", "charge_discharge_power", "forced_charging",
            "forced_charging_days", "forced_charging_1_start_hour",
            "forced_charging_1_target_soc", "feed_in_limitation", "feed_in_limit",
            "feed_in_limit_ratio", "battery_first"} <= hybrid


def test_string_inverters_get_only_what_applies_to_them() -> None:
    pv = {spec.key for spec in load_parameters().for_device_type(PV)}
    assert pv == {"feed_in_limitation", "feed_in_limit", "feed_in_limit_ratio",
                  "power_limitation", "power_limit_ratio", "restart"}


def all_specs() -> list:
    catalog = load_parameters()
    return list({spec.key: spec for t in (HYBRID, PV) for spec in catalog.for_device_type(t)}
                .values())


def test_every_entry_cites_its_appendix_10_row() -> None:
    for spec in all_specs():
        assert spec.source.startswith(f"appendix 10, {spec.code} "), spec.key


def test_device_types_follow_the_appendix_10_rows() -> None:
    path = REFERENCE / "appendix-10-control-parameter-definitions.md"
    if not path.is_file():
        pytest.skip(f"appendix 10 not available at {path}")
    groups = {}
    for code, column in re.findall(r"^\| (\d+) \| ([^|]+) \|", path.read_text("utf-8"), re.M):
        groups.setdefault(int(code), set()).update(
            number for name, number in APPENDIX_GROUPS.items() if name in column)
    for spec in all_specs():
        # forced charging is listed for PV inverters too; it is offered where there is a battery
        assert spec.device_types <= groups[spec.code], spec.key
        if not 10065 <= spec.code <= 10076:
            assert spec.device_types == groups[spec.code], spec.key


def test_units_suit_home_assistant_device_classes() -> None:
    for spec in load_parameters().for_device_type(HYBRID):
        if spec.device_class:
            assert spec.unit in DEVICE_CLASS_UNITS[spec.device_class], spec.key


def test_the_documented_encodings() -> None:
    catalog = load_parameters()
    soc = catalog.get(HYBRID, "soc_upper_limit")
    target = catalog.get(HYBRID, "forced_charging_1_target_soc")
    switch = catalog.get(PV, "feed_in_limitation")
    assert soc is not None and target is not None and switch is not None
    assert (soc.scale, soc.min and soc.min.value, soc.max and soc.max.value) == (10, 70, 100)
    assert target.scale == 1
    assert (switch.on_value, switch.off_value) == ("170", "85")


def test_device_dependent_ranges_and_requirements() -> None:
    catalog = load_parameters()
    limit = catalog.get(PV, "feed_in_limit")
    charging = catalog.get(HYBRID, "max_charging_power")
    assert limit is not None and charging is not None
    assert limit.max is not None and limit.max.limit == RATED_POWER
    assert limit.requires == {"feed_in_limitation": "170"}
    assert charging.max is not None and charging.max.limit == property_limit(18290)
    assert catalog.property_points(HYBRID) == [18290, 18291]
    assert catalog.property_points(PV) == []


def test_lookups_by_key_and_code() -> None:
    catalog = load_parameters()
    assert catalog.by_code(HYBRID, "10001") is catalog.get(HYBRID, "soc_upper_limit")
    assert catalog.by_code(HYBRID, 10001.0) is catalog.get(HYBRID, "soc_upper_limit")
    assert catalog.by_code(PV, "10001") is None
    assert catalog.get(7, "soc_upper_limit") is None


def test_a_minimal_entry_parses() -> None:
    catalog = parse(GOOD_ENTRY)
    spec = catalog.get(HYBRID, "soc_upper_limit")  # type: ignore[attr-defined]
    assert spec.step == 1 and spec.mode == "auto" and spec.enabled


ENTRY = {"code": "10067", "key": "x", "name": "X", "device_types": "[14]",
         "component": "number", "unit": "h", "min": "0", "max": "24", "source": "t"}


def entry(**change: str) -> str:
    """A second entry, with fields changed (a value of None leaves the field out)."""
    fields = {**ENTRY, **change}
    lines = [f"    {name}: {value}\n" for name, value in fields.items() if value is not None]
    return "  - " + "".join(lines)[4:]


@pytest.mark.parametrize("change, message", [
    ({"unti": "W"}, "p.yaml: parameters[1].unti: unknown key (did you mean 'unit'?)"),
    ({"min": "low"}, "p.yaml: parameters[1].min: expected a number, got 'low'"),
    ({"component": "slider"}, "p.yaml: parameters[1].component: expected one of number, select, "
                              "switch, button, got 'slider'"),
    ({"device_types": "[]"}, "p.yaml: parameters[1].device_types: expected a non-empty list of "
                             "device type numbers, got a list"),
    ({"device_types": "[14, x]"}, "p.yaml: parameters[1].device_types[1]: expected an integer "
                                  ">= 1, got 'x'"),
    ({"options": "{1: A, 2: B}"}, "p.yaml: parameters[1]: field 'options' is only for a select"),
    ({"step": "0.01"}, "p.yaml: parameters[1].step: 0.01 is finer than the wire resolution "
                       "(1/1 of a unit)"),
    ({"device_class": "power"}, "p.yaml: parameters[1]: unit 'h' is not allowed for "
                                "device_class 'power'"),
    ({"max": "{from: property x}"}, "p.yaml: parameters[1].max: 'from' must be 'property <point "
                                    "id>' or 'rated power', got 'property x'"),
    ({"requires": "{nope: 'ON'}"}, "p.yaml: parameters[1].requires: 'nope' is not a setting of "
                                   "every device type of this entry"),
    ({"requires": "{soc_upper_limit: 5}"}, "p.yaml: parameters[1].requires: soc_upper_limit: 5 "
                                           "is out of range (expected 70 to 100 % in steps of "
                                           "1)"),
    ({"min": "0\n    min: 1"}, "p.yaml: line 20: duplicate key 'min' (first on line 19; only "
                                "the last one would count)"),
])
def test_bad_fields_are_named_in_one_line(change: dict, message: str) -> None:
    assert error_lines(GOOD_ENTRY + entry(**change)) == [message]


def test_a_field_that_fails_is_not_reported_again_as_missing() -> None:
    assert error_lines(GOOD_ENTRY + entry(max="{from: rated power, x: 1}")) == [
        "p.yaml: parameters[1].max: expected a number or {from: 'property <id>' | 'rated power',"
        " default: number}, got a mapping"]


def test_missing_fields_and_component_needs() -> None:
    lines = error_lines("  - key: x\n    component: select\n    device_types: [14]\n")
    assert lines == [
        "p.yaml: parameters[0].code: required",
        "p.yaml: parameters[0].name: required",
        "p.yaml: parameters[0].source: required",
        "p.yaml: parameters[0]: a select needs field 'options'",
    ]
    lines = error_lines("  - {code: 1, key: x, name: X, device_types: [1], component: select,"
                        " source: t}\n")
    assert lines == ["p.yaml: parameters[0]: a select needs field 'options'"]


def test_duplicate_key_or_code_per_device_type() -> None:
    assert error_lines(GOOD_ENTRY + GOOD_ENTRY) == [
        "p.yaml: parameters[1]: key or code already used by parameters[0] (soc_upper_limit) for "
        "the same device type"]
    # the same code may mean something else on another device type (appendix 10: 10012)
    other_type = GOOD_ENTRY.replace("[14]", "[9]")
    assert len(parse(GOOD_ENTRY + other_type)) == 2  # type: ignore[arg-type]


def test_every_problem_of_a_file_is_reported() -> None:
    lines = error_lines("  - 5\n" + GOOD_ENTRY.replace("min: 70", "min: 170"))
    assert lines == ["p.yaml: parameters[0]: expected a mapping, got 5",
                     "p.yaml: parameters[1]: min 170 is above max 100"]


@pytest.mark.parametrize("text, message", [
    ("parameters: []\n", "p.yaml: source: required"),
    ("source: t\nparameters: []\nextra: 1\n", "p.yaml: extra: unknown key"),
    ("- 1\n", "p.yaml: expected a mapping, got a list"),
    ("source: t\nparameters: {}\n", "p.yaml: parameters: expected a list of entries, got a "
                                    "mapping"),
    ("source: t\nparameters: [\n", "p.yaml: YAML syntax error at line 3, column 1: did not "
                                   "find expected node content"),
])
def test_file_level_problems(text: str, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_parameters(text, "p.yaml")
    assert str(info.value) == message


def test_unreadable_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"^\S*missing.yaml: file not found$"):
        load_parameters(tmp_path / "missing.yaml")
