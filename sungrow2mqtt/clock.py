"""The two clocks of the bridge, injected so tests move time instead of sleeping.

Periodic work runs on the monotonic clock: it never jumps, so a clock change (summer time ending,
an NTP step) can neither stall a poll nor fire it early.  The wall clock (aware, UTC) is only for
what people read: the times in ``bridge/info`` and in log lines about pauses.
"""
from __future__ import annotations

import datetime as dt
import time
from typing import Optional


def utc_now() -> dt.datetime:
    """The current time, aware and in UTC."""
    return dt.datetime.now(dt.timezone.utc)


class Clock:
    """The real clocks; a test passes a subclass whose time it moves."""

    def monotonic(self) -> float:
        """Seconds that only ever go forward, for deadlines and durations."""
        return time.monotonic()

    def wall(self) -> dt.datetime:
        """The time of day, aware, for timestamps people read."""
        return utc_now()


def iso(moment: Optional[dt.datetime]) -> Optional[str]:
    """A timestamp for JSON and log lines, to the second."""
    return moment.isoformat(timespec="seconds") if moment else None
