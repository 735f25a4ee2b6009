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
from typing import Any, Callable, Dict, Mapping, Optional, Union

import requests

from sungrow2mqtt.isolarcloud import crypto
from sungrow2mqtt.isolarcloud.errors import (
    AuthError,
    RequestRejected,
    ServerError,
    error_for_code,
)
from sungrow2mqtt.isolarcloud.servers import resolve_server
from sungrow2mqtt.secret import Secret

log = logging.getLogger(__name__)

SYS_CODE = "901"
SUCCESS = "1"
# Body fields never written to a log line, whatever the endpoint.
_SECRET_FIELDS = frozenset({"appkey", "token", "user_password", "user_account", "api_key_param"})


class _Transient(Exception):
    """A failure worth retrying (5xx, 429, timeout, connection, garbage); ``reason`` says which."""

    def __init__(self, reason: str, wait: Optional[float] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


@dataclass(frozen=True)
class Response:
    """A successful envelope: ``data`` is ``result_data``; ``message`` matters for 2.7/2.8."""

    data: Any
    message: str
    req_serial_num: Optional[str]


@dataclass
class RateLimitWindow:
    """The gateway's token bucket as last reported by its ``X-Ratelimit-*`` headers."""

    burst_capacity: Optional[int] = None
    remaining: Optional[int] = None
    replenish_rate: Optional[float] = None
    seen_at: float = 0.0

    def update(self, headers: Mapping[str, str], now: float) -> None:
        """Take the figures from a response's headers (case-insensitive; absent ones kept)."""
        def number(name: str) -> Optional[float]:
            try:
                return float(headers[name])
            except (KeyError, TypeError, ValueError):
                return None
        remaining = number("X-Ratelimit-Remaining")
        if remaining is None:
            return
        self.remaining = int(remaining)
        burst = number("X-Ratelimit-Burst-Capacity")
        rate = number("X-Ratelimit-Replenish-Rate")
        self.burst_capacity = int(burst) if burst is not None else self.burst_capacity
        self.replenish_rate = rate if rate and rate > 0 else self.replenish_rate
        self.seen_at = now

    def wait_needed(self, now: float, keep: int) -> float:
        """Seconds to wait so that at least ``keep`` tokens are left when the next call lands."""
        if self.remaining is None or not self.replenish_rate:
            return 0.0
        expected = self.remaining + (now - self.seen_at) * self.replenish_rate
        if self.burst_capacity is not None:
            expected = min(expected, self.burst_capacity)
        if expected >= keep:
            return 0.0
        return (keep - expected) / self.replenish_rate


@dataclass
class TransportStats:
    """What the transport did, for ``bridge/info`` and the benchmarks."""

    calls: Dict[str, int] = field(default_factory=dict)   # HTTP requests per service, retries too
    retries: int = 0
    rate_limit_waits: float = 0.0

    def count(self, service: str) -> None:
        """Record one HTTP request to ``service``."""
        self.calls[service] = self.calls.get(service, 0) + 1

    @property
    def total(self) -> int:
        """All HTTP requests made so far."""
        return sum(self.calls.values())


class Transport:
    """POSTs one Open API service call and returns its envelope, retrying what is transient.

    * 5xx, 429, timeouts, refused connections and non-JSON bodies: up to ``max_retries`` retries
      with exponential backoff and jitter.
    * ``E913`` (expired request): read ``GET /timestamp``, correct the clock offset, retry once.
    * ``E910`` (repeated request): retry once; every attempt has a fresh nonce and AES key anyway.
    * ``X-Ratelimit-*``: when the bucket is about to run dry, wait instead of being refused.
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
        session: Optional[requests.Session] = None,
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
        self.keep_rate_tokens = keep_rate_tokens
        self._session = session or requests.Session()
        self._sleep = sleep
        self._clock_offset_ms = 0
        self._lock = threading.Lock()
        self.rate_limit = RateLimitWindow()
        self.stats = TransportStats()

    @property
    def encrypted(self) -> bool:
        """Whether calls are encrypted (an RSA public key was configured)."""
        return self._public_key is not None

    def __repr__(self) -> str:
        mode = "encrypted" if self.encrypted else "plain"
        return f"Transport({self.base_url!r}, {mode})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    # -- the call ---------------------------------------------------------------------------

    def call(self, service: str, params: Mapping[str, Any], token: Optional[str] = None
             ) -> Response:
        """POST ``/openapi/<service>`` and return the successful envelope or raise ApiError."""
        attempt = 0
        clock_synced = nonce_retried = False
        while True:
            self._wait_for_rate_limit()
            try:
                envelope = self._post_once(service, params, token, attempt)
            except _Transient as exc:
                attempt += 1
                if attempt > self.max_retries:
                    raise ServerError(f"{service}: {exc.reason} (gave up after {attempt} attempts)",
                                      endpoint=service) from None
                delay = exc.wait if exc.wait is not None else self._backoff(attempt)
                log.debug("%s: %s; retry %d/%d in %.1f s", service, exc.reason, attempt,
                          self.max_retries, delay)
                self.stats.retries += 1
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
                   attempt: int) -> Dict[str, Any]:
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
        log.debug("POST %s attempt %d %s", url, attempt + 1, _loggable(params))
        self.stats.count(service)
        started = time.monotonic()
        try:
            reply = self._session.post(url, data=payload.encode("utf-8"), headers=headers,
                                       timeout=self.timeout)
        except requests.Timeout:
            raise _Transient(f"no answer within {self.timeout:g} s") from None
        except requests.ConnectionError as exc:
            raise _Transient(f"cannot connect to {self.base_url} ({_root_cause(exc)})") from None
        except requests.RequestException as exc:
            raise _Transient(f"HTTP request failed ({type(exc).__name__})") from None
        with self._lock:
            self.rate_limit.update(reply.headers, time.monotonic())
        log.debug("%s -> HTTP %d in %.2f s", service, reply.status_code,
                  time.monotonic() - started)
        return self._read_envelope(service, reply, aes_key)

    def _read_envelope(self, service: str, reply: requests.Response, aes_key: Optional[str]
                       ) -> Dict[str, Any]:
        status = reply.status_code
        if status == 429:
            raise _Transient("HTTP 429 too many requests", wait=self._rate_limit_pause())
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
        text = reply.content.decode("utf-8", errors="replace").strip()
        if aes_key is not None and text and not text.startswith("{"):
            try:
                text = crypto.aes_decrypt_hex(text, aes_key)
            except crypto.CryptoError:
                raise _Transient("response body is neither JSON nor decryptable") from None
        try:
            envelope = json.loads(text)
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
        before = time.time()
        try:
            reply = self._session.get(url, timeout=self.timeout)
            server_ms = _parse_timestamp(reply.text)
        except (requests.RequestException, ValueError) as exc:
            raise ServerError(f"cannot read the server time from {url} ({type(exc).__name__})",
                              endpoint="timestamp") from None
        local_ms = int((before + time.time()) / 2 * 1000)
        self._clock_offset_ms = server_ms - local_ms
        log.info("Corrected clock offset to the Open API server: %+d ms", self._clock_offset_ms)
        return self._clock_offset_ms

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _rate_limit_pause(self) -> float:
        with self._lock:
            rate = self.rate_limit.replenish_rate
        return max(1.0 / rate, 0.1) * self.keep_rate_tokens if rate else self._backoff(1)

    def _wait_for_rate_limit(self) -> None:
        with self._lock:
            wait = self.rate_limit.wait_needed(time.monotonic(), self.keep_rate_tokens)
        if wait > 0:
            wait = min(wait, self.backoff_max)
            log.debug("Rate-limit bucket low; waiting %.2f s", wait)
            self.stats.rate_limit_waits += wait
            self._sleep(wait)


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


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a requests ConnectionError, e.g. 'Connection refused'."""
    text = str(exc)
    for marker in ("Name or service not known", "nodename nor servname", "Temporary failure in "
                   "name resolution", "Connection refused", "No route to host",
                   "Network is unreachable", "CERTIFICATE_VERIFY_FAILED"):
        if marker in text:
            return "DNS name not found" if "name" in marker.lower() else marker
    return type(exc).__name__
