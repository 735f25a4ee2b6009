"""The forced-charging examples do what they say: their requests are valid and the inverter takes
them (the simulator over HTTP, a real broker), and Home Assistant accepts the automations.

The Node-RED flow's function node runs in node.js where installed; the HA automations are checked
by each set-up Home Assistant version's own ``check_config``.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import yaml
from control_harness import ESS, ControlUnderTest
from mqtt_probe import MqttProbe
from test_home_assistant import HA_CHECK, ha_versions

from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.control.component import SET_SCHEMA
from sungrow2mqtt.simulator import SimulatorServer

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "examples" / "node-red" / "forced-charging.json"
AUTOMATIONS = ROOT / "examples" / "home-assistant" / "forced-charging.yaml"
SET_TOPIC = "sungrow2mqtt/bridge/request/set"
# what the demo hybrid inverter holds after "on": forced charging, every day, 01:00-05:00, 90 %
SCHEDULED = {"10065": "170", "10066": "1", "10067": "1", "10068": "0", "10069": "5",
             "10070": "0", "10071": "90"}


@pytest.fixture(scope="module")
def flow() -> List[Dict[str, Any]]:
    nodes: List[Dict[str, Any]] = json.loads(FLOW.read_text(encoding="utf-8"))
    return nodes


def automations() -> List[Dict[str, Any]]:
    found: List[Dict[str, Any]] = yaml.safe_load(AUTOMATIONS.read_text(encoding="utf-8"))
    return found


def published(automation: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The mqtt.publish actions' data of an automation."""
    return [a["data"] for a in automation["action"] if a.get("service") == "mqtt.publish"]


@pytest.fixture
def control(simulator: SimulatorServer, broker: Any) -> Iterator[ControlUnderTest]:
    """Control with the default base topic, as the examples assume."""
    simulator.control.task_seconds = 0.0
    simulator.control.min_write_interval = 0.0
    under_test = ControlUnderTest(simulator, broker.port, "sungrow2mqtt")
    probe = MqttProbe(broker.port, "sungrow2mqtt/#")
    under_test.refresh_devices()
    probe.wait_topic(f"sungrow2mqtt/{ESS}/control")
    probe.close()
    yield under_test
    under_test.close()


def send(broker: Any, body: Dict[str, Any]) -> Dict[str, Any]:
    """A request exactly as the example builds it (its own transaction), and its answer."""
    probe = MqttProbe(broker.port, "sungrow2mqtt/bridge/response/set")
    try:
        probe.publish(SET_TOPIC, body)
        topic = "sungrow2mqtt/bridge/response/set"
        probe.wait_for(lambda p: any(
            t == topic and json.loads(d).get("transaction") == body["transaction"]
            for t, d, _ in p.history), what="the answer")
        return next(json.loads(d) for t, d, _ in probe.history
                    if json.loads(d).get("transaction") == body["transaction"])
    finally:
        probe.close()


# -- Node-RED -----------------------------------------------------------------------------------

def test_the_flow_is_whole(flow: List[Dict[str, Any]]) -> None:
    ids = [node["id"] for node in flow]
    assert len(ids) == len(set(ids))
    assert [n["type"] for n in flow].count("tab") == 1
    assert [n["type"] for n in flow].count("mqtt-broker") == 1
    for node in flow:
        for output in node.get("wires", []):
            assert set(output) <= set(ids), node["name"]
    [out] = [n for n in flow if n["type"] == "mqtt out"]
    assert (out["topic"], out["retain"]) == (SET_TOPIC, "false")    # requests are never retained
    assert {n["topic"] for n in flow if n["type"] == "mqtt in"} == {
        "sungrow2mqtt/bridge/response/set", "sungrow2mqtt/+/control"}


def run_function(flow: List[Dict[str, Any]], payload: str) -> Dict[str, Any]:
    """The request the flow's function node builds from an inject's payload (node.js)."""
    if shutil.which("node") is None:
        pytest.skip("node.js is not installed")
    [function] = [n for n in flow if n.get("name") == "forced charging request"]
    script = ("const node = {status() {}, warn(text) { throw new Error(text); }};\n"
              f"const out = (function (msg) {{\n{function['func']}\n}})"
              f"({{payload: {json.dumps(payload)}}});\n"
              "console.log(JSON.stringify(out.payload));\n")
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    body: Dict[str, Any] = json.loads(result.stdout)
    return body


def test_the_injects_fire_once_a_day_around_the_window(flow: List[Dict[str, Any]]) -> None:
    injects = {n["payload"]: n["crontab"] for n in flow if n["type"] == "inject"}
    assert injects == {"on": "50 00 * * *", "off": "10 05 * * *"}


def test_the_flow_schedules_forced_charging_and_switches_it_off(
        flow: List[Dict[str, Any]], simulator: SimulatorServer, broker: Any,
        control: ControlUnderTest) -> None:
    on, off = run_function(flow, "on"), run_function(flow, "off")
    for body in (on, off):
        assert set(body) - {"transaction"} <= {field.name for field in SET_SCHEMA.fields}
    answer = send(broker, on)
    assert answer["status"] == "ok", answer
    values = simulator.control.values(ESS)
    assert {code: values[code] for code in SCHEDULED} == SCHEDULED
    assert simulator.call_counts()["paramSetting"] >= 1
    assert send(broker, off)["status"] == "ok"
    assert simulator.control.values(ESS)["10065"] == "85"


# -- Home Assistant -----------------------------------------------------------------------------

def test_the_automations_schedule_forced_charging_and_switch_it_off(
        simulator: SimulatorServer, broker: Any, control: ControlUnderTest) -> None:
    on, off, _ = automations()
    for automation in (on, off):
        [data] = published(automation)
        assert data["topic"] == SET_TOPIC
        assert send(broker, json.loads(data["payload"]))["status"] == "ok"
        if automation is on:
            values = simulator.control.values(ESS)
            assert {code: values[code] for code in SCHEDULED} == SCHEDULED
    assert simulator.control.values(ESS)["10065"] == "85"


def test_the_automations_name_entities_and_topics_the_bridge_has() -> None:
    on, _, failed = automations()
    [condition] = on["condition"]
    # sensor.<sungrow_model_serial>_<point key> of the demo hybrid inverter
    keys = {spec.key for spec in load_catalog().for_device_type(14)}
    prefix = "sensor.sungrow_sh10rt_a2231234567_"
    assert condition["entity_id"].startswith(prefix)
    assert condition["entity_id"][len(prefix):] in keys
    assert failed["trigger"][0]["topic"] == "sungrow2mqtt/bridge/response/set"


def check_config(venv: Path, config_dir: Path) -> str:
    """Home Assistant's own check of a configuration (its Python gate lowered, as ha-check does)."""
    script = ("import sys, homeassistant.const as c\n"
              "c.REQUIRED_PYTHON_VER = sys.version_info[:3]\n"
              "from homeassistant import __main__ as m\n"
              f"sys.argv = ['hass', '--script', 'check_config', '-c', {str(config_dir)!r}]\n"
              "sys.exit(m.main())\n")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", script], capture_output=True,
                            text=True, timeout=300)
    return result.stdout + result.stderr


@pytest.mark.skipif(HA_CHECK is None, reason="ha-check not found (../shared/tools/ha-check)")
@pytest.mark.parametrize("harness", ha_versions(), ids=lambda h: h["version"])
def test_home_assistant_accepts_the_automations(harness: Dict[str, str], tmp_path: Path) -> None:
    venv = Path(harness["venv"])
    if not (venv / "bin" / "python").exists():
        pytest.skip(f"HA {harness['version']} not set up")
    (tmp_path / "configuration.yaml").write_text("automation: !include automations.yaml\n")
    shutil.copy(AUTOMATIONS, tmp_path / "automations.yaml")
    output = check_config(venv, tmp_path)
    assert "Testing configuration" in output, output[-2000:]
    problems = [line for line in output.splitlines()
                if "ERROR" in line or "Failed config" in line or "Invalid" in line]
    assert problems == []
