"""The ``control`` section: off unless asked, narrowed per plant or device, mistakes named."""
from __future__ import annotations

import logging
from typing import Any, Dict

import pytest

from sungrow2mqtt.config import ControlConfig, parse_config
from sungrow2mqtt.errors import ConfigError

CREDENTIALS = {"server": "eu", "appkey": "a" * 32, "access_key": "b" * 32, "username": "u",
               "password": "p"}


def parsed(**sections: Any) -> ControlConfig:
    return parse_config({"isolarcloud": CREDENTIALS, **sections}, "config.yaml",
                        environ={}).control


def refusal(control: Dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parsed(control=control)
    return str(info.value)


def test_off_unless_asked() -> None:
    control = parsed()
    assert control == ControlConfig(enabled=False, plants=(), devices=())
    assert not control.allows(1563218, "A2231234567", "1563218_14_1_1")


def test_enabled_allows_every_device_unless_narrowed() -> None:
    everything = parsed(control={"enabled": True})
    assert everything.allows(1563218, "A2231234567", "1563218_14_1_1")
    by_plant = parsed(control={"enabled": True, "plants": [1587093]})
    assert by_plant.allows(1587093, "A2240112233", "1587093_1_1_1")
    assert not by_plant.allows(1563218, "A2231234567", "1563218_14_1_1")
    by_device = parsed(control={"enabled": True, "devices": ["A2231234567", "1587093_1_2_1"]})
    assert by_device.allows(1563218, "A2231234567", "1563218_14_1_1")     # by serial
    assert by_device.allows(1587093, "A2240112244", "1587093_1_2_1")      # by ps_key
    assert not by_device.allows(1587093, "A2240112233", "1587093_1_1_1")


def test_lists_are_deduplicated_and_ids_may_be_digit_strings() -> None:
    control = parsed(control={"enabled": True, "plants": ["1563218", 1563218],
                              "devices": ["A1", "A1"]})
    assert (control.plants, control.devices) == ((1563218,), ("A1",))


@pytest.mark.parametrize("control, message", [
    ({"enabled": "yes"}, "config.yaml: control.enabled: expected true or false, got 'yes' "
                         "(spelled out, without quotes)"),
    ({"plants": [0]}, "config.yaml: control.plants[0]: expected a positive integer plant id "
                      "(ps_id), got 0"),
    ({"devices": ["a/b"]}, "config.yaml: control.devices[0]: expected a device serial number or "
                           "ps_key (like A2231234567 or 1234567_14_1_1), got 'a/b'"),
    ({"devices": "A1"}, "config.yaml: control.devices: expected a list of device serial numbers "
                        "or ps_keys, got 'A1'"),
    ({"enable": True}, "config.yaml: control.enable: unknown key (did you mean 'enabled'?)"),
])
def test_mistakes_are_one_line_each(control: Dict[str, Any], message: str) -> None:
    assert refusal(control) == message


def test_narrowing_a_disabled_control_or_an_unbridged_plant_is_warned_about(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "sungrow2mqtt.config"):
        parsed(control={"devices": ["A1"]})
        parsed(plants=[1563218], control={"enabled": True, "plants": [1587093]})
    assert [r.getMessage() for r in caplog.records] == [
        "config.yaml: control.enabled: control is off, so control.plants and control.devices "
        "have no effect",
        "config.yaml: control.plants: plant 1587093 is not bridged (not in plants), so it "
        "cannot be controlled"]
