"""Measuring points and the plant physics behind the simulator's readings.

The point tables at the end of this module are copies of the developer portal's *common measuring
points* pages (``isolarcloud-portal/*.md``), one per device type the simulator fields; they feed
``getOpenPointInfo`` and say which IDs exist.  Which of them carry a value, and how it is computed,
is a second table per device type (:data:`SOURCE_MAPS`, point ID -> source name).  Sources are a
small registry of functions of one plant sample and one device profile.

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

_MPPT_POINTS = {  # MPPT n: (voltage, current) point IDs of the inverter table
    1: (5, 6), 2: (7, 8), 3: (9, 10), 4: (45, 46), 5: (47, 48), 6: (49, 50), 7: (51, 52),
    8: (53, 54), 9: (55, 56), 10: (57, 58),
}
_MPPT_POWER_POINTS = {1: 11, 2: 12, 3: 13, 4: 59, 5: 60, 6: 61, 7: 62, 8: 63, 9: 64, 10: 65}

# device type -> point ID -> source name (``name:arg``); points of a table not listed here are null
SOURCE_MAPS: Dict[int, Dict[int, str]] = {
    1: {
        1: "today:pv", 2: "total:pv", 87: "pv_month", 88: "pv_year", 24: "ac_power",
        14: "pv_power", 18: "voltage:a", 19: "voltage:b", 20: "voltage:c", 21: "current:a",
        22: "current:b", 23: "current:c", 15: "line_voltage:ab", 16: "line_voltage:bc",
        17: "line_voltage:ca", 25: "reactive", 26: "power_factor", 43: "apparent",
        27: "frequency", 4: "temperature", 94: "insulation", 95: "bus_voltage",
        7356: "run_hours", 29: "inverter_status",
        **{v: f"mppt:v.{n}" for n, (v, _i) in _MPPT_POINTS.items()},
        **{i: f"mppt:i.{n}" for n, (_v, i) in _MPPT_POINTS.items()},
        **{p: f"mppt:p.{n}" for n, p in _MPPT_POWER_POINTS.items()},
    },
    14: {
        13011: "ac_power", 13003: "pv_power", 13157: "voltage:a", 13158: "voltage:b",
        13159: "voltage:c", 13008: "current:a", 13009: "current:b", 13010: "current:c",
        13012: "reactive", 13018: "apparent", 13013: "power_factor", 13007: "frequency",
        13019: "temperature", 13020: "run_hours", 13160: "insulation", 13161: "bus_voltage",
        13004: "line_voltage:ab", 13005: "line_voltage:bc", 13006: "line_voltage:ca",
        13112: "today:pv", 13134: "total:pv", 13001: "mppt:v.1", 13002: "mppt:i.1",
        13105: "mppt:v.2", 13106: "mppt:i.2", 13107: "mppt:v.3", 13108: "mppt:i.3",
        13109: "mppt:v.4", 13110: "mppt:i.4", 13122: "today:exp", 13125: "total:exp",
        13147: "today:imp", 13148: "total:imp", 13149: "purchased_power",
        13121: "feed_in_power", 13141: "soc_fraction", 13028: "today:chg", 13029: "today:dis",
        13034: "total:chg", 13035: "total:dis", 13138: "battery_voltage",
        13139: "battery_current", 13142: "soh_fraction", 13143: "battery_temp:mid",
        13162: "bms_current_limit", 13163: "bms_current_limit", 13126: "charge_power",
        13150: "discharge_power", 13119: "load_power", 13199: "today:load",
        13130: "total:load", 13140: "battery_capacity", 13146: "hybrid_status",
    },
    7: {
        8018: "ac_power", 8000: "voltage:a", 8001: "voltage:b", 8002: "voltage:c",
        8003: "line_voltage:ab", 8004: "line_voltage:bc", 8005: "line_voltage:ca",
        8006: "current:a", 8007: "current:b", 8008: "current:c", 8064: "frequency",
        8014: "power_factor", 8022: "reactive", 8026: "apparent", 8030: "total:imp",
        8031: "total:exp", 8062: "today:imp", 8063: "today:exp",
    },
    43: {
        58601: "battery_voltage", 58602: "battery_current", 58603: "battery_temp:mid",
        58604: "soc_fraction", 58605: "soh_fraction", 58606: "total:chg", 58607: "total:dis",
        58610: "cell_mv:max", 58612: "cell_mv:min", 58614: "battery_temp:max",
        58616: "battery_temp:min",
        **{58618 + n: f"cell_mv:max.{n + 1}" for n in range(8)},
        **{58626 + n: f"cell_mv:min.{n + 1}" for n in range(8)},
    },
    22: {23001: "no_reading", 23014: "wlan_signal"},
    11: {
        83022: "today:pv", 83024: "total:pv", 83033: "pv_power", 83002: "ac_power",
        83004: "total:pv", 83009: "today:pv", 83019: "power_ratio", 83025: "eq_hours_total",
        83005: "eq_hours_today", 83016: "ambient", 83012: "no_reading", 83013: "no_reading",
        83023: "no_reading", 83052: "load_power", 83106: "load_power", 83067: "pv_power",
        83102: "today:imp", 83105: "total:imp", 83072: "today:exp", 83075: "total:exp",
        83118: "today:load", 83124: "total:load", 83549: "grid_power",
        83252: "soc_fraction", 83334: "soc_percent", 83322: "today:chg", 83323: "today:dis",
        83324: "total:chg", 83325: "total:dis",
    },
}


def point_source(device_type: int, point_id: int) -> Optional[Tuple[Source, str]]:
    """The source (and its argument) behind a point of a device type, if the simulator models it."""
    name = SOURCE_MAPS.get(device_type, {}).get(point_id)
    if name is None:
        return None
    base, _, arg = name.partition(":")
    return SOURCES[base], arg


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


# Names the gateway answers in Chinese whatever ``lang`` says (the known quirk of the README).
CHINESE_NAMES: Dict[int, str] = {
    1: "日发电量", 2: "总发电量", 24: "总有功功率", 13141: "电池电量(SOC)", 58604: "电池电量",
    83022: "电站日发电量", 8018: "电表有功功率",
}

SHOW_UNITS: Dict[str, str] = {"Wh": "kWh", "W": "kW", "var": "kvar", "varh": "kvarh",
                              "VA": "kVA"}

# Property points (getOpenPointInfo type 5, getDevPropertyPointValue).  13258 and 13261 are named
# by the document (section 2.11.3); 13251 and 13257 only appear with values, so their names here
# are the simulator's.
PROPERTY_POINTS: Dict[int, Tuple[PointInfo, ...]] = {
    14: (
        PointInfo(13251, "Battery Type", ""),
        PointInfo(13257, "Installed PV Power", "Wp"),
        PointInfo(13258, "Battery Capacity(Lithium Battery)", "Wh"),
        PointInfo(13261, "Battery Capacity(Lead-Acid Battery)", "Ah"),
    ),
}


def _parse_table(text: str) -> Tuple[PointInfo, ...]:
    rows = []
    for line in text.strip().splitlines():
        point_id, unit, name = line.split("|", 2)
        rows.append(PointInfo(int(point_id), name.strip(), unit.strip()))
    return tuple(rows)


@functools.lru_cache(maxsize=None)
def telemetry_points(device_type: int) -> Tuple[PointInfo, ...]:
    """The portal's common measuring points of a device type (empty for types without a table)."""
    text = _TABLES.get(device_type)
    return _parse_table(text) if text else ()


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


# Portal tables, one row per point: ID|storage unit|name.

# isolarcloud-portal/common-inverter-measuring-points.md
_INVERTER_TABLE = """
1|Wh|Yield Today
87|Wh|Yield This Month
88|Wh|Yield This Year
2|Wh|Total Yield
24|W|Total Active Power
14|W|Total DC Power
18|V|Phase A Voltage
19|V|Phase B Voltage
20|V|Phase C Voltage
21|A|Phase A Current
22|A|Phase B Current
23|A|Phase C Current
25|var|Total Reactive Power
94|kΩ|Array Insulation Resistahce
27|Hz|Grid Frequency
7356|h|Total Operation Time
15|V|A-B Line Voltage
16|V|B-C Line Voltage
17|V|C-A Line Voltage
4|°C|Internal Air Temperature
95|V|Bus Voltage
26||Total Power Factor
120||Number of AFCI Faults
90|V|Negative Voltage to Ground
43|VA|Total Apparent Power
33|°C|Module 1 Temperature
34|°C|Module 2 Temperature
35|°C|Module 3 Temperature
36|°C|Module 4 Temperature
37|°C|Module 5 Temperature
38|°C|Module 6 Temperature
39|Ω|Positive Impedance to Ground
40|Ω|Negative Impedance to Ground
41|W|Active Power Regulation Actual Value
42|va|Reactive Power Regulation Actual Value
67|Wh|Daily Yield (Theoretical)
5|V|MPPT1 Voltage
6|A|MPPT1 Current
7|V|MPPT2 Voltage
8|A|MPPT2 Current
9|V|MPPT3 Voltage
10|A|MPPT3 Current
45|V|MPPT4 Voltage
46|A|MPPT4 Current
47|V|MPPT5 Voltage
48|A|MPPT5 Current
49|V|MPPT6 Voltage
50|A|MPPT6 Current
51|V|MPPT7 Voltage
52|A|MPPT7 Current
53|V|MPPT8 Voltage
54|A|MPPT8 Current
55|V|MPPT9 Voltage
56|A|MPPT9 Current
57|V|MPPT10 Voltage
58|A|MPPT10 Current
7401|V|MPPT11 Voltage
7451|A|MPPT11 Current
7402|V|MPPT12 Voltage
7452|A|MPPT12 Current
7723|V|MPPT13 Voltage
7724|A|MPPT13 Current
7725|V|MPPT14 Voltage
7726|A|MPPT14 Current
7727|V|MPPT15 Voltage
7728|A|MPPT15 Current
7729|V|MPPT16 Voltage
7730|A|MPPT16 Current
7731|V|MPPT17 Voltage
7732|A|MPPT17 Current
7733|V|MPPT18 Voltage
7734|A|MPPT18 Current
7735|V|MPPT19 Voltage
7736|A|MPPT19 Current
7737|V|MPPT20 Voltage
7738|A|MPPT20 Current
96|V|String 1 Voltage
70|A|String 1 Current
97|V|String 2 Voltage
71|A|String 2 Current
98|V|String 3 Voltage
72|A|String 3 Current
99|V|String 4 Voltage
73|A|String 4 Current
100|V|String 5 Voltage
74|A|String 5 Current
101|V|String 6 Voltage
75|A|String 6 Current
102|V|String 7 Voltage
76|A|String 7 Current
103|V|String 8 Voltage
77|A|String 8 Current
104|V|String 9 Voltage
78|A|String 9 Current
105|V|String 10 Voltage
79|A|String 10 Current
106|V|String 11 Voltage
80|A|String 11 Current
107|V|String 12 Voltage
81|A|String 12 Current
108|V|String 13 Voltage
82|A|String 13 Current
109|V|String 14 Voltage
83|A|String 14 Current
110|V|String 15 Voltage
84|A|String 15 Current
111|V|String 16 Voltage
85|A|String 16 Current
112|V|String 17 Voltage
92|A|String 17 Current
113|V|String 18 Voltage
93|A|String 18 Current
7166|V|String 19 Voltage
313|A|String 19 Current
7167|V|String 20 Voltage
314|A|String 20 Current
7168|V|String 21 Voltage
315|A|String 21 Current
7169|V|String 22 Voltage
316|A|String 22 Current
7170|V|String 23 Voltage
317|A|String 23 Current
7171|V|String 24 Voltage
318|A|String 24 Current
7172|V|String 25 Voltage
319|A|String 25 Current
7173|V|String 26 Voltage
320|A|String 26 Current
7174|V|String 27 Voltage
321|A|String 27 Current
7175|V|String 28 Voltage
322|A|String 28 Current
7176|V|String 29 Voltage
323|A|String 29 Current
7177|V|String 30 Voltage
324|A|String 30 Current
7178|V|String 31 Voltage
325|A|String 31 Current
7179|V|String 32 Voltage
326|A|String 32 Current
7707|V|String 33 Voltage
7708|A|String 33 Current
7709|V|String 34 Voltage
7710|A|String 34 Current
7711|V|String 35 Voltage
7712|A|String 35 Current
7713|V|String 36 Voltage
7714|A|String 36 Current
7715|V|String 37 Voltage
7716|A|String 37 Current
7717|V|String 38 Voltage
7718|A|String 38 Current
7719|V|String 39 Voltage
7720|A|String 39 Current
7721|V|String 40 Voltage
7722|A|String 40 Current
11|W|PV1 Power
12|W|PV2 Power
13|W|PV3 Power
59|W|PV4 Power
60|W|PV5 Power
61|W|PV6 Power
62|W|PV7 Power
63|W|PV8 Power
64|W|PV9 Power
65|W|PV10 Power
3|h|Total On-grid Running Time
29||Operating status
"""

# isolarcloud-portal/common-energy-storage-inverter-measuring-points.md
_STORAGE_INVERTER_TABLE = """
13011|W|Active Power
13003|W|Total DC Power
13157|V|Phase A Voltage
13158|V|Phase B Voltage
13159|V|Phase C Voltage
13008|A|Phase A Current
13009|A|Phase B Current
13010|A|Phase C Current
13012|var|Total Reactive Power
13160|kΩ|Array Insulation Resistance
13007|Hz|Grid Frequency
18065|W|Phase A Backup Power
18066|W|Phase B Backup Power
18067|W|Phase C Backup Power
18068|W|Total Backup Power
18062|A|Phase A Backup Current
18063|A|Phase B Backup Current
18064|A|Phase C Backup Current
13020|H|Total Operation Time
13134|Wh|Total PV Yield
13112|Wh|Daily PV Yield
13187|V|AC Voltage
13188|A|AC Current
13004|V|A-B Line Voltage
13005|V|B-C Line Voltage
13006|V|C-A Line Voltage
13019|°C|Internal Air Temperature
13161|V|Bus Voltage
13013||Total Power Factor
13001|V|MPPT1 Voltage
13002|A|MPPT1 Current
13105|V|MPPT2 Voltage
13106|A|MPPT2 Current
13107|V|MPPT3 Voltage
13108|A|MPPT3 Current
13109|V|MPPT4 Voltage
13110|A|MPPT4 Current
13122|Wh|Feed-in Energy Today
13125|Wh|Total Feed-in Energy
13147|Wh|Energy Purchased Today
13148|Wh|Total Purchased Energy
13149|W|Purchased Power
13121|W|Feed-in Power
13173|Wh|Feed-in Energy Today (PV)
13175|Wh|Total Feed-in Energy (PV)
13141||Battery Level (SOC)
13029|Wh|Battery Discharging Energy Today
13028|Wh|Battery Charging Energy Today
13138|V|Battery Voltage
13139|A|Battery Current
13035|Wh|Total Battery Discharging Energy
13034|Wh|Total Battery Charging Energy
13142||Battery Health (SOH)
13143|°C|Battery Temperature
13162|A|Max. Charging Current (BMS)
13163|A|Max. Discharging Current (BMS)
13174|Wh|Daily Battery Charging Energy from PV
13176|Wh|Total Battery Charging Energy from PV
13126|W|Battery Charging Power
13150|W|Battery Discharging Power
13199|Wh|Daily Load Consumption
13137|Wh|Total Load Energy Consumption from PV
13119|W|Load Power
13130|Wh|Total Load Consumption
13116|Wh|Daily Direct Energy Consumption
13144||Daily Self-consumption Rate
13016|H|Total Charging Time
13017|H|Total Discharging Time
13018|VA|Total Apparent Power
13023|H|Daily Charging Time
13024|H|Daily Discharging Time
13118|Wh|Annual Direct Energy Consumption
13165||MDSP Off-Grid Start Up Status
13166||SDSP Working Mode
13167||SDSP Off-grid Start Status
13168||DI Status
13169|V|Battery Voltage (BMS)
13170||Battery SOC (BMS)
13171||EMS Status
13172||Daily Self-Sufficiency Rate
13140|Wh|Battery Capacity (kWh)
18075|VA|Channel 2 Total Apparent Power
18076|VA|Channel 2 Phase A Apparent Power
18077|VA|Channel 2 Phase B Apparent Power
18078|VA|Channel 2 Phase C Apparent Power
18079|W|Channel 2 Total Active Power
18080|W|Channel 2 Phase A Active Power
18081|W|Channel 2 Phase B Active Power
18082|W|Channel 2 Phase C Active Power
18083|var|Channel 2 Total Reactive Power
18084|var|Channel 2 Phase A Reactive Power
18085|var|Channel 2 Phase B Reactive Power
18086|var|Channel 2 Phase C Reactive Power
18087||Channel 2 Power Factor
18088|Wh|Channel 2 Total Purchased Energy
18089|Wh|Channel 2 Phase A Purchased Energy
18090|Wh|Channel 2 Phase B Purchased Energy
18091|Wh|Channel 2 Phase C Purchased Energy
18092|Wh|Channel 2 Total Feed-in Energy
18093|Wh|Channel 2 Phase A Feed-in Energy
18094|Wh|Channel 2 Phase B Feed-in Energy
18095|Wh|Channel 2 Phase C Feed-in Energy
18103|V|Phase A Backup Voltage
18104|V|Phase B Backup Voltage
18105|V|Phase C Backup Voltage
18108|V|Meter Phase-A Voltage
18109|V|Meter Phase-B Voltage
18110|V|Meter Phase-C Voltage
13146||Operating status
"""

# isolarcloud-portal/common-energy-meter-measuring-points.md
_METER_TABLE = """
8030|Wh|Forward Active Energy
8031|Wh|Reverse Active Energy
8062|Wh|Daily Forward Active Energy
8063|Wh|Daily Reverse Active Energy
8032|varh|Forward Reactive Energy
8033|varh|Reverse Reactive Energy
8034|Wh|Peak Forward Active Energy
8035|Wh|Peak Reverse Active Energy
8038|Wh|Valley Forward Active Energy
8039|Wh|Valley Reverse Active Energy
8042|Wh|Flat Forward Active Energy
8043|Wh|Flat Reverse Active Energy
8058|Wh|Wave Forward Active Energy
8059|Wh|Wave Reverse Active Energy
8036|Wh|Peak Forward Reactive Energy
8037|Wh|Peak Reverse Reactive Energy
8040|Wh|Valley Forward Reactive Energy
8041|Wh|Valley Reverse Reactive Energy
8044|Wh|Flat Forward Reactive Energy
8045|Wh|Flat Reverse Reactive Energy
8060|Wh|Wave Forward Reactive Energy
8061|Wh|Wave Reverse Reactive Energy
8000|V|Phase A Voltage
8001|V|Phase B Voltage
8002|V|Phase C Voltage
8003|V|A-B Line Voltage
8004|V|B-C Line Voltage
8005|V|C-A Line Voltage
8006|A|Phase A Current
8007|A|Phase B Current
8008|A|Phase C Current
8064|Hz|Frequency
8018|W|Meter Active Power
8022|var|Reactive Power
8014||PF
8026|VA|Apparent Power
8076|W|Meter Phase A Active Power
8077|W|Meter Phase B Active Power
8078|W|Meter Phase C Active Power
8084|Wh|Daily Direct Power Consumption
8085|Wh|Total Direct Power Consumption
"""

# isolarcloud-portal/common-battery-measuring-points.md
_BATTERY_TABLE = """
58601|V|Battery Voltage
58602|A|Battery Current
58603|°C|Battery Temperature
58604||Battery Level
58605||Battery Health (SOH)
58606|Wh|Total Battery Charging Energy
58607|Wh|Total Battery Discharging Energy
58608||Battery Opreration Status
58609||Standard Health Status
58610|mV|Max.Voltage of Cell
58611||Position of Max-Voltage Cell
58612|mV|Min.Voltage of Cell
58613||Position of Min-Voltage Cell
58614|°C|Max.Temperature of Module
58615||Max.Temperature Position of Module
58616|°C|Min.Temperature of Module
58617||Min.Temperature Position of Module
58618|mV|Max. Cell Voltage of Module 1
58619|mV|Max. Cell Voltage of Module 2
58620|mV|Max. Cell Voltage of Module 3
58621|mV|Max. Cell Voltage of Module 4
58622|mV|Max. Cell Voltage of Module 5
58623|mV|Max. Cell Voltage of Module 6
58624|mV|Max. Cell Voltage of Module 7
58625|mV|Max. Cell Voltage of Module 8
58626|mV|Min. Cell Voltage of Module 1
58627|mV|Min. Cell Voltage of Module 2
58628|mV|Min. Cell Voltage of Module 3
58629|mV|Min. Cell Voltage of Module 4
58630|mV|Min. Cell Voltage of Module 5
58631|mV|Min. Cell Voltage of Module 6
58632|mV|Min. Cell Voltage of Module 7
58633|mV|Min. Cell Voltage of Module 8
58635||DC Contactor Status
58636||Fault Module ID
"""

# isolarcloud-portal/common-communications-module-measuring-points.md
_MODULE_TABLE = """
23001||Wireless Signal Strength
23014||WLAN Signal Strength
23008||Card ID
"""

# isolarcloud-portal/common-plant-measuring-points.md
_PLANT_TABLE = """
83022|Wh|Daily Yield of Plant
83024|Wh|Plant Total Yield
83033|W|Plant Power
83019||Plant Power/Installed Power of Plant
83006|Wh|Meter Daily Yield
83020|Wh|Meter Total Yield
83011|Wh|Meter E-daily Consumption
83021|Wh|Accumulative Power Consumption by Meter
83032|W|Meter AC Power
83002|W|Inverter AC Power
83004|Wh|Inverter Total Yield
83009|Wh|Inverter Daily Yield
83012|W/m²|P-radiation-H
83013|Wh/m²|Daily Irradiation
83023||Plant PR
83025|h|Plant Equivalent Hours
83005|h|Daily Equivalent Hours
83007||Meter PR
83018|Wh|Daily Yield (Theoretical)
83001|W/Wp|Inverter AC Power Normalization
83008|h|Daily Equivalent Hours of Inverter
83010||Inverter PR
83016|°C|Plant Ambient Temperature
83017|°C|Plant Module Temperature
83046|W|PCS Total Active Power
83052|W|Load Power
83067|W|Total Active Power of PV
83097|Wh|Daily Direct Energy Consumption
83100|Wh|Total Direct Energy Consumption
83102|Wh|Energy Purchased Today
83105|Wh|Total Purchased Energy
83106|W|Load Power
83118|Wh|Daily Load Consumption
83124|Wh|Total Load Consumption
83119|Wh|Daily Feed-in Energy (PV)
83072|Wh|Feed-in Energy Today
83075|Wh|Feed-in Energy Total
83252||Battery Level (SOC)
83129||Battery SOC
83232||Total field SOC
83233|W|Total field maximum rechargeable power
83234|W|Total field maximum dischargeable power
83235|Wh|Total field chargeable energy
83236|Wh|Total field dischargeable energy
83237|W|Total field energy storage maximum reactive power
83238|W|Total field energy storage active power
83239|var|Total field reactive power
83240||Total field power factor
83241|Wh|Total field charge capacity
83242|Wh|Total field discharge capacity
83243|Wh|Daily field charge capacity
83244|Wh|Daily field discharge capacity
83548||Total Number of Charge/Discharge
83549|W|Grid Active Power
83419||Daily Highest Inverter Power/Inverter Installed Capacity
83317|W|Power Forecast
83318|W|Planned ES Charging/Discharging Power
83319|W|Planned ES SOC
83320|Wh|Planned Charging Power
83321|Wh|Planned Discharging Power
83322|Wh|ESS Daily Charge (EMS)
83323|Wh|ESS Daily Discharge (EMS)
83324|Wh|Energy Storage Cumulative Charge
83325|Wh|Cumulative Discharge
83326|W|Energy Storage Active Power (EMS)
83327|Wh|Energy Storage Remaining Charge
83328|W|Grid Active Power (EMS)
83329|W|PV Active Power (EMS)
83330|W|Load Active Power (EMS)
83331|Wh|Daily PV Yield (EMS)
83332|Wh|Total PV Yield
83334||Energy Storage SOC (EMS)
83743|Wh|Daily yield loss due to load shedding
"""

_TABLES: Dict[int, str] = {
    1: _INVERTER_TABLE, 7: _METER_TABLE, 11: _PLANT_TABLE, 14: _STORAGE_INVERTER_TABLE,
    22: _MODULE_TABLE, 43: _BATTERY_TABLE,
}
