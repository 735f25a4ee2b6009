"""HTTP exchanges that always end: a total deadline, a size cap, no redirects, cut at close.

``requests`` bounds each socket read (``timeout``), not an exchange: an answer trickling one byte
a second, in its headers or its body, holds a call for as long as it trickles.  Here a watchdog
thread shuts the exchange's socket down when its deadline passes (and
:meth:`GuardedSession.close` does so at once), which ends whatever read is in progress.  The
socket is found through the connection pool: the pool notes which connection the current
thread's exchange uses, and forgets it when the connection goes back to the pool, so a cut
never hits another exchange.

``requests`` also reads the environment (``*_proxy``, the CA bundle variables, ``~/.netrc``) on
every call, a good part of a call's CPU; here the proxies and CA bundle are read once per
server for the life of the process (``~/.netrc`` not at all: the Open API authenticates in its
headers and body, not with HTTP auth).
"""
from __future__ import annotations

import functools
import heapq
import itertools
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Set, Tuple, Type

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

CHUNK = 64 * 1024
_RECHECK = 0.05          # a connection still being set up at the deadline is cut this soon after
_current = threading.local()


class ExchangeCut(Exception):
    """The exchange was cut: its deadline passed (``closed`` False) or the session closed."""

    def __init__(self, closed: bool) -> None:
        super().__init__("closed" if closed else "deadline")
        self.closed = closed


class AnswerTooLarge(Exception):
    """The answer is larger than the cap; it was not read to its end."""


@dataclass(frozen=True)
class Answer:
    """A complete HTTP answer; a redirect's body is not read."""

    status: int
    headers: CaseInsensitiveDict[str]
    body: bytes


class _Exchange:
    """One exchange's connection and fate; ``cut`` may come from the watchdog or from close."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: Any = None
        self.cut_by: Optional[ExchangeCut] = None
        self.done = False

    def attach(self, conn: Any) -> None:
        with self._lock:
            self._conn = conn

    def detach(self, conn: Any) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None

    def cut(self, closed: bool) -> bool:
        """Shut the exchange's socket down, ending any read in progress; False when there is
        no socket yet (still connecting): the caller tries again shortly."""
        with self._lock:
            if self.done:
                return True
            self.cut_by = self.cut_by or ExchangeCut(closed)
            sock = getattr(self._conn, "sock", None)
            if sock is None:
                return False
            try:   # the plain socket's shutdown, also under TLS: it only acts on the fd
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass
            return True

    def finish(self) -> None:
        with self._lock:
            self.done = True


class _Watchdog:
    """One daemon thread that cuts the exchanges whose deadline (monotonic) has passed.  It
    ends when nothing is left to watch and the next watch starts another, so a closed session
    leaves no thread behind (and an idle one between polls holds none)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: List[Tuple[float, int, _Exchange]] = []
        self._order = itertools.count()
        self._thread: Optional[threading.Thread] = None

    def watch(self, exchange: _Exchange, seconds: float) -> None:
        with self._cond:
            heapq.heappush(self._due, (time.monotonic() + seconds, next(self._order), exchange))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="isolarcloud-deadlines",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._due and self._due[0][2].done:     # answered in time
                        heapq.heappop(self._due)
                    if not self._due:       # done; watch() starts the next, under this lock
                        self._thread = None
                        return
                    left = self._due[0][0] - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                _, _, exchange = heapq.heappop(self._due)
            if not exchange.cut(closed=False):
                self.watch(exchange, _RECHECK)


class _GuardedPool:
    """Pool mixin: tell the current thread's exchange which connection it uses."""

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        exchange = getattr(_current, "exchange", None)
        if exchange is not None:
            exchange.attach(conn)
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]

    def _put_conn(self, conn: Any) -> None:
        exchange = getattr(_current, "exchange", None)
        if exchange is not None:
            exchange.detach(conn)
        super()._put_conn(conn)  # type: ignore[misc]


@functools.lru_cache(maxsize=None)
def _guarded(pool_class: Type[Any]) -> Type[Any]:
    if issubclass(pool_class, _GuardedPool):
        return pool_class
    return type(f"Guarded{pool_class.__name__}", (_GuardedPool, pool_class), {})


def _guard(manager: Any) -> Any:
    manager.pool_classes_by_scheme = {scheme: _guarded(cls) for scheme, cls
                                      in manager.pool_classes_by_scheme.items()}
    return manager


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _guard(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        return _guard(super().proxy_manager_for(proxy, **kwargs))


class GuardedSession:
    """A pooled ``requests`` session (``pool_size`` connections) whose exchanges always end.

    Thread-safe.  :meth:`exchange` raises ExchangeCut, AnswerTooLarge or
    ``requests.RequestException``.
    """

    def __init__(self, pool_size: int) -> None:
        self._session = requests.Session()
        self._session.trust_env = False        # read once per server instead: _environment()
        adapter = _Adapter(pool_connections=1, pool_maxsize=pool_size)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._lock = threading.Lock()
        self._live: Set[_Exchange] = set()
        self._closed = False
        self._watchdog = _Watchdog()

    def exchange(self, method: str, url: str, *, deadline: float, max_bytes: int,
                 **kwargs: Any) -> Answer:
        """One request and its complete answer within ``deadline`` seconds, at most
        ``max_bytes`` of body; redirects are returned, not followed."""
        exchange = _Exchange()
        with self._lock:
            if self._closed:
                raise ExchangeCut(closed=True)
            self._live.add(exchange)
        _current.exchange = exchange
        self._watchdog.watch(exchange, deadline)
        try:
            with self._session.request(method, url, timeout=(deadline, deadline), stream=True,
                                       allow_redirects=False, **_environment(url),
                                       **kwargs) as reply:
                body = b"" if reply.is_redirect else _read(reply, max_bytes)
            if exchange.cut_by is not None:      # what was read before the cut looked whole
                raise exchange.cut_by
            return Answer(reply.status_code, reply.headers, body)
        except requests.RequestException:
            if exchange.cut_by is not None:
                raise exchange.cut_by from None
            raise
        finally:
            exchange.finish()
            _current.exchange = None
            with self._lock:
                self._live.discard(exchange)

    def close(self) -> None:
        """Cut every exchange in progress and refuse new ones."""
        with self._lock:
            self._closed = True
            live = list(self._live)
        for exchange in live:
            if not exchange.cut(closed=True):
                self._watchdog.watch(exchange, _RECHECK)
        self._session.close()


def _environment(url: str) -> Dict[str, Any]:
    """The proxies and CA bundle the environment gives for ``url``'s server."""
    parts = urllib.parse.urlsplit(url)
    return _environment_of(f"{parts.scheme}://{parts.netloc}/")


@functools.lru_cache(maxsize=16)
def _environment_of(server: str) -> Dict[str, Any]:
    with requests.Session() as reader:
        settings = reader.merge_environment_settings(server, {}, None, None, None)
    return {"proxies": settings["proxies"], "verify": settings["verify"]}


def _read(reply: requests.Response, max_bytes: int) -> bytes:
    length = reply.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise AnswerTooLarge()
    body = bytearray()
    for chunk in reply.iter_content(CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise AnswerTooLarge()
    return bytes(body)
