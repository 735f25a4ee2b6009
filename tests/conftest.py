"""Shared fixtures: the project's own Open API simulator and a real MQTT broker on free ports."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

from sungrow2mqtt.errors import Sungrow2MqttError
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient
from sungrow2mqtt.isolarcloud.token_store import TokenStore
from sungrow2mqtt.isolarcloud.transport import Transport
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


UTC = dt.timezone.utc
# Every simulator in the tests runs on a pinned clock, so no test depends on the wall clock: by
# default midday at the storage plant (GMT+1; 21:00 at the PV plant, GMT+10), mid-hour for quota.
SIM_START = dt.datetime(2026, 6, 17, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
# Tests whose outcome could depend on the time of day also run at these instants (at_any_hour).
ANY_HOUR = [
    pytest.param(SIM_START, id="midday"),
    # 23:30 UTC on New Year's Eve: 00:30 on 1 January at the storage plant, UTC still last year
    pytest.param(dt.datetime(2026, 12, 31, 23, 30, tzinfo=UTC), id="2330utc"),
    # 00:30 on the first of a month at the PV plant (GMT+10); 15:30 the day before at storage
    pytest.param(dt.datetime(2026, 3, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=10))),
                 id="0030plant"),
    # 05:00 on a winter morning at the storage plant, before sunrise
    pytest.param(dt.datetime(2026, 1, 15, 5, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
                 id="0500plant"),
    # ten seconds before Europe's clocks go back (01:00 UTC)
    pytest.param(dt.datetime(2026, 10, 25, 0, 59, 50, tzinfo=UTC), id="dst"),
]
at_any_hour = pytest.mark.parametrize("sim_start", ANY_HOUR)


@pytest.fixture
def sim_start() -> dt.datetime:
    """Where the simulators' clock starts; ``@at_any_hour`` tests override it."""
    return SIM_START


@pytest.fixture
def simulator(sim_start: dt.datetime) -> Iterator[SimulatorServer]:
    with SimulatorServer(start_time=sim_start) as server:
        yield server


@pytest.fixture
def encrypted_simulator(sim_start: dt.datetime) -> Iterator[SimulatorServer]:
    with SimulatorServer(encrypted=True, start_time=sim_start) as server:
        yield server


@pytest.fixture(params=["plain", "encrypted"])
def any_simulator(request: pytest.FixtureRequest,
                  sim_start: dt.datetime) -> Iterator[SimulatorServer]:
    with SimulatorServer(encrypted=request.param == "encrypted", start_time=sim_start) as server:
        yield server


CLIENT_ARGS = ("clock", "denied_for", "max_workers", "page_size")


def plant_now(sim: SimulatorServer, ps_id: int) -> dt.datetime:
    """The plant's local wall-clock time on the simulator's clock (naive)."""
    plant = sim.fleet.plant(ps_id)
    assert plant is not None, ps_id
    return plant.local_time(sim.now())


_MADE_CLIENTS: List[IsolarCloudClient] = []


@pytest.fixture(autouse=True)
def _close_made_clients() -> Iterator[None]:
    """Close the clients a test made with :func:`make_client` after it, so that their call
    pools and connections do not outlive it."""
    yield
    while _MADE_CLIENTS:
        _MADE_CLIENTS.pop().close()


def make_client(server: SimulatorServer, *, token_file: Optional[Path] = None,
                credentials=DEFAULT_CREDENTIALS, **transport_args) -> IsolarCloudClient:
    """A real client for a simulator, with fast retries for tests; closed after the test.

    ``clock``, ``denied_for``, ``max_workers`` and ``page_size`` go to the client, the rest to
    the transport."""
    client_args = {name: transport_args.pop(name) for name in CLIENT_ARGS if name in transport_args}
    transport_args.setdefault("backoff_base", 0.01)
    transport_args.setdefault("timeout", 2.0)
    transport = Transport(server.url, credentials.appkey, credentials.access_key,
                          rsa_public_key=server.public_key, **transport_args)
    store = TokenStore(token_file, server.url, credentials.username) if token_file else None
    client = IsolarCloudClient(transport, credentials.username, credentials.password,
                               token_store=store, **client_args)
    _MADE_CLIENTS.append(client)
    return client


class Broker:
    """A real MQTT broker on a free loopback port: mosquitto, else the embedded amqtt broker."""

    def __init__(self, tmp: Path, port: Optional[int] = None, persistence: bool = False) -> None:
        self.port = port or free_port()
        self.tmp = tmp
        self.persistence = persistence
        self.process: Optional[subprocess.Popen] = None
        self.embedded = None

    def start(self) -> "Broker":
        binary = mosquitto_binary()
        if binary is None:
            if self.persistence:
                pytest.skip("broker persistence needs mosquitto (.ci/run installs it)")
            from sungrow2mqtt.demo import EmbeddedBroker
            try:
                self.embedded = EmbeddedBroker(self.port).start()
            except Sungrow2MqttError as exc:
                pytest.skip(f"no MQTT broker: install mosquitto or amqtt ({exc})")
            return self
        conf = self.tmp / f"mosquitto-{self.port}.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true",
                 f"persistence {'true' if self.persistence else 'false'}"]
        if self.persistence:
            lines += [f"persistence_location {self.tmp}/", "autosave_interval 1"]
            if os.geteuid() == 0:      # else mosquitto drops to a user that cannot write there
                lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        self.process = subprocess.Popen([binary, "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def mosquitto_binary() -> Optional[str]:
    """The mosquitto executable, or None when it is not installed."""
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)),
        None)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    running = Broker(tmp_path).start()
    yield running
    running.stop()


@pytest.fixture
def base_topic() -> str:
    """A unique base topic per test, so tests never see each other's retained messages."""
    return "s2m_test_" + uuid.uuid4().hex[:8]
