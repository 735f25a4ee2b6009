"""Measuring points and the plant physics behind the simulator's readings.

The point tables (``data/portal_points.csv``) are copies of the developer portal's *common
measuring points* pages (``isolarcloud-portal/*.md``), one per device type the simulator fields;
they feed ``getOpenPointInfo`` and say which IDs exist.  Which of them carry a value, and how it is
computed, is a second table per device type (``data/point_sources.yaml``, :data:`SOURCE_MAPS`,
point ID -> source name).  Sources are a small registry of functions of one plant sample and one
device profile; names and units the gateway answers with are in ``data/names.yaml``.

The physics is a deterministic function of the clock: every plant day has closed-form totals (PV
yield from season, latitude and a per-day weather draw; load; battery charge and discharge chosen
so the state of charge stays inside 5-95 % and joins up at midnight; grid import and export), and
the 288 five-minute slots of a day spread those totals over a daylight curve, a load profile with
morning and evening peaks, and battery flows that follow surplus and deficit.  Because day totals
are closed-form, lifetime counters are cheap prefix sums and never decrease, and daily counters
restart at local midnight.  Import and export day totals are estimates, so their counters follow
the grid power's shape but need not equal its integral exactly.
"""
from __future__ import annotations

import datetime as dt
import functools
import itertools
import math
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple, Union

from sungrow2mqtt.simulator.tables import load_csv, load_yaml

SLOT_SECONDS = 300
SLOTS_PER_DAY = 288
SLOTS_PER_HOUR = 12
EPOCH_DATE = dt.date(1970, 1, 1)
QUANTITIES = ("pv", "load", "chg", "dis", "imp", "exp")
AC_EFFICIENCY = 0.97

Reading = Union[float, str, None]

# ---------------------------------------------------------------------------------------------
# deterministic noise
# ---------------------------------------------------------------------------------------------

_MASK = (1 << 64) - 1


def _splitmix(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def noise(seed: int, *keys: int) -> float:
    """A reproducible number in [0, 1) for a seed and keys, so readings need no stored state."""
    mixed = seed & _MASK
    for key in keys:
        mixed = _splitmix(mixed ^ (key & _MASK))
    return (mixed >> 11) / float(1 << 53)


# noise channels, so different quantities of the same day/slot are independent
_WEATHER, _LOAD_DAY, _SOC_DAY, _CLOUD, _PHASE = 1, 2, 3, 4, 6


def local_day_slot(ts: float, tz_hours: float) -> Tuple[int, int]:
    """Local day number (days since 1970-01-01) and 5-minute slot for a UTC epoch time."""
    local = ts + tz_hours * 3600.0
    day = int(local // 86400)
    return day, int((local - day * 86400) // SLOT_SECONDS)


def day_date(day: int) -> dt.date:
    """The calendar date of a local day number."""
    return EPOCH_DATE + dt.timedelta(days=day)


def date_day(date: dt.date) -> int:
    """The local day number of a calendar date."""
    return (date - EPOCH_DATE).days


def slot_datetime(day: int, slot: int) -> dt.datetime:
    """The naive local date-time at which a slot starts."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(days=day, seconds=slot * SLOT_SECONDS)


# ---------------------------------------------------------------------------------------------
# physics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantParams:
    """Static inputs of one plant's physics; every reading derives from these and the clock."""

    seed: int
    tz_hours: float
    latitude: float
    longitude: float
    pv_wp: float
    battery_wh: float = 0.0
    base_load_w: float = 450.0
    has_meter: bool = True
    install_day: int = 19500


@dataclass(frozen=True)
class DayTotals:
    """Closed-form energy totals (Wh) of one local day and its opening state of charge."""

    pv: float
    load: float
    chg: float
    dis: float
    imp: float
    exp: float
    soc_start: float
    weather: float

    def values(self) -> Tuple[float, ...]:
        """The totals in :data:`QUANTITIES` order."""
        return (self.pv, self.load, self.chg, self.dis, self.imp, self.exp)


class DaySeries:
    """One day's 288 slots: powers (W), cumulative energies (Wh, 289 entries) and SOC."""

    __slots__ = ("pv", "load", "chg", "dis", "grid", "cum", "soc")

    def __init__(self, pv: List[float], load: List[float], chg: List[float], dis: List[float],
                 grid: List[float], cum: Dict[str, List[float]], soc: List[float]) -> None:
        self.pv, self.load, self.chg, self.dis, self.grid = pv, load, chg, dis, grid
        self.cum, self.soc = cum, soc


@dataclass(frozen=True)
class PlantSample:
    """Everything a device of the plant can report for one 5-minute slot."""

    day: int
    slot: int
    pv_w: float
    load_w: float
    chg_w: float
    dis_w: float
    grid_w: float
    soc: float
    today: Dict[str, float]
    total: Dict[str, float]
    pv_month: float
    pv_year: float
    ambient_c: float
    params: PlantParams

    @property
    def has_battery(self) -> bool:
        """Whether the plant has storage (battery readings are null otherwise)."""
        return self.params.battery_wh > 0

    @property
    def key(self) -> int:
        """A global slot number, the noise key for per-slot jitter."""
        return self.day * SLOTS_PER_DAY + self.slot


def _season(params: PlantParams, day: int) -> float:
    """+1 at the local summer solstice, -1 at the winter solstice."""
    doy = day_date(day).timetuple().tm_yday
    value = math.cos(2.0 * math.pi * (doy - 172) / 365.25)
    return -value if params.latitude < 0 else value


def _spread(total: float, weights: List[float]) -> List[float]:
    """Spread a day's energy (Wh) over slots in proportion to weights, as powers (W)."""
    weight_sum = sum(weights)
    if weight_sum <= 0 or total <= 0:
        return [0.0] * len(weights)
    factor = total * SLOTS_PER_HOUR / weight_sum
    return [w * factor for w in weights]


def _cumulate(powers: List[float]) -> List[float]:
    """Cumulative energy (Wh) at the start of each slot, plus the day's end."""
    return [0.0] + [total / SLOTS_PER_HOUR for total in itertools.accumulate(powers)]


# household demand by time of day (morning, midday and evening peaks), before daily noise
_LOAD_PROFILE = [
    0.55 + 0.45 * math.exp(-((h - 7.3) / 1.1) ** 2) + 0.85 * math.exp(-((h - 19.2) / 1.8) ** 2)
    + 0.25 * math.exp(-((h - 12.5) / 1.5) ** 2)
    for h in ((slot + 0.5) / SLOTS_PER_HOUR for slot in range(SLOTS_PER_DAY))
]


class PlantPhysics:
    """Deterministic readings of one plant as a function of time, with small caches."""

    def __init__(self, params: PlantParams) -> None:
        self.params = params
        self._lock = threading.Lock()
        self._totals: Dict[int, DayTotals] = {}
        self._series: OrderedDict[int, DaySeries] = OrderedDict()
        self._prefix: List[Tuple[float, ...]] = [(0.0,) * len(QUANTITIES)]
        self._before: List[Tuple[float, ...]] = [(0.0,) * len(QUANTITIES)]

    # -- day totals ------------------------------------------------------------------------
    def _soc_start(self, day: int) -> float:
        return 0.3 + 0.3 * noise(self.params.seed, _SOC_DAY, day)

    def day_totals(self, day: int) -> DayTotals:
        """The closed-form energy totals of a local day."""
        cached = self._totals.get(day)
        if cached is not None:
            return cached
        p = self.params
        season = _season(p, day)
        lat = abs(p.latitude)
        clear_kwh_per_kwp = (5.2 - 0.02 * lat) + 0.06 * lat * season
        weather = 0.3 + 0.7 * noise(p.seed, _WEATHER, day) ** 0.6
        pv = p.pv_wp * max(clear_kwh_per_kwp, 0.3) * weather
        weekend = day_date(day).weekday() >= 5
        load = (p.base_load_w * 24.0 * (1.15 if weekend else 1.0)
                * (0.85 + 0.3 * noise(p.seed, _LOAD_DAY, day)) * (1.0 + 0.25 * max(0.0, -season)))
        chg = dis = 0.0
        soc0 = soc1 = 0.0
        if p.battery_wh > 0:
            cap = p.battery_wh
            soc0, soc1 = self._soc_start(day), self._soc_start(day + 1)
            low = max(0.0, (soc0 - 0.3) * cap)
            high = min((soc0 - 0.05) * cap, (0.95 - soc1) * cap)
            dis = min(max(0.45 * load, low), high)
            chg = dis + cap * (soc1 - soc0)
        net = load - pv + chg - dis
        overlap = (0.08 if p.battery_wh > 0 else 0.4) * min(load, pv)
        totals = DayTotals(pv=pv, load=load, chg=chg, dis=dis, imp=max(net, 0.0) + overlap,
                           exp=max(-net, 0.0) + overlap, soc_start=soc0, weather=weather)
        if len(self._totals) > 20000:
            self._totals.clear()
        self._totals[day] = totals
        return totals

    def prefix(self, day: int) -> Tuple[float, ...]:
        """Sum of the day totals from the install day up to (not including) ``day``."""
        install = self.params.install_day
        offset = day - install
        with self._lock:
            if offset >= 0:
                while len(self._prefix) <= offset:
                    totals = self.day_totals(install + len(self._prefix) - 1).values()
                    self._prefix.append(tuple(a + b for a, b in zip(self._prefix[-1], totals)))
                return self._prefix[offset]
            while len(self._before) <= -offset:  # before installation: negative sums
                totals = self.day_totals(install - len(self._before)).values()
                self._before.append(tuple(a - b for a, b in zip(self._before[-1], totals)))
            return self._before[-offset]

    # -- slots -----------------------------------------------------------------------------
    def series(self, day: int) -> DaySeries:
        """The day's 288 slots (cached for the most recent days asked for)."""
        with self._lock:
            cached = self._series.get(day)
            if cached is not None:
                self._series.move_to_end(day)
                return cached
        series = self._build_series(day)
        with self._lock:
            self._series[day] = series
            while len(self._series) > 96:
                self._series.popitem(last=False)
        return series

    def _build_series(self, day: int) -> DaySeries:
        p = self.params
        totals = self.day_totals(day)
        season = _season(p, day)
        half_day = (12.0 + 4.5 * min(abs(p.latitude), 60.0) / 50.0 * season) / 2.0
        noon = 12.0 + (p.tz_hours * 15.0 - p.longitude) / 15.0
        cloudiness = 1.0 - totals.weather
        rng = random.Random(int(noise(p.seed, _CLOUD, day) * (1 << 53)))
        phase1, phase2 = 6.283 * rng.random(), 6.283 * rng.random()
        draws = [rng.random() for _ in range(2 * SLOTS_PER_DAY)]
        demand = [base + 0.8 * r ** 4 for base, r in zip(_LOAD_PROFILE, draws)]
        sun = [0.0] * SLOTS_PER_DAY
        first = max(0, int((noon - half_day) * SLOTS_PER_HOUR))
        last = min(SLOTS_PER_DAY, int((noon + half_day) * SLOTS_PER_HOUR) + 1)
        for slot in range(first, last):
            hour = (slot + 0.5) / SLOTS_PER_HOUR
            x = (hour - noon) / half_day
            if -1.0 < x < 1.0:
                wave = 0.5 + 0.5 * math.sin(hour * 1.7 + phase1) * math.sin(hour * 0.6 + phase2)
                cloud = 1.0 - cloudiness * (0.7 * wave + 0.3 * draws[SLOTS_PER_DAY + slot])
                sun[slot] = math.cos(x * math.pi / 2.0) ** 1.5 * max(cloud, 0.05)
        pv = _spread(totals.pv, sun)
        load = _spread(totals.load, demand)
        surplus = [max(a - b, 0.0) for a, b in zip(pv, load)]
        deficit = [max(b - a, 0.0) for a, b in zip(pv, load)]
        chg = _spread(totals.chg, surplus if sum(surplus) > 0 else sun)
        dis = _spread(totals.dis, deficit if sum(deficit) > 0 else demand)
        grid = [ld - pvv + c - d for pvv, ld, c, d in zip(pv, load, chg, dis)]
        cum = {"pv": _cumulate(pv), "load": _cumulate(load), "chg": _cumulate(chg),
               "dis": _cumulate(dis)}
        for name, sign, total in (("imp", 1.0, totals.imp), ("exp", -1.0, totals.exp)):
            flow = [max(sign * g, 0.0) for g in grid]
            cum[name] = _cumulate(_spread(total, flow if sum(flow) > 0 else demand))
        if p.battery_wh > 0:
            soc = [totals.soc_start + (c - d) / p.battery_wh
                   for c, d in zip(cum["chg"], cum["dis"])]
        else:
            soc = [0.0] * (SLOTS_PER_DAY + 1)
        return DaySeries(pv, load, chg, dis, grid, cum, soc)

    def sample(self, day: int, slot: int) -> PlantSample:
        """The plant's readings for one slot of one local day."""
        series = self.series(day)
        start = self.prefix(day)
        today = {name: series.cum[name][slot] for name in QUANTITIES}
        total = {name: start[i] + today[name] for i, name in enumerate(QUANTITIES)}
        date = day_date(day)
        month_start = self.prefix(date_day(date.replace(day=1)))[0]
        year_start = self.prefix(date_day(date.replace(month=1, day=1)))[0]
        hour = slot / SLOTS_PER_HOUR
        ambient = (11.0 + 9.0 * _season(self.params, day)
                   + 5.0 * math.sin(2.0 * math.pi * (hour - 9.0) / 24.0)
                   + noise(self.params.seed, _PHASE, day, slot))
        return PlantSample(
            day=day, slot=slot, pv_w=series.pv[slot], load_w=series.load[slot],
            chg_w=series.chg[slot], dis_w=series.dis[slot], grid_w=series.grid[slot],
            soc=series.soc[slot], today=today, total=total,
            pv_month=start[0] - month_start + today["pv"],
            pv_year=start[0] - year_start + today["pv"], ambient_c=ambient, params=self.params)


# ---------------------------------------------------------------------------------------------
# devices and sources
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceProfile:
    """What a device measures: its share of the plant's PV and battery, phases, MPPTs, modules.

    ``role`` picks the power behind currents and temperatures: ``inverter`` (PV AC output),
    ``hybrid`` (PV plus battery AC output), ``meter`` (grid), ``battery``, ``module``, ``plant``.
    """

    seed: int
    role: str
    rated_w: float = 0.0
    pv_share: float = 0.0
    battery_share: float = 0.0
    phases: int = 1
    mppts: int = 0
    battery_modules: int = 0


class SourceContext:
    """One device profile looking at one plant sample; sources read from it."""

    __slots__ = ("s", "dev")

    def __init__(self, sample: PlantSample, profile: DeviceProfile) -> None:
        self.s = sample
        self.dev = profile

    def jitter(self, tag: int, amplitude: float) -> float:
        """Reproducible per-device, per-slot noise in [-amplitude, amplitude)."""
        return (noise(self.dev.seed, tag, self.s.key) - 0.5) * 2.0 * amplitude

    def pv_dc(self) -> float:
        """The device's share of the plant's PV (DC) power."""
        return self.s.pv_w * self.dev.pv_share

    def battery_net(self) -> float:
        """The device's battery power, charging positive."""
        return (self.s.chg_w - self.s.dis_w) * self.dev.battery_share

    def ac_power(self) -> float:
        """The AC active power the device's role measures."""
        role = self.dev.role
        if role == "inverter":
            return self.pv_dc() * AC_EFFICIENCY
        if role == "hybrid":
            return self.pv_dc() * AC_EFFICIENCY - self.battery_net()
        if role == "meter":
            return self.s.grid_w
        if role == "plant":
            return self.s.pv_w
        return 0.0

    def voltage(self, phase: str) -> Optional[float]:
        """Phase voltage around 230 V; null for phases a single-phase device lacks."""
        index = "abc".find(phase)
        if index < 0 or (index > 0 and self.dev.phases < 3):
            return None
        return 230.0 + 2.5 * math.sin(self.s.key / 9.0 + index) + self.jitter(20 + index, 1.2)

    def mppt_fraction(self, number: int) -> Optional[float]:
        """The share of the device's PV power on one MPPT; null past the device's MPPT count."""
        if number > self.dev.mppts:
            return None
        weights = [1.0 + 0.3 * (noise(self.dev.seed, 40, n) - 0.5)
                   for n in range(1, self.dev.mppts + 1)]
        return weights[number - 1] / sum(weights)


def _energy(c: SourceContext, quantity: str, values: Dict[str, float]) -> Optional[float]:
    if quantity in ("chg", "dis"):
        return values[quantity] * c.dev.battery_share if c.s.has_battery else None
    if quantity == "pv":
        return values[quantity] * c.dev.pv_share
    return values[quantity] if c.s.params.has_meter else None


def _line_voltage(c: SourceContext, pair: str) -> Optional[float]:
    if c.dev.phases < 3:
        return None
    return 398.4 + 4.0 * math.sin(c.s.key / 9.0 + "abc".find(pair[0])) + c.jitter(30, 2.0)


def _current(c: SourceContext, phase: str) -> Optional[float]:
    volts = c.voltage(phase)
    if volts is None:
        return None
    return abs(c.ac_power()) / c.dev.phases / volts


def _reactive(c: SourceContext) -> float:
    active = abs(c.ac_power())
    return 0.03 * active + c.jitter(31, 25.0) if active >= 1.0 else 0.0


def _power_factor(c: SourceContext) -> float:
    active = abs(c.ac_power())
    apparent = math.hypot(active, _reactive(c))
    return active / apparent if apparent > 1.0 else 1.0


def _temperature(c: SourceContext) -> float:
    ratio = min(1.0, abs(c.ac_power()) / c.dev.rated_w) if c.dev.rated_w else 0.0
    return 25.0 + 17.0 * ratio + 0.2 * (c.s.ambient_c - 15.0) + c.jitter(32, 0.4)


def _mppt(c: SourceContext, arg: str) -> Optional[float]:
    kind, number = arg.split(".")
    fraction = c.mppt_fraction(int(number))
    if fraction is None:
        return None
    power = c.pv_dc() * fraction
    if power < 1.0:
        return 0.0
    volts = 300.0 + 60.0 * math.sqrt(min(1.0, power / max(c.dev.rated_w, 1.0))) + c.jitter(41, 3.0)
    return {"v": volts, "i": power / volts, "p": power}[kind]


def _battery_voltage(c: SourceContext) -> Optional[float]:
    if not c.s.has_battery:
        return None
    return 185.0 + 35.0 * c.s.soc + c.jitter(50, 0.5)


def _battery_current(c: SourceContext) -> Optional[float]:
    volts = _battery_voltage(c)
    return None if volts is None else c.battery_net() / volts


def _battery_only(func: Callable[[SourceContext], float]) -> Callable[[SourceContext], Reading]:
    return lambda c: func(c) if c.s.has_battery else None


def _meter_only(func: Callable[[SourceContext], float]) -> Callable[[SourceContext], Reading]:
    return lambda c: func(c) if c.s.params.has_meter else None


def _cell_mv(c: SourceContext, arg: str) -> Optional[float]:
    """Cell voltage: ``max``/``min`` of the pack, or ``max.N``/``min.N`` of module N."""
    if not c.s.has_battery:
        return None
    kind, _, module = arg.partition(".")
    if module and int(module) > c.dev.battery_modules:
        return None
    spread = 6.0 + 4.0 * noise(c.dev.seed, 51, int(module or 0))
    return 3250.0 + 180.0 * c.s.soc + (spread if kind == "max" else -spread)


def _module_temp(c: SourceContext, kind: str) -> Optional[float]:
    if not c.s.has_battery:
        return None
    base = 21.0 + 3.0 * abs(c.battery_net()) / 3000.0 + 0.15 * (c.s.ambient_c - 15.0)
    return base + {"max": 0.8, "min": -0.8}.get(kind, 0.0)


def _run_hours(c: SourceContext) -> float:
    days = c.s.day - c.s.params.install_day
    return max(0.0, (days + c.s.slot / SLOTS_PER_DAY) * 24.0 * 0.55)


@dataclass(frozen=True)
class Source:
    """How to compute a reading, how many decimals the API sends, and how it behaves over time.

    ``kind``: ``gauge`` (instantaneous), ``day`` (counter restarting at local midnight, totals
    may be summed over days), ``total`` (lifetime counter), ``const``.
    """

    func: Callable[[SourceContext, str], Reading]
    decimals: int = 1
    kind: str = "gauge"


def _plain(func: Callable[[SourceContext], Reading], decimals: int = 1,
           kind: str = "gauge") -> Source:
    return Source(lambda c, _arg: func(c), decimals, kind)


SOURCES: Dict[str, Source] = {
    "today": Source(lambda c, q: _energy(c, q, c.s.today), 1, "day"),
    "total": Source(lambda c, q: _energy(c, q, c.s.total), 1, "total"),
    "pv_month": _plain(lambda c: c.s.pv_month * c.dev.pv_share),
    "pv_year": _plain(lambda c: c.s.pv_year * c.dev.pv_share),
    "pv_power": _plain(SourceContext.pv_dc),
    "ac_power": _plain(SourceContext.ac_power),
    "reactive": _plain(_reactive),
    "apparent": _plain(lambda c: math.hypot(c.ac_power(), _reactive(c))),
    "power_factor": _plain(_power_factor, 3),
    "voltage": Source(SourceContext.voltage),
    "line_voltage": Source(_line_voltage),
    "current": Source(_current),
    "frequency": _plain(lambda c: 50.0 + c.jitter(33, 0.04), 2),
    "temperature": _plain(_temperature),
    "insulation": _plain(lambda c: 1500.0 + 600.0 * noise(c.dev.seed, 34), 0, "const"),
    "bus_voltage": _plain(lambda c: (380.0 if c.dev.phases == 1 else 650.0) + c.jitter(35, 4.0)),
    "run_hours": _plain(_run_hours, 1, "total"),
    "mppt": Source(_mppt),
    "inverter_status": _plain(lambda c: 0.0 if c.s.pv_w > 0 else 5120.0, 0),
    "hybrid_status": _plain(lambda c: 0.0, 0, "const"),
    "load_power": _plain(_meter_only(lambda c: c.s.load_w)),
    "grid_power": _plain(_meter_only(lambda c: c.s.grid_w)),
    "purchased_power": _plain(_meter_only(lambda c: max(c.s.grid_w, 0.0))),
    "feed_in_power": _plain(_meter_only(lambda c: max(-c.s.grid_w, 0.0))),
    "charge_power": _plain(_battery_only(lambda c: c.s.chg_w * c.dev.battery_share)),
    "discharge_power": _plain(_battery_only(lambda c: c.s.dis_w * c.dev.battery_share)),
    "soc_fraction": _plain(_battery_only(lambda c: c.s.soc), 3),
    "soc_percent": _plain(_battery_only(lambda c: c.s.soc * 100.0), 1),
    # like SOC, SOH arrives as a 0-1 fraction (the catalog scales both to %)
    "soh_fraction": _plain(_battery_only(lambda c: 1.0 - 0.03 * noise(c.dev.seed, 52)), 3,
                           "const"),
    "battery_voltage": _plain(_battery_voltage),
    "battery_current": _plain(_battery_current),
    "battery_temp": Source(_module_temp),
    "battery_capacity": _plain(
        _battery_only(lambda c: c.s.params.battery_wh * c.dev.battery_share), 1, "const"),
    "bms_current_limit": _plain(_battery_only(lambda c: 30.0), 1, "const"),
    "cell_mv": Source(_cell_mv, 0),
    "ambient": _plain(lambda c: c.s.ambient_c),
    "power_ratio": _plain(lambda c: c.s.pv_w / c.s.params.pv_wp, 3),
    "eq_hours_today": _plain(lambda c: c.s.today["pv"] / c.s.params.pv_wp, 2, "day"),
    "eq_hours_total": _plain(lambda c: c.s.total["pv"] / c.s.params.pv_wp, 2, "total"),
    "wlan_signal": _plain(lambda c: -55.0 + c.jitter(36, 6.0), 0),
    "no_reading": _plain(lambda c: "--", 0, "const"),
}

def _source_maps() -> Dict[int, Dict[int, str]]:
    """``data/point_sources.yaml``, checked against :data:`SOURCES`."""
    maps = {int(t): {int(p): str(name) for p, name in points.items()}
            for t, points in load_yaml("point_sources.yaml").items()}
    for device_type, points in maps.items():
        for point_id, name in points.items():
            if name.partition(":")[0] not in SOURCES:
                raise ValueError(f"point_sources.yaml: {device_type}/{point_id}: "
                                 f"unknown source {name!r}")
    return maps


# device type -> point ID -> source name (``name:arg``); points of a table not listed are null
SOURCE_MAPS: Dict[int, Dict[int, str]] = _source_maps()


def point_source(device_type: int, point_id: int) -> Optional[Tuple[Source, str]]:
    """The source (and its argument) behind a point of a device type, if the simulator models it."""
    name = SOURCE_MAPS.get(device_type, {}).get(point_id)
    if name is None:
        return None
    base, _, arg = name.partition(":")
    return SOURCES[base], arg


# SOC and SOH (13141, 13142, 58604, 58605, 83252): 0-1 fractions in live data
FRACTION_SOURCES = frozenset({"soc_fraction", "soh_fraction"})


def is_fraction(device_type: int, point_id: int) -> bool:
    """Whether a point is a ratio the gateway sends as a 0-1 fraction."""
    name = SOURCE_MAPS.get(device_type, {}).get(point_id, "")
    return name.partition(":")[0] in FRACTION_SOURCES


def read_point(sample: PlantSample, profile: DeviceProfile, device_type: int,
               point_id: int) -> Reading:
    """The raw reading of one point: a number, ``"--"`` or ``None`` (no reading)."""
    found = point_source(device_type, point_id)
    if found is None:
        return None
    source, arg = found
    return source.func(SourceContext(sample, profile), arg)


def format_reading(value: Reading, decimals: int) -> Optional[str]:
    """Render a reading the way the API does: numbers as strings ("1970.0"), else as is."""
    if value is None or isinstance(value, str):
        return value
    if decimals <= 0:
        return str(int(round(value)))
    return f"{value:.{decimals}f}"


def point_decimals(device_type: int, point_id: int) -> int:
    """Decimals the API sends for a point (1 when not modelled)."""
    found = point_source(device_type, point_id)
    return found[0].decimals if found else 1


def point_kind(device_type: int, point_id: int) -> str:
    """``gauge``, ``day``, ``total`` or ``const`` for a point (``gauge`` when not modelled)."""
    found = point_source(device_type, point_id)
    return found[0].kind if found else "gauge"


# ---------------------------------------------------------------------------------------------
# point information (getOpenPointInfo)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PointInfo:
    """One row of a portal measuring-point table: ID, English name, storage unit."""

    point_id: int
    name: str
    unit: str


_NAMES = load_yaml("names.yaml")
# Names the gateway answers in Chinese whatever ``lang`` says (the known quirk of the README).
CHINESE_NAMES: Dict[int, str] = {int(k): str(v) for k, v in _NAMES["chinese_point_names"].items()}
SHOW_UNITS: Dict[str, str] = {str(k): str(v) for k, v in _NAMES["show_units"].items()}
# Property points (getOpenPointInfo type 5, getDevPropertyPointValue)
PROPERTY_POINTS: Dict[int, Tuple[PointInfo, ...]] = {
    int(t): tuple(PointInfo(int(pid), str(name), str(unit)) for pid, name, unit in rows)
    for t, rows in _NAMES["property_points"].items()
}


def _portal_points() -> Dict[int, Tuple[PointInfo, ...]]:
    tables: Dict[int, List[PointInfo]] = {}
    for row in load_csv("portal_points.csv"):
        info = PointInfo(int(row["point_id"]), row["name"].strip(), row["unit"].strip())
        tables.setdefault(int(row["device_type"]), []).append(info)
    return {t: tuple(infos) for t, infos in tables.items()}


_PORTAL_POINTS = _portal_points()


def telemetry_points(device_type: int) -> Tuple[PointInfo, ...]:
    """The portal's common measuring points of a device type (empty for types without a table)."""
    return _PORTAL_POINTS.get(device_type, ())


@functools.lru_cache(maxsize=None)
def remote_signal_points(device_type: int) -> Tuple[PointInfo, ...]:
    """State points (unit-less, named *status*) of a type's table, served as remote signaling."""
    return tuple(p for p in telemetry_points(device_type)
                 if not p.unit and "status" in p.name.lower())


def point_name(device_type: int, point_id: int) -> Optional[str]:
    """The name the gateway gives a point; a few come back in Chinese whatever ``lang`` says."""
    if point_id in CHINESE_NAMES:
        return CHINESE_NAMES[point_id]
    for info in telemetry_points(device_type) + PROPERTY_POINTS.get(device_type, ()):
        if info.point_id == point_id:
            return info.name
    return None
