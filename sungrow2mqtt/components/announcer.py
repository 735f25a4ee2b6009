"""Home Assistant discovery: what is announced, sent again when asked, cleared when it is gone.

A point's entity is announced when its first value arrives, so it never shows up empty.  Retained
configs of ours found on the broker that this run does not announce after every device was polled
once are cleared (an entity or device that vanished while the bridge was down), once the broker
has delivered them all (a marker sent to ourselves comes back after them); then the bridge stops
listening to its own configs.  A config is ours when it names this bridge's own state topic
exactly, as its availability (or, the connection sensor, as its state): a prefix of topics would
make a bridge on ``solar`` clear the entities of one on ``solar/garage``.

Configs go out on the announcer's own thread, paced (a few hundred a second, and never many
unacknowledged by the broker), so a large fleet's thousands of configs never hold back the states
the worker publishes (a state is retained: Home Assistant reads it when the config arrives).  A
config counts as announced once paho has accepted it; one it refused is sent again.  Only a digest
of each is kept.

The same thread carries every republish (a reconnect, Home Assistant's birth message): one at a
time and at most one pending, however many births arrive; the states go first, then the configs.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Set

from sungrow2mqtt import discovery
from sungrow2mqtt.catalog import Catalog
from sungrow2mqtt.components.fleet import FleetListener
from sungrow2mqtt.config import HomeAssistantConfig
from sungrow2mqtt.discovery import Payload, Topics
from sungrow2mqtt.model import Device
from sungrow2mqtt.mqtt import MqttConnection, encode

log = logging.getLogger(__name__)

BRIDGE = "bridge"          # the bridge's own configs, among the ps_keys of devices to announce
OTHERS = "others"          # configs other components (control) hand in, likewise
FLOOD_BACKLOG = 100        # configs are sent only while fewer publishes wait for the broker
# Configs a second at most (after a first burst): the broker acknowledges at once, but a subscriber
# such as Home Assistant must keep up, and mosquitto queues only 1,000 messages for a client that
# lags (max_queued_messages) before it drops the rest.
FLOOD_RATE = 500.0
FLOOD_BURST = 200
RETRY_DELAY = 5.0          # seconds before configs that paho refused are tried again


class Announcer(FleetListener):
    """Discovery configs of the bridge, its plants, devices and points; every republish."""

    def __init__(self, mqtt: MqttConnection, topics: Topics, catalog: Catalog,
                 settings: HomeAssistantConfig, *, on_republish: Callable[[], None]) -> None:
        self._mqtt = mqtt
        self._topics = topics
        self._catalog = catalog
        self._settings = settings
        self._on_republish = on_republish
        self._cond = threading.Condition()
        self._devices: Dict[str, Device] = {}
        self._keys: Dict[str, Set[str]] = {}       # ps_key -> keys that had a value: entities
        self._sent: Dict[str, int] = {}            # config topic -> digest of what paho took
        self._others: Dict[str, Payload] = {}      # config topic -> payload of other components
        self._dirty: Dict[str, bool] = {}          # ps_key, BRIDGE, OTHERS to announce -> forced
        self._withdraw: Set[str] = set()           # config topics to clear
        self._stale: Set[str] = set()              # our retained configs found on the broker
        self._full_poll_done = False               # every device polled once: stale is knowable
        self._configs_seen = False                 # the broker delivered our retained configs
        self._watching = False                     # subscribed to our retained configs
        self._republish = False                    # a republish is pending
        self._busy = False
        self._stopping = False
        self._thread: Optional[threading.Thread] = None
        self._next_send = 0.0                      # monotonic: when the next config may go

    @property
    def _config_filter(self) -> str:
        return f"{self._topics.prefix}/+/+/+/config"

    def start(self) -> None:
        """Start the announcer's thread; listen for Home Assistant's birth and our configs."""
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="announcer", daemon=True)
        self._thread.start()
        if self._settings.discovery:
            self._mqtt.subscribe(self._settings.status_topic, self._on_ha_status)
            self._watching = True
            self._mqtt.subscribe(self._config_filter, self._on_retained_config)
            self._mqtt.after_delivered(self._on_configs_delivered)

    def stop(self) -> None:
        """Stop listening and stop the thread (configs not sent by now are not sent)."""
        if self._settings.discovery:
            self._mqtt.unsubscribe(self._settings.status_topic)
            self._mqtt.unsubscribe(self._config_filter)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def republish(self) -> None:
        """States, faults, info and every config again, soon, on the announcer's thread (after a
        reconnect or Home Assistant's birth): a request while one is pending joins it."""
        with self._cond:
            self._republish = True
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every config due is sent (``run --once``); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._busy or self._due()), timeout)

    def announced(self) -> Set[str]:
        """The discovery topics announced by this run (accepted by paho)."""
        with self._cond:
            return set(self._sent)

    # -- fleet events (worker thread) -------------------------------------------------------------

    def on_devices(self, devices: Sequence[Device], removed: Sequence[Device]) -> None:
        """The bridge's own entities and every device's problem and data time sensors.

        Devices that left have their configs cleared.
        """
        if not self._settings.discovery:
            return
        with self._cond:
            for device in removed:
                node = f"/{discovery.node_id(device)}/"
                self._withdraw.update(t for t in self._sent if node in t)
                for known in (self._devices, self._keys, self._dirty):
                    known.pop(device.ps_key, None)
            self._mark(BRIDGE)
            for device in devices:
                if (self._catalog.enabled_by_key(device.device_type)
                        and self._devices.get(device.ps_key) != device):
                    self._devices[device.ps_key] = device
                    self._mark(device.ps_key)
            self._cond.notify_all()

    def on_values(self, device: Device, state: Mapping[str, Any], new_keys: Sequence[str]
                  ) -> None:
        """An entity for each point that has its first value."""
        if not new_keys or not self._settings.discovery:
            return
        with self._cond:
            self._devices.setdefault(device.ps_key, device)
            self._keys.setdefault(device.ps_key, set()).update(new_keys)
            self._mark(device.ps_key)
            self._cond.notify_all()

    def _on_configs_delivered(self) -> None:
        """Every retained config of ours is in: until now a late one could be missed and live on
        (a broker with thousands of them delivers for a while, a loaded machine reads slowly)."""
        with self._cond:
            self._configs_seen = True
            self._cond.notify_all()

    def on_full_poll(self) -> None:
        """Every entity with a value is announced now: the rest of ours on the broker is stale."""
        with self._cond:
            self._full_poll_done = True
            self._cond.notify_all()

    # -- other components' entities (control) ----------------------------------------------------

    def announce(self, configs: Mapping[str, Payload]) -> None:
        """Discovery configs of another component: sent (retained) on the announcer's thread,
        again with every republish, and never taken for stale."""
        if not self._settings.discovery or not configs:
            return
        with self._cond:
            self._others.update(configs)
            self._mark(OTHERS)
            self._cond.notify_all()

    def withdraw(self, topics: Set[str]) -> None:
        """Clear discovery configs another component announced (an entity that is gone)."""
        with self._cond:
            for topic in topics:
                self._others.pop(topic, None)
            self._withdraw.update(topics)
            self._cond.notify_all()

    # -- the announcer's thread -------------------------------------------------------------------

    def _mark(self, ps_key: str, forced: bool = False) -> None:
        self._dirty[ps_key] = self._dirty.get(ps_key, False) or forced

    def _due(self) -> bool:
        """Whether configs wait to be sent or cleared (call with the lock held)."""
        stale = self._stale_knowable() and bool(self._stale)
        done_watching = self._watching and self._stale_knowable()
        return self._republish or bool(
            self._mqtt.connected and (self._dirty or self._withdraw or stale or done_watching))

    def _stale_knowable(self) -> bool:
        """Whether what is ours and not announced is stale (call with the lock held)."""
        return self._full_poll_done and self._configs_seen

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._due())
                if self._stopping:
                    return
                republish, self._republish = self._republish, False
                if republish and self._settings.discovery:
                    for ps_key in [BRIDGE, OTHERS, *self._devices]:
                        self._mark(ps_key, forced=True)
                self._busy = True
            try:
                if republish:
                    self._on_republish()      # the states first: they are what people look at
                complete = self._drain()
            except Exception:   # the thread must outlive a bug: say what happened, go on
                log.exception("Unexpected error while announcing to Home Assistant")
                complete = False
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                if not complete:              # refused: try again a little later
                    self._cond.wait_for(lambda: self._stopping or self._republish,
                                        RETRY_DELAY)

    def _drain(self) -> bool:
        """Send and clear what is due while connected; False when paho refused a config."""
        while self._mqtt.connected:
            with self._cond:
                if self._stopping:
                    return True
                if not self._dirty and not self._withdraw and self._stale_knowable():
                    self._withdraw.update(self._stale - set(self._sent))
                    self._stale.clear()
                withdraw = self._withdraw.pop() if self._withdraw else None
                ps_key = next(iter(self._dirty), "") if withdraw is None else ""
                forced = self._dirty.pop(ps_key) if ps_key else False
            if withdraw is not None:
                self._clear(withdraw)
            elif ps_key:
                if not self._announce(ps_key, forced):
                    with self._cond:
                        self._mark(ps_key, forced)
                    return False
            else:
                self._stop_watching_configs()
                return True
        return True

    def _stop_watching_configs(self) -> None:
        """Once the stale configs are cleared, stop receiving ours: every config sent would come
        back through the subscription (tens of thousands in a large fleet), and a broker queues
        only so many messages for a client before it drops them, requests included."""
        with self._cond:
            if not (self._stale_knowable() and self._watching):
                return
            self._watching = False
        self._mqtt.unsubscribe(self._config_filter)

    def _announce(self, ps_key: str, forced: bool) -> bool:
        """Every config of one device (or of the bridge); False when paho refused one."""
        for topic, payload in self._configs(ps_key).items():
            data = encode(payload)
            digest = hash(data)
            with self._cond:
                if not forced and self._sent.get(topic) == digest:
                    continue
            self._pace()
            if not self._mqtt.publish(topic, data, retain=True, backlog=FLOOD_BACKLOG):
                return False
            with self._cond:
                self._sent[topic] = digest
        return True

    def _pace(self) -> None:
        """Wait until the next config may go: FLOOD_RATE a second, FLOOD_BURST at once."""
        now = time.monotonic()
        self._next_send = max(self._next_send, now - FLOOD_BURST / FLOOD_RATE) + 1 / FLOOD_RATE
        if self._next_send > now:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping, self._next_send - now)

    def _configs(self, ps_key: str) -> Dict[str, Payload]:
        if ps_key == BRIDGE:
            return discovery.bridge_configs(self._topics)
        with self._cond:
            if ps_key == OTHERS:
                return dict(self._others)
            device = self._devices.get(ps_key)
            keys = sorted(self._keys.get(ps_key, ()))
        if device is None:
            return {}
        configs = discovery.device_configs(device, self._topics)
        specs = self._catalog.enabled_by_key(device.device_type)
        configs.update(discovery.sensor_config(device, specs[key], self._topics)
                       for key in keys if key in specs)
        return configs

    def _clear(self, topic: str) -> None:
        log.info("Removing discovery config %s", topic)
        if self._mqtt.publish(topic, None, retain=True, backlog=FLOOD_BACKLOG):
            with self._cond:
                self._sent.pop(topic, None)

    # -- MQTT messages (paho's thread: nothing here may wait for the broker) ----------------------

    def _on_ha_status(self, topic: str, payload: bytes, retained: bool) -> None:
        if payload.strip().lower() == b"online":
            with self._cond:
                pending = self._republish
            if pending:
                log.debug("Home Assistant is online; a republish is pending already")
            else:
                log.info("Home Assistant is online; republishing discovery and states")
                self.republish()

    def _ours(self, config: Any) -> bool:
        """Whether a discovery config names this bridge's state topic, exactly."""
        if not isinstance(config, dict):
            return False
        availability = config.get("availability")
        named = [a.get("topic") for a in availability if isinstance(a, dict)] if isinstance(
            availability, list) else []
        return self._topics.bridge_state in (*named, config.get("state_topic"))

    def _on_retained_config(self, topic: str, payload: bytes, retained: bool) -> None:
        """Remember retained configs of ours, so vanished entities can be cleared after restarts."""
        if not (retained and payload and topic.split("/")[-3].startswith("sungrow2mqtt_")):
            return
        try:
            config = json.loads(payload)
        except ValueError:
            return
        if not self._ours(config):
            return
        with self._cond:
            self._stale.add(topic)
            self._cond.notify_all()

