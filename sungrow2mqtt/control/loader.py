"""Read and validate the parameter catalog file; every problem is one line naming entry and field.

``parameters.yaml: parameters[3] (soc_upper_limit): field 'min': expected a number, got 'x'``

The checks are a field table of small functions that return the cleaned value or raise
:class:`_Bad`, so they can move onto the project's shared validation toolkit unchanged.
"""
from __future__ import annotations

import dataclasses
import difflib
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple, Union

import yaml

from sungrow2mqtt.catalog.ha import DEVICE_CLASS_UNITS, NON_NUMERIC_DEVICE_CLASSES
from sungrow2mqtt.control.encoding import SettingError, encode, wire_code
from sungrow2mqtt.control.spec import COMPONENTS, RATED_POWER, Bound, ParameterSpec, property_limit
from sungrow2mqtt.errors import CatalogError

__all__ = ["ParameterCatalog", "load_parameters", "parse_parameters"]

log = logging.getLogger(__name__)

BUILTIN_FILE = "parameters.yaml"
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_ICON = re.compile(r"^mdi:[a-z0-9-]+$")
_LIMIT = re.compile(r"^(?:property (\d+)|rated power)$")
_REQUIRED = ("code", "key", "name", "device_types", "component", "source")
# fields that only make sense for some components
_ONLY_FOR = {"unit": "number", "device_class": "number", "scale": "number", "min": "number",
             "max": "number", "step": "number", "mode": "number", "options": "select",
             "on_value": "switch", "off_value": "switch", "press": "button"}


class _Bad(Exception):
    """A field value that does not fit; the message completes "field '<name>': ..."."""


def _shown(value: object) -> str:
    """A wrong value the way the YAML author wrote it."""
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return "null" if value is None else repr(value)


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Bad(f"expected a positive integer, got {_shown(value)}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad(f"expected a text, got {_shown(value)}")
    return " ".join(value.split())


def _matching(pattern: "re.Pattern[str]", expected: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value)
        if not pattern.match(text):
            raise _Bad(f"expected {expected}, got {text!r}")
        return text
    return check


def _choice(choices: Any) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value)
        if text not in choices:
            raise _Bad(f"expected one of {', '.join(sorted(choices))}, got {text!r}")
        return text
    return check


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"expected a number, got {_shown(value)}")
    return float(value)


def _bound(value: object) -> Bound:
    """A range end: a number, or ``{from: property 18290 | rated power, default: number}``."""
    if not isinstance(value, dict):
        return Bound(value=_number(value))
    unknown = set(value) - {"from", "default"}
    if unknown or "from" not in value:
        raise _Bad("expected a number or {from: 'property <id>' | 'rated power', default: number}")
    match = _LIMIT.match(" ".join(str(value["from"]).split()))
    if match is None:
        raise _Bad(f"'from' must be 'property <point id>' or 'rated power', "
                   f"got {_shown(value['from'])}")
    limit = property_limit(int(match.group(1))) if match.group(1) else RATED_POWER
    default = value.get("default")
    return Bound(limit=limit, default=None if default is None else _number(default))


def _step(value: object) -> float:
    step = _number(value)
    if step <= 0:
        raise _Bad(f"expected a number above 0, got {value}")
    return step


def _device_types(value: object) -> FrozenSet[int]:
    if not isinstance(value, list) or not value:
        raise _Bad(f"expected a non-empty list of device type numbers, got {_shown(value)}")
    return frozenset(_positive_int(item) for item in value)


def _code(value: object) -> str:
    """A wire code given as a whole number (YAML int) or its text."""
    code = wire_code(value) if isinstance(value, (int, str)) else None
    if code is None or not code.lstrip("-").isdigit():
        raise _Bad(f"expected a whole number, got {_shown(value)}")
    return code


def _options(value: object) -> Dict[str, str]:
    if not isinstance(value, dict) or len(value) < 2:
        raise _Bad(f"expected a mapping of at least two codes to labels, got {_shown(value)}")
    labels = {_code(code): _text(label) for code, label in value.items()}
    if len({label.casefold() for label in labels.values()}) < len(labels):
        raise _Bad("two options have the same label")
    return labels


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"expected true or false, got {_shown(value)}")
    return value


def _requires(value: object) -> Dict[str, object]:
    if not isinstance(value, dict) or not value:
        raise _Bad(f"expected a mapping of setting key to the value it must have, "
                   f"got {_shown(value)}")
    return {_matching(_KEY, "a setting key")(key): item for key, item in value.items()}


_FIELDS: Dict[str, Callable[[object], object]] = {
    "code": _positive_int,
    "key": _matching(_KEY, "snake_case ([a-z][a-z0-9_]*)"),
    "name": _text,
    "device_types": _device_types,
    "component": _choice(COMPONENTS),
    "source": _text,
    "unit": _text,
    "device_class": _choice(set(DEVICE_CLASS_UNITS) - NON_NUMERIC_DEVICE_CLASSES),
    "scale": _positive_int,
    "min": _bound,
    "max": _bound,
    "step": _step,
    "mode": _choice({"auto", "box", "slider"}),
    "options": _options,
    "on_value": _code,
    "off_value": _code,
    "press": _code,
    "requires": _requires,
    "icon": _matching(_ICON, "'mdi:<name>'"),
    "enabled": _bool,
}


class ParameterCatalog:
    """The settable parameters per device type, so control never special-cases a parameter."""

    def __init__(self, specs: List[ParameterSpec]) -> None:
        self._specs = list(specs)

    def for_device_type(self, device_type: int) -> List[ParameterSpec]:
        """Every parameter of a device type, enabled or not, in file order."""
        return [spec for spec in self._specs if device_type in spec.device_types]

    def get(self, device_type: int, key: str) -> Optional[ParameterSpec]:
        """A device type's parameter by key."""
        return next((s for s in self.for_device_type(device_type) if s.key == key), None)

    def by_code(self, device_type: int, code: object) -> Optional[ParameterSpec]:
        """A device type's parameter by param_code, to decode a read back."""
        text = wire_code(code)
        return next((s for s in self.for_device_type(device_type) if s.param_code == text), None)

    def property_points(self, device_type: int) -> List[int]:
        """Property points to read once per device of this type (they bound some ranges)."""
        points = [p for spec in self.for_device_type(device_type) for p in spec.property_points()]
        return sorted(set(points))

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"<ParameterCatalog {len(self._specs)} parameters>"


def _check_entry(raw: object, where: str, problems: List[str]) -> Optional[Dict[str, Any]]:
    """The entry's cleaned fields, or None when it cannot become a parameter."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping of fields, got {_shown(raw)}")
        return None
    fields: Dict[str, Any] = {}
    for name, value in raw.items():
        check = _FIELDS.get(str(name))
        if check is None:
            hint = difflib.get_close_matches(str(name), list(_FIELDS), n=1)
            problems.append(f"{where}: unknown field {str(name)!r}"
                            + (f" (did you mean {hint[0]!r}?)" if hint else ""))
            continue
        try:
            fields[name] = check(value)
        except _Bad as exc:
            problems.append(f"{where}: field {name!r}: {exc}")
    missing = [name for name in _REQUIRED if name not in raw]
    problems.extend(f"{where}: missing required field {name!r}" for name in missing)
    if missing or len(fields) < len(raw):
        return None
    before = len(problems)
    _check_component(fields, where, problems)
    return fields if len(problems) == before else None


def _check_component(fields: Dict[str, Any], where: str, problems: List[str]) -> None:
    """The rules that combine fields: what each component needs and what HA accepts."""
    component = fields["component"]
    for name, owner in _ONLY_FOR.items():
        if name in fields and owner != component:
            problems.append(f"{where}: field {name!r} is only for a {owner}")
    needs = {"number": ("min", "max"), "select": ("options",), "button": ("press",)}
    for name in needs.get(component, ()):
        if name not in fields:
            problems.append(f"{where}: a {component} needs field {name!r}")
    device_class = fields.get("device_class")
    if device_class and fields.get("unit") not in DEVICE_CLASS_UNITS[device_class]:
        problems.append(f"{where}: unit {_shown(fields.get('unit'))} is not allowed for "
                        f"device_class {device_class!r}")
    scale, step = fields.get("scale", 1), fields.get("step", 1.0)
    if abs(step * scale - round(step * scale)) > 1e-9 or round(step * scale) < 1:
        problems.append(f"{where}: field 'step': {step:g} is finer than the wire resolution "
                        f"(1/{scale} of a unit)")
    low, high = fields.get("min"), fields.get("max")
    if low and high and low.value is not None and high.value is not None and low.value > high.value:
        problems.append(f"{where}: min {low.value:g} is above max {high.value:g}")


def _link_requirements(specs: List[ParameterSpec], raw_requires: Dict[str, Dict[str, object]],
                       wheres: Dict[str, str], problems: List[str]) -> List[ParameterSpec]:
    """Check each ``requires`` against the named entries and store the wire values it needs."""
    by_key = {spec.key: spec for spec in specs}
    linked = []
    for spec in specs:
        wires: Dict[str, str] = {}
        for key, value in raw_requires.get(spec.key, {}).items():
            other = by_key.get(key)
            where = f"{wheres[spec.key]}: field 'requires'"
            if other is None or not spec.device_types <= other.device_types:
                problems.append(f"{where}: {key!r} is not a setting of every device type of "
                                f"this entry")
                continue
            try:
                wires[key] = encode(other, value)
            except SettingError as exc:
                problems.append(f"{where}: {exc}")
        linked.append(dataclasses.replace(spec, requires=wires))
    return linked


def parse_parameters(text: str, label: str) -> ParameterCatalog:
    """Parameter catalog YAML text -> catalog; CatalogError listing every problem, one a line."""
    problems: List[str] = []
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise CatalogError(f"{label}: {where}YAML syntax error: "
                           f"{getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"source", "parameters"}:
        raise CatalogError(f"{label}: expected a mapping with exactly 'source' and 'parameters'")
    entries = doc["parameters"]
    if not isinstance(entries, list):
        raise CatalogError(f"{label}: parameters: expected a list of entries, "
                           f"got {_shown(entries)}")
    specs: List[ParameterSpec] = []
    raw_requires: Dict[str, Dict[str, object]] = {}
    wheres: Dict[str, str] = {}
    taken: Dict[Tuple[int, Union[str, int]], str] = {}
    for index, raw in enumerate(entries):
        name = raw.get("key") if isinstance(raw, dict) else None
        entry = f"parameters[{index}]" + (f" ({name})" if isinstance(name, str) else "")
        where = f"{label}: {entry}"
        fields = _check_entry(raw, where, problems)
        if fields is None:
            continue
        idents = [(t, ident) for t in sorted(fields["device_types"])
                  for ident in (fields["key"], fields["code"])]
        clash = next((taken[ident] for ident in idents if ident in taken), None)
        if clash is not None:
            problems.append(f"{where}: key or code already used by {clash} for the same "
                            f"device type")
            continue
        taken.update(dict.fromkeys(idents, entry))
        raw_requires[fields["key"]] = fields.pop("requires", {})
        wheres[fields["key"]] = where
        specs.append(ParameterSpec(**fields))
    specs = _link_requirements(specs, raw_requires, wheres, problems)
    if problems:
        raise CatalogError("\n".join(problems))
    return ParameterCatalog(specs)


def load_parameters(path: Optional[Union[str, Path]] = None) -> ParameterCatalog:
    """The built-in parameter catalog (appendix 10), or the file at ``path``."""
    if path is None:
        text = (resources.files("sungrow2mqtt.control") / "data" / BUILTIN_FILE).read_text(
            encoding="utf-8")
        return parse_parameters(text, BUILTIN_FILE)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CatalogError(f"{path}: cannot read the parameter catalog: {reason}") from None
    return parse_parameters(text, str(path))
