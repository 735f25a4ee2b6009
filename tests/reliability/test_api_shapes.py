"""The cloud answers with shapes the document does not promise: the bridge copes, publishes sense.

A tiny Open API server (stdlib ``http.server``) speaks the document's envelope (``req_serial_num``,
``result_code``, ``result_msg``, ``result_data``) but fills ``result_data`` of the four services the
bridge depends on with missing fields, extra fields, numbers as strings, empty lists, Chinese
names, nulls and wrong types.  Every scenario runs the bridge's real cycles against it; no cycle
may raise (the worker's first poll runs outside its safety net), nothing may be logged as an
unhandled exception, and every MQTT message must be well-formed: sane topics, JSON objects whose
values are finite numbers, text or null.
"""
from __future__ import annotations

import json
import logging
import math
import re
from typing import Any, Dict, Iterator

import pytest

from bridge_harness import config_dict
from mqtt_probe import MqttProbe
from reliability_support import (
    Answer, Driven, FakeOpenApi, ServerUrl, describe, shared_broker, unhandled,
)

__all__ = ["shared_broker"]   # fixture, used by name below

PS_KEY_RE = re.compile(r"^\d{1,12}_\d{1,3}_\d{1,6}_\d{1,6}$")
ID_RE = re.compile(r"^[a-zA-Z0-9_-]+$")

def _page(rows: Any, count: Any = None) -> Answer:
    return lambda body: {"pageList": rows, "rowCount": len(rows) if count is None else count}


def _constant(data: Any) -> Answer:
    return lambda body: data


def _realtime(rows_by_type: Dict[str, Any]) -> Answer:
    """getDeviceRealTimeData: the rows of the asked device type only (as the document has it)."""
    return lambda body: rows_by_type.get(str(body.get("device_type")), {
        "device_point_list": [], "fail_sn_list": []})


PLANT = {"ps_id": "5001", "ps_name": "阳光电站一号", "ps_type": "5",
         "ps_current_time_zone": "GMT+8", "valid_flag": "1"}
ESS = {"ps_id": "5001", "ps_key": "5001_14_1_1", "device_type": "14", "device_sn": "A2231234567",
       "device_model_code": "SH10RT", "device_name": "储能逆变器"}
FAULT = {"ps_id": "5001", "ps_key": "5001_14_1_1", "fault_code": "900001", "fault_name": "电池告警",
         "fault_type_code": "13824", "fault_level": "2", "fault_type": "2",
         "create_time": "2026-11-25 10:00:00", "process_status": "1"}

SCENARIOS: Dict[str, Dict[str, Answer]] = {
    # numbers as strings, extra fields everywhere, Chinese names, a second plant's rows
    "strings-extras-chinese": {
        "getPowerStationList": _page([dict(PLANT, extra={"nested": [1, 2]}, more=None)], "1"),
        "getDeviceListByUser": _page([dict(ESS, unexpected=[{"x": 1}], firmware_version_info={
            "lcd_version": "LCD_固件_V11"})], "1"),
        "getDeviceRealTimeData": _realtime({"14": {
            "device_point_list": [{"device_point": {
                "ps_key": "5001_14_1_1", "device_time": "20261125120000", "p13011": "1234",
                "p13141": "0.55", "p13019": " 31.5 ", "p13146": "0", "p99999": "7",
                "extra": "字段"}}],
            "fail_sn_list": [], "unexpected": {"a": 1}}}),
        "getFaultAlarmInfo": _page([dict(FAULT, extra_field="额外")], "1"),
    },
    # fields the bridge reads are missing
    "missing-fields": {
        "getPowerStationList": _page([{"ps_id": 5001}]),
        "getDeviceListByUser": _page([
            {"ps_id": 5001, "ps_key": "5001_14_1_1", "device_type": 14},   # no SN, no model
            {"ps_id": 5001, "device_type": 14},                             # no ps_key
            {"ps_key": "5001_14_2_1", "device_type": 14},                   # no ps_id
            {"ps_id": 5001, "ps_key": "5001_14_3_1"},                       # no device_type
        ]),
        "getDeviceRealTimeData": _realtime({"14": {"device_point_list": [
            {"device_point": {"ps_key": "5001_14_1_1", "p13011": 100}},     # no device_time
            {"device_point": {"p13011": 5}},                                # no ps_key
            {},                                                             # no device_point
        ]}}),
        "getFaultAlarmInfo": _page([{"fault_name": "orphan"},                # neither key nor id
                                    {"ps_id": 5001}]),                      # plant fault, bare
    },
    # empty lists, nulls, no result_data at all
    "empty-and-null": {
        "getPowerStationList": _page(None, None),
        "getDeviceListByUser": _constant(None),
        "getDeviceRealTimeData": _constant(None),
        "getFaultAlarmInfo": _constant({}),
    },
    # one plant and device, but realtime and fault answers empty or null inside
    "empty-readings": {
        "getPowerStationList": _page([PLANT]),
        "getDeviceListByUser": _page([ESS]),
        "getDeviceRealTimeData": _realtime({"14": {"device_point_list": None,
                                                   "fail_sn_list": None}}),
        "getFaultAlarmInfo": _page(None, "0"),
    },
    # numbers that are not readings
    "hostile-values": {
        "getPowerStationList": _page([dict(PLANT, ps_name="x" * 5000)]),
        "getDeviceListByUser": _page([dict(ESS, device_sn="SN\n\t\x00", device_model_code="")]),
        "getDeviceRealTimeData": _realtime({"14": {"device_point_list": [{"device_point": {
            "ps_key": "5001_14_1_1", "device_time": "not a time", "p13011": "NaN",
            "p13003": "Infinity", "p13141": "1e308", "p13019": True, "p13157": [1],
            "p13008": {"value": 1}, "p13007": "--", "p13146": "999999"}}]}}),
        "getFaultAlarmInfo": _page([dict(FAULT, create_time="yesterday", fault_level=None)]),
    },
    # ps_keys that would make odd MQTT topics
    "hostile-ps-keys": {
        "getPowerStationList": _page([PLANT]),
        "getDeviceListByUser": _page([
            dict(ESS, ps_key="5001_14_9_1/../../evil"), dict(ESS, ps_key="5001_14_8_1/#"),
            dict(ESS, ps_key="5001_14_+_1"), dict(ESS, ps_key="5001_14_1_1")]),
        "getDeviceRealTimeData": _realtime({"14": {"device_point_list": [{"device_point": {
            "ps_key": "5001_14_1_1", "p13011": "1"}}]}}),
        "getFaultAlarmInfo": _page([dict(FAULT, ps_key="5001_14_8_1/#")]),
    },
    # wrong JSON types where lists and objects belong
    "wrong-types": {
        "getPowerStationList": _page([PLANT, None, "plant", 42]),
        "getDeviceListByUser": _page([ESS, None, dict(ESS, ps_key="5001_14_2_1",
                                                      device_type="ESS")]),
        "getDeviceRealTimeData": _realtime({"14": {"device_point_list": [
            None, "x", {"device_point": ["ps_key"]},
            {"device_point": {"ps_key": "5001_14_1_1", "p13011": "12"}}]}}),
        "getFaultAlarmInfo": _page([None, "fault", FAULT]),
    },
    "wrong-container-types": {
        "getPowerStationList": _page({"0": PLANT}, "abc"),
        "getDeviceListByUser": _page("not a list"),
        "getDeviceRealTimeData": _constant({"device_point_list": 7}),
        "getFaultAlarmInfo": _constant(["not", "an", "object"]),
    },
}


@pytest.fixture
def fake_api(request: pytest.FixtureRequest) -> Iterator[FakeOpenApi]:
    server = FakeOpenApi(SCENARIOS[request.param])
    yield server
    server.stop()


def _check_value(topic: str, key: str, value: Any) -> None:
    assert value is None or isinstance(value, (str, int, float)), (topic, key, value)
    assert not isinstance(value, bool), (topic, key, value)
    if isinstance(value, float):
        assert math.isfinite(value), (topic, key, value)
    if isinstance(value, str):
        assert value not in ("None", "nan", "NaN", "inf"), (topic, key, value)


def _assert_well_formed(probe: MqttProbe, base: str, prefix: str) -> None:
    for topic, payload, _ in probe.history:
        if not payload:
            continue                               # clearing a retained topic is fine
        if topic.startswith(prefix + "/"):
            parts = topic.split("/")
            assert len(parts) == 5 and parts[-1] == "config", topic
            assert all(ID_RE.match(level) for level in parts[2:4]), topic
            config = json.loads(payload)
            assert isinstance(config, dict) and config.get("unique_id"), topic
            assert all(t.startswith(base + "/") for k, t in config.items()
                       if k.endswith("_topic") and isinstance(t, str)), config
            continue
        rest = topic[len(base) + 1:]
        if rest.startswith("bridge/"):
            if rest in ("bridge/info", "bridge/devices", "bridge/sync") \
                    or rest.startswith("bridge/response/"):
                assert isinstance(json.loads(payload), dict), topic
            continue
        parts = rest.split("/")
        assert PS_KEY_RE.match(parts[0]) and parts[1:] in ([], ["faults"]), \
            f"garbage topic {topic!r}"
        document = json.loads(payload)          # strict: NaN/Infinity are not JSON
        assert isinstance(document, dict), topic
        if parts[1:] == ["faults"]:
            assert document["problem"] in ("ON", "OFF") and isinstance(document["faults"], list)
            for fault in document["faults"]:
                for key, value in fault.items():
                    _check_value(topic, key, value)
        else:
            for key, value in document.items():
                _check_value(topic, key, value)


def _strict_json(payload: bytes) -> Any:
    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")
    return json.loads(payload, parse_constant=refuse)


@pytest.mark.parametrize("fake_api", list(SCENARIOS), indirect=True)
def test_unexpected_api_shapes_neither_crash_nor_publish_garbage(
        fake_api, shared_broker, base_topic, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    prefix = f"{base_topic}_ha"
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#", f"{prefix}/#")
    driven = Driven(config_dict(ServerUrl(fake_api.url), shared_broker.port, base_topic, tmp_path),
                    tmp_path)
    try:
        for _ in range(2):
            try:
                driven.cycle(devices=True)
            except Exception as exc:   # the worker's first poll has no safety net
                raise AssertionError(f"a cycle raised {type(exc).__name__}: {exc}; the worker "
                                     "thread would die on this answer") from exc
        driven.service.publisher.publish_devices()
        driven.service.publisher.publish_info()
        driven.flush()
        probe.wait_topic(f"{base_topic}/bridge/info")
        probe.wait_topic(f"{base_topic}/bridge/devices")
        assert fake_api.calls.get("getFaultAlarmInfo", 0) >= 1 or not driven.fleet.devices()
        for topic, payload, _ in probe.history:
            if payload and not topic.endswith("/bridge/state"):
                _strict_json(payload)
        _assert_well_formed(probe, base_topic, prefix)
        listed = json.loads(probe.messages[f"{base_topic}/bridge/devices"])
        assert isinstance(listed["plants"], list) and isinstance(listed["devices"], list)
        assert not unhandled(caplog), ("the answer reached a last-resort exception handler "
                                       "instead of being skipped or understood:\n"
                                       + describe(unhandled(caplog)))
    finally:
        driven.stop()
        probe.close()


@pytest.mark.parametrize("fake_api", ["strings-extras-chinese"], indirect=True)
def test_numbers_as_strings_and_chinese_names_are_understood(
        fake_api, shared_broker, base_topic, tmp_path):
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
    driven = Driven(config_dict(ServerUrl(fake_api.url), shared_broker.port, base_topic, tmp_path),
                    tmp_path)
    try:
        driven.cycle(devices=True)
        state = json.loads(probe.wait_topic(f"{base_topic}/5001_14_1_1"))
        assert state["active_power"] == 1234
        assert state["battery_soc"] == 55
        assert state["internal_temperature"] == 31.5
        assert state["last_update"] == "2026-11-25T12:00:00+08:00"
        faults = json.loads(probe.wait_topic(f"{base_topic}/5001_14_1_1/faults"))
        assert faults["problem"] == "ON" and faults["faults"][0]["name"] == "电池告警"
        listed = json.loads(probe.wait_topic(f"{base_topic}/bridge/devices"))
        assert listed["plants"][0]["name"] == "阳光电站一号"
    finally:
        driven.stop()
        probe.close()
