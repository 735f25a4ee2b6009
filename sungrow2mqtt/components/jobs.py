"""The cloud side of each poll: what it asks the Open API and how the answers land in the fleet.

Each job is a plain method that the poller runs and that raises on failure: the poller owns
episodes, pauses and outcomes.  Independent calls go out together on the client's pool: the plant
list, the device list and the quota; every realtime chunk (and the fault query, started early by
the poller's wave).  The realtime poll hands each chunk's answer to the fleet as soon as it is
back, so its states go out while the other chunks are still on their way.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set

from sungrow2mqtt.catalog import Catalog
from sungrow2mqtt.clock import Clock
from sungrow2mqtt.components.fleet import (
    FleetState,
    FleetUnknown,
    PointMap,
    faults_by_device,
    quota_summary,
)
from sungrow2mqtt.components.ratios import RatioPoints
from sungrow2mqtt.errors import Sungrow2MqttError
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient, Row
from sungrow2mqtt.isolarcloud.errors import ApiError
from sungrow2mqtt.model import (
    PLANT_DEVICE_TYPE,
    Device,
    as_int,
    device_from_row,
    plant_from_row,
)

log = logging.getLogger(__name__)

# The Open API services each job calls, to count a job's calls when its calls overlap another's.
SERVICES = {"devices": ("getPowerStationList", "getDeviceListByUser", "getOpenApiCallInfo"),
            "realtime": ("getDeviceRealTimeData",),
            "faults": ("getFaultAlarmInfo",)}


class NoPlants(Sungrow2MqttError):
    """Device discovery found no plant: the bridge keeps the devices it knew and tries again."""


class CloudJobs:
    """Device discovery, realtime values, faults and the quota, from the cloud into the fleet."""

    def __init__(self, client: IsolarCloudClient, catalog: Catalog, fleet: FleetState,
                 clock: Clock, *, plants: Sequence[int] = (),
                 ratios: Optional[RatioPoints] = None) -> None:
        self._client = client
        self._catalog = catalog
        self._fleet = fleet
        self._clock = clock
        self._plants = set(plants)
        self._ratios = ratios or RatioPoints()
        self._points: Dict[int, PointMap] = {}     # device type -> its polled points

    def calls_of(self, kind: str) -> Callable[[], int]:
        """How many calls the job ``kind`` has made so far (those of its services)."""
        calls, services = self._client.transport.stats.calls, SERVICES[kind]
        return lambda: sum(calls.get(service, 0) for service in services)

    def refresh_devices(self) -> int:
        """Discover plants and devices: 2 paged calls for the whole account (+1 quota call), all
        three sent together.

        Finding no plant is a failure (NoPlants), not an empty fleet: a cloud that answers with
        an empty list for a while must not remove every device.
        """
        quota = self._client.submit(self._client.get_open_api_call_info)
        plant_rows = self._client.submit(self._client.get_power_station_list)
        device_rows = self._client.get_device_list_by_user()
        try:
            self._land_quota(quota.result())
        except ApiError as exc:
            log.info("Call quota not available: %s", exc)
        plants = self._plants_of_account(plant_rows.result())
        if not plants:
            raise NoPlants("device discovery found no plant" + (
                " of those configured (plants)" if self._plants else " in the account"))
        devices: Dict[str, Device] = {p.ps_key: p for p in plants.values()}
        for row in device_rows:
            plant = plants.get(as_int(row.get("ps_id")))
            if plant is None or not row.get("ps_key"):
                continue
            type_name = self._catalog.device_type_name(as_int(row.get("device_type")))
            try:
                device = device_from_row(row, plant, type_name)
            except ValueError as exc:
                log.warning("Ignoring a device of plant %d: %s", plant.ps_id, exc)
                continue
            if (device.ps_key.ps_id, device.ps_key.device_type) != (plant.ps_id,
                                                                     device.device_type):
                log.warning("Ignoring a device of plant %d: its ps_key %s names another plant "
                            "or device type", plant.ps_id, device.ps_key)
                continue
            devices[device.ps_key] = device
        self._fleet.set_devices(devices)
        log.info("Bridging %d plant(s) with %d device(s)", len(plants),
                 len(devices) - len(plants))
        return len(devices)

    def _plants_of_account(self, rows: List[Row]) -> Dict[int, Device]:
        """The account's plants, or those the configuration names."""
        type_name = self._catalog.device_type_name(PLANT_DEVICE_TYPE)
        plants: Dict[int, Device] = {}
        for row in rows:
            try:
                plant = plant_from_row(row, type_name)
            except ValueError:          # no usable ps_id
                continue
            if not self._plants or plant.ps_id in self._plants:
                plants[plant.ps_id] = plant
        missing = self._plants - set(plants)
        if missing:
            log.warning("Configured plants not found in the account: %s",
                        ", ".join(map(str, sorted(missing))))
        return plants

    def poll_realtime(self, ps_ids: Optional[Set[int]] = None) -> int:
        """Realtime values of every device (or of the plants ``ps_ids``); returns devices updated.

        A poll of every device ends the wait for values: entities still without one are stale.
        A device the cloud names in ``fail_ps_key_list`` keeps its values and is marked unserved.
        """
        devices: Dict[str, Device] = {d.ps_key: d for d in self._known_devices(ps_ids)}
        points = {device_type: [spec.point_id for spec in self._polled(device_type).specs]
                  for device_type in {device.device_type for device in devices.values()}}
        updated = 0
        for part in self._client.iter_real_time_data(list(devices), points):
            polled_at = self._clock.wall()
            rows = part.by_ps_key()
            for ps_key, row in rows.items():
                device = devices.get(ps_key)
                if device is not None:
                    self.update_device(device, row, polled_at)
                    updated += 1
            for ps_key in part.fail_ps_key_list:
                if ps_key in devices and ps_key not in rows:
                    self._fleet.set_unserved(devices[ps_key], polled_at)
        if not ps_ids:
            self._fleet.full_poll_done()
        return updated

    def update_device(self, device: Device, row: Mapping[str, Any], polled_at: dt.datetime
                      ) -> None:
        """One device's realtime row through the catalog into the fleet (and so out)."""
        points = self._ratios.points_for(device, self._polled(device.device_type), row)
        values = points.map_row(row, device.tz, polled_at)
        self._fleet.update_values(device, self._ratios.possible(device, points, values))

    def _polled(self, device_type: int) -> PointMap:
        """The catalog's polled points of a device type, looked up once."""
        points = self._points.get(device_type)
        if points is None:
            points = self._points[device_type] = PointMap(self._catalog.enabled(device_type))
        return points

    def poll_faults(self) -> int:
        """Open faults and alarms of all plants in one paged call; returns how many are open."""
        self._known_devices()
        return self._land_faults(self._client.get_fault_alarm_info())

    def start_faults(self) -> Callable[[], int]:
        """The fault query sent now, on the client's pool; the work returned lands its answer
        (the poller's early part of the faults job)."""
        answer = self._client.submit(self._client.get_fault_alarm_info)
        return lambda: self._land_faults(answer.result())

    def _land_faults(self, rows: List[Row]) -> int:
        devices: Dict[str, Device] = {d.ps_key: d for d in self._known_devices()}
        found = faults_by_device(rows, devices)
        for ps_key, items in found.items():
            self._fleet.set_faults(devices[ps_key], items)
        return sum(len(items) for items in found.values())

    def _known_devices(self, ps_ids: Optional[Set[int]] = None) -> List[Device]:
        """The devices to poll; FleetUnknown before discovery has found any."""
        devices = self._fleet.devices(ps_ids)
        if not devices:
            raise FleetUnknown("no devices known yet: device discovery has not succeeded")
        return devices

    def fetch_quota(self) -> Dict[str, Any]:
        """The call quota now (1 call).

        The hour's row is picked by the UTC hour of the bridge's clock, the clock and hours a
        rate-limit pause is measured by (:class:`Poller`), not by the machine's local hour.
        """
        return self._land_quota(self._client.get_open_api_call_info())

    def _land_quota(self, data: Row) -> Dict[str, Any]:
        quota = quota_summary(data, self._clock.wall().astimezone(dt.timezone.utc).hour)
        self._fleet.set_quota(quota)
        return quota
