"""Keep secrets out of logs, reprs, exceptions and MQTT payloads.

A :class:`Secret` shows ``***`` wherever it is printed; only :meth:`Secret.reveal` gives the value,
and only the transport calls it.  :class:`RedactingFilter` is the second line of defence: every
log record is scrubbed of every value registered with :func:`register`, whatever the code logged.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Optional, Set

MASK = "***"
_known: Set[str] = set()
_known_lock = threading.Lock()


class Secret:
    """A string that never shows itself by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def reveal(self) -> str:
        """The real value, for the one place that must send it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK


def reveal(value: Optional[Any]) -> Optional[str]:
    """``value.reveal()`` for a :class:`Secret`, the value itself otherwise."""
    return value.reveal() if isinstance(value, Secret) else value


def register(value: Optional[str]) -> None:
    """Remember a secret value (4+ characters) so that :func:`redact` scrubs it everywhere."""
    if value and len(value) >= 4:
        with _known_lock:
            _known.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that renders the message and scrubs registered secrets from it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
