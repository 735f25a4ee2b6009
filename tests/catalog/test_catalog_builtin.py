"""The built-in catalog: complete against the portal tables and consistent with HA's rules."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from sungrow2mqtt.catalog import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    Catalog,
    PointSpec,
    load_catalog,
)

REFERENCE = Path(os.environ.get(
    "SUNGROW2MQTT_REFERENCE_DIR",
    Path(__file__).resolve().parents[3] / "shared" / "reference" / "isolarcloud-portal",
))

# Portal table -> device type of the built-in file that must cover it.
TABLES = {
    "common-plant-measuring-points.md": 11,
    "common-inverter-measuring-points.md": 1,
    "common-energy-storage-inverter-measuring-points.md": 14,
    "common-energy-meter-measuring-points.md": 7,
    "common-battery-measuring-points.md": 43,
    "common-communications-module-measuring-points.md": 22,
}

# What the API's storage unit must become (published unit, scale, allowed device classes).
UNIT_RULES: Dict[str, Tuple[str, float, Tuple[object, ...]]] = {
    "Wh": ("kWh", 0.001, ("energy", "energy_storage")),
    "W": ("W", 1, ("power",)),
    "V": ("V", 1, ("voltage",)),
    "mV": ("V", 0.001, ("voltage",)),
    "A": ("A", 1, ("current",)),
    "Hz": ("Hz", 1, ("frequency",)),
    "°C": ("°C", 1, ("temperature",)),
    "var": ("var", 1, ("reactive_power",)),
    "VA": ("VA", 1, ("apparent_power",)),
    "varh": ("varh", 1, (None,)),
    "kΩ": ("kΩ", 1, (None,)),
    "Ω": ("Ω", 1, (None,)),
    "W/m²": ("W/m²", 1, ("irradiance",)),
    "Wh/m²": ("kWh/m²", 0.001, (None,)),
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def all_specs(catalog: Catalog) -> List[PointSpec]:
    return [spec for number in catalog.device_types() for spec in catalog.for_device_type(number)]


def table_rows(file_name: str) -> List[Tuple[int, str, str]]:
    """(id, name, unit) of every row of a portal table."""
    path = REFERENCE / file_name
    if not path.is_file():
        pytest.skip(f"reference table {path} not available")
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\|\s*(\d+)\s*\|([^|]*)\|?([^|]*)", line)
        if match:
            rows.append((int(match.group(1)), match.group(2).strip(), match.group(3).strip()))
    assert rows, f"no rows parsed from {file_name}"
    return rows


def test_required_device_types_present(catalog: Catalog) -> None:
    assert set(TABLES.values()) <= set(catalog.device_types())


@pytest.mark.parametrize("table, device_type", sorted(TABLES.items()))
def test_every_table_point_is_in_its_file(catalog: Catalog, table: str, device_type: int) -> None:
    missing = [pid for pid, _, _ in table_rows(table) if catalog.get(device_type, pid) is None]
    assert missing == []
    assert {spec.source for spec in catalog.for_device_type(device_type)} == {table}


@pytest.mark.parametrize("table, device_type", sorted(TABLES.items()))
def test_api_unit_is_the_table_unit(catalog: Catalog, table: str, device_type: int) -> None:
    # Only spelling is normalised (H -> h, W/m^2^ -> W/m²); a deviation is a documented fix.
    documented_fixes = {(1, 42), (11, 83237), (11, 83319)} | {
        (7, pid) for pid in (8036, 8037, 8040, 8041, 8044, 8045, 8060, 8061)}
    aliases = {"H": "h", "W/m^2^": "W/m²", "Wh/m^2^": "Wh/m²", "": None}
    for pid, _, unit in table_rows(table):
        spec = catalog.get(device_type, pid)
        assert spec is not None
        if (device_type, pid) not in documented_fixes:
            assert spec.api_unit == aliases.get(unit, unit), pid


def test_device_type_names_from_appendix_1(catalog: Catalog) -> None:
    assert catalog.device_type_name(14) == "Energy Storage System"
    assert catalog.device_type_name(11) == "Plant"
    assert catalog.device_type_name(63) == "Diesel Generator"
    assert catalog.device_type_name(999) == "Device type 999"
    path = REFERENCE / "appendix-1-device-type-dictionary-definitions.md"
    if not path.is_file():
        pytest.skip("appendix 1 not available")
    rows = re.findall(r"^\|\s*(\d+)\s*\|[^|]*\|\s*([^|]+?)\s*\|", path.read_text("utf-8"), re.M)
    assert len(rows) > 40
    for number, name in rows:
        assert catalog.device_type_name(int(number)) == name


def test_units_and_classes_follow_ha(catalog: Catalog) -> None:
    for spec in all_specs(catalog):
        where = f"{spec.device_type}/{spec.point_id}"
        if spec.device_class is not None:
            assert spec.unit in DEVICE_CLASS_UNITS[spec.device_class], where
            if spec.state_class is not None:
                assert spec.state_class in DEVICE_CLASS_STATE_CLASSES[spec.device_class], where
        if spec.device_class == "enum":
            assert spec.options and spec.unit is None and spec.state_class is None, where
            assert spec.precision is None, where
        if spec.device_class == "energy":
            assert spec.state_class in ("total_increasing", "total"), where
        if spec.device_class == "battery":
            assert spec.unit == "%" and spec.state_class == "measurement", where
        if spec.api_unit in UNIT_RULES:
            unit, scale, classes = UNIT_RULES[spec.api_unit]
            assert (spec.unit, spec.scale) == (unit, scale), where
            assert spec.device_class in classes, where
        if spec.api_unit == "h":
            assert spec.unit == "h", where
            assert spec.device_class in ("duration", None), where


def test_energy_counters_are_total_increasing(catalog: Catalog) -> None:
    # Only the two "planned" energies (a forecast, not a counter) are plain totals.
    totals = {(spec.device_type, spec.point_id) for spec in all_specs(catalog)
              if spec.device_class == "energy" and spec.state_class != "total_increasing"}
    assert totals == {(11, 83320), (11, 83321)}


def test_soc_points_say_how_they_arrive(catalog: Catalog) -> None:
    for device_type, point_id in ((14, 13141), (43, 58604), (11, 83252)):
        spec = catalog.get(device_type, point_id)
        assert spec is not None
        assert (spec.unit, spec.scale, spec.device_class) == ("%", 100, "battery")
    ems = catalog.get(11, 83334)
    assert ems is not None and (ems.unit, ems.scale) == ("%", 1)


def test_keys_names_and_icons_are_clean(catalog: Catalog) -> None:
    for number in catalog.device_types():
        specs = catalog.for_device_type(number)
        keys = [spec.key for spec in specs]
        assert len(keys) == len(set(keys)), number
        for spec in specs:
            assert re.match(r"^[a-z][a-z0-9_]*$", spec.key)
            assert spec.name == " ".join(spec.name.split()) and spec.name[0].isupper()
            assert not re.search(r"Opreration|Resistahce", spec.name)
            # sentence case: no capitalised word after the first, except acronyms and letters
            for word in re.split(r"[\s/-]+", spec.name)[1:]:
                letters = re.sub(r"[^A-Za-z]", "", word)
                assert not re.fullmatch(r"[A-Z][a-z]+", letters), (spec.name, word)
            assert spec.icon is None or spec.icon.startswith("mdi:")


def test_enum_points_publish_table_labels(catalog: Catalog) -> None:
    for device_type, point_id in ((1, 29), (14, 13146)):
        spec = catalog.get(device_type, point_id)
        assert spec is not None and spec.device_class == "enum" and spec.enabled
        assert spec.options["0"] == "Grid-connected operation"
        assert spec.options["5120"] == "Standby"
        assert len(spec.options) >= 38


def shown(catalog: Catalog, number: int) -> List[PointSpec]:
    """The default tier: the points HA shows without the user switching them on."""
    return [spec for spec in catalog.for_device_type(number) if spec.enabled is True]


def test_sensible_defaults(catalog: Catalog) -> None:
    for number in catalog.device_types():
        enabled = len(shown(catalog, number))
        total = len(catalog.for_device_type(number))
        if total >= 10:
            assert 5 <= enabled <= 40, (number, enabled)
        else:
            assert 1 <= enabled < total, (number, enabled)
    # a residential plant (plant + hybrid inverter + battery + meter + dongle) stays readable
    plant_total = sum(len(shown(catalog, number)) for number in (11, 14, 43, 7, 22))
    assert plant_total <= 90
    wanted = {
        11: ["daily_yield", "total_yield", "power", "load_power", "battery_soc"],
        14: ["battery_soc", "battery_voltage", "battery_temperature", "battery_charging_power",
             "feed_in_power", "purchased_power", "load_power", "daily_pv_yield",
             "grid_frequency", "internal_temperature", "operating_status"],
        1: ["daily_yield", "active_power", "phase_a_voltage", "grid_frequency",
            "internal_temperature", "operating_status"],
        22: ["wlan_signal_strength"],
    }
    for number, keys in wanted.items():
        enabled_keys = {spec.key for spec in shown(catalog, number)}
        assert set(keys) <= enabled_keys, number


def test_winet_signal_strengths_are_dbm(catalog: Catalog) -> None:
    """RSSI values such as -59 (the portal table gives no unit): HA's signal_strength in dBm."""
    for point_id in (23001, 23014):
        spec = catalog.get(22, point_id)
        assert spec is not None
        assert (spec.unit, spec.device_class, spec.state_class) == (
            "dBm", "signal_strength", "measurement")
        assert spec.convert("-59") == -59
