"""Home Assistant discovery of control entities: pure functions from parameter specs and devices.

Each settable parameter of a device is one ``number``, ``select``, ``switch`` or ``button`` on
that device, in the ``config`` entity category.  Its state comes from the device's read-back
topic ``<base>/<ps_key>/control`` (a JSON object: setting key -> the value the device reported,
null while unknown), never from what was last sent; commands go to
``<base>/<ps_key>/set/<key>``.
"""
from __future__ import annotations

from typing import Mapping, Tuple

from sungrow2mqtt.control.encoding import PRESS, SWITCH_STATES, number_range
from sungrow2mqtt.control.spec import ParameterSpec
from sungrow2mqtt.discovery import Payload, Topics, entity_common, node_id
from sungrow2mqtt.model import Device

__all__ = ["command_filter", "command_topic", "entity_config", "state_topic"]


def state_topic(topics: Topics, ps_key: str) -> str:
    """Retained JSON of a device's settings as the device reported them."""
    return f"{topics.base}/{ps_key}/control"


def command_topic(topics: Topics, ps_key: str, key: str) -> str:
    """Where Home Assistant (or anyone) sends a new value for one setting of one device."""
    return f"{topics.base}/{ps_key}/set/{key}"


def command_filter(topics: Topics) -> str:
    """Every command topic, for one subscription."""
    return f"{topics.base}/+/set/+"


def entity_config(device: Device, spec: ParameterSpec, limits: Mapping[str, float],
                  topics: Topics) -> Tuple[str, Payload]:
    """Discovery topic and payload of one setting of one device.

    Raises SettingError when a number's range depends on a device limit nobody knows: such a
    setting cannot be offered.
    """
    payload = entity_common(device, topics, spec.component, spec.key, spec.name)
    payload.update({"command_topic": command_topic(topics, device.ps_key, spec.key),
                    "entity_category": "config"})
    if spec.readable:
        payload.update({"state_topic": state_topic(topics, device.ps_key),
                        "value_template": "{{ value_json.%s }}" % spec.key})
    if spec.component == "number":
        low, high = number_range(spec, limits)
        payload.update({"min": low, "max": high, "step": spec.step})
        if spec.mode != "auto":
            payload["mode"] = spec.mode
        if spec.unit:
            payload["unit_of_measurement"] = spec.unit
        if spec.device_class:
            payload["device_class"] = spec.device_class
    elif spec.component == "select":
        payload["options"] = list(spec.options.values())
    elif spec.component == "switch":
        payload.update({"payload_on": SWITCH_STATES[0], "payload_off": SWITCH_STATES[1]})
    else:
        payload["payload_press"] = PRESS
    if spec.icon:
        payload["icon"] = spec.icon
    if not spec.enabled:
        payload["enabled_by_default"] = False
    return topics.config(spec.component, node_id(device), spec.key), payload
