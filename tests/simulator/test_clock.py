"""The simulator's pinned clock, over real HTTP: start time, set_time, offsets, E913, CLI."""
from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from conftest import at_any_hour, free_port, make_client, wait_for_port
from sim_http import ESS, GMT1, SG5
from sungrow2mqtt.simulator import SimulatorServer

NOON = dt.datetime(2026, 6, 17, 12, 0, tzinfo=GMT1)


def device_times(server: SimulatorServer) -> tuple:
    """``device_time`` of the storage plant's inverter (GMT+1) and a PV inverter (GMT+10)."""
    client = make_client(server)
    ess = client.get_device_real_time_data(14, [13011], ps_keys=[ESS]).devices[0]
    sg5 = client.get_device_real_time_data(1, [24], ps_keys=[SG5]).devices[0]
    return ess["device_time"], sg5["device_time"]


@pytest.mark.parametrize("start", [NOON, NOON.timestamp(), int(NOON.timestamp())])
def test_start_time_pins_the_plant_clock(start) -> None:
    with SimulatorServer(start_time=start) as server:
        assert device_times(server) == ("20260617120000", "20260617210000")
        assert NOON.timestamp() <= server.now() < NOON.timestamp() + 60


def test_a_start_time_without_utc_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a UTC offset"):
        SimulatorServer(start_time=dt.datetime(2026, 6, 17, 12, 0))
    with pytest.raises(ValueError, match="aware datetime or epoch seconds"):
        SimulatorServer(start_time="2026-06-17")  # type: ignore[arg-type]


def test_set_time_offset_and_reset() -> None:
    with SimulatorServer(start_time=NOON) as server:
        server.set_clock_offset(3600)
        assert device_times(server)[0] == "20260617130000"
        server.set_time(dt.datetime(2026, 1, 15, 4, 0, tzinfo=dt.timezone.utc))
        assert device_times(server)[0] == "20260115060000"    # the offset still applies
        server.reset()
        assert device_times(server)[0] == "20260617120000"    # back at the start
        server.set_time(None)                                  # the wall clock again
        assert abs(server.now() - time.time()) < 60


def test_unpinned_simulator_follows_the_wall_clock() -> None:
    with SimulatorServer() as server:  # wall clock on purpose
        assert abs(server.now() - time.time()) < 60


def test_default_fleet_fault_is_relative_to_the_start() -> None:
    with SimulatorServer(start_time=NOON) as server:
        (fault,) = server.fleet.faults
        assert fault.created == pytest.approx(NOON.timestamp() - 6 * 3600, abs=5)
        assert fault.closed == pytest.approx(NOON.timestamp() - 5 * 3600, abs=5)


@pytest.mark.parametrize("encrypted", [False, True])
def test_pinned_clock_costs_no_e913_and_no_timestamp_call(encrypted: bool) -> None:
    # months away from the real clock: the anti-replay check keeps the real one
    start = dt.datetime(2026, 1, 15, 5, 0, tzinfo=GMT1)
    with SimulatorServer(encrypted=encrypted, start_time=start) as server:
        client = make_client(server)
        client.get_power_station_list()
        client.get_device_real_time_data(14, [13011], ps_keys=[ESS])
        assert server.call_counts() == {"login": 1, "getPowerStationList": 1,
                                        "getDeviceRealTimeData": 1}
        stamp = int(requests.get(f"{server.url}/timestamp", timeout=10).json()["result_data"])
        assert abs(stamp / 1000 - time.time()) < 60


def test_offset_still_provokes_e913_under_a_pinned_clock() -> None:
    with SimulatorServer(encrypted=True, start_time=NOON) as server:
        client = make_client(server)
        client.get_power_station_list()
        server.set_clock_offset(3600)
        client.get_power_station_list()      # E913, /timestamp, and the same call again
        assert server.call_counts() == {"login": 1, "getPowerStationList": 3, "timestamp": 1}


def test_http_clock_control() -> None:
    with SimulatorServer(start_time=NOON) as server:
        control = f"{server.url}/_sim/clock"
        answer = requests.post(control, json={"time": "2026-01-15T05:00:00+01:00"}, timeout=10)
        assert answer.json() == {"ok": True}
        assert device_times(server)[0] == "20260115050000"
        requests.post(control, json={"time": "2026-01-15T04:00:00Z", "offset": 600}, timeout=10)
        assert device_times(server)[0] == "20260115051000"
        assert requests.post(control, json={}, timeout=10).status_code == 400
        bad = requests.post(control, json={"time": "2026-01-15T05:00:00"}, timeout=10)
        assert bad.status_code == 400 and "UTC offset" in bad.json()["error"]


def test_simulate_start_flag() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sungrow2mqtt", "simulate", "--port", str(port),
         "--start", "2026-06-17T12:00:00+01:00"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        wait_for_port(port)
        assert "2026-06-17T11:00:00+00:00" in process.stdout.readline() + (
            process.stdout.readline())
        client = make_client(_Remote(port))
        ess = client.get_device_real_time_data(14, [13011], ps_keys=[ESS]).devices[0]
        assert ess["device_time"] == "20260617120000"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


class _Remote:
    """What make_client needs of a simulator that runs in another process."""

    public_key = None

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"


def test_simulate_refuses_a_start_without_offset() -> None:
    result = subprocess.run([sys.executable, "-m", "sungrow2mqtt", "simulate", "--start",
                             "2026-06-17T12:00"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--start" in result.stderr and "needs a UTC offset" in result.stderr


@at_any_hour
def test_any_hour_reaches_the_fixture_simulators(simulator: SimulatorServer,
                                                 sim_start: dt.datetime) -> None:
    assert sim_start.timestamp() <= simulator.now() < sim_start.timestamp() + 60


def test_every_simulator_in_the_tests_is_pinned() -> None:
    """A simulator on the wall clock makes a test depend on the hour it runs at."""
    tests = Path(__file__).resolve().parents[1]
    unpinned = []
    for path in tests.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "SimulatorServer"
                    and not any(k.arg in ("start_time", None) for k in node.keywords)
                    and "wall clock on purpose" not in lines[node.lineno - 1]):
                unpinned.append(f"{path.relative_to(tests)}:{node.lineno}")
    assert unpinned == [], "pass start_time=SIM_START (tests/conftest.py) to these"
