"""Requests that call the cloud: alike ones share one call, and all keep their distance.

Any MQTT client may send requests, as fast as it likes, so none may spend the account's call quota
at that pace.  A request that calls the cloud joins the work of the alike requests already waiting
(every refresh shares one poll; every quota or faults request one call; history requests with the
same fields one download); a new work waits in arrival order until ``spacing`` seconds have passed
since the last cloud call of any kind, polls included, and is then carried out and each of its
requests answered.  A request is deferred, never refused for coming too soon.  While cloud calls
are paused (a rate limit, a refused login) it is answered at once with an error naming the pause,
and a work that comes due during a pause is answered so too: nobody gets old figures as new ones.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, List, Mapping

from sungrow2mqtt.clock import Clock
from sungrow2mqtt.components.poller import Poller
from sungrow2mqtt.components.request_api import BadRequest, Request, RequestApi, outcome_of

MAX_WAITING = 20          # works waiting at once (history requests with different fields)


@dataclass
class Batch:
    """The requests that share one cloud work, and whether it was deferred for the spacing."""

    name: str
    work: "Work"
    throttled: bool
    requests: List[Request] = field(default_factory=list)


Work = Callable[[Batch], Mapping[str, Any]]


class CloudRequests:
    """The queue of request works between the MQTT clients and the cloud."""

    def __init__(self, poller: Poller, api: RequestApi, clock: Clock, *,
                 spacing: float) -> None:
        self._poller, self._api, self._clock, self._spacing = poller, api, clock, spacing
        self._waiting: "OrderedDict[Hashable, Batch]" = OrderedDict()

    def join(self, request: Request, work: Work, key: Hashable = None) -> None:
        """Queue ``request`` behind the work of alike requests (same ``key``; by default the
        same name), or open a new one; it is answered once the work is done.

        Raises CloudPaused while cloud calls are paused, BadRequest when too much is waiting.
        """
        self._poller.refuse_if_paused()
        key = request.name if key is None else key
        batch = self._waiting.get(key)
        if batch is None:
            if len(self._waiting) >= MAX_WAITING:
                raise BadRequest(request.name, "too many requests waiting for the cloud; "
                                               "try again later", request.transaction)
            throttled = self._earliest() > self._clock.monotonic()
            batch = self._waiting[key] = Batch(request.name, work, throttled)
        batch.requests.append(request)

    def seconds_until_due(self) -> float:
        """How long the worker may wait before the next work (infinite when none waits)."""
        if not self._waiting:
            return float("inf")
        return max(0.0, self._earliest() - self._clock.monotonic())

    def run_due(self) -> None:
        """Carry out the oldest waiting work once its time has come, and answer its requests."""
        if not self._waiting or self._clock.monotonic() < self._earliest():
            return
        _, batch = self._waiting.popitem(last=False)

        def carry_out() -> Mapping[str, Any]:
            self._poller.refuse_if_paused()      # the pause began while it waited
            return batch.work(batch)
        data, error = outcome_of(batch.name, carry_out)
        for request in batch.requests:
            self._api.respond(batch.name, data=data, error=error,
                              transaction=request.transaction)

    def _earliest(self) -> float:
        return self._poller.last_cloud_poll + self._spacing
