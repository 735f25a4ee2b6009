"""Discovery payloads are pure functions: check them against Home Assistant's rules here."""
import datetime as dt
import re

import pytest

from sungrow2mqtt import discovery
from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.model import Device, device_from_row, parse_device_time, parse_time_zone, \
    plant_from_row

TOPICS = Topics("sungrow2mqtt", "homeassistant")
PLANT = plant_from_row({"ps_id": 5012345, "ps_name": "Hybrid Home", "ps_type": 5,
                        "ps_current_time_zone": "GMT+1"}, "Plant")
ESS = device_from_row({"ps_key": "5012345_14_1_1", "device_type": 14,
                       "device_model_code": "SH10RT", "device_sn": "A2231234567",
                       "firmware_version_info": {"lcd_version": "LCD_SH10RT_V11"}}, PLANT,
                      "Energy Storage System")
CATALOG = load_catalog()


def test_sensor_config_has_everything_home_assistant_needs():
    spec = next(s for s in CATALOG.enabled(14) if s.device_class == "energy")
    topic, payload = discovery.sensor_config(ESS, spec, TOPICS)
    assert topic == f"homeassistant/sensor/sungrow2mqtt_5012345_14_1_1/{spec.key}/config"
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", topic.split("/")[2])
    assert payload["unique_id"] == f"sungrow2mqtt_5012345_14_1_1_{spec.key}"
    assert payload["object_id"] == f"sungrow_sh10rt_a2231234567_{spec.key}"
    assert payload["default_entity_id"] == f"sensor.sungrow_sh10rt_a2231234567_{spec.key}"
    assert payload["state_topic"] == "sungrow2mqtt/5012345_14_1_1"
    assert payload["value_template"] == "{{ value_json.%s }}" % spec.key
    assert payload["unit_of_measurement"] == "kWh"
    assert payload["state_class"] == "total_increasing"
    assert payload["availability"] == [{"topic": "sungrow2mqtt/bridge/state"}]
    assert payload["origin"]["name"] == "sungrow2mqtt"
    device = payload["device"]
    assert device == {"identifiers": ["sungrow2mqtt_5012345_14_1_1"], "name": "SH10RT A2231234567",
                      "manufacturer": "SUNGROW", "model": "SH10RT",
                      "serial_number": "A2231234567", "sw_version": "LCD_SH10RT_V11",
                      "via_device": "sungrow2mqtt_5012345_11_0_0"}


def test_entity_names_do_not_repeat_the_device_name():
    for spec in CATALOG.enabled(14):
        _, payload = discovery.sensor_config(ESS, spec, TOPICS)
        assert not payload["name"].lower().startswith(payload["device"]["name"].lower())


def test_plant_is_a_device_via_the_bridge():
    _, payload = discovery.problem_config(PLANT, TOPICS)
    assert payload["device"]["via_device"] == TOPICS.bridge_id
    assert payload["device"]["model"] == "Residential Storage"
    assert payload["state_topic"] == "sungrow2mqtt/5012345_11_0_0/faults"
    assert payload["device_class"] == "problem"


def test_bridge_has_a_refresh_button():
    configs = discovery.bridge_configs(TOPICS)
    button = configs[f"homeassistant/button/{TOPICS.bridge_id}/refresh/config"]
    assert button["command_topic"] == "sungrow2mqtt/bridge/request/refresh"


def test_every_entity_names_its_entity_id_for_old_and_new_home_assistant():
    """HA < 2025.10 reads object_id, later HA default_entity_id (2026.4+ only that)."""
    configs = {**discovery.bridge_configs(TOPICS), **discovery.device_configs(ESS, TOPICS),
               **dict(discovery.sensor_config(ESS, spec, TOPICS) for spec in CATALOG.enabled(14))}
    for topic, payload in configs.items():
        component = topic.split("/")[1]
        assert payload["default_entity_id"] == f"{component}.{payload['object_id']}", topic
        assert re.fullmatch(r"[a-z0-9_]+", payload["object_id"]), topic
    assert configs["homeassistant/button/sungrow2mqtt_bridge_sungrow2mqtt/refresh/config"][
        "default_entity_id"] == "button.sungrow2mqtt_refresh"


def test_data_time_is_a_diagnostic_timestamp_of_the_state():
    topic, payload = discovery.data_time_config(ESS, TOPICS)
    assert topic == "homeassistant/sensor/sungrow2mqtt_5012345_14_1_1/data_time/config"
    assert payload["default_entity_id"] == "sensor.sungrow_sh10rt_a2231234567_data_time"
    assert payload["state_topic"] == "sungrow2mqtt/5012345_14_1_1"
    assert payload["value_template"] == "{{ value_json.last_update }}"
    assert payload["device_class"] == "timestamp"
    assert payload["entity_category"] == "diagnostic"
    assert "unit_of_measurement" not in payload and "state_class" not in payload
    assert set(discovery.device_configs(ESS, TOPICS)) == {
        topic, "homeassistant/binary_sensor/sungrow2mqtt_5012345_14_1_1/problem/config"}


def test_time_zones_and_device_time():
    assert parse_time_zone("GMT+1").utcoffset(None) == dt.timedelta(hours=1)
    assert parse_time_zone("GMT-3:30").utcoffset(None) == -dt.timedelta(hours=3, minutes=30)
    assert parse_time_zone("UTC+08:00").utcoffset(None) == dt.timedelta(hours=8)
    assert parse_time_zone("").utcoffset(None) == dt.timedelta(0)
    assert parse_device_time("20251125101500", parse_time_zone("GMT+10")) == \
        "2025-11-25T10:15:00+10:00"
    assert parse_device_time("--", parse_time_zone("GMT+1")) is None


@pytest.mark.parametrize("text, expected", [
    (20250701120000, "2025-07-01T12:00:00+02:00"),          # a number, summer time in Berlin
    ("20251231235959", "2025-12-31T23:59:59+01:00"),
    ("20251332101500", None), ("20250230101500", None),     # no 13th month, no 30 February
    ("20251125246000", None), ("2025112510150", None), (" 20251125101500", None),
    ("２０２５１１２５１０１５００", None), ("2025-11-25 10:15", None), (None, None),
])
def test_device_time_is_read_exactly_or_not_at_all(text, expected):
    assert parse_device_time(text, parse_time_zone("Europe/Berlin")) == expected


def test_device_names_survive_odd_rows():
    device = device_from_row({"ps_key": "1_7_1_1", "device_type": "7"}, PLANT, "Meter")
    assert isinstance(device, Device) and device.name == "Meter 1_7_1_1"
    assert device.object_prefix == "sungrow_meter_1_7_1_1"


def test_battery_firmware_is_read_under_both_names():
    for field in ("battery_version", "bat_version"):
        battery = device_from_row({"ps_key": "5012345_43_3_1", "device_type": 43,
                                   "device_sn": "S1", "firmware_version_info": {field: "SBR_01"}},
                                  PLANT, "Battery")
        assert battery.firmware == "SBR_01", field
        assert discovery.device_block(battery, TOPICS)["sw_version"] == "SBR_01"
