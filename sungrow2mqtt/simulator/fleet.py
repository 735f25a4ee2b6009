"""The simulated plants and devices, their faults, and the readings and history they report.

A :class:`Fleet` is plain data (plants, devices, faults) plus lookups; readings come from each
plant's :class:`~sungrow2mqtt.simulator.values.PlantPhysics`, so realtime, minute and
day/month/year answers all derive from the same deterministic model of the clock.
"""
from __future__ import annotations

import datetime as dt
import itertools
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from sungrow2mqtt.simulator.tables import load_yaml
from sungrow2mqtt.simulator.values import (
    SLOT_SECONDS, SLOTS_PER_DAY, SLOTS_PER_HOUR, DeviceProfile, PlantParams, PlantPhysics,
    PlantSample, Reading, date_day, format_reading, is_fraction, local_day_slot, point_decimals,
    point_kind, read_point, slot_datetime,
)

logger = logging.getLogger(__name__)

_NAMES = load_yaml("names.yaml")
# Appendix 1 English names, lower-cased as the samples show them ("type_name": "inverter").
DEVICE_TYPE_NAMES: Dict[int, str] = {int(k): str(v) for k, v in _NAMES["device_types"].items()}
VIRTUAL_DEVICE_TYPES = frozenset({3, 11, 17})  # plant, grid-connection point, unit (section 2.5.3)
PS_TYPE_NAMES: Dict[int, str] = {int(k): str(v) for k, v in _NAMES["plant_types"].items()}

RATIO_SCALES = ("fraction", "percent")
FAULT = 1
ALARM = 2


@dataclass
class Device:
    """One device as getDeviceList describes it, plus what it measures (``profile``)."""

    ps_id: int
    device_type: int
    device_code: int
    chnnl_id: int
    uuid: int
    name: str
    profile: DeviceProfile
    model_code: Optional[str] = None
    model_id: Optional[int] = None
    sn: Optional[str] = None
    communication_dev_sn: Optional[str] = None
    firmware: Dict[str, str] = field(default_factory=dict)
    properties: Dict[int, str] = field(default_factory=dict)
    factory_name: Optional[str] = "SUNGROW"
    rel_state: int = 1

    @property
    def ps_key(self) -> str:
        """``<ps_id>_<device_type>_<device_code>_<chnnl_id>``, the key every data call uses."""
        return f"{self.ps_id}_{self.device_type}_{self.device_code}_{self.chnnl_id}"

    @property
    def virtual(self) -> bool:
        """Plant-level devices are listed only when ``is_virtual_unit`` is 1."""
        return self.device_type in VIRTUAL_DEVICE_TYPES

    @property
    def type_name(self) -> str:
        """The device type's name as the API writes it."""
        return DEVICE_TYPE_NAMES.get(self.device_type, str(self.device_type))


@dataclass
class Plant:
    """One power station: the fields of sections 2.3/2.4, its devices and its physics."""

    ps_id: int
    ps_name: str
    ps_type: int
    params: PlantParams
    location: str
    install_date: str
    currency: str
    price_kwh: float
    devices: List[Device] = field(default_factory=list)
    connect_type: int = 2
    share_type: str = "0"
    valid_flag: int = 1
    build_status: int = 2
    email: str = "demo.owner@example.invalid"
    physics: PlantPhysics = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.physics = PlantPhysics(self.params)

    @property
    def name(self) -> str:
        """The plant's name (``ps_name``), like :attr:`Device.name`."""
        return self.ps_name

    @property
    def ps_key(self) -> str:
        """The plant's own ps_key, ``<ps_id>_11_0_0`` (section 2.8.3)."""
        return f"{self.ps_id}_11_0_0"

    @property
    def time_zone(self) -> str:
        """``ps_current_time_zone`` as the samples write it, e.g. ``GMT+1``."""
        hours = self.params.tz_hours
        whole = int(hours)
        text = f"GMT{'+' if hours >= 0 else '-'}{abs(whole)}"
        minutes = int(round(abs(hours - whole) * 60))
        return text + (f":{minutes:02d}" if minutes else "")

    @property
    def ps_type_name(self) -> str:
        """The plant type's name (section 2.3.3)."""
        return PS_TYPE_NAMES.get(self.ps_type, str(self.ps_type))

    @property
    def communication_sns(self) -> List[str]:
        """SNs of the plant's communication modules (``communication_dev_detail_list``)."""
        return [d.sn for d in self.devices if d.device_type == 22 and d.sn]

    def local_time(self, ts: float) -> dt.datetime:
        """The plant's wall-clock time for a UTC epoch time (fixed offset, no DST)."""
        return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=ts + self.params.tz_hours * 3600)

    def iso_time(self, local: dt.datetime) -> str:
        """``yyyy-MM-dd'T'HH:mm:ssXXX`` with the plant's offset."""
        offset = dt.timezone(dt.timedelta(hours=self.params.tz_hours))
        return local.replace(tzinfo=offset).isoformat(timespec="seconds")


@dataclass
class Fault:
    """One fault or alarm record of getFaultAlarmInfo; ``closed`` is set once it is restored."""

    fault_id: str
    ps_key: str
    code: int
    name: str
    fault_type: int
    fault_level: int
    created: float
    closed: Optional[float] = None

    @property
    def active(self) -> bool:
        """Unclosed faults are what getFaultAlarmInfo lists by default."""
        return self.closed is None


@dataclass(frozen=True)
class Period:
    """One entry of a day/month/year history: its label and the local days it covers."""

    label: str
    first_day: int
    last_day: int


class Fleet:
    """The plants and devices the simulator serves, their faults, and their readings."""

    def __init__(self, plants: Sequence[Plant], faults: Iterable[Fault] = ()) -> None:
        self.plants: List[Plant] = list(plants)
        self.faults: List[Fault] = list(faults)
        self._plants = {p.ps_id: p for p in self.plants}
        self._devices: Dict[str, Device] = {}
        self._by_sn: Dict[str, Device] = {}
        for plant in self.plants:
            for device in plant.devices:
                if device.ps_key in self._devices:
                    raise ValueError(f"duplicate ps_key {device.ps_key}")
                self._devices[device.ps_key] = device
                if device.sn:
                    self._by_sn[device.sn] = device
        self._fault_seq = itertools.count(1)
        self._lock = threading.Lock()
        self.percent_ratios: Set[str] = set()   # ps_keys whose ratio points report 0-100
        self.unserved: Set[str] = set()         # listed devices realtime calls cannot serve
        self.pinned: Dict[Tuple[str, int], str] = {}   # (ps_key, point) -> raw realtime text

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def default(cls, now: Optional[float] = None) -> Fleet:
        """A hybrid storage plant (GMT+1) and a two-inverter PV plant (GMT+10).

        One fault, closed an hour ago, was raised six hours before ``now`` (default: wall clock).
        """
        fleet = cls([_plant_from_data(row) for row in load_yaml("default_fleet.yaml")["plants"]])
        now = time.time() if now is None else now
        fault_id = fleet.add_fault("1587093_1_2_1", 60005, "Grid Power Outage",
                                   fault_type=FAULT, fault_level=1, now=now - 6 * 3600)
        fleet.clear_fault(fault_id, now=now - 5 * 3600)
        return fleet

    @classmethod
    def synthetic(cls, n_devices: int, seed: int = 0) -> Fleet:
        """``n_devices`` physical devices of types 1, 7, 14, 43 and 22, ten to a plant."""
        rng = random.Random(seed)
        plants = []
        uuids = itertools.count(4_000_001)
        for index, start in enumerate(range(0, n_devices, _SYNTHETIC_PER_PLANT)):
            types = _SYNTHETIC_PATTERN[:min(_SYNTHETIC_PER_PLANT, n_devices - start)]
            plants.append(_synthetic_plant(rng, index, types, uuids))
        return cls(plants)

    # -- lookups ---------------------------------------------------------------------------
    def plant(self, ps_id: int) -> Optional[Plant]:
        """The plant with this ps_id, if any."""
        return self._plants.get(ps_id)

    def device(self, ps_key: str) -> Optional[Device]:
        """The device with this ps_key, if any."""
        return self._devices.get(ps_key)

    def device_by_sn(self, sn: str) -> Optional[Device]:
        """The device with this serial number, if any."""
        return self._by_sn.get(sn)

    def devices(self) -> List[Device]:
        """Every device of every plant, plant devices included."""
        return list(self._devices.values())

    def plant_of(self, device: Device) -> Plant:
        """The plant a device belongs to."""
        return self._plants[device.ps_id]

    # -- faults ----------------------------------------------------------------------------
    def add_fault(self, ps_key: str, code: int, name: str, *, fault_type: int = FAULT,
                  fault_level: int = 1, now: Optional[float] = None) -> str:
        """Raise a fault on a device; returns its unique ``fault_code``."""
        device = self.device(ps_key)
        if device is None:
            raise ValueError(f"unknown ps_key {ps_key!r}")
        with self._lock:
            fault_id = f"{code}{device.uuid}{next(self._fault_seq):06d}"
            self.faults.append(Fault(fault_id, ps_key, int(code), name, int(fault_type),
                                     int(fault_level), time.time() if now is None else now))
        return fault_id

    def clear_fault(self, fault_id: str, now: Optional[float] = None) -> bool:
        """Close (restore) a fault; False when no open fault has that id."""
        with self._lock:
            for fault in self.faults:
                if fault.fault_id == fault_id and fault.active:
                    fault.closed = time.time() if now is None else now
                    return True
        return False

    def fault_status(self, ps_keys: Iterable[str]) -> int:
        """1 fault, 2 alarm, 4 normal, over the active faults of these devices."""
        keys = set(ps_keys)
        types = {f.fault_type for f in self.faults if f.active and f.ps_key in keys}
        return FAULT if FAULT in types else ALARM if ALARM in types else 4

    def fault_counts(self, plant: Plant) -> Tuple[int, int]:
        """(faults, alarms) active on a plant."""
        keys = {d.ps_key for d in plant.devices}
        active = [f for f in self.faults if f.active and f.ps_key in keys]
        return (sum(f.fault_type == FAULT for f in active),
                sum(f.fault_type == ALARM for f in active))

    # -- readings --------------------------------------------------------------------------
    def sample(self, plant: Plant, ts: float) -> PlantSample:
        """The plant's physics at the 5-minute slot containing ``ts``."""
        day, slot = local_day_slot(ts, plant.params.tz_hours)
        return plant.physics.sample(day, slot)

    def device_time(self, plant: Plant, ts: float) -> str:
        """``device_time`` of the latest sample: ``yyyyMMddHHmmss`` in the plant's local time."""
        day, slot = local_day_slot(ts, plant.params.tz_hours)
        return slot_datetime(day, slot).strftime("%Y%m%d%H%M%S")

    def readings(self, device: Device, point_ids: Sequence[int],
                 ts: float) -> Dict[int, Optional[str]]:
        """Formatted realtime values of points of a device (``None`` where there is no reading);
        a pinned reading is sent as pinned."""
        sample = self.sample(self.plant_of(device), ts)
        return {pid: self.pinned[(device.ps_key, pid)] if (device.ps_key, pid) in self.pinned
                else self._formatted(sample, device, pid) for pid in point_ids}

    def set_ratio_scale(self, ps_key: str, scale: str) -> None:
        """``percent``: the device's SOC/SOH points report 0-100; ``fraction`` (default) 0-1."""
        if self.device(ps_key) is None:
            raise ValueError(f"unknown ps_key {ps_key!r}")
        if scale not in RATIO_SCALES:
            raise ValueError(f"scale must be one of {', '.join(RATIO_SCALES)}, not {scale!r}")
        with self._lock:
            self.percent_ratios.discard(ps_key)
            if scale == "percent":
                self.percent_ratios.add(ps_key)

    def _reading(self, sample: PlantSample, device: Device, point_id: int) -> Reading:
        value = read_point(sample, device.profile, device.device_type, point_id)
        if (isinstance(value, float) and device.ps_key in self.percent_ratios
                and is_fraction(device.device_type, point_id)):
            return value * 100.0
        return value

    def _decimals(self, device: Device, point_id: int) -> int:
        if device.ps_key in self.percent_ratios and is_fraction(device.device_type, point_id):
            return 1
        return point_decimals(device.device_type, point_id)

    def _formatted(self, sample: PlantSample, device: Device, point_id: int) -> Optional[str]:
        return format_reading(self._reading(sample, device, point_id),
                              self._decimals(device, point_id))

    def minute_rows(self, device: Device, point_ids: Sequence[int], start: dt.datetime,
                    end: dt.datetime, interval_minutes: int, now: float) -> List[Dict[str, str]]:
        """5-minute history between two local times; points without data are left out."""
        plant = self.plant_of(device)
        now_day, now_slot = local_day_slot(now, plant.params.tz_hours)
        epoch = dt.datetime(1970, 1, 1)
        begin = int((start - epoch).total_seconds())
        begin += -begin % SLOT_SECONDS
        stop = (end - epoch).total_seconds()
        rows = []
        local = begin
        while local <= stop:
            day, rest = divmod(local, 86400)
            slot = rest // SLOT_SECONDS
            if (day, slot) > (now_day, now_slot):
                break
            if day < plant.params.install_day:
                local += interval_minutes * 60
                continue
            sample = plant.physics.sample(day, slot)
            row = {}
            for pid in point_ids:
                text = self._formatted(sample, device, pid)
                if text is not None and text != "--":
                    row[f"p{pid}"] = text
            if row:
                row["time_stamp"] = (epoch + dt.timedelta(seconds=local)).strftime("%Y%m%d%H%M%S")
                rows.append(row)
            local += interval_minutes * 60
        return rows

    def period_rows(self, device: Device, point_ids: Sequence[int], periods: Sequence[Period],
                    data_types: Sequence[str], now: float) -> Dict[str, List[Dict[str, str]]]:
        """Day/month/year aggregates per point: "1" average, "2" peak, "3" valley, "4" total.

        Day statistics sample each hour plus the day's last slot.  A period's average is the mean
        of its days' averages; "4" is offered for daily counters only (sum of the days' finals).
        Points without data in the whole range are left out.
        """
        plant = self.plant_of(device)
        now_day, now_slot = local_day_slot(now, plant.params.tz_hours)
        out: Dict[str, List[Dict[str, str]]] = {}
        stats_by_day: Dict[int, Dict[int, Tuple[float, float, float]]] = {}
        first_day = plant.params.install_day  # no history before the plant existed
        for period in periods:
            for day in range(max(period.first_day, first_day), min(period.last_day, now_day) + 1):
                stats_by_day[day] = self._day_stats(plant, device, point_ids, day,
                                                    now_day, now_slot)
        for pid in point_ids:
            decimals = self._decimals(device, pid)
            summable = point_kind(device.device_type, pid) == "day"
            entries = []
            for period in periods:
                days = [stats_by_day[d][pid] for d in range(period.first_day, period.last_day + 1)
                        if d in stats_by_day and pid in stats_by_day[d]]
                if not days:
                    continue
                figures = {
                    "1": f"{sum(s[0] for s in days) / len(days):.4f}",
                    "2": format_reading(max(s[1] for s in days), decimals) or "",
                    "3": format_reading(min(s[2] for s in days), decimals) or "",
                }
                if summable and period.first_day != period.last_day:
                    figures["4"] = format_reading(sum(s[1] for s in days), decimals) or ""
                entry = {k: v for k, v in figures.items() if k in data_types}
                entry["time_stamp"] = period.label
                entries.append(entry)
            if entries:
                out[f"p{pid}"] = entries
        return out

    def _day_stats(self, plant: Plant, device: Device, point_ids: Sequence[int], day: int,
                   now_day: int, now_slot: int) -> Dict[int, Tuple[float, float, float]]:
        last = now_slot if day == now_day else SLOTS_PER_DAY - 1
        slots = sorted(set(range(0, last + 1, SLOTS_PER_HOUR)) | {last})
        values: Dict[int, List[float]] = {pid: [] for pid in point_ids}
        for slot in slots:
            sample = plant.physics.sample(day, slot)
            for pid in point_ids:
                value = self._reading(sample, device, pid)
                if isinstance(value, (int, float)):
                    values[pid].append(float(value))
        return {pid: (sum(v) / len(v), max(v), min(v)) for pid, v in values.items() if v}


# ---------------------------------------------------------------------------------------------
# the default fleet (data/default_fleet.yaml)
# ---------------------------------------------------------------------------------------------


def _plant_from_data(row: Dict[str, Any]) -> Plant:
    """A plant of ``default_fleet.yaml``: its fields, physics inputs and devices."""
    install = dt.datetime.strptime(row["install_date"], "%Y-%m-%d %H:%M:%S").date()
    params = PlantParams(seed=row["ps_id"], install_day=date_day(install), **row["physics"])
    devices = [_device_from_data(row["ps_id"], entry) for entry in row["devices"]]
    fields = {k: v for k, v in row.items() if k not in ("physics", "devices")}
    return Plant(params=params, devices=devices, **fields)


def _device_from_data(ps_id: int, entry: Dict[str, Any]) -> Device:
    fields = dict(entry)
    profile = DeviceProfile(**fields.pop("profile"))
    fields["properties"] = {int(k): str(v) for k, v in fields.get("properties", {}).items()}
    return Device(ps_id=ps_id, profile=profile, **fields)


def _device_name(model: str, code: int) -> str:
    return f"{model}(COM1-{code:03d})_001_{code:03d}"


def _plant_device(ps_id: int, name: str, uuid: int, seed: int) -> Device:
    return Device(ps_id, 11, 0, 0, uuid, name, DeviceProfile(seed, "plant", pv_share=1.0,
                                                             battery_share=1.0),
                  factory_name=None)


def _inverter(ps_id: int, code: int, uuid: int, model: str, rated: float, plant_wp: float,
              sn: str, module_sn: str, phases: int = 1) -> Device:
    return Device(ps_id, 1, code, 1, uuid, _device_name(model, code),
                  DeviceProfile(uuid, "inverter", rated_w=rated, pv_share=rated / plant_wp,
                                phases=phases, mppts=2),
                  model_code=model, model_id=1200 + int(rated // 1000), sn=sn,
                  communication_dev_sn=module_sn,
                  firmware={"lcd_version": f"LCD_{model}_V11_V01_A",
                            "mdsp_version": f"MDSP_{model}_V11_V01_A"})


# ---------------------------------------------------------------------------------------------
# synthetic fleets
# ---------------------------------------------------------------------------------------------

_SYNTHETIC_PER_PLANT = 10
_SYNTHETIC_PATTERN = (22, 14, 43, 7, 1, 1, 1, 1, 1, 1)
_SYNTHETIC_INVERTERS = (("SG5.0RS", 5000.0, 1), ("SG8.0RS", 8000.0, 1), ("SG10RT", 10000.0, 3))


def _synthetic_plant(rng: random.Random, index: int, types: Sequence[int],
                     uuids: itertools.count[int]) -> Plant:
    ps_id = 3_100_000 + index
    tz = rng.choice((0.0, 1.0, 2.0, 8.0, 10.0, -5.0))
    latitude = rng.uniform(25.0, 55.0) * rng.choice((1, -1))
    module_sn = f"B{rng.randint(22, 25)}{index:05d}{0:03d}"
    inverter_specs = [rng.choice(_SYNTHETIC_INVERTERS) for t in types if t == 1]
    pv_wp = sum(spec[1] for spec in inverter_specs) + 10000.0 * types.count(14)
    batteries = types.count(14) + types.count(43)
    params = PlantParams(seed=ps_id, tz_hours=tz, latitude=latitude,
                         longitude=tz * 15.0 + rng.uniform(-7.0, 7.0), pv_wp=max(pv_wp, 1000.0),
                         battery_wh=9600.0 if batteries else 0.0,
                         base_load_w=rng.uniform(300.0, 900.0), has_meter=7 in types,
                         install_day=date_day(dt.date(2021, 1, 1)) + rng.randrange(1200))
    name = f"Synthetic Plant {index + 1:04d}"
    devices = [_plant_device(ps_id, name, next(uuids), rng.randrange(1 << 30))]
    specs = iter(inverter_specs)
    for position, device_type in enumerate(types, start=1):
        uuid = next(uuids)
        sn = f"A{rng.randint(22, 25)}{index:05d}{position:03d}"
        seed = rng.randrange(1 << 30)
        if device_type == 22:
            devices.append(Device(ps_id, 22, 247, 1, uuid, "WiNet-S(COM1-247)",
                                  DeviceProfile(seed, "module"), model_code="WiNet-S",
                                  model_id=1481, sn=module_sn, communication_dev_sn=module_sn))
        elif device_type == 14:
            devices.append(Device(
                ps_id, 14, position, 1, uuid, _device_name("SH10RT", position),
                DeviceProfile(seed, "hybrid", rated_w=10000.0, pv_share=10000.0 / params.pv_wp,
                              battery_share=1.0 / types.count(14), phases=3, mppts=2),
                model_code="SH10RT", model_id=1366, sn=sn, communication_dev_sn=module_sn,
                properties={13251: "CB0", 13257: "10000.0", 13258: "9600.0", 13261: "0"}))
        elif device_type == 43:
            devices.append(Device(
                ps_id, 43, position, 1, uuid, _device_name("SBR096", position),
                DeviceProfile(seed, "battery", battery_share=1.0 / types.count(43),
                              battery_modules=3),
                model_code="SBR096", model_id=2133, sn=sn, communication_dev_sn=module_sn))
        elif device_type == 7:
            devices.append(Device(ps_id, 7, position, 1, uuid, _device_name("DTSU666", position),
                                  DeviceProfile(seed, "meter", phases=3), model_code="DTSU666-20",
                                  model_id=2047, communication_dev_sn=module_sn))
        else:
            model, rated, phases = next(specs)
            inverter = _inverter(ps_id, position, uuid, model, rated, params.pv_wp, sn,
                                 module_sn, phases)
            devices.append(inverter)
    ps_type = 5 if batteries else 4
    return Plant(ps_id, name, ps_type, params, f"Synthetic Street {index + 1}",
                 "2021-01-01 09:00:00", "EUR", 0.3, devices)
