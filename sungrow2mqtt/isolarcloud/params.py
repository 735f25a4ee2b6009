"""The three parameter-setting services (``control-api.md``) as thin typed calls.

They are not in the Open API document: what is known comes from public clients that use them
against live plants, so answers are read tolerantly (numbers or strings, missing lists, a
``null`` ``result_data``). A write or a read back is a *task* on the device: paramSetting only
starts it, getParamSettingTask tells how it went. Every call counts against the quota, polling
included, so :meth:`ParameterClient.wait` polls sparingly and stops at the task's expiry.

Parameter codes and values are the wire texts of appendix 10 (``"10001"``, ``"900"``); what
they mean is the business of :mod:`sungrow2mqtt.control`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Protocol, Tuple

from sungrow2mqtt.isolarcloud.transport import Response

__all__ = [
    "CHECK_SERVICE", "SET_SERVICE", "TASK_SERVICE", "SET_READ", "SET_WRITE",
    "CheckResult", "DeviceTask", "ParamValue", "ParameterClient", "Submission", "TaskStatus",
]

log = logging.getLogger(__name__)

CHECK_SERVICE = "paramSettingCheck"
SET_SERVICE = "paramSetting"
TASK_SERVICE = "getParamSettingTask"
SET_WRITE = 0
SET_READ = 2
EXPIRE_SECONDS = 120        # what public clients send as expire_second
POLL_INTERVAL = 5.0         # seconds between task polls: each poll is a call against the quota
ALLOWED = "1"               # check_result "1": allowed / accepted; dev_result_list code "1" too
TOO_FAST = "9"              # check_result "9": "do not repeat", writes came too fast
RUNNING = "2"               # command_status "2": the task still runs
SUCCEEDED = "8"             # command_status "8": success; anything else is a failure


class Caller(Protocol):
    """What the services need of :class:`~sungrow2mqtt.isolarcloud.client.IsolarCloudClient`."""

    def call(self, service: str, params: Mapping[str, Any], *, idempotent: bool = True
             ) -> Response:
        """Call a service with the token and return the successful envelope."""


def _text(value: object) -> str:
    """A field the gateway may send as number or string, as stripped text ("" when missing)."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _rows(data: Mapping[str, Any], name: str) -> List[Mapping[str, Any]]:
    """The mappings of a list field; a missing, null or malformed list is empty."""
    items = data.get(name)
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _data(response: Response) -> Mapping[str, Any]:
    return response.data if isinstance(response.data, Mapping) else {}


@dataclass(frozen=True)
class CheckResult:
    """paramSettingCheck: whether the account may set (or read) parameters of a device."""

    check_result: str
    devices: Mapping[str, str] = field(default_factory=dict)

    def allows(self, uuid: object) -> bool:
        """The device's own answer when the list has it, else the overall answer."""
        return self.devices.get(_text(uuid), self.check_result) == ALLOWED


@dataclass(frozen=True)
class DeviceTask:
    """One device's part of a paramSetting answer: ``code`` "1" and a task id when it took it."""

    uuid: str
    code: str
    task_id: str

    @property
    def accepted(self) -> bool:
        """Whether the device took the task (and there is a task to follow)."""
        return self.code == ALLOWED and bool(self.task_id)


@dataclass(frozen=True)
class Submission:
    """paramSetting's answer: accepted or not, and the task per device uuid."""

    check_result: str
    tasks: Mapping[str, DeviceTask] = field(default_factory=dict)

    @property
    def too_fast(self) -> bool:
        """The gateway says writes come too fast: do not repeat this one."""
        return self.check_result == TOO_FAST

    def task_for(self, uuid: object) -> Optional[DeviceTask]:
        """The device's accepted task, or None when the request or the device refused it."""
        task = self.tasks.get(_text(uuid))
        return task if self.check_result == ALLOWED and task and task.accepted else None


@dataclass(frozen=True)
class ParamValue:
    """One parameter of a task: what was sent, what the device returned, enumeration labels."""

    code: str
    set_value: str
    return_value: str
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def value(self) -> Optional[str]:
        """The device's value: ``return_value`` on a read back, ``set_value`` on a write."""
        return self.return_value or self.set_value or None


@dataclass(frozen=True)
class TaskStatus:
    """getParamSettingTask: the task's state and its parameters."""

    command_status: str
    params: Tuple[ParamValue, ...] = ()

    @property
    def running(self) -> bool:
        """Still running: poll again later (but not past the task's expiry)."""
        return self.command_status == RUNNING

    @property
    def succeeded(self) -> bool:
        """The device confirmed the task."""
        return self.command_status == SUCCEEDED

    def values(self) -> Dict[str, str]:
        """param_code -> the device's value, for the parameters that have one."""
        return {p.code: p.value for p in self.params if p.code and p.value is not None}


def _param_value(row: Mapping[str, Any]) -> ParamValue:
    names = _text(row.get("set_val_name")).split("|")
    codes = _text(row.get("set_val_name_val")).split("|")
    labels = {code.strip(): name.strip() for code, name in zip(codes, names) if code.strip()}
    return ParamValue(_text(row.get("param_code")), _text(row.get("set_value")),
                      _text(row.get("return_value")), labels)


def _codes(codes: Iterable[object], service: str) -> List[str]:
    """Parameter codes as the digits the services take; ValueError for anything else."""
    texts = [_text(code) for code in codes]
    if not texts:
        raise ValueError(f"{service}: at least one parameter is required")
    bad = next((text for text in texts if not text.isdigit()), None)
    if bad is not None:
        raise ValueError(f"{service}: parameter code {bad!r} is not a number (like 10001)")
    return texts


class ParameterClient:
    """paramSettingCheck, paramSetting and getParamSettingTask over a logged-in client."""

    def __init__(self, client: Caller, *, expire_seconds: int = EXPIRE_SECONDS) -> None:
        self.client = client
        self.expire_seconds = expire_seconds

    def check(self, uuid: object, set_type: int = SET_WRITE) -> CheckResult:
        """Whether parameters of the device may be written (set_type 0) or read (2)."""
        data = _data(self.client.call(CHECK_SERVICE, {"set_type": set_type, "uuid": _text(uuid)}))
        devices = {_text(row.get("uuid")): _text(row.get("check_result"))
                   for row in _rows(data, "dev_result_list")}
        return CheckResult(_text(data.get("check_result")), devices)

    def write(self, uuid: object, values: Iterable[Tuple[object, object]],
              task_name: str = "sungrow2mqtt write") -> Submission:
        """Start a write task: (param_code, wire value) pairs, sent in the given order."""
        pairs = list(values)
        codes = _codes((code for code, _ in pairs), SET_SERVICE)
        params = [{"param_code": code, "set_value": _text(value)}
                  for code, (_, value) in zip(codes, pairs)]
        return self._submit(uuid, SET_WRITE, params, task_name)

    def read(self, uuid: object, codes: Iterable[object],
             task_name: str = "sungrow2mqtt read back") -> Submission:
        """Start a read-back task for these parameter codes (their values come with the task)."""
        params = [{"param_code": code, "set_value": ""} for code in _codes(codes, SET_SERVICE)]
        return self._submit(uuid, SET_READ, params, task_name)

    def _submit(self, uuid: object, set_type: int, params: List[Dict[str, str]],
                task_name: str) -> Submission:
        # a write that may have reached the gateway is never sent again; a read back may be
        data = _data(self.client.call(SET_SERVICE, {
            "set_type": set_type, "uuid": _text(uuid), "task_name": task_name,
            "expire_second": self.expire_seconds, "param_list": params},
            idempotent=set_type != SET_WRITE))
        tasks = {}
        for row in _rows(data, "dev_result_list"):
            task = DeviceTask(_text(row.get("uuid")), _text(row.get("code")),
                              _text(row.get("task_id")))
            tasks[task.uuid] = task
        return Submission(_text(data.get("check_result")), tasks)

    def task(self, uuid: object, task_id: object) -> TaskStatus:
        """The task's state now (one call)."""
        data = _data(self.client.call(TASK_SERVICE, {"task_id": _text(task_id),
                                                     "uuid": _text(uuid)}))
        params = tuple(_param_value(row) for row in _rows(data, "param_list"))
        return TaskStatus(_text(data.get("command_status")), params)

    def wait(self, uuid: object, task_id: object, *, interval: float = POLL_INTERVAL,
             timeout: Optional[float] = None, sleep: Optional[Callable[[float], Any]] = None,
             clock: Callable[[], float] = time.monotonic) -> Optional[TaskStatus]:
        """Poll the task every ``interval`` seconds until it ends or ``timeout`` passes.

        The first poll comes after one interval (a task takes seconds). The result is the last
        status seen, still ``running`` when the time ran out; None when ``sleep`` returned True
        (a stop event's ``wait``) before the first poll. ``timeout`` defaults to the task's
        ``expire_second``.
        """
        pause = sleep or _sleep
        deadline = clock() + (self.expire_seconds if timeout is None else timeout)
        status: Optional[TaskStatus] = None
        while True:
            if pause(max(0.0, min(interval, deadline - clock()))) is True:
                return status
            status = self.task(uuid, task_id)
            if not status.running or clock() >= deadline:
                log.debug("task %s of device %s: command_status %s", task_id, uuid,
                          status.command_status)
                return status


def _sleep(seconds: float) -> bool:
    """time.sleep that never asks to stop."""
    time.sleep(seconds)
    return False
