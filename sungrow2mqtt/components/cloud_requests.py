"""Requests that call the cloud: alike ones share one call, and all keep their distance.

Any MQTT client may send requests, as fast as it likes, so none may spend the account's call quota
at that pace.  A request that calls the cloud joins the work of the alike requests already waiting
(every refresh shares one poll; every quota or faults request one call; history requests with the
same fields one download); a new work waits in arrival order until ``spacing`` seconds have passed
since the last cloud call of any kind, polls included, and is then carried out and each of its
requests answered.  A request is deferred, never refused for coming too soon.  While cloud calls
are paused (a rate limit, a refused login) it is answered at once with an error naming the pause,
and a work that comes due during a pause is answered so too: nobody gets old figures as new ones.

Spacing alone still lets a busy client spend a small quota (a refresh costs a call per device
type), so requests have a budget too: in any hour, what polling (QUOTA_MARGIN of the hourly quota)
leaves.  Once it is spent, requests are refused, saying so, and polling goes on.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Hashable, List, Mapping, Tuple

from sungrow2mqtt.clock import Clock
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.poller import QUOTA_MARGIN, Poller
from sungrow2mqtt.components.request_api import BadRequest, Request, RequestApi, outcome_of

MAX_WAITING = 20          # works waiting at once (history requests with different fields)
UNKNOWN_QUOTA_BUDGET = 100           # calls an hour for requests while the quota is not known
HOUR = 3600.0


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

    def __init__(self, fleet: FleetState, poller: Poller, api: RequestApi, clock: Clock, *,
                 spacing: float, api_calls: Callable[[], int]) -> None:
        self._fleet, self._poller, self._api, self._clock = fleet, poller, api, clock
        self._spacing, self._api_calls = spacing, api_calls
        self._waiting: "OrderedDict[Hashable, Batch]" = OrderedDict()
        self._spent: Deque[Tuple[float, int]] = deque()    # (monotonic, calls) of each work

    def join(self, request: Request, work: Work, key: Hashable = None) -> None:
        """Queue ``request`` behind the work of alike requests (same ``key``; by default the
        same name), or open a new one; it is answered once the work is done.

        Raises CloudPaused while cloud calls are paused, BadRequest when too much is waiting.
        """
        self._poller.refuse_if_paused()
        self._refuse_if_spent(request.name, request.transaction)
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
            self._refuse_if_spent(batch.name)    # or the budget ran out
            return batch.work(batch)
        before = self._api_calls()
        data, error = outcome_of(batch.name, carry_out)
        self._spent.append((self._clock.monotonic(), self._api_calls() - before))
        for request in batch.requests:
            self._api.respond(batch.name, data=data, error=error,
                              transaction=request.transaction)

    def _earliest(self) -> float:
        return self._poller.last_cloud_poll + self._spacing

    def _refuse_if_spent(self, name: str, transaction: Any = None) -> None:
        """BadRequest, saying why and until when, once requests spent their calls of the hour."""
        now = self._clock.monotonic()
        while self._spent and self._spent[0][0] <= now - HOUR:
            self._spent.popleft()
        spent = sum(calls for _, calls in self._spent)
        quota = self._fleet.snapshot().quota.get("per_hour")
        budget = quota - int(QUOTA_MARGIN * quota) if quota else UNKNOWN_QUOTA_BUDGET
        if spent < budget:
            return
        minutes = max(1, round((self._spent[0][0] + HOUR - now) / 60))
        share = (f"{1 - QUOTA_MARGIN:.0%} of the hourly quota of {quota}" if quota
                 else "while the quota is not known")
        raise BadRequest(name, f"requests have spent their {budget} API calls an hour ({share}; "
                               f"polling keeps the rest): try again in {minutes} min",
                         transaction)
