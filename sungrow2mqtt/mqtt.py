"""A thin paho-mqtt 2.x wrapper: last will, reconnect with backoff, subscriptions that survive
reconnects, JSON publishing and a way to wait until the broker has acknowledged everything.

Publishing is bounded: paho keeps every QoS 1 message until the broker acknowledges it, and its
message ids wrap at 65,535, so an unbounded burst (thousands of discovery configs, a flood of
requests) would fail.  A publish therefore waits while ``max_queued`` messages are unacknowledged,
and a message paho refuses is counted and logged, never dropped silently.

It knows topics only as strings: what to publish is the bridge's business.
"""
from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Set

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sungrow2mqtt.config import MqttConfig
from sungrow2mqtt.secret import reveal

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, bool], None]   # topic, payload, retained
ONLINE, OFFLINE = "online", "offline"
MAX_QUEUED = 1000       # unacknowledged QoS 1 publishes before publish() waits for the broker
QUEUE_WAIT = 30.0       # seconds publish() waits for room before it refuses the message


def encode(payload: Any) -> bytes:
    """Payload as bytes: text as UTF-8, ``None`` as empty (clears a retained topic), else JSON."""
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _no_delay(client: paho.Client, userdata: Any, sock: Any) -> None:
    """TCP_NODELAY: paho writes a burst of small packets; Nagle would hold each for ~40 ms."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):   # not a TCP socket (e.g. a Unix socket)
        pass


def _path(value: Any) -> Optional[str]:
    return None if value is None else str(value)


@dataclass
class PublishStats:
    """What became of the bridge's publishes, for the logs and the benchmarks."""

    accepted: int = 0           # handed to paho
    offline: int = 0            # not sent while disconnected (the bridge republishes on connect)
    refused: int = 0            # refused by paho or for want of room in its queue


class MqttConnection:
    """One broker connection with a retained ``online``/``offline`` state topic as last will."""

    def __init__(self, config: MqttConfig, state_topic: str, *,
                 max_queued: int = MAX_QUEUED, queue_wait: float = QUEUE_WAIT) -> None:
        self.config = config
        self.state_topic = state_topic
        self.max_queued = max_queued
        self.queue_wait = queue_wait
        self.on_connected: List[Callable[[], None]] = []
        self.stats = PublishStats()
        self._handlers: Dict[str, MessageHandler] = {}
        self._pending: Dict[int, paho.MQTTMessageInfo] = {}   # QoS 1 sent, not acknowledged
        self._acked_early: Set[int] = set()    # acknowledged before publish() could note them
        self._cond = threading.Condition()
        self._connected = False
        self._network_thread: Optional[int] = None   # paho's thread: it must never wait here
        self._refusing = False                       # in an episode of refused publishes
        self._refusal_logged = False
        self.fatal_error: Optional[str] = None   # a failure that retrying will not cure
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=config.client_id,
                                   clean_session=True)
        self._client.enable_logger(logging.getLogger("paho.mqtt"))
        self._client.reconnect_delay_set(min_delay=1, max_delay=60)
        self._client.will_set(state_topic, OFFLINE, qos=1, retain=True)
        if config.username:
            self._client.username_pw_set(config.username, reveal(config.password))
        if config.tls.enabled:
            insecure = config.tls.insecure
            self._client.tls_set(ca_certs=_path(config.tls.ca_certs),
                                 certfile=_path(config.tls.certfile),
                                 keyfile=_path(config.tls.keyfile),
                                 cert_reqs=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED)
            if insecure:
                log.warning("mqtt.tls.insecure is set: the broker's certificate is not verified")
                self._client.tls_insecure_set(True)
        self._client.on_socket_open = _no_delay
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish

    @property
    def connected(self) -> bool:
        """Whether the broker has accepted the connection and not lost it since."""
        return self._connected

    def start(self) -> None:
        """Connect in the background; paho retries with backoff until the broker answers."""
        log.info("Connecting to MQTT broker %s:%d", self.config.host, self.config.port)
        self._client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected, a failure retrying cannot cure, or ``timeout`` seconds."""
        with self._cond:
            self._cond.wait_for(lambda: self._connected or self.fatal_error is not None, timeout)
            return self._connected

    def subscribe(self, topic: str, handler: MessageHandler) -> None:
        """Call ``handler`` for messages on ``topic`` (wildcards allowed), also after reconnects."""
        self._handlers[topic] = handler
        if self._connected:
            self._client.subscribe(topic, qos=1)

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic``."""
        if self._handlers.pop(topic, None) is not None and self._connected:
            self._client.unsubscribe(topic)

    def publish(self, topic: str, payload: Any, *, retain: bool = False, qos: int = 1,
                backlog: Optional[int] = None) -> bool:
        """Publish; returns whether paho accepted the message (it then reaches the broker, after
        a reconnect if need be).

        Waits while ``backlog`` (default ``max_queued``) QoS 1 publishes are unacknowledged, at
        most ``queue_wait`` seconds; paho's own thread never waits (a message handler that
        answers).  While disconnected the message is not sent: the bridge republishes on connect.
        """
        if not self._connected:
            log.debug("Not connected; not publishing %s", topic)
            with self._cond:
                self.stats.offline += 1
            return False
        if not self._wait_for_room(backlog or self.max_queued):
            return self._refused(topic, f"{len(self._pending)} messages still wait for the "
                                        "broker's acknowledgement")
        info = self._client.publish(topic, encode(payload), qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS and info.rc != paho.MQTT_ERR_NO_CONN:
            return self._refused(topic, paho.error_string(info.rc))
        with self._cond:
            self.stats.accepted += 1
            self._track(info, qos)
            recovered, self._refusing = self._refusing, False
        if recovered:
            log.warning("Publishing works again; %d publish(es) were refused so far",
                        self.stats.refused)
        return True

    def _track(self, info: paho.MQTTMessageInfo, qos: int) -> None:
        """Note a QoS 1 publish until its acknowledgement (call with the lock held).

        paho calls ``on_publish`` before it marks the message published, so an acknowledgement
        that overtakes the publishing thread is remembered there, not left pending for ever.
        """
        early = info.mid in self._acked_early
        self._acked_early.discard(info.mid)
        if qos > 0 and not early and not info.is_published():
            self._pending[info.mid] = info

    def _wait_for_room(self, backlog: int) -> bool:
        """Whether fewer than ``backlog`` publishes are unacknowledged, waiting for the broker
        unless this is paho's thread (the acknowledgements arrive there)."""
        def room() -> bool:
            return len(self._pending) < backlog or not self._connected
        with self._cond:
            if threading.get_ident() == self._network_thread:
                return room()
            return self._cond.wait_for(room, self.queue_wait)

    def _refused(self, topic: str, reason: str) -> bool:
        """Count a refused publish; the first of an episode is logged as a warning."""
        with self._cond:
            self.stats.refused += 1
            first, self._refusing = not self._refusing, True
        if first:
            log.warning("Publishing to %s failed: %s (further failures are logged at debug "
                        "level until publishing works again)", topic, reason)
        else:
            log.debug("Publishing to %s failed: %s", topic, reason)
        return False

    def wait_published(self, timeout: float) -> bool:
        """Block until the broker acknowledged every QoS 1 publish so far (or timeout)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending, timeout)

    def stop(self, timeout: float = 3.0) -> None:
        """Publish ``offline``, wait briefly for the acknowledgements and disconnect cleanly."""
        if self._connected:
            self.publish(self.state_topic, OFFLINE, retain=True)
            self.wait_published(timeout)
        with self._cond:
            self._connected = False      # other threads stop publishing before we disconnect
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho callbacks (network thread) ----------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason_code: Any, properties: Any = None) -> None:
        if reason_code.is_failure:
            credentials = any(w in str(reason_code).lower() for w in ("authori", "password"))
            if not self._refusal_logged:
                log.error("MQTT broker %s:%d refused the connection: %s%s", self.config.host,
                          self.config.port, reason_code,
                          " (check mqtt.username and mqtt.password)" if credentials else "")
                self._refusal_logged = True
            if credentials:
                self._set_fatal(f"the broker refused the connection: {reason_code}")
            return
        self._refusal_logged = False
        self._network_thread = threading.get_ident()
        log.info("Connected to MQTT broker %s:%d", self.config.host, self.config.port)
        for topic in self._handlers:
            client.subscribe(topic, qos=1)
        with self._cond:
            self._connected = True
            self._cond.notify_all()
        online = client.publish(self.state_topic, ONLINE, qos=1, retain=True)
        with self._cond:
            self._track(online, 1)
        for callback in list(self.on_connected):
            try:
                callback()
            except Exception:  # a bug in one callback must not kill paho's thread
                log.exception("Error in on-connect callback")

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        if not self._refusal_logged:
            reason = self.diagnose()
            log.warning("Cannot reach MQTT broker %s:%d (%s); retrying with backoff",
                        self.config.host, self.config.port, reason)
            self._refusal_logged = True
            if "could not be verified" in reason:
                self._set_fatal(reason)

    def _set_fatal(self, reason: str) -> None:
        with self._cond:
            self.fatal_error = reason
            self._cond.notify_all()

    def diagnose(self, timeout: float = 5.0) -> str:
        """Why a connection fails, found by trying it directly (paho does not tell)."""
        tls = self.config.tls
        try:
            with socket.create_connection((self.config.host, self.config.port), timeout) as raw:
                if not tls.enabled:
                    return "the TCP connection works; the broker closed the MQTT session"
                context = ssl.create_default_context(cafile=_path(tls.ca_certs))
                if tls.certfile:
                    context.load_cert_chain(str(tls.certfile), _path(tls.keyfile))
                if tls.insecure:
                    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
                with context.wrap_socket(raw, server_hostname=self.config.host):
                    return "TCP and TLS handshake work; the broker closed the MQTT session"
        except ssl.SSLCertVerificationError as exc:
            return (f"the broker's TLS certificate could not be verified: "
                    f"{exc.verify_message or exc.reason} (check mqtt.tls.ca_certs)")
        except ssl.SSLError as exc:
            return f"TLS handshake failed: {exc.reason or exc} (is this a TLS port?)"
        except OSError as exc:
            return exc.strerror or type(exc).__name__

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       reason_code: Any, properties: Any = None) -> None:
        with self._cond:
            was_connected, self._connected = self._connected, False
            self._cond.notify_all()
        if was_connected and reason_code.is_failure:
            log.warning("Lost connection to MQTT broker (%s); reconnecting", reason_code)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason_code: Any,
                    properties: Any = None) -> None:
        with self._cond:
            if self._pending.pop(mid, None) is None:
                self._acked_early.add(mid)
            self._cond.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        for pattern, handler in list(self._handlers.items()):
            if paho.topic_matches_sub(pattern, message.topic):
                try:
                    handler(message.topic, bytes(message.payload), bool(message.retain))
                except Exception:  # the bridge must never die on a message
                    log.exception("Error handling MQTT message on %s", message.topic)
