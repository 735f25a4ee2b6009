"""The bridge's view of the fleet: plants and devices built from Open API rows.

The API's rows are loose (numbers as strings, names possibly Chinese, optional fields); this module
turns them into small immutable records once, so the rest of the code never parses API rows again.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from sungrow2mqtt.isolarcloud.ps_key import PLANT_DEVICE_TYPE, PsKey

__all__ = ["PLANT_DEVICE_TYPE", "Device", "PsKey", "as_int", "device_from_row",
           "parse_device_time", "parse_time_zone", "plant_from_row", "publishable", "slug"]

log = logging.getLogger(__name__)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_OFFSET = re.compile(r"^(?:GMT|UTC)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)
# battery_version is the Open API document's name, bat_version the current portal document's
_FIRMWARE_FIELDS = ("lcd_version", "m_version", "battery_version", "bat_version", "mdsp_version",
                    "system_version", "sdsp_version", "cpld_version")


def parse_time_zone(text: Optional[str]) -> dt.tzinfo:
    """A plant time zone like ``GMT+1``, ``GMT-3:30``, ``UTC+08:00`` or an IANA name; UTC else."""
    value = (text or "").strip()
    if value.upper() in ("", "GMT", "UTC", "Z"):
        return dt.timezone.utc
    match = _OFFSET.match(value)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        offset = dt.timedelta(hours=int(match.group(2)), minutes=int(match.group(3) or 0))
        return dt.timezone(sign * offset)
    try:
        from zoneinfo import ZoneInfo
        return ZoneInfo(value)
    except Exception:  # unknown name or no tz database on this machine
        log.warning("Unknown plant time zone %r; using UTC", value)
        return dt.timezone.utc


def parse_device_time(text: Any, tz: dt.tzinfo) -> Optional[str]:
    """``yyyyMMddHHmmss`` in the plant's zone -> ISO-8601 with offset; None if unparseable.

    Read by slicing, not ``strptime`` (ten times slower, once per device and poll), and kept:
    the devices of a plant mostly share their data time.
    """
    return _device_time(str(text), tz)


@functools.lru_cache(maxsize=1024)
def _device_time(digits: str, tz: dt.tzinfo) -> Optional[str]:
    if len(digits) != 14 or not (digits.isascii() and digits.isdigit()):
        return None
    try:
        moment = dt.datetime(int(digits[:4]), int(digits[4:6]), int(digits[6:8]),
                             int(digits[8:10]), int(digits[10:12]), int(digits[12:]), tzinfo=tz)
    except ValueError:                  # no such date or time (month 13, 25 o'clock)
        return None
    return moment.isoformat()


def publishable(value: Any) -> Any:
    """``value`` with each lone UTF-16 surrogate of its text replaced by U+FFFD; other values as
    they are.

    The cloud's JSON may carry half an emoji (``"Sunny roof \\ud83c"``): Python reads it into a
    str that UTF-8 cannot encode, so one such name would fail every publish and log line that
    carries it.  Every text from the cloud passes here where rows become records and values.
    """
    if isinstance(value, str) and not value.isascii():
        return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def slug(text: str) -> str:
    """Lower-case ASCII ``[a-z0-9_]`` for topic levels and object ids."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def as_int(value: Any, default: int = 0) -> int:
    """An API number that may arrive as int, float or string; ``default`` when it is none."""
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return default
    return int(number) if number.is_integer() else default


def _text(value: Any) -> str:
    return "" if value is None else publishable(str(value).strip())


@dataclass(frozen=True)
class Device:
    """A plant or a device of a plant; the plant is a device too (type 11, ``<ps_id>_11_0_0``)."""

    ps_key: PsKey
    ps_id: int
    device_type: int
    type_name: str
    name: str
    model: str
    serial: str
    firmware: Optional[str]
    tz: dt.tzinfo
    uuid: str = ""          # the device list's uuid: parameter setting (control) addresses it

    @property
    def is_plant(self) -> bool:
        """Whether this is the plant itself."""
        return self.device_type == PLANT_DEVICE_TYPE

    @property
    def plant_ps_key(self) -> PsKey:
        """The ps_key of the plant this device belongs to."""
        return PsKey.of_plant(self.ps_id)

    @property
    def object_prefix(self) -> str:
        """Readable, stable start of entity ids: ``sungrow_sh10rt_a2231234567``."""
        if self.is_plant:
            return f"sungrow_plant_{self.ps_id}"
        return "sungrow_" + slug(f"{self.model} {self.serial or self.ps_key}")


def plant_from_row(row: Mapping[str, Any], type_name: str) -> Device:
    """A plant from a getPowerStationList row; ValueError when it has no usable ps_id."""
    ps_id = as_int(row.get("ps_id"))
    name = _text(row.get("ps_name")) or f"Plant {ps_id}"
    return Device(ps_key=PsKey.of_plant(ps_id), ps_id=ps_id,
                  device_type=PLANT_DEVICE_TYPE, type_name=type_name, name=name,
                  model=_PLANT_TYPES.get(as_int(row.get("ps_type"), -1), "Plant"), serial="",
                  firmware=None, tz=parse_time_zone(row.get("ps_current_time_zone")))


def device_from_row(row: Mapping[str, Any], plant: Device, type_name: str) -> Device:
    """A device from a getDeviceList/getDeviceListByUser row of ``plant``.

    Raises ValueError when the row's ps_key is malformed: ps_keys become topic levels and ids, so
    one with ``/``, ``+``, ``#`` or other surprises must never reach the broker.
    """
    ps_key = PsKey(_text(row.get("ps_key")))
    device_type = as_int(row.get("device_type"))
    model = _text(row.get("device_model_code")) or type_name
    serial = _text(row.get("device_sn"))
    firmware_info = row.get("firmware_version_info")
    firmware = None
    if isinstance(firmware_info, Mapping):
        firmware = next((_text(firmware_info[f]) for f in _FIRMWARE_FIELDS
                         if _text(firmware_info.get(f))), None)
    return Device(ps_key=ps_key, ps_id=plant.ps_id, device_type=device_type, type_name=type_name,
                  name=f"{model} {serial}".strip() if serial else f"{model} {ps_key}",
                  model=model, serial=serial, firmware=firmware, tz=plant.tz,
                  uuid=_text(row.get("uuid")))


# getPowerStationList ps_type (section 2.3)
_PLANT_TYPES = {1: "Utility PV", 3: "Commercial PV", 4: "Residential PV",
                5: "Residential Storage", 6: "Village-level Plant", 7: "Distributed Storage",
                8: "Poverty Reduction Plant", 9: "Wind Plant"}
