"""The optional tier: polled and announced disabled in HA, at no extra realtime call."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from conftest import SIM_START, make_client
from sungrow2mqtt import discovery
from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.isolarcloud.client import MAX_DEVICES_PER_CALL
from sungrow2mqtt.model import device_from_row, plant_from_row
from sungrow2mqtt.simulator import Fleet, SimulatorServer

CATALOG = load_catalog()
PLANT = plant_from_row({"ps_id": 5012345, "ps_type": 5}, "Plant")
ESS = device_from_row({"ps_key": "5012345_14_1_1", "device_type": 14, "device_sn": "A1"}, PLANT,
                      "Energy Storage System")


def test_every_built_in_type_has_the_three_tiers_where_it_needs_them() -> None:
    for number in CATALOG.device_types():
        specs = CATALOG.for_device_type(number)
        polled = CATALOG.enabled(number)
        assert polled == [spec for spec in specs if spec.enabled in (True, "optional")]
        assert list(CATALOG.enabled_by_key(number).items()) == [(s.key, s) for s in polled]
        assert any(spec.enabled is True for spec in specs), number
    assert any(spec.enabled == "optional" for spec in CATALOG.for_device_type(1))
    assert any(spec.enabled is False for spec in CATALOG.for_device_type(1))
    assert CATALOG.enabled(999) == [] and dict(CATALOG.enabled_by_key(999)) == {}


def test_discovery_announces_the_tiers_as_home_assistant_expects() -> None:
    by_tier = {tier: next(s for s in CATALOG.for_device_type(14) if s.enabled == tier)
               for tier in (True, "optional")}
    _, default = discovery.sensor_config(ESS, by_tier[True], discovery.Topics("s2m"))
    _, optional = discovery.sensor_config(ESS, by_tier["optional"], discovery.Topics("s2m"))
    assert "enabled_by_default" not in default
    assert optional["enabled_by_default"] is False


def test_a_user_catalog_can_make_a_point_optional(tmp_path: Path) -> None:
    path = tmp_path / "points.yaml"
    path.write_text("device_types:\n  14:\n    - id: 18079\n      enabled: optional\n")
    spec = load_catalog(path).get(14, 18079)
    assert spec is not None and spec.enabled == "optional" and spec.polled
    assert spec in load_catalog(path).enabled(14)


def test_default_and_optional_points_take_one_realtime_call_per_type_and_50_devices() -> None:
    """The bridge's realtime poll (points of Catalog.enabled per type) against 500 devices."""
    with SimulatorServer(fleet=Fleet.synthetic(500), start_time=SIM_START) as sim:
        client = make_client(sim, timeout=30)   # full chunks of every point: slow when loaded
        keys = [device.ps_key for device in sim.fleet.devices()]
        per_type = Counter(int(key.split("_")[1]) for key in keys)
        assert set(per_type) == set(CATALOG.device_types())
        assert min(per_type.values()) >= MAX_DEVICES_PER_CALL   # a full chunk of every type
        points = {number: [s.point_id for s in CATALOG.enabled(number)] for number in per_type}
        sim.reset_counts()
        result = client.get_real_time_data(keys, points)
        calls = [body for endpoint, _, body in sim.requests_log
                 if endpoint == "getDeviceRealTimeData"]
    assert len(result.devices) == len(keys)
    expected = sum(math.ceil(n / MAX_DEVICES_PER_CALL) for n in per_type.values())
    # distinct requests: on a loaded machine a slow answer may be retried, which is not a new call
    assert len({(body["device_type"], tuple(body["ps_key_list"])) for body in calls}) == expected
    for body in calls:   # each call asks for every polled point of its type at once
        wanted = {str(point) for point in points[int(body["device_type"])]}
        assert set(body["point_id_list"]) == wanted
