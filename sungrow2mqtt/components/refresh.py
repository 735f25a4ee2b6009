"""Refresh requests: one realtime and faults poll for all that wait, answered with what it did.

Refreshes share and space their poll like every request that calls the cloud
(:mod:`.cloud_requests`).  The answer says what this poll did: its errors and its API calls, never
an earlier poll's figures (a refresh that waited behind a rate limit is told about the pause).
The fault query held back because this appkey may not call it does not fail the refresh: the
values came, and the answer names what was not polled and why.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Set

from sungrow2mqtt.clock import Clock, iso
from sungrow2mqtt.components.cloud_requests import Batch, CloudRequests
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.jobs import SERVICES
from sungrow2mqtt.components.poller import Poller
from sungrow2mqtt.components.request_api import BadRequest, Request
from sungrow2mqtt.errors import Sungrow2MqttError


class Refresh:
    """The ``refresh`` request: all plants, or those named, polled now (or after the spacing)."""

    def __init__(self, fleet: FleetState, poller: Poller,
                 poll_realtime: Callable[[Optional[Set[int]]], Any], cloud: CloudRequests,
                 clock: Clock, *, denied_apis: Callable[[], Mapping[str, Any]] = dict) -> None:
        self._fleet, self._poller, self._poll_realtime = fleet, poller, poll_realtime
        self._cloud, self._clock, self._denied_apis = cloud, clock, denied_apis

    def request(self, request: Request) -> None:
        """The ``refresh`` handler: join the next shared poll; answered after it."""
        ps_id = request.params.get("ps_id")
        plants = self._fleet.plant_ids()
        if ps_id is not None and ps_id not in plants:
            raise BadRequest("refresh", f"unknown plant {ps_id}; bridged plants: "
                             f"{', '.join(map(str, sorted(plants))) or 'none yet'}",
                             request.transaction)
        self._cloud.join(request, self._poll)

    def _poll(self, batch: Batch) -> Mapping[str, Any]:
        """One realtime and faults poll for every waiting refresh."""
        requests = batch.requests
        wanted = {r.params["ps_id"] for r in requests if r.params.get("ps_id")}
        everything = any(r.params.get("ps_id") is None for r in requests)
        ps_ids = None if everything else wanted
        # one wave: the fault query goes out beside the realtime calls
        outcomes = self._poller.attempt({"realtime": lambda: self._poll_realtime(ps_ids),
                                         "faults": None})
        denied = self._denied_apis()
        errors = {kind: outcome.error for kind, outcome in outcomes.items() if outcome.error}
        not_polled = {kind: error for kind, error in errors.items() if kind != "realtime"
                      and any(service in denied for service in SERVICES[kind])}
        failed = [error for kind, error in errors.items() if kind not in not_polled]
        if failed:
            raise Sungrow2MqttError(failed[0])
        return {"plants": sorted(ps_ids) if ps_ids else "all", "throttled": batch.throttled,
                "coalesced": len(requests),
                "api_calls": sum(outcome.api_calls for outcome in outcomes.values()),
                **({"not_polled": not_polled} if not_polled else {}),
                "last_update": iso(self._clock.wall())}
