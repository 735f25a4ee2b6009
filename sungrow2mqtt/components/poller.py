"""When the cloud is polled, and what happens when it is in trouble.

Jobs run on monotonic deadlines, so no change of the wall clock (summer time ending, an NTP step)
stalls or hurries a poll.  Each episode of cloud trouble is logged once, whichever job meets it; a
rate limit or a refused login pauses every cloud call for as long as the cloud says, measured on
the monotonic clock too.  Jobs due together run as one wave: a job with an ``early`` part starts
its calls with the wave, beside the jobs before it (the fault query beside the realtime calls), so
a cycle costs about one round trip.  A rate-limit pause is kept in the state directory with its
end time, so a restarted bridge does not call the cloud inside it either.  An API this appkey
may not call (ApiNotAuthorised) is no episode: the client names it once and holds back that API
alone.  A job never raises: its outcome goes into the fleet state.  Until the device discovery
job has found the fleet, it is retried within seconds (growing, capped), not after its hour: a
bridge that starts while the internet is not up yet publishes soon after it is.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Set, Tuple, TypeVar

from sungrow2mqtt.clock import Clock, iso
from sungrow2mqtt.components.fleet import FleetState, FleetUnknown, PollOutcome
from sungrow2mqtt.components.state_file import StateFile
from sungrow2mqtt.config import PollingConfig
from sungrow2mqtt.errors import Sungrow2MqttError
from sungrow2mqtt.isolarcloud.errors import (
    ApiError,
    ApiNotAuthorised,
    LoginError,
    RateLimitError,
)
from sungrow2mqtt.model import publishable
from sungrow2mqtt.quota import calls_per_hour, fastest_safe_interval

log = logging.getLogger(__name__)

LOGIN_PAUSE = 3600.0   # seconds: a refused login is not retried sooner, accounts get locked
MAX_KEPT_PAUSE = 86400.0   # the longest pause the cloud asks for (E998: the next UTC day)
QUOTA_MARGIN = 0.8     # share of the hourly quota polling may use
DISCOVERY_RETRY = 5.0          # seconds: the first retry of a device discovery that found nothing
DISCOVERY_RETRY_CAP = 300.0    # ... doubling up to this (or the job's interval, if shorter)
T = TypeVar("T")
Run = Tuple[Any, Optional[PollOutcome]]     # a job's result and outcome; (None, None): skipped


class CloudPaused(Sungrow2MqttError):
    """A request that would call the cloud while cloud calls are paused."""


@dataclass(frozen=True)
class Job:
    """One kind of periodic cloud work (``kind`` names it in ``bridge/info``).

    ``early`` starts the job's calls at once and returns the work that lands them, run once the
    jobs before it in the wave are done (its answers may need their results).  ``calls`` counts
    the job's own API calls so far (those of its services): calls that overlap other jobs of the
    wave still count for the job that made them.  Without it, every call while the job runs
    counts for it.  ``discovery``: the job that finds the fleet; while no device is known, its
    failure is retried within seconds, and jobs that had nothing to poll run as soon as it
    succeeds.
    """

    kind: str
    interval: float
    work: Callable[[], Any]
    early: Optional[Callable[[], Callable[[], Any]]] = None
    calls: Optional[Callable[[], int]] = None
    discovery: bool = False


class Poller:
    """Runs the jobs when due, each through the same trouble handling as any cloud call."""

    def __init__(self, fleet: FleetState, jobs: Sequence[Job], clock: Clock, *,
                 api_calls: Callable[[], int], polling: PollingConfig,
                 pause_file: Optional[Path] = None) -> None:
        self._fleet = fleet
        self._jobs: Dict[str, Job] = {job.kind: job for job in jobs}
        self._clock = clock
        self._api_calls = api_calls
        self._polling = polling
        self._due: Dict[str, float] = {}              # kind -> monotonic deadline
        self._fit_checked = False
        self._trouble: Optional[str] = None           # the current episode's kind of failure
        self._trouble_count = 0
        self._pause_end: Optional[float] = None       # monotonic
        self._pause_reason = ""
        self._pause_file = StateFile(pause_file)
        self._retry: Optional[float] = None           # seconds until discovery is tried again
        self._waiting: Set[str] = set()               # jobs that found no device to poll
        self.last_cloud_poll = float("-inf")          # monotonic end of the last job's calls

    def start(self) -> None:
        """Every job is due now: the first cycle runs at once, unless a kept pause lasts."""
        now = self._clock.monotonic()
        self._due = {kind: now for kind in self._jobs}
        self._resume_pause()

    def stop(self) -> None:
        """No job is due any more."""
        self._due = {}

    def run_due(self) -> None:
        """Run every job whose deadline has come as one wave, in the order the jobs were given.

        The next deadlines are set before the wave runs, so a job that fails in a way nobody
        foresaw is not run again at once.  The first time every job ran, the quota fit is checked.
        """
        now = self._clock.monotonic()
        due = [kind for kind in self._jobs if self._due.get(kind, float("inf")) <= now]
        if not due:
            return
        for kind in due:
            interval = self._jobs[kind].interval
            self._due[kind] += interval
            if self._due[kind] <= now:                         # overran: skip the missed beats
                self._due[kind] = now + interval
        runs = self._wave(dict.fromkeys(due))
        for kind, (_, outcome) in runs.items():
            if self._jobs[kind].discovery:
                self._discovered(kind, outcome is not None and outcome.ok is True)
        if len(due) == len(self._jobs) and not self._fit_checked:
            self._fit_checked = True
            self.check_quota_fit()

    def _discovered(self, kind: str, ok: bool) -> None:
        """After a discovery run: retry soon while the fleet is unknown, or wake the waiting."""
        if self._fleet.devices():
            self._retry = None
            now = self._clock.monotonic()
            for waiting in self._waiting:
                if waiting in self._due:
                    self._due[waiting] = now
            self._waiting.clear()
        elif not ok:
            cap = min(DISCOVERY_RETRY_CAP, self._jobs[kind].interval)
            self._retry = DISCOVERY_RETRY if self._retry is None else min(cap, 2 * self._retry)
            self._due[kind] = self._clock.monotonic() + self._retry

    def seconds_until_due(self) -> float:
        """How long the worker may wait before the next job (infinite when stopped)."""
        if not self._due:
            return float("inf")
        return max(0.0, min(self._due.values()) - self._clock.monotonic())

    def run_cycle(self) -> None:
        """Every job once, now, as one wave (``run --once``), then the quota check."""
        self.run_wave(dict.fromkeys(self._jobs))
        self._fit_checked = True
        self.check_quota_fit()

    def run(self, kind: str, work: Optional[Callable[[], Any]] = None) -> Any:
        """Run one job now (``work`` instead of the job's own); its result, None when it failed
        or was skipped because cloud calls are paused."""
        return self.run_wave({kind: work})[kind]

    def run_wave(self, works: Mapping[str, Optional[Callable[[], Any]]]) -> Dict[str, Any]:
        """Run these jobs now, in order (a work given replaces the job's own); the early parts of
        the others start first.  Results by kind, None where a job failed or was skipped."""
        return {kind: result for kind, (result, _) in self._wave(works).items()}

    def attempt(self, works: Mapping[str, Optional[Callable[[], Any]]]
                ) -> Dict[str, PollOutcome]:
        """Run these jobs now as one wave for a request: the outcomes of this very run;
        CloudPaused while cloud calls are paused (no job is run, and no earlier outcome passes
        for this one's)."""
        self.refuse_if_paused()
        runs = self._wave(works)
        if any(outcome is None for _, outcome in runs.values()):
            self.refuse_if_paused()                      # a pause began inside the wave
            # ... and has already lapsed (an E999 in an hour's last instant): still no outcome
            raise CloudPaused(f"cloud calls were paused during this poll: {self._pause_reason}")
        return {kind: outcome for kind, (_, outcome) in runs.items() if outcome is not None}

    def _wave(self, works: Mapping[str, Optional[Callable[[], Any]]]) -> Dict[str, Run]:
        """Run the jobs in order; the early parts start with the wave, or, while the fleet is
        unknown, once a job before them has found it (a fault query needs the devices).  Their
        outcomes go out together, in one ``bridge/info``."""
        counters = {kind: self._jobs[kind].calls or self._api_calls for kind in works}
        before = {kind: counter() for kind, counter in counters.items()}
        early: Optional[Dict[str, Tuple[Optional[Callable[[], Any]], float]]] = None
        runs: Dict[str, Run] = {}
        with self._fleet.info_once():
            for kind, work in works.items():
                if early is None and self._fleet.devices():
                    started = self._clock.monotonic()
                    early = {k: (self._start_early(k), started) for k, w in works.items()
                             if w is None and k not in runs}
                landing, begun = (early or {}).get(kind, (None, 0.0))
                if landing is None:                               # its calls start now
                    before[kind], begun = counters[kind](), self._clock.monotonic()
                runs[kind] = self._run_one(kind, landing or work or self._jobs[kind].work,
                                           counters[kind], before[kind], begun)
        return runs

    def _start_early(self, kind: str) -> Optional[Callable[[], Any]]:
        """The calls of a job with an early part, started now (not while paused), and the work
        that lands them; None for a job without one."""
        job = self._jobs[kind]
        if job.early is None or self.paused_until() is not None:
            return None
        try:
            return job.early()
        except Exception as exc:  # noqa: BLE001 - it becomes the job's failure, handled there
            error = exc

        def failed() -> Any:
            raise error
        return failed

    def _run_one(self, kind: str, work: Callable[[], Any], count: Callable[[], int],
                 before: int, started: float) -> Run:
        if self.paused_until() is not None:
            log.debug("Skipping %s poll: %s", kind, self._paused_text())
            self._fleet.heartbeat()
            return None, None
        result, error = None, None
        try:
            result = work()
        except FleetUnknown as exc:          # nothing to poll yet: no cloud trouble, no recovery
            self._waiting.add(kind)
            error = str(exc)
            log.debug("Not polling %s: %s", kind, exc)
        except Sungrow2MqttError as exc:     # the cloud's errors and ours about its answers
            self._cloud_trouble(exc)
            error = publishable(str(exc))
        except Exception as exc:  # an answer we did not expect must not stop the schedule
            self._cloud_trouble(exc)
            error = publishable(f"unexpected {type(exc).__name__}: {exc}")
        else:
            self._cloud_recovered()
        self.last_cloud_poll = self._clock.monotonic()
        outcome = PollOutcome(time=self._clock.wall(), ok=error is None, error=error,
                              api_calls=count() - before,
                              duration_s=self.last_cloud_poll - started)
        self._fleet.record_outcome(kind, outcome)
        return result, outcome

    def call(self, work: Callable[[], T]) -> T:
        """Cloud work of a request: refused while paused, its trouble counted like a poll's."""
        self.refuse_if_paused()
        try:
            return work()
        except ApiError as exc:
            self._cloud_trouble(exc)
            raise
        finally:
            self.last_cloud_poll = self._clock.monotonic()

    def refuse_if_paused(self) -> None:
        """CloudPaused, naming until when and why, while cloud calls are paused."""
        if self.paused_until() is not None:
            raise CloudPaused(self._paused_text())

    def _paused_text(self) -> str:
        return f"cloud calls paused until {iso(self.paused_until())}: {self._pause_reason}"

    def paused_until(self) -> Optional[dt.datetime]:
        """When cloud calls may start again (wall clock, for people), or None when they may now.

        A pause that has run out is forgotten here, so nothing shows a pause in the past.
        """
        if self._pause_end is None:
            return None
        remaining = self._pause_end - self._clock.monotonic()
        if remaining <= 0:
            self._pause_end = None
            self._fleet.set_pause(None)
            return None
        return self._clock.wall() + dt.timedelta(seconds=remaining)

    def _pause(self, seconds: float, reason: str) -> None:
        """Pause cloud calls; a pause that would already be over (a limit lifting as it is
        reported) is none."""
        if seconds <= 0:
            return
        self._pause_end = self._clock.monotonic() + seconds
        self._pause_reason = publishable(reason)
        self._fleet.set_pause(self._clock.wall() + dt.timedelta(seconds=seconds))

    def _rate_limited(self, exc: RateLimitError, kind: str) -> None:
        """Pause until the limit lifts (UTC, on this clock), and keep that for a restart."""
        self._pause(exc.retry_after(self._clock.wall()), f"rate limited ({exc})")
        self._pause_file.save({"until": iso(exc.retry_at), "kind": kind, "error": str(exc)})

    def _resume_pause(self) -> None:
        """The rate-limit pause a previous run kept, if it has not ended yet."""
        kept = self._pause_file.load()
        try:
            until = dt.datetime.fromisoformat(kept["until"])
            kind, error = str(kept["kind"]), str(kept["error"])
            remaining = (until - self._clock.wall()).total_seconds()   # TypeError: no zone
        except (TypeError, KeyError, ValueError):
            remaining = 0.0
        if remaining <= 0:
            self._pause_file.clear()
            return
        self._pause(min(remaining, MAX_KEPT_PAUSE), f"rate limited ({error})")
        self._trouble, self._trouble_count = kind, 1
        log.warning("Cloud calls stay paused until %s, as before the restart: %s", iso(until),
                    error)

    def _cloud_trouble(self, exc: Exception) -> None:
        # one episode per kind of failure, whichever endpoint happens to meet it
        if isinstance(exc, ApiNotAuthorised):
            return              # one API held back, named by the client; the others work
        kind = f"{type(exc).__name__}:{getattr(exc, 'result_code', None) or ''}"
        if isinstance(exc, RateLimitError):
            self._rate_limited(exc, kind)
        elif isinstance(exc, LoginError):  # a locked account too: never called a rate limit
            self._pause(LOGIN_PAUSE, f"login refused ({exc})")
        self._trouble_count += 1
        if kind != self._trouble:
            self._trouble = kind
            until = self.paused_until()
            pause = (f"; pausing cloud calls until {iso(until)}" if until
                     else "; will retry at the next poll")
            log.error("Cloud trouble: %s%s", publishable(str(exc)), pause,
                      exc_info=not isinstance(exc, Sungrow2MqttError))
        else:
            log.debug("Cloud trouble continues: %s", publishable(str(exc)))

    def _cloud_recovered(self) -> None:
        if self._trouble:
            log.warning("Cloud recovered after %d failed call(s)", self._trouble_count)
            self._pause_file.clear()
        self._trouble, self._trouble_count, self._pause_end = None, 0, None
        self._fleet.set_pause(None)

    def check_quota_fit(self) -> Optional[float]:
        """Log how many calls an hour the configured polling costs against the hourly quota.

        Warns when it would use more than 80 % of the quota and names the fastest safe interval.
        Returns the calls per hour (None when not yet measurable).
        """
        snapshot = self._fleet.snapshot()
        return quota_fit(self._polling, snapshot.outcomes, snapshot.quota.get("per_hour"))


def quota_fit(polling: PollingConfig, outcomes: Mapping[str, PollOutcome],
              quota: Optional[int]) -> Optional[float]:
    """:meth:`Poller.check_quota_fit` on given figures."""
    if not all(outcomes[k].ok for k in ("devices", "realtime", "faults")):
        return None
    calls = {k: outcomes[k].api_calls for k in ("realtime", "faults", "devices")}
    per_hour = calls_per_hour(polling.realtime, polling.faults, polling.devices,
                              calls["realtime"], calls["faults"], calls["devices"])
    if not quota:
        log.info("Polling costs about %.0f API calls an hour (quota unknown)", per_hour)
    elif per_hour > QUOTA_MARGIN * quota:
        try:
            safest = fastest_safe_interval(quota, calls["realtime"], calls["faults"],
                                           calls["devices"], polling.devices,
                                           margin=QUOTA_MARGIN)
            advice = f"poll every {safest} s or more (polling.realtime and polling.faults)"
        except ValueError:
            advice = "poll less often and refresh devices less often (polling.devices)"
        log.warning("Polling as configured costs about %.0f API calls an hour, more than "
                    "%.0f %% of the hourly quota of %d: %s", per_hour, QUOTA_MARGIN * 100,
                    quota, advice)
    else:
        log.info("Polling costs about %.0f API calls an hour of a quota of %d", per_hour, quota)
    return per_hour
