"""The real verdict on discovery: unmodified Home Assistant releases (ha-check, ../shared/tools).

One bridge against the simulator is judged by each HA version whose harness venv is set up
(``.ci/run`` sets them up; a version without one is skipped): the version ha-check defaults to,
2024.3.3 (the oldest, which knows only ``object_id``) and 2026.2.3 (which warns about
``object_id``; experimental on this machine's Python, see the tool's README). Each must create
every announced entity under the id the bridge asked for (so all versions give the same ids),
log no warning of its own and report no energy or statistics issue.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

import pytest
import yaml

from conftest import SIM_START, Broker
from mqtt_probe import MqttProbe
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer

REPO = Path(__file__).resolve().parents[1]
OTHER_VERSIONS = ("2024.3.3", "2026.2.3")
Report = Dict[str, Any]


def _ha_check_dir() -> Optional[Path]:
    """ha-check next to the checkout (``../shared``), also from a worktree one level deeper."""
    given = os.environ.get("HA_CHECK_DIR")
    candidates = [Path(given)] if given else [
        parent / "shared" / "tools" / "ha-check" for parent in REPO.parents]
    return next((path for path in candidates if (path / "run_ha.py").exists()), None)


HA_CHECK = _ha_check_dir()


def _harness(version: Optional[str]) -> Dict[str, str]:
    """HA version and venv as ha-check's setup has them (defaults.sh); None = its default."""
    assert HA_CHECK is not None
    env = dict(os.environ)
    if version is not None:   # HA_HARNESS_VENV, if the user set one, is for the default only
        env.pop("HA_HARNESS_VENV", None)
        env["HA_VERSION"] = version
    else:
        env.pop("HA_VERSION", None)
    out = subprocess.run(["bash", "-c", '. "$1" && echo "$HA_VERSION" && echo "$HA_HARNESS_VENV"',
                          "defaults", str(HA_CHECK / "defaults.sh")],
                         env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    return {"version": out[0], "venv": out[1]}


def ha_versions() -> List[Dict[str, str]]:
    if HA_CHECK is None:
        return []
    default = _harness(None)
    return [default] + [_harness(v) for v in OTHER_VERSIONS if v != default["version"]]


class Fleet(NamedTuple):
    """The broker's port and a probe that has seen every retained message of the bridge."""

    port: int
    probe: MqttProbe


@pytest.fixture(scope="module")
def fleet_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """A broker, the simulator and a bridge that has announced everything and polled once."""
    tmp = tmp_path_factory.mktemp("ha")
    broker = Broker(tmp).start()
    sim = SimulatorServer(start_time=SIM_START).start()
    config = {"isolarcloud": {"server": sim.url, "appkey": DEFAULT_CREDENTIALS.appkey,
                              "access_key": DEFAULT_CREDENTIALS.access_key,
                              "username": DEFAULT_CREDENTIALS.username,
                              "password": DEFAULT_CREDENTIALS.password, "token_file": None},
              "mqtt": {"host": "127.0.0.1", "port": broker.port}}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    probe = MqttProbe(broker.port, "sungrow2mqtt/#", "homeassistant/#")
    bridge = subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", "run", "-c", str(path)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe.wait_for(lambda p: any(t.endswith("/faults") for t in p.messages), 60,
                       "first cycle")
        time.sleep(1)
        yield Fleet(broker.port, probe)
    finally:
        bridge.terminate()
        bridge.wait(10)
        probe.close()
        sim.stop()
        broker.stop()


def run_ha_check(harness: Dict[str, str], port: int, report_dir: Path) -> Report:
    """ha-check of one HA version against the broker on ``port``: its report."""
    assert HA_CHECK is not None
    python = Path(harness["venv"]) / "bin" / "python"
    report_file = report_dir / "report.json"
    # HA refuses a Python older than it requires; ha-check can lower that gate (2026.2.3 on
    # 3.13.0 here)
    too_old = subprocess.run([str(python), "-c", "import sys, homeassistant.const as c; "
                              "sys.exit(sys.version_info[:3] < c.REQUIRED_PYTHON_VER)"])
    gate = ["--ignore-python-gate"] if too_old.returncode else []
    run = subprocess.run([str(python), str(HA_CHECK / "run_ha.py"), "--broker-port", str(port),
                          "--json", str(report_file), *gate],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report: Report = json.loads(report_file.read_text())
    return report


@pytest.fixture(scope="module")
def judge(fleet_bridge: Fleet, tmp_path_factory: pytest.TempPathFactory
          ) -> Callable[[Dict[str, str]], Report]:
    """Run ha-check of one HA version against the bridge's broker."""
    def run(harness: Dict[str, str]) -> Report:
        return run_ha_check(harness, fleet_bridge.port, tmp_path_factory.mktemp("report"))

    return run


def _announced(probe: MqttProbe) -> Dict[str, Dict[str, Any]]:
    return {topic: json.loads(payload) for topic, payload in probe.messages.items()
            if topic.startswith("homeassistant/") and topic.endswith("/config") and payload}


@pytest.mark.skipif(HA_CHECK is None, reason="ha-check not found (../shared/tools/ha-check)")
@pytest.mark.parametrize("harness", ha_versions(), ids=lambda h: h["version"])
def test_home_assistant_accepts_every_entity_without_warnings(
        harness: Dict[str, str], fleet_bridge: Fleet,
        judge: Callable[[Dict[str, str]], Report]) -> None:
    if not (Path(harness["venv"]) / "bin" / "python").exists():
        pytest.skip(f"HA {harness['version']} not set up: HA_VERSION={harness['version']} "
                    f"{HA_CHECK}/setup")
    report = judge(harness)
    announced = _announced(fleet_bridge.probe)
    assert not report["errors"], report["errors"]
    configs = report["broker_discovery_topics"]
    assert (configs if isinstance(configs, int) else len(configs)) == len(announced) > 50
    assert report["unmatched_discovery_configs"] == []
    problems = [r for r in report["log_problems"] if not r.get("harness_noise")]
    assert problems == [], problems
    # every entity under the id asked for: the same ids on every version
    assert sorted(e["entity_id"] for e in report["entities"]) == sorted(
        str(p.get("default_entity_id")) for p in announced.values())
    # the optional tier is there, switched off until the user enables it
    off = {p["unique_id"] for p in announced.values() if p.get("enabled_by_default") is False}
    assert off and {e["unique_id"] for e in report["entities"] if e["disabled_by"]} == off
    energy = report["energy"]
    assert energy["issues_by_entity"] == {} and energy["recorder_validate_statistics"] == {}
    assert all(not issue for group in energy["validate_raw"].values() for issues in group
               for issue in issues)
    assert len(report["devices"]) == 10
