"""Helpers to run the real bridge in-process against the simulator and a real broker.

Shared by the integration tests and the reliability tests (``tests/reliability``).
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Dict

from mqtt_probe import MqttProbe
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

    def __init__(self, config: Dict, tmp: Path) -> None:
        self.service = Service(parse_config(config, "test.yaml", base_dir=tmp))
        self.base = config["mqtt"]["base_topic"]
        self.prefix = config["homeassistant"]["prefix"]
        self.service.mqtt.start()
        self.thread = threading.Thread(target=self.service.bridge.run_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.service.stop_event.set()
        self.service.mqtt.stop()
        self.thread.join(5)


def ready(probe: MqttProbe, base: str) -> Dict:
    """Wait until the first cycle published states and faults; return bridge/info."""
    probe.wait_for(lambda p: any(t.endswith("/faults") for t in p.messages), 30, "first cycle")
    probe.wait_for(lambda p: (f"{base}/bridge/info" in p.messages and
                              json.loads(p.messages[f"{base}/bridge/info"])["last_poll"]
                              ["faults"]["outcome"] == "ok"), 30, "bridge/info after faults")
    return probe.json(f"{base}/bridge/info")


def configs(probe: MqttProbe, prefix: str) -> Dict[str, Dict]:
    return {t: json.loads(p) for t, p in probe.messages.items()
            if t.startswith(prefix + "/") and t.endswith("/config") and p}
