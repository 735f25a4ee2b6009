"""MqttConnection's publish path against a real broker: bounded, paced, nothing dropped silently."""
from __future__ import annotations

import logging
import threading
from typing import Iterator

import pytest

from conftest import free_port
from mqtt_probe import MqttProbe
from reliability_support import unqueued_broker
from sungrow2mqtt.config import MqttConfig, TlsConfig
from sungrow2mqtt.mqtt import MessageHandler, MqttConnection

__all__ = ["unqueued_broker"]   # fixture, used by name below
NO_TLS = TlsConfig(False, None, None, None, False)


def connection(port: int, base: str, **limits: float) -> MqttConnection:
    config = MqttConfig("127.0.0.1", port, None, None, "s2m-" + base[-8:], base, 60, NO_TLS)
    return MqttConnection(config, f"{base}/bridge/state", **limits)  # type: ignore[arg-type]


def subscribe_in_effect(mqtt: MqttConnection, topic: str, handler: MessageHandler) -> None:
    """Subscribe and wait until the broker has the subscription: ``subscribe`` returns before
    it does, and a message published meanwhile would not reach ``handler`` (a loaded machine
    once took longer than the test's probe took to connect and publish)."""
    mqtt.subscribe(topic, handler)
    subscribed = threading.Event()
    mqtt.after_delivered(subscribed.set)
    assert subscribed.wait(10), f"no subscription to {topic}"


@pytest.fixture
def connected(unqueued_broker, base_topic) -> Iterator[MqttConnection]:
    mqtt = connection(unqueued_broker.port, base_topic, max_queued=20, queue_wait=30)
    mqtt.start()
    assert mqtt.wait_connected(10) and mqtt.wait_published(10)    # "online" acknowledged
    yield mqtt
    mqtt.stop()


def test_a_burst_far_beyond_the_queue_bound_waits_for_the_broker_and_loses_nothing(
        connected, unqueued_broker, base_topic):
    probe = MqttProbe(unqueued_broker.port, f"{base_topic}/n/#")
    try:
        accepted = [connected.publish(f"{base_topic}/n/{i}", {"i": i}, retain=True)
                    for i in range(5000)]
        assert all(accepted)
        assert connected.wait_published(30)
        assert connected.stats.refused == 0 and connected.stats.accepted >= 5000
        probe.wait_for(lambda p: len(p.messages) == 5000, 30, "every message")
        # acknowledgements that overtook publish() are not left waiting: the queue is empty
        assert connected.unacknowledged() == 0
        assert connected.publish(f"{base_topic}/n/last", "x", backlog=1)
    finally:
        probe.close()


def test_pahos_own_thread_never_waits_a_refusal_is_counted_and_logged(
        connected, unqueued_broker, base_topic, caplog):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt.mqtt")
    answered = threading.Event()
    results = []

    def handler(topic: str, payload: bytes, retained: bool) -> None:   # paho's thread
        results.extend(connected.publish(f"{base_topic}/answer/{i}", "a") for i in range(200))
        answered.set()
    subscribe_in_effect(connected, f"{base_topic}/ask", handler)
    probe = MqttProbe(unqueued_broker.port, f"{base_topic}/answer/#")
    try:
        probe.publish(f"{base_topic}/ask", "go")
        assert answered.wait(10), "the handler blocked paho's thread"
        assert results.count(True) == 20 and results.count(False) == 180
        assert connected.stats.refused == 180
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "failed" in warnings[0].getMessage()
        assert "20 messages still wait" in warnings[0].getMessage()   # and why
        assert connected.wait_published(10)
        assert connected.publish(f"{base_topic}/answer/again", "b")     # the episode ends
        assert "works again" in caplog.records[-1].getMessage()
    finally:
        probe.close()


def test_a_qos_0_publish_takes_no_room_among_unacknowledged_ones(
        connected, unqueued_broker, base_topic):
    """States (QoS 0) are not held up, nor refused, by a full backlog of QoS 1 messages:
    paho keeps none of them once written."""
    results = {}
    answered = threading.Event()

    def handler(topic: str, payload: bytes, retained: bool) -> None:   # acks wait meanwhile
        results["qos1"] = [connected.publish(f"{base_topic}/q1/{i}", "a") for i in range(21)]
        results["qos0"] = [connected.publish(f"{base_topic}/q0/{i}", "s", qos=0)
                           for i in range(50)]
        answered.set()
    subscribe_in_effect(connected, f"{base_topic}/ask", handler)
    probe = MqttProbe(unqueued_broker.port, f"{base_topic}/q0/#")
    try:
        probe.publish(f"{base_topic}/ask", "go")
        assert answered.wait(10)
        assert results["qos1"] == [True] * 20 + [False]         # the backlog was full
        assert results["qos0"] == [True] * 50
        probe.wait_for(lambda p: len(p.messages) == 50, 10, "every QoS 0 message")
    finally:
        probe.close()


def test_publishing_while_disconnected_is_counted_not_sent(base_topic):
    mqtt = connection(free_port(), base_topic)          # never started
    assert mqtt.publish(f"{base_topic}/x", "y") is False
    assert (mqtt.stats.offline, mqtt.stats.accepted) == (1, 0)
