"""Home Assistant MQTT discovery payloads: pure functions from catalog entries and devices.

No I/O here, so every rule of Home Assistant's schema can be unit-tested.  Topic ids are limited to
``[a-zA-Z0-9_-]``; every payload carries ``origin``, a ``device`` block with ``identifiers`` and the
bridge's availability topic.

Entity ids: HA 2025.10 replaced ``object_id`` by ``default_entity_id`` (``<component>.<id>``) and
HA 2026.4 ignores ``object_id``; every payload sends both with the same id, so old and new HA
give the same entity ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from sungrow2mqtt import __version__
from sungrow2mqtt.catalog import PointSpec
from sungrow2mqtt.model import Device, slug

MANUFACTURER = "SUNGROW"
ORIGIN = {"name": "sungrow2mqtt", "sw_version": __version__}
Payload = Dict[str, Any]


@dataclass(frozen=True)
class Topics:
    """Every MQTT topic the bridge uses, derived from the base topic and discovery prefix."""

    base: str
    prefix: str = "homeassistant"

    @property
    def bridge_state(self) -> str:
        """Retained ``online``/``offline``; also the last will."""
        return f"{self.base}/bridge/state"

    @property
    def bridge_info(self) -> str:
        """Retained JSON about the bridge."""
        return f"{self.base}/bridge/info"

    @property
    def bridge_devices(self) -> str:
        """Retained JSON list of the bridged plants and devices."""
        return f"{self.base}/bridge/devices"

    @property
    def bridge_id(self) -> str:
        """The bridge's own identifier (one per base topic)."""
        return "sungrow2mqtt_bridge_" + (slug(self.base) or "default")

    def request(self, name: str) -> str:
        """Where requests named ``name`` arrive (``+`` for all)."""
        return f"{self.base}/bridge/request/{name}"

    def response(self, name: str) -> str:
        """Where the answer to request ``name`` goes."""
        return f"{self.base}/bridge/response/{name}"

    def state(self, ps_key: str) -> str:
        """Retained JSON of a device's latest values."""
        return f"{self.base}/{ps_key}"

    def faults(self, ps_key: str) -> str:
        """Retained JSON of a device's open faults and alarms."""
        return f"{self.base}/{ps_key}/faults"

    def config(self, component: str, node_id: str, object_id: str) -> str:
        """A discovery config topic."""
        return f"{self.prefix}/{component}/{node_id}/{object_id}/config"


def node_id(device: Device) -> str:
    """Discovery node id of a device: stable, from its ps_key."""
    return "sungrow2mqtt_" + device.ps_key


def device_block(device: Device, topics: Topics) -> Payload:
    """The ``device`` block: one HA device per plant and per plant device."""
    block: Payload = {
        "identifiers": [node_id(device)],
        "name": device.name,
        "manufacturer": MANUFACTURER,
        "model": device.model,
        "via_device": topics.bridge_id if device.is_plant else node_id_of_plant(device),
    }
    if device.serial:
        block["serial_number"] = device.serial
    if device.firmware:
        block["sw_version"] = device.firmware
    return block


def node_id_of_plant(device: Device) -> str:
    """Identifier of the plant a device belongs to."""
    return "sungrow2mqtt_" + device.plant_ps_key


def _entity_id_keys(component: str, object_id: str) -> Payload:
    """``object_id`` for HA before 2025.10 and ``default_entity_id`` for later ones."""
    return {"object_id": object_id, "default_entity_id": f"{component}.{object_id}"}


def entity_common(device: Device, topics: Topics, component: str, key: str, name: str) -> Payload:
    """What every entity of a device carries: name, ids, availability, device and origin."""
    return {
        "name": name,
        "unique_id": f"{node_id(device)}_{key}",
        **_entity_id_keys(component, f"{device.object_prefix}_{key}"),
        "availability": [{"topic": topics.bridge_state}],
        "device": device_block(device, topics),
        "origin": ORIGIN,
    }


def sensor_config(device: Device, spec: PointSpec, topics: Topics) -> Tuple[str, Payload]:
    """Discovery topic and payload of one catalog point of one device."""
    payload = entity_common(device, topics, "sensor", spec.key, spec.name)
    payload.update({
        "state_topic": topics.state(device.ps_key),
        "value_template": "{{ value_json.%s }}" % spec.key,
    })
    optional: Dict[str, Optional[Any]] = {
        "unit_of_measurement": spec.unit,
        "device_class": spec.device_class,
        "state_class": spec.state_class,
        "suggested_display_precision": spec.precision,
        "icon": spec.icon,
        "entity_category": spec.category,
    }
    payload.update({k: v for k, v in optional.items() if v is not None})
    if spec.options:
        payload["options"] = sorted(set(spec.options.values()))
    if spec.enabled is not True:
        payload["enabled_by_default"] = False   # optional tier: polled, switched on in HA
    return topics.config("sensor", node_id(device), spec.key), payload


def problem_config(device: Device, topics: Topics) -> Tuple[str, Payload]:
    """A ``problem`` binary sensor: ON while the device has an open fault or alarm."""
    payload = entity_common(device, topics, "binary_sensor", "problem", "Problem")
    payload.update({
        "state_topic": topics.faults(device.ps_key),
        "value_template": "{{ value_json.problem }}",
        "payload_on": "ON",
        "payload_off": "OFF",
        "device_class": "problem",
        "json_attributes_topic": topics.faults(device.ps_key),
        "json_attributes_template": "{{ {'faults': value_json.faults} | tojson }}",
    })
    return topics.config("binary_sensor", node_id(device), "problem"), payload


def data_time_config(device: Device, topics: Topics) -> Tuple[str, Payload]:
    """A diagnostic timestamp sensor: when the cloud's values of the device were measured.

    The cloud refreshes about every 5 minutes and may lag more; this shows how old the other
    sensors' values are (``last_update`` of the state: ``device_time`` in the plant's zone).
    """
    payload = entity_common(device, topics, "sensor", "data_time", "Data time")
    payload.update({
        "state_topic": topics.state(device.ps_key),
        "value_template": "{{ value_json.last_update }}",
        "device_class": "timestamp",
        "entity_category": "diagnostic",
    })
    return topics.config("sensor", node_id(device), "data_time"), payload


def device_configs(device: Device, topics: Topics) -> Dict[str, Payload]:
    """The entities every polled device has, whatever its points: problem and data time."""
    return dict([problem_config(device, topics), data_time_config(device, topics)])


def bridge_configs(topics: Topics) -> Dict[str, Payload]:
    """The bridge's own device: a Refresh button and a connection-state sensor."""
    device = {"identifiers": [topics.bridge_id], "name": "sungrow2mqtt bridge",
              "manufacturer": "sungrow2mqtt", "model": "iSolarCloud Open API bridge",
              "sw_version": __version__}
    common = {"availability": [{"topic": topics.bridge_state}], "device": device,
              "origin": ORIGIN}
    button = {**common, "name": "Refresh", "unique_id": f"{topics.bridge_id}_refresh",
              **_entity_id_keys("button", "sungrow2mqtt_refresh"),
              "command_topic": topics.request("refresh"),
              "payload_press": '{"transaction": "home-assistant"}', "icon": "mdi:refresh"}
    connection = {"name": "Connection state", "unique_id": f"{topics.bridge_id}_connection",
                  **_entity_id_keys("binary_sensor", "sungrow2mqtt_connection_state"),
                  "state_topic": topics.bridge_state,
                  "payload_on": "online", "payload_off": "offline",
                  "device_class": "connectivity", "entity_category": "diagnostic",
                  "device": device, "origin": ORIGIN}
    return {
        topics.config("button", topics.bridge_id, "refresh"): button,
        topics.config("binary_sensor", topics.bridge_id, "connection_state"): connection,
    }
