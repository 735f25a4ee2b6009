"""Shared setup of the benchmarks: simulator process, mosquitto, bridge, recorder, stats, tables.

The simulator runs in a child process (``python benchmarks/_harness.py simulate ...``) so that the
CPU time, RSS, threads and file descriptors measured in the benchmark process belong to the bridge
alone; it is steered through the simulator's HTTP control surface (``/_sim/...``).
"""
from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import logging
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

ROOT = Path(__file__).resolve().parents[1]
# `python benchmarks/NAME.py` puts only benchmarks/ on the path; the port helpers are the tests'
for _path in (ROOT, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import paho.mqtt.client as paho  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from bridge_harness import MovableClock  # noqa: E402
from conftest import free_port, wait_for_port  # noqa: E402
from conftest import mosquitto_binary as find_mosquitto  # noqa: E402
from sungrow2mqtt.config import parse_config  # noqa: E402
from sungrow2mqtt.service import Service  # noqa: E402
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, Fleet, SimulatorServer  # noqa: E402
from sungrow2mqtt.simulator.server import MISSING_READINGS  # noqa: E402

# A simulator without the gateway's burst limiter and hourly quota, so loops measure the bridge.
UNLIMITED_BURST = 1_000_000
UNLIMITED_QUOTA = 1_000_000_000
# The simulator's own defaults, modelled on the real gateway's X-Ratelimit headers.
GATEWAY_BURST, GATEWAY_RATE, GATEWAY_QUOTA = 15, 10.0, 10_000

FLEETS: Tuple[str, ...] = ("1", "10", "100", "default")
T = TypeVar("T")


def add_common_arguments(parser: argparse.ArgumentParser, *,
                         fleets: Optional[Sequence[str]] = FLEETS) -> None:
    """The options the benchmarks share, so they read the same everywhere."""
    if fleets:
        parser.add_argument("--fleets", default=",".join(fleets),
                            help="comma-separated numbers of devices and/or 'default' "
                            "(default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the bridge's logs")


def fleet_label(spec: str) -> str:
    """Human name of a fleet spec, for table rows."""
    return "default fleet" if spec == "default" else f"{spec} device(s)"


def make_fleet(spec: str, seed: int = 0) -> Fleet:
    """``default`` is the simulator's two demo plants; a number N is ``Fleet.synthetic(N)``."""
    return Fleet.default() if spec == "default" else Fleet.synthetic(int(spec), seed)


def setup_logging(verbose: bool = False) -> None:
    """Benchmarks print figures, not the bridge's INFO chatter."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("sungrow2mqtt").setLevel(logging.WARNING)


# -- ports and processes ----------------------------------------------------------------------

def end_process(process: "subprocess.Popen[Any]", timeout: float = 10.0) -> Optional[int]:
    """SIGTERM, then SIGKILL, so no benchmark leaves a process behind; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    return process.returncode


def child_env() -> Dict[str, str]:
    """Environment for child Pythons, so the repository is importable without installing it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def mosquitto_binary() -> str:
    """Path of mosquitto (the tests' lookup); benchmarks cannot run without it."""
    found = find_mosquitto()
    if not found:
        raise SystemExit("mosquitto is not installed (apt-get install mosquitto)")
    return found


class Mosquitto:
    """A throw-away mosquitto on a free loopback port, without persistence.

    ``nodelay`` sets mosquitto's ``set_tcp_nodelay``; its default (off) lets Nagle hold back
    the second and later messages of a burst to a subscriber for a delayed ACK (~40 ms).
    """

    def __init__(self, workdir: Path, nodelay: bool = False) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.nodelay = nodelay
        self.process: Optional["subprocess.Popen[bytes]"] = None

    def __enter__(self) -> "Mosquitto":
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                        f"persistence false\nset_tcp_nodelay {str(self.nodelay).lower()}\n")
        self.start()
        return self

    def start(self) -> None:
        """Run mosquitto (again, after :meth:`kill`) on the same port."""
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def kill(self) -> None:
        """SIGKILL: the broker dies as in a crash or a power cut, with every session."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            end_process(self.process)


class SimulatorProcess:
    """The Open API simulator in a child process, steered over its ``/_sim/`` control surface."""

    def __init__(self, fleet: str = "default", *, seed: int = 0, burst: int = UNLIMITED_BURST,
                 rate: float = float(UNLIMITED_BURST), quota: int = UNLIMITED_QUOTA,
                 latency: float = 0.0, missing_reading: str = "null") -> None:
        self.args = ["--fleet", fleet, "--seed", str(seed), "--burst", str(burst),
                     "--rate", str(rate), "--quota", str(quota), "--latency", str(latency),
                     "--missing-reading", missing_reading]
        self.process: Optional["subprocess.Popen[str]"] = None
        self.url = ""
        self._http = requests.Session()

    def __enter__(self) -> "SimulatorProcess":
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "simulate", *self.args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=child_env())
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the simulator process did not start")
        self.url = json.loads(line)["url"]
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()
        if self.process is not None:
            if self.process.stdin is not None:
                self.process.stdin.close()       # the child exits when its stdin closes
            end_process(self.process)
            if self.process.stdout is not None:
                self.process.stdout.close()

    def _control(self, method: str, action: str, payload: Optional[Dict[str, Any]] = None
                 ) -> Any:
        reply = self._http.request(method, f"{self.url}/_sim/{action}", json=payload or {},
                                   timeout=10)
        reply.raise_for_status()
        return reply.json()

    def calls(self) -> Dict[str, int]:
        """Requests per endpoint the simulator served (failed ones too): the server's count."""
        return dict(self._control("GET", "calls"))

    def reset_counts(self) -> None:
        """Zero the simulator's call counts, to count one poll at a time."""
        self._control("POST", "reset-counts")

    def reset(self) -> None:
        """Drop queued failures (and counts, quota use, nonces): a clean cloud from now on."""
        self._control("POST", "reset")

    def set_latency(self, seconds: float) -> None:
        """Add ``seconds`` to every gateway answer from now on (the simulator's own delay:
        calls answered together overlap, as behind a real gateway 100-400 ms away)."""
        self._control("POST", "latency", {"seconds": seconds})

    def move_clock(self, offset: float) -> None:
        """Run the simulator's clocks ``offset`` seconds ahead of real time, so the next
        realtime poll reads the values of another 5-minute slot (as a 300 s poll would)."""
        self._control("POST", "clock", {"offset": offset})

    def fail_next(self, count: int, mode: str, code: Optional[str] = None,
                  delay: Optional[float] = None, **more: Any) -> None:
        """Make the next ``count`` requests fail as ``mode`` says, to exercise the recovery;
        ``more``: ``size``, ``location``, ``service`` (see the simulator's failure modes)."""
        self._control("POST", "fail", {"count": count, "mode": mode, "code": code,
                                       "delay": delay, **more})

    def add_fault(self, ps_key: str, code: int, name: str, fault_type: int = 1,
                  fault_level: int = 1) -> str:
        """Raise a fault on a device, so the faults poll has rows to report; returns its id."""
        return str(self._control("POST", "faults", {
            "ps_key": ps_key, "code": code, "name": name, "fault_type": fault_type,
            "fault_level": fault_level})["id"])

    def clear_fault(self, fault_id: str) -> None:
        """Close a fault raised with :meth:`add_fault`, so faults come and go as in a plant."""
        reply = self._http.delete(f"{self.url}/_sim/faults/{fault_id}", timeout=10)
        if reply.status_code not in (200, 404):
            reply.raise_for_status()


def _simulate_main(argv: Sequence[str]) -> int:
    """Child side of :class:`SimulatorProcess`: serve until stdin closes or SIGTERM."""
    parser = argparse.ArgumentParser(prog="_harness.py simulate")
    parser.add_argument("--fleet", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--burst", type=int, default=GATEWAY_BURST)
    parser.add_argument("--rate", type=float, default=GATEWAY_RATE)
    parser.add_argument("--quota", type=int, default=GATEWAY_QUOTA)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--missing-reading", choices=MISSING_READINGS, default="null")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = SimulatorServer(port=0, fleet=make_fleet(args.fleet, args.seed),
                             burst_capacity=args.burst, replenish_rate=args.rate,
                             hourly_quota=args.quota, latency=args.latency,
                             missing_reading=MISSING_READINGS[args.missing_reading])
    with server:
        print(json.dumps({"url": server.url}), flush=True)
        sys.stdin.read()
    return 0


# -- the bridge ---------------------------------------------------------------------------------

def new_base_topic() -> str:
    """A unique base topic, so no run sees another run's retained messages."""
    return "s2m_bench_" + uuid.uuid4().hex[:8]


def bridge_config(sim_url: str, broker_port: Optional[int], base: str, workdir: Path, *,
                  timeout: float = 5, **polling: Any) -> Dict[str, Any]:
    """Raw configuration of a bridge for the simulator; polls are slow unless ``polling`` says."""
    return {
        "isolarcloud": {"server": sim_url, "appkey": DEFAULT_CREDENTIALS.appkey,
                        "access_key": DEFAULT_CREDENTIALS.access_key,
                        "username": DEFAULT_CREDENTIALS.username,
                        "password": DEFAULT_CREDENTIALS.password,
                        # a directory per bridge: status.json is written beside the token
                        "token_file": str(workdir / base / "token.json"), "timeout": timeout},
        "mqtt": {"host": "127.0.0.1", "port": broker_port or free_port(), "base_topic": base,
                 "client_id": "s2m-" + base[-8:]},
        "homeassistant": {"prefix": f"{base}_ha", "status_topic": f"{base}_ha/status"},
        "polling": {"realtime": 3600, "faults": 3600, "devices": 7200,
                    "min_refresh_spacing": 0, **polling},
        "logging": {"level": "WARNING"},
    }


def write_config(config: Dict[str, Any], workdir: Path) -> Path:
    """The configuration as a private YAML file, for ``python -m sungrow2mqtt run -c``."""
    path = workdir / f"config-{config['mqtt']['base_topic']}.yaml"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class BenchmarkClock(MovableClock):
    """The real clocks, and a monotonic clock that may also run ahead on its own: a rate-limit
    pause ends without moving the time of day, so the cloud's next E999 pauses the bridge again
    for its real length (the pause's end time is computed from the wall clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.ahead = 0.0

    def monotonic(self) -> float:
        return super().monotonic() + self.ahead


class InProcessBridge:
    """A :class:`Service` in this process; MQTT and the worker thread only when asked for.

    ``polling`` overrides intervals below the configuration's 10 s minimum: only for benchmarks.
    The service runs on a clock the benchmark can move (see :func:`lift_cloud_pause`).
    """

    def __init__(self, config: Dict[str, Any], workdir: Path, **polling: Any) -> None:
        parsed = parse_config(config, "benchmark.yaml", base_dir=workdir)
        if polling:
            parsed = dataclasses.replace(
                parsed, polling=dataclasses.replace(parsed.polling, **polling))
        self.clock = BenchmarkClock()
        self.service = Service(parsed, clock=self.clock)
        self.fleet, self.poller, self.jobs = self.service.fleet, self.service.poller, \
            self.service.jobs
        self.client = self.service.client
        self.base: str = config["mqtt"]["base_topic"]
        self._started = False

    def connect(self, timeout: float = 10.0, *, worker: bool = False) -> None:
        """Start the service and wait for the broker, so no publish of the first cycle is
        dropped as "not connected"; ``worker`` runs its own loop, as ``sungrow2mqtt run`` does."""
        self.service.start(worker=worker)
        self._started = True
        if not self.service.mqtt.wait_connected(timeout):
            raise RuntimeError("the bridge could not connect to the broker")

    @property
    def worker_alive(self) -> bool:
        """Whether the worker thread still runs: a dead worker fails the soak."""
        return self.service.worker is not None and self.service.worker.is_alive()

    def stop(self) -> None:
        """Stop the worker, say offline, disconnect, close the HTTP pool: nothing left running."""
        if self._started:
            self.service.stop()
        else:
            self.client.close()

    def __enter__(self) -> "InProcessBridge":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BridgeProcess:
    """``python -m sungrow2mqtt run -c CONFIG`` as a child process, stopped with SIGTERM."""

    def __init__(self, config_path: Path, stderr_path: Optional[Path] = None) -> None:
        self.config_path = config_path
        self.stderr_path = stderr_path
        self.process: Optional["subprocess.Popen[bytes]"] = None
        self.started_at = 0.0
        self.exit_code: Optional[int] = None
        self.stop_seconds = 0.0

    def __enter__(self) -> "BridgeProcess":
        stderr: Any = subprocess.DEVNULL
        if self.stderr_path is not None:
            stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed right after Popen
        try:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sungrow2mqtt", "run", "-c", str(self.config_path)],
                stdout=subprocess.DEVNULL, stderr=stderr, env=child_env(), cwd=ROOT)
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        return self

    @property
    def pid(self) -> int:
        """The child's process id, to read its figures from /proc."""
        assert self.process is not None
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            stopping = time.monotonic()
            self.exit_code = end_process(self.process)
            self.stop_seconds = time.monotonic() - stopping

    def logged(self, level: str) -> List[str]:
        """Lines of the child's stderr at ``level`` (e.g. ERROR), when it was captured."""
        if self.stderr_path is None or not self.stderr_path.exists():
            return []
        return [line for line in self.stderr_path.read_text(errors="replace").splitlines()
                if f" {level} " in f" {line} "]


class Recorder:
    """An MQTT subscriber that keeps every message with its arrival time (monotonic).

    With ``keep=False`` it only counts (a soak must not grow the process it measures) and hands
    each message to ``hook``.
    """

    def __init__(self, port: int, *filters: str, keep: bool = True,
                 hook: Optional[Callable[[str, bytes], None]] = None) -> None:
        self.messages: List[Tuple[float, str, bytes]] = []
        self._times: List[float] = []
        self.received = 0
        self._keep = keep
        self._hook = hook
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._filters = filters
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id="bench-" + uuid.uuid4().hex[:8])
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the recorder could not subscribe")

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any = None) -> None:
        client.subscribe([(f, 1) for f in self._filters])

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        payload = bytes(message.payload)
        if self._hook is not None:
            self._hook(message.topic, payload)
        with self._cond:
            self.received += 1
            if self._keep:
                now = time.monotonic()
                self.messages.append((now, message.topic, payload))
                self._times.append(now)
            self._cond.notify_all()

    def wait_for(self, found: Callable[[List[Tuple[float, str, bytes]]], Optional[T]],
                 timeout: float, what: str) -> T:
        """Wait until ``found(messages)`` is truthy and return it: every measurement's wait."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = found(self.messages)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
                self._cond.wait(min(remaining, 0.2))

    def first(self, topic: str, after: float, timeout: float = 30.0,
              check: Callable[[bytes], bool] = lambda payload: True) -> Tuple[float, bytes]:
        """(arrival, payload) of the first ``topic`` message after ``after``: latency endpoints."""
        def scan(messages: List[Tuple[float, str, bytes]]) -> Optional[Tuple[float, bytes]]:
            start = bisect.bisect_right(self._times, after)    # arrivals are in time order
            return next(((t, p) for t, name, p in messages[start:]
                         if name == topic and check(p)), None)
        return self.wait_for(scan, timeout, f"a message on {topic}")

    def between(self, topic: str, after: float, before: float) -> List[bytes]:
        """Payloads on ``topic`` that arrived in (after, before]: what one exchange produced."""
        with self._cond:
            return [p for t, name, p in self.messages if name == topic and after < t <= before]

    def publish(self, topic: str, payload: Any) -> None:
        """Publish (QoS 1, not retained) and wait for the broker, as Home Assistant would."""
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(topic, data, qos=1).wait_for_publish(5)

    def close(self) -> None:
        """Disconnect, so the broker forgets this client."""
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_first_cycle(recorder: Recorder, base: str, after: float = 0.0,
                     timeout: float = 60.0) -> None:
    """Wait until bridge/info says the first faults poll went well."""
    topic = f"{base}/bridge/info"

    def done(payload: bytes) -> bool:
        return bool(json.loads(payload)["last_poll"]["faults"]["outcome"] == "ok")
    recorder.first(topic, after, timeout, done)


# -- process figures and statistics ---------------------------------------------------------------

def proc_stats(pid: Optional[int] = None) -> Dict[str, int]:
    """RSS (KiB, VmRSS), threads and open file descriptors of a process (default: this one)."""
    where = f"/proc/{pid}" if pid else "/proc/self"
    fields: Dict[str, int] = {}
    with open(f"{where}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "Threads"):
                fields[name] = int(value.split()[0])
    return {"rss_kib": fields["VmRSS"], "threads": fields["Threads"],
            "fds": len(os.listdir(f"{where}/fd"))}


def sockets_to(port: int, pid: Optional[int] = None) -> int:
    """How many of a process's open file descriptors are TCP connections to ``port``: a pool of
    keep-alive connections grows and shrinks with the load, a leak only grows."""
    inodes = set()
    for table_file in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table_file, encoding="ascii") as table_lines:
                rows = [line.split() for line in table_lines.readlines()[1:]]
        except OSError:
            continue
        inodes |= {row[9] for row in rows if int(row[2].rsplit(":", 1)[1], 16) == port}
    where = f"/proc/{pid}" if pid else "/proc/self"
    count = 0
    for fd in os.listdir(f"{where}/fd"):
        try:
            target = os.readlink(f"{where}/fd/{fd}")
        except OSError:            # closed meanwhile
            continue
        count += target.startswith("socket:[") and target[8:-1] in inodes
    return count


def mib(kib: float) -> str:
    """KiB as MiB with one decimal, the unit of the memory tables."""
    return f"{kib / 1024:.1f}"


def summary(values: Sequence[float]) -> Dict[str, float]:
    """min, median, p95 (nearest rank), max and mean: what the latency tables report."""
    ordered = sorted(values)
    rank = max(1, math.ceil(0.95 * len(ordered)))
    return {"min": ordered[0], "median": statistics.median(ordered), "p95": ordered[rank - 1],
            "max": ordered[-1], "mean": statistics.fmean(ordered)}


def ms(seconds: float) -> str:
    """Seconds as milliseconds with two decimals, the unit of the timing tables."""
    return f"{seconds * 1000:.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table, columns padded so it also reads well in a terminal."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def workdir() -> "tempfile.TemporaryDirectory[str]":
    """A temporary directory for configs, tokens and broker files, removed afterwards."""
    return tempfile.TemporaryDirectory(prefix="s2m-bench-")


# -- API calls per cycle (shared by calls_per_cycle and quota_fit) -------------------------------

@dataclasses.dataclass
class CycleCalls:
    """Measured API calls of one run of each kind of poll, and what the fleet looks like."""

    fleet: str
    plants: int
    devices: int                                  # bridged non-plant devices
    by_type: Dict[int, int]                       # device type -> bridged devices (plants too)
    points_by_type: Dict[int, int]                # device type -> enabled catalog points
    open_faults: int
    calls: Dict[str, Dict[str, int]]              # kind -> service -> HTTP requests
    server_calls: Dict[str, Dict[str, int]]       # the same, as counted by the simulator
    login_calls: int

    def total(self, kind: str) -> int:
        """HTTP requests of one kind of poll: what the quota is spent on."""
        return sum(self.calls[kind].values())


def measure_calls(fleet: str, open_faults: int = 0) -> CycleCalls:
    """Run devices, realtime and faults once each on a bridge and count every HTTP request."""
    with workdir() as tmp, SimulatorProcess(fleet) as sim:
        keys = [d.ps_key for d in make_fleet(fleet).devices() if d.device_type != 11]
        for index in range(open_faults):            # same seed: the child's fleet is this one
            sim.add_fault(keys[index % len(keys)], 13824 + index, f"Benchmark fault {index}")
        config = bridge_config(sim.url, None, new_base_topic(), Path(tmp))
        with InProcessBridge(config, Path(tmp)) as running:
            stats = running.client.transport.stats
            running.client.login()
            login_calls = stats.total
            calls: Dict[str, Dict[str, int]] = {}
            server_calls: Dict[str, Dict[str, int]] = {}
            open_faults = 0
            for kind in ("devices", "realtime", "faults"):
                before, sim_before = dict(stats.calls), sim.calls()
                result = running.poller.run(kind)
                outcome = running.fleet.snapshot().outcomes[kind]
                if outcome.ok is not True:
                    raise RuntimeError(f"{kind} poll failed: {outcome.error}")
                calls[kind] = _delta(before, stats.calls)
                server_calls[kind] = _delta(sim_before, sim.calls())
                if kind == "faults":
                    open_faults = int(result or 0)
            devices = running.fleet.devices()
            by_type: Dict[int, int] = {}
            for device in devices:
                by_type[device.device_type] = by_type.get(device.device_type, 0) + 1
            plants = sum(1 for d in devices if d.is_plant)
            points = {t: len(running.service.catalog.enabled(t)) for t in by_type}
            return CycleCalls(fleet, plants, len(devices) - plants, by_type, points,
                              open_faults, calls, server_calls, login_calls)


def _delta(before: Dict[str, int], after: Dict[str, int]) -> Dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def lift_cloud_pause(running: InProcessBridge) -> None:
    """End a rate-limit pause now: the bridge's monotonic clock moves past it, the time of day
    stays (see benchmarks/README.md)."""
    until = running.poller.paused_until()
    if until is not None:
        running.clock.ahead += (until - running.clock.wall()).total_seconds() + 1


def iter_fleets(specs: str) -> Iterator[str]:
    """The fleets of a comma-separated ``--fleets`` value, checked before anything starts."""
    for spec in specs.split(","):
        if spec != "default" and not spec.isdigit():
            raise SystemExit(f"fleet must be 'default' or a number, got {spec!r}")
        yield spec


if __name__ == "__main__":
    if sys.argv[1:2] == ["simulate"]:
        sys.exit(_simulate_main(sys.argv[2:]))
    sys.exit("usage: python benchmarks/_harness.py simulate [--fleet N|default] ...")
