"""Home Assistant values <-> paramSetting wire values: pure functions, one rule per component.

HA values are what entities show and command topics carry: a number in the entry's unit,
``ON``/``OFF`` for a switch, an option label for a select, ``PRESS`` for a button. Wire values are
the decimal texts paramSetting sends (``set_value``) and reads back (``return_value``): SOC 90 %
is ``"900"`` (tenths), feed-in limitation on is ``"170"``, energy management mode
"Self-consumption" is ``"0"``.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Tuple, Union

from sungrow2mqtt.control.spec import Bound, ParameterSpec
from sungrow2mqtt.errors import Sungrow2MqttError

__all__ = ["PRESS", "SWITCH_STATES", "HaValue", "SettingError", "allowed_values", "decode",
           "encode", "number_range", "wire_code"]

HaValue = Union[int, float, str]
SWITCH_STATES = ("ON", "OFF")
PRESS = "PRESS"
_NO_VALUE = ("", "--", "null", "none")
_EPSILON = 1e-6


class SettingError(Sungrow2MqttError, ValueError):
    """A requested setting does not fit the parameter catalog; nothing was sent to the device."""


def _tidy(number: float) -> Union[int, float]:
    """12 significant digits, as an int when whole, so 0.1 * 3 shows as 0.3 and 90.0 as 90."""
    rounded = float(f"{number:.12g}")
    return int(rounded) if rounded.is_integer() else rounded


def _show(number: float) -> str:
    """A number as people write it: 90, 0.1, 10.6."""
    return str(_tidy(number))


def wire_code(raw: object) -> Optional[str]:
    """Canonical wire text of a code or number: 170, "170", " 170.0 " -> "170"; None if none."""
    if isinstance(raw, bool) or raw is None:
        return None
    text = str(raw).strip()
    if text.lower() in _NO_VALUE:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number.is_integer():
        return str(int(number))
    return text


def number_range(spec: ParameterSpec, limits: Mapping[str, float]) -> Tuple[float, float]:
    """The allowed (min, max) of a number for one device; SettingError while it is unknown."""
    ends = []
    for bound in (spec.min, spec.max):
        value = (bound or Bound()).resolve(limits)
        if value is None:
            raise SettingError(f"{spec.key}: the allowed range depends on "
                               f"{(bound or Bound()).describe()}, which is not known")
        ends.append(value)
    return ends[0], ends[1]


def allowed_values(spec: ParameterSpec, limits: Mapping[str, float]) -> str:
    """What a setting accepts, for error messages: "70 to 100 % in steps of 1"."""
    if spec.component == "number":
        low, high = number_range(spec, limits)
        unit = f" {spec.unit}" if spec.unit else ""
        return f"{_show(low)} to {_show(high)}{unit} in steps of {_show(spec.step)}"
    if spec.component == "switch":
        return " or ".join(SWITCH_STATES)
    if spec.component == "select":
        return "one of " + ", ".join(repr(label) for label in spec.options.values())
    return PRESS


def encode(spec: ParameterSpec, value: object,
           limits: Optional[Mapping[str, float]] = None) -> str:
    """An HA value -> the wire text paramSetting sends, or SettingError naming the allowed values.

    ``limits`` holds the device's limits (rated power, property points) by name.
    """
    limits = limits or {}
    if spec.component == "number":
        return _encode_number(spec, value, limits)
    text = value.strip() if isinstance(value, str) else value
    if spec.component == "switch":
        if isinstance(text, bool):
            text = SWITCH_STATES[0] if text else SWITCH_STATES[1]
        if isinstance(text, str) and text.upper() in SWITCH_STATES:
            return spec.on_value if text.upper() == SWITCH_STATES[0] else spec.off_value
    elif spec.component == "select":
        for code, label in spec.options.items():
            if isinstance(text, str) and text.casefold() == label.casefold():
                return code
    elif isinstance(text, str) and text.upper() == PRESS and spec.press is not None:
        return spec.press
    raise SettingError(f"{spec.key}: {_quote(value)} is not allowed "
                       f"(expected {allowed_values(spec, limits)})")


def _encode_number(spec: ParameterSpec, value: object, limits: Mapping[str, float]) -> str:
    number = _number(value)
    low, high = number_range(spec, limits)
    if number is None or not low - _EPSILON <= number <= high + _EPSILON:
        what = "not a number" if number is None else "out of range"
        raise SettingError(f"{spec.key}: {_quote(value)} is {what} "
                           f"(expected {allowed_values(spec, limits)})")
    steps = (number - low) / spec.step
    if abs(steps - round(steps)) > _EPSILON:
        raise SettingError(f"{spec.key}: {_quote(value)} is not a step of {_show(spec.step)} "
                           f"(expected {allowed_values(spec, limits)})")
    return str(int(round(number * spec.scale)))


def _number(value: object) -> Optional[float]:
    """A finite number from an int, float or numeric text (MQTT payloads are text)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _quote(value: object) -> str:
    """A requested value for a message: numbers bare, anything else quoted and cut short."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return repr(str(value)[:40])


def decode(spec: ParameterSpec, wire: object) -> Optional[HaValue]:
    """A wire value the device reported -> the HA value; None when it reported none.

    Ranges are not checked: a read back shows what the device holds. A value that cannot mean
    anything for this parameter (text for a number, an unknown code) raises ValueError.
    """
    code = wire_code(wire)
    if code is None or not spec.readable:
        return None
    if spec.component == "number":
        number = _number(code)
        if number is None:
            raise ValueError(f"{spec.key}: the device value {code!r} is not a number")
        return _tidy(number / spec.scale)
    if spec.component == "switch":
        states = {spec.on_value: SWITCH_STATES[0], spec.off_value: SWITCH_STATES[1]}
    else:
        states = dict(spec.options)
    if code not in states:
        raise ValueError(f"{spec.key}: the device value {code!r} is none of the known codes "
                         f"{', '.join(states)}")
    return states[code]
