"""What the bridge publishes about the fleet: states, faults, ``bridge/info``, ``bridge/devices``,
the status file.

All retained, so a client that subscribes later (Home Assistant after a restart) gets the latest
values at once; a device that left the account has its topics cleared.  A state that did not
change since paho last accepted it is not sent again (a republish sends everything).  The worker
and a republish (on the announcer's thread) publish under one lock, so neither overtakes the
other with an older state.  A device's fault list is capped (a cloud that pages forever must not
make a payload of megabytes), and a status file that cannot be written is tried again next time:
one full disk must not blind ``health`` for good.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from sungrow2mqtt import __version__
from sungrow2mqtt.clock import iso
from sungrow2mqtt.components.fleet import Fault, FleetListener, FleetSnapshot, FleetState
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.health import write_status
from sungrow2mqtt.isolarcloud.client import NOT_AUTHORISED_ADVICE
from sungrow2mqtt.model import Device
from sungrow2mqtt.mqtt import MqttConnection, encode

log = logging.getLogger(__name__)

MAX_FAULTS_SHOWN = 50    # per device, the newest; Home Assistant keeps attributes up to 16 KiB
# States go at QoS 0, as zigbee2mqtt's do: Home Assistant subscribes at QoS 0 anyway, and after a
# reconnect every state is published again, so QoS 1's redelivery would add nothing but one
# acknowledgement per device per cycle (a third of the bridge's CPU at 1,000 devices).
STATE_QOS = 0


class Publisher(FleetListener):
    """Retained states and faults of each device, the bridge's own ``bridge/info`` and the
    ``bridge/devices`` list."""

    def __init__(self, mqtt: MqttConnection, topics: Topics, fleet: FleetState, *,
                 api_calls: Callable[[], int], status_file: Optional[Path] = None,
                 denied_apis: Callable[[], Mapping[str, dt.datetime]] = dict) -> None:
        self._mqtt = mqtt
        self._topics = topics
        self._fleet = fleet
        self._api_calls = api_calls
        self._status_file = status_file
        self._status_failing = False
        self._denied_apis = denied_apis
        self._lock = threading.RLock()
        self._published: Dict[str, Mapping[str, Any]] = {}   # ps_key -> state paho accepted
        self._unserved_shown: Mapping[str, dt.datetime] = {}  # in the last bridge/devices
        self._devices_digest = b""                              # of the last bridge/devices

    def start(self) -> None:
        """Nothing to set up: publishing follows the fleet."""

    def stop(self) -> None:
        """A last status (the broker connection is closed by now), for ``sungrow2mqtt health``."""
        self.publish_info()

    def republish(self) -> None:
        """States, faults, devices and info again (after a reconnect or Home Assistant's
        birth)."""
        with self._lock:                  # states the worker sends meanwhile are in the snapshot
            snapshot = self._fleet.snapshot()
            for ps_key, state in snapshot.values.items():
                self._publish_state(ps_key, state, forced=True)
            for ps_key, faults in snapshot.faults.items():
                self._publish_faults(ps_key, faults)
            if snapshot.devices:    # before the first device poll it would announce an empty
                self._publish_devices(snapshot, forced=True)   # list over the one kept
            self.publish_info()

    def publish_info(self) -> None:
        """The retained ``bridge/info`` document and the status file; ``bridge/devices`` too
        when a device's cloud status changed since it was last published."""
        with self._lock:          # snapshot and publish in one go: an older one never overtakes
            snapshot = self._fleet.snapshot()
            info: Dict[str, Any] = {
                "version": __version__,
                "last_poll": {k: v.as_dict() for k, v in snapshot.outcomes.items()},
                "quota": dict(snapshot.quota),
                "api_calls_total": self._api_calls(),
                "rate_limited_until": iso(snapshot.paused_until),
                "denied_apis": [{"api": api, "until": iso(until),
                                 "advice": NOT_AUTHORISED_ADVICE}
                                for api, until in sorted(self._denied_apis().items())],
            }
            if snapshot.unserved != self._unserved_shown:
                self._publish_devices(snapshot, forced=False)
            self._mqtt.publish(self._topics.bridge_info, info, retain=True)
        if self._status_file is not None:
            self._write_status(self._status_file, info,
                               all(o.ok is not False for o in snapshot.outcomes.values()))

    def publish_devices(self, forced: bool = True) -> None:
        """The retained ``bridge/devices`` list (see :meth:`_publish_devices`)."""
        with self._lock:
            self._publish_devices(self._fleet.snapshot(), forced)

    def _publish_devices(self, snapshot: FleetSnapshot, forced: bool) -> None:
        """Plants and devices, each with its cloud status (under the lock).  Its own topic, as
        zigbee2mqtt's ``bridge/devices``: at 1,000 devices it is 160 KB, and it changes with the
        device list or a cloud status, not with every poll as ``bridge/info`` does, nor with a
        device poll that found the same list (unless ``forced``: a republish, a request)."""
        def entry(device: Device, fields: Mapping[str, Any]) -> Dict[str, Any]:
            since = snapshot.unserved.get(device.ps_key)
            return {**fields, "cloud_status": "ok" if since is None else "failed",
                    "cloud_failed_since": iso(since)}
        devices = snapshot.devices.values()
        listed = {
            "plants": [entry(d, {"ps_id": d.ps_id, "name": d.name, "ps_key": d.ps_key})
                       for d in devices if d.is_plant],
            "devices": [entry(d, {"ps_key": d.ps_key, "ps_id": d.ps_id,
                                  "device_type": d.device_type, "type": d.type_name,
                                  "model": d.model, "serial": d.serial, "name": d.name})
                        for d in devices if not d.is_plant],
        }
        payload = encode(listed)
        digest = hashlib.blake2b(payload, digest_size=16).digest()
        if forced or digest != self._devices_digest:
            if not self._mqtt.publish(self._topics.bridge_devices, payload, retain=True):
                self._devices_digest = b""    # not sent: the next bridge/info tries again
                return
            self._devices_digest = digest
        self._unserved_shown = snapshot.unserved

    def _write_status(self, path: Path, info: Mapping[str, Any], cloud_ok: bool) -> None:
        """Keep the local status file fresh for ``sungrow2mqtt health``."""
        try:
            write_status(path, {"mqtt_connected": self._mqtt.connected, "cloud_ok": cloud_ok,
                                "last_poll": info["last_poll"]})
        except OSError as exc:
            if not self._status_failing:
                log.warning("Cannot write status file %s (%s); trying again with every update",
                            path, exc.strerror or type(exc).__name__)
            self._status_failing = True
        else:
            if self._status_failing:
                log.info("Status file %s written again", path)
            self._status_failing = False

    def _publish_state(self, ps_key: str, state: Mapping[str, Any], forced: bool = False
                       ) -> None:
        with self._lock:
            previous = self._published.get(ps_key)
            if not forced and previous is not None and _same(previous, state):
                self._published[ps_key] = state     # the fleet's copy; the older one can go
                return
            if self._mqtt.publish(self._topics.state(ps_key), encode(state), retain=True,
                                  qos=STATE_QOS):
                self._published[ps_key] = state
            else:                         # not sent: the next poll sends it even if unchanged
                self._published.pop(ps_key, None)

    def _publish_faults(self, ps_key: str, faults: Sequence[Fault]) -> None:
        """The open faults, the newest MAX_FAULTS_SHOWN of them, and how many more there are."""
        payload: Dict[str, Any] = {"problem": "ON" if faults else "OFF",
                                   "faults": list(faults[-MAX_FAULTS_SHOWN:])}
        if len(faults) > MAX_FAULTS_SHOWN:
            payload["not_shown"] = len(faults) - MAX_FAULTS_SHOWN
        with self._lock:
            self._mqtt.publish(self._topics.faults(ps_key), payload, retain=True)

    # -- fleet events (worker thread) -------------------------------------------------------------

    def on_devices(self, devices: Sequence[Device], removed: Sequence[Device]) -> None:
        """Clear the topics of devices that left; publish the list in ``bridge/devices``."""
        with self._lock:
            for device in removed:
                self._published.pop(device.ps_key, None)
                self._mqtt.publish(self._topics.state(device.ps_key), None, retain=True)
                self._mqtt.publish(self._topics.faults(device.ps_key), None, retain=True)
        self.publish_devices(forced=False)

    def on_values(self, device: Device, state: Mapping[str, Any], new_keys: Sequence[str]
                  ) -> None:
        """The device's state, unless paho has it already."""
        self._publish_state(device.ps_key, state)

    def on_faults(self, device: Device, faults: Sequence[Fault]) -> None:
        """The device's open faults and its problem flag."""
        self._publish_faults(device.ps_key, faults)

    def on_info(self) -> None:
        """Outcomes or quota changed."""
        self.publish_info()


def _same(previous: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    """Whether ``state`` encodes as ``previous`` did, without encoding it: the same keys in the
    same order with equal values.  The fleet's values are never changed in place, and equal
    values encode alike (numbers that are whole are ints, none is NaN or -0.0)."""
    return previous is state or (previous == state and list(previous) == list(state))
