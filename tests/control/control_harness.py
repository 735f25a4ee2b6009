"""The control component with the bridge's fleet state, announcer and request API, wired as the
service will wire it, against the real simulator over HTTP and a real broker.  No poller: the
test hands the simulator's device list to the fleet state, as the bridge's device refresh does.
"""
from __future__ import annotations

import datetime as dt
import threading
from typing import List, Optional

from conftest import make_client

from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.clock import Clock
from sungrow2mqtt.components.announcer import Announcer
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.request_api import RequestApi
from sungrow2mqtt.config import ControlConfig, parse_config
from sungrow2mqtt.control import load_parameters
from sungrow2mqtt.control.component import SET_REQUEST, Control
from sungrow2mqtt.discovery import Topics
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


class ControlUnderTest:
    """A started Control with its MQTT connection, announcer, request API and a worker that
    answers requests; ``close()`` stops them all."""

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
        self.announcer = Announcer(self.mqtt, self.topics, load_catalog(),
                                   config.homeassistant, on_republish=lambda: None)
        self.requests = RequestApi(self.mqtt, self.topics)
        self.control = Control(
            settings or ControlConfig(enabled=True, plants=(), devices=()), CATALOG,
            ParameterClient(self.client, expire_seconds=expire_seconds), self.client, self.mqtt,
            self.topics, self.announcer, respond=self.requests.respond,
            paused_until=lambda: self.paused, clock=Clock(), poll_interval=poll_interval,
            write_spacing=write_spacing)
        self.requests.register(SET_REQUEST, self.control.request_spec())
        self.fleet = FleetState()
        self.fleet.listen(self.announcer)
        self.fleet.listen(self.control)
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, daemon=True)
        for component in (self.announcer, self.requests):
            component.start()
        self.mqtt.start()
        assert self.mqtt.wait_connected(10)
        self.control.start()
        self._worker.start()

    def _work(self) -> None:
        while not self._stopping.is_set():
            self.requests.handle_next(timeout=0.05)

    def devices(self) -> List[Device]:
        return fleet(self.client)

    def refresh_devices(self, leave_out: str = "") -> None:
        """The bridge's device refresh: the account's devices (but ``leave_out``) to the fleet."""
        self.fleet.set_devices({d.ps_key: d for d in self.devices() if d.ps_key != leave_out})

    def close(self) -> None:
        self._stopping.set()
        self.control.stop()
        self.requests.stop()
        self.announcer.stop()
        self._worker.join(5)
        self.mqtt.stop()
        self.client.close()
