"""A thin paho-mqtt 2.x wrapper: last will, reconnect with backoff, subscriptions that survive
reconnects, JSON publishing and a way to wait until the broker has acknowledged everything.

Publishing is bounded: paho keeps every QoS 1 message until the broker acknowledges it, and its
message ids wrap at 65,535, so an unbounded burst (thousands of discovery configs, a flood of
requests) would fail.  A QoS 1 publish therefore waits while ``max_queued`` of them are
unacknowledged (QoS 0 ones are written and forgotten: they take no room), and a message paho
refuses is counted and logged, never dropped silently.

It also says what is wrong with a connection, in words that name the config keys: a broker that
cannot be reached (repeated with backoff while it lasts), one that accepts TCP but never answers
the MQTT handshake, and another client taking over our session because it uses the same client
id. It knows topics only as strings: what to publish is the bridge's business.
"""
from __future__ import annotations

import collections
import json
import logging
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, NamedTuple, Optional

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sungrow2mqtt.config import MqttConfig
from sungrow2mqtt.errors import Sungrow2MqttError
from sungrow2mqtt.secret import reveal

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes, bool], None]   # topic, payload, retained
OversizeHandler = Callable[[str, int], None]          # topic, payload size in bytes
ONLINE, OFFLINE = "online", "offline"
MAX_QUEUED = 1000       # unacknowledged QoS 1 publishes before publish() waits for the broker
QUEUE_WAIT = 30.0       # seconds publish() waits for room before it refuses the message
_ACK_POLL = 0.1         # a wait for acknowledgements looks at the connection this often

# Reason codes by value (MQTT 5 numbering; paho maps MQTT 3.1.1's CONNACK codes 4 and 5 onto
# 134 and 135, and reports its own keepalive timeout as 141).
RC_BAD_CREDENTIALS = 134
RC_NOT_AUTHORIZED = 135
RC_KEEPALIVE_TIMEOUT = 141
RC_SESSION_TAKEN_OVER = 142

# Nothing the bridge subscribes to is larger (requests are at most 4 KiB); a larger message is
# refused before it is copied or parsed. The broker-side limit is in the examples
# (mosquitto's max_packet_size).
MAX_INCOMING_PAYLOAD = 64 * 1024

# Two clients with one client id take turns: the broker ends each session as the other one
# connects, and paho reconnects within seconds. Sessions ended by the broker this soon after
# connecting, this many times in a row, are reported as that.
SHORT_SESSION = 10.0
TAKEOVER_SESSIONS = 3


class _NotConnectedIsReported(logging.Filter):
    """paho logs "Client is not connected" at ERROR each time its loop runs while it reconnects
    (and at some stops); the connection's own warnings already say so, with backoff.  Kept for
    ``-v`` (DEBUG), never an ERROR in the user's log over a broker restart."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and str(record.msg).startswith(
                "Client is not connected"):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return PAHO_LOG.isEnabledFor(logging.DEBUG)
        return True


PAHO_LOG = logging.getLogger("paho.mqtt")
PAHO_LOG.addFilter(_NotConnectedIsReported())


class BrokerError(Sungrow2MqttError):
    """The broker cannot be reached or refuses us (``check``); the message names the keys."""


class WarningBackoff:
    """When to repeat a warning while a problem lasts: at once, then after 10 s, 20 s, 40 s ...
    at most every 10 minutes, so a long outage stays visible without flooding the log."""

    def __init__(self, first: float = 10.0, longest: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.first, self.longest, self.clock = first, longest, clock
        self.reset()

    def reset(self) -> None:
        """The problem is over: the next one is reported at once."""
        self._next: Optional[float] = None
        self._interval = self.first
        self._started: Optional[float] = None
        self._skipped = 0
        self.skipped = 0     # occurrences not reported between the last two warnings

    def due(self) -> bool:
        """Whether this occurrence should be reported."""
        now = self.clock()
        if self._started is None:
            self._started = now
        if self._next is not None and now < self._next:
            self._skipped += 1
            return False
        self.skipped, self._skipped = self._skipped, 0
        self._next = now + self._interval
        self._interval = min(self._interval * 2, self.longest)
        return True

    def since(self) -> str:
        """`` (failing for N s, M attempt(s) not logged)`` once the problem has lasted."""
        lasted = self.clock() - (self._started if self._started is not None else self.clock())
        if lasted < 1:
            return ""
        return f" (failing for {lasted:.0f} s, {self.skipped} attempt(s) not logged)"


class _Subscription(NamedTuple):
    handler: MessageHandler
    max_payload: int
    on_oversized: Optional[OversizeHandler]


# json.dumps with arguments builds an encoder per call; a thousand states a cycle share this one
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _acknowledged(info: paho.MQTTMessageInfo) -> bool:
    """Whether paho has the broker's acknowledgement of a QoS 1 publish; one that failed for
    good (paho's error code) is not waited for either."""
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return True


def encode(payload: Any) -> bytes:
    """Payload as bytes: text as UTF-8, ``None`` as empty (clears a retained topic), else JSON."""
    if payload is None:
        return b""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return _JSON.encode(payload).encode("utf-8")


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


def _where(config: MqttConfig) -> str:
    return f"{config.host}:{config.port} (mqtt.host/mqtt.port)"


def _new_client(config: MqttConfig, client_id: str) -> paho.Client:
    """A paho client with the configured credentials and TLS, not yet connected."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.enable_logger(PAHO_LOG)
    if config.username:
        client.username_pw_set(config.username, reveal(config.password))
    if config.tls.enabled:
        insecure = config.tls.insecure
        client.tls_set(ca_certs=_path(config.tls.ca_certs), certfile=_path(config.tls.certfile),
                       keyfile=_path(config.tls.keyfile),
                       cert_reqs=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED)
        if insecure:
            client.tls_insecure_set(True)
    client.on_socket_open = _no_delay
    return client


def _refusal(reason_code: Any) -> str:
    """A CONNACK refusal in words, with the keys to check when it is about credentials."""
    hint = (" (check mqtt.username and mqtt.password)"
            if reason_code.value in (RC_BAD_CREDENTIALS, RC_NOT_AUTHORIZED) else "")
    return f"{reason_code}{hint}"


def _socket_problem(exc: OSError) -> str:
    """Why a TCP or TLS connection failed, naming the key to check."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"the broker's TLS certificate could not be verified: "
                f"{exc.verify_message or exc.reason} (check mqtt.tls.ca_certs)")
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc} (is this a TLS port?)"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "no answer (timed out)"
    return exc.strerror or type(exc).__name__


def check_broker(config: MqttConfig, timeout: float = 10.0) -> str:
    """Connect once and disconnect, for ``sungrow2mqtt check``; raises BrokerError.

    Uses ``<client_id>-check`` and no last will, so a running bridge is neither kicked off the
    broker nor shown offline.
    """
    client = _new_client(config, f"{config.client_id}-check")
    answered = threading.Event()
    answer: List[Any] = []

    def on_connect(client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                   properties: Any = None) -> None:
        answer.append(reason_code)
        answered.set()

    client.on_connect = on_connect
    client.connect_timeout = timeout
    try:
        client.connect(config.host, config.port, keepalive=max(5, int(timeout)))
    except (OSError, ValueError) as exc:
        problem = _socket_problem(exc) if isinstance(exc, OSError) else str(exc)
        raise BrokerError(f"cannot reach the MQTT broker {_where(config)}: {problem}") from None
    client.loop_start()
    try:
        if not answered.wait(timeout):
            raise BrokerError(f"the MQTT broker {_where(config)} accepted the TCP connection but "
                              f"did not answer the MQTT handshake within {timeout:.0f} s (no "
                              "CONNACK): is this the broker's MQTT port?")
        if answer[0].is_failure:
            raise BrokerError(f"the MQTT broker {_where(config)} refused the connection: "
                              f"{_refusal(answer[0])}")
    finally:
        client.disconnect()
        client.loop_stop()
    user = f" as {config.username}" if config.username else ""
    return f"{config.host}:{config.port}{' (TLS)' if config.tls.enabled else ''}{user}"


class MqttConnection:
    """One broker connection with a retained ``online``/``offline`` state topic as last will."""

    def __init__(self, config: MqttConfig, state_topic: str, *,
                 warnings: Optional[WarningBackoff] = None,
                 clock: Callable[[], float] = time.monotonic,
                 max_queued: int = MAX_QUEUED, queue_wait: float = QUEUE_WAIT) -> None:
        self.config = config
        self.state_topic = state_topic
        self.max_queued = max_queued
        self.queue_wait = queue_wait
        self.on_connected: List[Callable[[], None]] = []
        self.stats = PublishStats()
        self._subscriptions: Dict[str, _Subscription] = {}
        # beside the state topic (<base>/bridge/sync): inside the bridge's own tree, where a
        # broker's ACL lets it publish, and JSON like everything a subscriber to <base>/# reads
        self._sync_topic = f"{state_topic.rpartition('/')[0] or state_topic}/sync"
        self._awaiting: Dict[str, Callable[[], None]] = {}    # sync marker -> its callback
        # QoS 1 publishes, oldest first; those the broker acknowledged leave from the front
        self._pending: Deque[paho.MQTTMessageInfo] = collections.deque()
        self._cond = threading.Condition()
        self._connected = False
        self._network_thread: Optional[int] = None   # paho's thread: it must never wait here
        self._refusing = False                       # in an episode of refused publishes
        self._clock = clock
        self._warnings = warnings or WarningBackoff(clock=clock)     # not-connected episodes
        self._oversize_warnings = WarningBackoff(clock=clock)
        self._connected_at = 0.0
        self._short_sessions = 0          # sessions in a row the broker ended right away
        self._takeover_logged = False
        self.fatal_error: Optional[str] = None   # a failure that retrying will not cure
        self._client = _new_client(config, config.client_id)
        self._client.reconnect_delay_set(min_delay=1, max_delay=60)
        self._client.will_set(state_topic, OFFLINE, qos=1, retain=True)
        if config.tls.enabled and config.tls.insecure:
            log.warning("mqtt.tls.insecure is set: the broker's certificate is not verified")
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        # no on_publish: with one set, paho builds a reason code and a properties object for
        # every QoS 0 message it writes (two thirds of paho's CPU per QoS 0 message);
        # acknowledgements are read from the MQTTMessageInfo of each QoS 1 publish instead

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

    def subscribe(self, topic: str, handler: MessageHandler, *,
                  max_payload: int = MAX_INCOMING_PAYLOAD,
                  on_oversized: Optional[OversizeHandler] = None) -> None:
        """Call ``handler`` for messages on ``topic`` (wildcards allowed), also after reconnects.

        A message over ``max_payload`` bytes never reaches ``handler``: it is logged (rate
        limited) and ``on_oversized(topic, size)`` is called instead, e.g. to answer a request.
        """
        self._subscriptions[topic] = _Subscription(handler, max_payload, on_oversized)
        if self._connected:
            self._client.subscribe(topic, qos=1)

    def after_delivered(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on paho's thread) once the broker has delivered what it queued for
        this client so far, the retained messages of every subscription made so far included.

        A marker sent to ourselves comes back after them: the broker keeps one client's messages
        in order.  Sent again after a reconnect until it arrives.
        """
        marker = uuid.uuid4().hex
        with self._cond:
            self._awaiting[marker] = callback
        self.subscribe(self._sync_topic, self._on_sync)
        if self._connected:
            self._send_marker(self._client, marker)

    def _send_marker(self, client: paho.Client, marker: str) -> None:
        info = client.publish(self._sync_topic, json.dumps({"marker": marker}), qos=1)
        with self._cond:
            self._track(info, 1)

    def _on_sync(self, topic: str, payload: bytes, retained: bool) -> None:
        try:
            marker = json.loads(payload).get("marker")
        except (ValueError, AttributeError):
            return                                  # not ours
        with self._cond:
            callback = self._awaiting.pop(str(marker), None)
            done = not self._awaiting
        if done:
            self.unsubscribe(self._sync_topic)
        if callback is not None:
            callback()

    def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic``."""
        if self._subscriptions.pop(topic, None) is not None and self._connected:
            self._client.unsubscribe(topic)

    def publish(self, topic: str, payload: Any, *, retain: bool = False, qos: int = 1,
                backlog: Optional[int] = None) -> bool:
        """Publish; returns whether paho accepted the message (it then reaches the broker, after
        a reconnect if need be).

        A QoS 1 publish waits while ``backlog`` (default ``max_queued``) of them are
        unacknowledged, at most ``queue_wait`` seconds; paho's own thread never waits (a message
        handler that answers).  A QoS 0 publish never waits: paho keeps none once written, so it
        takes no room (and states need not queue behind a discovery flood).  While disconnected
        the message is not sent: the bridge republishes on connect.
        """
        if not self._connected:
            log.debug("Not connected; not publishing %s", topic)
            with self._cond:
                self.stats.offline += 1
            return False
        if qos and not self._wait_for_room(backlog or self.max_queued):
            return self._publish_refused(topic, f"{self.unacknowledged()} messages still wait for "
                                        "the broker's acknowledgement")
        info = self._client.publish(topic, encode(payload), qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS and info.rc != paho.MQTT_ERR_NO_CONN:
            return self._publish_refused(topic, paho.error_string(info.rc))
        with self._cond:
            self.stats.accepted += 1
            self._track(info, qos)
            recovered, self._refusing = self._refusing, False
        if recovered:
            log.warning("Publishing works again; %d publish(es) were refused so far",
                        self.stats.refused)
        return True

    def _track(self, info: paho.MQTTMessageInfo, qos: int) -> None:
        """Note a QoS 1 publish until the broker acknowledges it (call with the lock held)."""
        if qos > 0:
            self._pending.append(info)

    def _unacknowledged(self) -> int:
        """How many QoS 1 publishes wait for the broker's acknowledgement (call with the lock
        held).  The broker acknowledges in order, so the acknowledged ones leave from the
        front (one acknowledged out of order is counted until those before it are)."""
        pending = self._pending
        while pending and _acknowledged(pending[0]):
            pending.popleft()
        return len(pending)

    def _wait_acknowledged(self, done: Callable[[int], bool], timeout: float) -> bool:
        """Wait until ``done(unacknowledged publishes)`` (read with the lock held), at most
        ``timeout`` seconds; waits on the oldest publish, a slice at a time, so that ``done``
        also sees the connection drop."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                if done(self._unacknowledged()):
                    return True
                oldest = self._pending[0]
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                oldest.wait_for_publish(min(left, _ACK_POLL))
            except (RuntimeError, ValueError):      # failed for good: _acknowledged says so
                pass

    def _wait_for_room(self, backlog: int) -> bool:
        """Whether fewer than ``backlog`` publishes are unacknowledged, waiting for the broker
        unless this is paho's thread (the acknowledgements arrive there)."""
        def room(unacknowledged: int) -> bool:
            return unacknowledged < backlog or not self._connected
        if threading.get_ident() == self._network_thread:
            with self._cond:
                return room(self._unacknowledged())
        return self._wait_acknowledged(room, self.queue_wait)

    def _publish_refused(self, topic: str, reason: str) -> bool:
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

    def unacknowledged(self) -> int:
        """How many QoS 1 publishes still wait for the broker's acknowledgement (a leak in
        their tracking shows as this not going back to 0: the soak benchmark watches it)."""
        with self._cond:
            return self._unacknowledged()

    def wait_published(self, timeout: float) -> bool:
        """Block until the broker acknowledged every QoS 1 publish so far (or timeout)."""
        return self._wait_acknowledged(lambda unacknowledged: unacknowledged == 0, timeout)

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
            if self._warnings.due():
                log.error("MQTT broker %s refused the connection: %s%s", _where(self.config),
                          _refusal(reason_code), self._warnings.since())
            if reason_code.value in (RC_BAD_CREDENTIALS, RC_NOT_AUTHORIZED):
                self._set_fatal(f"the broker refused the connection: {reason_code}")
            return
        self._warnings.reset()
        self._connected_at = self._clock()
        self._network_thread = threading.get_ident()
        log.info("Connected to MQTT broker %s:%d", self.config.host, self.config.port)
        for topic in list(self._subscriptions):
            client.subscribe(topic, qos=1)
        with self._cond:
            self._connected = True
            self._cond.notify_all()
        online = client.publish(self.state_topic, ONLINE, qos=1, retain=True)
        with self._cond:
            self._track(online, 1)
            markers = list(self._awaiting)
        for marker in markers:                 # after the subscriptions: after their retained
            self._send_marker(client, marker)
        for callback in list(self.on_connected):
            try:
                callback()
            except Exception:  # a bug in one callback must not kill paho's thread
                log.exception("Error in on-connect callback")

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        if not self._warnings.due():
            return
        reason = self.diagnose()
        log.warning("Cannot reach MQTT broker %s: %s; retrying with backoff%s",
                    _where(self.config), reason, self._warnings.since())
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
        except OSError as exc:
            return _socket_problem(exc)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       reason_code: Any, properties: Any = None) -> None:
        with self._cond:
            was_connected, self._connected = self._connected, False
            self._cond.notify_all()
        if not reason_code.is_failure:    # our own disconnect (stop)
            return
        if was_connected:
            self._session_lost(reason_code)
        else:
            self._handshake_failed(reason_code)

    def _handshake_failed(self, reason_code: Any) -> None:
        """TCP worked, but the broker never accepted the MQTT session (no CONNACK)."""
        if not self._warnings.due():
            return
        if reason_code.value == RC_KEEPALIVE_TIMEOUT:
            log.warning("MQTT broker %s accepted the TCP connection but did not answer the MQTT "
                        "handshake within %d s (mqtt.keepalive): is this the broker's MQTT port? "
                        "Retrying%s", _where(self.config), self.config.keepalive,
                        self._warnings.since())
        else:
            log.warning("MQTT broker %s closed the connection before accepting the MQTT session "
                        "(%s): is this the broker's MQTT port (TLS or not)? Retrying%s",
                        _where(self.config), reason_code, self._warnings.since())

    def _session_lost(self, reason_code: Any) -> None:
        """A session the broker ended; several that end right after connecting are a takeover."""
        short = self._clock() - self._connected_at < SHORT_SESSION
        self._short_sessions = self._short_sessions + 1 if short else 0
        if not short:
            self._takeover_logged = False
        if reason_code.value == RC_SESSION_TAKEN_OVER or self._short_sessions >= TAKEOVER_SESSIONS:
            if not self._takeover_logged:
                self._takeover_logged = True
                log.warning("The MQTT broker keeps ending this bridge's session right after it "
                            "connects (%s): another client is using the same mqtt.client_id "
                            "%r. Give each bridge its own client_id", reason_code,
                            self.config.client_id)
        elif self._short_sessions <= 1:
            log.warning("Lost connection to MQTT broker (%s); reconnecting", reason_code)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        size = len(message.payload)
        for pattern, subscription in list(self._subscriptions.items()):
            if not paho.topic_matches_sub(pattern, message.topic):
                continue
            try:
                if size > subscription.max_payload:
                    self._refuse(message.topic, size, subscription)
                else:
                    subscription.handler(message.topic, bytes(message.payload),
                                         bool(message.retain))
            except Exception:  # the bridge must never die on a message
                log.exception("Error handling MQTT message on %s", message.topic)

    def _refuse(self, topic: str, size: int, subscription: _Subscription) -> None:
        if self._oversize_warnings.due():
            log.warning("Refusing a %d-byte message on %s unread (at most %d bytes; %d more "
                        "refused since the last warning)", size, topic, subscription.max_payload,
                        self._oversize_warnings.skipped)
        if subscription.on_oversized is not None:
            subscription.on_oversized(topic, size)
