"""Home Assistant discovery: what is announced, sent again when asked, cleared when it is gone.

A point's entity is announced when its first value arrives, so it never shows up empty.  Retained
configs of ours found on the broker that this run does not announce after every device was polled
once are cleared (an entity or device that vanished while the bridge was down).  A config is ours
when it names this bridge's own state topic exactly, as its availability (or, the connection
sensor, as its state): a prefix of topics would make a bridge on ``solar`` clear the entities of
one on ``solar/garage``.
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable, Dict, Mapping, Sequence, Set

from sungrow2mqtt import discovery
from sungrow2mqtt.catalog import Catalog
from sungrow2mqtt.components.fleet import FleetListener
from sungrow2mqtt.config import HomeAssistantConfig
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.model import Device
from sungrow2mqtt.mqtt import MqttConnection

log = logging.getLogger(__name__)


class Announcer(FleetListener):
    """Discovery configs of the bridge, its plants, devices and points."""

    def __init__(self, mqtt: MqttConnection, topics: Topics, catalog: Catalog,
                 settings: HomeAssistantConfig, *, on_ha_birth: Callable[[], None]) -> None:
        self._mqtt = mqtt
        self._topics = topics
        self._catalog = catalog
        self._settings = settings
        self._on_ha_birth = on_ha_birth
        self._lock = threading.Lock()
        self._announced: Dict[str, Any] = {}     # discovery topic -> payload
        self._stale: Set[str] = set()            # our retained configs found on the broker
        self._full_poll_done = False             # every device polled once: stale is knowable

    @property
    def _config_filter(self) -> str:
        return f"{self._topics.prefix}/+/+/+/config"

    def start(self) -> None:
        """Listen for Home Assistant's birth message and for our retained configs."""
        if self._settings.discovery:
            self._mqtt.subscribe(self._settings.status_topic, self._on_ha_status)
            self._mqtt.subscribe(self._config_filter, self._on_retained_config)

    def stop(self) -> None:
        """Stop listening."""
        if self._settings.discovery:
            self._mqtt.unsubscribe(self._settings.status_topic)
            self._mqtt.unsubscribe(self._config_filter)

    def republish(self) -> None:
        """Every announced config again (after a reconnect or Home Assistant's birth)."""
        with self._lock:
            announced = dict(self._announced)
        for topic, payload in announced.items():
            self._mqtt.publish(topic, payload, retain=True)

    def announced(self) -> Set[str]:
        """The discovery topics announced by this run."""
        with self._lock:
            return set(self._announced)

    # -- fleet events (worker thread) -------------------------------------------------------------

    def on_devices(self, devices: Sequence[Device], removed: Sequence[Device]) -> None:
        """The bridge's own entities and every device's problem and data time sensors.

        Devices that left have their configs cleared.
        """
        for device in removed:
            node = f"/{discovery.node_id(device)}/"
            with self._lock:
                gone = {t for t in self._announced if node in t}
            self.withdraw(gone)
        self.announce(discovery.bridge_configs(self._topics))
        for device in devices:
            if self._catalog.enabled(device.device_type):
                self.announce(discovery.device_configs(device, self._topics))

    def on_values(self, device: Device, state: Mapping[str, Any], new_keys: Sequence[str]
                  ) -> None:
        """An entity for each point that has its first value."""
        if new_keys:
            specs = {spec.key: spec for spec in self._catalog.enabled(device.device_type)}
            for key in new_keys:
                self.announce(dict([discovery.sensor_config(device, specs[key], self._topics)]))

    def on_full_poll(self) -> None:
        """Every entity with a value is announced now: the rest of ours on the broker is stale."""
        with self._lock:
            self._full_poll_done = True
        self._clear_stale()

    # -- other components' entities (control) and internals -----------------------------------

    def announce(self, configs: Mapping[str, Any]) -> None:
        """Publish discovery configs (retained) and keep them as this run's: never stale."""
        if not self._settings.discovery:
            return
        for topic, payload in configs.items():
            with self._lock:
                if self._announced.get(topic) == payload:
                    continue
                self._announced[topic] = payload
            self._mqtt.publish(topic, payload, retain=True)

    def withdraw(self, topics: Set[str]) -> None:
        """Clear discovery configs (an entity or device that is gone)."""
        for topic in topics:
            with self._lock:
                self._announced.pop(topic, None)
            log.info("Removing discovery config %s", topic)
            self._mqtt.publish(topic, None, retain=True)

    def _clear_stale(self) -> None:
        with self._lock:
            if not self._full_poll_done:
                return
            stale = self._stale - set(self._announced)
            self._stale.clear()
        if stale:
            self.withdraw(stale)

    def _on_ha_status(self, topic: str, payload: bytes, retained: bool) -> None:
        if payload.strip().lower() == b"online":
            log.info("Home Assistant is online; republishing discovery and states")
            self._on_ha_birth()

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
        with self._lock:
            self._stale.add(topic)
        self._clear_stale()
