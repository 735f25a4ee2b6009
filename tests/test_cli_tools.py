"""init, history, health and demo as a user runs them."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import stat
import subprocess
import sys
import time

import pytest
import yaml

from conftest import SIM_START
from sungrow2mqtt.config import load_config
from sungrow2mqtt.simulator import SimulatorServer
from test_cli import ENV, run_cli, write_config


def test_init_prints_the_example_and_writes_a_private_file(tmp_path):
    printed = run_cli("init")
    assert printed.returncode == 0 and "isolarcloud:" in printed.stdout
    target = tmp_path / "config.yaml"
    assert run_cli("init", "-o", str(target)).returncode == 0
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert target.read_text() == printed.stdout
    again = run_cli("init", "-o", str(target))
    assert again.returncode == 2 and "--force" in again.stderr
    env = {"SUNGROW_APPKEY": "a" * 32, "SUNGROW_ACCESS_KEY": "b" * 32,
           "SUNGROW_USERNAME": "me@example.com", "SUNGROW_PASSWORD": "pw", "MQTT_PASSWORD": "x"}
    config = load_config(target, environ={**os.environ, **env})
    assert config.mqtt.base_topic == "sungrow2mqtt"


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_history_day_csv_and_json(tmp_path, fmt):
    with SimulatorServer(start_time=SIM_START) as sim:
        plant = sim.fleet.plants[0]
        today = plant.local_time(sim.now()).date()
        end, start = today.isoformat(), (today - dt.timedelta(days=120)).isoformat()
        result = run_cli("history", "-c", str(write_config(tmp_path, sim.url)), "--ps-key",
                         f"{plant.ps_id}_11_0_0", "--points", "83022,83024", "--from", start,
                         "--to", end, "--interval", "day", "--format", fmt, env=ENV)
        assert result.returncode == 0, result.stderr
        assert "window 2/2" in result.stderr            # 121 days -> two 100-day windows
        assert sim.call_counts()["getDevicePointsDayMonthYearDataList"] == 2
    if fmt == "json":
        data = json.loads(result.stdout)
        assert set(data["series"]) == {"daily_yield", "total_yield"}
        assert data["points"]["daily_yield"]["unit"] == "kWh"
        times = [row["time"] for row in data["series"]["total_yield"]]
        assert times == sorted(times) and len(times) == len(set(times))
    else:
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0] == ["time", "daily_yield (kWh)", "total_yield (kWh)"]
        assert len(rows) > 100 and all(float(r[2]) > 0 for r in rows[1:] if r[2])


def test_history_minute_window_and_bad_input(tmp_path):
    with SimulatorServer(start_time=SIM_START) as sim:
        path = str(write_config(tmp_path, sim.url))
        ps_key = sim.fleet.devices()[1].ps_key
        ok = run_cli("history", "-c", path, "--ps-key", ps_key, "--points", "13011",
                     "--from", "2026-11-24T06:00", "--to", "2026-11-24T12:00",
                     "--interval", "minute", "--format", "json", env=ENV)
        assert ok.returncode == 0, ok.stderr
        assert sim.call_counts()["getDevicePointMinuteDataList"] == 2
        bad = run_cli("history", "-c", path, "--ps-key", "nonsense", "--points", "1",
                      "--from", "2026", "--to", "2026", "--interval", "year", env=ENV)
        assert bad.returncode == 2 and ("sungrow2mqtt: error: ps_key: expected <ps_id>_<device "
                                        "type>_<device code>_<channel> such as 1234567_14_1_1, "
                                        "got 'nonsense'") in bad.stderr


def test_health_reflects_the_status_file(tmp_path, broker):
    with SimulatorServer(start_time=SIM_START) as sim:
        path = write_config(tmp_path, sim.url, token_file=str(tmp_path / "state" / "token.json"))
        data = yaml.safe_load(path.read_text())
        data["mqtt"] = {"host": "127.0.0.1", "port": broker.port, "base_topic": "health_t"}
        path.write_text(yaml.safe_dump(data))
        before = run_cli("health", "-c", str(path), env=ENV)
        assert before.returncode == 1 and "no status file" in before.stdout
        process = subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", "run", "-c",
                                    str(path)], env={**os.environ, **ENV},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 20
            result = before
            while time.monotonic() < deadline and result.returncode != 0:
                time.sleep(0.5)
                result = run_cli("health", "-c", str(path), env=ENV)
            assert result.returncode == 0 and result.stdout.startswith("healthy")
            without_secrets = run_cli("health", "-c", str(path))    # SIM_PASSWORD unset
            assert without_secrets.returncode == 0, without_secrets.stdout
        finally:
            process.terminate()
            process.wait(10)
        after = run_cli("health", "-c", str(path), env=ENV)
        assert after.returncode == 1 and "not connected" in after.stdout


def test_demo_runs_and_shows_readable_values(broker):
    result = subprocess.run([sys.executable, "-m", "sungrow2mqtt", "demo", "--broker",
                             f"127.0.0.1:{broker.port}", "--duration", "6"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "_11_0_0 → " in result.stdout and " kWh" in result.stdout
    assert "battery_soc=" in result.stdout and " %" in result.stdout


def test_demo_with_the_embedded_broker(tmp_path):
    pytest.importorskip("amqtt")
    result = subprocess.run([sys.executable, "-m", "sungrow2mqtt", "demo", "--duration", "6"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "(embedded)" in result.stdout and "bridge/state → online" in result.stdout
