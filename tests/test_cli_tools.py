"""init, history, health and demo as a user runs them."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import SIM_START, free_port, wait_for_port
from mqtt_probe import MqttProbe
from sungrow2mqtt.config import load_config
from sungrow2mqtt.simulator import SimulatorServer
from test_cli import ENV, run_cli, write_config

ROOT = Path(__file__).resolve().parents[1]
# What Python and asyncio print when a program is torn down untidily.
NOISE = ("Traceback", "Task was destroyed", "Exception ignored", "Event loop is closed",
         "was never awaited", "asyncio")


def bridge_config(tmp_path, sim, broker, base_topic="s2m_cli"):
    path = write_config(tmp_path, sim.url, mqtt_port=broker.port,
                        token_file=str(tmp_path / "state" / "token.json"))
    data = yaml.safe_load(path.read_text())
    data["mqtt"]["base_topic"] = base_topic
    path.write_text(yaml.safe_dump(data))
    return path


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", *args],
                            env={**os.environ, **ENV}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


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
        # 121 days -> two 100-day windows; not a terminal: one line each, no carriage returns
        assert [line for line in result.stderr.splitlines() if "window" in line] == [
            "downloading window 1/2", "downloading window 2/2"]
        assert "\r" not in result.stderr
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


@pytest.mark.parametrize("interval,start,end", [
    ("day", "2026-11-24", "2026-11-01"),
    ("month", "2026-11", "2026-01"),
    ("minute", "2026-11-24T12:00", "2026-11-24T06:00"),
    ("minute", "2026-11-24T06:00", "2026-11-24T06:00"),
])
def test_history_reversed_range_is_a_clear_error(tmp_path, interval, start, end):
    with SimulatorServer(start_time=SIM_START) as sim:
        result = run_cli("history", "-c", str(write_config(tmp_path, sim.url)), "--ps-key",
                         f"{sim.fleet.plants[0].ps_id}_11_0_0", "--points", "83022", "--from",
                         start, "--to", end, "--interval", interval, env=ENV)
        calls = sum(sim.call_counts().values())
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert f"start: {start!r} must come before end {end!r}" in line
    assert calls == 0                                   # refused before calling the cloud


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
        assert after.returncode == 1 and "is not running" in after.stdout


def test_health_is_unhealthy_once_run_once_has_exited(tmp_path, broker):
    """Also when the last status still says "connected" (a crash, kill -9): the status file
    names its writer's pid, and health checks that it still runs."""
    with SimulatorServer(start_time=SIM_START) as sim:
        path = bridge_config(tmp_path, sim, broker)
        once = run_cli("run", "--once", "-c", str(path), env=ENV)
        assert once.returncode == 0, once.stderr
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    result = run_cli("health", "-c", str(path), env=ENV)
    assert result.returncode == 1, result.stdout     # nothing runs any more
    assert f"(pid {status['pid']}) is not running" in result.stdout


def test_health_notices_a_bridge_that_died_without_a_last_status(tmp_path):
    path = write_config(tmp_path, "http://127.0.0.1:1",
                        token_file=str(tmp_path / "state" / "token.json"))
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)
    status = tmp_path / "state" / "status.json"
    status.parent.mkdir()
    for pid, healthy in ((gone, False), (os.getpid(), True)):
        status.write_text(json.dumps({"mqtt_connected": True, "cloud_ok": True,
                                      "written_at": time.time(), "pid": pid}))
        result = run_cli("health", "-c", str(path), env=ENV)
        assert (result.returncode == 0) == healthy, result.stdout
    assert result.stdout.startswith("healthy")


def test_ctrl_c_exits_130_sigterm_exits_0(tmp_path, broker):
    """The README's exit-code table: 130 interrupted (Ctrl-C = SIGINT); SIGTERM is a normal
    stop (systemd, Docker) and exits 0. Both publish offline."""
    table = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "**130** interrupted (Ctrl-C)" in table and "SIGTERM" in table
    with SimulatorServer(start_time=SIM_START) as sim:
        for signum, expected in ((signal.SIGINT, 130), (signal.SIGTERM, 0)):
            base = f"s2m_exit_{signum}"
            probe = MqttProbe(broker.port, f"{base}/bridge/state")
            process = start("run", "-c", str(bridge_config(tmp_path, sim, broker, base)))
            try:
                probe.wait_topic(f"{base}/bridge/state", 30, check=lambda d: d == b"online")
                process.send_signal(signum)
                _, err = process.communicate(timeout=30)
                probe.wait_topic(f"{base}/bridge/state", 10, check=lambda d: d == b"offline")
            finally:
                probe.close()
                if process.poll() is None:
                    process.kill()
                    process.wait(10)
            assert process.returncode == expected, err
            assert "Traceback" not in err


def test_simulate_ctrl_c_exits_130():
    port = free_port()
    process = start("simulate", "--port", str(port))
    try:
        wait_for_port(port)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:      # it hung: leave nothing running
            process.kill()
            process.wait(10)
    assert process.returncode == 130, err
    assert "Traceback" not in err


def test_demo_runs_and_shows_readable_values(broker):
    result = subprocess.run([sys.executable, "-m", "sungrow2mqtt", "demo", "--broker",
                             f"127.0.0.1:{broker.port}", "--duration", "6"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "_11_0_0 → " in result.stdout and " kWh" in result.stdout
    assert "battery_soc=" in result.stdout and " %" in result.stdout
    # a first run warns about nothing the user did not write
    assert not [line for line in result.stderr.splitlines() if " WARNING " in line or
                " ERROR " in line], result.stderr


def test_demo_with_the_embedded_broker_delivers_and_stops_quietly_on_ctrl_c():
    """The embedded broker (amqtt) delivers the bridge's messages on every supported Python
    (.ci/run runs this on the oldest and the newest), and Ctrl-C ends it without asyncio noise."""
    pytest.importorskip("amqtt")
    process = start("demo")
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if re.search(r"_11_0_0 → .*kWh", line) or not line:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    out = "".join(lines) + out
    assert "(embedded)" in out and "bridge/state → online" in out, out + err
    assert re.search(r"_11_0_0 → .*kWh", out), out          # states went through the broker
    assert process.returncode == 130, err
    noise = [line for line in err.splitlines() if any(word in line for word in NOISE)]
    assert not noise, err
