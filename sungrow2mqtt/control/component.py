"""Control: device settings as Home Assistant entities, read back first, written with confirmation.

Writing settings to someone's inverter must be trustworthy, so:

* nothing happens unless ``control.enabled`` is set; then only devices the configuration names
  (or all) and whose paramSettingCheck allows it get entities;
* an entity shows what the device reported (a read back, or a write the device confirmed),
  never what was last sent;
* a request is checked against the parameter catalog before anything is sent, and is refused
  while the cloud is rate limited; it then becomes ONE paramSetting whose task is followed until
  the device confirms, refuses or lets it expire; it is never repeated; after a failure the
  device's values are read back once, so the entities show what it really holds;
* each write is logged at INFO: device, setting, old -> new value, outcome.

Threads: MQTT callbacks and the bridge's request dispatcher only check a request and queue it.
One control thread makes every cloud call of control, in order, so writes never interleave (one
in flight at a time, so at most one per device) and a task that takes a minute on the device
never holds up polling.  Everything else is injected: the clients, the MQTT connection, where
discovery configs go, how requests are answered, when the cloud is paused.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import (
    Any, Callable, Deque, Dict, List, Mapping, Optional, Protocol, Sequence, Set, Union,
)

from sungrow2mqtt.clock import Clock
from sungrow2mqtt.components.announcer import Announcer
from sungrow2mqtt.components.fleet import FleetListener
from sungrow2mqtt.components import bridge_requests
from sungrow2mqtt.components.request_api import Request, RequestSpec
from sungrow2mqtt.config import ControlConfig
from sungrow2mqtt.control.discovery import command_filter, entity_config, state_topic
from sungrow2mqtt.control.encoding import HaValue, SettingError, decode, wire_code
from sungrow2mqtt.control.loader import ParameterCatalog
from sungrow2mqtt.control.settings import Write, plan_writes
from sungrow2mqtt.control.spec import RATED_POWER, ParameterSpec, property_limit, rated_power
from sungrow2mqtt.discovery import Payload, Topics
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient
from sungrow2mqtt.errors import Sungrow2MqttError
from sungrow2mqtt.isolarcloud.errors import ApiError, RateLimitError
from sungrow2mqtt.isolarcloud.params import (
    POLL_INTERVAL, SET_READ, SET_WRITE, ParameterClient, TaskStatus,
)
from sungrow2mqtt.model import Device
from sungrow2mqtt.mqtt import MqttConnection
from sungrow2mqtt.validation import ABSENT, Field, Invalid, Problems, Section, describe

__all__ = ["SET_SCHEMA", "SET_REQUEST", "Control", "ControlRefused", "Respond"]

log = logging.getLogger(__name__)

SET_REQUEST = "set"          # <base>/bridge/request/set, answered on <base>/bridge/response/set
WRITE_SPACING = 10.0         # seconds between writes to one device: sooner, the cloud answers 9
MAX_QUEUED = 20              # writes and read backs waiting for the control thread
MAX_SETTINGS = 20            # settings in one request
_DEVICE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
FROM_HOME_ASSISTANT = "Home Assistant"   # the origin of a command on an entity's topic
STOPPING = "the bridge is stopping; nothing was sent"
CONTROL_OFF = ("control is off: set control.enabled: true in the configuration to change device "
               "settings")


class ControlRefused(Sungrow2MqttError):
    """A set request that is not carried out (nothing was sent), with the reason."""


class Respond(Protocol):
    """Answers a request on ``<base>/bridge/response/<name>`` (the request API's envelope)."""

    def __call__(self, name: str, *, data: Optional[Mapping[str, Any]] = None,
                 error: Optional[str] = None, transaction: Any = None) -> None:
        """Publish the answer."""


# -- the set request's schema (for the request API's registry) ---------------------------------

def _device_id(value: Any) -> str:
    if not isinstance(value, str) or not _DEVICE.fullmatch(value):
        raise Invalid("expected a device serial number (or ps_key)")
    return value


def _settings(value: Any) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid('expected a JSON object of setting key to value, such as '
                      '{"soc_upper_limit": 90}')
    if not value:
        raise Invalid('expected at least one setting, such as {"soc_upper_limit": 90}',
                      show_got=False)
    if len(value) > MAX_SETTINGS:
        raise Invalid(f"at most {MAX_SETTINGS} settings per request, got {len(value)}",
                      show_got=False)
    for key, item in value.items():
        if not _KEY.fullmatch(key):
            raise Invalid(f"{describe(key)} is not a setting key (like soc_upper_limit)",
                          show_got=False)
        if item is None or isinstance(item, (dict, list)):
            raise Invalid(f"{key}: expected a number or a text, got {describe(item)}",
                          show_got=False)
    return value


def _one_device(problems: Problems, path: str, values: Dict[str, Any]) -> None:
    # a field that failed is missing from values: only a request without other problems counts
    if not len(problems) and ("ps_key" in values) == ("device" in values):
        problems.add(path, 'give one of "ps_key" or "device"')


# ps_key or device (serial), and the settings; a field not given stays out of the params
SET_SCHEMA = Section((Field("ps_key", bridge_requests.ps_key, ABSENT),
                      Field("device", _device_id, ABSENT), Field("settings", _settings)),
                     finish=_one_device)


# -- state ---------------------------------------------------------------------------------------

@dataclass
class _Controlled:
    """A device with control entities: its settings, its limits and what it last reported."""

    device: Device
    specs: Dict[str, ParameterSpec]
    limits: Dict[str, float]
    readable: bool
    current: Dict[str, str] = field(default_factory=dict)     # key -> wire value

    def state(self) -> Dict[str, Optional[HaValue]]:
        """The read-back topic's document: every readable setting, null while unknown."""
        document: Dict[str, Optional[HaValue]] = {}
        for key, spec in self.specs.items():
            if spec.readable:
                try:
                    document[key] = decode(spec, self.current.get(key))
                except ValueError as exc:       # a code the catalog does not know
                    log.warning("Control: %s: %s", self.device.ps_key, exc)
                    document[key] = None
        return document

    def shown(self, key: str) -> str:
        """The device's value of a setting as people read it, for the audit log."""
        try:
            value = decode(self.specs[key], self.current.get(key))
        except ValueError:
            return repr(self.current.get(key))
        return "unknown" if value is None else str(value)


@dataclass(frozen=True)
class _Write:
    """A checked set request waiting for the control thread."""

    ps_key: str
    settings: Mapping[str, Any]
    wires: Mapping[str, str]          # key -> wire value, as checked when it arrived
    transaction: Any
    origin: str                       # who asked, for the audit log


_Job = Union[_Write, Device]          # a write, or a device to set up (or read back again)


class Control(FleetListener):
    """The control component: start()/stop(), on_devices(), request_spec(), republish().

    ``client`` reads the property points, ``params`` sets and reads parameters (usually over
    the same client); discovery configs go through the bridge's ``announcer``, so they count
    as this run's and are cleared with their device; ``respond`` is the request API's.
    """

    def __init__(self, settings: ControlConfig, catalog: ParameterCatalog,
                 params: ParameterClient, client: IsolarCloudClient, mqtt: MqttConnection,
                 topics: Topics, announcer: Announcer, *, respond: Respond,
                 paused_until: Callable[[], Optional[dt.datetime]], clock: Clock,
                 poll_interval: float = POLL_INTERVAL,
                 write_spacing: float = WRITE_SPACING) -> None:
        self._settings = settings
        self._catalog = catalog
        self._params = params
        self._client = client
        self._mqtt = mqtt
        self._topics = topics
        self._announcer = announcer
        self._respond = respond
        self._paused_until = paused_until
        self._stop = threading.Event()           # set by stop(): waits end, nothing new is sent
        self._poll_interval = poll_interval
        self._write_spacing = write_spacing
        self._clock = clock
        self._cond = threading.Condition()
        self._jobs: Deque[_Job] = deque()
        self._current: Optional[_Job] = None                 # the job the control thread runs
        self._controlled: Dict[str, _Controlled] = {}
        self._announced: Dict[str, Set[str]] = {}             # ps_key -> discovery topics
        self._last_write: Dict[str, float] = {}               # ps_key -> monotonic
        self._rate_limited_until = float("-inf")              # monotonic
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Listen for commands and start the control thread; nothing at all when disabled."""
        if not self._settings.enabled:
            log.info("Control is off (control.enabled: false): no control entities, set "
                     "requests are refused")
            return
        self._stop.clear()
        self._mqtt.subscribe(command_filter(self._topics), self._on_command)
        self._thread = threading.Thread(target=self._run, name="control", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the control thread; a task being followed is left to the device.

        Writes still waiting are answered: nothing of them was sent.
        """
        if self._thread is None:
            return
        self._mqtt.unsubscribe(command_filter(self._topics))
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout)
        self._thread = None
        with self._cond:
            waiting, self._jobs = list(self._jobs), deque()
        for job in waiting:
            if isinstance(job, _Write):
                self._refuse(STOPPING, job.transaction)

    def republish(self) -> None:
        """Every read-back state again (after a reconnect or Home Assistant's birth)."""
        with self._cond:
            states = [(ps_key, entry.state()) for ps_key, entry in self._controlled.items()]
        for ps_key, state in states:
            self._mqtt.publish(state_topic(self._topics, ps_key), state, retain=True)

    # -- what the bridge tells ---------------------------------------------------------------

    def on_devices(self, devices: Sequence[Device], removed: Sequence[Device]) -> None:
        """The device list: new devices are set up, known ones read back, gone ones cleared."""
        if not self._settings.enabled:
            return
        wanted = [d for d in devices if self._wanted(d)]
        keys = {d.ps_key for d in wanted}
        with self._cond:
            gone = [k for k in self._announced if k not in keys] + [
                d.ps_key for d in removed if d.ps_key in self._announced]
        for ps_key in dict.fromkeys(gone):
            self._forget(ps_key)
        for device in wanted:
            self._queue(device)

    def _wanted(self, device: Device) -> bool:
        return (not device.is_plant and bool(self._catalog.for_device_type(device.device_type))
                and self._settings.allows(device.ps_id, device.serial, device.ps_key))

    # -- requests (MQTT thread or the request dispatcher) ------------------------------------

    def request_spec(self) -> RequestSpec:
        """The ``set`` request, to register with the request API under :data:`SET_REQUEST`."""
        def handle(request: Request) -> None:
            self.request_set(request.params, request.transaction)
        return RequestSpec(SET_SCHEMA, handle)

    def request_set(self, params: Mapping[str, Any], transaction: Any = None) -> None:
        """The ``set`` request, its fields checked by :data:`SET_SCHEMA`; answered later."""
        target = params.get("ps_key") or params.get("device")
        self._submit(str(target), params["settings"], transaction, "request")

    def _on_command(self, topic: str, payload: bytes, retained: bool) -> None:
        """A Home Assistant entity's command: ``<base>/<ps_key>/set/<key>`` with the value."""
        levels = topic[len(self._topics.base) + 1:].split("/")
        if retained:
            log.warning("Control: ignoring a retained command on %s (a retained command would "
                        "write again on every restart; publish commands without retain)", topic)
            return
        if len(levels) != 3 or not _KEY.fullmatch(levels[2]):
            self._refuse(f"{topic[:120]}: not a command topic ({self._topics.base}/<ps_key>/set/"
                         "<setting key>)", None)
            return
        value = payload.decode("utf-8", errors="replace").strip()
        if not value:
            return                    # someone clearing a retained command: nothing asked
        self._submit(levels[0], {levels[2]: value}, None, FROM_HOME_ASSISTANT)

    def _submit(self, target: str, settings: Mapping[str, Any], transaction: Any,
                origin: str) -> None:
        """Check a request completely, then queue it for the control thread, or refuse it."""
        try:
            if not self._settings.enabled:
                raise ControlRefused(CONTROL_OFF)
            if self._stop.is_set():
                raise ControlRefused(STOPPING)
            self._check_not_paused()
            with self._cond:
                entry = self._find(target)
                expected = dict(entry.current)
                for job in (self._current, *self._jobs):
                    if isinstance(job, _Write) and job.ps_key == entry.device.ps_key:
                        expected.update(job.wires)          # as it will be when its turn comes
                writes = plan_writes(self._catalog, entry.device.device_type, settings,
                                     current=expected, limits=entry.limits)
                if len(self._jobs) >= MAX_QUEUED:
                    raise ControlRefused("too many writes waiting; try again later")
                self._jobs.append(_Write(entry.device.ps_key, dict(settings),
                                         {w.spec.key: w.wire for w in writes}, transaction,
                                         origin))
                self._cond.notify_all()
        except (SettingError, ControlRefused) as exc:
            self._refuse(str(exc), transaction)
            if origin == FROM_HOME_ASSISTANT:
                self.republish()          # the entity goes back to what the device holds

    def _find(self, target: str) -> _Controlled:
        """The controlled device a request names by ps_key or serial (lock held)."""
        entry = self._controlled.get(target) or next(
            (e for e in self._controlled.values() if e.device.serial == target), None)
        if entry is None:
            known = ", ".join(f"{e.device.ps_key} ({e.device.serial or e.device.name})"
                              for e in self._controlled.values()) or "none yet"
            raise ControlRefused(f"{target[:64]!r} is not a controlled device; controlled: "
                                 f"{known}")
        return entry

    def _check_not_paused(self) -> None:
        """Refuse while the cloud is rate limited: a write must not be the call that waits."""
        until = self._paused_until()
        remaining = self._rate_limited_until - self._clock.monotonic()
        if until is None and remaining > 0:
            until = self._clock.wall() + dt.timedelta(seconds=remaining)
        if until is not None:
            raise ControlRefused(f"cloud calls are paused until "
                                 f"{until.isoformat(timespec='seconds')} (rate limit); "
                                 "nothing was sent")

    def _refuse(self, reason: str, transaction: Any) -> None:
        log.warning("Control: set request refused, nothing sent: %s", reason)
        self._respond(SET_REQUEST, error=reason, transaction=transaction)

    # -- the control thread ------------------------------------------------------------------

    def _queue(self, device: Device) -> None:
        with self._cond:
            if device not in self._jobs:
                self._jobs.append(device)
                self._cond.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: bool(self._jobs) or self._stop.is_set())
                if self._stop.is_set():
                    return
                job = self._current = self._jobs.popleft()
            try:
                if isinstance(job, _Write):
                    self._write(job)
                else:
                    self._set_up(job)
            except Exception:     # the control thread must not die on a surprise
                log.exception("Control: unexpected error; continuing")
            finally:
                with self._cond:
                    self._current = None

    def _set_up(self, device: Device) -> None:
        """Check, limits and entities of a new device; a read back of every device."""
        with self._cond:
            entry = self._controlled.get(device.ps_key)
        try:
            self._check_not_paused()
            if entry is None:
                entry = self._new_entry(device)
                if entry is None:
                    return
            self._read_back(entry)
        except (ApiError, ControlRefused) as exc:
            self._note_rate_limit(exc)
            log.warning("Control: %s: cannot set up control now (%s); trying again at the next "
                        "device refresh", device.ps_key, exc)

    def _new_entry(self, device: Device) -> Optional[_Controlled]:
        """Whether the cloud lets this account change the device's settings, and its entities."""
        if not device.uuid:
            log.warning("Control: %s has no uuid in the device list; it cannot be controlled",
                        device.ps_key)
            return None
        writable = self._params.check(device.uuid, SET_WRITE)
        if not writable.allows(device.uuid):
            log.info("Control: the cloud does not let this account change the settings of %s "
                     "(%s, check_result %s): no control entities", device.name, device.ps_key,
                     writable.check_result or "none")
            return None
        readable = self._params.check(device.uuid, SET_READ).allows(device.uuid)
        limits = self._limits(device)
        entry = _Controlled(device, {}, limits, readable)
        configs: Dict[str, Payload] = {}
        for spec in self._catalog.for_device_type(device.device_type):
            try:
                topic, payload = entity_config(device, spec, limits, self._topics)
            except SettingError as exc:
                log.info("Control: %s: %s not offered: %s", device.ps_key, spec.key, exc)
                continue
            entry.specs[spec.key] = spec
            configs[topic] = payload
        with self._cond:
            self._controlled[device.ps_key] = entry
            self._announced[device.ps_key] = set(configs)
        self._announcer.announce(configs)
        log.info("Control: %d setting(s) of %s (%s) offered%s", len(entry.specs), device.name,
                 device.ps_key, "" if readable else "; the cloud does not read them back")
        return entry

    def _limits(self, device: Device) -> Dict[str, float]:
        """The device's limits some ranges depend on: rated power, property points (read once)."""
        limits: Dict[str, float] = {}
        rated = rated_power(device.model)
        if rated is not None:
            limits[RATED_POWER] = rated
        points = self._catalog.property_points(device.device_type)
        if not points:
            return limits
        try:
            data = self._client.get_dev_property_point_value(
                device.ps_id, device.device_type, [device.ps_key], points)
        except ApiError as exc:
            log.warning("Control: %s: property points not read (%s); using the default ranges",
                        device.ps_key, exc)
            return limits
        rows = data.get("property_point_value_list")
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, Mapping) or str(row.get("ps_key")) != device.ps_key:
                continue
            try:
                limits[property_limit(int(str(row.get("property_code"))))] = float(
                    str(row.get("property_value")))
            except ValueError:
                continue
        return limits

    def _read_back(self, entry: _Controlled) -> bool:
        """Ask the device for its values (one task); whether it answered.  Publishes them."""
        device = entry.device
        codes = [spec.param_code for spec in entry.specs.values() if spec.readable]
        if not entry.readable or not codes:
            self._publish(entry)
            return False
        submission = self._params.read(device.uuid, codes)
        task = submission.task_for(device.uuid)
        status = None if task is None else self._follow(device, task.task_id)
        if status is None and self._stop.is_set():
            return False                                # stopping: nobody waits for it
        if status is None or not status.succeeded:
            log.warning("Control: %s: reading the settings back failed (%s)", device.ps_key,
                        "not accepted, check_result " + submission.check_result if task is None
                        else _task_outcome(status, self._params.expire_seconds))
            self._publish(entry)
            return False
        self._apply(entry, status)
        self._publish(entry)
        return True

    def _follow(self, device: Device, task_id: str) -> Optional[TaskStatus]:
        return self._params.wait(device.uuid, task_id, interval=self._poll_interval,
                                 sleep=self._stop.wait)

    def _apply(self, entry: _Controlled, status: TaskStatus) -> None:
        """Keep the values the device reported or confirmed."""
        with self._cond:
            for code, value in status.values().items():
                spec = self._catalog.by_code(entry.device.device_type, code)
                wire = wire_code(value)
                if spec is not None and spec.key in entry.specs and wire is not None:
                    entry.current[spec.key] = wire

    def _publish(self, entry: _Controlled) -> None:
        with self._cond:
            state = entry.state()
        self._mqtt.publish(state_topic(self._topics, entry.device.ps_key), state, retain=True)

    def _write(self, job: _Write) -> None:
        """One request: checked again, ONE paramSetting, its task followed, audited, answered."""
        with self._cond:
            entry = self._controlled.get(job.ps_key)
        try:
            if entry is None:
                raise ControlRefused(f"{job.ps_key} is no longer a controlled device")
            self._check_not_paused()
            writes = plan_writes(self._catalog, entry.device.device_type, job.settings,
                                 current=entry.current, limits=entry.limits)
        except (SettingError, ControlRefused) as exc:
            self._refuse(str(exc), job.transaction)
            return
        before = {w.spec.key: entry.shown(w.spec.key) for w in writes}
        spacing = self._last_write.get(job.ps_key, float("-inf")) + self._write_spacing
        if self._stop.wait(max(0.0, spacing - self._clock.monotonic())):
            self._refuse(STOPPING, job.transaction)
            return
        error = self._send(entry, writes)
        if error is not None:
            self._read_back_after_failure(entry)
        for write in writes:
            log.info("Control write: %s (%s) %s: %s -> %s: %s [%s%s]", entry.device.name,
                     entry.device.ps_key, write.spec.key, before[write.spec.key], write.value,
                     "ok" if error is None else f"error: {error}; the device has "
                     f"{entry.shown(write.spec.key)}", job.origin,
                     "" if job.transaction is None else f", transaction {job.transaction!r}")
        with self._cond:
            values = {w.spec.key: entry.state().get(w.spec.key) for w in writes}
        data = {"ps_key": entry.device.ps_key, "settings": values}
        self._respond(SET_REQUEST, data=data, error=error, transaction=job.transaction)

    def _send(self, entry: _Controlled, writes: List[Write]) -> Optional[str]:
        """paramSetting once and its task to the end; None when the device confirmed it."""
        device = entry.device
        try:
            submission = self._params.write(device.uuid, [(w.spec.param_code, w.wire)
                                                          for w in writes])
        except ApiError as exc:
            self._note_rate_limit(exc)
            return f"the write call failed, so it may or may not have reached the device: {exc}"
        finally:                  # the spacing counts from the answer: the cloud's clock ran
            self._last_write[device.ps_key] = self._clock.monotonic()
        if submission.too_fast:
            return ("the cloud refused it: writes came too fast (check_result 9); not repeated, "
                    "try again in a minute")
        task = submission.task_for(device.uuid)
        if task is None:
            code = submission.tasks.get(device.uuid)
            return (f"the cloud refused it (check_result {submission.check_result or 'none'}"
                    f"{', device code ' + code.code if code else ''})")
        try:
            status = self._follow(device, task.task_id)
        except ApiError as exc:
            self._note_rate_limit(exc)
            return f"sent, but its task could not be followed: {exc}"
        if status is None or not status.succeeded:
            return _task_outcome(status, self._params.expire_seconds)
        self._apply(entry, status)
        with self._cond:                       # a confirmed write without values: as sent
            for write in writes:
                if write.spec.param_code not in status.values():
                    entry.current[write.spec.key] = write.wire
        self._publish(entry)
        return None

    def _read_back_after_failure(self, entry: _Controlled) -> None:
        """One read back, so the entities show what the device holds after a failed write."""
        try:
            self._check_not_paused()
            self._read_back(entry)
        except (ApiError, ControlRefused) as exc:
            self._note_rate_limit(exc)
            log.warning("Control: %s: no read back after the failed write (%s)",
                        entry.device.ps_key, exc)
            self._publish(entry)

    def _note_rate_limit(self, exc: Exception) -> None:
        if isinstance(exc, RateLimitError):
            self._rate_limited_until = self._clock.monotonic() + exc.retry_after()

    def _forget(self, ps_key: str) -> None:
        """A device that left (or is no longer wanted): its entities and state go."""
        with self._cond:
            self._controlled.pop(ps_key, None)
            topics = self._announced.pop(ps_key, set())
        log.info("Control: %s is no longer controlled; removing its control entities", ps_key)
        self._announcer.withdraw(topics)
        self._mqtt.publish(state_topic(self._topics, ps_key), None, retain=True)


def _task_outcome(status: Optional[TaskStatus], expire_seconds: int) -> str:
    """Why a task did not succeed, as the device (or the lack of an answer) tells."""
    if status is None:
        return "stopped before the device answered"
    if status.running:
        return f"the device did not answer within {expire_seconds} s (the task expired)"
    return f"the device did not apply it (command_status {status.command_status})"
