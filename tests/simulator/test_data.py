"""The simulator's data files and service registry: loaded, consistent, complete."""
from __future__ import annotations

from sungrow2mqtt.simulator import Fleet
from sungrow2mqtt.simulator.services import SERVICES
from sungrow2mqtt.simulator.values import (
    PROPERTY_POINTS, SOURCE_MAPS, SOURCES, point_name, telemetry_points,
)

SECTION_2 = {
    "login", "getOpenApiCallInfo", "getPowerStationList", "getPowerStationDetail",
    "getDeviceList", "getDeviceListByUser", "getCommunicationDevInfoByDevSn",
    "getPVInverterRealTimeData", "getDeviceRealTimeData", "getDevicePointMinuteDataList",
    "getDevicePointsDayMonthYearDataList", "getFaultAlarmInfo", "getOpenPointInfo",
    "getDevPropertyPointValue",
}


def test_the_fourteen_services_are_registered() -> None:
    assert SECTION_2 <= set(SERVICES)


def test_every_modelled_point_is_in_its_portal_table_with_a_known_source() -> None:
    assert set(SOURCE_MAPS) == {1, 7, 11, 14, 22, 43}
    for device_type, points in SOURCE_MAPS.items():
        table = {p.point_id for p in telemetry_points(device_type)}
        assert set(points) <= table, device_type
        assert {name.partition(":")[0] for name in points.values()} <= set(SOURCES)


def test_portal_tables_rows() -> None:
    sizes = {t: len(telemetry_points(t)) for t in (1, 7, 11, 14, 22, 43)}
    assert sizes == {1: 168, 7: 41, 11: 73, 14: 109, 22: 3, 43: 35}  # rows of the portal pages
    storage = {p.point_id: p for p in telemetry_points(14)}
    assert (storage[13011].name, storage[13011].unit) == ("Active Power", "W")
    assert storage[13141].unit == ""                       # a ratio point has no storage unit
    assert point_name(14, 13141) == "电池电量(SOC)"          # the Chinese-name quirk
    assert [p.unit for p in PROPERTY_POINTS[14]] == ["", "Wp", "Wh", "Ah"]


def test_default_fleet_from_its_data_file() -> None:
    fleet = Fleet.default(now=0.0)
    assert [(p.ps_id, p.time_zone, len(p.devices)) for p in fleet.plants] == [
        (1563218, "GMT+1", 5), (1587093, "GMT+10", 4)]
    ess = fleet.device("1563218_14_1_1")
    assert ess is not None and ess.properties[13257] == "10000.0"
    assert ess.profile.role == "hybrid" and ess.firmware["battery_version"]
    assert fleet.plants[0].params.install_day == 19465   # 2023-04-18
