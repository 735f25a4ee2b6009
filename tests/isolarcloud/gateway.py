"""A small stdlib HTTP gateway for client tests: the live gateway's ways and a hostile server's.

A real HTTP peer (a ThreadingHTTPServer on a free loopback port), not a mock.  By default it
behaves like the live gateway where that differs from the simulator: login issues tokens, an
unknown token and a denied API are both answered with ``E900``.  A test scripts the answers it
needs with :meth:`Gateway.script` (a function of the request body returning a :class:`Reply`);
a :class:`Reply` can trickle, redirect, carry odd headers or any body at all.
"""
from __future__ import annotations

import json
import sys
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional

RATE_HEADERS = {"X-Ratelimit-Burst-Capacity": "15", "X-Ratelimit-Remaining": "14",
                "X-Ratelimit-Replenish-Rate": "10"}


@dataclass
class Reply:
    """One HTTP answer; ``trickle`` sends it ("head": all of it, "body": the body) a byte at a
    time, ``pause`` seconds apart."""

    status: int = 200
    body: bytes = b""
    headers: Dict[str, str] = field(default_factory=dict)
    trickle: Optional[str] = None
    pause: float = 0.05
    length: bool = True        # send Content-Length (else the body ends when the connection does)


def envelope(data: Any = None, code: str = "1", message: str = "success") -> Reply:
    """A JSON Open API envelope."""
    body = {"req_serial_num": uuid.uuid4().hex, "result_code": code, "result_msg": message,
            "result_data": data}
    return Reply(body=json.dumps(body).encode("utf-8"))


Script = Callable[[Dict[str, Any]], Reply]


class Rendezvous:
    """The first ``parties`` requests that ``when`` selects wait for each other before they are
    answered: ``met`` proves they were in flight together (a sequential client never meets)."""

    def __init__(self, parties: int, when: Callable[[str, Dict[str, Any]], bool],
                 timeout: float = 5.0) -> None:
        self.parties = parties
        self.when = when
        self.timeout = timeout
        self._arrived = 0
        self._timed_out = False
        self._cond = threading.Condition()

    @property
    def met(self) -> bool:
        with self._cond:
            return self._arrived >= self.parties and not self._timed_out

    def arrive(self, service: str, body: Dict[str, Any]) -> None:
        if not self.when(service, body):
            return
        with self._cond:
            if self._arrived >= self.parties:
                return
            self._arrived += 1
            self._cond.notify_all()
            if not self._cond.wait_for(lambda: self._arrived >= self.parties,
                                       timeout=self.timeout):
                self._timed_out = True


class Gateway:
    """Serve the Open API's envelope at ``url``; see the module docstring."""

    def __init__(self) -> None:
        self.public_key = None                 # plain calls only
        self.scripts: Dict[str, Script] = {}
        self.rendezvous: Optional[Rendezvous] = None
        self.denied: set[str] = set()          # APIs answered with E900 whatever the token
        self.rate_headers: Dict[str, str] = dict(RATE_HEADERS)
        self.calls: Counter[str] = Counter()
        self.bodies: List[Dict[str, Any]] = []
        self.stopping = threading.Event()
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"gateway": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> "Gateway":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def script(self, service: str, answer: Script) -> None:
        """Answer ``service`` (token checked first, except for login) with ``answer(body)``."""
        self.scripts[service] = answer

    def kill_tokens(self) -> None:
        """Every token issued so far dies (the next call with one gets E900)."""
        with self._lock:
            self._tokens.clear()

    def answer(self, service: str, body: Dict[str, Any]) -> Reply:
        if self.rendezvous is not None:
            self.rendezvous.arrive(service, body)
        with self._lock:
            self.calls[service] += 1
            self.bodies.append({"service": service, **body})
            token_ok = body.get("token") in self._tokens
        if service in self.scripts and (service == "login" or token_ok):
            return self.scripts[service](body)
        if service == "login":
            token = uuid.uuid4().hex
            with self._lock:
                self._tokens.add(token)
            return envelope({"login_state": "1", "token": token, "user_id": "1"})
        if not token_ok or service in self.denied:
            return envelope(None, "E900", "Unauthorized access")
        return envelope({"pageList": [], "rowCount": 0})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):   # a client hanging up is no news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    gateway: Gateway
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw.decode("utf-8") or "{}")
        except ValueError:
            body = {}
        self._send(self.gateway.answer(self.path.rsplit("/", 1)[-1], body))

    def _send(self, reply: Reply) -> None:
        head = [f"HTTP/1.1 {reply.status} X"]
        headers = {"Content-Type": "application/json;charset=UTF-8",
                   **self.gateway.rate_headers, **reply.headers}
        if reply.length:
            headers["Content-Length"] = str(len(reply.body))
        else:
            headers["Connection"] = "close"
            self.close_connection = True
        head += [f"{name}: {value}" for name, value in headers.items()]
        whole = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body
        slow = {"head": len(whole), "body": len(reply.body)}.get(reply.trickle or "", 0)
        try:
            self.wfile.write(whole[:len(whole) - slow])
            for i in range(len(whole) - slow, len(whole)):
                if self.gateway.stopping.wait(reply.pause):
                    return
                self.wfile.write(whole[i:i + 1])
                self.wfile.flush()
        except OSError:       # the client gave up on us: that is what these tests want
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass
