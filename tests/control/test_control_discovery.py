"""Control entities' discovery payloads (pure) and the device limits their ranges come from."""
from __future__ import annotations

import datetime as dt
from typing import Optional

import pytest

from sungrow2mqtt.control import RATED_POWER, SettingError, load_parameters, property_limit
from sungrow2mqtt.control.discovery import command_filter, entity_config
from sungrow2mqtt.control.spec import rated_power
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.model import Device

CATALOG = load_parameters()
TOPICS = Topics("solar")
ESS = Device(ps_key="1563218_14_1_1", ps_id=1563218, device_type=14, type_name="ESS",
             name="SH10RT A2231234567", model="SH10RT", serial="A2231234567", firmware=None,
             tz=dt.timezone.utc, uuid="2300102")
LIMITS = {RATED_POWER: 10000.0, property_limit(18290): 5.0}


def config(key: str, limits: Optional[dict] = None) -> tuple:
    spec = CATALOG.get(14, key)
    assert spec is not None
    return entity_config(ESS, spec, LIMITS if limits is None else limits, TOPICS)


def test_a_number_on_its_device_with_state_from_the_read_back() -> None:
    topic, payload = config("soc_upper_limit")
    assert topic == "homeassistant/number/sungrow2mqtt_1563218_14_1_1/soc_upper_limit/config"
    assert payload == {
        "name": "SOC upper limit",
        "unique_id": "sungrow2mqtt_1563218_14_1_1_soc_upper_limit",
        "object_id": "sungrow_sh10rt_a2231234567_soc_upper_limit",
        "default_entity_id": "number.sungrow_sh10rt_a2231234567_soc_upper_limit",
        "availability": [{"topic": "solar/bridge/state"}],
        "device": payload["device"], "origin": payload["origin"],
        "command_topic": "solar/1563218_14_1_1/set/soc_upper_limit",
        "entity_category": "config",
        "state_topic": "solar/1563218_14_1_1/control",
        "value_template": "{{ value_json.soc_upper_limit }}",
        "min": 70.0, "max": 100.0, "step": 1.0, "mode": "slider",
        "unit_of_measurement": "%", "device_class": "battery", "icon": "mdi:battery-arrow-up",
    }
    assert payload["device"]["identifiers"] == ["sungrow2mqtt_1563218_14_1_1"]


def test_device_limits_bound_numbers() -> None:
    assert config("feed_in_limit")[1]["max"] == 10000.0                # rated power
    assert config("max_charging_power")[1]["max"] == 5.0               # property point 18290
    assert config("max_charging_power", {})[1]["max"] == 10.6          # appendix 10's default
    with pytest.raises(SettingError, match="depends on the device's rated power"):
        config("feed_in_limit", {})


def test_select_switch_and_button() -> None:
    select = config("energy_management_mode")[1]
    assert select["options"] == ["Self-consumption", "Compulsory", "External energy dispatch",
                                 "VPP dispatch"]
    switch = config("battery_first")[1]
    assert (switch["payload_on"], switch["payload_off"]) == ("ON", "OFF")
    topic, button = config("restart")
    assert topic.startswith("homeassistant/button/") and button["payload_press"] == "PRESS"
    assert "state_topic" not in button                    # a button has no state to read back
    assert button["enabled_by_default"] is False          # restarts the inverter: opt in


def test_every_command_topic_matches_the_one_subscription() -> None:
    import paho.mqtt.client as paho
    for spec in CATALOG.for_device_type(14):
        topic = entity_config(ESS, spec, LIMITS, TOPICS)[1]["command_topic"]
        assert paho.topic_matches_sub(command_filter(TOPICS), topic)


@pytest.mark.parametrize("model, watts", [
    ("SH10RT", 10000), ("SG5.0RS", 5000), ("SH5K-20", 5000), ("SG110CX", 110000),
    ("SH10RT-V112", 10000), ("sg3.0rs-s", 3000),
    ("SBR096", None), ("WiNet-S", None), ("DTSU666-20", None), ("SG", None), ("SH0RS", None),
])
def test_the_rated_power_an_inverter_model_names(model: str, watts: Optional[int]) -> None:
    assert rated_power(model) == watts
