"""Requests on ``<base>/bridge/request/<name>``: one registry, one dispatcher, one envelope.

Each request kind is registered once as a :class:`RequestSpec`: a declarative schema (a
:class:`~sungrow2mqtt.validation.Section` of fields and their checks, the same toolkit that checks
the config file, so a refused request reads like a refused config key) and the handler that
carries it out.  A request is parsed and validated
on the MQTT thread, so a bad one is answered at once; a valid one is queued for the worker thread,
which does all cloud work.  Nothing in a request can choose a URL, a path or an endpoint: it only
selects among the registered operations.  Answers go to ``<base>/bridge/response/<name>`` as
``{"status": "ok"|"error", "data": {...}, "error": "...", "transaction": ...}``.
"""
from __future__ import annotations

import json
import logging
import queue
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.errors import Sungrow2MqttError
from sungrow2mqtt.model import publishable
from sungrow2mqtt.mqtt import MqttConnection
from sungrow2mqtt.validation import FAILED, Problems, Section, Walker, unknown

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 4096
MAX_TRANSACTION_LENGTH = 128
MAX_QUEUED_REQUESTS = 20
MAX_NESTING = 16                 # no valid request nests deeper than 3
_NAME = re.compile(r"^[a-z_]{1,32}$")


class BadRequest(Sungrow2MqttError, ValueError):
    """A request that cannot be carried out; answered on the request's response topic."""

    def __init__(self, name: str, message: str, transaction: Any = None) -> None:
        super().__init__(message)
        self.name = name if _NAME.match(name) else "unknown"
        self.transaction = transaction


@dataclass(frozen=True)
class Request:
    """A validated request."""

    name: str
    params: Dict[str, Any] = field(default_factory=dict)
    transaction: Any = None


NO_FIELDS = Section(())  # the schema of a request that takes nothing but ``transaction``
# the data to answer with, or None when the handler answers later itself
Handler = Callable[[Request], Optional[Mapping[str, Any]]]


@dataclass(frozen=True)
class RequestSpec:
    """A request kind: what it accepts and what carries it out.

    ``schema`` is built from the validation toolkit: Fields whose checkers raise
    :class:`~sungrow2mqtt.validation.Invalid`, in a Section that builds a dict (its default).
    """

    schema: Section
    handler: Handler


def parse_request(name: str, payload: bytes, schemas: Mapping[str, Section]) -> Request:
    """Validate ``payload`` for request ``name``; raise BadRequest naming the problem."""
    body = _json_object(name, payload)
    transaction = _transaction(name, body.pop("transaction", None))
    if name not in schemas:
        known = sorted(schemas)
        raise BadRequest(name, f"{unknown(f'request {name[:40]!r}', name, known)}; known "
                               f"requests: {', '.join(known)}", transaction)
    return Request(name, parse_fields(name, body, schemas[name], transaction), transaction)


def parse_fields(name: str, body: Mapping[str, Any], schema: Section,
                 transaction: Any = None) -> Dict[str, Any]:
    """The checked fields of a request body; BadRequest naming every bad, missing or unknown
    field on one line (an unknown one also lists what the request takes)."""
    problems = Problems("")
    try:
        params = Walker(problems).section("", dict(body), schema)
    except Exception:  # a bug of ours in a checker must not leave the request unanswered
        log.exception("Checking a %s request failed", name)
        raise BadRequest(name, "the bridge failed to check this request (a bug: see its log)",
                         transaction) from None
    if params is FAILED:
        names = [field.name for field in schema.fields]
        if any(key not in names for key in body):
            problems.add("", f"{name} takes: {', '.join(['transaction', *names])}")
        raise BadRequest(name, problems.text("; "), transaction)
    return dict(params)


def _json_object(name: str, payload: bytes) -> Dict[str, Any]:
    """The payload as a JSON object (empty payload: empty object)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadRequest(name, f"payload too large ({len(payload)} bytes, at most "
                               f"{MAX_PAYLOAD_BYTES})")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadRequest(name, "payload is not UTF-8 text; send a JSON object") from None
    if not text:
        return {}
    too_deep = "payload is nested too deeply; send a flat JSON object"
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(name, f"payload is not valid JSON ({exc.msg} at position "
                               f"{exc.pos}); send a JSON object") from None
    except RecursionError:      # Python <= 3.11 gives up on deep nesting by itself
        raise BadRequest(name, too_deep) from None
    if _nesting(body) > MAX_NESTING:   # 3.12+ parses thousands of levels: same answer there
        raise BadRequest(name, too_deep)
    if not isinstance(body, dict):
        raise BadRequest(name, f"payload must be a JSON object, got {type(body).__name__}")
    return body


def _nesting(value: Any) -> int:
    """How deeply lists and objects nest in a parsed payload (without recursing)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_NESTING:
                stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict)
                                                       else item))
    return deepest


def _transaction(name: str, value: Any) -> Optional[Any]:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and len(value) <= MAX_TRANSACTION_LENGTH:
        return value
    raise BadRequest(name, f"transaction must be a string of at most {MAX_TRANSACTION_LENGTH} "
                           "characters or a number")


def outcome_of(name: str, work: Callable[[], Optional[Mapping[str, Any]]]
               ) -> Tuple[Optional[Mapping[str, Any]], Optional[str]]:
    """(data, error) of carrying out request ``name``: every failure is an error to answer with.

    A request always gets an answer: a failure nobody foresaw (a bug, a cloud answer of a shape
    no one expected) is logged with its traceback and answered as an internal error.
    """
    try:
        return work(), None
    except (Sungrow2MqttError, ValueError) as exc:  # bad request, cloud failure or pause
        return None, publishable(str(exc))
    except Exception as exc:
        log.exception("The %s request failed", name)
        return None, f"internal error ({type(exc).__name__}); the bridge's log says more"


class RequestApi:
    """The registry of request kinds, the queue to the worker and the response envelope."""

    def __init__(self, mqtt: MqttConnection, topics: Topics, *,
                 max_queued: int = MAX_QUEUED_REQUESTS) -> None:
        self._mqtt = mqtt
        self._topics = topics
        self._specs: Dict[str, RequestSpec] = {}
        self._queue: "queue.Queue[Optional[Request]]" = queue.Queue(max_queued)

    def register(self, name: str, spec: RequestSpec) -> None:
        """Add a request kind (before :meth:`start`); one name, one spec."""
        if not _NAME.match(name) or name in self._specs:
            raise ValueError(f"request name {name!r} is not a new [a-z_] name")
        self._specs[name] = spec

    def start(self) -> None:
        """Listen for requests; larger ones than any valid request are refused unread."""
        self._mqtt.subscribe(self._topics.request("+"), self._on_request,
                             max_payload=MAX_PAYLOAD_BYTES, on_oversized=self._on_oversized)

    def stop(self) -> None:
        """Stop listening and wake the worker if it waits for a request."""
        self._mqtt.unsubscribe(self._topics.request("+"))
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass

    def parse(self, name: str, payload: bytes) -> Request:
        """Validate a request against the registered schemas (BadRequest if it is not valid)."""
        return parse_request(name, payload, {n: s.schema for n, s in self._specs.items()})

    def handle_next(self, timeout: float) -> None:
        """Carry out the next queued request, waiting up to ``timeout`` seconds for one."""
        try:
            request = self._queue.get(timeout=timeout)
        except queue.Empty:
            return
        if request is not None:                  # None only wakes the worker up (see stop)
            self.dispatch(request)

    def dispatch(self, request: Request) -> None:
        """Run a validated request's handler and answer it (unless the handler answers later)."""
        data, error = outcome_of(request.name, lambda: self._specs[request.name].handler(request))
        if error is not None or data is not None:
            self.respond(request.name, data=data, error=error, transaction=request.transaction)

    def respond(self, name: str, *, data: Optional[Mapping[str, Any]] = None,
                error: Optional[str] = None, transaction: Any = None) -> None:
        """Answer on ``<base>/bridge/response/<name>`` in zigbee2mqtt's shape."""
        message: Dict[str, Any] = {"status": "error" if error else "ok", "data": dict(data or {})}
        if error:
            message["error"] = error
        if transaction is not None:
            message["transaction"] = transaction
        self._mqtt.publish(self._topics.response(name), message)

    def _on_oversized(self, topic: str, size: int) -> None:
        """Answer a request the MQTT layer refused unread."""
        refused = BadRequest(topic.rsplit("/", 1)[-1],
                             f"payload too large ({size} bytes, at most {MAX_PAYLOAD_BYTES})")
        self.respond(refused.name, error=str(refused))

    def _on_request(self, topic: str, payload: bytes, retained: bool) -> None:
        """Validate a request (MQTT thread) and queue it; bad ones are answered at once."""
        name = topic.rsplit("/", 1)[-1]
        if retained:
            log.warning("Ignoring retained request on %s (publish requests without retain)", topic)
            return
        try:
            request = self.parse(name, payload)
        except BadRequest as exc:
            log.warning("Bad request on %s: %s", topic, exc)
            self.respond(exc.name, error=str(exc), transaction=exc.transaction)
            return
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self.respond(request.name, error="too many requests queued; try again later",
                         transaction=request.transaction)
