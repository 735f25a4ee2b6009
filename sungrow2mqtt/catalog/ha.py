"""Home Assistant's sensor rules (as of HA 2024.3) that every catalog entry must obey.

The tables are copied from ``homeassistant/components/sensor/const.py`` of HA 2024.3.3
(``DEVICE_CLASS_UNITS`` and ``DEVICE_CLASS_STATE_CLASSES``), restricted to the device classes a
solar/storage plant can use. HA only *warns* about a wrong unit or state class, and MQTT drops the
entity's statistics quietly, so the catalog refuses them up front instead.

:func:`guess_from_api_unit` is the one place that turns an API storage unit into published unit,
scale, device class and state class; the built-in YAML files were written with the same rules and
:func:`sungrow2mqtt.catalog.open_points_to_yaml` uses it for points the catalog does not know.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Mapping, Optional, Tuple

__all__ = [
    "DEVICE_CLASS_STATE_CLASSES",
    "DEVICE_CLASS_UNITS",
    "ENTITY_CATEGORIES",
    "NON_NUMERIC_DEVICE_CLASSES",
    "STATE_CLASSES",
    "UnitGuess",
    "guess_from_api_unit",
    "guess_from_units",
    "normalize_api_unit",
]

MEASUREMENT = "measurement"
TOTAL = "total"
TOTAL_INCREASING = "total_increasing"
STATE_CLASSES: FrozenSet[str] = frozenset({MEASUREMENT, TOTAL, TOTAL_INCREASING})
_ALL_STATE_CLASSES = STATE_CLASSES
_MEASUREMENT_ONLY: FrozenSet[str] = frozenset({MEASUREMENT})

# Sensor entity categories: "config" is meaningless for a read-only sensor.
ENTITY_CATEGORIES: FrozenSet[str] = frozenset({"diagnostic"})

_ENERGY_UNITS = frozenset({"GJ", "kWh", "MJ", "MWh", "Wh"})
_PRESSURE_UNITS = frozenset({"Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "psi"})
_SPEED_UNITS = frozenset({"ft/s", "m/s", "km/h", "kn", "mph"})

# HA 2024.3 DEVICE_CLASS_UNITS for the classes this catalog supports; None means "no unit".
DEVICE_CLASS_UNITS: Mapping[str, FrozenSet[Optional[str]]] = {
    "apparent_power": frozenset({"VA"}),
    "atmospheric_pressure": _PRESSURE_UNITS,
    "battery": frozenset({"%"}),
    "current": frozenset({"mA", "A"}),
    "duration": frozenset({"d", "h", "min", "s", "ms"}),
    "energy": _ENERGY_UNITS,
    "energy_storage": _ENERGY_UNITS,
    "enum": frozenset({None}),
    "frequency": frozenset({"Hz", "kHz", "MHz", "GHz"}),
    "humidity": frozenset({"%"}),
    "illuminance": frozenset({"lx"}),
    "irradiance": frozenset({"W/m²", "BTU/(h⋅ft²)"}),
    "power": frozenset({"W", "kW"}),
    "power_factor": frozenset({"%", None}),
    "pressure": _PRESSURE_UNITS,
    "reactive_power": frozenset({"var"}),
    "signal_strength": frozenset({"dB", "dBm"}),
    "speed": _SPEED_UNITS | frozenset({"in/d", "in/h", "mm/d", "mm/h"}),
    "temperature": frozenset({"°C", "°F", "K"}),
    "voltage": frozenset({"mV", "V"}),
    "wind_speed": _SPEED_UNITS,
}

# HA 2024.3 DEVICE_CLASS_STATE_CLASSES for the same classes; an empty set means "no state class".
DEVICE_CLASS_STATE_CLASSES: Mapping[str, FrozenSet[str]] = {
    "apparent_power": _MEASUREMENT_ONLY,
    "atmospheric_pressure": _MEASUREMENT_ONLY,
    "battery": _MEASUREMENT_ONLY,
    "current": _MEASUREMENT_ONLY,
    "duration": _ALL_STATE_CLASSES,
    "energy": frozenset({TOTAL, TOTAL_INCREASING}),
    "energy_storage": _MEASUREMENT_ONLY,
    "enum": frozenset(),
    "frequency": _MEASUREMENT_ONLY,
    "humidity": _MEASUREMENT_ONLY,
    "illuminance": _MEASUREMENT_ONLY,
    "irradiance": _MEASUREMENT_ONLY,
    "power": _MEASUREMENT_ONLY,
    "power_factor": _MEASUREMENT_ONLY,
    "pressure": _MEASUREMENT_ONLY,
    "reactive_power": _MEASUREMENT_ONLY,
    "signal_strength": _MEASUREMENT_ONLY,
    "speed": _MEASUREMENT_ONLY,
    "temperature": _MEASUREMENT_ONLY,
    "voltage": _MEASUREMENT_ONLY,
    "wind_speed": _MEASUREMENT_ONLY,
}

# HA refuses a unit, a state class or a display precision on these (the state is not a number).
NON_NUMERIC_DEVICE_CLASSES: FrozenSet[str] = frozenset({"enum"})


@dataclass(frozen=True)
class UnitGuess:
    """What to publish for a point whose API unit is known but nothing else is."""

    unit: Optional[str]
    scale: float
    device_class: Optional[str]
    state_class: Optional[str]
    precision: Optional[int]


# Spellings seen in the portal tables and getOpenPointInfo -> one canonical API unit.
_API_UNIT_ALIASES: Dict[str, str] = {
    "H": "h",
    "℃": "°C",
    "va": "var",  # inverter table, point 42 "Reactive Power Regulation Actual Value"
    "W/m^2^": "W/m²",
    "W/m2": "W/m²",
    "W/㎡": "W/m²",
    "Wh/m^2^": "Wh/m²",
    "Wh/m2": "Wh/m²",
    "Wh/㎡": "Wh/m²",
    "kohm": "kΩ",
    "KΩ": "kΩ",
    "Var": "var",
    "Varh": "varh",
}

# API storage unit -> published unit, scale, device class, state class, display precision.
# Energy counters (daily ones too: total_increasing accepts the reset at midnight) go to kWh.
_UNIT_RULES: Dict[str, UnitGuess] = {
    "Wh": UnitGuess("kWh", 0.001, "energy", TOTAL_INCREASING, 2),
    "kWh": UnitGuess("kWh", 1, "energy", TOTAL_INCREASING, 2),
    "MWh": UnitGuess("MWh", 1, "energy", TOTAL_INCREASING, 3),
    "W": UnitGuess("W", 1, "power", MEASUREMENT, 0),
    "kW": UnitGuess("kW", 1, "power", MEASUREMENT, 2),
    "var": UnitGuess("var", 1, "reactive_power", MEASUREMENT, 0),
    "VA": UnitGuess("VA", 1, "apparent_power", MEASUREMENT, 0),
    "V": UnitGuess("V", 1, "voltage", MEASUREMENT, 1),
    "mV": UnitGuess("V", 0.001, "voltage", MEASUREMENT, 3),
    "A": UnitGuess("A", 1, "current", MEASUREMENT, 2),
    "mA": UnitGuess("mA", 1, "current", MEASUREMENT, 0),
    "Hz": UnitGuess("Hz", 1, "frequency", MEASUREMENT, 2),
    "°C": UnitGuess("°C", 1, "temperature", MEASUREMENT, 1),
    "h": UnitGuess("h", 1, "duration", TOTAL_INCREASING, 1),
    "min": UnitGuess("min", 1, "duration", TOTAL_INCREASING, 0),
    "s": UnitGuess("s", 1, "duration", TOTAL_INCREASING, 0),
    "W/m²": UnitGuess("W/m²", 1, "irradiance", MEASUREMENT, 0),
    # No HA device class for irradiation, insulation resistance, reactive energy (2024.3),
    # percentages other than battery/humidity, or ratios such as W/Wp.
    "Wh/m²": UnitGuess("kWh/m²", 0.001, None, TOTAL_INCREASING, 3),
    "kΩ": UnitGuess("kΩ", 1, None, MEASUREMENT, 0),
    "Ω": UnitGuess("Ω", 1, None, MEASUREMENT, 0),
    "MΩ": UnitGuess("MΩ", 1, None, MEASUREMENT, 2),
    "varh": UnitGuess("varh", 1, None, TOTAL_INCREASING, 0),
    "kvarh": UnitGuess("kvarh", 1, None, TOTAL_INCREASING, 2),
    "%": UnitGuess("%", 1, None, MEASUREMENT, 1),
    "W/Wp": UnitGuess("W/Wp", 1, None, MEASUREMENT, 3),
}


def normalize_api_unit(unit: Optional[str]) -> Optional[str]:
    """Map the spellings of the portal and the API to one unit, so rules match them all."""
    if unit is None:
        return None
    text = unit.strip()
    if not text or text == "--":
        return None
    return _API_UNIT_ALIASES.get(text, text)


# A point stored without a unit but shown in %: live data sends these (SOC 13141, SOH 13142,
# 58604, 83252, ...) as 0-1 fractions, so 0.44 is 44 %.
_FRACTION = UnitGuess("%", 100, None, MEASUREMENT, 1)


def guess_from_units(storage_unit: Optional[str], show_unit: Optional[str]
                     ) -> Tuple[Optional[str], UnitGuess]:
    """API unit and guess from getOpenPointInfo's storage and show units (storage wins)."""
    storage = normalize_api_unit(storage_unit)
    shown = normalize_api_unit(show_unit)
    if storage is None and shown == "%":
        return None, _FRACTION
    api_unit = storage or shown
    return api_unit, guess_from_api_unit(api_unit)


def guess_from_api_unit(api_unit: Optional[str]) -> UnitGuess:
    """Derive HA unit/class/state class from the API unit alone, for points nobody curated."""
    unit = normalize_api_unit(api_unit)
    if unit is None:
        # Could be a status code, a text or a number: publish it as it comes.
        return UnitGuess(None, 1, None, None, None)
    rule = _UNIT_RULES.get(unit)
    if rule is not None:
        return rule
    return UnitGuess(unit, 1, None, MEASUREMENT, None)
