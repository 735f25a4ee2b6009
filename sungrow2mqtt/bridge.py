"""The bridge: cloud readings in, MQTT states, faults and discovery out, requests answered.

All cloud work runs on one worker thread (:meth:`Bridge.run_forever`), so calls are serialised and
the quota is easy to reason about; MQTT callbacks only validate requests and queue them.  The loop
never dies on a cloud failure: each episode of trouble is logged once, backed off, and the last good
values stay retained on the broker.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Set

import schedule

from sungrow2mqtt import __version__, discovery
from sungrow2mqtt.catalog import Catalog
from sungrow2mqtt.config import Config
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient
from sungrow2mqtt.isolarcloud.errors import ApiError, LoginError, RateLimitError
from sungrow2mqtt.health import write_status
from sungrow2mqtt.history import fetch_history
from sungrow2mqtt.model import (
    PLANT_DEVICE_TYPE,
    Device,
    as_int,
    device_from_row,
    parse_device_time,
    plant_from_row,
    valid_ps_key,
)
from sungrow2mqtt.mqtt import MqttConnection
from sungrow2mqtt.quota import calls_per_hour, fastest_safe_interval
from sungrow2mqtt.commands import MAX_PAYLOAD_BYTES, BadRequest, Request, parse_request

log = logging.getLogger(__name__)

LOGIN_PAUSE = dt.timedelta(hours=1)   # a refused login is not retried sooner: accounts get locked
MAX_QUEUED_REQUESTS = 20
QUOTA_MARGIN = 0.8                    # share of the hourly quota polling may use


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _iso(moment: Optional[dt.datetime]) -> Optional[str]:
    return moment.isoformat(timespec="seconds") if moment else None


@dataclass
class PollOutcome:
    """How the last run of one kind of poll went, for ``bridge/info``."""

    time: Optional[dt.datetime] = None
    ok: Optional[bool] = None
    error: Optional[str] = None
    api_calls: int = 0
    duration_s: float = 0.0

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {"time": _iso(self.time), "outcome": None if self.ok is None else
                ("ok" if self.ok else "error"), "error": self.error,
                "api_calls": self.api_calls, "duration_s": round(self.duration_s, 3)}


@dataclass
class PendingRefresh:
    """Refresh requests waiting for one shared poll."""

    requests: List[Request] = field(default_factory=list)
    due: float = 0.0
    throttled: bool = False


class Bridge:
    """Owns the fleet, the latest values and the MQTT side of them."""

    def __init__(self, config: Config, client: IsolarCloudClient, catalog: Catalog,
                 mqtt: MqttConnection, *, stop_event: Optional[threading.Event] = None,
                 status_file: Optional[Path] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.client = client
        self.catalog = catalog
        self.mqtt = mqtt
        self.topics = Topics(config.mqtt.base_topic, config.homeassistant.prefix)
        self._clock = clock
        self._status_file = status_file
        self.devices: Dict[str, Device] = {}
        self.values: Dict[str, Dict[str, Any]] = {}
        self.faults: Dict[str, List[Dict[str, Any]]] = {}
        self.quota: Dict[str, Any] = {}
        self.outcomes: Dict[str, PollOutcome] = {k: PollOutcome() for k in
                                                 ("devices", "realtime", "faults")}
        self._announced: Dict[str, Any] = {}       # discovery topic -> payload
        self._stale_configs: Set[str] = set()      # our retained configs found on the broker
        self._full_poll_done = False               # every device polled once: stale is knowable
        self._trouble: Optional[str] = None        # current cloud-trouble episode
        self._trouble_count = 0
        self._blocked_until: Optional[dt.datetime] = None
        self._last_cloud_poll = float("-inf")
        self._requests: "queue.Queue[Optional[Request]]" = queue.Queue(MAX_QUEUED_REQUESTS)
        self._pending_refresh: Optional[PendingRefresh] = None
        self._lock = threading.RLock()
        self.stop_event = stop_event or threading.Event()
        self.scheduler = schedule.Scheduler()

    # -- MQTT side --------------------------------------------------------------------------

    def attach(self) -> None:
        """Subscribe to requests, HA's birth and our own retained discovery configs."""
        self.mqtt.subscribe(self.topics.request("+"), self.on_request,
                            max_payload=MAX_PAYLOAD_BYTES, on_oversized=self._on_oversized_request)
        self.mqtt.on_connected.append(self.publish_all)
        if self.config.homeassistant.discovery:
            self.mqtt.subscribe(self.config.homeassistant.status_topic, self._on_ha_status)
            self.mqtt.subscribe(f"{self.topics.prefix}/+/+/+/config", self._on_retained_config)

    def _on_ha_status(self, topic: str, payload: bytes, retained: bool) -> None:
        if payload.strip().lower() == b"online":
            log.info("Home Assistant is online; republishing discovery and states")
            self.publish_all()

    def _on_retained_config(self, topic: str, payload: bytes, retained: bool) -> None:
        """Remember retained configs of ours, so vanished entities can be cleared after restarts."""
        if not (retained and payload and topic.split("/")[-3].startswith("sungrow2mqtt_")):
            return
        try:
            config = json.loads(payload)
            owner = str(config.get("state_topic") or config.get("command_topic") or "")
        except (ValueError, AttributeError):
            return
        if not owner.startswith(self.topics.base + "/"):
            return
        with self._lock:
            self._stale_configs.add(topic)
            ready = self._full_poll_done
        if ready:
            self._clear_stale_configs()

    def on_request(self, topic: str, payload: bytes, retained: bool) -> None:
        """Validate a request (paho thread) and queue it; bad ones are answered at once."""
        name = topic.rsplit("/", 1)[-1]
        if retained:
            log.warning("Ignoring retained request on %s (publish requests without retain)", topic)
            return
        try:
            request = parse_request(name, payload)
        except BadRequest as exc:
            log.warning("Bad request on %s: %s", topic, exc)
            self.respond(exc.name, error=str(exc), transaction=exc.transaction)
            return
        try:
            self._requests.put_nowait(request)
        except queue.Full:
            self.respond(request.name, error="too many requests queued; try again later",
                         transaction=request.transaction)

    def _on_oversized_request(self, topic: str, size: int) -> None:
        """Answer a request the MQTT layer refused unread: no valid request is that large."""
        refused = BadRequest(topic.rsplit("/", 1)[-1],
                             f"payload too large ({size} bytes, at most {MAX_PAYLOAD_BYTES})")
        self.respond(refused.name, error=str(refused))

    def respond(self, name: str, *, data: Optional[Mapping[str, Any]] = None,
                error: Optional[str] = None, transaction: Any = None) -> None:
        """Answer on ``<base>/bridge/response/<name>`` in zigbee2mqtt's shape."""
        message: Dict[str, Any] = {"status": "error" if error else "ok", "data": dict(data or {})}
        if error:
            message["error"] = error
        if transaction is not None:
            message["transaction"] = transaction
        self.mqtt.publish(self.topics.response(name), message)

    def publish_all(self) -> None:
        """Discovery, states, faults and info again (after a reconnect or HA's birth message)."""
        with self._lock:
            announced = dict(self._announced)
            values = {k: dict(v) for k, v in self.values.items()}
            faults = dict(self.faults)
        for topic, payload in announced.items():
            self.mqtt.publish(topic, payload, retain=True)
        for ps_key, state in values.items():
            self.mqtt.publish(self.topics.state(ps_key), state, retain=True)
        for ps_key, items in faults.items():
            self._publish_faults(ps_key, items)
        self.publish_info()

    def publish_info(self) -> None:
        """The retained ``bridge/info`` document."""
        with self._lock:
            plants = [{"ps_id": d.ps_id, "name": d.name, "ps_key": d.ps_key}
                      for d in self.devices.values() if d.is_plant]
            devices = [{"ps_key": d.ps_key, "ps_id": d.ps_id, "device_type": d.device_type,
                        "type": d.type_name, "model": d.model, "serial": d.serial,
                        "name": d.name} for d in self.devices.values() if not d.is_plant]
            info = {
                "version": __version__,
                "plants": plants,
                "devices": devices,
                "last_poll": {k: v.as_dict() for k, v in self.outcomes.items()},
                "quota": self.quota,
                "api_calls_total": self.client.transport.stats.total,
                "rate_limited_until": _iso(self._blocked_until),
            }
        self.mqtt.publish(self.topics.bridge_info, info, retain=True)
        if self._status_file is not None:
            self._write_status(info)

    def _write_status(self, info: Mapping[str, Any]) -> None:
        """Keep the local status file fresh for ``sungrow2mqtt health``."""
        try:
            write_status(self._status_file, {  # type: ignore[arg-type]
                "mqtt_connected": self.mqtt.connected,
                "cloud_ok": all(o.ok is not False for o in self.outcomes.values()),
                "last_poll": info["last_poll"]})
        except OSError as exc:
            log.warning("Cannot write status file %s (%s)", self._status_file,
                        exc.strerror or type(exc).__name__)
            self._status_file = None

    def _announce(self, configs: Mapping[str, Any]) -> None:
        if not self.config.homeassistant.discovery:
            return
        for topic, payload in configs.items():
            with self._lock:
                if self._announced.get(topic) == payload:
                    continue
                self._announced[topic] = payload
            self.mqtt.publish(topic, payload, retain=True)

    def _withdraw(self, topics: Set[str]) -> None:
        for topic in topics:
            with self._lock:
                self._announced.pop(topic, None)
            log.info("Removing discovery config %s", topic)
            self.mqtt.publish(topic, None, retain=True)

    def _publish_faults(self, ps_key: str, items: List[Dict[str, Any]]) -> None:
        self.mqtt.publish(self.topics.faults(ps_key),
                          {"problem": "ON" if items else "OFF", "faults": items}, retain=True)

    # -- cloud side (worker thread) ---------------------------------------------------------

    def refresh_devices(self) -> None:
        """Discover plants and devices: 2 paged calls for the whole account (+1 quota call)."""
        rows = self.client.get_power_station_list()
        wanted = set(self.config.plants)
        plant_type = self.catalog.device_type_name(PLANT_DEVICE_TYPE)
        plants = {p.ps_id: p for p in (plant_from_row(r, plant_type) for r in rows)
                  if p.ps_id > 0 and (not wanted or p.ps_id in wanted)}
        missing = wanted - set(plants)
        if missing:
            log.warning("Configured plants not found in the account: %s",
                        ", ".join(map(str, sorted(missing))))
        devices: Dict[str, Device] = {p.ps_key: p for p in plants.values()}
        for row in self.client.get_device_list_by_user():
            plant = plants.get(as_int(row.get("ps_id")))
            if plant is None or not row.get("ps_key"):
                continue
            type_name = self.catalog.device_type_name(as_int(row.get("device_type")))
            device = device_from_row(row, plant, type_name)
            if not valid_ps_key(device.ps_key, plant.ps_id, device.device_type):
                log.warning("Ignoring a device with an unusable ps_key %r in plant %d",
                            device.ps_key[:60], plant.ps_id)
                continue
            devices[device.ps_key] = device
        try:
            self.quota = _quota_summary(self.client.get_open_api_call_info())
        except ApiError as exc:
            log.info("Call quota not available: %s", exc)
        with self._lock:
            gone = set(self.devices) - set(devices)
            self.devices = devices
        for ps_key in gone:
            self._forget_device(ps_key)
        self._announce(discovery.bridge_configs(self.topics))
        for device in devices.values():
            if self.catalog.enabled(device.device_type):
                self._announce(discovery.device_configs(device, self.topics))
        log.info("Bridging %d plant(s) with %d device(s)", len(plants), len(devices) - len(plants))
        self.publish_info()

    def _forget_device(self, ps_key: str) -> None:
        log.info("Device %s is no longer in the account; removing it", ps_key)
        prefix = f"{self.topics.prefix}/"
        node = f"/sungrow2mqtt_{ps_key}/"
        with self._lock:
            topics = {t for t in self._announced if t.startswith(prefix) and node in t}
            self.values.pop(ps_key, None)
            self.faults.pop(ps_key, None)
        self._withdraw(topics)
        self.mqtt.publish(self.topics.state(ps_key), None, retain=True)
        self.mqtt.publish(self.topics.faults(ps_key), None, retain=True)

    def _clear_stale_configs(self) -> None:
        """Clear retained configs of ours that this run does not announce (vanished entities).

        Point configs are announced only once a value arrives, so this waits for a full poll.
        """
        with self._lock:
            if not self._full_poll_done:
                return
            stale = self._stale_configs - set(self._announced)
            self._stale_configs.clear()
        if stale:
            self._withdraw(stale)

    def poll_realtime(self, ps_ids: Optional[Set[int]] = None) -> int:
        """Fetch realtime points of every (or the given plants') device; returns devices updated."""
        with self._lock:
            devices = [d for d in self.devices.values() if not ps_ids or d.ps_id in ps_ids]
        points = {t: [s.point_id for s in self.catalog.enabled(t)]
                  for t in {d.device_type for d in devices}}
        result = self.client.get_real_time_data([d.ps_key for d in devices], points)
        rows = result.by_ps_key()
        polled_at = _now()
        for device in devices:
            row = rows.get(device.ps_key)
            if row is not None:
                self._update_device(device, row, polled_at)
        if not ps_ids:
            with self._lock:
                self._full_poll_done = True
            self._clear_stale_configs()
        return len(rows)

    def _update_device(self, device: Device, row: Mapping[str, Any], polled_at: dt.datetime
                       ) -> None:
        """Map one device's raw points through the catalog, announce new keys, publish state."""
        with self._lock:
            state = self.values.setdefault(device.ps_key, {})
        new_specs = []
        for spec in self.catalog.enabled(device.device_type):
            value = spec.convert(row.get(f"p{spec.point_id}"))
            if value is None:
                if spec.key in state:
                    state[spec.key] = None     # announced before: entity shows unknown
                continue
            if spec.key not in state:
                new_specs.append(spec)
            state[spec.key] = value
        state["last_update"] = (parse_device_time(row.get("device_time"), device.tz)
                                or polled_at.astimezone(device.tz).isoformat(timespec="seconds"))
        for spec in new_specs:
            self._announce(dict([discovery.sensor_config(device, spec, self.topics)]))
        self.mqtt.publish(self.topics.state(device.ps_key), dict(state), retain=True)

    def poll_faults(self) -> int:
        """Open faults and alarms of all plants in one paged call; returns how many are open."""
        rows = self.client.get_fault_alarm_info()
        with self._lock:
            devices = dict(self.devices)
        found: Dict[str, List[Dict[str, Any]]] = {k: [] for k in devices}
        for row in rows:
            ps_key = str(row.get("ps_key") or "")
            if ps_key not in devices:
                ps_id = str(row.get("ps_id") or "")
                ps_key = f"{ps_id}_{PLANT_DEVICE_TYPE}_0_0"
                if ps_key not in devices:
                    continue
            found[ps_key].append(_fault_item(row, devices[ps_key]))
        for ps_key, items in found.items():
            items.sort(key=lambda f: (str(f.get("since")), str(f.get("code"))))
            with self._lock:
                changed = self.faults.get(ps_key) != items
                self.faults[ps_key] = items
            if changed:
                self._publish_faults(ps_key, items)
        return sum(len(v) for v in found.values())

    # -- the worker loop --------------------------------------------------------------------

    def cloud_job(self, kind: str, work: Callable[[], Any]) -> Optional[Any]:
        """Run one kind of cloud work with episode logging and backoff; never raises ApiError."""
        now = _now()
        outcome = self.outcomes.setdefault(kind, PollOutcome())
        if self._blocked_until and now < self._blocked_until:
            log.debug("Skipping %s poll: cloud paused until %s", kind, _iso(self._blocked_until))
            self.publish_info()
            return None
        before = self.client.transport.stats.total
        started = self._clock()
        try:
            result = work()
        except ApiError as exc:
            self._cloud_trouble(exc)
            outcome.ok, outcome.error = False, str(exc)
            result = None
        except Exception as exc:  # an answer we did not expect must not stop the schedule
            self._cloud_trouble(exc)
            outcome.ok, outcome.error = False, f"unexpected {type(exc).__name__}: {exc}"
            result = None
        else:
            self._cloud_recovered()
            outcome.ok, outcome.error = True, None
        finally:
            outcome.time = _now()
            outcome.api_calls = self.client.transport.stats.total - before
            outcome.duration_s = self._clock() - started
            self._last_cloud_poll = self._clock()
        self.publish_info()
        return result

    def _cloud_trouble(self, exc: Exception) -> None:
        # one episode per kind of failure, whichever endpoint happens to meet it
        kind = f"{type(exc).__name__}:{getattr(exc, 'result_code', None) or ''}"
        if isinstance(exc, RateLimitError):
            self._blocked_until = exc.retry_at
        elif isinstance(exc, LoginError):
            self._blocked_until = _now() + LOGIN_PAUSE
        self._trouble_count += 1
        if kind != self._trouble:
            self._trouble = kind
            pause = (f"; pausing cloud calls until {_iso(self._blocked_until)}"
                     if self._blocked_until else "; will retry at the next poll")
            log.error("Cloud trouble: %s%s", exc, pause,
                      exc_info=not isinstance(exc, ApiError))
        else:
            log.debug("Cloud trouble continues: %s", exc)

    def _cloud_recovered(self) -> None:
        if self._trouble:
            log.warning("Cloud recovered after %d failed call(s)", self._trouble_count)
        self._trouble, self._trouble_count, self._blocked_until = None, 0, None

    def poll_all(self, ps_ids: Optional[Set[int]] = None) -> None:
        """Realtime values then faults (one refresh); the first time, check the quota fit."""
        first = not self.devices
        if first:
            self.cloud_job("devices", self.refresh_devices)
        self.cloud_job("realtime", lambda: self.poll_realtime(ps_ids))
        self.cloud_job("faults", self.poll_faults)
        if first:
            self.check_quota_fit()

    def check_quota_fit(self) -> Optional[float]:
        """Log how many calls an hour the configured polling costs against the hourly quota.

        Warns when it would use more than 80 % of the quota and names the fastest safe interval.
        Returns the calls per hour (None when not yet measurable).
        """
        polling, outcomes = self.config.polling, self.outcomes
        if not all(outcomes[k].ok for k in ("devices", "realtime", "faults")):
            return None
        per_hour = calls_per_hour(polling.realtime, polling.faults, polling.devices,
                                  outcomes["realtime"].api_calls, outcomes["faults"].api_calls,
                                  outcomes["devices"].api_calls)
        quota = self.quota.get("per_hour")
        if not quota:
            log.info("Polling costs about %.0f API calls an hour (quota unknown)", per_hour)
        elif per_hour > QUOTA_MARGIN * quota:
            try:
                safest = fastest_safe_interval(quota, outcomes["realtime"].api_calls,
                                               outcomes["faults"].api_calls,
                                               outcomes["devices"].api_calls, polling.devices,
                                               margin=QUOTA_MARGIN)
                advice = f"poll every {safest} s or more (polling.realtime and polling.faults)"
            except ValueError:
                advice = "poll less often and refresh devices less often (polling.devices)"
            log.warning("Polling as configured costs about %.0f API calls an hour, more than "
                        "%.0f %% of the hourly quota of %d: %s", per_hour, QUOTA_MARGIN * 100,
                        quota, advice)
        else:
            log.info("Polling costs about %.0f API calls an hour of a quota of %d", per_hour,
                     quota)
        return per_hour

    def schedule_polls(self) -> None:
        """Register the periodic polls with the scheduler."""
        polling = self.config.polling
        self.scheduler.every(polling.devices).seconds.do(self.cloud_job, "devices",
                                                          self.refresh_devices)
        self.scheduler.every(polling.realtime).seconds.do(self.cloud_job, "realtime",
                                                           self.poll_realtime)
        self.scheduler.every(polling.faults).seconds.do(self.cloud_job, "faults",
                                                         self.poll_faults)

    def run_forever(self) -> None:
        """The worker thread: first poll, then scheduled polls and queued requests until stopped."""
        self.poll_all()
        self.schedule_polls()
        while not self.stop_event.is_set():
            try:
                self.scheduler.run_pending()
                self._run_due_refresh()
                timeout = max(0.05, min(1.0, self.scheduler.idle_seconds or 1.0,
                                        self._refresh_wait()))
                try:
                    request = self._requests.get(timeout=timeout)
                except queue.Empty:
                    continue
                if request is not None:      # None only wakes the loop up (see stop)
                    self.handle(request)
            except Exception:   # the one broad catch: keep the service alive, say what happened
                log.exception("Unexpected error in the polling loop; continuing")
                self.stop_event.wait(5)

    def stop(self) -> None:
        """Ask the worker loop to end now (it may be waiting for a request)."""
        self.stop_event.set()
        try:
            self._requests.put_nowait(None)
        except queue.Full:
            pass

    def _refresh_wait(self) -> float:
        pending = self._pending_refresh
        return max(0.0, pending.due - self._clock()) if pending else 1.0

    # -- requests (worker thread) -----------------------------------------------------------

    def handle(self, request: Request) -> None:
        """Carry out one validated request and answer it."""
        try:
            if request.name == "refresh":
                self._queue_refresh(request)
            elif request.name == "faults":
                self._answer_cloud(request, "faults",
                                   lambda: {"open_faults": self.poll_faults()})
            elif request.name == "quota":
                self._answer_cloud(request, "quota", self._fetch_quota)
            elif request.name == "history":
                self._answer_cloud(request, "history", lambda: self._history(request.params))
            elif request.name == "info":
                self.publish_info()
                self.respond("info", data={"published": self.topics.bridge_info},
                             transaction=request.transaction)
        except BadRequest as exc:
            self.respond(request.name, error=str(exc), transaction=request.transaction)

    def _answer_cloud(self, request: Request, kind: str, work: Callable[[], Any]) -> None:
        if self._blocked_until and _now() < self._blocked_until:
            self.respond(request.name, transaction=request.transaction,
                         error=f"cloud calls paused until {_iso(self._blocked_until)} "
                               f"({self._trouble or 'rate limit'})")
            return
        try:
            data = work()
        except ApiError as exc:
            self._cloud_trouble(exc)
            self.respond(request.name, error=str(exc), transaction=request.transaction)
        except ValueError as exc:     # a limit of the document, checked before calling
            self.respond(request.name, error=str(exc), transaction=request.transaction)
        else:
            self.respond(request.name, data=data, transaction=request.transaction)

    def _fetch_quota(self) -> Dict[str, Any]:
        self.quota = _quota_summary(self.client.get_open_api_call_info())
        self.publish_info()
        return self.quota

    def _queue_refresh(self, request: Request) -> None:
        ps_id = request.params.get("ps_id")
        with self._lock:
            plants = {d.ps_id for d in self.devices.values() if d.is_plant}
        if ps_id is not None and ps_id not in plants:
            raise BadRequest("refresh", f"unknown plant {ps_id}; bridged plants: "
                             f"{', '.join(map(str, sorted(plants))) or 'none yet'}",
                             request.transaction)
        if self._blocked_until and _now() < self._blocked_until:
            self.respond("refresh", transaction=request.transaction,
                         error=f"rate limited: cloud calls paused until "
                               f"{_iso(self._blocked_until)}; not polling now")
            return
        if self._pending_refresh is None:
            earliest = self._last_cloud_poll + self.config.polling.min_refresh_spacing
            now = self._clock()
            self._pending_refresh = PendingRefresh(due=max(now, earliest),
                                                   throttled=earliest > now)
        self._pending_refresh.requests.append(request)

    def _run_due_refresh(self) -> None:
        pending = self._pending_refresh
        if pending is None or self._clock() < pending.due:
            return
        self._pending_refresh = None
        wanted = {r.params["ps_id"] for r in pending.requests if r.params.get("ps_id")}
        everything = any(r.params.get("ps_id") is None for r in pending.requests)
        ps_ids = None if everything else wanted
        self.cloud_job("realtime", lambda: self.poll_realtime(ps_ids))
        self.cloud_job("faults", self.poll_faults)
        realtime, faults = self.outcomes["realtime"], self.outcomes["faults"]
        error = realtime.error or faults.error
        data = {"plants": sorted(ps_ids) if ps_ids else "all", "throttled": pending.throttled,
                "coalesced": len(pending.requests), "api_calls":
                realtime.api_calls + faults.api_calls, "last_update": _iso(_now())}
        for request in pending.requests:
            self.respond("refresh", data=data, error=error, transaction=request.transaction)

    def _history(self, params: Mapping[str, Any]) -> Dict[str, Any]:
        ps_key = params["ps_key"]
        with self._lock:
            device = self.devices.get(ps_key)
        if device is None:
            raise BadRequest("history", f"unknown ps_key {ps_key!r}; see {self.topics.bridge_info}")
        return fetch_history(self.client, self.catalog, device, params)


def _fault_item(row: Mapping[str, Any], device: Device) -> Dict[str, Any]:
    since = row.get("create_time")
    try:
        moment = dt.datetime.strptime(str(since), "%Y-%m-%d %H:%M:%S").replace(tzinfo=device.tz)
        since = moment.isoformat()
    except ValueError:
        pass
    return {"code": row.get("fault_code"), "type_code": row.get("fault_type_code"),
            "name": row.get("fault_name"), "level": row.get("fault_level"),
            "type": row.get("fault_type"), "since": since}


def _quota_summary(data: Mapping[str, Any]) -> Dict[str, Any]:
    """The interesting numbers of getOpenApiCallInfo as JSON numbers."""
    def number(value: Any) -> Optional[int]:
        try:
            return int(float(str(value)))
        except (TypeError, ValueError):
            return None
    hour = dt.datetime.now().hour
    per_hour = {number(item.get("hour")): number(item.get("max_call_times"))
                for item in data.get("per_hour_access_times_config") or []
                if isinstance(item, Mapping)}
    return {
        "per_day": number(data.get("per_day_access_times_config")),
        "per_hour": per_hour.get(hour),
        "today_used": number(data.get("today_accessed_times")),
        "this_hour_used": number(data.get("curr_hour_accessed_times")),
    }
