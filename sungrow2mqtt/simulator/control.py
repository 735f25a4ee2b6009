"""Parameter setting on the simulated gateway: paramSettingCheck, paramSetting, getParamSettingTask.

It follows ``control-api.md`` and appendix 10 (its own table below, not the product's catalog,
so a wrong catalog entry shows up as a refused write). Choices where they are silent:

* hybrid inverters (type 14) have the appendix's "Hybrid Inverter", "Hybrid Inverter & PV
  Inverter" and "Energy Storage System" rows, string inverters (type 1) the "PV Inverter" rows;
  other devices have none: paramSettingCheck answers ``check_result`` "0" for them. Not
  simulated: 10015/10016 (public clients report the gateway refuses them as duplicates of
  10071/10076) and the grid protection rows 10038-10045, 10101-10120;
* a ``param_list`` with a code the device does not have is not taken: ``check_result`` "1" with
  the device's ``code`` "0" and no task; so is any write to a device without parameters;
* a write less than ``min_write_interval`` seconds after the device's last accepted write, or
  while that write still runs, gets ``check_result`` "9" and no ``dev_result_list``;
* a task runs ``task_seconds`` on the simulator's clock (``SimulatorServer.now``, so tests move
  the clock instead of sleeping), then ends: ``command_status`` 8 (success) applies the values
  in order; 4 when the device refuses a value (out of range, or a prerequisite such as
  feed-in limitation 170 for 10013/10014 not set by then), nothing applied; 5 when the device
  is offline; 6 once ``expire_second`` has passed first. ``command_status`` is a number, as
  public clients compare it; running tasks report 2;
* a read back (``set_type`` 2) returns the device's values as ``return_value``; a write's
  ``param_list`` carries ``set_value`` and an empty ``return_value``; enumerations carry
  ``set_val_name``/``set_val_name_val`` labels and codes joined by ``|``;
* unknown ``uuid`` or ``task_id``, or a task of another device -> 010; missing ``set_type``,
  ``uuid``, ``param_list`` or ``task_id`` -> 009; ``set_type`` other than 0 or 2, malformed
  list items, an empty ``set_value`` in a write -> 010.
"""
from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import (
    Any, Callable, Deque, Dict, FrozenSet, List, Mapping, Optional, Protocol, Set, Tuple,
)

from sungrow2mqtt.simulator.fleet import Device, Fleet

__all__ = ["ControlSimulator", "TASK_FAILURES"]

HYBRID, PV = 14, 1
_HYB: FrozenSet[int] = frozenset({HYBRID})
_BOTH: FrozenSet[int] = frozenset({HYBRID, PV})
RUNNING, SUCCESS, REFUSED, OFFLINE, EXPIRED = 2, 8, 4, 5, 6
TASK_FAILURES = ("refused", "offline", "expire")
_SWITCH = (("170", "Enable"), ("85", "Disable"))
_REACTIVE_ON = frozenset({"161", "162", "163", "164"})


@dataclass(frozen=True)
class _Param:
    """One appendix-10 row: who has it, what the device accepts, its value before any write."""

    name: str
    types: FrozenSet[int]
    default: str
    low: int = 0
    high: int = 0
    codes: Tuple[Tuple[str, str], ...] = ()
    needs: Optional[Tuple[str, FrozenSet[str]]] = None
    high_from: Optional[str] = None     # "rated" (W) or a property point id (x 100)


def _switch(name: str, types: FrozenSet[int], needs: Optional[Tuple[str, FrozenSet[str]]] = None
            ) -> _Param:
    return _Param(name, types, "85", codes=_SWITCH, needs=needs)


def _enabled(code: str) -> Tuple[str, FrozenSet[str]]:
    return code, frozenset({"170"})


# appendix-10-control-parameter-definitions.md, wire values
PARAMS: Mapping[str, _Param] = {
    "10001": _Param("SOC Upper Limit", _HYB, "1000", 700, 1000),
    "10002": _Param("SOC Lower Limit", _HYB, "100", 0, 500),
    "10003": _Param("Energy Management Mode", _HYB, "0", codes=(
        ("0", "Self-consumption Mode"), ("2", "Compulsory Mode"),
        ("3", "External Energy Dispatch"), ("4", "VPP Dispatch"))),
    "10004": _Param("Charging/Discharging Command", _HYB, "204", codes=(
        ("170", "Charging"), ("187", "Discharging"), ("204", "Stopped"))),
    "10005": _Param("Charging/Discharging Power", _HYB, "1000", 0, 5000),
    "10006": _switch("Existing Inverter", _BOTH),
    "10007": _switch("Limited power switch", _BOTH),
    "10008": _Param("Active Power Limit Ratio", _BOTH, "1000", 0, 1000),
    "10009": _Param("Reactive Power Regulation Mode", _BOTH, "85", codes=(
        ("85", "OFF"), ("161", "PF enabled"), ("162", "Reactive Power Ratio enable-Q (t)"),
        ("164", "Q (U) curve-Q (U)"), ("163", "Q(P) curve- Q(P)"))),
    "10010": _Param("Q(T)", _BOTH, "0", -600, 600),
    "10011": _Param("Boot/Shutdown", _BOTH, "207", codes=(
        ("207", "Boot"), ("206", "Shutdown"), ("174", "Reboot"))),
    "10012": _switch("Feed-in Limitation", _BOTH),
    "10013": _Param("Feed-in Limitation Value", _BOTH, "0", 0, needs=_enabled("10012"),
                    high_from="rated"),
    "10014": _Param("Feed-in Limitation Ratio", _BOTH, "1000", 0, 1000, needs=_enabled("10012")),
    "10017": _Param("External EMS Heartbeat", _HYB, "30", 1, 1000),
    "10024": _switch("Battery First", _HYB),
    "10025": _switch("Active Power Soft Start after Fault", _BOTH),
    "10026": _Param("Active Power Soft Start Time after Fault", _BOTH, "60", 1, 1200,
                    needs=_enabled("10025")),
    "10027": _switch("Active Power Soft Start", _BOTH),
    "10028": _Param("Active Power Soft Start Gradient", _BOTH, "100", 5, 10000,
                    needs=_enabled("10027")),
    "10029": _switch("Active Power Gradient Control", _BOTH),
    "10030": _Param("Active Power Decline Gradient", _BOTH, "100", 1, 6000,
                    needs=_enabled("10029")),
    "10031": _Param("Active Power Rising Gradient", _BOTH, "100", 1, 6000,
                    needs=_enabled("10029")),
    "10032": _switch("Active Power Setting Persistence", _BOTH),
    "10033": _switch("Shutdown When Active Power Limit to 0%", _BOTH),
    "10034": _switch("Reactive Response", _BOTH, needs=("10009", _REACTIVE_ON)),
    "10035": _Param("Reactive power regulation time", _BOTH, "10", 1, 6000,
                    needs=("10009", _REACTIVE_ON)),
    "10036": _Param("PF", _BOTH, "1000", -1000, 1000, needs=("10009", frozenset({"161"}))),
    "10065": _Param("Forced Charging", _BOTH, "85", codes=(("170", "Enable"), ("85", "Close"))),
    "10066": _Param("Forced Charging Valid Time", _BOTH, "1", codes=(
        ("0", "Weekdays"), ("1", "Everyday"))),
    "10067": _Param("Forced Charging Start Time 1: Hour", _BOTH, "24", 0, 24),
    "10068": _Param("Forced Charging Start Time 1: Minute", _BOTH, "0", 0, 59),
    "10069": _Param("Forced Charging End Time 1: Hour", _BOTH, "24", 0, 24),
    "10070": _Param("Forced Charging End Time 1: Minute", _BOTH, "0", 0, 59),
    "10071": _Param("Forced Charging Target SOC1", _BOTH, "100", 0, 100),
    "10072": _Param("Forced Charging Start Time 2: Hour", _BOTH, "24", 0, 24),
    "10073": _Param("Forced Charging Start Time 2: Minute", _BOTH, "0", 0, 59),
    "10074": _Param("Forced Charging End Time 2: Hour", _BOTH, "24", 0, 24),
    "10075": _Param("Forced Charging End Time 2: Minute", _BOTH, "0", 0, 59),
    "10076": _Param("Forced Charging Target SOC2", _BOTH, "100", 0, 100),
    "10091": _Param("Max. Charging Power", _HYB, "1060", 10, 1060, high_from="18290"),
    "10092": _Param("Max. Discharging Power", _HYB, "1060", 10, 1060, high_from="18291"),
}


class _CallLike(Protocol):
    """What the handlers read of the gateway's authenticated call."""

    body: Dict[str, Any]
    now: float


@dataclass
class _Task:
    """A write or read back on its way to the device; ``status`` is fixed once it ends."""

    task_id: str
    task_name: str
    device: Device
    set_type: int
    params: List[Tuple[str, str]]
    done_at: float
    expires: float
    failure: Optional[str]
    status: int = RUNNING
    returned: Dict[str, str] = field(default_factory=dict)


class ControlSimulator:
    """Device parameters, their tasks and the controls tests use to make them fail or expire."""

    def __init__(self, fleet: Fleet, reject: Callable[[str], Exception], *,
                 task_seconds: float = 3.0, min_write_interval: float = 10.0) -> None:
        self.fleet = fleet
        self._reject = reject
        self.task_seconds = task_seconds
        self.min_write_interval = min_write_interval
        self._by_uuid = {str(d.uuid): d for d in fleet.devices()}
        self._lock = threading.Lock()
        self.reset()

    # -- controls for tests -----------------------------------------------------------------
    def reset(self) -> None:
        """Every device back to its defaults, online; no tasks, no queued failures."""
        with self._lock:
            self._values: Dict[str, Dict[str, str]] = {}
            self._tasks: Dict[str, _Task] = {}
            self._last_write: Dict[str, float] = {}
            self._offline: Set[str] = set()
            self._failures: Deque[str] = deque()
            self._ids = itertools.count(1000001)

    def fail_next_write(self, mode: str, count: int = 1) -> None:
        """Make the next accepted writes end badly: ``refused``, ``offline`` or ``expire``."""
        if mode not in TASK_FAILURES:
            raise ValueError(f"mode must be one of {', '.join(TASK_FAILURES)}")
        with self._lock:
            self._failures.extend([mode] * count)

    def set_offline(self, ps_key: str, offline: bool = True) -> None:
        """Take a device offline (its tasks fail) or bring it back."""
        with self._lock:
            (self._offline.add if offline else self._offline.discard)(ps_key)

    def values(self, ps_key: str) -> Dict[str, str]:
        """The device's parameter values (wire texts) by code, as a read back would give them."""
        device = self.fleet.device(ps_key)
        if device is None:
            raise ValueError(f"unknown ps_key {ps_key!r}")
        with self._lock:
            return dict(self._device_values(device))

    # -- services ---------------------------------------------------------------------------
    def param_setting_check(self, call: _CallLike) -> Dict[str, Any]:
        """Whether the device's parameters may be set (0) or read (2): only if it has some."""
        self._set_type(call.body)
        device = self._device(call.body)
        allowed = "1" if self._codes_of(device) else "0"
        return {"check_result": allowed,
                "dev_result_list": [{"uuid": device.uuid, "check_result": allowed}]}

    def param_setting(self, call: _CallLike) -> Dict[str, Any]:
        """Start a write or read-back task, or say why not."""
        body = call.body
        set_type = self._set_type(body)
        device = self._device(body)
        params = self._param_list(body, set_type)
        expire = self._int(body.get("expire_second", 120))
        if expire < 1:
            raise self._reject("010")
        with self._lock:
            if set_type == 0 and self._too_fast(device, call.now):
                return {"check_result": "9"}
            if any(code not in self._codes_of(device) for code, _ in params):
                return {"check_result": "1",
                        "dev_result_list": [{"uuid": device.uuid, "code": "0", "task_id": ""}]}
            failure = self._failures.popleft() if set_type == 0 and self._failures else None
            task = _Task(str(next(self._ids)), str(body.get("task_name") or ""), device,
                         set_type, params, call.now + self.task_seconds, call.now + expire,
                         failure)
            if len(self._tasks) >= 1000:  # a long demo: forget tasks that have ended
                self._tasks = {k: v for k, v in self._tasks.items() if v.status == RUNNING}
            self._tasks[task.task_id] = task
            if set_type == 0:
                self._last_write[device.ps_key] = call.now
        return {"check_result": "1",
                "dev_result_list": [{"uuid": device.uuid, "code": "1",
                                     "task_id": task.task_id}]}

    def get_param_setting_task(self, call: _CallLike) -> Dict[str, Any]:
        """The task's state now; a task ends (once) on the first look after its time is up."""
        task_id = str(self._required(call.body, "task_id")).strip()
        device = self._device(call.body)
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.device is not device:
                raise self._reject("010")
            if task.status == RUNNING:
                self._advance(task, call.now)
            status, returned = task.status, dict(task.returned)
        rows = [self._param_row(code, value, task.set_type, returned.get(code, ""))
                for code, value in task.params]
        return {"task_id": task.task_id, "task_name": task.task_name, "command_status": status,
                "param_list": rows}

    # -- the device -------------------------------------------------------------------------
    def _advance(self, task: _Task, now: float) -> None:
        """End a task whose time is up: expired, failed, or applied to the device."""
        if now < _ends_at(task):
            return
        if task.failure == "expire" or task.done_at > task.expires:
            task.status = EXPIRED
        elif task.failure == "offline" or task.device.ps_key in self._offline:
            task.status = OFFLINE
        elif task.set_type == 2:
            values = self._device_values(task.device)
            task.returned = {code: values[code] for code, _ in task.params}
            task.status = SUCCESS
        else:
            applied = self._apply(task.device, task.params)
            if task.failure == "refused" or applied is None:
                task.status = REFUSED
            else:
                self._values[task.device.ps_key] = applied
                task.status = SUCCESS

    def _apply(self, device: Device, params: List[Tuple[str, str]]) -> Optional[Dict[str, str]]:
        """The device's values after the writes in order, or None when it refuses one."""
        values = dict(self._device_values(device))
        for code, wire in params:
            param = PARAMS[code]
            if param.needs and values[param.needs[0]] not in param.needs[1]:
                return None
            if param.codes:
                if wire not in dict(param.codes):
                    return None
            else:
                try:
                    number = int(wire)
                except ValueError:
                    return None
                if not param.low <= number <= self._high(device, param):
                    return None
            values[code] = wire
        return values

    @staticmethod
    def _high(device: Device, param: _Param) -> int:
        """The upper end of a range that depends on the device (rated power, property point)."""
        if param.high_from == "rated":
            return int(device.profile.rated_w)
        if param.high_from is not None:
            limit = device.properties.get(int(param.high_from))
            return int(float(limit) * 100) if limit else param.high
        return param.high

    def _device_values(self, device: Device) -> Dict[str, str]:
        """The device's values, defaults until written (call with the lock held)."""
        if device.ps_key not in self._values:
            self._values[device.ps_key] = {code: param.default
                                           for code, param in PARAMS.items()
                                           if device.device_type in param.types}
        return self._values[device.ps_key]

    def _too_fast(self, device: Device, now: float) -> bool:
        """A write right after another one, or while another one still runs."""
        last = self._last_write.get(device.ps_key)
        running = any(t.device is device and t.set_type == 0 and now < _ends_at(t)
                      for t in self._tasks.values())
        return running or (last is not None and now - last < self.min_write_interval)

    @staticmethod
    def _codes_of(device: Device) -> Set[str]:
        return {code for code, param in PARAMS.items() if device.device_type in param.types}

    @staticmethod
    def _param_row(code: str, value: str, set_type: int, returned: str) -> Dict[str, Any]:
        param = PARAMS[code]
        return {"param_code": code, "point_name": param.name,
                "set_value": value if set_type == 0 else "", "return_value": returned,
                "set_val_name": "|".join(label for _, label in param.codes),
                "set_val_name_val": "|".join(wire for wire, _ in param.codes)}

    # -- request parameters -----------------------------------------------------------------
    def _required(self, body: Mapping[str, Any], name: str) -> Any:
        value = body.get(name)
        if value is None or value == "" or value == []:
            raise self._reject("009")
        return value

    def _int(self, value: Any) -> int:
        try:
            return int(str(value).strip())
        except ValueError:
            raise self._reject("010") from None

    def _set_type(self, body: Mapping[str, Any]) -> int:
        set_type = self._int(self._required(body, "set_type"))
        if set_type not in (0, 2):
            raise self._reject("010")
        return set_type

    def _device(self, body: Mapping[str, Any]) -> Device:
        device = self._by_uuid.get(str(self._required(body, "uuid")).strip())
        if device is None:
            raise self._reject("010")
        return device

    def _param_list(self, body: Mapping[str, Any], set_type: int) -> List[Tuple[str, str]]:
        items = self._required(body, "param_list")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise self._reject("010")
        params = []
        for item in items:
            code = str(item.get("param_code") or "").strip()
            wire = "" if item.get("set_value") is None else str(item["set_value"]).strip()
            if not code or (set_type == 0 and not wire):
                raise self._reject("010")
            params.append((code, wire))
        return params


def _ends_at(task: _Task) -> float:
    """When a task stops running: done, or at its expiry when it never gets done."""
    return task.expires if task.failure == "expire" else min(task.done_at, task.expires)
