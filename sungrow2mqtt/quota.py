"""Call-quota arithmetic: how many Open API calls an hour a polling setup spends, and how fast
a fleet can be polled without running out.

The Open API counts every call against an hourly quota (``getOpenApiCallInfo``; over it the
cloud answers E999 until the next full hour), so the polling intervals must fit the quota with
room to spare for refresh requests, retries and the ``check`` command.  Pure functions, no I/O.
"""
from __future__ import annotations

import math

__all__ = ["MIN_POLL_INTERVAL", "calls_per_hour", "fastest_safe_interval"]

SECONDS_PER_HOUR = 3600
MIN_POLL_INTERVAL = 10   # the lowest polling.realtime / polling.faults the configuration accepts


def _positive(name: str, value: float) -> None:
    """Reject intervals that would mean polling infinitely often (or never)."""
    if not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


def _not_negative(name: str, value: float) -> None:
    """Reject call counts that could only come from a bug in the caller."""
    if not value >= 0 or math.isinf(value):
        raise ValueError(f"{name} must be zero or more, got {value!r}")


def calls_per_hour(realtime_interval: float, faults_interval: float, devices_interval: float,
                   realtime_calls: float, faults_calls: float, devices_calls: float) -> float:
    """Calls an hour spent by polling each kind every ``*_interval`` seconds at ``*_calls`` each.

    >>> calls_per_hour(300, 300, 3600, 6, 1, 3)
    87.0
    """
    for name, interval in (("realtime_interval", realtime_interval),
                           ("faults_interval", faults_interval),
                           ("devices_interval", devices_interval)):
        _positive(name, interval)
    for name, calls in (("realtime_calls", realtime_calls), ("faults_calls", faults_calls),
                        ("devices_calls", devices_calls)):
        _not_negative(name, calls)
    return (SECONDS_PER_HOUR * realtime_calls / realtime_interval
            + SECONDS_PER_HOUR * faults_calls / faults_interval
            + SECONDS_PER_HOUR * devices_calls / devices_interval)


def fastest_safe_interval(hourly_quota: float, realtime_calls: float, faults_calls: float,
                          devices_calls: float = 0, devices_interval: float = SECONDS_PER_HOUR,
                          margin: float = 0.8, minimum: int = MIN_POLL_INTERVAL) -> int:
    """The smallest whole-second realtime interval, faults polled as often, within the quota.

    "Within" means ``calls_per_hour(s, s, devices_interval, ...) <= margin * hourly_quota``;
    the result is never below ``minimum`` (the configuration's lower bound by default, pass 1
    for the raw figure).  Raises ValueError when the device refreshes alone exceed the budget.

    >>> fastest_safe_interval(1000, 6, 1, 3)
    32
    """
    _positive("hourly_quota", hourly_quota)
    _positive("devices_interval", devices_interval)
    if not 0 < margin <= 1:
        raise ValueError(f"margin must be in (0, 1], got {margin!r}")
    if minimum < 1:
        raise ValueError(f"minimum must be at least 1 second, got {minimum!r}")
    for name, calls in (("realtime_calls", realtime_calls), ("faults_calls", faults_calls),
                        ("devices_calls", devices_calls)):
        _not_negative(name, calls)
    budget = margin * hourly_quota
    spare = budget - SECONDS_PER_HOUR * devices_calls / devices_interval
    per_cycle = realtime_calls + faults_calls
    if spare < 0 or (spare == 0 and per_cycle > 0):
        raise ValueError(f"refreshing the devices every {devices_interval:g} s alone needs more "
                         f"than {margin:g} x {hourly_quota:g} calls an hour")
    if per_cycle == 0:
        return minimum
    seconds = max(minimum, math.ceil(SECONDS_PER_HOUR * per_cycle / spare))

    def fits(interval: int) -> bool:
        return calls_per_hour(interval, interval, devices_interval, realtime_calls,
                              faults_calls, devices_calls) <= budget
    while not fits(seconds):              # float rounding may leave the ceiling one short
        seconds += 1
    while seconds > minimum and fits(seconds - 1):   # ... or one too long
        seconds -= 1
    return seconds
