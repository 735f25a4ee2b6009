"""The control component on its own, wired like the bridge will wire it, against the real
simulator over HTTP and a real broker: the devices come from the simulator's device list, requests
and commands arrive over MQTT, answers and entities leave over MQTT.

The bridge's announcer and request API are stood in for by the smallest things that do their
job here: configs published retained, ``<base>/bridge/request/set`` checked against
``SET_FIELDS`` and handed to ``request_set``, answers in the request API's envelope.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, List, Mapping, Optional, Set

from conftest import make_client

from sungrow2mqtt.config import ControlConfig, parse_config
from sungrow2mqtt.control import load_parameters
from sungrow2mqtt.control.component import SET_FIELDS, SET_REQUEST, Control
from sungrow2mqtt.discovery import Payload, Topics
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient
from sungrow2mqtt.isolarcloud.params import ParameterClient
from sungrow2mqtt.model import Device, device_from_row, plant_from_row
from sungrow2mqtt.mqtt import MqttConnection
from sungrow2mqtt.simulator import SimulatorServer

ESS = "1563218_14_1_1"          # SH10RT A2231234567, the hybrid inverter
SG5 = "1587093_1_1_1"           # SG5.0RS A2240112233, a string inverter
SG8 = "1587093_1_2_1"           # SG8.0RS A2240112244
CATALOG = load_parameters()


def fleet(client: IsolarCloudClient) -> List[Device]:
    """Every plant and device of the account, as the bridge's device refresh builds them."""
    plants = {p.ps_id: p for p in (plant_from_row(row, "Plant")
                                   for row in client.get_power_station_list())}
    devices = list(plants.values())
    for row in client.get_device_list_by_user():
        devices.append(device_from_row(row, plants[int(row["ps_id"])], "Device"))
    return devices


class RetainedAnnouncer:
    """Discovery configs straight to the broker, retained (the bridge's announcer does more)."""

    def __init__(self, mqtt: MqttConnection) -> None:
        self.mqtt = mqtt

    def announce(self, configs: Mapping[str, Payload]) -> None:
        for topic, payload in configs.items():
            self.mqtt.publish(topic, payload, retain=True)

    def withdraw(self, topics: Set[str]) -> None:
        for topic in topics:
            self.mqtt.publish(topic, None, retain=True)


class ControlUnderTest:
    """A started Control with its MQTT connection, client and stand-ins; ``close()`` ends it."""

    def __init__(self, sim: SimulatorServer, port: int, base: str,
                 settings: Optional[ControlConfig] = None, *, expire_seconds: int = 120,
                 poll_interval: float = 0.02, write_spacing: float = 0.0) -> None:
        config = parse_config({"isolarcloud": {"server": sim.url, "appkey": "a", "access_key": "b",
                                               "username": "u", "password": "p"},
                               "mqtt": {"host": "127.0.0.1", "port": port, "base_topic": base,
                                        "client_id": "c" + base[-12:]}}, environ={})
        self.topics = Topics(base, config.homeassistant.prefix)
        self.mqtt = MqttConnection(config.mqtt, self.topics.bridge_state)
        self.client = make_client(sim)
        self.paused: Optional[dt.datetime] = None
        self.control = Control(
            settings or ControlConfig(enabled=True, plants=(), devices=()), CATALOG,
            ParameterClient(self.client, expire_seconds=expire_seconds), self.client, self.mqtt,
            self.topics, RetainedAnnouncer(self.mqtt), respond=self.respond,
            paused_until=lambda: self.paused, poll_interval=poll_interval,
            write_spacing=write_spacing)
        self.mqtt.subscribe(self.topics.request(SET_REQUEST), self.on_request)
        self.mqtt.start()
        assert self.mqtt.wait_connected(10)
        self.control.start()

    def respond(self, name: str, *, data: Optional[Mapping[str, Any]] = None,
                error: Optional[str] = None, transaction: Any = None) -> None:
        envelope = {"status": "error" if error else "ok", "data": dict(data or {}),
                    "error": error, "transaction": transaction}
        self.mqtt.publish(self.topics.response(name),
                          {k: v for k, v in envelope.items() if v is not None})

    def on_request(self, topic: str, payload: bytes, retained: bool) -> None:
        body = json.loads(payload)
        transaction = body.pop("transaction", None)
        try:
            params = {key: SET_FIELDS[key](value) for key, value in body.items()}
        except (KeyError, ValueError) as exc:
            self.respond(SET_REQUEST, error=str(exc), transaction=transaction)
            return
        self.control.request_set(params, transaction)

    def devices(self) -> List[Device]:
        return fleet(self.client)

    def close(self) -> None:
        self.control.stop()
        self.mqtt.stop()
        self.client.close()
