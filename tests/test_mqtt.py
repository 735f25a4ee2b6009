"""The MQTT connection against a real mosquitto: what it says when the broker is unreachable,
silent, refusing, or shared by two clients with one client id, and how it refuses oversized
messages. Waits are bounded polls for an outcome, never assertions about durations."""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from conftest import free_port, mosquitto_binary, wait_for_port
from sungrow2mqtt.config import MqttConfig, parse_config
from sungrow2mqtt.mqtt import (
    BrokerError,
    MqttConnection,
    WarningBackoff,
    _refusal,
    check_broker,
)


def mqtt_config(port: int, **mqtt: Any) -> MqttConfig:
    return parse_config({
        "isolarcloud": {"server": "http://127.0.0.1:1", "appkey": "a" * 32,
                        "access_key": "b" * 32, "username": "u", "password": "p",
                        "token_file": None},
        "mqtt": {"host": "127.0.0.1", "port": port, **mqtt},
    }, "test").mqtt


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def messages(caplog: pytest.LogCaptureFixture, text: str) -> List[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Start mosquitto with extra config lines; returns its port."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it)")
    processes: List[subprocess.Popen] = []

    def start(*lines: str) -> int:
        port = free_port()
        conf = tmp_path / f"mosquitto-{port}.conf"
        # as root, mosquitto drops to a user that cannot read files under pytest's tmp_path
        owner = ["user root"] if os.geteuid() == 0 else []
        conf.write_text("\n".join([f"listener {port} 127.0.0.1", *owner, *lines]) + "\n")
        processes.append(subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        wait_for_port(port)
        return port

    start.processes = processes            # type: ignore[attr-defined]  # to stop one (SIGSTOP)
    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


# -- warnings while the broker cannot be reached -------------------------------------------------

def test_warning_backoff_repeats_at_growing_intervals_up_to_a_cap() -> None:
    now = [0.0]
    backoff = WarningBackoff(first=10, longest=40, clock=lambda: now[0])
    due_at = []
    for second in range(0, 200):
        now[0] = float(second)
        if backoff.due():
            due_at.append(second)
    assert due_at == [0, 10, 30, 70, 110, 150, 190]
    assert backoff.skipped == 39 and "failing for 199 s" in backoff.since()
    backoff.reset()
    assert backoff.due() and backoff.since() == ""


def test_unreachable_broker_is_reported_again_with_backoff_naming_the_keys(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sungrow2mqtt")
    port = free_port()                                   # nothing listens there
    connection = MqttConnection(mqtt_config(port), "t/state",
                                warnings=WarningBackoff(first=0.5))
    connection.start()
    try:
        assert wait_until(lambda: len(messages(caplog, "Cannot reach MQTT broker")) >= 2)
    finally:
        connection.stop()
    first, second = messages(caplog, "Cannot reach MQTT broker")[:2]
    assert f"127.0.0.1:{port} (mqtt.host/mqtt.port)" in first and "refused" in first.lower()
    assert "failing for" in second


def test_broker_that_never_answers_the_handshake_is_reported(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sungrow2mqtt")
    with socket.socket() as server:                      # accepts TCP, never sends CONNACK
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        held: List[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            server.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(server.accept()[0])
                except OSError:
                    continue
        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        connection = MqttConnection(mqtt_config(port, keepalive=5), "t/state")
        connection.start()
        try:
            assert wait_until(lambda: bool(messages(caplog, "did not answer the MQTT handshake")))
        finally:
            connection.stop()
            stop.set()
            acceptor.join()
            for sock in held:
                sock.close()
    [warning] = messages(caplog, "did not answer the MQTT handshake")[:1]
    assert f"127.0.0.1:{port} (mqtt.host/mqtt.port)" in warning and "mqtt.keepalive" in warning


# -- refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,hinted", [(134, True), (135, True), (136, False), (133, False)])
def test_refusal_hint_is_chosen_by_reason_code_value(value: int, hinted: bool) -> None:
    text = _refusal(ReasonCode(PacketTypes.CONNACK, identifier=value))
    assert ("check mqtt.username and mqtt.password" in text) == hinted


def test_wrong_broker_password_is_fatal_and_named(mosquitto, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="sungrow2mqtt")
    passwords = tmp_path / "passwords"
    passwords.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "bridge", "right"], check=True)
    passwords.chmod(0o644)
    port = mosquitto("allow_anonymous false", f"password_file {passwords}")
    connection = MqttConnection(mqtt_config(port, username="bridge", password="wrong"), "t/s")
    connection.start()
    try:
        assert not connection.wait_connected(30)
        assert connection.fatal_error and "Not authorized" in connection.fatal_error
    finally:
        connection.stop()
    [error] = messages(caplog, "refused the connection")
    assert "check mqtt.username and mqtt.password" in error and "wrong" not in error
    good = check_broker(mqtt_config(port, username="bridge", password="right"))
    assert f"127.0.0.1:{port}" in good
    with pytest.raises(BrokerError, match="refused the connection: Not authorized .check mqtt"):
        check_broker(mqtt_config(port, username="bridge", password="wrong"))


def test_check_broker_names_the_keys_when_unreachable() -> None:
    port = free_port()
    with pytest.raises(BrokerError) as failure:
        check_broker(mqtt_config(port), timeout=5)
    assert f"127.0.0.1:{port} (mqtt.host/mqtt.port)" in str(failure.value)


# -- two bridges, one client id --------------------------------------------------------------------

def test_same_client_id_takeover_is_reported_once(broker, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sungrow2mqtt")
    connects: List[str] = []
    first = MqttConnection(mqtt_config(broker.port, client_id="twin"), "t1/state")
    second = MqttConnection(mqtt_config(broker.port, client_id="twin"), "t2/state")
    for name, connection in (("first", first), ("second", second)):
        connection.on_connected.append(lambda name=name: connects.append(name))
    first.start()
    assert first.wait_connected(10)
    second.start()
    try:
        assert wait_until(lambda: bool(messages(caplog, "another client is using the same")))
        seen = len(connects)
        assert wait_until(lambda: len(connects) >= seen + 6)    # the ping-pong goes on...
    finally:
        first.stop()
        second.stop()
    warnings = messages(caplog, "another client is using the same")
    assert len(warnings) <= 2                                    # ...but each says it once
    assert "mqtt.client_id 'twin'" in warnings[0]
    assert len(messages(caplog, "Lost connection")) <= 2


# -- oversized messages ----------------------------------------------------------------------------

def test_oversized_message_is_refused_before_the_handler(broker, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="sungrow2mqtt")
    received: List[bytes] = []
    refused: List[Tuple[str, int]] = []
    connection = MqttConnection(mqtt_config(broker.port), "t/state")
    connection.subscribe("t/request/+", lambda topic, payload, retained: received.append(payload),
                         max_payload=1024, on_oversized=lambda t, size: refused.append((t, size)))
    subscribed = threading.Event()
    connection.after_delivered(subscribed.set)      # the subscription is in effect by then
    connection.start()
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
    try:
        assert connection.wait_connected(10) and subscribed.wait(10)
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        publisher.publish("t/request/big", b"x" * 100_000, qos=1).wait_for_publish(10)
        publisher.publish("t/request/small", b"{}", qos=1).wait_for_publish(10)
        assert wait_until(lambda: bool(received))
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        connection.stop()
    assert received == [b"{}"]
    assert refused == [("t/request/big", 100_000)]
    # our own stop is not reported as a broker problem
    assert not messages(caplog, "closed the connection") and not messages(caplog, "Lost")
    [warning] = messages(caplog, "Refusing a 100000-byte message on t/request/big")
    assert "at most 1024 bytes" in warning


@pytest.mark.parametrize("connected_first", [False, True], ids=["before-connect", "connected"])
def test_after_delivered_comes_after_every_retained_message(broker, connected_first) -> None:
    """The announcer's stale cleanup waits for this: a retained config read after it would live
    on (the broker sends thousands of them for a while, a loaded machine reads them slowly)."""
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="retainer")
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    try:
        for n in range(500):
            publisher.publish(f"ha/sensor/dev{n}/config", b'{"n": %d}' % n, qos=1,
                              retain=True).wait_for_publish(10)
    finally:
        publisher.disconnect()
        publisher.loop_stop()
    seen: List[str] = []
    seen_when_delivered: List[int] = []

    def slow_handler(topic: str, payload: bytes, retained: bool) -> None:
        time.sleep(0.001)                       # a loaded machine reads slowly
        seen.append(topic)

    connection = MqttConnection(mqtt_config(broker.port), "t/state")
    try:
        if connected_first:
            connection.start()
            assert connection.wait_connected(10)
        connection.subscribe("ha/+/+/config", slow_handler)
        connection.after_delivered(lambda: seen_when_delivered.append(len(seen)))
        if not connected_first:
            connection.start()
        assert wait_until(lambda: bool(seen_when_delivered), 30)
    finally:
        connection.stop()
    assert seen_when_delivered == [500]


def test_qos0_publishes_never_pass_a_later_qos1_publish_off_as_acknowledged(mosquitto) -> None:
    """paho reports a QoS 0 message written with the callback that acknowledges QoS 1 ones;
    taken for early acknowledgements, those reports piled up (a leak) and, once message ids
    came round again, a QoS 1 publish counted as acknowledged before the broker had it."""
    port = mosquitto("allow_anonymous true")
    connection = MqttConnection(mqtt_config(port), "t/state")
    connection.start()
    try:
        assert connection.wait_connected(10)
        for _ in range(1 << 16):                   # every message id once
            assert connection.publish("t/states", b"x", qos=0)
        assert connection.publish("t/flush", b"x") and connection.wait_published(30)
        broker = mosquitto.processes[-1]
        os.kill(broker.pid, signal.SIGSTOP)         # no acknowledgement can come now
        try:
            assert connection.publish("t/later", b"x")
            assert not connection.wait_published(0.5)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        assert connection.wait_published(10)
    finally:
        connection.stop()
