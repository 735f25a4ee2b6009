"""Requests that call the cloud, shared and spaced; refreshes as their example; on a clock the
test moves."""
from __future__ import annotations

import datetime as dt
from typing import Dict, List, Optional, Set

from component_support import POLLING, FakeClock, RecordingMqtt
from sungrow2mqtt.clock import utc_now
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.bridge_requests import REFRESH
from sungrow2mqtt.components.poller import Job, Poller
from sungrow2mqtt.components.cloud_requests import CloudRequests
from sungrow2mqtt.components.refresh import Refresh
from sungrow2mqtt.components.request_api import NO_FIELDS, Request, RequestApi, RequestSpec
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.isolarcloud.errors import ApiNotAuthorised, RateLimitError
from sungrow2mqtt.model import plant_from_row

TOPICS = Topics("s2m")
PLANTS = [plant_from_row({"ps_id": ps_id}, "Plant") for ps_id in (101, 202)]


class Setup:
    def __init__(self) -> None:
        self.clock = FakeClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc))
        self.fleet = FleetState()
        self.fleet.set_devices({p.ps_key: p for p in PLANTS})
        self.polls: List[Optional[Set[int]]] = []
        self.failure: Optional[Exception] = None
        self.fault_failure: Optional[Exception] = None
        self.denied: Dict[str, dt.datetime] = {}
        self.poller = Poller(self.fleet, [Job("realtime", 60, self.poll),
                                          Job("faults", 60, self.poll_faults)],
                             self.clock, api_calls=lambda: len(self.polls), polling=POLLING)
        self.mqtt = RecordingMqtt()
        self.api = RequestApi(self.mqtt, TOPICS)   # type: ignore[arg-type]
        self.cloud = CloudRequests(self.fleet, self.poller, self.api, self.clock, spacing=5,
                                   api_calls=lambda: len(self.polls))
        self.refresh = Refresh(self.fleet, self.poller, self.poll, self.cloud, self.clock,
                               denied_apis=lambda: self.denied)
        self.api.register("refresh", RequestSpec(REFRESH, self.refresh.request))
        self.api.register("quota", RequestSpec(NO_FIELDS, lambda request: self.cloud.join(
            request, lambda batch: self.poller.call(lambda: {"calls": self.poll()}))))

    def poll(self, ps_ids: Optional[Set[int]] = None) -> int:
        self.polls.append(ps_ids)
        if self.failure:
            raise self.failure
        return 1

    def poll_faults(self) -> int:
        if self.fault_failure:
            raise self.fault_failure
        return 0

    def ask(self, transaction: int, name: str = "refresh", **params: int) -> None:
        self.api.dispatch(Request(name, dict(params), transaction))

    def answers(self, name: str = "refresh"):
        return self.mqtt.on(TOPICS.response(name))


def test_refreshes_inside_the_spacing_share_one_poll_at_its_end():
    s = Setup()
    s.poller.run("realtime")                       # a poll just happened
    s.clock.advance(2)
    s.ask(1)
    s.ask(2, ps_id=101)
    s.cloud.run_due()
    assert len(s.polls) == 1 and not s.answers()   # deferred, not refused
    assert s.cloud.seconds_until_due() == 3
    s.clock.advance(3)
    s.cloud.run_due()
    assert s.polls[1:] == [None]                   # one poll for both, all plants
    [first, second] = s.answers()
    assert first["data"]["coalesced"] == 2 and first["data"]["throttled"] is True
    assert (first["transaction"], second["transaction"]) == (1, 2)
    assert s.cloud.seconds_until_due() == float("inf")


def test_a_refresh_of_some_plants_polls_only_those():
    s = Setup()
    s.ask(1, ps_id=202)
    s.cloud.run_due()
    assert s.polls == [{202}] and s.answers()[0]["data"]["plants"] == [202]
    s.ask(2, ps_id=42)
    assert s.answers()[1]["error"] == "unknown plant 42; bridged plants: 101, 202"


def test_while_rate_limited_a_refresh_is_answered_at_once_without_calling_the_cloud():
    s = Setup()
    s.failure = RateLimitError("E999", retry_at=utc_now() + dt.timedelta(hours=1),
                               result_code="E999")
    s.ask(1)
    s.cloud.run_due()
    assert s.answers()[0]["status"] == "error" and "E999" in s.answers()[0]["error"]
    s.ask(2)
    assert len(s.polls) == 1
    assert s.answers()[1]["error"].startswith("cloud calls paused until ")
    assert ": rate limited (E999" in s.answers()[1]["error"]


def test_every_kind_of_request_keeps_its_distance_from_every_cloud_call():
    s = Setup()
    s.ask(1)
    s.ask(2, "quota")
    s.ask(3, "quota")
    s.cloud.run_due()                              # the refresh: at once
    assert len(s.polls) == 1 and s.cloud.seconds_until_due() == 5
    s.cloud.run_due()
    assert len(s.polls) == 1                       # the quota requests wait for the spacing
    s.clock.advance(5)
    s.cloud.run_due()
    assert len(s.polls) == 2 and [a["transaction"] for a in s.answers("quota")] == [2, 3]


def test_requests_have_a_budget_of_calls_an_hour_and_polling_goes_on():
    s = Setup()
    s.fleet.set_quota({"per_hour": 50})            # requests may spend a fifth: 10 calls
    for number in range(10):
        s.ask(number, "quota")
        s.cloud.run_due()
        s.clock.advance(5)
    assert [a["status"] for a in s.answers("quota")] == ["ok"] * 10
    s.ask(10, "quota")
    refused = s.answers("quota")[-1]
    assert refused["error"] == ("requests have spent their 10 API calls an hour (20% of the "
                                "hourly quota of 50; polling keeps the rest): try again in 59 min")
    assert len(s.polls) == 10
    s.poller.run("realtime")                       # polling goes on
    assert len(s.polls) == 11
    s.clock.advance(3600 - 45)                     # the first call leaves the hour
    s.ask(11, "quota")
    s.cloud.run_due()
    assert s.answers("quota")[-1]["status"] == "ok"


def test_a_fault_api_this_appkey_may_not_call_does_not_fail_the_refresh_its_values_came():
    s = Setup()
    s.fault_failure = ApiNotAuthorised("getFaultAlarmInfo is not authorised for this appkey",
                                       retry_at=s.clock.wall() + dt.timedelta(hours=1))
    s.denied = {"getFaultAlarmInfo": s.clock.wall() + dt.timedelta(hours=1)}
    s.ask(1)
    s.cloud.run_due()
    [answer] = s.answers()
    assert answer["status"] == "ok" and s.polls == [None]
    assert "getFaultAlarmInfo" in answer["data"]["not_polled"]["faults"]
    s.denied = {}                               # another failure of the fault query still fails
    s.fault_failure = RuntimeError("garbage")
    s.clock.advance(10)
    s.ask(2)
    s.cloud.run_due()
    assert s.answers()[1]["status"] == "error" and "garbage" in s.answers()[1]["error"]
