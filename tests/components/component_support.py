"""Stand-ins for unit tests of the components: a clock the test moves, an MQTT recorder.

The integration tests run the real thing (mosquitto, the simulator over HTTP); these keep a unit
test to one component and let it move time instead of sleeping.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

import paho.mqtt.client as paho

from sungrow2mqtt.clock import Clock
from sungrow2mqtt.config import PollingConfig

POLLING = PollingConfig(realtime=60, faults=300, devices=3600, min_refresh_spacing=5)


class FakeClock(Clock):
    """Monotonic seconds and wall time that only change when the test says so.

    ``zone`` makes :meth:`wall` answer in that zone (aware), as a local clock would.
    """

    def __init__(self, wall: dt.datetime, zone: Optional[dt.tzinfo] = None) -> None:
        self.seconds = 1000.0
        self.utc = wall.astimezone(dt.timezone.utc)
        self.zone = zone or dt.timezone.utc

    def monotonic(self) -> float:
        return self.seconds

    def wall(self) -> dt.datetime:
        return self.utc.astimezone(self.zone)

    def advance(self, seconds: float) -> None:
        """Time passes: both clocks move."""
        self.seconds += seconds
        self.utc += dt.timedelta(seconds=seconds)

    def set_wall(self, shift: dt.timedelta) -> None:
        """The wall clock is set (an NTP step, a user): the monotonic clock does not move."""
        self.utc += shift


class RecordingMqtt:
    """Stands in for MqttConnection: records publishes, delivers messages to subscribers."""

    def __init__(self) -> None:
        self.published: List[Tuple[str, Any, bool]] = []
        self.handlers: Dict[str, Callable[[str, bytes, bool], None]] = {}
        self.connected = True

    def publish(self, topic: str, payload: Any, *, retain: bool = False, qos: int = 1,
                backlog: Optional[int] = None) -> bool:
        if isinstance(payload, bytes):          # already encoded JSON: record it decoded
            payload = json.loads(payload) if payload else None
        self.published.append((topic, payload, retain))
        return True

    def subscribe(self, topic: str, handler: Callable[[str, bytes, bool], None],
                  **limits: Any) -> None:
        """``limits`` (max_payload, on_oversized) are MqttConnection's: tests/test_mqtt.py."""
        self.handlers[topic] = handler

    def unsubscribe(self, topic: str) -> None:
        self.handlers.pop(topic, None)

    def after_delivered(self, callback: Callable[[], None]) -> None:
        """Messages are delivered as the test sends them: everything is in already."""
        callback()

    def deliver(self, topic: str, payload: bytes, retained: bool = False) -> None:
        for pattern, handler in list(self.handlers.items()):
            if paho.topic_matches_sub(pattern, topic):
                handler(topic, payload, retained)

    def on(self, topic: str) -> List[Any]:
        """Payloads published on ``topic``, oldest first."""
        return [payload for t, payload, _ in self.published if t == topic]
