"""A simulated iSolarCloud Open API gateway, speaking real HTTP, for tests and demos.

It follows the gateway, not any client: the Open API document (``isolarcloud-openapi.txt``), and
where live gateways are known to differ (``reference/README.md``), the live behaviour, with a switch
for the document's (see *Live behaviour* below).

Checks the document prescribes (section, appendix):

* headers: ``sys_code`` missing -> 003; ``x-access-key`` missing -> E911, unknown -> E912 (1.3 (5),
  appendix 2); body ``appkey`` missing -> 001, unknown -> E00000, paired with another app's access
  key -> E914; ``token`` missing -> 002, unknown or expired -> E00003 (but see *Live
  behaviour*), except for ``login`` (1.3 (3)(4)); a token lives 24 h and every call restarts that
  (1.1);
* envelope ``req_serial_num``/``result_code``/``result_msg``/``result_data`` (1.3 (7)); errors
  carry the appendix-2 name as ``result_msg`` and a null ``result_data``;
* required parameters missing -> 009, invalid -> 010; at most 50 devices per realtime, minute and
  day/month/year call; minute window at most 3 h and fewer than 50 points (2.7.1); day span 100
  days, month span 24 months, year span 5 years (2.8.1); ``ps_key_list`` and ``sn_list`` not both
  empty (2.6.3, 2.14.3); devices of one type per call (2.7.3, 2.8.3, 2.14.3); illegal ps_keys of
  2.7/2.8 listed in ``result_msg`` as ``illegal device list:...`` (1.3 (7), 2.7.5);
* encrypted calls (appendix 4-7): ``x-random-secret-key`` missing -> E904, RSA failure -> E906, key
  not 16 characters -> E907, body not AES hex -> E905, plain JSON -> E902, ``api_key_param``
  missing -> E908, nonce not 32 letters/digits -> E909, nonce reused -> E910, timestamp too far
  from the server clock -> E913; the answer is AES-encrypted with the request's key;
* ``X-Ratelimit-Burst-Capacity``/``-Remaining``/``-Replenish-Rate`` on every answer (the
  screenshots); hourly call quota -> E999, reported by ``getOpenApiCallInfo`` (2.2).

Choices where the document is silent:

* check order: E996, E911/E912, decryption (E902/E904/E906/E907/E905), ``api_key_param``
  (E908/E909/E910/E913), 003, ``sys_code`` other than 901 -> E994, 001, E00000, E914, E900
  for a denied service, E999, 002/E900 (or E00003), then the service's parameters; a plain
  request whose ``api_key_param`` is present is checked like an encrypted one; a missing nonce
  counts as malformed (E909), a missing or non-numeric timestamp as expired (E913); errors found
  before the request key is known are answered in plain JSON;
* a plain-mode body that is not a JSON object -> 010; decrypted text that is not a JSON object ->
  E905; ``Content-Type`` is not enforced; unknown ``POST`` paths -> E996, unknown ``GET`` -> 404;
* ``GET /timestamp`` answers the envelope with the server's UTC milliseconds as a string;
* the token bucket (default 15 calls, refilled at 10 a second: ``burst_capacity``,
  ``replenish_rate``) is per server, not per client, and counts every gateway call, ``/timestamp``
  included; over it the answer is HTTP 429 with an empty body, and every answer, 429 or not,
  carries the three ``X-Ratelimit-*`` headers; the hourly quota is per
  appkey and per UTC hour, the daily figure is 24 x the hourly one and is not enforced (no E998);
  calls refused with E999 do not count;
* five wrong passwords lock the account (``login_state`` 2) for an hour; a right password resets
  the count; ``login_state`` 5 only via :meth:`SimulatorServer.lock_account`;
* unknown but well-formed ps_keys are left out of realtime answers (and listed, see below);
  malformed ones, or ones whose type differs from ``device_type`` (or is not 1 for
  ``getPVInverterRealTimeData``) -> 010; SNs of the wrong type or unknown go to ``fail_sn_list``;
  unknown ``ps_id`` -> 010;
* point lists must use the document's ``p`` prefix in 2.7/2.8 (``"p1,p2"``), bare IDs in 2.14 and
  2.11; minute and day/month/year times are the plant's local time, minute rows start at the
  first 5-minute boundary and never reach past "now"; ``null`` and ``"--"`` count as no data in
  history; day spans count both ends (at most 100 days, 24 months, 5 years);
* average ("1") is the mean of hourly samples (of daily means for months and years); "4" is given
  only for daily counters, as the sum of the days' finals, and never for day queries;
* getFaultAlarmInfo compares ``startTime``/``endTime`` (digits of ``yyyyMMddHHmm``) with the
  plant-local ``create_time``; closed faults without times are those of the current month;
  active faults have ``process_status`` 1 and ``over_time`` "";
* getOpenPointInfo type 1 (remote signaling) lists the unit-less *status* points of the portal
  table, type 5 the property points; with ``device_model_id`` only points the simulator models;
* plant list values: ``curr_power`` in kW, ``today_energy`` in kWh, ``total_energy`` in kWh below
  1000 and MWh above, CO2 at 0.997 kg/kWh (t above 1000 kg), revenue at the plant's tariff;
* ``ps_current_time_zone`` is a fixed offset without daylight saving.

Live behaviour (clients verified against live plants; the default):

* an unknown or expired token gets ``E900`` "Unauthorized access"; ``token_error="E00003"``
  (``simulate --token-error E00003``) gives the document's code instead;
* ``E900`` also answers a service the app is not authorised for, whatever the token:
  :meth:`SimulatorServer.deny_api` (denied calls are not counted against the quota);
* ``getDeviceRealTimeData`` by ps_key always carries ``fail_ps_key_list`` (the portal's sample),
  naming the well-formed ps_keys it could not serve: unknown ones, and listed devices that
  :meth:`SimulatorServer.unserve_devices` took off the air (a logger that stopped reporting);
* ``missing_reading="--"`` (``simulate --missing-reading dashes``) sends ``"--"`` for every
  realtime point without a reading, as some live plants do; by default such a point is ``null``,
  as in the document's sample (points modelled as "no reading" send ``"--"`` either way);
* SOC/SOH points (13141, 13142, 58604, 58605, 83252) are 0-1 fractions like live data;
  :meth:`SimulatorServer.set_ratio_scale` makes a device send them as 0-100 as some firmware does;
  :meth:`SimulatorServer.pin_reading` makes a device send one exact raw value (1.0, say).

Switches (constructor; ``simulate`` flag): ``encrypted`` (``--encrypted``), ``start_time``
(``--start``), ``token_error`` (``--token-error``), ``burst_capacity`` (``--burst``),
``replenish_rate`` (``--replenish-rate``), ``latency`` (``--latency``), ``missing_reading``
(``--missing-reading``), ``hourly_quota``,
``timestamp_tolerance``, ``fleet``, ``credentials``.

Controls (method; ``/_sim/...`` endpoint with a JSON body): :meth:`~SimulatorServer.fail_next`
(``POST fail``, modes in :mod:`~sungrow2mqtt.simulator.failures`), ``add_fault``/``clear_fault``
(``POST faults``, ``DELETE faults/<id>``), ``expire_tokens`` (``POST expire-tokens``),
``deny_api``/``allow_api`` (``POST deny-api``/``allow-api`` ``{"services": [...]}``),
``set_ratio_scale`` (``POST ratio-scale``), ``pin_reading`` (``POST reading``
``{"ps_key", "point_id", "value"}``), ``unserve_devices``/``serve_devices``
(``POST unserve``/``serve`` ``{"ps_keys": [...]}``), ``set_quota`` (``POST quota``),
``lock_account``/``unlock_account``, ``set_time``/``set_clock_offset`` (``POST clock``
``{"time"}``/``{"offset"}``), ``set_latency`` (``POST latency``), ``call_counts``
(``GET calls``), ``peak_in_flight`` (``GET peak-in-flight``), ``requests_log``, ``reset_counts``
and ``reset`` (everything but faults and issued tokens).

Layout: :mod:`~sungrow2mqtt.simulator.gateway` (apps, logins, tokens, quota, encryption, burst
bucket), :mod:`~sungrow2mqtt.simulator.services` (the services, a registry by name),
:mod:`~sungrow2mqtt.simulator.fleet` and :mod:`~sungrow2mqtt.simulator.values` (plants, devices,
physics; their tables are files under ``data/``), :mod:`~sungrow2mqtt.simulator.clock`,
:mod:`~sungrow2mqtt.simulator.failures` (failures on demand), and this module: HTTP and the
control API.

Clocks: the data (readings, ``device_time``, history, faults), tokens, account locks and quota
hours follow the *plant clock*, which ``start_time`` (constructor), :meth:`SimulatorServer.set_time`
or ``simulate --start`` pin to an instant from which it runs at real speed (unpinned it is the wall
clock).  The anti-replay check (E913) and ``GET /timestamp`` use the *real* clock, since the client
signs requests with the machine's time: a pinned clock therefore costs no E913 and no extra
``/timestamp`` call, and call counts stay exact.  :meth:`SimulatorServer.set_clock_offset` moves
both clocks (so it still provokes E913).
"""
from __future__ import annotations

import json
import logging
import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple
from urllib.parse import urlsplit

from sungrow2mqtt.isolarcloud.crypto import aes_encrypt_hex
from sungrow2mqtt.simulator.clock import Instant, SimClock, parse_instant
from sungrow2mqtt.simulator.failures import (
    HTTP_MODES, Failure, FailureQueue, claim_endless, cut_names, has_names,
)
from sungrow2mqtt.simulator.control import ControlSimulator
from sungrow2mqtt.simulator.fleet import Fleet
from sungrow2mqtt.simulator.gateway import (
    DEFAULT_CREDENTIALS, Credentials, Gateway, RequestError, TokenBucket, error, success,
)
from sungrow2mqtt.simulator.services import SERVICES, World, compact

logger = logging.getLogger(__name__)

_PAD_CHUNK = 1 << 16
# What a realtime point without a reading is sent as, by the word ``simulate --missing-reading``
# takes (a bare "--" would end argparse's options).
MISSING_READINGS: Dict[str, Optional[str]] = {"null": None, "dashes": "--"}
_HTML_ERROR = ("<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center>"
               "<hr><center>nginx</center></body></html>")


@dataclass
class _Answer:
    """What goes back over HTTP; ``drop`` closes the connection without an answer.

    ``trickle``: seconds between the body's bytes; ``padding``: whitespace bytes after the body.
    """

    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    request_id: Optional[str] = None
    drop: bool = False
    location: Optional[str] = None
    trickle: float = 0.0
    padding: int = 0


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the simulator; logs through :mod:`logging`."""

    protocol_version = "HTTP/1.1"
    server_version = "iSolarCloudSimulator/1.0"
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every answer
    disable_nagle_algorithm = True
    sim: SimulatorServer

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        """Serve GET (``/timestamp``, ``/_sim/calls``)."""
        self.sim._serve(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        """Serve POST (``/openapi/...``, ``/_sim/...``)."""
        self.sim._serve(self, "POST")

    def do_DELETE(self) -> None:  # noqa: N802
        """Serve DELETE (``/_sim/faults/<id>``)."""
        self.sim._serve(self, "DELETE")

    def setup(self) -> None:
        """Register the connection so :meth:`SimulatorServer.stop` can close idle keep-alives."""
        super().setup()
        self.sim._track(self.connection, True)

    def finish(self) -> None:
        """Forget the connection again."""
        try:
            super().finish()
        finally:
            self.sim._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Route http.server's access log to debug logging."""
        logger.debug("%s " + format, self.address_string(), *args)


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer whose handler errors (clients hanging up) go to logging, not stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed request at debug level; a vanished client is routine."""
        logger.debug("request from %s failed", client_address, exc_info=True)



class SimulatorServer:
    """A local iSolarCloud Open API gateway with a fleet, faults, limits and failure injection."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        encrypted: bool = False,
        fleet: Optional[Fleet] = None,
        credentials: Credentials = DEFAULT_CREDENTIALS,
        burst_capacity: int = 15,
        replenish_rate: float = 10,
        hourly_quota: int = 10000,
        timestamp_tolerance: float = 300.0,
        start_time: Optional[Instant] = None,
        token_error: str = "E900",
        latency: float = 0.0,
        missing_reading: Optional[str] = None,
    ) -> None:
        if burst_capacity < 1 or not replenish_rate > 0:
            raise ValueError("burst_capacity must be at least 1 and replenish_rate above 0, not "
                             f"{burst_capacity} and {replenish_rate}")
        if missing_reading not in MISSING_READINGS.values():
            raise ValueError(f"missing_reading must be None or '--', not {missing_reading!r}")
        self.host = host
        self.port = port
        self.encrypted = encrypted
        self.clock = SimClock(start_time)
        self.fleet = fleet if fleet is not None else Fleet.default(now=self.clock.now())
        self.gateway = Gateway(credentials, self.clock, encrypted=encrypted,
                               hourly_quota=hourly_quota, timestamp_tolerance=timestamp_tolerance,
                               token_error=token_error)
        self.control = ControlSimulator(self.fleet, reject=RequestError)
        self.world = World(self.fleet, self.gateway, self.control,
                           missing_reading=missing_reading)
        self._bucket = TokenBucket(burst_capacity, replenish_rate)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._connections: Set[socket.socket] = set()
        self._failures = FailureQueue()
        self._in_flight = 0
        self.set_latency(latency)
        self._reset_state()

    @property
    def credentials(self) -> Credentials:
        """The app and account the simulator accepts."""
        return self.gateway.credentials

    @property
    def public_key(self) -> Optional[str]:
        """The RSA public key clients encrypt request keys with (encrypted mode only)."""
        return self.gateway.public_key

    def _reset_state(self) -> None:
        with self._lock:
            self._counts: Dict[str, int] = {}
            self._log: Deque[Tuple[str, Dict[str, str], Dict[str, Any]]] = deque(maxlen=2000)
            self._failures.clear()
            self._peak_in_flight = 0
            self.clock.reset()
            self.gateway.reset()
            self.fleet.percent_ratios.clear()
            self.fleet.unserved.clear()
            self.fleet.pinned.clear()
            self.control.reset()
            self.world.extras.clear()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimulatorServer:
        """Bind and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("simulator already started")
        handler = type("SimulatorHandler", (_Handler,), {"sim": self})
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), handler)
        self.port = self._httpd.server_address[1]
        # a short poll interval makes stop() quick (tests start and stop many simulators)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="isolarcloud-simulator", daemon=True)
        self._thread.start()
        logger.info("iSolarCloud simulator listening on %s (encrypted=%s)", self.url,
                    self.encrypted)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; sleeping ``timeout`` failures wake up."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running simulator, e.g. ``http://127.0.0.1:54321``."""
        if self._httpd is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self.port}"

    # -- control surface ---------------------------------------------------------------------
    def now(self) -> float:
        """The plant clock (UTC epoch seconds): pinned by ``start_time``, plus any offset."""
        return self.clock.now()

    def set_time(self, when: Optional[Instant]) -> None:
        """Pin the plant clock to ``when`` (aware datetime or epoch seconds) from now on.

        It runs on at real speed; None makes it follow the wall clock again.
        """
        self.clock.pin(when)

    def set_clock_offset(self, seconds: float) -> None:
        """Run both clocks ahead (positive) or behind; readings and E913 follow it."""
        self.clock.set_offset(seconds)

    def fail_next(self, count: int, mode: str, code: Optional[str] = None,
                  delay: Optional[float] = None, *, size: Optional[int] = None,
                  location: Optional[str] = None, service: Optional[str] = None) -> None:
        """Make the next ``count`` Open API calls (of ``service``, if given) fail as ``mode`` says.

        See :mod:`sungrow2mqtt.simulator.failures` for the modes and what ``code``, ``delay``
        (``timeout``, ``trickle``), ``size`` (``huge``) and ``location`` (``redirect``) mean.
        """
        self._failures.add(Failure.create(mode, code, delay, size, location, service), count)

    def expire_tokens(self) -> None:
        """Invalidate every issued token (the next call with one gets ``token_error``)."""
        self.gateway.expire_tokens()

    def deny_api(self, *services: str) -> None:
        """Answer E900 to these services even with a valid token (app not authorised for them)."""
        unknown = sorted(set(services) - set(SERVICES))
        if unknown:
            raise ValueError(f"unknown service(s) {', '.join(unknown)}")
        self.gateway.deny(set(services))

    def allow_api(self, *services: str) -> None:
        """Serve denied services again; without names, every service."""
        self.gateway.allow(set(services))

    def set_ratio_scale(self, ps_key: str, scale: str) -> None:
        """``percent``: SOC/SOH of this device arrive as 0-100; ``fraction`` (default): 0-1."""
        self.fleet.set_ratio_scale(ps_key, scale)

    def pin_reading(self, ps_key: str, point_id: int, value: Optional[str]) -> None:
        """Send ``value`` (raw text, as the gateway would) for this realtime point of this device
        from now on, whatever the physics; None sends the physics' reading again."""
        if self.fleet.device(ps_key) is None:
            raise ValueError(f"unknown ps_key {ps_key!r}")
        with self._lock:
            if value is None:
                self.fleet.pinned.pop((ps_key, int(point_id)), None)
            else:
                self.fleet.pinned[(ps_key, int(point_id))] = str(value)

    def unserve_devices(self, *ps_keys: str) -> None:
        """Keep these devices in the device list, but name them in realtime answers'
        ``fail_ps_key_list`` instead of serving their values."""
        unknown = sorted(key for key in ps_keys if self.fleet.device(key) is None)
        if unknown:
            raise ValueError(f"unknown ps_key(s) {', '.join(unknown)}")
        with self._lock:
            self.fleet.unserved.update(ps_keys)

    def serve_devices(self, *ps_keys: str) -> None:
        """Serve these devices' realtime values again; without ps_keys, every device."""
        with self._lock:
            if ps_keys:
                self.fleet.unserved.difference_update(ps_keys)
            else:
                self.fleet.unserved.clear()

    def set_quota(self, hourly: int) -> None:
        """Change the hourly call quota (E999 once used up)."""
        self.gateway.set_quota(hourly)

    def lock_account(self) -> None:
        """Lock the account as an administrator would (login_state 5)."""
        self.gateway.lock_account()

    def unlock_account(self) -> None:
        """Lift both kinds of lock and forget wrong passwords."""
        self.gateway.unlock_account()

    def add_fault(self, ps_key: str, fault_code_int: int, name: str, *, fault_type: int = 1,
                  fault_level: int = 1) -> str:
        """Raise a fault or alarm on a device now; returns its ``fault_code`` id."""
        return self.fleet.add_fault(ps_key, fault_code_int, name, fault_type=fault_type,
                                    fault_level=fault_level, now=self.now())

    def clear_fault(self, fault_id: str) -> bool:
        """Close a fault (it moves to process_status 9 with an over_time)."""
        return self.fleet.clear_fault(fault_id, now=self.now())

    def call_counts(self) -> Dict[str, int]:
        """Requests per endpoint name, failed ones included."""
        with self._lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        """Zero the call counts, the request log and the in-flight peak."""
        with self._lock:
            self._counts.clear()
            self._log.clear()
            self._peak_in_flight = self._in_flight

    def peak_in_flight(self) -> int:
        """The most gateway calls served at the same time (since the last reset): calls sent in
        parallel overlap here, so a client's concurrency shows without timing anything."""
        with self._lock:
            return self._peak_in_flight

    def set_latency(self, seconds: float) -> None:
        """Add ``seconds`` to every gateway answer (the real one is 0.1-0.4 s away); answers to
        calls sent in parallel overlap, so they cost one latency, not the sum."""
        if not seconds >= 0:
            raise ValueError(f"latency must be 0 or more seconds, not {seconds}")
        self._latency = float(seconds)

    def reset(self) -> None:
        """Back to a fresh state: counts, log, failures, clock, locks, quota use, nonces, denied
        APIs, ratio scales, device parameters and tasks (faults and issued tokens stay)."""
        self._reset_state()

    @property
    def requests_log(self) -> List[Tuple[str, Dict[str, str], Dict[str, Any]]]:
        """(endpoint, lower-cased headers, decoded body) of recent requests, oldest first."""
        with self._lock:
            return list(self._log)

    # -- HTTP --------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        path = urlsplit(handler.path).path
        if path.startswith("/_sim/"):
            status, payload = self._control(method, path, raw)
            self._write(handler, _Answer(status, json.dumps(payload).encode("utf-8")), {})
            return
        endpoint = path[len("/openapi/"):].strip("/") if path.startswith("/openapi/") else (
            path.strip("/") or "/")
        with self._lock:
            self._counts[endpoint] = self._counts.get(endpoint, 0) + 1
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            answer, limits = self._gateway_answer(handler, method, path, endpoint, raw)
        finally:                # out of flight before the answer is: a client that has it
            with self._lock:    # never sees its call still counted
                self._in_flight -= 1
        self._write(handler, answer, limits)

    def _gateway_answer(self, handler: BaseHTTPRequestHandler, method: str, path: str,
                        endpoint: str, raw: bytes) -> Tuple[_Answer, Dict[str, str]]:
        """The answer to a gateway call and its rate-limit headers, after the latency."""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        allowed, remaining = self._bucket.take()
        limits = {"X-Ratelimit-Burst-Capacity": str(self._bucket.capacity),
                  "X-Ratelimit-Remaining": str(remaining),
                  "X-Ratelimit-Replenish-Rate": compact(self._bucket.rate)}
        failure = None
        if allowed and method == "POST" and path.startswith("/openapi/"):
            failure = self._failures.take(endpoint, HTTP_MODES)
        answer = _Answer(429, content_type="text/plain") if not allowed else (
            self._failure_answer(failure, path, headers))
        if answer is None:
            answer = self._open_api(method, path, headers, raw)
            if failure is not None and failure.mode == "trickle":
                answer.trickle = failure.delay
            elif failure is not None and failure.mode == "huge":
                answer.padding = max(0, failure.size - len(answer.body))
        else:  # refused before the gateway looked at it: log what can be read of it
            with self._lock:
                self._log.append((endpoint, headers, self._readable_body(headers, raw)))
        if self._latency:
            self._stopping.wait(self._latency)
        return answer, limits

    def _readable_body(self, headers: Dict[str, str], raw: bytes) -> Dict[str, Any]:
        """The request body for the log, decrypted when possible; {} when unreadable."""
        try:
            return self.gateway.decode(headers, raw)
        except RequestError:
            return {}

    def _write(self, handler: BaseHTTPRequestHandler, answer: _Answer,
               extra: Dict[str, str]) -> None:
        if answer.drop:
            handler.close_connection = True
            return
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        handler.send_header("Content-Length", str(len(answer.body) + answer.padding))
        if answer.request_id:
            handler.send_header("X-Log-Requestid", answer.request_id)
        if answer.location:
            handler.send_header("Location", answer.location)
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.end_headers()
        if answer.trickle:
            self._trickle(handler, answer.body, answer.trickle)
            return
        handler.wfile.write(answer.body)
        for start in range(0, answer.padding, _PAD_CHUNK):
            handler.wfile.write(b" " * min(_PAD_CHUNK, answer.padding - start))

    def _trickle(self, handler: BaseHTTPRequestHandler, body: bytes, delay: float) -> None:
        """One byte every ``delay`` seconds, until done, the client leaves or the server stops."""
        for index in range(len(body)):
            if index and self._stopping.wait(delay):
                handler.close_connection = True
                return
            handler.wfile.write(body[index:index + 1])
            handler.wfile.flush()

    def _failure_answer(self, failure: Optional[Failure], path: str,
                        headers: Dict[str, str]) -> Optional[_Answer]:
        """The answer that replaces the real one, or None (no failure, or one that disturbs
        the real answer: trickle, huge)."""
        if failure is None or failure.mode in ("trickle", "huge"):
            return None
        logger.debug("injecting failure %s into %s", failure.mode, path)
        if failure.mode in ("http500", "http503"):
            title = ("500 Internal Server Error" if failure.mode == "http500"
                     else "503 Service Temporarily Unavailable")
            return _Answer(int(failure.mode[4:]), _HTML_ERROR.format(title).encode("utf-8"),
                           "text/html")
        if failure.mode == "garbage":
            return _Answer(200, b"upstream connect error or disconnect/reset before headers",
                           "text/plain")
        if failure.mode == "timeout":
            self._stopping.wait(failure.delay)
            return _Answer(0, drop=True)
        if failure.mode == "ratelimit429":
            return _Answer(429, content_type="text/plain")
        if failure.mode == "redirect":
            return _Answer(int(failure.code or "307"), content_type="text/html",
                           location=failure.location + path)
        return self._envelope_answer(error(failure.code or "-1"), self.gateway.answer_key(headers))

    @staticmethod
    def _envelope_answer(envelope: Dict[str, Any], key: Optional[str],
                         ascii_only: bool = False) -> _Answer:
        """The envelope as the gateway writes it; ``ascii_only`` escapes what is not ASCII
        (``\\ud83c``), so a lone surrogate goes out as the gateway would send it."""
        text = json.dumps(envelope, ensure_ascii=ascii_only, separators=(",", ":"))
        if key is not None:
            text = aes_encrypt_hex(text, key)
        return _Answer(200, text.encode("utf-8"), request_id=envelope["req_serial_num"])

    def _open_api(self, method: str, path: str, headers: Dict[str, str], raw: bytes) -> _Answer:
        if method == "GET" and path == "/timestamp":
            with self._lock:
                self._log.append(("timestamp", headers, {}))
            return self._envelope_answer(success(str(int(self.clock.gateway_now() * 1000))),
                                         None)
        if method != "POST":
            return _Answer(404, b"", "text/plain")
        gateway = self.gateway
        key = gateway.answer_key(headers)
        service = path[len("/openapi/"):].strip("/") if path.startswith("/openapi/") else ""
        body: Dict[str, Any] = {}
        cut = False
        try:
            handler = SERVICES.get(service)
            if handler is None:
                raise RequestError("E996")
            access_key = gateway.access_key(headers)
            body = gateway.decode(headers, raw)
            call = gateway.authenticate(service, headers, body, access_key)
            endless = (self._failures.take(service, ("endless_pages",)) if "curPage" in body
                       else None)
            if endless is not None:
                call.body = {**body, "curPage": 1}
            result = handler(self.world, call)
            message = "success"
            if isinstance(result, tuple):
                result, message = result
            if endless is not None:
                claim_endless(result)
            cut = has_names(result) and self._failures.take(service, ("surrogate",)) is not None
            envelope = success(cut_names(result) if cut else result, message)
        except RequestError as reject:
            envelope = error(reject.code)
        finally:
            with self._lock:
                self._log.append((service or path, headers, body))
        if envelope["result_code"] != "1":
            logger.debug("%s -> %s", service or path, envelope["result_code"])
        return self._envelope_answer(envelope, key, ascii_only=cut)

    # -- HTTP control surface ----------------------------------------------------------------
    def _control(self, method: str, path: str, raw: bytes) -> Tuple[int, Any]:
        try:
            payload = json.loads(raw.decode("utf-8")) if raw.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("expected a JSON object")
            return self._control_action(method, path[len("/_sim/"):].strip("/"), payload)
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"error": str(exc)}

    def _control_action(self, method: str, action: str, payload: Dict[str, Any]
                        ) -> Tuple[int, Any]:
        if method == "GET" and action == "calls":
            return 200, self.call_counts()
        if method == "GET" and action == "peak-in-flight":
            return 200, {"peak": self.peak_in_flight()}
        if method == "DELETE" and action.startswith("faults/"):
            closed = self.clear_fault(action[len("faults/"):])
            return (200 if closed else 404), {"closed": closed}
        if method != "POST":
            return 404, {"error": f"no control endpoint {method} /_sim/{action}"}
        if action == "faults":
            fault_id = self.add_fault(str(payload["ps_key"]), int(payload["code"]),
                                      str(payload["name"]),
                                      fault_type=int(payload.get("fault_type", 1)),
                                      fault_level=int(payload.get("fault_level", 1)))
            return 200, {"id": fault_id}
        actions: Dict[str, Callable[[], None]] = {
            "reset": self.reset,
            "reset-counts": self.reset_counts,
            "expire-tokens": self.expire_tokens,
            "lock-account": self.lock_account,
            "unlock-account": self.unlock_account,
            "fail": lambda: self.fail_next(
                int(payload.get("count", 1)), str(payload["mode"]), payload.get("code"),
                payload.get("delay"), size=payload.get("size"), location=payload.get("location"),
                service=payload.get("service")),
            "clock": lambda: self._set_clock(payload),
            "quota": lambda: self.set_quota(int(payload["hourly"])),
            "latency": lambda: self.set_latency(float(payload["seconds"])),
            "deny-api": lambda: self.deny_api(*_names(payload, "services")),
            "allow-api": lambda: self.allow_api(*_names(payload, "services")),
            "ratio-scale": lambda: self.set_ratio_scale(str(payload["ps_key"]),
                                                        str(payload["scale"])),
            "reading": lambda: self.pin_reading(str(payload["ps_key"]), int(payload["point_id"]),
                                                None if payload.get("value") is None
                                                else str(payload["value"])),
            "unserve": lambda: self.unserve_devices(*_names(payload, "ps_keys")),
            "serve": lambda: self.serve_devices(*_names(payload, "ps_keys")),
        }
        if action not in actions:
            return 404, {"error": f"no control endpoint POST /_sim/{action}"}
        actions[action]()
        return 200, {"ok": True}

    def _set_clock(self, payload: Dict[str, Any]) -> None:
        """``{"offset": seconds}`` and/or ``{"time": ISO 8601 or epoch seconds}``."""
        if "offset" not in payload and "time" not in payload:
            raise ValueError("expected 'offset' (seconds) or 'time' (ISO 8601 or epoch seconds)")
        if "time" in payload:
            self.set_time(parse_instant(str(payload["time"])))
        if "offset" in payload:
            self.set_clock_offset(float(payload["offset"]))


def _names(payload: Dict[str, Any], key: str) -> List[str]:
    """A control payload's list of names (a missing key is an empty list)."""
    names = payload.get(key, [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{key} must be a list of names")
    return names


def config_block(server: SimulatorServer) -> str:
    """The ``isolarcloud:`` YAML section that points sungrow2mqtt at a running simulator."""
    creds = server.credentials
    lines = [
        "isolarcloud:",
        f"  server: {server.url}",
        f"  appkey: {json.dumps(creds.appkey)}",
        f"  access_key: {json.dumps(creds.access_key)}",
        f"  username: {json.dumps(creds.username)}",
        f"  password: {json.dumps(creds.password)}",
    ]
    if server.public_key:
        lines.append(f"  rsa_public_key: {json.dumps(server.public_key)}")
    lines.append("  language: _en_US")
    return "\n".join(lines) + "\n"
