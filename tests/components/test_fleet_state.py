"""Fleet state and the pure mapping of cloud rows into it, without MQTT."""
from __future__ import annotations

import datetime as dt
from typing import Any, List, Tuple

from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.components.fleet import (
    FleetListener,
    FleetState,
    PointMap,
    faults_by_device,
    merge_values,
    quota_summary,
)
from sungrow2mqtt.model import device_from_row, plant_from_row

CATALOG = load_catalog()
PLANT = plant_from_row({"ps_id": 5012345, "ps_name": "Home", "ps_current_time_zone": "GMT+1"},
                       "Plant")
ESS = device_from_row({"ps_key": "5012345_14_1_1", "device_type": 14, "device_sn": "A1"}, PLANT,
                      "Energy Storage System")
POLLED = dt.datetime(2026, 1, 15, 11, 0, 5, tzinfo=dt.timezone.utc)


def spec(device_type: int, key: str):
    return next(s for s in CATALOG.enabled(device_type) if s.key == key)


def test_a_row_maps_to_catalog_keys_and_units_in_the_plants_time():
    soc, power = spec(14, "battery_soc"), spec(14, "active_power")
    row = {"ps_key": ESS.ps_key, "device_time": "20260115120000",
           f"p{soc.point_id}": "0.55", f"p{power.point_id}": "--"}
    values = PointMap([soc, power]).map_row(row, ESS.tz, POLLED)
    assert values == {"battery_soc": soc.convert("0.55"),
                      "last_update": "2026-01-15T12:00:00+01:00"}   # no value: left out
    assert PointMap([soc]).map_row({}, ESS.tz, POLLED) == {
        "last_update": "2026-01-15T12:00:05+01:00"}                 # no data time: the poll's


def test_a_value_that_disappears_becomes_unknown_and_new_keys_are_named():
    first, new = merge_values({}, {"a": 1, "b": 2, "last_update": "t1"})
    assert first == {"a": 1, "b": 2, "last_update": "t1"} and new == ["a", "b"]
    second, new = merge_values(first, {"b": 3, "c": 4, "last_update": "t2"})
    assert second == {"a": None, "b": 3, "last_update": "t2", "c": 4} and new == ["c"]
    third, new = merge_values(second, {"c": 5, "b": 3, "last_update": "t3"})
    assert list(third.items()) == [("a", None), ("b", 3), ("last_update", "t3"), ("c", 5)]
    assert new == []


class Heard(FleetListener):
    def __init__(self) -> None:
        self.events: List[Tuple[str, Any]] = []

    def on_devices(self, devices, removed):
        self.events.append(("devices", ([d.ps_key for d in devices], [d.ps_key for d in removed])))

    def on_values(self, device, state, new_keys):
        self.events.append(("values", (device.ps_key, dict(state), list(new_keys))))

    def on_faults(self, device, faults):
        self.events.append(("faults", (device.ps_key, list(faults))))

    def on_info(self):
        self.events.append(("info", None))


def test_listeners_hear_each_change_once_and_a_snapshot_does_not_move():
    fleet, heard = FleetState(), Heard()
    fleet.listen(heard)
    fleet.set_devices({PLANT.ps_key: PLANT, ESS.ps_key: ESS})
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    snapshot = fleet.snapshot()
    fleet.update_values(ESS, {"battery_soc": 56, "last_update": "t2"})
    fleet.set_faults(ESS, [])
    fleet.set_faults(ESS, [])                           # unchanged: nobody is told
    assert heard.events == [
        ("devices", (["5012345_11_0_0", "5012345_14_1_1"], [])),
        ("values", ("5012345_14_1_1", {"battery_soc": 55, "last_update": "t1"},
                    ["battery_soc"])),
        ("values", ("5012345_14_1_1", {"battery_soc": 56, "last_update": "t2"}, [])),
        ("faults", ("5012345_14_1_1", [])),
    ]
    assert snapshot.values[ESS.ps_key]["battery_soc"] == 55
    assert fleet.plant_ids() == {5012345} and fleet.devices({1}) == []


def test_a_device_that_leaves_takes_its_values_and_faults_along():
    fleet, heard = FleetState(), Heard()
    fleet.set_devices({PLANT.ps_key: PLANT, ESS.ps_key: ESS})
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    fleet.set_faults(ESS, [{"code": 1}])
    fleet.listen(heard)
    fleet.set_devices({PLANT.ps_key: PLANT})
    assert heard.events == [("devices", (["5012345_11_0_0"], ["5012345_14_1_1"]))]
    snapshot = fleet.snapshot()
    assert ESS.ps_key not in snapshot.values and ESS.ps_key not in snapshot.faults
    assert fleet.device(ESS.ps_key) is None


def test_faults_land_on_their_device_or_its_plant_oldest_first():
    rows = [{"ps_key": ESS.ps_key, "fault_code": 2, "create_time": "2026-01-15 10:00:00"},
            {"ps_key": ESS.ps_key, "fault_code": 1, "create_time": "2026-01-14 10:00:00"},
            {"ps_key": "5012345_1_9_1", "ps_id": 5012345, "fault_code": 3},   # unknown device
            {"ps_key": "999_14_1_1", "ps_id": 999, "fault_code": 4}]          # unknown plant
    found = faults_by_device(rows, {PLANT.ps_key: PLANT, ESS.ps_key: ESS})
    assert [f["code"] for f in found[ESS.ps_key]] == [1, 2]
    assert found[ESS.ps_key][0]["since"] == "2026-01-14T10:00:00+01:00"
    assert [f["code"] for f in found[PLANT.ps_key]] == [3]


def test_quota_reads_the_hour_asked_for_and_survives_garbage():
    data = {"per_day_access_times_config": "10000", "today_accessed_times": 12.0,
            "curr_hour_accessed_times": "x", "per_hour_access_times_config": [
                {"hour": "13", "max_call_times": "1000"}, {"hour": 14, "max_call_times": 500},
                "junk"]}
    assert quota_summary(data, 14) == {"per_day": 10000, "per_hour": 500, "today_used": 12,
                                       "this_hour_used": None}
    assert quota_summary({}, 3)["per_hour"] is None
