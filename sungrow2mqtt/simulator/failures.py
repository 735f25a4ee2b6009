"""Failures on demand (:meth:`SimulatorServer.fail_next`): what a hostile cloud or network does.

HTTP modes replace or disturb the answer of the next Open API call: ``http500``/``http503`` (an
nginx error page), ``garbage`` (a 200 that is not JSON), ``timeout`` (no answer, the connection
dropped after ``delay`` s), ``code`` (an envelope with result code ``code``), ``ratelimit429``,
``trickle`` (the real answer, one byte every ``delay`` s), ``redirect`` (HTTP ``code``, 307 by
default, to ``location`` + the request path) and ``huge`` (the real answer padded with whitespace
to ``size`` bytes, still valid JSON).  Answer modes change the content and wait for a call they
apply to: ``endless_pages`` (a paged service ignores ``curPage`` and claims 10^9 rows) and
``surrogate`` (plant and device names end in a lone UTF-16 surrogate, JSON-escaped as
``\\ud83c``).  ``service`` narrows any failure to calls of one service.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Deque, Optional, Sequence

HTTP_MODES = ("http500", "http503", "garbage", "timeout", "code", "ratelimit429", "trickle",
              "redirect", "huge")
ANSWER_MODES = ("endless_pages", "surrogate")
FAILURE_MODES = HTTP_MODES + ANSWER_MODES
REDIRECTS = ("301", "302", "303", "307", "308")
ENDLESS_ROWS = 10 ** 9
SURROGATE = "\ud83c"          # the first half of an emoji cut in two (U+1F31E is \ud83c\udf1e)
NAME_FIELDS = frozenset({"ps_name", "device_name"})
DEFAULT_DELAY = {"timeout": 5.0, "trickle": 2.0}
DEFAULT_SIZE = 64 * 1024 * 1024
DEFAULT_LOCATION = "http://sungrow-redirect.invalid"


@dataclass(frozen=True)
class Failure:
    """One injected failure; ``service`` None means any service."""

    mode: str
    code: Optional[str] = None
    delay: float = 0.0
    size: int = DEFAULT_SIZE
    location: str = DEFAULT_LOCATION
    service: Optional[str] = None

    @classmethod
    def create(cls, mode: str, code: Optional[str] = None, delay: Optional[float] = None,
               size: Optional[int] = None, location: Optional[str] = None,
               service: Optional[str] = None) -> Failure:
        """A checked failure; the mode's defaults fill what is not given."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAILURE_MODES)}")
        if mode == "code" and not code:
            raise ValueError("mode 'code' needs a result code")
        if mode == "redirect":
            code = str(code or "307")
            if code not in REDIRECTS:
                raise ValueError(f"a redirect's code must be one of {', '.join(REDIRECTS)}")
        wait = DEFAULT_DELAY.get(mode, 0.0) if delay is None else float(delay)
        if not wait >= 0:
            raise ValueError(f"delay must be 0 or more seconds, not {delay}")
        if size is not None and int(size) < 0:
            raise ValueError(f"size must be 0 or more bytes, not {size}")
        return cls(mode, str(code) if code else None, wait,
                   DEFAULT_SIZE if size is None else int(size),
                   (location or DEFAULT_LOCATION).rstrip("/"), service)


class FailureQueue:
    """Failures in the order they were asked for; each is taken by the first call it fits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: Deque[Failure] = deque()

    def add(self, failure: Failure, count: int) -> None:
        """Queue ``count`` copies of a failure."""
        with self._lock:
            self._queue.extend(failure for _ in range(int(count)))

    def take(self, service: str, modes: Sequence[str]) -> Optional[Failure]:
        """The first queued failure of one of ``modes`` that fits ``service``, removed."""
        with self._lock:
            for failure in self._queue:
                if failure.mode in modes and failure.service in (None, service):
                    self._queue.remove(failure)
                    return failure
        return None

    def clear(self) -> None:
        """Forget every queued failure."""
        with self._lock:
            self._queue.clear()


def claim_endless(result: Any) -> None:
    """A page answer that claims 10^9 rows (the rows of page 1 were asked for instead)."""
    if isinstance(result, dict) and "rowCount" in result:
        result["rowCount"] = ENDLESS_ROWS


def has_names(result: Any) -> bool:
    """Whether an answer carries a plant or device name anywhere."""
    if isinstance(result, dict):
        return any(k in NAME_FIELDS and isinstance(v, str) or has_names(v)
                   for k, v in result.items())
    if isinstance(result, list):
        return any(has_names(item) for item in result)
    return False


def cut_names(result: Any) -> Any:
    """The answer with every plant and device name ending in a lone surrogate."""
    if isinstance(result, dict):
        return {k: f"{v} {SURROGATE}" if k in NAME_FIELDS and isinstance(v, str) else cut_names(v)
                for k, v in result.items()}
    if isinstance(result, list):
        return [cut_names(item) for item in result]
    return result
