"""The simulator's clocks: the plant clock the data follows, and the gateway's anti-replay clock.

The plant clock can be *pinned*: it starts at a chosen instant and runs on at real speed, so tests
see the same time of day whatever the wall clock says (midnight, before sunrise, a DST change).
The anti-replay check (E913) and ``GET /timestamp`` keep the real clock: the client signs its
requests with the machine's time, and comparing that with a pinned clock would turn every
encrypted call into E913 plus a ``/timestamp`` retry, so exact call counts would no longer be.
A clock offset (:meth:`SimClock.set_offset`, the old ``set_clock_offset``) moves both clocks, so it
still provokes E913 and moves readings, token lifetimes and quota hours.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Optional, Tuple, Union

Instant = Union[float, int, dt.datetime]


def epoch_seconds(when: Instant) -> float:
    """Epoch seconds of an aware date-time or a number; a naive date-time is refused."""
    if isinstance(when, dt.datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError(f"start time {when.isoformat()} needs a UTC offset, "
                             "e.g. 2026-06-17T12:00:00+01:00")
        return when.timestamp()
    if isinstance(when, bool) or not isinstance(when, (int, float)):
        raise ValueError(f"start time must be an aware datetime or epoch seconds, not {when!r}")
    return float(when)


def parse_instant(text: str) -> float:
    """``2026-06-17T12:00:00+01:00`` (or ``...Z``) or epoch seconds, as epoch seconds."""
    raw = text.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith("Z") else raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a time: expected ISO 8601 with a UTC offset, "
                         "e.g. 2026-06-17T12:00:00+01:00, or epoch seconds") from None
    return epoch_seconds(moment)


class SimClock:
    """A plant clock pinned to ``start`` (or the wall clock when None), plus a shared offset."""

    def __init__(self, start: Optional[Instant] = None) -> None:
        self.start: Optional[float] = None if start is None else epoch_seconds(start)
        self._lock = threading.Lock()
        self._pin: Tuple[Optional[float], float] = (self.start, time.monotonic())
        self._offset = 0.0

    def now(self) -> float:
        """Plant time (UTC epoch seconds): readings, faults, tokens, locks and quota hours."""
        pinned, at = self._pin
        base = time.time() if pinned is None else pinned + (time.monotonic() - at)
        return base + self._offset

    def gateway_now(self) -> float:
        """The real clock plus the offset: E913's anti-replay check and ``GET /timestamp``."""
        return time.time() + self._offset

    def pin(self, when: Optional[Instant]) -> None:
        """Let the plant clock read ``when`` now and run on from there; None follows the wall."""
        epoch = None if when is None else epoch_seconds(when)
        with self._lock:
            self._pin = (epoch, time.monotonic())

    def set_offset(self, seconds: float) -> None:
        """Run both clocks ahead (positive) or behind by ``seconds``."""
        self._offset = float(seconds)

    def reset(self) -> None:
        """No offset, and the plant clock back at its start."""
        self._offset = 0.0
        self.pin(self.start)
