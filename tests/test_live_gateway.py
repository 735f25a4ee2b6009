"""The bridge against the simulator in its live-gateway mode (issue 10), over real HTTP and MQTT.

Where the live gateway differs from the Open API document, the simulator behaves like it by
default: a dead token is E900, E900 also names an API the appkey may not call, realtime answers
name devices they cannot serve in ``fail_ps_key_list``, SOC/SOH arrive as 0-1 fractions and some
firmware sends them as 0-100.  Each test runs the real bridge (worker thread, MQTT requests) and a
real mosquitto; polls beyond the first cycle are ``refresh`` requests.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, Iterator, List

import pytest

from bridge_harness import Running, config_dict, ready
from mqtt_probe import MqttProbe
from sungrow2mqtt.isolarcloud.token_store import TokenStore
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer

ESS, BATTERY = "1563218_14_1_1", "1563218_43_3_1"    # the storage plant's inverter and battery
SOC, BATTERY_SOC = 13141, 58604
DENIED = "getFaultAlarmInfo"


@pytest.fixture
def sim(sim_start) -> Iterator[SimulatorServer]:
    with SimulatorServer(start_time=sim_start) as server:
        assert server.gateway.token_error == "E900"        # the live gateway's code
        yield server


@pytest.fixture
def probe(broker, base_topic) -> Iterator[MqttProbe]:
    client = MqttProbe(broker.port, f"{base_topic}/#")
    yield client
    client.close()


@pytest.fixture
def start(sim, broker, base_topic, tmp_path) -> Iterator[Any]:
    """Starts a bridge (again: the same state directory) and stops every one at the end."""
    started: List[Running] = []

    def run(**extra: Any) -> Running:
        started.append(Running(config_dict(sim, broker.port, base_topic, tmp_path, **extra),
                               tmp_path))
        return started[-1]
    yield run
    for bridge in started:
        bridge.stop()


def info(probe: MqttProbe, base: str) -> Dict[str, Any]:
    return probe.json(f"{base}/bridge/info")


def refresh(probe: MqttProbe, base: str) -> Dict[str, Any]:
    """One realtime and fault poll, now."""
    return probe.request(base, "refresh", {})


def loud(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def device_info(probe: MqttProbe, base: str, ps_key: str) -> Dict[str, Any]:
    """The device's entry in bridge/devices."""
    listed = probe.json(f"{base}/bridge/devices")
    return next(d for d in listed["devices"] if d["ps_key"] == ps_key)


# -- 1. dead tokens and unauthorised APIs: both E900 -----------------------------------------

def test_a_token_dying_with_e900_while_running_costs_one_login(sim, start, probe, base_topic,
                                                               tmp_path, caplog):
    start()
    ready(probe, base_topic)
    old = json.loads((tmp_path / "token.json").read_text())["token"]
    assert sim.call_counts()["login"] == 1
    sim.expire_tokens()
    for _ in range(3):
        assert refresh(probe, base_topic)["status"] == "ok"
    assert sim.call_counts()["login"] == 2
    assert json.loads((tmp_path / "token.json").read_text())["token"] != old
    assert not loud(caplog)


def test_a_stale_token_file_at_start_costs_exactly_one_login(sim, start, probe, base_topic,
                                                             tmp_path, caplog):
    store = TokenStore(tmp_path / "token.json", sim.url, DEFAULT_CREDENTIALS.username)
    store.save("a-token-the-gateway-forgot-long-ago")
    start()
    ready(probe, base_topic)
    assert all(poll["outcome"] == "ok" for poll in info(probe, base_topic)["last_poll"].values())
    assert refresh(probe, base_topic)["status"] == "ok"
    assert sim.call_counts()["login"] == 1
    assert store.load() not in (None, "a-token-the-gateway-forgot-long-ago")
    assert not loud(caplog)


def test_an_api_denied_with_e900_is_named_once_and_every_other_api_keeps_working(
        sim, start, probe, base_topic, caplog):
    sim.deny_api(DENIED)
    start()
    probe.wait_for(lambda p: f"{base_topic}/bridge/info" in p.messages
                   and info(p, base_topic)["denied_apis"], 30, "the denied API in bridge/info")
    # one login tells a dead token apart, no more; none when the denied call went out with the
    # token the first login had just issued (the fault query starts beside the device job)
    logins = sim.call_counts()["login"]
    assert logins in (1, 2)
    denied = sim.call_counts()[DENIED]
    realtime = sim.call_counts().get("getDeviceRealTimeData", 0)   # the wave may be under way
    for _ in range(3):            # the values came: ok, naming what was not polled and why
        answer = refresh(probe, base_topic)
        assert answer["status"] == "ok", answer
        assert f"{DENIED} is not authorised" in answer["data"]["not_polled"]["faults"]
    counts = sim.call_counts()
    assert counts["login"] == logins and counts[DENIED] == denied, "a login loop or a denied call"
    assert counts["getDeviceRealTimeData"] > realtime
    now = info(probe, base_topic)
    assert now["last_poll"]["realtime"]["outcome"] == "ok"
    assert now["last_poll"]["devices"]["outcome"] == "ok"
    assert now["last_poll"]["faults"]["outcome"] == "error"
    [entry] = now["denied_apis"]
    assert entry["api"] == DENIED and entry["until"]
    assert entry["advice"] == "enable it for your application on the developer portal"
    assert probe.json(f"{base_topic}/{ESS}")["battery_soc"] is not None
    assert loud(caplog) == [next(line for line in loud(caplog) if line.startswith(
        f"{DENIED} is not authorised for this appkey: enable it for your application on the "
        "developer portal"))]


# -- 2. fail_ps_key_list ---------------------------------------------------------------------

def test_a_device_named_in_fail_ps_key_list_is_logged_once_and_shown_in_bridge_devices(
        sim, start, probe, base_topic, caplog):
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    start()
    ready(probe, base_topic)
    assert device_info(probe, base_topic, BATTERY)["cloud_status"] == "ok"
    kept = probe.json(f"{base_topic}/{BATTERY}")
    sim.unserve_devices(BATTERY)
    for _ in range(3):
        assert refresh(probe, base_topic)["status"] == "ok"
    probe.wait_for(lambda p: device_info(p, base_topic, BATTERY)["cloud_status"] == "failed",
                   10, "the battery's cloud_status")
    assert device_info(probe, base_topic, BATTERY)["cloud_failed_since"]
    assert device_info(probe, base_topic, ESS)["cloud_status"] == "ok"
    assert probe.json(f"{base_topic}/{BATTERY}") == kept           # last values, retained
    lines = [line for line in loud(caplog) if BATTERY in line]
    assert len(lines) == 1 and "fail_ps_key_list" in lines[0], loud(caplog)

    sim.serve_devices()
    assert refresh(probe, base_topic)["status"] == "ok"
    probe.wait_for(lambda p: device_info(p, base_topic, BATTERY)["cloud_status"] == "ok", 10,
                   "the battery served again")
    assert device_info(probe, base_topic, BATTERY)["cloud_failed_since"] is None
    assert any(f"serves {BATTERY} again" in r.getMessage() for r in caplog.records)


# -- 3. ratio points -------------------------------------------------------------------------

def soc_is(probe: MqttProbe, base: str, ps_key: str, key: str, wanted: Any) -> None:
    probe.wait_for(lambda p: p.json(f"{base}/{ps_key}").get(key) == wanted, 10,
                   f"{key} of {ps_key} == {wanted}")


def raw_soc(sim: SimulatorServer, ps_key: str, point: int) -> float:
    device = sim.fleet.device(ps_key)
    assert device is not None
    return float(sim.fleet.readings(device, [point], sim.now())[point] or "nan")


def test_a_0_100_device_and_a_fraction_device_read_1_0_each_their_own_way(
        sim, start, probe, base_topic, tmp_path, caplog):
    sim.set_ratio_scale(ESS, "percent")              # this firmware sends SOC/SOH as 0-100
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    bridge = start()
    ready(probe, base_topic)
    ess_soc, battery_soc = raw_soc(sim, ESS, SOC), raw_soc(sim, BATTERY, BATTERY_SOC)
    assert 1.5 < ess_soc <= 100 and 0 < battery_soc <= 1
    soc_is(probe, base_topic, ESS, "battery_soc", pytest.approx(ess_soc, abs=0.11))
    soc_is(probe, base_topic, BATTERY, "battery_soc", pytest.approx(battery_soc * 100, abs=0.11))
    learned = json.loads((tmp_path / "ratio_points.json").read_text())
    assert learned == {ESS: [13141, 13142]}

    sim.pin_reading(ESS, SOC, "1.0")                 # 1 % on the 0-100 device
    sim.pin_reading(BATTERY, BATTERY_SOC, "1.0")     # 100 % on the fraction device
    assert refresh(probe, base_topic)["status"] == "ok"
    soc_is(probe, base_topic, ESS, "battery_soc", 1)
    soc_is(probe, base_topic, BATTERY, "battery_soc", 100)

    bridge.stop()                                    # a restart remembers what was learned
    probe.messages.clear()
    start()
    ready(probe, base_topic)
    soc_is(probe, base_topic, ESS, "battery_soc", 1)
    soc_is(probe, base_topic, BATTERY, "battery_soc", 100)
    assert not loud(caplog)


@pytest.mark.parametrize("raw", ["1.3", "-0.2", "250"])
def test_no_share_is_ever_published_below_0_or_above_100_percent(sim, start, probe, base_topic,
                                                                  caplog, raw):
    start()
    ready(probe, base_topic)
    assert 0 <= probe.json(f"{base_topic}/{BATTERY}")["battery_soc"] <= 100
    sim.pin_reading(BATTERY, BATTERY_SOC, raw)
    for _ in range(2):
        assert refresh(probe, base_topic)["status"] == "ok"
    soc_is(probe, base_topic, BATTERY, "battery_soc", None)   # unknown, not an impossible %
    published = [json.loads(data).get("battery_soc") for topic, data, _ in probe.history
                 if topic == f"{base_topic}/{BATTERY}"]
    assert all(value is None or 0 <= value <= 100 for value in published), published
    lines = [line for line in loud(caplog) if "impossible" in line]
    assert len(lines) == 1 and "Battery level of 1563218_43_3_1" in lines[0]


# -- 4. a rate-limit pause survives a restart; fast polling is warned about -------------------

def test_a_restarted_bridge_does_not_call_the_cloud_inside_a_pause(sim, start, probe,
                                                                  base_topic, caplog):
    bridge = start()
    ready(probe, base_topic)
    # a minute's pause (E901), not one to the next full hour (E999), whose end a run in the
    # hour's last seconds would meet during the restart
    sim.fail_next(1, "code", code="E901")
    assert "E901" in refresh(probe, base_topic)["error"]
    paused = info(probe, base_topic)["rate_limited_until"]
    assert paused
    bridge.stop()
    calls = dict(sim.call_counts())
    caplog.clear()
    start()
    probe.wait_topic(f"{base_topic}/bridge/state", check=lambda d: d == b"online")
    answer = refresh(probe, base_topic)
    assert answer["status"] == "error" and "rate limited" in answer["error"]
    probe.wait_for(lambda p: info(p, base_topic)["rate_limited_until"] == paused, 10,
                   "the kept pause in bridge/info")
    assert sim.call_counts() == calls, "the restarted bridge called the cloud inside the pause"
    assert any("as before the restart" in line for line in loud(caplog))


@pytest.mark.parametrize("seconds, warned", [(60, True), (300, False)])
def test_polling_faster_than_the_cloud_refreshes_is_warned_about(start, probe, base_topic,
                                                                 caplog, seconds, warned):
    start(polling={"realtime": seconds})
    ready(probe, base_topic)
    lines = [line for line in loud(caplog) if "polling.realtime" in line]
    assert lines == ([f"polling.realtime is {seconds} s: the cloud refreshes realtime values "
                      "about every 300 s, so polling faster spends API calls on the same values"]
                     if warned else [])
