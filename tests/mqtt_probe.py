"""A test-side MQTT client: records every message under some topics, waits for conditions."""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class MqttProbe:
    """Subscribes to topic filters on a real broker and keeps the last payload per topic."""

    def __init__(self, port: int, *filters: str) -> None:
        self.messages: Dict[str, bytes] = {}
        self.history: List[Tuple[str, bytes, bool]] = []
        self.lock = self._cond = threading.Condition()   # held while messages change
        self.filters = filters
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id="probe-" + uuid.uuid4().hex[:8])
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "probe could not subscribe"

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        client.subscribe([(f, 1) for f in self.filters])

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages[msg.topic] = msg.payload
            self.history.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def json(self, topic: str) -> Any:
        return json.loads(self.messages[topic])

    def wait_for(self, predicate: Callable[["MqttProbe"], bool], timeout: float = 15.0,
                 what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}; topics: "
                                         f"{sorted(self.messages)[:40]}")
                self._cond.wait(min(remaining, 0.2))

    def wait_topic(self, topic: str, timeout: float = 15.0,
                   check: Optional[Callable[[bytes], bool]] = None) -> bytes:
        self.wait_for(lambda p: topic in p.messages and (check is None or
                                                         check(p.messages[topic])),
                      timeout, topic)
        return self.messages[topic]

    def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(5)

    def request(self, base: str, name: str, payload: Any, timeout: float = 20.0) -> Dict:
        """Send a request and return the response that echoes its transaction."""
        transaction = uuid.uuid4().hex
        body = dict(payload or {}, transaction=transaction) if isinstance(payload, dict) \
            else payload
        response_topic = f"{base}/bridge/response/{name}"
        start = len(self.history)
        self.publish(f"{base}/bridge/request/{name}", body)
        found: Dict[str, Any] = {}

        def answered(probe: "MqttProbe") -> bool:
            for topic, data, _ in probe.history[start:]:
                if topic == response_topic:
                    message = json.loads(data)
                    if not isinstance(body, dict) or message.get("transaction") == transaction:
                        found.update(message)
                        return True
            return False
        self.wait_for(answered, timeout, f"response on {response_topic}")
        return found

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
