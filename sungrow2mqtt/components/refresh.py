"""Refresh requests: one poll for all of them, never closer to the last poll than the spacing.

A refresh that arrives within ``min_refresh_spacing`` of the last cloud poll is deferred to the
end of the spacing and answered after that poll, not refused; refreshes arriving meanwhile share
the poll.  While cloud calls are paused (rate limit) a refresh is answered at once with an error
naming the pause, and the cloud is not called.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Set

from sungrow2mqtt.clock import Clock, iso
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.poller import Poller
from sungrow2mqtt.components.request_api import BadRequest, Request, RequestApi


@dataclass
class _Pending:
    """Refresh requests waiting for one shared poll."""

    due: float
    throttled: bool
    requests: List[Request] = field(default_factory=list)


class RefreshCoalescer:
    """Turns ``refresh`` requests into spaced, shared realtime and fault polls."""

    def __init__(self, fleet: FleetState, poller: Poller,
                 poll_realtime: Callable[[Optional[Set[int]]], Any], api: RequestApi,
                 clock: Clock, *, spacing: float) -> None:
        self._fleet, self._poller, self._poll_realtime = fleet, poller, poll_realtime
        self._api, self._clock, self._spacing = api, clock, spacing
        self._pending: Optional[_Pending] = None

    def request(self, request: Request) -> None:
        """The ``refresh`` handler: join (or open) the next shared poll; answered after it."""
        ps_id = request.params.get("ps_id")
        plants = self._fleet.plant_ids()
        if ps_id is not None and ps_id not in plants:
            raise BadRequest("refresh", f"unknown plant {ps_id}; bridged plants: "
                             f"{', '.join(map(str, sorted(plants))) or 'none yet'}",
                             request.transaction)
        until = self._poller.paused_until()
        if until is not None:
            self._api.respond("refresh", transaction=request.transaction,
                              error=f"rate limited: cloud calls paused until {iso(until)}; "
                                    "not polling now")
            return
        if self._pending is None:
            earliest = self._poller.last_cloud_poll + self._spacing
            now = self._clock.monotonic()
            self._pending = _Pending(due=max(now, earliest), throttled=earliest > now)
        self._pending.requests.append(request)

    def seconds_until_due(self) -> float:
        """How long the worker may wait before the shared poll (infinite when none is pending)."""
        if self._pending is None:
            return float("inf")
        return max(0.0, self._pending.due - self._clock.monotonic())

    def run_due(self) -> None:
        """Poll for the waiting refreshes once their time has come, and answer each of them."""
        pending = self._pending
        if pending is None or self._clock.monotonic() < pending.due:
            return
        self._pending = None
        wanted = {r.params["ps_id"] for r in pending.requests if r.params.get("ps_id")}
        everything = any(r.params.get("ps_id") is None for r in pending.requests)
        ps_ids = None if everything else wanted
        # one wave: the fault query goes out beside the realtime calls
        self._poller.run_wave({"realtime": lambda: self._poll_realtime(ps_ids), "faults": None})
        outcomes = self._fleet.snapshot().outcomes
        realtime, faults = outcomes["realtime"], outcomes["faults"]
        data = {"plants": sorted(ps_ids) if ps_ids else "all", "throttled": pending.throttled,
                "coalesced": len(pending.requests),
                "api_calls": realtime.api_calls + faults.api_calls,
                "last_update": iso(self._clock.wall())}
        for request in pending.requests:
            self._api.respond("refresh", data=data, error=realtime.error or faults.error,
                              transaction=request.transaction)
