"""Shared pieces of the reliability tests: a bridge driven cycle by cycle, brokers, the CLI.

Everything here is real: the project's simulator over HTTP, mosquitto, paho and requests.  The knobs
turned are the transport's retry settings (``backoff_base``, ``max_retries``), so an outage of
several cycles takes a second instead of a minute, and the simulator's token bucket (larger), so
quick cycles are not paced by it.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bridge_harness import MovableClock
from conftest import SIM_START, Broker, free_port, mosquitto_binary, wait_for_port
from mqtt_probe import MqttProbe
from sungrow2mqtt.config import parse_config
from sungrow2mqtt.service import Service
from sungrow2mqtt.simulator import SimulatorServer

ROOT = Path(__file__).resolve().parents[2]


def need_mosquitto() -> str:
    """The mosquitto binary, or skip the test (CI installs it)."""
    binary = mosquitto_binary()
    if not binary:
        pytest.skip("mosquitto is not installed (.ci/run installs it)")
    return binary


@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """One plain mosquitto per test module; tests keep apart by their unique base topics."""
    need_mosquitto()
    running = Broker(tmp_path_factory.mktemp("broker")).start()
    yield running
    running.stop()


@pytest.fixture
def probe(shared_broker: Broker, base_topic: str) -> Iterator[MqttProbe]:
    """A probe on the bridge's topics and its discovery configs (``<base>_ha``)."""
    made = MqttProbe(shared_broker.port, f"{base_topic}/#", f"{base_topic}_ha/#")
    yield made
    made.close()


def fast_simulator(**kwargs: Any) -> SimulatorServer:
    """A simulator whose gateway bucket does not pace a test's many quick cycles."""
    kwargs.setdefault("burst_capacity", 500)
    kwargs.setdefault("replenish_rate", 500)
    kwargs.setdefault("start_time", SIM_START)
    return SimulatorServer(**kwargs)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    """A plain (unencrypted) fast simulator."""
    with fast_simulator() as server:
        yield server


class Driven:
    """The real service (config, client, components, MQTT) whose cloud cycles the test drives.

    No worker thread: the test calls :meth:`cycle` (or ``service.poller.run``) itself, so each
    cycle happens exactly when the test says and nothing runs on a schedule in between.  Time
    passes when the test moves ``clock``.
    """

    def __init__(self, config: Dict[str, Any], tmp: Path, *, max_retries: int = 1) -> None:
        self.config = config
        self.clock = MovableClock()
        self.service = Service(parse_config(config, "test.yaml", base_dir=tmp), clock=self.clock)
        self.poller = self.service.poller
        self.fleet = self.service.fleet
        self.transport = self.service.client.transport
        self.transport.backoff_base = 0.01
        self.transport.max_retries = max_retries
        self.base = config["mqtt"]["base_topic"]
        self.service.start(worker=False)
        assert self.service.mqtt.wait_connected(10), "bridge did not connect to the broker"

    def cycle(self, devices: bool = False) -> None:
        """One round of scheduled work: (devices), realtime, faults."""
        if devices or not self.fleet.devices():
            self.poller.run("devices")
        self.poller.run("realtime")
        self.poller.run("faults")
        self.flush()

    def flush(self) -> None:
        """What the cycle set off is out: the announcer sends new configs on its own thread, so
        the broker's acknowledgements are awaited once it has sent them (else a config still
        on its way could be in flight when a test stops the broker)."""
        assert self.service.announcer.flush(10), "the announcer did not send its configs"
        assert self.service.mqtt.wait_published(10), "broker did not acknowledge the publishes"

    def outcome(self, kind: str) -> Optional[str]:
        return self.fleet.snapshot().outcomes[kind].as_dict()["outcome"]

    def stop(self) -> None:
        self.service.stop()


class Worker:
    """The real service with its worker thread, as ``sungrow2mqtt run`` runs it; the transport
    retries fast (set before the worker starts)."""

    def __init__(self, config: Dict[str, Any], tmp: Path, *, max_retries: int = 1) -> None:
        self.service = Service(parse_config(config, "test.yaml", base_dir=tmp))
        self.service.client.transport.backoff_base = 0.01
        self.service.client.transport.max_retries = max_retries
        self.service.start()

    def alive(self) -> bool:
        """Whether the worker thread still runs."""
        return self.service.worker is not None and self.service.worker.is_alive()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Starts bridges with :class:`Worker`; the test's end stops them."""
    started: List[Worker] = []

    def start(config: Dict[str, Any], **kwargs: Any) -> Worker:
        started.append(Worker(config, tmp_path, **kwargs))
        return started[-1]
    yield start
    for worker in started:
        worker.service.stop()


@pytest.fixture
def start_driven(tmp_path: Path) -> Iterator[Callable[..., Driven]]:
    """Starts bridges driven cycle by cycle (:class:`Driven`); the test's end stops them."""
    started: List[Driven] = []

    def start(config: Dict[str, Any], tmp: Optional[Path] = None) -> Driven:
        started.append(Driven(config, tmp or tmp_path))
        return started[-1]
    yield start
    for driven in started:
        driven.stop()


def state_topics(driven: Driven) -> List[str]:
    """The retained state and fault topics of every device the bridge publishes values for."""
    keys = sorted(driven.fleet.snapshot().values)
    return [f"{driven.base}/{k}" for k in keys] + [f"{driven.base}/{k}/faults" for k in keys]


def retained_snapshot(port: int, topics: Sequence[str], timeout: float = 10.0
                      ) -> Dict[str, bytes]:
    """What a client subscribing now gets for ``topics`` (the retained payloads)."""
    probe = MqttProbe(port, *topics)
    try:
        probe.wait_for(lambda p: all(t in p.messages for t in topics), timeout,
                       "retained messages")
        return {t: probe.messages[t] for t in topics}
    finally:
        probe.close()


def messages_since(probe: MqttProbe, mark: int, predicate: Callable[[str], bool]
                   ) -> List[tuple]:
    return [(t, p) for t, p, _ in probe.history[mark:] if predicate(t)]


def records(caplog: pytest.LogCaptureFixture, minimum: int = logging.WARNING,
            logger: str = "sungrow2mqtt") -> List[logging.LogRecord]:
    """Captured records of our loggers at ``minimum`` level or above."""
    return [r for r in caplog.records
            if r.levelno >= minimum and (r.name == logger or r.name.startswith(logger + "."))]


def describe(found: Sequence[logging.LogRecord]) -> str:
    """Log records as lines, with the exception of each that carries one."""
    def line(r: logging.LogRecord) -> str:
        text = f"{r.levelname} {r.name}: {r.getMessage()}"
        if r.exc_info and r.exc_info[1] is not None:
            text += f" [{type(r.exc_info[1]).__name__}: {r.exc_info[1]}]"
        return text
    return "\n".join(line(r) for r in found) or "(none)"


def unhandled(caplog: pytest.LogCaptureFixture) -> List[logging.LogRecord]:
    """Records that carry a traceback: an exception nobody handled on purpose."""
    return [r for r in caplog.records if r.exc_info or r.exc_text]


# -- command line --------------------------------------------------------------------------------

def run_cli(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = 60,
            cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """``python -m sungrow2mqtt ARGS`` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "sungrow2mqtt", *args], capture_output=True,
                          text=True, timeout=timeout, env=cli_env(env),
                          cwd=str(cwd or ROOT))


def start_cli(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(env), cwd=str(ROOT))


def cli_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment of a CLI run: no systemd journal, no CA bundle overrides for requests."""
    dropped = ("JOURNAL_STREAM", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


def write_yaml(path: Path, data: Any, mode: int = 0o600) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    path.chmod(mode)
    return path


def traceback_free(text: str) -> bool:
    return "Traceback (most recent call last)" not in text


# -- brokers with a custom configuration ---------------------------------------------------------

class CustomBroker:
    """mosquitto with extra configuration lines (TLS listener, password file, persistence).

    Run as root, mosquitto would switch to the user "mosquitto", who can neither read the test's
    files nor write its database into pytest's private temporary directory: it stays root here.
    """

    def __init__(self, tmp: Path, lines: Sequence[str], port: Optional[int] = None) -> None:
        self.port = port or free_port()
        self.tmp = tmp
        self.lines = list(lines)
        self.conf = tmp / f"mosquitto-custom-{self.port}.conf"
        persistence = [] if any(line.startswith("persistence ") for line in lines) else [
            "persistence false"]
        self.conf.write_text("\n".join([f"listener {self.port} 127.0.0.1", "user root",
                                        *persistence, *lines]) + "\n")
        self.log = tmp / f"mosquitto-custom-{self.port}.log"
        self.process: Optional[subprocess.Popen] = None

    @classmethod
    def persistent(cls, tmp: Path, port: Optional[int] = None) -> "CustomBroker":
        """A plain broker that keeps retained messages and sessions across restarts."""
        return cls(tmp, ["allow_anonymous true", "persistence true",
                         f"persistence_location {tmp}/", "autosave_interval 1"], port)

    def start(self) -> "CustomBroker":
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([need_mosquitto(), "-c", str(self.conf)],
                                            stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(self.port)
        except RuntimeError:
            self.stop()
            raise RuntimeError("mosquitto did not start: " + self.log.read_text()) from None
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def unqueued_broker(tmp_path: Path) -> Iterator["CustomBroker"]:
    """mosquitto without a limit on the messages it queues for a client (1,000 by default, then
    it drops them): a probe in a busy test process must not be what loses messages."""
    broker = CustomBroker(tmp_path, ["allow_anonymous true", "max_queued_messages 0"]).start()
    yield broker
    broker.stop()


class Collector:
    """Every message on ``#`` of a broker, retained ones included, for secret scans."""

    def __init__(self, port: int, username: Optional[str] = None,
                 password: Optional[str] = None) -> None:
        self.payloads: List[tuple] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"collector-{port}")
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._ready.wait(10), "collector could not subscribe"

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.payloads.append((message.topic, bytes(message.payload)))

    def text(self) -> str:
        with self._lock:
            return "\n".join(f"{t} {p.decode('utf-8', 'replace')}" for t, p in self.payloads)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def info_of(probe: MqttProbe, base: str) -> Dict[str, Any]:
    return json.loads(probe.messages[f"{base}/bridge/info"])


# -- a hostile Open API server ------------------------------------------------------------------

TOKEN = "7654321_" + "f" * 32
Answer = Callable[[Dict[str, Any]], Any]      # request body -> result_data (or Raw)


@dataclass(frozen=True)
class Raw:
    """A whole answer body as it is (say, JSON nested too deeply for json.dumps to write)."""

    body: bytes


class FakeOpenApi:
    """Just enough of the gateway: login, quota, and the scenario's services.

    A scenario's answer is the ``result_data`` of a success envelope, or :class:`Raw` bytes sent
    as the whole body; ``headers`` go with every answer.
    """

    def __init__(self, scenario: Dict[str, Answer],
                 headers: Optional[Dict[str, str]] = None) -> None:
        self.scenario = scenario
        self.headers = dict(headers or {})
        self.calls: Dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                service = self.path.rsplit("/", 1)[-1]
                fake.calls[service] = fake.calls.get(service, 0) + 1
                answer = fake.answer(service, body)
                data = answer.body if isinstance(answer, Raw) else json.dumps(
                    answer, ensure_ascii=False).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in fake.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def answer(self, service: str, body: Dict[str, Any]) -> Any:
        envelope: Dict[str, Any] = {"req_serial_num": uuid.uuid4().hex, "result_code": "1",
                                    "result_msg": "success", "result_data": None}
        if service == "login":
            envelope["result_data"] = {"login_state": "1", "token": TOKEN,
                                       "user_name": "测试用户"}
        elif service in self.scenario:
            data = self.scenario[service](body)
            if isinstance(data, Raw):
                return data
            envelope["result_data"] = data
        elif service == "getOpenApiCallInfo":
            envelope["result_data"] = {"per_day_access_times_config": "abc",
                                       "per_hour_access_times_config": "nope",
                                       "today_accessed_times": None}
        else:
            envelope.update(result_code="E996", result_msg="api not found")
        return envelope

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ServerUrl:
    """config_dict wants something with ``url`` and ``public_key``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.public_key = None


