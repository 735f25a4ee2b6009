"""The announcer and the publisher following the fleet, on a recording MQTT connection."""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from component_support import RecordingMqtt
from sungrow2mqtt import discovery
from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.components.announcer import Announcer
from sungrow2mqtt.components.fleet import FleetState, PollOutcome
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


@pytest.fixture
def wire(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Builds a fleet, an announcer (its thread running) and a publisher on a recording MQTT
    connection; ``wire(denied)`` returns (mqtt, fleet, announcer, births).  Stops them after."""
    announcers: List[Announcer] = []

    def build(denied: Optional[Dict[str, dt.datetime]] = None) -> Any:
        mqtt, fleet, announcer, births = _wired(tmp_path, denied)
        announcers.append(announcer)
        return mqtt, fleet, announcer, births
    yield build
    for announcer in announcers:
        announcer.stop()


@pytest.fixture
def wired(wire: Callable[..., Any]) -> Any:
    """(mqtt, fleet, announcer, births), no API denied."""
    return wire()


def _wired(tmp_path: Path, denied: Optional[Dict[str, dt.datetime]]) -> Any:
    mqtt, births = RecordingMqtt(), []  # type: ignore[var-annotated]
    fleet = FleetState()
    publisher = Publisher(mqtt, TOPICS, fleet, api_calls=lambda: 7,   # type: ignore[arg-type]
                          status_file=tmp_path / "status.json",
                          denied_apis=lambda: dict(denied or {}))

    def republish() -> None:
        births.append(1)
        publisher.republish()
    announcer = Announcer(mqtt, TOPICS, CATALOG,   # type: ignore[arg-type]
                          HomeAssistantConfig(True, "ha", "ha/status"), on_republish=republish)
    fleet.listen(announcer)
    fleet.listen(publisher)
    announcer.start()
    fleet.set_devices({PLANT.ps_key: PLANT, ESS.ps_key: ESS})
    return mqtt, fleet, announcer, births


def topics(mqtt: RecordingMqtt) -> List[str]:
    return [t for t, _, _ in mqtt.published]


def test_an_entity_is_announced_once_with_its_first_value(wired, tmp_path):
    mqtt, fleet, announcer, _ = wired
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    assert announcer.flush(5)
    fleet.update_values(ESS, {"battery_soc": 56, "last_update": "t2"})
    assert announcer.flush(5)
    sent = topics(mqtt)
    assert sent.count(SOC_CONFIG) == 1
    assert mqtt.on("solar/5012345_14_1_1")[-1] == {"battery_soc": 56, "last_update": "t2"}
    assert SOC_CONFIG in announcer.announced()
    fleet.heartbeat()                            # as a poll would: bridge/info, status file
    assert mqtt.on("solar/bridge/info")[-1]["api_calls_total"] == 7
    assert mqtt.on("solar/bridge/devices")[-1]["devices"][0]["ps_key"] == ESS.ps_key
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["mqtt_connected"] is True


def test_bridge_devices_goes_out_with_the_device_list_not_with_every_poll(wired):
    """bridge/info follows every poll; the device list (160 KB at 1,000 devices) only the list
    and the devices' cloud status."""
    mqtt, fleet, _, _ = wired
    assert [d["ps_key"] for d in mqtt.on("solar/bridge/devices")[-1]["devices"]] == [ESS.ps_key]
    assert [p["ps_key"] for p in mqtt.on("solar/bridge/devices")[-1]["plants"]] == [PLANT.ps_key]
    infos, lists = len(mqtt.on("solar/bridge/info")), len(mqtt.on("solar/bridge/devices"))
    for _ in range(3):
        fleet.record_outcome("realtime", PollOutcome(ok=True))
        fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    assert len(mqtt.on("solar/bridge/info")) == infos + 3
    assert len(mqtt.on("solar/bridge/devices")) == lists
    assert "devices" not in mqtt.on("solar/bridge/info")[-1]
    fleet.set_devices({PLANT.ps_key: PLANT, ESS.ps_key: ESS})   # an hourly device poll: same
    assert len(mqtt.on("solar/bridge/devices")) == lists
    fleet.set_devices({PLANT.ps_key: PLANT})
    assert mqtt.on("solar/bridge/devices")[-1]["devices"] == []
    assert len(mqtt.on("solar/bridge/devices")) == lists + 1


def test_a_bridge_devices_paho_refused_goes_out_with_the_next_bridge_info():
    """A cloud status that changed while the list could not be sent is not left unsent until
    the next device poll: the next bridge/info (every wave) tries the list again."""
    refused = {"solar/bridge/devices"}

    class Refusing(RecordingMqtt):
        def publish(self, topic: str, payload: Any, **kwargs: Any) -> bool:
            if topic in refused:
                return False
            return super().publish(topic, payload, **kwargs)
    mqtt, fleet = Refusing(), FleetState()
    publisher = Publisher(mqtt, TOPICS, fleet, api_calls=lambda: 0)   # type: ignore[arg-type]
    fleet.listen(publisher)
    fleet.set_devices({PLANT.ps_key: PLANT, ESS.ps_key: ESS})
    fleet.set_unserved(ESS, dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc))
    assert not mqtt.on("solar/bridge/devices")
    refused.clear()
    fleet.record_outcome("realtime", PollOutcome(ok=True))
    assert mqtt.on("solar/bridge/devices")[-1]["devices"][0]["cloud_status"] == "failed"


def test_a_republish_before_the_first_device_list_leaves_bridge_devices_alone():
    """The broker keeps the last run's list; an empty one would replace it until the device
    poll came back."""
    mqtt, fleet = RecordingMqtt(), FleetState()
    publisher = Publisher(mqtt, TOPICS, fleet, api_calls=lambda: 0)   # type: ignore[arg-type]
    fleet.listen(publisher)
    publisher.republish()
    assert mqtt.on("solar/bridge/info") and not mqtt.on("solar/bridge/devices")
    fleet.set_devices({PLANT.ps_key: PLANT})
    publisher.republish()
    assert [p["ps_key"] for p in mqtt.on("solar/bridge/devices")[-1]["plants"]] == [PLANT.ps_key]
    assert len(mqtt.on("solar/bridge/devices")) == 2       # the device poll's, the republish's


def test_a_device_that_leaves_has_its_configs_and_topics_cleared(wired):
    mqtt, fleet, announcer, _ = wired
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    assert announcer.flush(5)
    mark = len(mqtt.published)
    fleet.set_devices({PLANT.ps_key: PLANT})
    assert announcer.flush(5)
    cleared = {t for t, payload, retain in mqtt.published[mark:] if payload is None and retain}
    assert {SOC_CONFIG, *discovery.device_configs(ESS, TOPICS),
            "solar/5012345_14_1_1", "solar/5012345_14_1_1/faults"} == cleared
    assert not any(ESS.ps_key in t for t in announcer.announced())


def _config_of(base: str) -> bytes:
    return json.dumps({"state_topic": f"{base}/5012345_14_1_1",
                       "availability": [{"topic": f"{base}/bridge/state"}]}).encode()


def test_stale_configs_of_ours_are_cleared_after_a_full_poll_and_others_left(wired):
    mqtt, fleet, announcer, _ = wired
    ours = "ha/sensor/sungrow2mqtt_5012345_14_1_1/old_point/config"
    connection = "ha/binary_sensor/sungrow2mqtt_bridge_solar/old_connection/config"
    others = {"solarx": "ha/sensor/sungrow2mqtt_5012345_14_1_1/other/config",
              # a bridge on a base topic below ours is another bridge (issue 14.7)
              "solar/garage": "ha/sensor/sungrow2mqtt_5012345_14_1_1/garage/config"}
    mqtt.deliver(ours, _config_of("solar"), True)
    mqtt.deliver(connection, json.dumps({"state_topic": "solar/bridge/state"}).encode(), True)
    for base, topic in others.items():
        mqtt.deliver(topic, _config_of(base), True)
    assert announcer.flush(5)
    assert not mqtt.on(ours)                     # not before every device was polled
    assert "ha/+/+/+/config" in mqtt.handlers
    fleet.full_poll_done()
    assert announcer.flush(5)
    assert mqtt.on(ours) == [None] and mqtt.on(connection) == [None]
    assert not [t for t in others.values() if mqtt.on(t)]
    assert "ha/+/+/+/config" not in mqtt.handlers   # our own configs no longer come back


def test_home_assistants_birth_asks_for_a_republish(wired):
    mqtt, fleet, announcer, births = wired
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    assert announcer.flush(5)
    mark = len(mqtt.published)
    mqtt.deliver("ha/status", b"offline")
    mqtt.deliver("ha/status", b" Online\n")
    assert announcer.flush(5)
    assert births == [1]
    again = topics(mqtt)[mark:]
    assert again.index("solar/5012345_14_1_1") < again.index(SOC_CONFIG)   # states first


def test_births_during_a_republish_cost_one_more_republish_not_one_each():
    mqtt = RecordingMqtt()
    running, release, republishes = threading.Event(), threading.Event(), []

    def slow_republish() -> None:
        republishes.append(1)
        running.set()
        release.wait(5)
    announcer = Announcer(mqtt, TOPICS, CATALOG,   # type: ignore[arg-type]
                          HomeAssistantConfig(True, "ha", "ha/status"),
                          on_republish=slow_republish)
    announcer.start()
    try:
        mqtt.deliver("ha/status", b"online")
        assert running.wait(5)
        for _ in range(2000):                    # a flood while the first one runs
            mqtt.deliver("ha/status", b"online")
        release.set()
        assert announcer.flush(5)
        assert republishes == [1, 1]
    finally:
        release.set()
        announcer.stop()


def test_a_config_paho_refused_is_sent_again_and_not_counted_as_announced(wired):
    mqtt, fleet, announcer, _ = wired
    assert announcer.flush(5)
    refused = threading.Event()
    accept = mqtt.publish

    def publish(topic, payload, **kwargs):
        if topic == SOC_CONFIG and not refused.is_set():
            refused.set()
            return False
        return accept(topic, payload, **kwargs)
    mqtt.publish = publish   # type: ignore[method-assign]
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    assert refused.wait(5)
    assert SOC_CONFIG not in announcer.announced()
    announcer.republish()                        # the retry comes now, not after RETRY_DELAY
    assert announcer.flush(5)
    assert SOC_CONFIG in announcer.announced() and mqtt.on(SOC_CONFIG)


def test_an_unchanged_state_is_not_published_again_but_a_republish_sends_it(wired):
    mqtt, fleet, announcer, _ = wired
    for _ in range(3):
        fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    assert len(mqtt.on("solar/5012345_14_1_1")) == 1
    announcer.republish()
    assert announcer.flush(5)
    assert len(mqtt.on("solar/5012345_14_1_1")) == 2


def test_bridge_info_names_denied_apis_with_their_time_and_advice(wire):
    until = dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.timezone.utc)
    mqtt, fleet, _, _ = wire({"getFaultAlarmInfo": until})
    fleet.heartbeat()
    info = mqtt.on("solar/bridge/info")[-1]
    assert info["denied_apis"] == [{
        "api": "getFaultAlarmInfo", "until": "2026-06-17T12:00:00+00:00",
        "advice": "enable it for your application on the developer portal"}]
    mqtt, fleet, _, _ = wire()
    fleet.heartbeat()
    assert mqtt.on("solar/bridge/info")[-1]["denied_apis"] == []


def test_a_device_the_cloud_cannot_serve_is_named_in_bridge_devices_and_logged_once(wired,
                                                                                   caplog):
    mqtt, fleet, _, _ = wired
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    fleet.update_values(ESS, {"battery_soc": 55, "last_update": "t1"})
    since = dt.datetime(2026, 6, 17, 11, 0, tzinfo=dt.timezone.utc)
    for minutes in range(3):                       # three polls list it in fail_ps_key_list
        fleet.set_unserved(ESS, since + dt.timedelta(minutes=minutes))
    listed = mqtt.on("solar/bridge/devices")[-1]
    assert (listed["devices"][0]["cloud_status"], listed["devices"][0]["cloud_failed_since"]) \
        == ("failed", "2026-06-17T11:00:00+00:00")
    assert listed["plants"][0]["cloud_status"] == "ok"
    assert mqtt.on("solar/5012345_14_1_1")[-1]["battery_soc"] == 55   # last values kept
    lines = [r for r in caplog.records if ESS.ps_key in r.getMessage()]
    assert len(lines) == 1 and "fail_ps_key_list" in lines[0].getMessage()
    fleet.update_values(ESS, {"battery_soc": 56, "last_update": "t2"})
    listed = mqtt.on("solar/bridge/devices")[-1]
    assert (listed["devices"][0]["cloud_status"], listed["devices"][0]["cloud_failed_since"]) \
        == ("ok", None)
    assert "serves 5012345_14_1_1 again" in caplog.records[-1].getMessage()
    fleet.set_unserved(ESS, since + dt.timedelta(hours=1))          # a new episode: a new line
    assert len([r for r in caplog.records if "fail_ps_key_list" in r.getMessage()]) == 2


def test_a_status_file_that_cannot_be_written_is_tried_again_and_said_once(tmp_path, wire,
                                                                         caplog):
    status = tmp_path / "status.json"
    status.mkdir()                       # as good as a full disk: the write fails
    (status / "x").write_text("")
    mqtt, fleet, _, _ = wire()
    fleet.heartbeat()
    fleet.heartbeat()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "Cannot write status file" in warnings[0].getMessage()
    (status / "x").unlink()
    status.rmdir()                       # the disk has room again
    fleet.heartbeat()
    assert json.loads(status.read_text())["mqtt_connected"] is True
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_a_devices_faults_are_capped_and_say_how_many_more(wired):
    mqtt, fleet, _, _ = wired
    faults = [{"code": n, "since": f"2026-11-25T10:{n // 60:02d}:{n % 60:02d}+01:00"}
              for n in range(120)]
    fleet.set_faults(ESS, faults)
    payload = mqtt.on("solar/5012345_14_1_1/faults")[-1]
    assert payload["problem"] == "ON" and payload["not_shown"] == 70
    assert [f["code"] for f in payload["faults"]] == list(range(70, 120))   # the newest
