"""The real bridge against the simulator (real HTTP) and a real mosquitto; no mocks."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import yaml

from bridge_harness import Running, config_dict, configs, ready
from conftest import Broker, at_any_hour, plant_now
from mqtt_probe import MqttProbe
from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.simulator import SimulatorServer

CATALOG = load_catalog()


@pytest.fixture
def sim(request, sim_start) -> Iterator[SimulatorServer]:
    """The simulator; a test parametrized indirectly on ``sim`` picks its ``missing_reading``."""
    with SimulatorServer(start_time=sim_start,
                         missing_reading=getattr(request, "param", None)) as server:
        yield server


@pytest.fixture
def running(sim, broker, base_topic, tmp_path) -> Iterator[Running]:
    bridge = Running(config_dict(sim, broker.port, base_topic, tmp_path), tmp_path)
    yield bridge
    bridge.stop()


@pytest.fixture
def probe(broker, base_topic) -> Iterator[MqttProbe]:
    client = MqttProbe(broker.port, f"{base_topic}/#", f"{base_topic}_ha/#")
    yield client
    client.close()


@at_any_hour
@pytest.mark.parametrize("sim", [None, "--"], indirect=True, ids=["null", "dashes"])
def test_every_value_arrives_once_in_catalog_units_with_a_discovery_config(
        sim, running, probe, base_topic):
    """... whether a point without a reading comes as null or as "--" (some live plants)."""
    listed = ready(probe, base_topic)
    assert len(listed["plants"]) == 2 and len(listed["devices"]) >= 7
    announced = configs(probe, f"{base_topic}_ha")
    by_state: Dict[str, set] = {}
    for payload in announced.values():
        if "value_template" in payload and payload["state_topic"].count("/") == 1:
            key = re.search(r"value_json\.(\w+)", payload["value_template"]).group(1)
            by_state.setdefault(payload["state_topic"], set()).add(key)
    devices = {d.ps_key: d for d in sim.fleet.devices()}
    checked = 0
    for ps_key, device in devices.items():
        topic = f"{base_topic}/{ps_key}"
        if ps_key.split("_")[1] not in {str(t) for t in CATALOG.device_types()}:
            continue
        state = probe.json(topic)
        values = {k: v for k, v in state.items() if k != "last_update" and v is not None}
        assert values, f"no values for {ps_key}"
        # every value has a discovery config naming it, and nothing is announced without a value
        assert set(values) <= by_state[topic], set(values) - by_state[topic]
        specs = {s.key: s for s in CATALOG.enabled(device.device_type)}
        moment = dt.datetime.fromisoformat(state["last_update"]).timestamp()
        raw = sim.fleet.readings(device, [s.point_id for s in specs.values()], moment)
        for key, value in values.items():
            expected = specs[key].convert(raw.get(specs[key].point_id))
            if isinstance(value, (int, float)):
                assert value == pytest.approx(expected, rel=1e-6, abs=1e-6), (ps_key, key)
            else:
                assert value == expected, (ps_key, key)
            checked += 1
    assert checked > 40


def test_discovery_payloads_follow_home_assistant_rules(running, probe, base_topic):
    ready(probe, base_topic)
    announced = configs(probe, f"{base_topic}_ha")
    assert announced
    unique_ids = [p["unique_id"] for p in announced.values()]
    assert len(unique_ids) == len(set(unique_ids))
    for topic, payload in announced.items():
        parts = topic.split("/")
        assert len(parts) == 5 and parts[1] in ("sensor", "binary_sensor", "button")
        assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", level) for level in parts[2:4]), topic
        assert payload["origin"]["name"] == "sungrow2mqtt"
        device = payload["device"]
        assert device["identifiers"] and device["name"] and device["manufacturer"]
        assert payload.get("availability") == [{"topic": f"{base_topic}/bridge/state"}] or \
            payload.get("state_topic") == f"{base_topic}/bridge/state"
        if parts[1] == "sensor":
            assert payload["state_topic"].startswith(base_topic + "/")
            state = probe.json(payload["state_topic"])
            key = re.search(r"value_json\.(\w+)", payload["value_template"]).group(1)
            assert key in state, (topic, key)
            if payload.get("device_class") == "energy":
                assert payload["unit_of_measurement"] in ("Wh", "kWh", "MWh")
                assert payload["state_class"] in ("total", "total_increasing")
            if payload.get("device_class") == "power":
                assert payload["unit_of_measurement"] in ("W", "kW")
                assert payload["state_class"] == "measurement"
            if payload.get("device_class") == "battery":
                assert payload["unit_of_measurement"] == "%"
        if not device["identifiers"][0].startswith("sungrow2mqtt_bridge"):
            assert device["manufacturer"] == "SUNGROW" and device["via_device"]


def test_bridge_state_is_online_and_info_is_retained(running, probe, base_topic):
    ready(probe, base_topic)
    assert probe.messages[f"{base_topic}/bridge/state"] == b"online"
    info = probe.json(f"{base_topic}/bridge/info")
    assert info["version"] and info["last_poll"]["realtime"]["outcome"] == "ok"
    assert info["last_poll"]["realtime"]["api_calls"] >= 1
    assert "devices" not in info and "plants" not in info      # they are in bridge/devices


def test_bridge_devices_lists_every_device_and_follows_changes_not_polls(
        running, probe, base_topic):
    """bridge/devices (zigbee2mqtt's name) goes out when the list or a cloud status changes:
    at 1,000 devices it is 160 KB, which bridge/info used to carry with every poll."""
    listed = ready(probe, base_topic)
    assert [p["ps_key"] for p in listed["plants"]] == [f"{p['ps_id']}_11_0_0"
                                                       for p in listed["plants"]]
    battery = next(d for d in listed["devices"] if d["device_type"] == 43)
    assert battery["cloud_status"] == "ok" and battery["cloud_failed_since"] is None
    assert {"ps_key", "ps_id", "device_type", "type", "model", "serial", "name"} <= set(battery)
    topics = [f"{base_topic}/bridge/info", f"{base_topic}/bridge/devices"]

    def sent() -> List[int]:
        with probe.lock:
            return [sum(1 for t, _, _ in probe.history if t == topic) for topic in topics]
    before = sent()
    for _ in range(2):
        assert probe.request(base_topic, "refresh", {})["status"] == "ok"
    # bridge/devices would go out before the wave's bridge/info, on the same connection
    probe.wait_for(lambda p: sent()[0] >= before[0] + 2, 10, "bridge/info after each refresh")
    devices = sent()[1]
    assert devices == before[1]
    answer = probe.request(base_topic, "info", {})
    assert answer["status"] == "ok" and answer["data"]["published"] == topics
    probe.wait_for(lambda p: sent()[1] > devices, 10, "bridge/devices on request")


def test_refresh_request_answers_after_new_states(sim, running, probe, base_topic):
    ready(probe, base_topic)
    before = sim.call_counts().get("getDeviceRealTimeData", 0)
    response = probe.request(base_topic, "refresh", {})
    assert response["status"] == "ok", response
    assert sim.call_counts()["getDeviceRealTimeData"] > before


def test_refreshes_are_coalesced(sim, running, probe, base_topic):
    ready(probe, base_topic)
    before = sim.call_counts().get("getFaultAlarmInfo", 0)
    results: List[Dict] = []
    threads = [threading.Thread(target=lambda: results.append(
        probe.request(base_topic, "refresh", {}))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 4 and all(r["status"] == "ok" for r in results)
    polls = sim.call_counts()["getFaultAlarmInfo"] - before
    assert polls < 4
    assert max(r["data"]["coalesced"] for r in results) >= 2


def test_refresh_of_one_plant_and_of_an_unknown_plant(running, probe, base_topic):
    listed = ready(probe, base_topic)
    ps_id = listed["plants"][0]["ps_id"]
    ok = probe.request(base_topic, "refresh", {"ps_id": ps_id})
    assert ok["status"] == "ok" and ok["data"]["plants"] == [ps_id]
    bad = probe.request(base_topic, "refresh", {"ps_id": 42})
    assert bad["status"] == "error" and "unknown plant 42" in bad["error"]


@pytest.mark.parametrize("payload,message", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"\xff\xfe\x00", "not UTF-8"),
    (json.dumps({"ps_id": "abc"}).encode(), "ps_id: expected a plant id"),
    (json.dumps({"colour": "red"}).encode(), "colour: unknown key"),
    (b"x" * 5000, "too large"),
], ids=["bad-json", "array", "binary", "bad-ps-id", "unknown-field", "oversized"])
def test_malformed_requests_get_an_error_and_the_bridge_stays_up(
        running, probe, base_topic, payload, message):
    ready(probe, base_topic)
    start = len(probe.history)
    probe.publish(f"{base_topic}/bridge/request/refresh", payload)
    probe.wait_for(lambda p: any(t == f"{base_topic}/bridge/response/refresh"
                                 for t, _, _ in p.history[start:]), 10, "error response")
    response = next(json.loads(d) for t, d, _ in probe.history[start:]
                    if t == f"{base_topic}/bridge/response/refresh")
    assert response["status"] == "error" and message in response["error"]
    assert probe.request(base_topic, "refresh", {})["status"] == "ok"


def test_unknown_request_name(running, probe, base_topic):
    ready(probe, base_topic)
    response = probe.request(base_topic, "reboot", {})
    assert response["status"] == "error" and "unknown request 'reboot'" in response["error"]


def test_faults_appear_and_clear(sim, running, probe, base_topic):
    listed = ready(probe, base_topic)
    ess = next(d for d in listed["devices"] if d["device_type"] == 14)
    topic = f"{base_topic}/{ess['ps_key']}/faults"
    assert probe.json(topic) == {"problem": "OFF", "faults": []}
    fault_id = sim.add_fault(ess["ps_key"], 13824, "Battery Alarm", fault_type=2, fault_level=2)
    assert probe.request(base_topic, "faults", {})["status"] == "ok"
    probe.wait_topic(topic, check=lambda d: json.loads(d)["problem"] == "ON")
    fault = probe.json(topic)["faults"][0]
    assert fault["name"] == "Battery Alarm" and fault["type_code"] in (13824, "13824")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", fault["since"])
    sim.clear_fault(fault_id)
    probe.request(base_topic, "faults", {})
    probe.wait_topic(topic, check=lambda d: json.loads(d)["problem"] == "OFF")


@at_any_hour
def test_quota_and_history_requests(sim, running, probe, base_topic):
    listed = ready(probe, base_topic)
    quota = probe.request(base_topic, "quota", {})
    assert quota["status"] == "ok" and "today_used" in quota["data"]
    plant_key = listed["plants"][0]["ps_key"]
    today = plant_now(sim, listed["plants"][0]["ps_id"]).date()
    history = probe.request(base_topic, "history", {
        "ps_key": plant_key, "points": [83022], "interval": "day",
        "start": (today - dt.timedelta(days=3)).isoformat(), "end": today.isoformat()})
    assert history["status"] == "ok", history
    series = next(iter(history["data"]["series"].values()))
    assert series and all(isinstance(row["value"], (int, float)) for row in series)
    too_long = probe.request(base_topic, "history", {
        "ps_key": plant_key, "points": [83022], "interval": "minute",
        "start": "2025-01-01T00:00", "end": "2025-01-02T04:00"})     # 10 windows of 3 hours
    assert too_long["status"] == "error" and "at most 8" in too_long["error"]


def test_rate_limit_pauses_the_cloud_and_refresh_says_so(sim, running, probe, base_topic):
    ready(probe, base_topic)
    time.sleep(0.6)
    # E901 (too frequent) pauses a minute from now; an E999 pause ends at the next full hour,
    # which a run in the hour's last seconds would see end before the second refresh
    sim.fail_next(1, "code", code="E901")
    first = probe.request(base_topic, "refresh", {})
    assert first["status"] == "error" and "E901" in first["error"]
    calls = sum(sim.call_counts().values())
    second = probe.request(base_topic, "refresh", {})
    assert second["status"] == "error" and "rate limit" in second["error"]
    assert sum(sim.call_counts().values()) == calls     # the cloud was not called


def test_home_assistant_birth_republishes_discovery(running, probe, base_topic):
    ready(probe, base_topic)
    start = len(probe.history)
    probe.publish(f"{base_topic}_ha/status", "online")
    probe.wait_for(lambda p: sum(1 for t, _, _ in p.history[start:]
                                 if t.endswith("/config")) >= 10, 15, "republished configs")


def test_broker_restart_reconnects_and_republishes(sim, tmp_path, base_topic):
    broker = Broker(tmp_path).start()
    bridge = Running(config_dict(sim, broker.port, base_topic, tmp_path), tmp_path)
    try:
        probe = MqttProbe(broker.port, f"{base_topic}/#", f"{base_topic}_ha/#")
        ready(probe, base_topic)
        probe.close()
        broker.stop()                          # no persistence: every retained message is gone
        time.sleep(1)
        broker = Broker(tmp_path, port=broker.port).start()
        probe = MqttProbe(broker.port, f"{base_topic}/#", f"{base_topic}_ha/#")
        probe.wait_topic(f"{base_topic}/bridge/state", 30, check=lambda d: d == b"online")
        ready(probe, base_topic)
        assert configs(probe, f"{base_topic}_ha")
        assert probe.request(base_topic, "refresh", {})["status"] == "ok"
        probe.close()
    finally:
        bridge.stop()
        broker.stop()


def test_vanished_plant_configs_are_removed_after_restart(sim, broker, probe, base_topic,
                                                          tmp_path):
    first = Running(config_dict(sim, broker.port, base_topic, tmp_path), tmp_path)
    listed = ready(probe, base_topic)
    first.stop()
    kept, dropped = listed["plants"][0]["ps_id"], listed["plants"][1]["ps_id"]
    dropped_configs = [t for t in configs(probe, f"{base_topic}_ha")
                       if f"sungrow2mqtt_{dropped}_" in t]
    assert dropped_configs
    probe.messages.clear()
    second = Running(config_dict(sim, broker.port, base_topic, tmp_path, plants=[kept]),
                     tmp_path)
    try:
        probe.wait_for(lambda p: all(p.messages.get(t) == b"" for t in dropped_configs), 30,
                       "cleared configs of the dropped plant")
    finally:
        second.stop()


def _write_config(sim, broker, base_topic, tmp_path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_dict(sim, broker.port, base_topic, tmp_path)))
    path.chmod(0o600)
    return path


def test_run_once_publishes_everything_and_exits_zero(sim, broker, probe, base_topic,
                                                      tmp_path):
    path = _write_config(sim, broker, base_topic, tmp_path)
    result = subprocess.run([sys.executable, "-m", "sungrow2mqtt", "run", "-c", str(path),
                             "--once"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    ready(probe, base_topic)
    assert probe.messages[f"{base_topic}/bridge/state"] == b"offline"
    assert configs(probe, f"{base_topic}_ha")


def test_sigterm_publishes_offline_and_exits_zero_quickly(sim, broker, probe, base_topic,
                                                          tmp_path):
    path = _write_config(sim, broker, base_topic, tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", "run", "-c", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready(probe, base_topic)
        sim.fail_next(1, "timeout", delay=8)      # a cloud call hangs while we stop
        probe.publish(f"{base_topic}/bridge/request/refresh", "")
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        probe.wait_topic(f"{base_topic}/bridge/state", 5, check=lambda d: d == b"offline")
    finally:
        if process.poll() is None:
            process.kill()


def test_last_will_is_offline_when_the_process_dies(sim, broker, probe, base_topic, tmp_path):
    path = _write_config(sim, broker, base_topic, tmp_path)
    config = yaml.safe_load(path.read_text())
    config["mqtt"]["keepalive"] = 5
    path.write_text(yaml.safe_dump(config))
    process = subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", "run", "-c", str(path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready(probe, base_topic)
        os.kill(process.pid, signal.SIGKILL)
        probe.wait_topic(f"{base_topic}/bridge/state", 20, check=lambda d: d == b"offline")
    finally:
        process.kill()
        process.wait()


def test_startup_warns_when_polling_would_exceed_the_quota(sim, broker, probe, base_topic,
                                                            tmp_path, caplog):
    sim.set_quota(100)
    bridge = Running(config_dict(sim, broker.port, base_topic, tmp_path,
                                 polling={"realtime": 10, "faults": 10}), tmp_path)
    try:
        ready(probe, base_topic)
        probe.wait_for(lambda p: "hourly quota of 100" in caplog.text, 10, "quota warning")
        assert "poll every" in caplog.text
    finally:
        bridge.stop()


def _tz_with_summer_time_ending_at(end: dt.datetime) -> str:
    """A POSIX TZ in summer time now whose clocks go back one hour at ``end`` (UTC).

    Summer time starts on day 0 (1 January) at 00:00, so the end must fall on a later local day:
    of two zones twelve hours apart, one always does.
    """
    for standard in (1, -11):                   # hours east of UTC; summer time is one more
        local = end + dt.timedelta(hours=standard + 1)
        day = local.timetuple().tm_yday - 1     # the rule counts days from 0
        if day >= 1:
            return (f"XST{-standard:+d}XDT{-standard - 1:+d},0/0,"
                    f"{day}/{local:%H:%M:%S}")
    raise AssertionError("unreachable: one of the zones is past 1 January")


def _is_summer_time(tz: str) -> bool:
    """Whether local time in ``tz`` is summer time now, as a fresh process sees it."""
    result = subprocess.run([sys.executable, "-c", "import time; print(time.localtime().tm_isdst)"],
                            env={**os.environ, "TZ": tz}, capture_output=True, text=True,
                            check=True)
    return result.stdout.strip() == "1"


def test_polls_keep_their_interval_when_the_local_clock_goes_back(sim, broker, probe,
                                                                  base_topic, tmp_path):
    """Autumn clock change, for real: no faked clock, local time jumps back one hour mid-run."""
    interval, change_after = 10, 9.0
    config = config_dict(sim, broker.port, base_topic, tmp_path,
                         polling={"realtime": interval, "faults": interval})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    change_at = time.time() + change_after
    tz = _tz_with_summer_time_ending_at(dt.datetime.fromtimestamp(change_at, dt.timezone.utc))
    assert _is_summer_time(tz), tz
    process = subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", "run", "-c", str(path)],
                               env={**os.environ, "TZ": tz}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        ready(probe, base_topic)
        assert time.time() < change_at, "the first cycle came after the clock change"
        probe.wait_for(lambda p: time.time() > change_at + 0.5, change_after + 5, "clock change")
        assert not _is_summer_time(tz), "local time did not go back"
        mark = len(probe.history)
        # the old scheduler waited an hour here; two polls prove the interval holds (their
        # times in bridge/info: a state that did not change is not sent again)
        info = f"{base_topic}/bridge/info"

        def polls(p: MqttProbe) -> int:
            return len({json.loads(d)["last_poll"]["realtime"]["time"]
                        for t, d, _ in p.history[mark:] if t == info})
        probe.wait_for(lambda p: polls(p) >= 2, 3 * interval,
                       "two realtime polls after the clock change")
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=10)
