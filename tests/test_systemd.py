"""The notify protocol on real unix datagram sockets, with a clock the test moves."""
from __future__ import annotations

import os
import socket
import uuid
from typing import Iterator, List, Tuple

import pytest

from sungrow2mqtt.systemd import Notifier


@pytest.fixture
def abstract_socket() -> Iterator[Tuple[str, socket.socket]]:
    """A socket in the abstract namespace, as systemd may name it: ``@name``."""
    name = "s2m-test-" + uuid.uuid4().hex
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.setblocking(False)
    yield "@" + name, sock
    sock.close()


def received(sock: socket.socket) -> List[str]:
    found = []
    try:
        while True:
            found.append(sock.recv(100).decode())
    except BlockingIOError:
        return found


def test_ready_pings_and_stopping_reach_systemd_pings_at_a_quarter_of_the_timeout(
        abstract_socket):
    address, sock = abstract_socket
    now = [100.0]
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "8000000"},
                        clock=lambda: now[0])
    notifier.ready()
    for _ in range(3):                 # the loop goes round quickly: one ping
        notifier.alive()
    now[0] += 1.9
    notifier.alive()
    now[0] += 0.1                      # two seconds: a quarter of eight
    notifier.alive()
    notifier.stopping()
    assert received(sock) == ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"]


def test_a_watchdog_meant_for_another_process_gets_no_pings(abstract_socket):
    address, sock = abstract_socket
    notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "8000000",
                         "WATCHDOG_PID": str(os.getpid() + 1)})
    notifier.alive()
    notifier.ready()
    assert received(sock) == ["READY=1"]


def test_without_systemd_nothing_happens_and_a_gone_socket_is_said_once(tmp_path, caplog):
    quiet = Notifier({})
    quiet.ready()
    quiet.alive()
    quiet.stopping()
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody"), "WATCHDOG_USEC": "1"})
    gone.ready()
    gone.stopping()
    assert [r.getMessage() for r in caplog.records] == [
        "Cannot notify systemd (READY=1): No such file or directory"]
