"""Fleet state: what the bridge knows, under one lock, and the pure mapping of cloud rows into it.

The worker thread writes (polls, requests); the MQTT thread reads (a reconnect or Home Assistant's
birth republishes everything).  Every write tells the listeners what changed, after the lock is
released, so the components follow the fleet without reaching into each other.  Stored values and
fault lists are replaced, never changed in place, so a snapshot shares them safely.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import (
    Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Set, Tuple,
)

from sungrow2mqtt.catalog import PointSpec
from sungrow2mqtt.clock import iso
from sungrow2mqtt.errors import Sungrow2MqttError
from sungrow2mqtt.model import PLANT_DEVICE_TYPE, Device, PsKey, parse_device_time, publishable

log = logging.getLogger(__name__)

POLL_KINDS = ("devices", "realtime", "faults")
LAST_UPDATE = "last_update"
Values = Dict[str, Any]
Fault = Dict[str, Any]


class FleetUnknown(Sungrow2MqttError):
    """No device is known yet (device discovery has not succeeded): there is nothing to poll,
    and a poll of nothing is not a success."""


@dataclass(frozen=True)
class PollOutcome:
    """How the last run of one kind of poll went, for ``bridge/info``."""

    time: Optional[dt.datetime] = None
    ok: Optional[bool] = None
    error: Optional[str] = None
    api_calls: int = 0
    duration_s: float = 0.0

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {"time": iso(self.time), "outcome": None if self.ok is None else
                ("ok" if self.ok else "error"), "error": self.error,
                "api_calls": self.api_calls, "duration_s": round(self.duration_s, 3)}


@dataclass(frozen=True)
class FleetSnapshot:
    """A consistent copy of the fleet state, for publishers."""

    devices: Mapping[str, Device] = field(default_factory=dict)
    values: Mapping[str, Values] = field(default_factory=dict)
    faults: Mapping[str, List[Fault]] = field(default_factory=dict)
    outcomes: Mapping[str, PollOutcome] = field(default_factory=dict)
    quota: Mapping[str, Any] = field(default_factory=dict)
    paused_until: Optional[dt.datetime] = None
    unserved: Mapping[str, dt.datetime] = field(default_factory=dict)   # ps_key -> since


class FleetListener:
    """Hooks a component overrides to follow the fleet; each does nothing unless overridden."""

    def on_devices(self, devices: Sequence[Device], removed: Sequence[Device]) -> None:
        """The device list was refreshed; ``removed`` have left the account."""

    def on_values(self, device: Device, state: Mapping[str, Any], new_keys: Sequence[str]
                  ) -> None:
        """A device has new values; ``new_keys`` never had a value before."""

    def on_faults(self, device: Device, faults: Sequence[Fault]) -> None:
        """A device's open faults changed."""

    def on_full_poll(self) -> None:
        """Every device was polled once: an entity without a value by now is gone."""

    def on_info(self) -> None:
        """Poll outcomes or the quota changed, or a poll was skipped: ``bridge/info`` is due."""


class FleetState:
    """Devices, their latest values and faults, poll outcomes, quota and cloud pause."""

    def __init__(self, kinds: Iterable[str] = POLL_KINDS) -> None:
        self._lock = threading.Lock()
        self._devices: Dict[str, Device] = {}
        self._values: Dict[str, Values] = {}
        self._faults: Dict[str, List[Fault]] = {}
        self._outcomes: Dict[str, PollOutcome] = {kind: PollOutcome() for kind in kinds}
        self._quota: Dict[str, Any] = {}
        self._paused_until: Optional[dt.datetime] = None
        self._unserved: Dict[str, dt.datetime] = {}
        self._listeners: List[FleetListener] = []
        self._info_holds = 0            # info_once() blocks open
        self._info_due = False          # ... and whether info changed inside them

    def listen(self, listener: FleetListener) -> None:
        """Tell ``listener`` about every change, after the listeners added before it."""
        self._listeners.append(listener)

    # -- reading ----------------------------------------------------------------------------------

    def snapshot(self) -> FleetSnapshot:
        """Everything at one moment."""
        with self._lock:
            return FleetSnapshot(dict(self._devices), dict(self._values), dict(self._faults),
                                 dict(self._outcomes), dict(self._quota), self._paused_until,
                                 dict(self._unserved))

    def devices(self, ps_ids: Optional[Set[int]] = None) -> List[Device]:
        """Every device (plants too), or those of the plants ``ps_ids``."""
        with self._lock:
            return [d for d in self._devices.values() if not ps_ids or d.ps_id in ps_ids]

    def device(self, ps_key: str) -> Optional[Device]:
        """The device with this ps_key, if bridged."""
        with self._lock:
            return self._devices.get(ps_key)

    def plant_ids(self) -> Set[int]:
        """The bridged plants."""
        with self._lock:
            return {d.ps_id for d in self._devices.values() if d.is_plant}

    # -- writing (worker thread) ------------------------------------------------------------------

    def set_devices(self, devices: Mapping[str, Device]) -> None:
        """Replace the device list; the values and faults of devices that left are dropped."""
        with self._lock:
            removed = [d for key, d in self._devices.items() if key not in devices]
            for device in removed:
                self._values.pop(device.ps_key, None)
                self._faults.pop(device.ps_key, None)
                self._unserved.pop(device.ps_key, None)
            self._devices = dict(devices)
        for device in removed:
            log.info("Device %s is no longer in the account; removing it", device.ps_key)
        current = list(devices.values())
        self._tell(lambda listener: listener.on_devices(current, removed))

    def update_values(self, device: Device, mapped: Mapping[str, Any]) -> None:
        """Store a device's freshly mapped values (see :meth:`PointMap.map_row`)."""
        with self._lock:
            state, new_keys = merge_values(self._values.get(device.ps_key, {}), mapped)
            self._values[device.ps_key] = state
            unserved_since = self._unserved.pop(device.ps_key, None)
        self._tell(lambda listener: listener.on_values(device, state, new_keys))
        if unserved_since is not None:
            log.info("The cloud serves %s again (it could not since %s)", device.ps_key,
                     iso(unserved_since))
            self._info_changed()

    def set_unserved(self, device: Device, since: dt.datetime) -> None:
        """The cloud could not serve the device's values (``fail_ps_key_list``): its last values
        stay, ``bridge/devices`` says so; logged once until it is served again."""
        with self._lock:
            first = device.ps_key not in self._unserved
            self._unserved.setdefault(device.ps_key, since)
        if first:
            log.warning("The cloud cannot serve %s now (listed in fail_ps_key_list): keeping its "
                        "last values; bridge/devices shows its cloud_status", device.ps_key)
            self._info_changed()

    def set_faults(self, device: Device, faults: List[Fault]) -> None:
        """Store a device's open faults; listeners hear of it only when they changed."""
        with self._lock:
            changed = self._faults.get(device.ps_key) != faults
            self._faults[device.ps_key] = faults
        if changed:
            self._tell(lambda listener: listener.on_faults(device, faults))

    def record_outcome(self, kind: str, outcome: PollOutcome) -> None:
        """How a poll went."""
        with self._lock:
            self._outcomes[kind] = outcome
        self._info_changed()

    def set_quota(self, quota: Mapping[str, Any]) -> None:
        """The call quota as :func:`quota_summary` reads it."""
        with self._lock:
            self._quota = dict(quota)
        self._info_changed()

    def set_pause(self, until: Optional[dt.datetime]) -> None:
        """Until when cloud calls are paused (None: not paused); shown with the next outcome."""
        with self._lock:
            self._paused_until = until

    def heartbeat(self) -> None:
        """A poll was skipped: ``bridge/info`` and the status file still show the bridge alive."""
        self._info_changed()

    def full_poll_done(self) -> None:
        """Every device was polled once."""
        self._tell(lambda listener: listener.on_full_poll())

    @contextmanager
    def info_once(self) -> Iterator[None]:
        """Listeners hear of info changes made inside the block once, at its end: a wave of
        polls gives one ``bridge/info`` and one status-file write, not one per job."""
        with self._lock:
            self._info_holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._info_holds -= 1
                due = self._info_due and not self._info_holds
                if due:
                    self._info_due = False
            if due:
                self._tell(lambda listener: listener.on_info())

    def _info_changed(self) -> None:
        with self._lock:
            if self._info_holds:
                self._info_due = True
                return
        self._tell(lambda listener: listener.on_info())

    def _tell(self, hook: Callable[[FleetListener], None]) -> None:
        """Call ``hook`` on every listener; one that fails neither stops the others nor the
        write that told them (the poll's outcome is recorded, the next listener still hears)."""
        for listener in self._listeners:
            try:
                hook(listener)
            except Exception:   # a bug in one listener: say so; the fleet state stays right
                log.exception("%s failed to follow a fleet change", type(listener).__name__)


# -- pure mapping of cloud rows ------------------------------------------------------------------

class PointMap:
    """How the realtime rows of one device type are read: its polled points, each with its
    converter, looked up once (a poll of a thousand devices reads tens of thousands of values).

    ``ratios`` and ``shares`` are the points :mod:`components.ratios` looks at.
    """

    def __init__(self, specs: Iterable[PointSpec]) -> None:
        self.specs: Tuple[PointSpec, ...] = tuple(specs)
        self.ratios = tuple(spec for spec in self.specs if spec.is_ratio)
        self.shares = tuple(spec for spec in self.specs if spec.is_share)
        self._reads = [(spec.api_key, spec.key, spec.converter) for spec in self.specs]

    def map_row(self, row: Mapping[str, Any], tz: dt.tzinfo, polled_at: dt.datetime) -> Values:
        """A device's values from one realtime row, in catalog keys and units, plus their time.

        Points without a usable value are left out; the time is the device's own data time,
        else the time of the poll, both in the plant's zone.  Text is made publishable.
        """
        values: Values = {}
        get = row.get
        for api_key, key, convert in self._reads:
            raw = get(api_key)
            if raw is None or raw == "--":      # no reading (most points of most rows; some
                continue                        # plants send "--"): not worth a conversion
            value = convert(raw)
            if value is not None:
                values[key] = publishable(value) if type(value) is str else value
        values[LAST_UPDATE] = (parse_device_time(get("device_time"), tz)
                               or polled_at.astimezone(tz).isoformat(timespec="seconds"))
        return values


def merge_values(previous: Mapping[str, Any], mapped: Mapping[str, Any]
                 ) -> Tuple[Values, List[str]]:
    """The device's new state and the keys that never had a value before.

    A key that had a value and has none now becomes None, so its entity shows "unknown" rather
    than a stale value.
    """
    state: Values = dict.fromkeys(previous)
    state.update(mapped)
    if len(state) == len(previous):     # the usual poll: no key is new, none needs looking up
        return state, []
    return state, [key for key in mapped if key not in previous and key != LAST_UPDATE]


def faults_by_device(rows: Iterable[Mapping[str, Any]], devices: Mapping[str, Device]
                     ) -> Dict[PsKey, List[Fault]]:
    """Open faults per bridged device (an empty list when it has none), oldest first.

    A fault of a device the bridge does not know is shown on the device's plant.
    """
    found: Dict[PsKey, List[Fault]] = {device.ps_key: [] for device in devices.values()}
    for row in rows:
        device = (devices.get(str(row.get("ps_key") or ""))
                  or devices.get(f"{row.get('ps_id') or ''}_{PLANT_DEVICE_TYPE}_0_0"))
        if device is not None:
            found[device.ps_key].append(fault_item(row, device))
    for items in found.values():
        items.sort(key=lambda f: (str(f.get("since")), str(f.get("code"))))
    return found


def fault_item(row: Mapping[str, Any], device: Device) -> Fault:
    """One getFaultAlarmInfo row as published, its start time in the plant's zone."""
    since = row.get("create_time")
    try:
        moment = dt.datetime.strptime(str(since), "%Y-%m-%d %H:%M:%S").replace(tzinfo=device.tz)
        since = moment.isoformat()
    except ValueError:
        pass
    fields = {"code": "fault_code", "type_code": "fault_type_code", "name": "fault_name",
              "level": "fault_level", "type": "fault_type"}
    return {**{key: publishable(row.get(name)) for key, name in fields.items()},
            "since": publishable(since)}


def quota_summary(data: Mapping[str, Any], hour: int) -> Dict[str, Any]:
    """The interesting numbers of getOpenApiCallInfo as JSON numbers; ``hour`` picks the row."""
    def number(value: Any) -> Optional[int]:
        try:
            return int(float(str(value)))
        except (TypeError, ValueError, OverflowError):
            return None
    per_hour = {number(item.get("hour")): number(item.get("max_call_times"))
                for item in data.get("per_hour_access_times_config") or []
                if isinstance(item, Mapping)}
    return {
        "per_day": number(data.get("per_day_access_times_config")),
        "per_hour": per_hour.get(hour),
        "today_used": number(data.get("today_accessed_times")),
        "this_hour_used": number(data.get("curr_hour_accessed_times")),
    }
