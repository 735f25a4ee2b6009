"""Control through the whole bridge: the service `sungrow2mqtt run` starts, with its poller,
announcer and request API, against the simulator over HTTP and a real mosquitto."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from bridge_harness import Running, config_dict, ready
from control_harness import ESS
from mqtt_probe import MqttProbe

from sungrow2mqtt.simulator import SimulatorServer


@pytest.fixture
def sim(simulator: SimulatorServer) -> SimulatorServer:
    simulator.control.task_seconds = 0.0          # a task is done at its first poll
    return simulator


@contextmanager
def bridge(sim: SimulatorServer, broker: Any, base: str, tmp: Path, enabled: bool
           ) -> Iterator[MqttProbe]:
    """The running bridge after its first cycle, and a probe of its topics."""
    probe = MqttProbe(broker.port, f"{base}/#", f"{base}_ha/#")
    running = Running(config_dict(sim, broker.port, base, tmp, control={"enabled": enabled}),
                      tmp)
    try:
        ready(probe, base)
        yield probe
    finally:
        running.stop()
        probe.close()


def control_configs(probe: MqttProbe, base: str) -> Dict[str, Dict[str, Any]]:
    return {t: json.loads(p) for t, p in probe.messages.items()
            if t.startswith(f"{base}_ha/") and p and "/set/" in json.loads(p).get(
                "command_topic", "")}


def test_soc_upper_limit_from_its_entity_in_the_running_bridge(sim, broker, base_topic,
                                                               tmp_path) -> None:
    with bridge(sim, broker, base_topic, tmp_path, enabled=True) as probe:
        topic = f"{base_topic}_ha/number/sungrow2mqtt_{ESS}/soc_upper_limit/config"
        config = json.loads(probe.wait_topic(topic))
        assert config["entity_category"] == "config"
        state_topic = f"{base_topic}/{ESS}/control"
        probe.wait_topic(state_topic, check=lambda p: json.loads(p).get("soc_upper_limit") == 100)
        sim.reset_counts()
        probe.publish(config["command_topic"], "90")
        # the product's own pace: writes 10 s after the last paramSetting (the read back), the
        # task polled every 5 s
        probe.wait_topic(state_topic, timeout=60,
                         check=lambda p: json.loads(p).get("soc_upper_limit") == 90)
        written = [body["param_list"] for service, _, body in sim.requests_log
                   if service == "paramSetting" and str(body.get("set_type")) == "0"]
        assert written == [[{"param_code": "10001", "set_value": "900"}]]
        assert sim.control.values(ESS)["10001"] == "900"


def test_control_off_means_no_entities_and_a_refused_set(sim, broker, base_topic,
                                                         tmp_path) -> None:
    with bridge(sim, broker, base_topic, tmp_path, enabled=False) as probe:
        assert control_configs(probe, base_topic) == {}
        sim.reset_counts()
        answer = probe.request(base_topic, "set", {"ps_key": ESS,
                                                   "settings": {"soc_upper_limit": 90}})
        assert answer["status"] == "error" and "control.enabled" in answer["error"]
        assert "paramSetting" not in sim.call_counts()
