"""One settable device parameter of the catalog, and the range ends that depend on the device."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import FrozenSet, List, Mapping, Optional

__all__ = ["COMPONENTS", "RATED_POWER", "Bound", "ParameterSpec", "property_limit",
           "rated_power"]

COMPONENTS = ("number", "select", "switch", "button")

# Names of device limits a range end can depend on (keys of the ``limits`` mappings).
RATED_POWER = "rated_power"


# SUNGROW inverter model codes start with the rated power in kW: SH10RT, SG5.0RS, SH5K-20, SG110CX
_MODEL_POWER = re.compile(r"^S[GH](\d{1,4}(?:\.\d{1,2})?)(?=[A-Z])")


def rated_power(model: str) -> Optional[float]:
    """The rated power in W that an inverter's model code names, or None if it names none.

    The Open API has no rated power of a device; appendix 10 bounds the feed-in limit by it.
    The model code is the one source there is: a wrong guess is still refused by the device.
    """
    match = _MODEL_POWER.match(model.strip().upper())
    return float(match.group(1)) * 1000 if match and float(match.group(1)) > 0 else None


def property_limit(point_id: int) -> str:
    """The limit name of a property point read with getDevPropertyPointValue."""
    return f"property:{point_id}"


@dataclass(frozen=True)
class Bound:
    """A range end: a fixed number, or a device limit (in the entry's unit) with a fallback.

    Appendix 10 bounds some parameters by the device: the rated power, or a property point read
    once per device. ``limit`` names it (:data:`RATED_POWER`, ``property:<id>``); ``default`` is
    used while the device has not told it, and without a default the range is unknown.
    """

    value: Optional[float] = None
    limit: Optional[str] = None
    default: Optional[float] = None

    def resolve(self, limits: Mapping[str, float]) -> Optional[float]:
        """The number for one device, or None when it depends on a limit nobody knows yet."""
        if self.limit is None:
            return self.value
        known = limits.get(self.limit)
        return known if known is not None else self.default

    def describe(self) -> str:
        """What the bound depends on, for error messages ("the device's rated power")."""
        if self.limit == RATED_POWER:
            return "the device's rated power"
        return f"the device's property point {str(self.limit).split(':', 1)[-1]}"


@dataclass(frozen=True)
class ParameterSpec:
    """A paramSetting parameter (appendix 10) as one Home Assistant entity.

    Wire values are the decimal texts paramSetting sends and reads back: numbers are
    ``round(value * scale)``; switches send ``on_value``/``off_value``; selects send the option's
    code; a button sends ``press``. ``requires`` maps the keys of parameters that must hold a
    value (as wire text) before this one may be written.
    """

    code: int
    key: str
    name: str
    device_types: FrozenSet[int]
    component: str
    source: str
    unit: Optional[str] = None
    device_class: Optional[str] = None
    scale: int = 1
    min: Optional[Bound] = None
    max: Optional[Bound] = None
    step: float = 1.0
    mode: str = "auto"
    options: Mapping[str, str] = field(default_factory=dict, hash=False)
    on_value: str = "170"
    off_value: str = "85"
    press: Optional[str] = None
    requires: Mapping[str, str] = field(default_factory=dict, hash=False)
    icon: Optional[str] = None
    enabled: bool = True

    @property
    def param_code(self) -> str:
        """The ``param_code`` text of paramSetting's ``param_list``."""
        return str(self.code)

    @property
    def readable(self) -> bool:
        """Whether a read back (set_type 2) has a value to show: buttons have no state."""
        return self.component != "button"

    def property_points(self) -> List[int]:
        """Property points whose values bound this parameter (read once per device)."""
        return [int(bound.limit.split(":", 1)[1]) for bound in (self.min, self.max)
                if bound is not None and bound.limit and bound.limit.startswith("property:")]
