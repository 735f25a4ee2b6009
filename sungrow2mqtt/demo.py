"""``sungrow2mqtt demo``: the whole product on one machine without a Sungrow account.

Starts the built-in Open API simulator, an embedded MQTT broker (amqtt, the ``demo`` extra) unless
one is given, and the bridge, then prints what arrives on the broker in readable lines.
"""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import warnings
from typing import Any, Dict, Optional, Tuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from sungrow2mqtt.catalog import Catalog
from sungrow2mqtt.config import Config, parse_config
from sungrow2mqtt.errors import Sungrow2MqttError
from sungrow2mqtt.isolarcloud.client import device_type_of
from sungrow2mqtt.service import Service
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """An amqtt broker on a loopback port, running its asyncio loop in a daemon thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="mqtt-broker",
                                        daemon=True)

    def start(self) -> "EmbeddedBroker":
        """Start listening; raises Sungrow2MqttError when amqtt is not installed."""
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise Sungrow2MqttError(
                "the embedded MQTT broker needs the demo extra: pip install 'sungrow2mqtt[demo]' "
                "(or pass --broker HOST:PORT of a running broker such as mosquitto)") from None
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                  "sys_interval": 0, "auth": {"allow-anonymous": True},
                  "topic-check": {"enabled": False}}
        self._thread.start()

        async def create() -> Any:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                broker = Broker(config, loop=self._loop)
                await broker.start()
            return broker
        self._broker = asyncio.run_coroutine_threadsafe(create(), self._loop).result(15)
        return self

    def stop(self) -> None:
        """Shut the broker down."""
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


def free_port(preferred: int) -> int:
    """``preferred`` if nothing listens there, else any free loopback port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port")


def demo_config(sim: SimulatorServer, host: str, port: int) -> Config:
    """A configuration that points the bridge at the simulator and the broker."""
    return parse_config({
        "isolarcloud": {"server": sim.url, "appkey": DEFAULT_CREDENTIALS.appkey,
                        "access_key": DEFAULT_CREDENTIALS.access_key,
                        "username": DEFAULT_CREDENTIALS.username,
                        "password": DEFAULT_CREDENTIALS.password, "token_file": None},
        "mqtt": {"host": host, "port": port, "client_id": "sungrow2mqtt-demo"},
        # the product's polling defaults: the simulator's values, like the cloud's, move in
        # 5-minute slots (a refresh request is answered at once, 2 s apart)
        "polling": {"min_refresh_spacing": 2},
    }, "demo")


class Watcher:
    """Prints every message under the bridge's topics as one readable line."""

    def __init__(self, config: Config, catalog: Catalog, out: Any) -> None:
        self.base = config.mqtt.base_topic
        self.prefix = config.homeassistant.prefix
        self.catalog = catalog
        self.out = out
        self.discovery_configs = 0
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="sungrow2mqtt-watch")
        self.client.on_connect = lambda c, *a: c.subscribe([(f"{self.base}/#", 0),
                                                            (f"{self.prefix}/#", 0)])
        self.client.on_message = self._on_message

    def start(self, host: str, port: int) -> None:
        """Connect in the background."""
        self.client.connect_async(host, port)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        if msg.topic.startswith(self.prefix + "/"):
            self.discovery_configs += 1
            if self.discovery_configs % 25 == 0:
                self._print(f"{self.prefix}/…/config", f"{self.discovery_configs} Home Assistant "
                                                       "discovery configs so far")
            return
        self._print(msg.topic, self.describe(msg.topic, bytes(msg.payload)))

    def describe(self, topic: str, payload: bytes) -> str:
        """A state as ``key=value unit`` pairs; anything else as compact text."""
        try:
            data = json.loads(payload)
        except ValueError:
            return payload.decode("utf-8", "replace")[:200]
        level = topic[len(self.base) + 1:]
        if level == "bridge/info" and isinstance(data, dict):
            return "last polls: " + ", ".join(
                f"{kind} {poll.get('outcome') or 'pending'} ({poll.get('api_calls', 0)} API calls)"
                for kind, poll in (data.get("last_poll") or {}).items())
        if level == "bridge/devices" and isinstance(data, dict):
            return (f"{len(data.get('plants') or [])} plants, "
                    f"{len(data.get('devices') or [])} devices")
        if isinstance(data, dict) and "/" not in level:
            units = self._units(level)
            return "  ".join(f"{k}={v}{(' ' + units[k]) if units.get(k) else ''}"
                             for k, v in data.items() if v is not None)
        return json.dumps(data, ensure_ascii=False)[:300]

    def _units(self, ps_key: str) -> Dict[str, str]:
        try:
            specs = self.catalog.enabled(device_type_of(ps_key))
        except ValueError:
            return {}
        return {s.key: s.unit or "" for s in specs}

    def _print(self, topic: str, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {topic} → {text}", file=self.out, flush=True)


def run_demo(broker: Optional[Tuple[str, int]], duration: Optional[float], out: Any) -> int:
    """Run simulator, broker and bridge until Ctrl-C/SIGTERM (or ``duration`` seconds)."""
    embedded: Optional[EmbeddedBroker] = None
    with SimulatorServer() as sim:
        if broker is None:
            embedded = EmbeddedBroker(free_port(1883)).start()
            broker = ("127.0.0.1", embedded.port)
        host, port = broker
        config = demo_config(sim, host, port)
        service = Service(config)
        watcher = Watcher(config, service.catalog, out)
        print(f"Demo: simulator {sim.url}, MQTT broker {host}:{port}"
              f"{' (embedded)' if embedded else ''}, base topic {config.mqtt.base_topic}.\n"
              f"Try: mosquitto_sub -h {host} -p {port} -v -t '{config.mqtt.base_topic}/#'\n"
              f"     mosquitto_pub -h {host} -p {port} -t "
              f"'{config.mqtt.base_topic}/bridge/request/refresh' -m '{{}}'\n"
              "Ctrl-C stops.\n", file=out, flush=True)
        watcher.start(host, port)
        if duration is not None:
            threading.Timer(duration, service.stop_event.set).start()
        try:
            return service.run_forever()
        finally:
            watcher.stop()
            if embedded is not None:
                embedded.stop()
