"""systemd's watchdog: a real unix datagram socket plays systemd (``NOTIFY_SOCKET``).

The bridge says READY=1, pings WATCHDOG=1 from its worker loop and says STOPPING=1; a loop that
hangs in a call (a cloud answer trickling in, one byte at a time) stops the pings, which is what
makes systemd restart it (issue 14, finding 3).  SIGHUP stops the bridge as cleanly as SIGTERM
(finding 15).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from bridge_harness import config_dict, ready
from mqtt_probe import MqttProbe
from reliability_support import (
    shared_broker, sim, start_cli, traceback_free, wait_until, write_yaml,
)
from sungrow2mqtt.config import parse_config
from sungrow2mqtt.service import Service

__all__ = ["shared_broker", "sim"]   # fixtures, used by name below

WATCHDOG_USEC = 2_000_000          # pings at least every half second


class FakeSystemd:
    """The notify socket systemd would listen on, collecting what the service says."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="s2m-notify-")   # short: a socket path has ~100
        self.path = os.path.join(self._dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def _next(self, deadline: float) -> Optional[str]:
        """The next message, or None when none comes before ``deadline`` (monotonic)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def receive(self, timeout: float) -> List[str]:
        """Every message that arrives within ``timeout`` seconds (none: an empty list)."""
        deadline = time.monotonic() + timeout
        found: List[str] = []
        while (message := self._next(deadline)) is not None:
            found.append(message)
        return found

    def wait_for(self, message: str, timeout: float = 20.0) -> List[str]:
        """What arrived up to and including ``message``."""
        deadline = time.monotonic() + timeout
        found: List[str] = []
        while message not in found:
            arrived = self._next(deadline)
            assert arrived is not None, f"no {message} from the service; got {found[-5:]}"
            found.append(arrived)
        return found

    def drain(self) -> List[str]:
        """What is waiting in the socket now."""
        found: List[str] = []
        self.sock.setblocking(False)
        try:
            while True:
                found.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return found
        finally:
            self.sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self._dir)


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    fake = FakeSystemd()
    monkeypatch.setenv("NOTIFY_SOCKET", fake.path)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield fake
    fake.close()


def test_a_hung_worker_loop_stops_the_watchdog_pings(sim, shared_broker, base_topic, tmp_path,
                                                     systemd):
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
    config = config_dict(sim, shared_broker.port, base_topic, tmp_path,
                         isolarcloud={"timeout": 10}, polling={"min_refresh_spacing": 0})
    service = Service(parse_config(config, "test.yaml", base_dir=tmp_path))
    service.client.transport.max_retries = 0
    try:
        service.start()
        systemd.wait_for("READY=1")
        ready(probe, base_topic)
        systemd.wait_for("WATCHDOG=1")
        systemd.wait_for("WATCHDOG=1")                 # the loop goes round: pings go on

        # the next realtime answer trickles in, a byte every half second, for up to 10 s
        sim.fail_next(1, "trickle", delay=0.5, service="getDeviceRealTimeData")
        calls = sim.call_counts()["getDeviceRealTimeData"]
        probe.publish(f"{base_topic}/bridge/request/refresh", {"transaction": "hang"})
        wait_until(lambda: sim.call_counts()["getDeviceRealTimeData"] > calls, 10,
                   "the refresh's realtime calls")
        systemd.drain()                                # pings sent before the hang
        assert systemd.receive(3.0) == [], "pings went on while the worker loop hung"

        # the call's deadline ends the hang: the refresh is answered, the pings come back
        probe.wait_for(lambda p: any(t.endswith("/bridge/response/refresh") and
                                     json.loads(d).get("transaction") == "hang"
                                     for t, d, _ in p.history), 30, "the refresh's answer")
        systemd.wait_for("WATCHDOG=1")
    finally:
        service.stop()
        probe.close()
    assert "STOPPING=1" in systemd.drain()


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM])
def test_sighup_stops_as_cleanly_as_sigterm(signum, sim, shared_broker, base_topic,
                                            tmp_path: Path, systemd):
    config = config_dict(sim, shared_broker.port, base_topic, tmp_path)
    path = write_yaml(tmp_path / "config.yaml", config)
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
    process = start_cli("run", "-c", str(path), env={
        "NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    try:
        systemd.wait_for("READY=1")
        ready(probe, base_topic)
        systemd.wait_for("WATCHDOG=1")
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        probe.close()
    assert process.returncode == 0, stderr
    assert "STOPPING=1" in systemd.drain()
    assert f"Received {signal.Signals(signum).name}" in stderr and traceback_free(stderr)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["mqtt_connected"] is False, status
    after = MqttProbe(shared_broker.port, f"{base_topic}/bridge/state")
    try:
        assert after.wait_topic(f"{base_topic}/bridge/state") == b"offline"
    finally:
        after.close()
