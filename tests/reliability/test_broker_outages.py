"""The MQTT broker goes away and comes back (with and without persistence).

The bridge must reconnect by itself with backoff, restore its subscriptions, republish discovery
and the latest states, say ``online`` again, never claim ``offline`` on a mere broker restart, and
lose no QoS 1 message the broker had been handed while connected.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any, List

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bridge_harness import config_dict
from conftest import Broker
from mqtt_probe import MqttProbe
from reliability_support import (
    Driven, describe, need_mosquitto, records, sim, state_topics, unhandled, wait_until,
)

__all__ = ["sim"]   # fixture, used by name below


class PersistentSubscriber:
    """A client with a persistent session (clean_session=False) and QoS 1 subscriptions."""

    def __init__(self, port: int, topic: str) -> None:
        self.received: List[bytes] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2,
                                  client_id="persistent-" + uuid.uuid4().hex[:8],
                                  clean_session=False)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._lock:
            self.received.append(bytes(message.payload))

    def got(self, marker: str) -> bool:
        with self._lock:
            return any(marker.encode() in payload for payload in self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _bridge_state_history(probe: MqttProbe, base: str) -> List[bytes]:
    return [p for t, p, _ in probe.history if t == f"{base}/bridge/state"]


def test_broker_restart_without_persistence_reconnects_and_republishes(
        sim, tmp_path, base_topic, caplog):
    need_mosquitto()
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    broker = Broker(tmp_path).start()
    config = config_dict(sim, broker.port, base_topic, tmp_path)
    driven = Driven(config, tmp_path)
    probe = None
    try:
        driven.cycle()
        announced = dict(driven.bridge._announced)
        assert announced
        caplog.clear()

        broker.stop()                  # no persistence: every retained message is gone
        wait_until(lambda: not driven.service.mqtt.connected, 10, "the bridge to notice")
        driven.cycle()                 # polling goes on while the broker is away
        assert driven.outcome("realtime") == "ok"
        time.sleep(2.5)                # long enough for failed reconnect attempts (backoff)
        broker = Broker(tmp_path, port=broker.port).start()
        probe = MqttProbe(broker.port, f"{base_topic}/#", f"{base_topic}_ha/#")

        probe.wait_topic(f"{base_topic}/bridge/state", 30, check=lambda d: d == b"online")
        expected = {f"{base_topic}/{k}": v for k, v in driven.bridge.values.items()}
        wanted = list(announced) + state_topics(driven)
        probe.wait_for(lambda p: all(t in p.messages for t in wanted), 15,
                       "states, faults and discovery republished")
        for topic, values in expected.items():
            assert json.loads(probe.messages[topic]) == values, topic
        assert b"offline" not in _bridge_state_history(probe, base_topic)
        assert driven.service.mqtt.wait_published(10), "publishes stuck after the reconnect"

        # the request subscription is back: a bad request is answered at once (paho thread)
        answer = probe.request(base_topic, "refresh", {"colour": "red"}, timeout=10)
        assert answer["status"] == "error" and "colour" in answer["error"]

        lost = [r for r in records(caplog) if "lost connection" in r.getMessage().lower()]
        unreachable = [r for r in records(caplog) if "cannot reach" in r.getMessage().lower()]
        assert len(lost) == 1, describe(records(caplog))
        assert len(unreachable) <= 1, "reconnect failures must not be logged every attempt:\n" \
            + describe(records(caplog))
        assert not unhandled(caplog), describe(unhandled(caplog))
    finally:
        if probe:
            probe.close()
        driven.stop()
        broker.stop()


def test_broker_restart_with_persistence_keeps_retained_states_and_qos1_messages(
        sim, tmp_path, base_topic, caplog):
    need_mosquitto()
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    broker = Broker(tmp_path, persistence=True).start()
    driven = Driven(config_dict(sim, broker.port, base_topic, tmp_path), tmp_path)
    subscriber = PersistentSubscriber(broker.port, f"{base_topic}/bridge/response/#")
    probe = None
    try:
        driven.cycle()
        topics = state_topics(driven)
        before = {}
        watcher = MqttProbe(broker.port, *topics)
        watcher.wait_for(lambda p: all(t in p.messages for t in topics), 10, "states")
        before = dict(watcher.messages)
        watcher.close()

        markers = [uuid.uuid4().hex for _ in range(20)]
        for marker in markers:         # handed to paho while connected, then the broker dies
            driven.bridge.respond("info", data={"marker": marker})
        broker.stop()
        broker = Broker(tmp_path, port=broker.port, persistence=True).start()
        probe = MqttProbe(broker.port, f"{base_topic}/#")

        # retained states survived the restart (from the broker's database or republished)
        probe.wait_for(lambda p: all(t in p.messages for t in topics), 15, "retained states")
        for topic in topics:
            assert probe.messages[topic] == before[topic], topic
        probe.wait_topic(f"{base_topic}/bridge/state", 30, check=lambda d: d == b"online")
        assert b"offline" not in _bridge_state_history(probe, base_topic)
        assert driven.service.mqtt.wait_published(15), "QoS 1 publishes never acknowledged"
        wait_until(lambda: all(subscriber.got(m) for m in markers), 15,
                   "every response published before the stop to be delivered")
        assert not unhandled(caplog), describe(unhandled(caplog))
    finally:
        subscriber.close()
        if probe:
            probe.close()
        driven.stop()
        broker.stop()
