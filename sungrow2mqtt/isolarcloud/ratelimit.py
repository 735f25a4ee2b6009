"""A client-side copy of the gateway's token bucket, so that concurrent calls never meet HTTP 429.

The gateway reports its bucket on every answer (``X-Ratelimit-Burst-Capacity``, ``-Remaining``,
``-Replenish-Rate``; the document shows 15 and 10 per second).  Every call *reserves* a token
here before it is sent, so calls started together queue in order instead of racing for the last
tokens; the copy keeps a little headroom below the gateway's figures, and starts conservative
until the first answer tells the real ones.
"""
from __future__ import annotations

import math
import threading
import time
from typing import Callable, Mapping, Optional

DEFAULT_BURST = 5.0           # before any header was seen: a third of the documented 15 ...
DEFAULT_RATE = 5.0            # ... and half of the documented 10 per second
RATE_HEADROOM = 0.9           # refill 10 % slower than the gateway says it does
MAX_FIGURE = 1_000_000.0      # a larger figure is no bucket anyone runs: ignored


def header_figure(headers: Mapping[str, str], name: str) -> Optional[float]:
    """A finite, non-negative, plausible ``X-Ratelimit-*`` figure, or None (absent or garbage:
    ``inf``, ``NaN``, negative, huge, text)."""
    try:
        value = float(str(headers[name]).strip())
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) and 0 <= value <= MAX_FIGURE else None


class RateBucket:
    """Tokens for calls: :meth:`reserve` before sending, :meth:`observe` each answer.

    Thread-safe.  Tokens may go below zero: that is the queue of reservations waiting to send.
    """

    def __init__(self, *, headroom: int = 2, clock: Callable[[], float] = time.monotonic) -> None:
        self.headroom = headroom
        self.capacity = DEFAULT_BURST
        self.rate = DEFAULT_RATE
        self._clock = clock
        self._tokens = DEFAULT_BURST
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def reserve(self) -> float:
        """Take a token; returns the seconds to wait before sending (0 when one is there)."""
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            return max(0.0, -self._tokens / self.rate)

    def cancel(self) -> None:
        """Give back a reserved token whose call was not sent."""
        with self._lock:
            self._tokens = min(self.capacity, self._tokens + 1.0)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Resize from an answer's headers, as if the bucket had always had that size; fewer
        tokens left at the gateway than here (another client of the appkey, a restart) lowers
        the count here."""
        burst = header_figure(headers, "X-Ratelimit-Burst-Capacity")
        rate = header_figure(headers, "X-Ratelimit-Replenish-Rate")
        remaining = header_figure(headers, "X-Ratelimit-Remaining")
        with self._lock:
            self._refill()
            if burst is not None and burst >= 1:
                capacity = max(1.0, burst - self.headroom)
                self._tokens += capacity - self.capacity
                self.capacity = capacity
            if rate is not None and rate > 0:
                self.rate = max(rate * RATE_HEADROOM, 1.0 / 60)
            if remaining is not None:
                self._tokens = min(self._tokens, remaining - self.headroom)
            self._tokens = min(self._tokens, self.capacity)

    def refused(self) -> None:
        """The gateway answered 429: its bucket is empty, so the next call waits for a refill."""
        with self._lock:
            self._refill()
            self._tokens = min(self._tokens, -float(self.headroom))
