"""Helpers to run the real bridge in-process against the simulator and a real broker.

Shared by the integration tests and the reliability tests (``tests/reliability``).
"""
from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Set

from mqtt_probe import MqttProbe
from sungrow2mqtt.clock import Clock, utc_now
from sungrow2mqtt.config import parse_config
from sungrow2mqtt.service import Service
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer


def config_dict(sim: SimulatorServer, port: int, base: str, tmp: Path, **extra: Any) -> Dict:
    data = {
        "isolarcloud": {"server": sim.url, "appkey": DEFAULT_CREDENTIALS.appkey,
                        "access_key": DEFAULT_CREDENTIALS.access_key,
                        "username": DEFAULT_CREDENTIALS.username,
                        "password": DEFAULT_CREDENTIALS.password,
                        "rsa_public_key": sim.public_key,
                        "token_file": str(tmp / "token.json"), "timeout": 2},
        "mqtt": {"host": "127.0.0.1", "port": port, "base_topic": base,
                 "client_id": "s2m-" + base[-8:]},
        "homeassistant": {"prefix": f"{base}_ha", "status_topic": f"{base}_ha/status"},
        "polling": {"realtime": 3600, "faults": 3600, "devices": 7200,
                    "min_refresh_spacing": 0.5},
    }
    for section, values in extra.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return data


class Running:
    """A bridge service running in this process (worker thread) until stopped."""

    def __init__(self, config: Dict, tmp: Path, clock: Optional[Clock] = None) -> None:
        self.service = Service(parse_config(config, "test.yaml", base_dir=tmp), clock=clock)
        self.base = config["mqtt"]["base_topic"]
        self.prefix = config["homeassistant"]["prefix"]
        self.service.start()
        assert self.service.worker is not None
        self.thread = self.service.worker

    def stop(self) -> None:
        self.service.stop()
        self.thread.join(5)


class MovableClock(Clock):
    """The real clocks plus an offset that a test moves forward, instead of waiting."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> dt.datetime:
        return utc_now() + dt.timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def ready(probe: MqttProbe, base: str, timeout: float = 30.0) -> Dict:
    """Wait until the first cycle published every device's faults and every plant's state, and
    (when the probe listens to the harness's discovery prefix ``<base>_ha``) the config of
    every value published: configs follow the states on the announcer's own thread.

    Returns bridge/devices (the plants and devices).  A probe that subscribes after the cycle
    gets retained messages in the broker's order, so each topic is waited for, not only the
    last one published.
    """
    probe.wait_for(lambda p: (f"{base}/bridge/info" in p.messages and
                              json.loads(p.messages[f"{base}/bridge/info"])["last_poll"]
                              ["faults"]["outcome"] == "ok"), timeout, "bridge/info after faults")
    probe.wait_for(lambda p: f"{base}/bridge/devices" in p.messages, timeout, "bridge/devices")
    listed = probe.json(f"{base}/bridge/devices")
    wanted = [f"{base}/{d['ps_key']}/faults" for d in listed["plants"] + listed["devices"]]
    wanted += [f"{base}/{plant['ps_key']}" for plant in listed["plants"]]
    probe.wait_for(lambda p: all(t in p.messages for t in wanted), timeout,
                   "the first cycle's topics")
    if f"{base}_ha/#" in probe.filters:
        with probe.lock:
            configs = _configs_of_values(probe, base)
        probe.wait_for(lambda p: all(t in p.messages for t in configs), 2 * timeout,
                       "a discovery config for every value")
    return listed


def _configs_of_values(probe: MqttProbe, base: str) -> Set[str]:
    """The sensor config topics the values in the probe's state messages call for."""
    listed = json.loads(probe.messages[f"{base}/bridge/devices"])
    wanted = set()
    for device in listed["plants"] + listed["devices"]:
        state = probe.messages.get(f"{base}/{device['ps_key']}")
        for key, value in (json.loads(state) if state else {}).items():
            if key != "last_update" and value is not None:
                wanted.add(f"{base}_ha/sensor/sungrow2mqtt_{device['ps_key']}/{key}/config")
    return wanted


def configs(probe: MqttProbe, prefix: str) -> Dict[str, Dict]:
    return {t: json.loads(p) for t, p in probe.messages.items()
            if t.startswith(prefix + "/") and t.endswith("/config") and p}
