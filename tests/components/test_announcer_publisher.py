"""The announcer and the publisher following the fleet, on a recording MQTT connection."""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Dict, List, Optional

from component_support import RecordingMqtt
from sungrow2mqtt import discovery
from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.components.announcer import Announcer
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.publisher import Publisher
from sungrow2mqtt.config import HomeAssistantConfig
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.model import device_from_row, plant_from_row

CATALOG = load_catalog()
TOPICS = Topics("solar", "ha")
PLANT = plant_from_row({"ps_id": 5012345, "ps_name": "Home"}, "Plant")
ESS = device_from_row({"ps_key": "5012345_14_1_1", "device_type": 14, "device_sn": "A1"}, PLANT,
                      "Energy Storage System")
SOC = next(s for s in CATALOG.enabled(14) if s.key == "battery_soc")
SOC_CONFIG = f"ha/sensor/sungrow2mqtt_{ESS.ps_key}/battery_soc/config"


def wired(tmp_path: Path, denied: Optional[Dict[str, dt.datetime]] = None):
    mqtt, births = RecordingMqtt(), []  # type: ignore[var-annotated]
    fleet = FleetState()
    announcer = Announcer(mqtt, TOPICS, CATALOG,   # type: ignore[arg-type]
                          HomeAssistantConfig(True, "ha", "ha/status"),
                          on_ha_birth=lambda: births.append(1))
    publisher = Publisher(mqtt, TOPICS, fleet, api_calls=lambda: 7,   # type: ignore[arg-type]
                          status_file=tmp_path / "status.json",
                          denied_apis=lambda: dict(denied or {}))
    fleet.listen(announcer)
    fleet.listen(publisher)
    announcer.start()
    fleet.set_devices({PLANT.ps_key: PLANT, ESS.ps_key: ESS})
    return mqtt, fleet, announcer, births


def topics(mqtt: RecordingMqtt) -> List[str]:
    return [t for t, _, _ in mqtt.published]


def test_an_entity_is_announced_once_with_its_first_value_and_before_its_state(tmp_path):
    mqtt, fleet, announcer, _ = wired(tmp_path)
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    fleet.update_values(ESS, {"battery_soc": 56, "last_update": "t2"})
    sent = topics(mqtt)
    assert sent.count(SOC_CONFIG) == 1
    assert sent.index(SOC_CONFIG) < sent.index("solar/5012345_14_1_1")
    assert mqtt.on("solar/5012345_14_1_1")[-1] == {"battery_soc": 56, "last_update": "t2"}
    assert SOC_CONFIG in announcer.announced()
    info = mqtt.on("solar/bridge/info")[-1]
    assert info["devices"][0]["ps_key"] == ESS.ps_key and info["api_calls_total"] == 7
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["mqtt_connected"] is True


def test_a_device_that_leaves_has_its_configs_and_topics_cleared(tmp_path):
    mqtt, fleet, announcer, _ = wired(tmp_path)
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    mark = len(mqtt.published)
    fleet.set_devices({PLANT.ps_key: PLANT})
    cleared = {t for t, payload, retain in mqtt.published[mark:] if payload is None and retain}
    assert {SOC_CONFIG, *discovery.device_configs(ESS, TOPICS),
            "solar/5012345_14_1_1", "solar/5012345_14_1_1/faults"} == cleared
    assert not any(ESS.ps_key in t for t in announcer.announced())


def test_stale_configs_of_ours_are_cleared_after_a_full_poll_and_others_left(tmp_path):
    mqtt, fleet, _, _ = wired(tmp_path)
    ours = "ha/sensor/sungrow2mqtt_5012345_14_1_1/old_point/config"
    nested = "ha/sensor/sungrow2mqtt_5012345_14_1_1/other/config"
    mqtt.deliver(ours, json.dumps({"state_topic": "solar/5012345_14_1_1"}).encode(), True)
    mqtt.deliver(nested, json.dumps({"state_topic": "solarx/5012345_14_1_1"}).encode(), True)
    assert not mqtt.on(ours)                     # not before every device was polled
    fleet.full_poll_done()
    assert mqtt.on(ours) == [None] and not mqtt.on(nested)


def test_home_assistants_birth_asks_for_a_republish(tmp_path):
    mqtt, _, _, births = wired(tmp_path)
    mqtt.deliver("ha/status", b"offline")
    mqtt.deliver("ha/status", b" Online\n")
    assert births == [1]


def test_bridge_info_names_denied_apis_with_their_time_and_advice(tmp_path):
    until = dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.timezone.utc)
    mqtt, fleet, _, _ = wired(tmp_path, {"getFaultAlarmInfo": until})
    info = mqtt.on("solar/bridge/info")[-1]
    assert info["denied_apis"] == [{
        "api": "getFaultAlarmInfo", "until": "2026-06-17T12:00:00+00:00",
        "advice": "enable it for your application on the developer portal"}]
    assert wired(tmp_path)[0].on("solar/bridge/info")[-1]["denied_apis"] == []


def test_a_device_the_cloud_cannot_serve_is_named_in_bridge_info_and_logged_once(tmp_path,
                                                                                 caplog):
    mqtt, fleet, _, _ = wired(tmp_path)
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    since = dt.datetime(2026, 6, 17, 11, 0, tzinfo=dt.timezone.utc)
    for minutes in range(3):                       # three polls list it in fail_ps_key_list
        fleet.set_unserved(ESS, since + dt.timedelta(minutes=minutes))
    info = mqtt.on("solar/bridge/info")[-1]
    assert (info["devices"][0]["cloud_status"], info["devices"][0]["cloud_failed_since"]) == (
        "failed", "2026-06-17T11:00:00+00:00")
    assert info["plants"][0]["cloud_status"] == "ok"
    assert mqtt.on("solar/5012345_14_1_1")[-1]["battery_soc"] == 55   # last values kept
    lines = [r for r in caplog.records if ESS.ps_key in r.getMessage()]
    assert len(lines) == 1 and "fail_ps_key_list" in lines[0].getMessage()
    fleet.update_values(ESS, {"battery_soc": 56, "last_update": "t2"})
    info = mqtt.on("solar/bridge/info")[-1]
    assert (info["devices"][0]["cloud_status"], info["devices"][0]["cloud_failed_since"]) == (
        "ok", None)
    assert "serves 5012345_14_1_1 again" in caplog.records[-1].getMessage()
    fleet.set_unserved(ESS, since + dt.timedelta(hours=1))          # a new episode: a new line
    assert len([r for r in caplog.records if "fail_ps_key_list" in r.getMessage()]) == 2
