"""Read and validate the parameter catalog file; every problem is one line naming entry and field.

``parameters.yaml: parameters[3].min: expected a number, got 'x'``

An entry is a :class:`~sungrow2mqtt.validation.Section` of fields checked by the shared toolkit
(:mod:`sungrow2mqtt.validation`); what only makes sense for some components, and what HA allows
together, is checked when the section is finished; ``requires`` are linked once every entry is
known, since they name other entries.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Tuple, Union

from sungrow2mqtt import validation as v
from sungrow2mqtt.catalog.ha import DEVICE_CLASS_UNITS, NON_NUMERIC_DEVICE_CLASSES
from sungrow2mqtt.control.encoding import SettingError, encode, wire_code
from sungrow2mqtt.control.spec import COMPONENTS, RATED_POWER, Bound, ParameterSpec, property_limit
from sungrow2mqtt.errors import CatalogError

__all__ = ["ParameterCatalog", "load_parameters", "parse_parameters"]

log = logging.getLogger(__name__)

BUILTIN_FILE = "parameters.yaml"
_LIMIT = re.compile(r"property \d+|rated power")
# fields that only make sense for some components
_ONLY_FOR = {"unit": "number", "device_class": "number", "scale": "number", "min": "number",
             "max": "number", "step": "number", "mode": "number", "options": "select",
             "on_value": "switch", "off_value": "switch", "press": "button"}
_NUMBER_DEVICE_CLASSES = sorted(set(DEVICE_CLASS_UNITS) - NON_NUMERIC_DEVICE_CLASSES)
_NEEDS = {"number": ("min", "max"), "select": ("options",), "button": ("press",)}


def _name(value: Any) -> str:
    """A text as people read it: runs of blanks (YAML line breaks) become one space."""
    return " ".join(v.text(value).split())


_setting_key = v.matching(r"[a-z][a-z0-9_]*", "a setting key: snake_case ([a-z][a-z0-9_]*)")
_number = v.number()


def _bound(value: Any) -> Bound:
    """A range end: a number, or ``{from: property 18290 | rated power, default: number}``."""
    if not isinstance(value, dict):
        return Bound(value=_number(value))
    if set(value) - {"from", "default"} or "from" not in value:
        raise v.Invalid("expected a number or {from: 'property <id>' | 'rated power', "
                        "default: number}")
    source = " ".join(str(value["from"]).split())
    if not _LIMIT.fullmatch(source):
        raise v.Invalid(f"'from' must be 'property <point id>' or 'rated power', got "
                        f"{v.describe(value['from'])}", show_got=False)
    limit = RATED_POWER if source == "rated power" else property_limit(int(source.split()[1]))
    default = value.get("default")
    return Bound(limit=limit, default=None if default is None else _number(default))


def _step(value: Any) -> float:
    step: float = _number(value)
    if step <= 0:
        raise v.Invalid("expected a number above 0")
    return step


def _code(value: Any) -> str:
    """A wire code given as a whole number (YAML int) or its text."""
    code = wire_code(value) if isinstance(value, (int, str)) else None
    if code is None or not code.lstrip("-").isdigit():
        raise v.Invalid("expected a whole number")
    return code


def _options(value: Any) -> Dict[str, str]:
    """``{wire code: label}`` of a select: at least two, labels told apart case-insensitively."""
    if not isinstance(value, dict) or len(value) < 2:
        raise v.Invalid("expected a mapping of at least two codes to labels")
    labels = {_code(code): _name(label) for code, label in value.items()}
    if len({label.casefold() for label in labels.values()}) < len(labels):
        raise v.Invalid("two options have the same label", show_got=False)
    return labels


def _requires(value: Any) -> Dict[str, object]:
    """``{setting key: the HA value it must have}``; the values are checked once linked."""
    if not isinstance(value, dict) or not value:
        raise v.Invalid("expected a mapping of setting key to the value it must have")
    return {_setting_key(key): item for key, item in value.items()}


def _device_types(types: List[int]) -> FrozenSet[int]:
    if not types:
        raise v.Invalid("expected a non-empty list of device type numbers")
    return frozenset(types)


def _finish_entry(problems: v.Problems, path: str, values: Dict[str, Any]) -> None:
    """The rules that combine fields: what each component needs and what HA accepts."""
    component = values.get("component")
    if component is None:
        return
    for name, owner in _ONLY_FOR.items():
        if values.get(name) is not None and owner != component:
            problems.add(path, f"field {name!r} is only for a {owner}")
    for name in _NEEDS.get(component, ()):
        if name in values and values[name] is None:   # a field that failed is not in values
            problems.add(path, f"a {component} needs field {name!r}")
    device_class = values.get("device_class")
    if device_class and values.get("unit") not in DEVICE_CLASS_UNITS[device_class]:
        problems.add(path, f"unit {v.describe(values.get('unit'))} is not allowed for "
                           f"device_class {device_class!r}")
    scale, step = values.get("scale") or 1, values.get("step") or 1.0
    if abs(step * scale - round(step * scale)) > 1e-9 or round(step * scale) < 1:
        problems.add(f"{path}.step", f"{step:g} is finer than the wire resolution "
                                     f"(1/{scale} of a unit)")
    low, high = values.get("min"), values.get("max")
    if low and high and low.value is not None and high.value is not None and low.value > high.value:
        problems.add(path, f"min {low.value:g} is above max {high.value:g}")


# One entry of ``parameters``; optional fields default to None, meaning ParameterSpec's default.
_ENTRY = v.Section((
    v.Field("code", v.integer(1)),
    v.Field("key", _setting_key),
    v.Field("name", _name),
    v.Field("device_types", v.ListOf(v.integer(1), "a non-empty list of device type numbers",
                                     _device_types)),
    v.Field("component", v.choice(COMPONENTS)),
    v.Field("source", _name),
    v.Field("unit", v.optional(_name), None),
    v.Field("device_class", v.optional(v.choice(_NUMBER_DEVICE_CLASSES,
                                                "a Home Assistant number device class")), None),
    v.Field("scale", v.optional(v.integer(1)), None),
    v.Field("min", v.optional(_bound), None),
    v.Field("max", v.optional(_bound), None),
    v.Field("step", v.optional(_step), None),
    v.Field("mode", v.optional(v.choice(("auto", "box", "slider"))), None),
    v.Field("options", v.optional(_options), None),
    v.Field("on_value", v.optional(_code), None),
    v.Field("off_value", v.optional(_code), None),
    v.Field("press", v.optional(_code), None),
    v.Field("requires", v.optional(_requires), None),
    v.Field("icon", v.optional(v.matching(r"mdi:[a-z0-9-]+", "'mdi:<name>'")), None),
    v.Field("enabled", v.optional(v.boolean), None),
), finish=_finish_entry)


def _entries(value: Any) -> List[Any]:
    if not isinstance(value, list):
        raise v.Invalid("expected a list of entries")
    return value


_FILE = v.Section((v.Field("source", _name), v.Field("parameters", _entries)))


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


def _checked(walker: v.Walker, path: str, data: Any, section: v.Section) -> Any:
    """A section's built value, or FAILED with its problems (also "expected a mapping")."""
    try:
        return walker.section(path, data, section)
    except v.Invalid as exc:
        walker.problems.invalid(path, exc, data)
        return v.FAILED


def _link_requirements(specs: List[ParameterSpec], raw_requires: Dict[str, Dict[str, object]],
                       wheres: Dict[str, str], problems: v.Problems) -> List[ParameterSpec]:
    """Check each ``requires`` against the named entries and store the wire values it needs."""
    by_key = {spec.key: spec for spec in specs}
    linked = []
    for spec in specs:
        wires: Dict[str, str] = {}
        for key, value in raw_requires.get(spec.key, {}).items():
            other = by_key.get(key)
            where = f"{wheres[spec.key]}.requires"
            if other is None or not spec.device_types <= other.device_types:
                problems.add(where, f"{key!r} is not a setting of every device type of this "
                                    "entry")
                continue
            try:
                wires[key] = encode(other, value)
            except SettingError as exc:
                problems.add(where, str(exc))
        linked.append(dataclasses.replace(spec, requires=wires))
    return linked


def parse_parameters(content: str, label: str) -> ParameterCatalog:
    """Parameter catalog YAML text -> catalog; CatalogError listing every problem, one a line."""
    problems = v.Problems(label, log)
    walker = v.Walker(problems)
    doc = v.load_yaml(content, problems)
    top = v.FAILED if doc is v.FAILED else _checked(walker, "", doc, _FILE)
    specs: List[ParameterSpec] = []
    raw_requires: Dict[str, Dict[str, object]] = {}
    wheres: Dict[str, str] = {}
    taken: Dict[Tuple[int, Union[str, int]], str] = {}
    for index, raw in enumerate(top["parameters"] if top is not v.FAILED else []):
        where = f"parameters[{index}]"
        fields = _checked(walker, where, raw, _ENTRY)
        if fields is v.FAILED:
            continue
        idents = [(t, ident) for t in sorted(fields["device_types"])
                  for ident in (fields["key"], fields["code"])]
        clash = next((taken[ident] for ident in idents if ident in taken), None)
        if clash is not None:
            problems.add(where, f"key or code already used by {clash} for the same device type")
            continue
        taken.update(dict.fromkeys(idents, f"{where} ({fields['key']})"))
        raw_requires[fields["key"]] = fields.pop("requires") or {}
        wheres[fields["key"]] = where
        specs.append(ParameterSpec(**{k: v for k, v in fields.items() if v is not None}))
    specs = _link_requirements(specs, raw_requires, wheres, problems)
    problems.raise_if_any(CatalogError)
    return ParameterCatalog(specs)


def load_parameters(path: Optional[Union[str, Path]] = None) -> ParameterCatalog:
    """The built-in parameter catalog (appendix 10), or the file at ``path``."""
    if path is None:
        content = (resources.files("sungrow2mqtt.control") / "data" / BUILTIN_FILE).read_text(
            encoding="utf-8")
        return parse_parameters(content, BUILTIN_FILE)
    return parse_parameters(v.read_text(Path(path), str(path), CatalogError,
                                      "the parameter catalog"), str(path))
