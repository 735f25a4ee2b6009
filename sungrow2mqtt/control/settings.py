"""Check a whole set request against the catalog before anything is sent to a device.

A request either passes completely or is refused with one message naming every bad setting and
what it allows; nothing of a refused request is sent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional

from sungrow2mqtt.control.encoding import HaValue, SettingError, decode, encode
from sungrow2mqtt.control.loader import ParameterCatalog
from sungrow2mqtt.control.spec import ParameterSpec
from sungrow2mqtt.validation import suggest

__all__ = ["Write", "plan_writes"]


@dataclass(frozen=True)
class Write:
    """One parameter of a paramSetting call: what HA asked for and what goes on the wire."""

    spec: ParameterSpec
    value: Optional[HaValue]
    wire: str


def plan_writes(catalog: ParameterCatalog, device_type: int, settings: Mapping[str, object], *,
                current: Optional[Mapping[str, str]] = None,
                limits: Optional[Mapping[str, float]] = None) -> List[Write]:
    """The writes of one request, prerequisites first; SettingError naming every problem.

    ``current`` holds the device's read-back wire values by key (to check ``requires``),
    ``limits`` its limits (rated power, property points) by name.
    """
    if not settings:
        raise SettingError("settings: expected at least one setting")
    current = current or {}
    problems: List[str] = []
    writes: Dict[str, Write] = {}
    for key, value in settings.items():
        spec = catalog.get(device_type, str(key))
        if spec is None:
            problems.append(_unknown(catalog, device_type, str(key)))
            continue
        try:
            wire = encode(spec, value, limits)
        except SettingError as exc:
            problems.append(str(exc))
            continue
        writes[spec.key] = Write(spec, decode(spec, wire), wire)
    for write in writes.values():
        problems.extend(_unmet(catalog, device_type, write.spec, writes, current))
    if problems:
        raise SettingError("; ".join(problems))
    needed = {key for write in writes.values() for key in write.spec.requires}
    return sorted(writes.values(), key=lambda write: write.spec.key not in needed)


def _unknown(catalog: ParameterCatalog, device_type: int, key: str) -> str:
    """The message for a key the device type does not have, with a close match if any."""
    keys = [spec.key for spec in catalog.for_device_type(device_type)]
    hint = suggest(key, keys)
    suffix = f" ({hint})" if hint else ""
    return f"{key}: not a setting of device type {device_type}{suffix}"


def _unmet(catalog: ParameterCatalog, device_type: int, spec: ParameterSpec,
           writes: Mapping[str, Write], current: Mapping[str, str]) -> List[str]:
    """Messages for the requirements of ``spec`` that neither the request nor the device meet."""
    problems = []
    for key, wire in spec.requires.items():
        other = catalog.get(device_type, key)
        assert other is not None  # the loader checked every requires key
        given = writes.get(key)
        have = given.wire if given is not None else current.get(key)
        if have == wire:
            continue
        needed = decode(other, wire)
        if given is not None:
            state = f"this request sets it to {given.value}"
        elif have is None:
            state = "its current value is not known"
        else:
            state = f"the device has {_label(other, have)}"
        problems.append(f"{spec.key}: needs {key} {needed} first ({state}); "
                        f"set both in one request")
    return problems


def _label(spec: ParameterSpec, wire: str) -> str:
    """A read-back wire value as HA shows it, or the raw code when it means nothing known."""
    try:
        value = decode(spec, wire)
    except ValueError:
        return repr(wire)
    return str(value)
