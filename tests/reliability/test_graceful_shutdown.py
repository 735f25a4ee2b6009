"""``sungrow2mqtt run`` stops cleanly on SIGTERM/SIGINT: ``offline`` retained, exit 0, within 5 s.

Also while a cloud call hangs (the gateway accepted the request and never answers) and while
the broker cannot be reached.
"""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from bridge_harness import config_dict, ready
from conftest import free_port
from mqtt_probe import MqttProbe
from reliability_support import (
    retained_snapshot, shared_broker, sim, start_cli, traceback_free, wait_until, write_yaml,
)

__all__ = ["shared_broker", "sim"]   # fixtures, used by name below

STOP_WITHIN = 5.0


@pytest.fixture
def cleanup() -> Iterator[list]:
    processes: list = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _config(sim, port: int, base: str, tmp: Path, **extra: Any) -> Path:
    data: Dict[str, Any] = config_dict(sim, port, base, tmp, **extra)
    return write_yaml(tmp / "config.yaml", data)


def _stop(process: subprocess.Popen, signum: int) -> str:
    process.send_signal(signum)
    try:
        code = process.wait(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate(timeout=10)
        raise AssertionError(f"still running {STOP_WITHIN:g} s after "
                             f"{signal.Signals(signum).name}; stderr:\n{err[-3000:]}") from None
    _, err = process.communicate(timeout=10)
    assert code == 0, f"exit code {code}; stderr:\n{err[-3000:]}"
    assert traceback_free(err), err
    return err


def test_sigterm_while_idle_publishes_offline_and_exits_zero(
        sim, shared_broker, base_topic, tmp_path, cleanup):
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
    try:
        process = start_cli("run", "-c", str(_config(sim, shared_broker.port, base_topic,
                                                     tmp_path)))
        cleanup.append(process)
        ready(probe, base_topic)
        assert probe.messages[f"{base_topic}/bridge/state"] == b"online"
        _stop(process, signal.SIGTERM)
    finally:
        probe.close()
    state = f"{base_topic}/bridge/state"
    assert retained_snapshot(shared_broker.port, [state])[state] == b"offline"


def test_sigterm_while_a_cloud_call_hangs(sim, shared_broker, base_topic, tmp_path, cleanup):
    # the client would wait a minute for the answer: only the stop can end this call early
    path = _config(sim, shared_broker.port, base_topic, tmp_path, isolarcloud={"timeout": 60})
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
    try:
        process = start_cli("run", "-c", str(path))
        cleanup.append(process)
        ready(probe, base_topic)
        calls = sim.call_counts().get("getDeviceRealTimeData", 0)
        sim.fail_next(1, "timeout", delay=20)
        probe.publish(f"{base_topic}/bridge/request/refresh", "")
        wait_until(lambda: sim.call_counts().get("getDeviceRealTimeData", 0) > calls, 10,
                   "the refresh's cloud call to be in flight")
        _stop(process, signal.SIGTERM)
    finally:
        probe.close()
    state = f"{base_topic}/bridge/state"
    assert retained_snapshot(shared_broker.port, [state])[state] == b"offline"


def test_sigterm_while_the_first_login_hangs(sim, shared_broker, base_topic, tmp_path,
                                             cleanup):
    path = _config(sim, shared_broker.port, base_topic, tmp_path, isolarcloud={"timeout": 60})
    sim.fail_next(1, "timeout", delay=20)
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
    try:
        process = start_cli("run", "-c", str(path))
        cleanup.append(process)
        probe.wait_topic(f"{base_topic}/bridge/state", 15, check=lambda d: d == b"online")
        wait_until(lambda: sim.call_counts().get("login", 0) >= 1, 10, "the login in flight")
        _stop(process, signal.SIGTERM)
    finally:
        probe.close()
    state = f"{base_topic}/bridge/state"
    assert retained_snapshot(shared_broker.port, [state])[state] == b"offline"


def test_sigterm_while_the_broker_cannot_be_reached(sim, base_topic, tmp_path, cleanup):
    path = _config(sim, free_port(), base_topic, tmp_path)   # nothing listens there
    process = start_cli("run", "-c", str(path))
    cleanup.append(process)
    wait_until(lambda: sim.call_counts().get("getFaultAlarmInfo", 0) >= 1, 15,
               "the first cloud cycle")
    err = _stop(process, signal.SIGTERM)
    assert "MQTT" in err
