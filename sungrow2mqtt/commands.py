"""Requests on ``<base>/bridge/request/<name>``: parsed and validated before anything runs.

Each request has a small schema (allowed fields and their checks); anything else is answered with
an error that names the problem.  Nothing in a request can choose a URL, a path or an endpoint: it
only selects among the bridge's own operations.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from sungrow2mqtt.errors import Sungrow2MqttError

MAX_PAYLOAD_BYTES = 4096
MAX_TRANSACTION_LENGTH = 128
MAX_HISTORY_POINTS = 49          # one getDevicePointMinuteDataList call's worth
MAX_NESTING = 16                 # no valid request nests deeper than 3
INTERVALS = ("minute", "day", "month", "year")
_NAME = re.compile(r"^[a-z_]{1,32}$")
_PS_KEY = re.compile(r"^\d{1,12}_\d{1,3}_\d{1,6}_\d{1,6}$")
_POINT = re.compile(r"^[pP]?\d{1,6}$")


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


def _ps_id(value: Any) -> int:
    if isinstance(value, bool) or not re.fullmatch(r"\d{1,12}", str(value).strip()):
        raise ValueError(f"ps_id must be a plant id (a positive integer), got {value!r}")
    return int(str(value).strip())


def _ps_key(value: Any) -> str:
    if not isinstance(value, str) or not _PS_KEY.match(value):
        raise ValueError(f"ps_key must look like 1234567_14_1_1, got {value!r}")
    return value


def _points(value: Any) -> List[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError("points must be a non-empty list (or comma-separated string) of point "
                         "ids such as 13011 or p13011")
    points = []
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not _POINT.match(text):
            raise ValueError(f"points: {item!r} is not a point id such as 13011 or p13011")
        points.append(text.lstrip("pP"))
    if len(points) > MAX_HISTORY_POINTS:
        raise ValueError(f"points: at most {MAX_HISTORY_POINTS} points per request, "
                         f"got {len(points)}")
    return points


def _interval(value: Any) -> str:
    if value not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, got {value!r}")
    return str(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not 4 <= len(value) <= 25:
        raise ValueError(f"expected a date/time string such as 2026-11-25 or "
                         f"2026-11-25T10:00, got {value!r}")
    return value


def _minutes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 180:
        raise ValueError(f"minute_interval must be an integer 1-180, got {value!r}")
    return value


Field = Callable[[Any], Any]
# request name -> (field -> (check, required))
SCHEMAS: Dict[str, Dict[str, "tuple[Field, bool]"]] = {
    "refresh": {"ps_id": (_ps_id, False)},
    "faults": {},
    "quota": {},
    "info": {},
    "history": {"ps_key": (_ps_key, True), "points": (_points, True),
                "start": (_text, True), "end": (_text, True), "interval": (_interval, True),
                "minute_interval": (_minutes, False)},
}


def parse_request(name: str, payload: bytes) -> Request:
    """Validate ``payload`` for request ``name``; raise BadRequest naming the problem."""
    body = _json_object(name, payload)
    transaction = _transaction(name, body.pop("transaction", None))
    if name not in SCHEMAS:
        raise BadRequest(name, f"unknown request {name[:40]!r}; known requests: "
                               f"{', '.join(sorted(SCHEMAS))}", transaction)
    schema = SCHEMAS[name]
    params: Dict[str, Any] = {}
    for key, value in body.items():
        if key not in schema:
            allowed = ", ".join(["transaction", *schema])
            raise BadRequest(name, f"unknown field {str(key)[:40]!r}; {name} takes: {allowed}",
                             transaction)
        check, _ = schema[key]
        try:
            params[key] = check(value)
        except ValueError as exc:
            raise BadRequest(name, str(exc), transaction) from None
    missing = [key for key, (_, required) in schema.items() if required and key not in params]
    if missing:
        raise BadRequest(name, f"missing field(s): {', '.join(missing)}", transaction)
    return Request(name, params, transaction)


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

