"""Refresh requests coalesced into spaced polls, on a clock the test moves."""
from __future__ import annotations

import datetime as dt
from typing import List, Optional, Set

import pytest

from component_support import POLLING, FakeClock, RecordingMqtt
from sungrow2mqtt.clock import utc_now
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.poller import Job, Poller
from sungrow2mqtt.components.refresh import RefreshCoalescer
from sungrow2mqtt.components.request_api import BadRequest, Request, RequestApi
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.isolarcloud.errors import RateLimitError
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
        self.poller = Poller(self.fleet, [Job("realtime", 60, self.poll), Job("faults", 60, int)],
                             self.clock, api_calls=lambda: len(self.polls), polling=POLLING)
        self.mqtt = RecordingMqtt()
        api = RequestApi(self.mqtt, TOPICS)   # type: ignore[arg-type]
        self.refresh = RefreshCoalescer(self.fleet, self.poller, self.poll, api, self.clock,
                                        spacing=5)

    def poll(self, ps_ids: Optional[Set[int]] = None) -> int:
        self.polls.append(ps_ids)
        if self.failure:
            raise self.failure
        return 1

    def ask(self, transaction: int, **params: int) -> None:
        self.refresh.request(Request("refresh", dict(params), transaction))

    def answers(self):
        return self.mqtt.on(TOPICS.response("refresh"))


def test_refreshes_inside_the_spacing_share_one_poll_at_its_end():
    s = Setup()
    s.poller.run("realtime")                       # a poll just happened
    s.clock.advance(2)
    s.ask(1)
    s.ask(2, ps_id=101)
    s.refresh.run_due()
    assert len(s.polls) == 1 and not s.answers()   # deferred, not refused
    assert s.refresh.seconds_until_due() == 3
    s.clock.advance(3)
    s.refresh.run_due()
    assert s.polls[1:] == [None]                   # one poll for both, all plants
    [first, second] = s.answers()
    assert first["data"]["coalesced"] == 2 and first["data"]["throttled"] is True
    assert (first["transaction"], second["transaction"]) == (1, 2)
    assert s.refresh.seconds_until_due() == float("inf")


def test_a_refresh_of_some_plants_polls_only_those():
    s = Setup()
    s.ask(1, ps_id=202)
    s.refresh.run_due()
    assert s.polls == [{202}] and s.answers()[0]["data"]["plants"] == [202]
    with pytest.raises(BadRequest, match="unknown plant 42; bridged plants: 101, 202"):
        s.ask(2, ps_id=42)


def test_while_rate_limited_a_refresh_is_answered_at_once_without_calling_the_cloud():
    s = Setup()
    s.failure = RateLimitError("E999", retry_at=utc_now() + dt.timedelta(hours=1),
                               result_code="E999")
    s.ask(1)
    s.refresh.run_due()
    assert s.answers()[0]["status"] == "error" and "E999" in s.answers()[0]["error"]
    s.ask(2)
    assert len(s.polls) == 1
    assert s.answers()[1]["error"].startswith("rate limited: cloud calls paused until ")
