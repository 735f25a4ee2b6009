"""The poller on an injected clock: deadlines, clock changes, trouble episodes, pauses."""
from __future__ import annotations

import datetime as dt
import logging
import math
from pathlib import Path
from typing import Dict, List, Optional
from zoneinfo import ZoneInfo

import pytest

from component_support import POLLING, FakeClock
from sungrow2mqtt.components.fleet import FleetListener, FleetState
from sungrow2mqtt.components.poller import CloudPaused, Job, Poller
from sungrow2mqtt.isolarcloud.errors import (
    ApiNotAuthorised,
    LoginError,
    RateLimitError,
    ServerError,
    next_rate_limit_window,
)

BERLIN = ZoneInfo("Europe/Berlin")
INTERVALS = {"devices": 3600, "realtime": 60, "faults": 300}


class Recorder:
    """Jobs that note the monotonic time they ran at; ``failure`` makes every job raise it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.runs: Dict[str, List[float]] = {kind: [] for kind in INTERVALS}
        self.failure: Exception = None  # type: ignore[assignment]

    def job(self, kind: str) -> Job:
        def work() -> int:
            self.runs[kind].append(self.clock.monotonic())
            if self.failure is not None:
                raise self.failure
            return 1
        return Job(kind, INTERVALS[kind], work)


def make_poller(clock: FakeClock, pause_file: Optional[Path] = None):
    fleet, recorder = FleetState(), Recorder(clock)
    poller = Poller(fleet, [recorder.job(k) for k in INTERVALS], clock,
                    api_calls=lambda: sum(map(len, recorder.runs.values())), polling=POLLING,
                    pause_file=pause_file)
    poller.start()
    return poller, fleet, recorder


def run_for(poller: Poller, clock: FakeClock, seconds: float, **wall_jumps: float) -> None:
    """The worker loop, on the fake clock: wait until due (at most a second), run what is due.

    ``wall_jumps`` maps "at_<seconds>" to a shift of the wall clock (seconds) at that moment.
    """
    end = clock.monotonic() + seconds
    jumps = {clock.monotonic() + float(k[3:]): v for k, v in wall_jumps.items()}
    while clock.monotonic() < end:
        poller.run_due()
        clock.advance(min(1.0, poller.seconds_until_due()))
        for moment in [m for m in jumps if m <= clock.monotonic()]:
            clock.set_wall(dt.timedelta(seconds=jumps.pop(moment)))


def assert_regular(recorder: Recorder, start: float, seconds: float) -> None:
    for kind, interval in INTERVALS.items():
        runs = recorder.runs[kind]
        assert runs[0] == start, kind
        assert [b - a for a, b in zip(runs, runs[1:])] == [interval] * (len(runs) - 1), kind
        assert len(runs) == math.ceil(seconds / interval), kind


@pytest.mark.parametrize("change", [
    dt.datetime(2025, 3, 30, 1, 0, tzinfo=dt.timezone.utc),    # 02:00 CET -> 03:00 CEST
    dt.datetime(2025, 10, 26, 1, 0, tzinfo=dt.timezone.utc),   # 03:00 CEST -> 02:00 CET
], ids=["spring-forward", "autumn-back"])
def test_polls_keep_their_interval_across_a_summer_time_change(change):
    clock = FakeClock(change - dt.timedelta(minutes=30), zone=BERLIN)
    poller, fleet, recorder = make_poller(clock)
    start = clock.monotonic()
    before = clock.wall()
    run_for(poller, clock, 7200)
    assert_regular(recorder, start, 7200)
    assert clock.wall().utcoffset() != before.utcoffset()        # the local clock did change
    assert fleet.snapshot().outcomes["realtime"].time == clock.wall() - dt.timedelta(
        seconds=(clock.monotonic() - recorder.runs["realtime"][-1]))


@pytest.mark.parametrize("jump", [86400, -86400, 3600, -3600], ids=str)
def test_a_wall_clock_jump_neither_stalls_nor_hurries_the_polls(jump):
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc))
    poller, fleet, recorder = make_poller(clock)
    start = clock.monotonic()
    run_for(poller, clock, 7200, at_1000=jump, at_5000=-jump)
    assert_regular(recorder, start, 7200)


def test_a_rate_limit_pauses_every_cloud_call_for_its_time_on_the_monotonic_clock(caplog):
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc))
    poller, fleet, recorder = make_poller(clock)
    recorder.failure = RateLimitError("getDeviceRealTimeData: E999 hourly limit",
                                      retry_at=clock.wall() + dt.timedelta(hours=1),
                                      endpoint="getDeviceRealTimeData", result_code="E999")
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    poller.run_due()                               # the first job meets the limit
    assert sum(map(len, recorder.runs.values())) == 1
    until = poller.paused_until()
    assert until is not None and dt.timedelta(minutes=59) < until - clock.wall() <= \
        dt.timedelta(hours=1)
    assert fleet.snapshot().paused_until == until
    with pytest.raises(CloudPaused, match="cloud calls paused until"):
        poller.call(lambda: None)
    recorder.failure = None
    clock.set_wall(dt.timedelta(days=2))           # a wall clock step does not end the pause
    run_for(poller, clock, 3540)
    assert sum(map(len, recorder.runs.values())) == 1, "the cloud was called while paused"
    run_for(poller, clock, 120)
    assert recorder.runs["realtime"] and poller.paused_until() is None
    assert fleet.snapshot().paused_until is None
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "pausing cloud calls until" in errors[0].getMessage()


def test_trouble_is_logged_once_per_episode_and_recovery_once(caplog):
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc))
    poller, fleet, recorder = make_poller(clock)
    recorder.failure = ServerError("getFaultAlarmInfo: HTTP 503")
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    run_for(poller, clock, 900)
    assert len(recorder.runs["realtime"]) == 15            # trouble does not slow the schedule
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in loud] == [
        "Cloud trouble: getFaultAlarmInfo: HTTP 503; will retry at the next poll"]
    assert fleet.snapshot().outcomes["faults"].as_dict()["outcome"] == "error"
    caplog.clear()
    recorder.failure = None
    run_for(poller, clock, 60)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        "Cloud recovered after 19 failed call(s)"]
    assert fleet.snapshot().outcomes["realtime"].as_dict()["outcome"] == "ok"


def test_a_refused_login_pauses_an_hour_and_an_unexpected_answer_is_trouble_too(caplog):
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc))
    poller, fleet, recorder = make_poller(clock)
    recorder.failure = LoginError("login: wrong password", login_state="0")
    poller.run_due()
    assert poller.paused_until() == clock.wall() + dt.timedelta(hours=1)
    clock.advance(3600)
    recorder.failure = KeyError("pageList")
    assert poller.run("faults") is None
    outcome = fleet.snapshot().outcomes["faults"]
    assert not outcome.ok and outcome.error == "unexpected KeyError: 'pageList'"


def e999(clock: FakeClock) -> RateLimitError:
    return RateLimitError("getDeviceRealTimeData: E999 hourly limit",
                          retry_at=next_rate_limit_window("E999", clock.wall()),
                          endpoint="getDeviceRealTimeData", result_code="E999")


def test_a_rate_limit_pause_survives_a_restart(tmp_path, caplog):
    pause_file = tmp_path / "pause.json"
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 20, tzinfo=dt.timezone.utc))
    poller, _, recorder = make_poller(clock, pause_file)
    recorder.failure = e999(clock)
    poller.run_due()
    assert poller.paused_until() == dt.datetime(2025, 6, 1, 13, 0, tzinfo=dt.timezone.utc)
    poller.stop()
    clock.advance(600)                              # restarted ten minutes later
    caplog.set_level(logging.WARNING, logger="sungrow2mqtt")
    caplog.clear()
    again, fleet, recorder = make_poller(clock, pause_file)
    assert again.paused_until() == dt.datetime(2025, 6, 1, 13, 0, tzinfo=dt.timezone.utc)
    assert fleet.snapshot().paused_until == again.paused_until()
    assert [r.getMessage() for r in caplog.records] == [
        "Cloud calls stay paused until 2025-06-01T13:00:00+00:00, as before the restart: "
        "getDeviceRealTimeData: E999 hourly limit"]
    with pytest.raises(CloudPaused, match="until 2025-06-01T13:00:00"):
        again.call(lambda: None)
    run_for(again, clock, 1799)
    assert not any(recorder.runs.values()), "the cloud was called inside the kept pause"
    run_for(again, clock, 2)
    assert recorder.runs["realtime"] and again.paused_until() is None
    assert not pause_file.exists()                  # recovered: nothing kept any more
    assert make_poller(clock, pause_file)[0].paused_until() is None


@pytest.mark.parametrize("content", ["", "[]", '{"until": "2025-06-01T13:00:00"}',
                                     '{"until": "tomorrow", "kind": "k", "error": "e"}'])
def test_a_kept_pause_that_is_unreadable_is_no_pause(tmp_path, content):
    pause_file = tmp_path / "pause.json"
    pause_file.write_text(content)
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 20, tzinfo=dt.timezone.utc))
    assert make_poller(clock, pause_file)[0].paused_until() is None


def test_a_kept_pause_that_has_ended_is_forgotten_and_a_login_pause_is_not_kept(tmp_path):
    pause_file = tmp_path / "pause.json"
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 20, tzinfo=dt.timezone.utc))
    poller, _, recorder = make_poller(clock, pause_file)
    recorder.failure = e999(clock)
    poller.run_due()
    clock.advance(2401)
    assert make_poller(clock, pause_file)[0].paused_until() is None
    assert not pause_file.exists()
    poller, _, recorder = make_poller(clock, pause_file)
    recorder.failure = LoginError("login: wrong password", login_state="0")
    poller.run_due()
    assert poller.paused_until() is not None and not pause_file.exists()


def test_an_api_not_authorised_is_no_episode_and_no_pause(caplog):
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc))
    fleet, runs = FleetState(), {"realtime": 0, "faults": 0}

    def realtime() -> int:
        runs["realtime"] += 1
        return 1

    def faults() -> int:
        runs["faults"] += 1
        raise ApiNotAuthorised("getFaultAlarmInfo is not authorised for this appkey",
                               retry_at=clock.wall() + dt.timedelta(hours=1),
                               endpoint="getFaultAlarmInfo", result_code="E900")
    poller = Poller(fleet, [Job("realtime", 60, realtime), Job("faults", 60, faults)], clock,
                    api_calls=lambda: sum(runs.values()), polling=POLLING)
    poller.start()
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    run_for(poller, clock, 600)
    assert runs == {"realtime": 10, "faults": 10} and poller.paused_until() is None
    assert not [r for r in caplog.records if "Cloud" in r.getMessage()]   # the client names it
    outcomes = fleet.snapshot().outcomes
    assert outcomes["realtime"].ok and not outcomes["faults"].ok
    assert "getFaultAlarmInfo is not authorised" in str(outcomes["faults"].error)


def test_a_job_whose_outcome_cannot_be_published_is_not_run_again_at_once(caplog):
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc))
    poller, fleet, recorder = make_poller(clock)

    class Broken(FleetListener):
        def on_info(self) -> None:
            raise UnicodeEncodeError("utf-8", "Sunny roof \ud83c", 11, 12,
                                     "surrogates not allowed")
    heard = []

    class Following(FleetListener):
        def on_info(self) -> None:
            heard.append(1)
    fleet.listen(Broken())
    fleet.listen(Following())
    run_for(poller, clock, 120)
    assert [len(recorder.runs[k]) for k in INTERVALS] == [1, 2, 1]
    assert fleet.snapshot().outcomes["devices"].ok and len(heard) == 2    # once per wave
    assert "Broken failed" in caplog.text


def test_a_wave_of_jobs_tells_of_its_outcomes_once_with_all_of_them():
    clock = FakeClock(dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc))
    poller, fleet, recorder = make_poller(clock)
    told: List[Dict[str, Optional[bool]]] = []

    class Following(FleetListener):
        def on_info(self) -> None:
            told.append({k: o.ok for k, o in fleet.snapshot().outcomes.items()})
    fleet.listen(Following())
    poller.run_wave({"realtime": None, "faults": None})
    assert told == [{"devices": None, "realtime": True, "faults": True}]
    recorder.failure = ServerError("the cloud is down")
    poller.run_wave({"realtime": None, "faults": None})
    assert told[1:] == [{"devices": None, "realtime": False, "faults": False}]
    poller.run("realtime")                            # a wave of one job, told once as well
    assert len(told) == 3
