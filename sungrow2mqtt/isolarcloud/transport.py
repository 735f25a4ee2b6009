"""One HTTP exchange with the Open API, done right: headers, envelope, encryption, retries.

Everything the document says about *how* to call (section 1.3, appendix 2-8) lives here, so the
endpoint methods in :mod:`client` only say *what* to call.  Failures of the network or of
``requests`` become the exceptions of :mod:`errors`; nothing secret reaches a log line.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Type, Union
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from sungrow2mqtt.isolarcloud import crypto
from sungrow2mqtt.isolarcloud.errors import (
    AuthError,
    ConnectionFailed,
    RequestRejected,
    ServerError,
    error_for_code,
)
from sungrow2mqtt.isolarcloud.ratelimit import RateBucket
from sungrow2mqtt.isolarcloud.servers import resolve_server
from sungrow2mqtt.isolarcloud.session import Answer, AnswerTooLarge, ExchangeCut, GuardedSession
from sungrow2mqtt.secret import Secret

log = logging.getLogger(__name__)

SYS_CODE = "901"
SUCCESS = "1"
POOL_SIZE = 16        # pooled connections: room for the client's workers and other callers
# Body fields never written to a log line, whatever the endpoint.
_SECRET_FIELDS = frozenset({"appkey", "token", "user_password", "user_account", "api_key_param"})


class _Transient(Exception):
    """A failure worth retrying (5xx, timeout, connection, garbage); ``reason`` says which and
    ``error`` what it becomes when the retries are spent."""

    def __init__(self, reason: str, error: Type[ServerError] = ServerError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


class _RateLimited(Exception):
    """HTTP 429: the gateway's bucket is empty; retried after a refill, not a failed attempt."""


@dataclass(frozen=True)
class Response:
    """A successful envelope: ``data`` is ``result_data``; ``message`` matters for 2.7/2.8."""

    data: Any
    message: str
    req_serial_num: Optional[str]


@dataclass
class TransportStats:
    """What the transport did, for ``bridge/info`` and the benchmarks; updated thread-safely."""

    calls: Dict[str, int] = field(default_factory=dict)   # HTTP requests per service, retries too
    retries: int = 0                # failed attempts repeated (429s are not failed attempts)
    rate_limited: int = 0           # HTTP 429 answers (each retried after a refill)
    rate_limit_waits: float = 0.0   # seconds spent waiting for the bucket
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, service: str) -> None:
        """Record one HTTP request to ``service``."""
        with self._lock:
            self.calls[service] = self.calls.get(service, 0) + 1

    def add(self, *, retries: int = 0, rate_limited: int = 0, waited: float = 0.0) -> None:
        """Add to the counters."""
        with self._lock:
            self.retries += retries
            self.rate_limited += rate_limited
            self.rate_limit_waits += waited

    @property
    def total(self) -> int:
        """All HTTP requests made so far."""
        with self._lock:
            return sum(self.calls.values())


class Transport:
    """POSTs one Open API service call and returns its envelope, retrying what is transient.

    Thread-safe: calls may run concurrently on the one pooled session (``pool_size``
    connections).

    * 5xx, timeouts, refused connections and non-JSON bodies: up to ``max_retries`` retries with
      exponential backoff and jitter.
    * ``X-Ratelimit-*``: every call reserves a token of a client-side copy of the gateway's bucket
      (:class:`RateBucket`) before it is sent; a 429 that still happens is retried after a refill
      and is not a failed attempt.
    * ``E913`` (expired request): read ``GET /timestamp``, correct the clock offset, retry once.
    * ``E910`` (repeated request): retry once; every attempt has a fresh nonce and AES key anyway.
    * ``timeout`` bounds each attempt, connection and complete answer included;
      ``call_deadline`` bounds a whole call, waits and retries included; a ``sleep`` that
      returns True (an Event being set: stopping) ends it too, and :meth:`close` ends calls in
      flight.
    * An answer larger than ``max_response_bytes`` is refused; a redirect is refused (never
      followed: the credentials go to the configured server only).
    """

    def __init__(
        self,
        server: str,
        appkey: Union[str, Secret],
        access_key: Union[str, Secret],
        *,
        rsa_public_key: Optional[str] = None,
        language: str = "_en_US",
        timeout: float = 20.0,
        max_retries: int = 3,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        keep_rate_tokens: int = 2,
        call_deadline: float = 120.0,
        max_response_bytes: int = 16 << 20,
        pool_size: int = POOL_SIZE,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self.base_url = resolve_server(server)
        self._appkey = appkey if isinstance(appkey, Secret) else Secret(appkey)
        self._access_key = access_key if isinstance(access_key, Secret) else Secret(access_key)
        self._public_key = crypto.load_public_key(rsa_public_key) if rsa_public_key else None
        self.language = language
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.call_deadline = call_deadline
        self.max_response_bytes = max_response_bytes
        self.pool_size = pool_size
        self._session = GuardedSession(pool_size)
        self._sleep = sleep
        self._clock_offset_ms = 0
        self._clock_reads = 0               # how often the server time was read (GET /timestamp)
        self._clock_lock = threading.Lock()
        self.bucket = RateBucket(headroom=keep_rate_tokens)
        self.stats = TransportStats()

    @property
    def encrypted(self) -> bool:
        """Whether calls are encrypted (an RSA public key was configured)."""
        return self._public_key is not None

    def __repr__(self) -> str:
        mode = "encrypted" if self.encrypted else "plain"
        return f"Transport({self.base_url!r}, {mode})"

    def close(self) -> None:
        """End the calls in flight, refuse new ones and close the pooled connections."""
        self._session.close()

    # -- the call ---------------------------------------------------------------------------

    def call(self, service: str, params: Mapping[str, Any], token: Optional[str] = None, *,
             idempotent: bool = True) -> Response:
        """POST ``/openapi/<service>`` and return the successful envelope or raise ApiError.

        A call that is not ``idempotent`` (a parameter write) is repeated only where the gateway
        cannot have acted on it: no connection, HTTP 429, E910/E913.  A timeout, a lost
        connection, a 5xx or a garbled answer may follow a write the device then carries out,
        so it is raised at once instead of being sent a second time.
        """
        deadline = time.monotonic() + self.call_deadline
        attempt = 0
        clock_synced = nonce_retried = False
        while True:
            self._pace(service, deadline)
            clock_reads = self._clock_reads
            try:
                envelope = self._post_once(service, params, token, attempt, deadline)
            except _RateLimited:
                log.debug("%s: HTTP 429 too many requests; retrying after a refill", service)
                self.bucket.refused()
                self.stats.add(rate_limited=1)
                continue
            except _Transient as exc:
                if not idempotent and exc.error is not ConnectionFailed:
                    raise ServerError(f"{service}: {exc.reason}; not repeated, since the gateway "
                                      "may have taken it", endpoint=service) from None
                attempt += 1
                delay = self._backoff(attempt)
                if attempt > self.max_retries or time.monotonic() + delay > deadline:
                    raise exc.error(f"{service}: {exc.reason} (gave up after {attempt} attempts)",
                                    endpoint=service) from None
                log.debug("%s: %s; retry %d/%d in %.1f s", service, exc.reason, attempt,
                          self.max_retries, delay)
                self.stats.add(retries=1)
                if self._sleep(delay) is True:    # an Event.wait that was woken: stopping
                    raise ServerError(f"{service}: {exc.reason} (stopping, not retried)",
                                      endpoint=service) from None
                continue
            code = str(envelope.get("result_code"))
            if code == SUCCESS:
                return Response(envelope.get("result_data"), str(envelope.get("result_msg") or ""),
                                envelope.get("req_serial_num"))
            if code == "E913" and not clock_synced:
                clock_synced = True
                with self._clock_lock:      # calls refused together read the time once
                    if self._clock_reads == clock_reads:
                        self.sync_clock()
                continue
            if code == "E910" and not nonce_retried:
                nonce_retried = True
                log.debug("%s: E910 repeated request; retrying with a new nonce", service)
                continue
            raise error_for_code(code, endpoint=service, message=str(envelope.get("result_msg")
                                                                     or ""),
                                 req_serial_num=envelope.get("req_serial_num"))

    def _post_once(self, service: str, params: Mapping[str, Any], token: Optional[str],
                   attempt: int, deadline: float) -> Dict[str, Any]:
        body: Dict[str, Any] = dict(params)
        body["appkey"] = self._appkey.reveal()
        if token:
            body["token"] = token
        body["lang"] = self.language
        headers = {
            "Content-Type": "application/json;charset=UTF-8",
            "sys_code": SYS_CODE,
            "x-access-key": self._access_key.reveal(),
            "lang": self.language,
        }
        aes_key: Optional[str] = None
        if self._public_key is not None:
            aes_key = crypto.new_aes_key()
            body["api_key_param"] = {"nonce": crypto.new_nonce(), "timestamp": self._timestamp()}
            headers["x-random-secret-key"] = crypto.rsa_encrypt(aes_key, self._public_key)
            payload = crypto.aes_encrypt_hex(json.dumps(body, separators=(",", ":")), aes_key)
        else:
            payload = json.dumps(body, separators=(",", ":"))
        url = f"{self.base_url}/openapi/{service}"
        if log.isEnabledFor(logging.DEBUG):     # the parameters as JSON once more: ~40 µs
            log.debug("POST %s attempt %d %s", url, attempt + 1, _loggable(params))
        answer = self._exchange("POST", url, service, deadline, data=payload.encode("utf-8"),
                                headers=headers)
        return self._read_envelope(service, answer, aes_key)

    def _exchange(self, method: str, url: str, endpoint: str, deadline: float, **kwargs: Any
                  ) -> Answer:
        """One HTTP exchange within ``timeout`` and what is left of the call's deadline."""
        budget = max(0.001, min(self.timeout, deadline - time.monotonic()))
        self.stats.count(endpoint)
        started = time.monotonic()
        try:
            answer = self._session.exchange(method, url, deadline=budget,
                                            max_bytes=self.max_response_bytes, **kwargs)
        except ExchangeCut as cut:
            if cut.closed:
                raise ServerError(f"{endpoint}: the client was closed", endpoint=endpoint
                                  ) from None
            raise _Transient(f"no complete answer within {budget:g} s") from None
        except AnswerTooLarge:
            raise ServerError(f"{endpoint}: the answer is larger than "
                              f"{self.max_response_bytes / (1 << 20):g} MiB; not read",
                              endpoint=endpoint) from None
        except requests.ConnectionError as exc:
            if _cannot_connect(exc):
                raise _Transient(f"cannot connect to {self.base_url} ({_root_cause(exc)})",
                                 ConnectionFailed) from None
            if isinstance(exc, requests.Timeout):
                raise _Transient(f"no complete answer within {budget:g} s") from None
            raise _Transient(f"connection lost ({_root_cause(exc)})") from None
        except requests.Timeout:
            raise _Transient(f"no complete answer within {budget:g} s") from None
        except requests.RequestException as exc:
            raise _Transient(f"HTTP request failed ({type(exc).__name__})") from None
        self.bucket.observe(answer.headers)
        log.debug("%s -> HTTP %d in %.2f s", endpoint, answer.status, time.monotonic() - started)
        if 300 <= answer.status < 400:
            target = urlsplit(urljoin(url, answer.headers.get("Location", ""))).netloc
            raise ServerError(f"{endpoint}: HTTP {answer.status} redirect to {target or '?'} not "
                              "followed: credentials go to the configured server only (check "
                              "the server/region)", endpoint=endpoint)
        return answer

    def _read_envelope(self, service: str, answer: Answer, aes_key: Optional[str]
                       ) -> Dict[str, Any]:
        status = answer.status
        if status == 429:
            raise _RateLimited()
        if status >= 500:
            raise _Transient(f"HTTP {status} from server")
        if status in (401, 403):
            raise AuthError(f"{service}: HTTP {status}: access refused by the gateway",
                            endpoint=service)
        if status == 404:
            raise RequestRejected(f"{service}: HTTP 404 at {self.base_url}: not an iSolarCloud "
                                  "Open API gateway (check the server/region)", endpoint=service)
        if status >= 400:
            raise RequestRejected(f"{service}: HTTP {status} from server", endpoint=service)
        text = answer.body.decode("utf-8", errors="replace").strip()
        if aes_key is not None and text and not text.startswith("{"):
            try:
                text = crypto.aes_decrypt_hex(text, aes_key)
            except crypto.CryptoError:
                raise _Transient("response body is neither JSON nor decryptable") from None
        try:
            envelope = json.loads(text)
        except RecursionError:
            raise _Transient("response JSON is nested too deeply") from None
        except ValueError:
            raise _Transient(f"response is not JSON ({_snippet(text)})") from None
        if not isinstance(envelope, dict) or "result_code" not in envelope:
            raise _Transient("response is JSON but not an Open API envelope")
        return envelope

    # -- time and pacing --------------------------------------------------------------------

    def _timestamp(self) -> str:
        return str(int(time.time() * 1000) + self._clock_offset_ms)

    def sync_clock(self) -> int:
        """Read the server time from ``GET /timestamp`` and remember the offset (ms) to ours."""
        url = f"{self.base_url}/timestamp"
        deadline = time.monotonic() + self.call_deadline
        self._pace("timestamp", deadline)
        before = time.time()
        try:
            answer = self._exchange("GET", url, "timestamp", deadline)
            server_ms = _parse_timestamp(answer.body.decode("utf-8", errors="replace"))
        except (_Transient, ValueError, TypeError, OverflowError, RecursionError) as exc:
            reason = exc.reason if isinstance(exc, _Transient) else type(exc).__name__
            raise ServerError(f"cannot read the server time from {url} ({reason})",
                              endpoint="timestamp") from None
        local_ms = int((before + time.time()) / 2 * 1000)
        self._clock_offset_ms = server_ms - local_ms
        self._clock_reads += 1
        log.info("Corrected clock offset to the Open API server: %+d ms", self._clock_offset_ms)
        return self._clock_offset_ms

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _pace(self, service: str, deadline: float) -> None:
        """Reserve a token of the bucket and wait until it may be spent."""
        wait = self.bucket.reserve()
        if wait <= 0:
            return
        if time.monotonic() + wait > deadline:
            self.bucket.cancel()
            raise ServerError(f"{service}: the gateway's rate limit leaves no room for this call "
                              "before its deadline", endpoint=service)
        log.debug("%s: waiting %.2f s for the rate-limit bucket", service, wait)
        self.stats.add(waited=wait)
        if self._sleep(wait) is True:
            self.bucket.cancel()
            raise ServerError(f"{service}: stopping, not called", endpoint=service)


def _parse_timestamp(text: str) -> int:
    """``GET /timestamp`` as milliseconds: a bare number, or an envelope whose result_data is one.

    The document does not show this answer; accept the plausible shapes and nothing else.
    """
    text = text.strip()
    value: Any = json.loads(text) if text[:1] in "{[\"" else text
    if isinstance(value, dict):
        value = value.get("result_data", value.get("timestamp"))
        if isinstance(value, dict):
            value = value.get("timestamp")
    number = int(float(value))
    return number if number > 10 ** 11 else number * 1000   # seconds -> ms


def _loggable(params: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in params.items() if k not in _SECRET_FIELDS}
    return json.dumps(shown, default=str)[:500]


def _snippet(text: str) -> str:
    return repr(text[:60]) if text else "empty body"


def _cannot_connect(exc: requests.ConnectionError) -> bool:
    """Whether the connection was never made (DNS, refused, unreachable, TLS, connect timeout),
    as opposed to lost during the exchange."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, (urllib3.exceptions.NewConnectionError,
                               urllib3.exceptions.ConnectTimeoutError))


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests ConnectionError, e.g. 'Connection refused'."""
    text = str(exc)
    for marker in ("Name or service not known", "nodename nor servname", "Temporary failure in "
                   "name resolution", "Connection refused", "No route to host",
                   "Network is unreachable", "CERTIFICATE_VERIFY_FAILED"):
        if marker in text:
            return "DNS name not found" if "name" in marker.lower() else marker
    return type(exc).__name__
