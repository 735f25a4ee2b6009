"""The real verdict on the control entities: unmodified Home Assistant releases (ha-check).

The control component (with the bridge's announcer, no poller) announces the settings of the
simulator's hybrid and string inverters and reads them back; each set-up HA version must create
every control entity under the id asked for, show the read-back values, and log no warning.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator, NamedTuple

import pytest
from conftest import SIM_START, Broker
from control_harness import ESS, SG5, SG8, ControlUnderTest
from mqtt_probe import MqttProbe
from test_home_assistant import HA_CHECK, ha_versions, run_ha_check

from sungrow2mqtt.simulator import SimulatorServer


class Announced(NamedTuple):
    """The broker's port and every control entity's discovery config."""

    port: int
    configs: Dict[str, Dict[str, Any]]


@pytest.fixture(scope="module")
def announced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Announced]:
    """A broker holding the control entities of every controllable device, read back once."""
    broker = Broker(tmp_path_factory.mktemp("control-ha")).start()
    sim = SimulatorServer(start_time=SIM_START).start()
    sim.control.task_seconds = 0.0
    probe = MqttProbe(broker.port, "sungrow2mqtt/#", "homeassistant/#")
    control = ControlUnderTest(sim, broker.port, "sungrow2mqtt")
    try:
        control.refresh_devices()
        for ps_key in (ESS, SG5, SG8):
            probe.wait_topic(f"sungrow2mqtt/{ps_key}/control")
        control.mqtt.wait_published(10)
        configs = {t: json.loads(p) for t, p in probe.messages.items()
                   if t.startswith("homeassistant/") and p}
        yield Announced(broker.port, {t: c for t, c in configs.items()
                                      if "/set/" in str(c.get("command_topic"))})
    finally:
        control.close()
        probe.close()
        sim.stop()
        broker.stop()


@pytest.mark.skipif(HA_CHECK is None, reason="ha-check not found (../shared/tools/ha-check)")
@pytest.mark.parametrize("harness", ha_versions(), ids=lambda h: h["version"])
def test_home_assistant_creates_every_control_entity_without_warnings(
        harness: Dict[str, str], announced: Announced, tmp_path: Path) -> None:
    if not (Path(harness["venv"]) / "bin" / "python").exists():
        pytest.skip(f"HA {harness['version']} not set up: HA_VERSION={harness['version']} "
                    f"{HA_CHECK}/setup")
    report = run_ha_check(harness, announced.port, tmp_path)
    assert not report["errors"], report["errors"]
    assert report["unmatched_discovery_configs"] == []
    problems = [r for r in report["log_problems"] if not r.get("harness_noise")]
    assert problems == [], problems
    entities = {e["entity_id"]: e for e in report["entities"]
                if e["unique_id"] in {c["unique_id"] for c in announced.configs.values()}}
    assert sorted(entities) == sorted(str(c["default_entity_id"])
                                      for c in announced.configs.values())
    assert len(entities) == 39               # 27 on the hybrid inverter, 6 on each string one
    assert {e["entity_category"] for e in entities.values()} == {"config"}
    off = {c["unique_id"] for c in announced.configs.values()
           if c.get("enabled_by_default") is False}
    assert {e["unique_id"] for e in entities.values() if e["disabled_by"]} == off
    # the read back, as Home Assistant shows it
    ess = "sungrow_sh10rt_a2231234567"
    assert float(entities[f"number.{ess}_soc_upper_limit"]["state"]) == 100
    assert entities[f"select.{ess}_energy_management_mode"]["state"] == "Self-consumption"
    assert entities[f"switch.{ess}_feed_in_limitation"]["state"] == "off"
    # on their devices
    assert {"SG5.0RS A2240112233", "SG8.0RS A2240112244", "SH10RT A2231234567"} <= {
        d["name"] for d in report["devices"]}
