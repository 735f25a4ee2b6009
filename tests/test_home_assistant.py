"""The real verdict on discovery: an unmodified Home Assistant (../shared/tools/ha-check).

Runs where the harness is installed (``.ci/run`` sets it up when ``../shared`` is present):
every announced config must become an entity, Home Assistant must log no warning of its own
(template warnings included) and its energy dashboard validation must report no issue.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import SIM_START
from mqtt_probe import MqttProbe
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO.parent / "shared" / "tools" / "ha-check" / "run_ha.py"
VENV_PYTHON = Path(os.environ.get("HA_HARNESS_VENV", "/tmp/ha-harness/venv")) / "bin" / "python"


@pytest.mark.skipif(not (HARNESS.exists() and VENV_PYTHON.exists()),
                    reason="Home Assistant harness not installed (../shared/tools/ha-check/setup)")
def test_home_assistant_accepts_every_entity_without_warnings(broker, tmp_path):
    with SimulatorServer(start_time=SIM_START) as sim:
        config = {"isolarcloud": {"server": sim.url, "appkey": DEFAULT_CREDENTIALS.appkey,
                                  "access_key": DEFAULT_CREDENTIALS.access_key,
                                  "username": DEFAULT_CREDENTIALS.username,
                                  "password": DEFAULT_CREDENTIALS.password, "token_file": None},
                  "mqtt": {"host": "127.0.0.1", "port": broker.port}}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        probe = MqttProbe(broker.port, "sungrow2mqtt/#")
        bridge = subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", "run", "-c", str(path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            probe.wait_for(lambda p: any(t.endswith("/faults") for t in p.messages), 60,
                           "first cycle")
            time.sleep(1)
            report_file = tmp_path / "report.json"
            run = subprocess.run([str(VENV_PYTHON), str(HARNESS), "--broker-port",
                                  str(broker.port), "--json", str(report_file)],
                                 capture_output=True, text=True, timeout=300)
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
            report = json.loads(report_file.read_text())
        finally:
            bridge.terminate()
            bridge.wait(10)
            probe.close()
    assert not report["errors"], report["errors"]
    configs = report["broker_discovery_topics"]
    announced = configs if isinstance(configs, int) else len(configs)
    assert announced > 50
    assert len(report["entities"]) == announced
    assert report["unmatched_discovery_configs"] == []
    problems = [r for r in report["log_problems"] if not r.get("harness_noise")]
    assert problems == [], problems
    energy = report["energy"]
    assert energy["issues_by_entity"] == {} and energy["recorder_validate_statistics"] == {}
    assert all(not issue for group in energy["validate_raw"].values() for issues in group
               for issue in issues)
    assert len(report["devices"]) == 10
