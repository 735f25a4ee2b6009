"""systemd's notify protocol, with the standard library: ready, alive (the watchdog), stopping.

Under ``Type=notify`` with ``WatchdogSec=`` (systemd/sungrow2mqtt.service) systemd restarts the
bridge when the worker loop stops saying it is alive: a loop stuck in a call that never ends, or in
anything else, is restarted instead of leaving a process that runs and publishes nothing.  The
messages are datagrams to the unix socket named in ``NOTIFY_SOCKET`` (``@`` for the abstract
namespace); without it every method does nothing, so nothing changes outside systemd.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Callable, Mapping, Optional

log = logging.getLogger(__name__)


class Notifier:
    """Tells systemd the service is ready, alive or stopping (when systemd asked to be told)."""

    def __init__(self, environ: Mapping[str, str] = os.environ,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._address = _address(environ.get("NOTIFY_SOCKET", ""))
        self._clock = clock
        self._every = _ping_interval(environ)
        self._last_ping = float("-inf")
        self._failed = False

    def ready(self) -> None:
        """Start-up is done."""
        self._send("READY=1")

    def alive(self) -> None:
        """The worker loop went round: a watchdog ping, at most every quarter of its timeout."""
        if self._every is None or self._clock() - self._last_ping < self._every:
            return
        self._last_ping = self._clock()
        self._send("WATCHDOG=1")

    def stopping(self) -> None:
        """A stop has begun (systemd then does not count the pings that stop)."""
        self._send("STOPPING=1")

    def _send(self, state: str) -> None:
        if self._address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(state.encode("ascii"))
        except OSError as exc:
            if not self._failed:          # once: systemd restarts us if it mattered
                log.warning("Cannot notify systemd (%s): %s", state,
                            exc.strerror or type(exc).__name__)
            self._failed = True


def _address(value: str) -> Optional[str]:
    """The socket address of NOTIFY_SOCKET: a path, or ``@name`` in the abstract namespace."""
    if value.startswith("@"):
        return "\0" + value[1:]
    return value if value.startswith("/") else None


def _ping_interval(environ: Mapping[str, str]) -> Optional[float]:
    """Seconds between pings: a quarter of WATCHDOG_USEC (meant for this process, if it says)."""
    pid = environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 4e6 if usec > 0 else None
