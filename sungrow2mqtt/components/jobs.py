"""The cloud side of each poll: what it asks the Open API and how the answers land in the fleet.

Each job is a plain method that the poller runs and that raises on failure: the poller owns
episodes, pauses and outcomes.  The realtime poll hands each device type's answer to the fleet
as soon as it is back, so its states go out while later calls are still under way.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

from sungrow2mqtt.catalog import Catalog
from sungrow2mqtt.clock import Clock
from sungrow2mqtt.components.fleet import (
    FleetState,
    faults_by_device,
    map_realtime_row,
    quota_summary,
)
from sungrow2mqtt.components.ratios import RatioPoints
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient, RealtimeResult
from sungrow2mqtt.isolarcloud.errors import ApiError
from sungrow2mqtt.model import (
    PLANT_DEVICE_TYPE,
    Device,
    as_int,
    device_from_row,
    plant_from_row,
)

log = logging.getLogger(__name__)


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

    def refresh_devices(self) -> int:
        """Discover plants and devices: 2 paged calls for the whole account (+1 quota call)."""
        plants = self._plants_of_account()
        devices: Dict[str, Device] = {p.ps_key: p for p in plants.values()}
        for row in self._client.get_device_list_by_user():
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
        try:
            self.fetch_quota()
        except ApiError as exc:
            log.info("Call quota not available: %s", exc)
        self._fleet.set_devices(devices)
        log.info("Bridging %d plant(s) with %d device(s)", len(plants),
                 len(devices) - len(plants))
        return len(devices)

    def _plants_of_account(self) -> Dict[int, Device]:
        """The account's plants, or those the configuration names."""
        type_name = self._catalog.device_type_name(PLANT_DEVICE_TYPE)
        plants: Dict[int, Device] = {}
        for row in self._client.get_power_station_list():
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
        devices = self._fleet.devices(ps_ids)
        updated = 0
        for group, result in self._realtime_answers(devices):
            polled_at = self._clock.wall()
            rows = result.by_ps_key()
            for device in group:
                row = rows.get(device.ps_key)
                if row is not None:
                    self.update_device(device, row, polled_at)
                    updated += 1
                elif device.ps_key in result.fail_ps_key_list:
                    self._fleet.set_unserved(device, polled_at)
        if not ps_ids:
            self._fleet.full_poll_done()
        return updated

    def update_device(self, device: Device, row: Mapping[str, Any], polled_at: dt.datetime
                      ) -> None:
        """One device's realtime row through the catalog into the fleet (and so out)."""
        specs = self._ratios.specs_for(device, self._catalog.enabled(device.device_type), row)
        values = map_realtime_row(specs, row, device.tz, polled_at)
        self._fleet.update_values(device, self._ratios.possible(device, specs, values))

    def _realtime_answers(self, devices: List[Device]
                          ) -> Iterator[Tuple[List[Device], RealtimeResult]]:
        """One answer per device type (the 2.14 service takes one type per call)."""
        by_type: Dict[int, List[Device]] = {}
        for device in devices:
            by_type.setdefault(device.device_type, []).append(device)
        for device_type, group in sorted(by_type.items()):
            points = [spec.point_id for spec in self._catalog.enabled(device_type)]
            if points:
                yield group, self._client.get_device_real_time_data(
                    device_type, points, ps_keys=[d.ps_key for d in group])

    def poll_faults(self) -> int:
        """Open faults and alarms of all plants in one paged call; returns how many are open."""
        rows = self._client.get_fault_alarm_info()
        devices: Dict[str, Device] = {d.ps_key: d for d in self._fleet.devices()}
        found = faults_by_device(rows, devices)
        for ps_key, items in found.items():
            self._fleet.set_faults(devices[ps_key], items)
        return sum(len(items) for items in found.values())

    def fetch_quota(self) -> Dict[str, Any]:
        """The call quota now (1 call).

        The hour's row is picked by the UTC hour of the bridge's clock, the clock and hours a
        rate-limit pause is measured by (:class:`Poller`), not by the machine's local hour.
        """
        quota = quota_summary(self._client.get_open_api_call_info(),
                              self._clock.wall().astimezone(dt.timezone.utc).hour)
        self._fleet.set_quota(quota)
        return quota
