"""open_points_to_yaml: getOpenPointInfo rows -> a user catalog that loads as it is."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from sungrow2mqtt.catalog import Catalog, PointSpec, load_catalog, open_points_to_yaml

# Rows as the 2.10 sample shows them, plus the awkward cases seen in the wild.
ROWS: List[Dict[str, object]] = [
    {"device_type": 14, "point_id": 13011, "point_name": "Active Power",
     "show_unit": "kW", "storage_unit": "W", "open_point_remark": None},
    {"device_type": 14, "point_id": 19001, "point_name": "日发电量",
     "show_unit": "kWh", "storage_unit": "Wh"},
    {"device_type": 14, "point_id": "19002", "point_name": "Backup Load Power",
     "show_unit": "kW", "storage_unit": "W", "open_point_remark": "phase sum"},
    {"device_type": 14, "point_id": 19003, "point_name": "Backup Load Power",
     "storage_unit": "W"},
    {"device_type": 14, "point_id": 19004, "point_name": "Battery Level (SOC)",
     "storage_unit": ""},
    {"device_type": 14, "point_id": 19005, "point_name": "Cell Voltage", "storage_unit": "mV"},
    {"device_type": 14, "point_id": 19006, "point_name": "Running Time", "storage_unit": "H"},
    {"device_type": 14, "point_id": 19007, "point_name": "Irradiation",
     "storage_unit": "Wh/m2"},
    {"device_type": 14, "point_id": 19008, "point_name": "Reactive Energy",
     "storage_unit": "varh"},
    {"device_type": 14, "point_id": 19009, "point_name": "Odd Unit", "storage_unit": "rpm"},
    {"device_type": 14, "point_id": 19010, "point_name": "Yes", "show_unit": "℃"},
    {"device_type": 14, "point_id": 19011, "point_name": "1st Phase: Voltage",
     "storage_unit": "V"},
    # no storage unit but shown in %: live data sends such points (SOC, SOH) as 0-1 fractions
    {"device_type": 14, "point_id": 19012, "point_name": "Battery Health (SOH)",
     "show_unit": "%", "storage_unit": ""},
    {"device_type": 14, "point_id": 19013, "point_name": "Load Ratio",
     "show_unit": "%", "storage_unit": "%"},
    {"device_type": 14, "point_id": None, "point_name": "no id"},
]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    path: Path = tmp_path_factory.mktemp("open") / "open_points.yaml"
    path.write_text(open_points_to_yaml(14, ROWS), encoding="utf-8")
    return load_catalog(path)


def spec_of(catalog: Catalog, point_id: int) -> PointSpec:
    spec = catalog.get(14, point_id)
    assert spec is not None, point_id
    return spec


def test_round_trip_loads_and_adds_disabled_points(generated: Catalog) -> None:
    builtin = load_catalog()
    added = [spec for spec in generated.for_device_type(14)
             if builtin.get(14, spec.point_id) is None]
    assert [spec.point_id for spec in added] == list(range(19001, 19014))
    assert not any(spec.enabled for spec in added)
    assert {spec.source for spec in added} == {"getOpenPointInfo, device_type 14"}
    assert generated.enabled(14) == builtin.enabled(14)


def test_known_points_are_left_out() -> None:
    text = open_points_to_yaml(14, ROWS)
    doc = yaml.safe_load(text)
    assert 13011 not in [entry["id"] for entry in doc["device_types"][14]]
    assert "# Already in the catalog, left out: 13011" in text


def test_chinese_and_odd_names_give_safe_keys(generated: Catalog) -> None:
    chinese = spec_of(generated, 19001)
    assert (chinese.key, chinese.name) == ("point_19001", "Point 19001")
    assert "日发电量" in open_points_to_yaml(14, ROWS)          # kept as a comment
    assert spec_of(generated, 19002).key == "backup_load_power"
    assert spec_of(generated, 19002).name == "Backup load power"
    assert spec_of(generated, 19003).key == "backup_load_power_19003"
    assert spec_of(generated, 19011).key == "point_19011"      # a key may not start with 1
    assert spec_of(generated, 19010).key == "yes"              # not YAML's boolean
    assert spec_of(generated, 19010).name == "Yes"


@pytest.mark.parametrize("point_id, unit, scale, device_class, state_class", [
    (19001, "kWh", 0.001, "energy", "total_increasing"),
    (19002, "W", 1, "power", "measurement"),
    (19004, None, 1, None, None),
    (19005, "V", 0.001, "voltage", "measurement"),
    (19006, "h", 1, "duration", "total_increasing"),
    (19007, "kWh/m²", 0.001, None, "total_increasing"),
    (19008, "varh", 1, None, "total_increasing"),
    (19009, "rpm", 1, None, "measurement"),
    (19010, "°C", 1, "temperature", "measurement"),
    (19012, "%", 100, None, "measurement"),
    (19013, "%", 1, None, "measurement"),
])
def test_units_guessed_from_storage_unit(generated: Catalog, point_id: int, unit: object,
                                         scale: float, device_class: object,
                                         state_class: object) -> None:
    spec = spec_of(generated, point_id)
    assert (spec.unit, spec.scale, spec.device_class, spec.state_class) == (
        unit, scale, device_class, state_class)


def test_generated_values_convert(generated: Catalog) -> None:
    assert spec_of(generated, 19001).convert("190970.0") == 190.97
    assert spec_of(generated, 19004).convert("0.5") == "0.5"   # unknown meaning: as sent
    assert spec_of(generated, 19012).convert("0.44") == 44      # a ratio: 44 %, not 0.44 %
    assert spec_of(generated, 19012).is_ratio                   # so 0-100 plants are learned
    assert not spec_of(generated, 19013).is_ratio               # stored in %: already 0-100
    assert spec_of(generated, 19013).convert("44") == 44


def test_remark_is_a_comment() -> None:
    assert "# phase sum" in open_points_to_yaml(14, ROWS)


def test_no_new_points_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(open_points_to_yaml(14, ROWS[:1]), encoding="utf-8")
    assert len(load_catalog(path)) == len(load_catalog())


def test_new_device_type(tmp_path: Path) -> None:
    rows = [{"point_id": 1, "point_name": "Daily Yield", "storage_unit": "Wh"}]
    text = open_points_to_yaml(55, rows)
    assert "device type 55 (Microinverter)" in text
    path = tmp_path / "micro.yaml"
    path.write_text(text, encoding="utf-8")
    spec = load_catalog(path).get(55, 1)
    assert spec is not None and spec.key == "daily_yield" and spec.unit == "kWh"
