"""A status file the running bridge keeps fresh, and the ``health`` check that reads it.

Docker's HEALTHCHECK and monitoring scripts need a cheap, local answer to "is the bridge alive and
connected?"; the file sits next to the token file and names no secret.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional, Tuple

from sungrow2mqtt.config import Config, load_config
from sungrow2mqtt.isolarcloud.token_store import atomic_write

MIN_MAX_AGE = 900.0   # seconds a status may be old before the bridge counts as stuck


def state_path(config: Config, name: str) -> Optional[Path]:
    """A file of the bridge's state directory (beside the token file), or None without one."""
    token_file = config.isolarcloud.token_file
    return token_file.with_name(name) if token_file else None


def status_path(config: Config) -> Optional[Path]:
    """Where the status file lives, or None when there is no state directory."""
    return state_path(config, "status.json")


def write_status(path: Path, status: Mapping[str, Any]) -> None:
    """Write the status atomically, stamped with the time and the writer's process id."""
    atomic_write(path, json.dumps({**status, "written_at": time.time(), "pid": os.getpid()}))


def _running(pid: int) -> bool:
    """Whether a process with this id exists (health runs in the bridge's pid namespace:
    the same container, or the host for systemd)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:      # exists, but belongs to another user (systemd's DynamicUser)
        return True
    return True


def check_health(config: Config, now: Optional[float] = None) -> Tuple[bool, str]:
    """(healthy, reason): the status is fresh and the broker connection is up."""
    path = status_path(config)
    if path is None:
        return False, "isolarcloud.token_file is disabled, so there is no status file to read"
    try:
        status: Dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False, f"no status file at {path} (is the bridge running?)"
    except (OSError, ValueError) as exc:
        return False, f"cannot read {path}: {type(exc).__name__}"
    pid = status.get("pid")
    if isinstance(pid, int) and not _running(pid):
        # e.g. after `run --once`: its last status said "connected", but nobody runs now
        return False, f"the bridge that wrote {path} (pid {pid}) is not running"
    age = (now or time.time()) - float(status.get("written_at", 0))
    max_age = max(MIN_MAX_AGE, 3.0 * config.polling.realtime)
    if age > max_age:
        return False, f"status is {age:.0f} s old (more than {max_age:.0f} s): the bridge is stuck"
    if not status.get("mqtt_connected"):
        return False, "not connected to the MQTT broker"
    cloud = status.get("cloud_ok")
    return True, "ok" + ("" if cloud is not False else " (but the last cloud poll failed)")


class _EnvironmentWithPlaceholders(Mapping[str, str]):
    """The environment, where unset variables read as a placeholder.

    A health check needs the token file location and the polling interval, not the secrets;
    Docker's HEALTHCHECK or a monitoring user may not have them set.
    """

    def __init__(self, real: Mapping[str, str]) -> None:
        self._real = real

    def __getitem__(self, name: str) -> str:
        return self._real.get(name, "unset-for-health-check")

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._real)

    def __len__(self) -> int:
        return len(self._real)


def load_config_for_health(path: str) -> Config:
    """The configuration, without needing the secrets' environment variables."""
    return load_config(path, environ=_EnvironmentWithPlaceholders(os.environ))

