"""The bridge's own requests: refresh, faults, quota, info and history.

Each is one entry of the table that :func:`bridge_requests` returns: its schema (a declarative
table of fields and their checks) and its handler.  The checks' messages name the field and what was
expected, since they are all a user sees of a refused request.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping

from sungrow2mqtt.catalog import Catalog
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.jobs import CloudJobs
from sungrow2mqtt.components.poller import Poller
from sungrow2mqtt.components.publisher import Publisher
from sungrow2mqtt.components.refresh import RefreshCoalescer
from sungrow2mqtt.components.request_api import BadRequest, Field, Request, RequestSpec, Schema
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.history import fetch_history
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient
from sungrow2mqtt.model import PsKey

MAX_HISTORY_POINTS = 49          # one getDevicePointMinuteDataList call's worth
INTERVALS = ("minute", "day", "month", "year")
_POINT = re.compile(r"^[pP]?\d{1,6}$")


def ps_id(value: Any) -> int:
    """A plant id."""
    if isinstance(value, bool) or not re.fullmatch(r"\d{1,12}", str(value).strip()):
        raise ValueError(f"ps_id must be a plant id (a positive integer), got {value!r}")
    return int(str(value).strip())


def points(value: Any) -> List[str]:
    """Point ids, as a list or a comma-separated string, with or without their ``p``."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError("points must be a non-empty list (or comma-separated string) of point "
                         "ids such as 13011 or p13011")
    found = []
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not _POINT.match(text):
            raise ValueError(f"points: {item!r} is not a point id such as 13011 or p13011")
        found.append(text.lstrip("pP"))
    if len(found) > MAX_HISTORY_POINTS:
        raise ValueError(f"points: at most {MAX_HISTORY_POINTS} points per request, "
                         f"got {len(found)}")
    return found


def interval(value: Any) -> str:
    """A history interval."""
    if value not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}, got {value!r}")
    return str(value)


def moment(value: Any) -> str:
    """A date/time text; its format is checked against the interval by the history service."""
    if not isinstance(value, str) or not 4 <= len(value) <= 25:
        raise ValueError(f"expected a date/time string such as 2026-11-25 or "
                         f"2026-11-25T10:00, got {value!r}")
    return value


def minutes(value: Any) -> int:
    """The step of a minute history."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 180:
        raise ValueError(f"minute_interval must be an integer 1-180, got {value!r}")
    return value


REFRESH: Schema = {"ps_id": Field(ps_id)}
# also the ``history`` command line's arguments
HISTORY: Schema = {"ps_key": Field(PsKey, required=True), "points": Field(points, required=True),
                   "start": Field(moment, required=True), "end": Field(moment, required=True),
                   "interval": Field(interval, required=True), "minute_interval": Field(minutes)}


def bridge_requests(fleet: FleetState, poller: Poller, jobs: CloudJobs, publisher: Publisher,
                    refresh: RefreshCoalescer, client: IsolarCloudClient, catalog: Catalog,
                    topics: Topics) -> Dict[str, RequestSpec]:
    """Every request of the bridge, to register with the request API."""
    def faults(request: Request) -> Mapping[str, Any]:
        return {"open_faults": poller.call(jobs.poll_faults)}

    def quota(request: Request) -> Mapping[str, Any]:
        return poller.call(jobs.fetch_quota)

    def info(request: Request) -> Mapping[str, Any]:
        publisher.publish_info()
        return {"published": topics.bridge_info}

    def history(request: Request) -> Mapping[str, Any]:
        params = request.params
        device = fleet.device(params["ps_key"])
        if device is None:
            raise BadRequest("history", f"unknown ps_key {params['ps_key']!r}; see "
                                        f"{topics.bridge_info}")
        return poller.call(lambda: fetch_history(client, catalog, device, params))

    return {
        "refresh": RequestSpec(REFRESH, refresh.request),
        "faults": RequestSpec({}, faults),
        "quota": RequestSpec({}, quota),
        "info": RequestSpec({}, info),
        "history": RequestSpec(HISTORY, history),
    }
