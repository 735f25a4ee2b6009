"""Control end to end: the component against the simulator over HTTP and a real mosquitto.

No bridge: the test feeds the component the simulator's device list (as the bridge's device
refresh would) and drives it over MQTT, through the entities' command topics and the ``set``
request.  Tasks end at their first poll (``task_seconds`` 0) and polls come every 20 ms, so no
test waits for the simulator's clock.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from typing import Any, Dict, Iterator, List

import pytest
from control_harness import CATALOG, ESS, SG5, SG8, ControlUnderTest
from mqtt_probe import MqttProbe

from sungrow2mqtt.config import ControlConfig
from sungrow2mqtt.simulator import SimulatorServer

SOC_UPPER = f"homeassistant/number/sungrow2mqtt_{ESS}/soc_upper_limit/config"


@pytest.fixture
def sim(simulator: SimulatorServer) -> SimulatorServer:
    """The pinned-clock simulator, its tasks done at the first poll, writes never too fast."""
    simulator.control.task_seconds = 0.0
    simulator.control.min_write_interval = 0.0
    return simulator


@pytest.fixture
def probe(broker: Any, base_topic: str) -> Iterator[MqttProbe]:
    probe = MqttProbe(broker.port, f"{base_topic}/#", "homeassistant/#")
    yield probe
    probe.close()


@pytest.fixture
def control(sim: SimulatorServer, broker: Any, base_topic: str) -> Iterator[ControlUnderTest]:
    under_test = ControlUnderTest(sim, broker.port, base_topic)
    yield under_test
    under_test.close()


def state(probe: MqttProbe, base: str, ps_key: str) -> Dict[str, Any]:
    return probe.json(f"{base}/{ps_key}/control")


def wait_state(probe: MqttProbe, base: str, ps_key: str, **expected: Any) -> Dict[str, Any]:
    """The device's read-back topic once it shows ``expected``."""
    topic = f"{base}/{ps_key}/control"

    def shows(payload: bytes) -> bool:
        document = json.loads(payload) if payload else {}
        return all(document.get(key) == value for key, value in expected.items())
    probe.wait_topic(topic, check=shows)
    return state(probe, base, ps_key)


def set_up(control: ControlUnderTest, probe: MqttProbe, base: str) -> None:
    """Hand over the device list and wait until every controllable device was read back."""
    control.refresh_devices()
    for ps_key in (ESS, SG5, SG8):
        wait_state(probe, base, ps_key)


def control_configs(probe: MqttProbe, base: str) -> Dict[str, Dict[str, Any]]:
    """The control entities' discovery configs on the broker (not the bridge's own entities)."""
    configs = {t: json.loads(p) for t, p in probe.messages.items()
               if t.startswith("homeassistant/") and p}
    return {t: c for t, c in configs.items()
            if str(c.get("command_topic", "")).startswith(f"{base}/") and "/set/" in
            c["command_topic"]}


def writes(sim: SimulatorServer) -> List[Any]:
    return [body["param_list"] for service, _, body in sim.requests_log
            if service == "paramSetting" and str(body.get("set_type")) == "0"]


def calls(sim: SimulatorServer) -> List[str]:
    return [service for service, _, _ in sim.requests_log]


def answer_of_command(probe: MqttProbe, base: str, start: int) -> Dict[str, Any]:
    """The first answer on the set response topic since ``start`` (history index)."""
    topic = f"{base}/bridge/response/set"
    found: Dict[str, Any] = {}

    def answered(p: MqttProbe) -> bool:
        for name, data, _ in p.history[start:]:
            if name == topic:
                found.update(json.loads(data))
                return True
        return False
    probe.wait_for(answered, what=topic)
    return found


def test_soc_upper_limit_90_from_its_entity_is_one_confirmed_write(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe, base_topic: str,
        caplog: pytest.LogCaptureFixture) -> None:
    set_up(control, probe, base_topic)
    config = json.loads(probe.wait_topic(SOC_UPPER))
    assert wait_state(probe, base_topic, ESS)["soc_upper_limit"] == 100     # read back first
    sim.reset_counts()
    start = len(probe.history)

    with caplog.at_level(logging.INFO, "sungrow2mqtt.control"):
        probe.publish(config["command_topic"], "90")
        answer = answer_of_command(probe, base_topic, start)

    assert answer == {"status": "ok", "data": {"ps_key": ESS, "settings": {"soc_upper_limit": 90}}}
    assert writes(sim) == [[{"param_code": "10001", "set_value": "900"}]]
    assert calls(sim) == ["paramSetting", "getParamSettingTask"]       # polled until success
    assert wait_state(probe, base_topic, ESS)["soc_upper_limit"] == 90
    assert sim.control.values(ESS)["10001"] == "900"
    audit = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Control write")]
    assert audit == [f"Control write: SH10RT A2231234567 ({ESS}) soc_upper_limit: 100 -> 90: ok "
                     "[Home Assistant]"]


def test_the_set_request_writes_several_settings_in_one_call_prerequisites_first(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe,
        base_topic: str) -> None:
    set_up(control, probe, base_topic)
    sim.reset_counts()
    answer = probe.request(base_topic, "set", {"device": "A2240112233", "settings": {
        "feed_in_limit": 3000, "feed_in_limitation": "ON"}})
    assert answer["status"] == "ok", answer
    assert answer["data"] == {"ps_key": SG5, "settings": {"feed_in_limitation": "ON",
                                                          "feed_in_limit": 3000}}
    assert writes(sim) == [[{"param_code": "10012", "set_value": "170"},
                            {"param_code": "10013", "set_value": "3000"}]]
    assert wait_state(probe, base_topic, SG5, feed_in_limit=3000)["feed_in_limitation"] == "ON"


@pytest.mark.parametrize("body, error", [
    # the catalog's checks
    ({"ps_key": ESS, "settings": {"soc_upper_limit": 120}},
     "soc_upper_limit: 120 is out of range (expected 70 to 100 % in steps of 1)"),
    ({"ps_key": ESS, "settings": {"soc_uper_limit": 80}},
     "soc_uper_limit: not a setting of device type 14 (did you mean 'soc_upper_limit'?)"),
    ({"ps_key": ESS, "settings": {"feed_in_limit_ratio": 50}},
     "feed_in_limit_ratio: needs feed_in_limitation ON first (the device has OFF); set both in "
     "one request"),
    # the request's own fields
    ({"settings": {"soc_upper_limit": 90}}, 'give one of "ps_key" or "device"'),
    ({"ps_key": ESS, "device": "A2231234567", "settings": {"soc_upper_limit": 90}},
     'give one of "ps_key" or "device"'),
    ({"device": "A0000000000", "settings": {"soc_upper_limit": 90}},
     f"'A0000000000' is not a controlled device; controlled: {ESS} (A2231234567), "),
    ({"ps_key": "1563218_14_1_1/#", "settings": {"soc_upper_limit": 90}},
     "ps_key: expected <ps_id>_<device type>_<device code>_<channel> such as 1234567_14_1_1, "
     "got '1563218_14_1_1/#'"),
    ({"ps_key": ESS}, "settings: required"),
    ({"ps_key": ESS, "settings": {}}, 'settings: expected at least one setting, such as '
                                      '{"soc_upper_limit": 90}'),
    ({"ps_key": ESS, "settings": [90]}, "settings: expected a JSON object of setting key to "
                                        'value, such as {"soc_upper_limit": 90}, got a list'),
    ({"ps_key": ESS, "settings": {"soc_upper_limit": None}}, "settings: soc_upper_limit: "
                                                             "expected a number or a text, got "
                                                             "null"),
    ({"ps_key": ESS, "settings": {"SOC": 90}}, "settings: 'SOC' is not a setting key (like "
                                               "soc_upper_limit)"),
    ({"ps_key": ESS, "setting": {"soc_upper_limit": 90}},
     "settings: required; setting: unknown key (did you mean 'settings'?); set takes: "
     "transaction, ps_key, device, settings"),
])
def test_a_bad_request_names_its_problem_and_makes_no_call(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe, base_topic: str,
        body: Dict[str, Any], error: str) -> None:
    set_up(control, probe, base_topic)
    sim.reset_counts()
    answer = probe.request(base_topic, "set", body)
    assert answer["status"] == "error" and answer["error"].startswith(error), answer
    assert sim.call_counts() == {}


def test_a_refused_task_is_an_error_and_the_entity_shows_the_device_value(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe, base_topic: str,
        caplog: pytest.LogCaptureFixture) -> None:
    set_up(control, probe, base_topic)
    sim.control.fail_next_write("refused")
    sim.reset_counts()
    with caplog.at_level(logging.INFO, "sungrow2mqtt.control"):
        answer = probe.request(base_topic, "set", {"ps_key": ESS,
                                                   "settings": {"soc_lower_limit": 20}})
    assert answer["status"] == "error"
    assert answer["error"] == "the device did not apply it (command_status 4)"
    assert answer["data"] == {"ps_key": ESS, "settings": {"soc_lower_limit": 10}}
    # one write, then one read back of what the device holds
    assert [str(body["set_type"]) for service, _, body in sim.requests_log
            if service == "paramSetting"] == ["0", "2"]
    assert wait_state(probe, base_topic, ESS)["soc_lower_limit"] == 10
    assert any(r.getMessage() == (
        f"Control write: SH10RT A2231234567 ({ESS}) soc_lower_limit: 10 -> 20: error: the "
        f"device did not apply it (command_status 4); the device has 10 [request, transaction "
        f"'{answer['transaction']}']") for r in caplog.records)


def test_an_expired_task_is_an_error_and_never_repeated(
        sim: SimulatorServer, broker: Any, probe: MqttProbe, base_topic: str) -> None:
    control = ControlUnderTest(sim, broker.port, base_topic, expire_seconds=1)
    try:
        set_up(control, probe, base_topic)
        sim.control.fail_next_write("expire")
        sim.reset_counts()
        answer = probe.request(base_topic, "set", {"ps_key": ESS,
                                                   "settings": {"battery_first": "ON"}})
        assert answer["status"] == "error"
        assert answer["error"] in ("the device did not apply it (command_status 6)",
                                   "the device did not answer within 1 s (the task expired)")
        assert len(writes(sim)) == 1
        assert wait_state(probe, base_topic, ESS)["battery_first"] == "OFF"
    finally:
        control.close()


def test_writes_to_one_device_wait_for_each_other_and_never_interleave(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe,
        base_topic: str) -> None:
    set_up(control, probe, base_topic)
    sim.reset_counts()
    first = f"{base_topic}/{SG5}/set/feed_in_limitation"
    probe.publish(first, "ON")
    # checked against the device as it will be once the write before it is done
    answer = probe.request(base_topic, "set", {"ps_key": SG5,
                                               "settings": {"feed_in_limit_ratio": 50}})
    assert answer["status"] == "ok", answer
    services = calls(sim)
    assert services == ["paramSetting", "getParamSettingTask"] * 2, services
    assert writes(sim) == [[{"param_code": "10012", "set_value": "170"}],
                           [{"param_code": "10014", "set_value": "500"}]]


def test_the_cloud_saying_too_fast_is_reported_not_repeated(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe,
        base_topic: str) -> None:
    set_up(control, probe, base_topic)
    sim.control.min_write_interval = 3600.0
    assert probe.request(base_topic, "set", {"ps_key": ESS, "settings": {
        "soc_upper_limit": 95}})["status"] == "ok"
    sim.reset_counts()
    answer = probe.request(base_topic, "set", {"ps_key": ESS, "settings": {
        "soc_upper_limit": 90}})
    assert answer["error"] == ("the cloud refused it: writes came too fast (check_result 9); "
                               "not repeated, try again in a minute")
    assert len(writes(sim)) == 1
    assert wait_state(probe, base_topic, ESS)["soc_upper_limit"] == 95


def test_no_write_while_the_cloud_is_rate_limited(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe,
        base_topic: str) -> None:
    set_up(control, probe, base_topic)
    control.paused = dt.datetime(2030, 1, 1, 13, 0, tzinfo=dt.timezone.utc)
    sim.reset_counts()
    answer = probe.request(base_topic, "set", {"ps_key": ESS, "settings": {
        "soc_upper_limit": 90}})
    assert answer["error"] == ("cloud calls are paused until 2030-01-01T13:00:00+00:00 (rate "
                               "limit); nothing was sent")
    assert sim.call_counts() == {}


def test_disabled_control_announces_nothing_and_refuses_requests(
        sim: SimulatorServer, broker: Any, probe: MqttProbe, base_topic: str) -> None:
    control = ControlUnderTest(sim, broker.port, base_topic,
                               ControlConfig(enabled=False, plants=(), devices=()))
    try:
        sim.reset_counts()
        control.refresh_devices()
        answer = probe.request(base_topic, "set", {"ps_key": ESS, "settings": {
            "soc_upper_limit": 90}})
        assert answer["error"] == ("control is off: set control.enabled: true in the "
                                   "configuration to change device settings")
        probe.publish(f"{base_topic}/{ESS}/set/soc_upper_limit", "90")
        assert probe.request(base_topic, "set", {"ps_key": ESS, "settings": {
            "soc_upper_limit": 91}})["status"] == "error"
        probe.wait_topic(f"homeassistant/binary_sensor/sungrow2mqtt_{ESS}/problem/config")
        assert control_configs(probe, base_topic) == {}
        assert [t for t in probe.messages if t.endswith("/control")] == []
        # only the test's own login and device list: control made no call
        assert set(sim.call_counts()) == {"login", "getPowerStationList", "getDeviceListByUser"}
    finally:
        control.close()


def test_only_the_configured_devices_get_entities(
        sim: SimulatorServer, broker: Any, probe: MqttProbe, base_topic: str) -> None:
    control = ControlUnderTest(sim, broker.port, base_topic,
                               ControlConfig(enabled=True, plants=(), devices=("A2240112233",)))
    try:
        control.refresh_devices()
        wait_state(probe, base_topic, SG5)
        answer = probe.request(base_topic, "set", {"ps_key": SG8, "settings": {
            "feed_in_limitation": "ON"}})
        assert answer["error"] == (f"'{SG8}' is not a controlled device; controlled: {SG5} "
                                   "(A2240112233)")
        nodes = {t.split("/")[2] for t in control_configs(probe, base_topic)}
        assert nodes == {f"sungrow2mqtt_{SG5}"}
    finally:
        control.close()


def test_entities_on_the_device_with_state_from_the_read_back(
        control: ControlUnderTest, probe: MqttProbe, base_topic: str) -> None:
    set_up(control, probe, base_topic)
    configs = {t: c for t, c in control_configs(probe, base_topic).items()
               if f"sungrow2mqtt_{ESS}" in t}
    assert {(t.split("/")[1], t.split("/")[3]) for t in configs} == {
        (spec.component, spec.key) for spec in CATALOG.for_device_type(14)}
    assert all(c["entity_category"] == "config" for c in configs.values())
    readable = {c["value_template"].split(".")[1].rstrip(" }") for c in configs.values()
                if "state_topic" in c}
    assert set(state(probe, base_topic, ESS)) == readable
    charging = configs[f"homeassistant/number/sungrow2mqtt_{ESS}/max_charging_power/config"]
    assert (charging["min"], charging["max"]) == (0.1, 10.6)     # property point 18290


def test_a_retained_command_is_never_carried_out(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe,
        base_topic: str) -> None:
    set_up(control, probe, base_topic)
    command = f"{base_topic}/{ESS}/set/soc_upper_limit"
    control.control.stop()            # a restart: subscribing again delivers it retained
    unsubscribed = threading.Event()  # else the broker may still forward it live (retain=0)
    control.mqtt.after_delivered(unsubscribed.set)
    assert unsubscribed.wait(5)
    probe.publish(command, "75", retain=True)
    sim.reset_counts()
    control.control.start()
    answer = probe.request(base_topic, "set", {"ps_key": ESS, "settings": {
        "soc_lower_limit": 5}})
    probe.publish(command, "", retain=True)
    assert answer["status"] == "ok"
    assert writes(sim) == [[{"param_code": "10002", "set_value": "50"}]]
    assert wait_state(probe, base_topic, ESS)["soc_upper_limit"] == 100


def test_a_device_that_leaves_loses_its_entities(
        control: ControlUnderTest, probe: MqttProbe, base_topic: str) -> None:
    set_up(control, probe, base_topic)
    control.refresh_devices(leave_out=SG8)
    probe.wait_topic(f"{base_topic}/{SG8}/control", check=lambda payload: payload == b"")
    # the configs are cleared on the announcer's thread
    probe.wait_for(lambda p: not [t for t, data in p.messages.items()
                                  if f"sungrow2mqtt_{SG8}" in t and data], 10,
                   "every config of the device cleared")


def test_control_entities_outlive_the_stale_cleanup_and_go_once_control_is_off(
        sim: SimulatorServer, broker: Any, probe: MqttProbe, base_topic: str) -> None:
    """The announcer clears retained configs of ours that a run does not announce."""
    def run(enabled: bool) -> None:
        control = ControlUnderTest(sim, broker.port, base_topic,
                                   ControlConfig(enabled=enabled, plants=(), devices=()))
        try:
            state_topic = f"{base_topic}/{ESS}/control"
            probe.publish(state_topic, "", retain=True)
            control.refresh_devices()
            if enabled:                        # set up (and announced) by this run
                probe.wait_topic(state_topic, check=lambda payload: payload != b"")
            control.fleet.full_poll_done()     # the announcer's cue to clear what is stale
            if not enabled:                    # cleared one by one, paced: wait for them all
                probe.wait_for(lambda p: not control_configs(p, base_topic), 15,
                               "every control config cleared")
            control.mqtt.wait_published(10)
        finally:
            control.close()

    run(enabled=True)
    start = len(probe.history)
    run(enabled=True)                          # a restart keeps them
    assert [p for t, p, _ in probe.history[start:] if t == SOC_UPPER and not p] == []
    assert SOC_UPPER in control_configs(probe, base_topic)
    run(enabled=False)                         # off: they are cleared
    assert control_configs(probe, base_topic) == {}


def test_a_write_whose_answer_times_out_is_not_sent_again(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe,
        base_topic: str) -> None:
    set_up(control, probe, base_topic)
    sim.reset_counts()
    # the gateway takes the write, but its answer comes too slowly for the client (2 s timeout)
    sim.fail_next(1, "trickle", delay=3.0, service="paramSetting")
    answer = probe.request(base_topic, "set", {"ps_key": ESS, "settings": {
        "soc_upper_limit": 90}}, timeout=60)
    assert len(writes(sim)) == 1
    assert answer["status"] == "error"      # not known whether it was taken: read back, told


def test_after_stop_requests_are_answered_and_nothing_is_sent(
        sim: SimulatorServer, control: ControlUnderTest, probe: MqttProbe,
        base_topic: str) -> None:
    set_up(control, probe, base_topic)
    control.control.stop()
    sim.reset_counts()
    answer = probe.request(base_topic, "set", {"ps_key": ESS, "settings": {
        "soc_upper_limit": 90}})
    assert answer["error"] == "the bridge is stopping; nothing was sent"
    assert sim.call_counts() == {}


def test_writes_to_one_device_are_spaced_as_the_cloud_wants(
        sim: SimulatorServer, broker: Any, probe: MqttProbe, base_topic: str) -> None:
    sim.control.min_write_interval = 1.0       # sooner, the cloud answers check_result 9
    control = ControlUnderTest(sim, broker.port, base_topic, write_spacing=1.0)
    try:
        set_up(control, probe, base_topic)
        for value in (95, 90):
            answer = probe.request(base_topic, "set", {"ps_key": ESS, "settings": {
                "soc_upper_limit": value}})
            assert answer["status"] == "ok", answer
        assert sim.control.values(ESS)["10001"] == "900"
    finally:
        control.close()
