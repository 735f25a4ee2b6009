"""One catalog entry and the conversion of an API value into what is published for it."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import Callable, Literal, Mapping, Optional, Union

from sungrow2mqtt.catalog.ha import NON_NUMERIC_DEVICE_CLASSES

__all__ = ["MISSING_MARKERS", "OPTIONAL", "Converter", "PointSpec", "PublishedValue", "Tier",
           "to_number"]

PublishedValue = Union[float, int, str]
Converter = Callable[[object], Optional[PublishedValue]]

# A point's tier, the catalog's ``enabled`` field: True = polled and shown in HA, OPTIONAL =
# polled and announced disabled (the user switches it on in HA), False = neither.
OPTIONAL = "optional"
Tier = Union[bool, Literal["optional"]]

# What the API sends instead of a reading (compared case-insensitively, after stripping).
MISSING_MARKERS = frozenset({"", "-", "--", "null", "none", "nan", "n/a"})

# Enough significant digits for any reading the API sends (15), few enough to drop binary
# noise such as 190970.0 * 0.001 == 190.97000000000003.  A constant format: building the
# spec per value cost a fifth of the rounding.
_SIGNIFICANT = ".15g"
# A decimal of at most this many characters has at most 15 significant digits, so the nearest
# double to it (or to it times a power of ten) is what rounding to 15 digits gives.
_EXACT_TEXT = 15
# The largest power of ten read as an exponent (see _exponent); larger scales are multiplied.
_LARGEST_POWER = 100


def _is_missing(raw: object) -> bool:
    """Say whether the API sent "no reading" (None, empty, "--", ...) rather than a value."""
    if raw is None:
        return True
    if isinstance(raw, str):
        return raw.strip().lower() in MISSING_MARKERS
    return False


def to_number(raw: object) -> Optional[float]:
    """Read an API value as a finite float, or None for anything that is not a number."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        number = float(raw)
    elif isinstance(raw, str):
        try:
            number = float(raw.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _tidy(number: float) -> Union[float, int]:
    """Round away float noise and give integral results as int, so JSON shows 5000 not 5000.0."""
    rounded = float(format(number, _SIGNIFICANT))
    if rounded.is_integer():
        return int(rounded)
    return rounded


def _code_text(raw: object) -> Optional[str]:
    """Canonical text of an enum code: "64", 64 and "64.0" all become "64"."""
    number = to_number(raw)
    if number is not None and number.is_integer():
        return str(int(number))
    if isinstance(raw, str):
        return raw.strip()
    return None


@dataclass(frozen=True)
class PointSpec:
    """One measuring point of one device type: how it is named, scaled and announced to HA.

    What a spec is (enum, numeric, ratio, ...) is worked out once per spec and kept: a poll of a
    thousand devices asks it tens of thousands of times.
    """

    device_type: int
    point_id: int
    key: str
    name: str
    api_unit: Optional[str]
    unit: Optional[str]
    scale: float
    device_class: Optional[str]
    state_class: Optional[str]
    icon: Optional[str]
    precision: Optional[int]
    enabled: Tier
    category: Optional[str]
    options: Mapping[str, str] = field(default_factory=dict, hash=False)
    source: str = ""

    @cached_property
    def is_enum(self) -> bool:
        """True when the API sends a code that is published as its label."""
        return bool(self.options) or self.device_class in NON_NUMERIC_DEVICE_CLASSES

    @cached_property
    def is_numeric(self) -> bool:
        """True when the published value is a number (HA then expects one, or fails the entity)."""
        if self.is_enum:
            return False
        return (
            self.unit is not None
            or self.state_class is not None
            or self.device_class is not None
            or self.precision is not None
            or self.scale != 1
        )

    @cached_property
    def is_ratio(self) -> bool:
        """A 0-1 fraction published in % (``unit: "%"``, ``scale: 100``): the catalog's one way
        to say "ratio".  A plant may send such a point as 0-100 instead; the bridge learns that
        per device from a value above 1 (``components.ratios``)."""
        return self.unit == "%" and self.scale == 100

    @cached_property
    def is_share(self) -> bool:
        """A share of a whole in % (a ratio or a battery level): a published value outside
        0-100 is impossible."""
        return self.is_ratio or (self.unit == "%" and self.device_class == "battery")

    @cached_property
    def polled(self) -> bool:
        """Whether the bridge fetches this point (default and optional tiers)."""
        return self.enabled is True or self.enabled == OPTIONAL

    @cached_property
    def api_key(self) -> str:
        """The key under which realtime answers carry this point (``p`` + point id)."""
        return f"p{self.point_id}"

    @cached_property
    def converter(self) -> Converter:
        """:meth:`convert` for this kind of point, chosen once: a poll of a thousand devices
        converts tens of thousands of values."""
        if self.is_enum:
            return self._convert_enum
        if self.is_numeric:
            return partial(_convert_number, self.scale, _exponent(self.scale))
        return _convert_text

    def convert(self, raw: object) -> Optional[PublishedValue]:
        """API value (string, number, None, "--", "") -> published value or None (missing).

        Numeric points give ``float(raw) * scale`` rounded to 15 significant digits, as an int
        when integral; enum points give the label of the code (the code itself when the
        catalog has no label for it); text points give the stripped text. Anything that is
        not a reading (None, "", "--", non-numeric text for a numeric point) gives None.
        """
        return self.converter(raw)

    def _convert_enum(self, raw: object) -> Optional[str]:
        """Code -> label; an unknown numeric code stays visible as its number."""
        if _is_missing(raw):
            return None
        code = _code_text(raw)
        if code is None:
            return None
        label = self.options.get(code)
        if label is not None:
            return label
        if to_number(code) is not None or code in self.options.values():
            return code
        return None


def _exponent(scale: float) -> Optional[str]:
    """``scale`` as an exponent to append to a decimal text ("e-3" for 0.001, "e0" for 1), or
    None when it is not a power of ten up to 1e100.  A text that reads with an exponent
    appended is a plain decimal (a second exponent does not read), of at most 15 characters
    below 1e15: up to 1e100 its scaled value is finite, without a check per value."""
    if scale > 0:
        power = round(math.log10(scale))
        if power <= _LARGEST_POWER and 10.0 ** power == scale:
            return f"e{power}"
    return None


def _convert_number(scale: float, exponent: Optional[str], raw: object
                    ) -> Optional[PublishedValue]:
    """A numeric point's value (see :meth:`PointSpec.convert`).

    The API sends short decimal texts ("24855.4"); at a power-of-ten scale such a text is read
    with the scale as its exponent ("24855.4e-3"), which gives the nearest double to the scaled
    decimal itself: what rounding the product gives, at a third of the cost.  Anything else
    (an exponent of its own, long text, numbers, other scales) is multiplied and rounded.  The
    missing markers need no check of their own: none of them reads as a finite number.
    """
    if exponent is not None and type(raw) is str and len(raw) <= _EXACT_TEXT:
        try:
            number = float(raw + exponent)
        except ValueError:      # "1e5e-3", "nan", "5 ", "--": the long way decides
            pass
        else:
            return int(number) if number.is_integer() else number
    found = to_number(raw)
    if found is None:
        return None
    scaled = found * scale
    # 1e308 * 1000 overflows to inf, which is not JSON: treat it as no reading
    return _tidy(scaled) if math.isfinite(scaled) else None


def _convert_text(raw: object) -> Optional[PublishedValue]:
    """A text point's value: the stripped text (see :meth:`PointSpec.convert`)."""
    if _is_missing(raw):
        return None
    if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
        return str(raw).strip()
    return None
