"""The bridge's own requests: refresh, faults, quota, info and history.

Each is one entry of the table that :func:`bridge_requests` returns: its schema (a declarative
:class:`~sungrow2mqtt.validation.Section` of fields and their checks) and its handler.  The
checkers below say what was expected, since that is all a user sees of a refused request; the
shared ones (integers, choices) come from the validation toolkit.  Every request that calls the
cloud goes through :class:`.CloudRequests` (shared, spaced); a history request may cost at most
MAX_HISTORY_CALLS calls, and its answer says what it cost.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Mapping

from sungrow2mqtt.catalog import Catalog
from sungrow2mqtt.components.cloud_requests import Batch, CloudRequests
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.jobs import CloudJobs
from sungrow2mqtt.components.poller import Poller
from sungrow2mqtt.components.publisher import Publisher
from sungrow2mqtt.components.refresh import Refresh
from sungrow2mqtt.components.request_api import NO_FIELDS, BadRequest, Request, RequestSpec
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.history import fetch_history_range, split_range
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient
from sungrow2mqtt.isolarcloud.ps_key import EXAMPLE, PsKey
from sungrow2mqtt.validation import (
    ABSENT,
    Field,
    Invalid,
    Section,
    as_int,
    choice,
    describe,
    integer,
)

MAX_HISTORY_POINTS = 49          # one getDevicePointMinuteDataList call's worth
# One history request may cost this many calls (windows of 3 h, 100 days, 24 months, 5 years):
# a day of minute data; longer downloads are for the ``history`` command line, which warns first.
MAX_HISTORY_CALLS = 8
INTERVALS = ("minute", "day", "month", "year")
_POINT = re.compile(r"[pP]?\d{1,6}")


def plant_id(value: Any) -> int:
    """A plant id: a positive integer of at most 12 digits, as a number or a string."""
    number = as_int(value)
    if number is None or not 1 <= number < 10 ** 12:
        raise Invalid("expected a plant id (a positive integer)")
    return number


def ps_key(value: Any) -> PsKey:
    """A device's ps_key, in the one form every part of the bridge takes."""
    try:
        return PsKey(value)
    except ValueError:
        raise Invalid(f"expected <ps_id>_<device type>_<device code>_<channel> such as "
                      f"{EXAMPLE}") from None


def points(value: Any) -> List[str]:
    """Point ids, as a list or a comma-separated string, with or without their ``p``."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise Invalid("expected a non-empty list (or comma-separated string) of point ids such "
                      "as 13011 or p13011")
    found = []
    for item in items:
        text = str(item).strip()
        if isinstance(item, bool) or not _POINT.fullmatch(text):
            raise Invalid(f"{describe(item)} is not a point id such as 13011 or p13011",
                          show_got=False)
        found.append(text.lstrip("pP"))
    if len(found) > MAX_HISTORY_POINTS:
        raise Invalid(f"at most {MAX_HISTORY_POINTS} points per request, got {len(found)}",
                      show_got=False)
    return found


def moment(value: Any) -> str:
    """A date/time text; its format is checked against the interval by the history service."""
    if not isinstance(value, str) or not 4 <= len(value) <= 25:
        raise Invalid("expected a date/time string such as 2026-11-25 or 2026-11-25T10:00")
    return value


REFRESH = Section((Field("ps_id", plant_id, ABSENT),))
# also the ``history`` command line's arguments
HISTORY = Section((
    Field("ps_key", ps_key), Field("points", points), Field("start", moment),
    Field("end", moment), Field("interval", choice(INTERVALS)),
    Field("minute_interval", integer(1, 180), ABSENT),
))


def bridge_requests(fleet: FleetState, poller: Poller, jobs: CloudJobs, publisher: Publisher,
                    refresh: Refresh, cloud: CloudRequests, client: IsolarCloudClient,
                    catalog: Catalog, topics: Topics) -> Dict[str, RequestSpec]:
    """Every request of the bridge, to register with the request API."""
    def faults(request: Request) -> None:
        cloud.join(request, lambda batch: {"open_faults": poller.call(jobs.poll_faults)})

    def quota(request: Request) -> None:
        cloud.join(request, lambda batch: poller.call(jobs.fetch_quota))

    def info(request: Request) -> Mapping[str, Any]:
        publisher.publish_devices()
        publisher.publish_info()
        return {"published": [topics.bridge_info, topics.bridge_devices]}

    def history(request: Request) -> None:
        params = request.params
        device = fleet.device(params["ps_key"])
        if device is None:
            raise BadRequest("history", f"unknown ps_key {params['ps_key']!r}; see "
                                        f"{topics.bridge_devices}")
        calls = len(split_range(params["interval"], params["start"], params["end"]))
        if calls > MAX_HISTORY_CALLS:
            raise BadRequest("history", f"this range takes {calls} API calls; a history "
                             f"request may cost at most {MAX_HISTORY_CALLS}: ask for a shorter "
                             "range or a coarser interval, or use the history command line")

        def download(batch: Batch) -> Mapping[str, Any]:
            found = poller.call(lambda: fetch_history_range(client, catalog, device, params))
            return {**found, "api_calls": calls, "max_api_calls": MAX_HISTORY_CALLS}
        cloud.join(request, download, key=("history", json.dumps(params, sort_keys=True)))

    return {
        "refresh": RequestSpec(REFRESH, refresh.request),
        "faults": RequestSpec(NO_FIELDS, faults),
        "quota": RequestSpec(NO_FIELDS, quota),
        "info": RequestSpec(NO_FIELDS, info),
        "history": RequestSpec(HISTORY, history),
    }
