"""Read, validate and merge the built-in catalog files and an optional user catalog file.

Every problem of a file is collected and reported in one :class:`CatalogError`, one line per
problem, most important first (file-level problems, then malformed entries, then duplicates, then
Home Assistant rule violations), each line naming the file and the entry::

    my_points.yaml: device_types.14[3] (id 13011): unknown field 'unti' (did you mean 'unit'?)
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple, Union, cast

from sungrow2mqtt.catalog.ha import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    ENTITY_CATEGORIES,
    NON_NUMERIC_DEVICE_CLASSES,
    STATE_CLASSES,
)
from sungrow2mqtt.catalog.spec import OPTIONAL, PointSpec
from sungrow2mqtt.errors import CatalogError
from sungrow2mqtt.validation import (
    FAILED,
    REQUIRED,
    Check,
    Field,
    Invalid,
    Problems,
    as_int,
    choice,
    describe,
    integer,
    load_yaml,
    matching,
    number,
    optional,
    read_text,
    text,
    unknown,
)

__all__ = ["Catalog", "load_catalog"]

log = logging.getLogger(__name__)

DEVICE_TYPES_FILE = "device_types.yaml"
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")

# Problem ranks: the first line of an error message is the most important problem.
_RANK_FILE = 0
_RANK_ENTRY = 1
_RANK_DUPLICATE = 2
_RANK_RULE = 3


def _key(value: object) -> str:
    """The stable entity key, which ends up in MQTT topics and unique ids."""
    key = text(value)
    if not KEY_PATTERN.match(key):
        raise Invalid(f"{key!r} is not snake_case ([a-z][a-z0-9_]*)", show_got=False)
    return key


def _scale(value: object) -> float:
    """The multiplier from API value to published value."""
    scale: float = number()(value)
    if scale == 0:
        raise Invalid("expected a finite, non-zero number")
    return scale


def _tier(value: object) -> object:
    """``enabled``: true, false or optional (polled, announced disabled in Home Assistant)."""
    if isinstance(value, bool) or value == OPTIONAL:
        return value
    hint = "spelled out, without quotes" if isinstance(value, str) else None
    raise Invalid(f"expected true, false or {OPTIONAL}", hint=hint)


def _options(value: object) -> Dict[str, str]:
    """The code -> label map of an enum point; codes are kept as text."""
    if not isinstance(value, dict) or not value:
        raise Invalid("expected a non-empty mapping of code to label")
    result: Dict[str, str] = {}
    for code, label in value.items():
        if isinstance(code, bool) or not isinstance(code, (int, str)):
            raise Invalid(f"code {describe(code)} must be an integer or a text", show_got=False)
        if not isinstance(label, str) or not label.strip():
            raise Invalid(f"label of code {code} must be a text, got {describe(label)}",
                          show_got=False)
        result[str(code).strip()] = label.strip()
    return result


# The fields of an entry; one without a default must be given when an entry adds a point.
_FIELD_TABLE: Tuple[Field, ...] = (
    Field("id", integer(1)),
    Field("key", _key),
    Field("name", text),
    Field("api_unit", optional(text), None),
    Field("unit", optional(text), None),
    Field("scale", _scale, 1.0),
    Field("device_class", optional(choice(sorted(DEVICE_CLASS_UNITS),
                                          "a Home Assistant sensor device class")), None),
    Field("state_class", optional(choice(sorted(STATE_CLASSES))), None),
    Field("icon", optional(matching(r"mdi:[a-z0-9-]+", "'mdi:<name>'")), None),
    Field("precision", optional(integer(0)), None),
    Field("enabled", _tier, True),
    Field("category", optional(choice(sorted(ENTITY_CATEGORIES))), None),
    Field("options", optional(_options), None),
    Field("source", text, None),  # default: the file's source
)
_FIELDS: Dict[str, Field] = {field.name: field for field in _FIELD_TABLE}
REQUIRED_FIELDS = tuple(field.name for field in _FIELD_TABLE if field.default is REQUIRED)
_DEFAULTS: Dict[str, object] = {
    field.name: field.default for field in _FIELD_TABLE if field.default is not REQUIRED}


@dataclass
class _Entry:
    """A catalog entry on its way to a PointSpec: fields so far and who last changed it."""

    fields: Dict[str, object]
    where: str
    problems: Problems

    def where_for(self, reader: Problems) -> str:
        """Location of the entry as seen from a message about ``reader``'s file."""
        if reader is self.problems:
            return self.where
        return f"{self.problems.source}: {self.where}"


def _entry_where(prefix: str, index: int, raw: object) -> str:
    """Location of an entry for messages: ``device_types.14[3] (id 13011)``."""
    where = f"{prefix}[{index}]"
    if isinstance(raw, dict):
        point_id = raw.get("id")
        if isinstance(point_id, int) and not isinstance(point_id, bool):
            where += f" (id {point_id})"
    return where


def _check_fields(raw: object, where: str, problems: Problems) -> Optional[Dict[str, object]]:
    """Check the fields one by one; None when the entry is unusable."""
    if not isinstance(raw, dict):
        problems.add(where, f"expected a mapping of fields, got {describe(raw)}", _RANK_ENTRY)
        return None
    fields: Dict[str, object] = {}
    usable = True
    for name, value in raw.items():
        field = _FIELDS.get(name) if isinstance(name, str) else None
        if field is None:
            problems.add(where, unknown(f"field {str(name)!r}", name, list(_FIELDS)), _RANK_ENTRY)
            continue
        try:
            fields[name] = cast(Check, field.check)(value)  # entry fields are plain checkers
        except Invalid as exc:
            problems.add(where, f"field {name!r}: {exc.render(value)}", _RANK_ENTRY)
            usable = usable and name != "id"
    if "id" not in raw:
        problems.add(where, "missing required field 'id'", _RANK_ENTRY)
        usable = False
    return fields if usable else None


def _check_rules(entry: _Entry) -> None:
    """Check the combination of fields against HA's rules (after user overrides are applied)."""
    fields = entry.fields
    add = entry.problems.add
    where = entry.where
    device_class = fields["device_class"]
    unit = fields["unit"]
    state_class = fields["state_class"]
    options = fields["options"]
    if options and device_class != "enum":
        add(where, "options need device_class 'enum'", _RANK_RULE)
    if device_class is None:
        return
    units = DEVICE_CLASS_UNITS[str(device_class)]
    if unit not in units:
        allowed = ", ".join(sorted("no unit" if u is None else repr(u) for u in units))
        add(where,
            f"unit {describe(unit)} not allowed for device_class {device_class!r} "
            f"(HA allows {allowed})", _RANK_RULE)
    state_classes = DEVICE_CLASS_STATE_CLASSES[str(device_class)]
    if state_class is not None and state_class not in state_classes:
        allowed = ", ".join(repr(s) for s in sorted(state_classes)) or "none"
        add(where,
            f"state_class {state_class!r} not allowed with device_class {device_class!r} "
            f"(HA allows {allowed})", _RANK_RULE)
    if device_class in NON_NUMERIC_DEVICE_CLASSES:
        if not options:
            add(where, f"device_class {device_class!r} needs 'options' (code: label)", _RANK_RULE)
        if fields["precision"] is not None:
            add(where, f"precision not allowed with device_class {device_class!r}", _RANK_RULE)
        if fields["scale"] != 1:
            add(where, f"scale not allowed with device_class {device_class!r}", _RANK_RULE)


class _TypeBuilder:
    """The entries of one device type, in file order, merged by point id."""

    def __init__(self, device_type: int) -> None:
        self.device_type = device_type
        self.entries: Dict[int, _Entry] = {}

    def add(self, fields: Dict[str, object], where: str, problems: Problems,
            source: str, override: bool, given: Set[str]) -> Optional[_Entry]:
        """Add a new entry or, when ``override``, change the given fields of an existing one."""
        point_id = int(str(fields["id"]))
        existing = self.entries.get(point_id)
        if existing is not None and override:
            existing.fields.update(fields)
            existing.where = where
            existing.problems = problems
            return existing
        if existing is not None:
            problems.add(where, f"duplicate id {point_id} (already used by {existing.where})",
                         _RANK_DUPLICATE)
            return None
        # a field given with a bad value is reported as bad, not again as missing
        missing = [name for name in REQUIRED_FIELDS if name not in fields and name not in given]
        for name in missing:
            why = f" (id {point_id} is not in the built-in catalog, so this entry adds a point)"
            problems.add(where, f"missing required field {name!r}" + (why if override else ""),
                         _RANK_ENTRY)
        if any(name not in fields for name in REQUIRED_FIELDS):
            return None
        merged: Dict[str, object] = dict(_DEFAULTS, source=source)
        merged.update(fields)
        entry = _Entry(merged, where, problems)
        self.entries[point_id] = entry
        return entry

    def check(self, only: Optional[Problems] = None) -> None:
        """Check rules and key uniqueness of the entries last changed by ``only`` (or all)."""
        by_key: Dict[str, _Entry] = {}
        for entry in self.entries.values():
            key = str(entry.fields["key"])
            first = by_key.setdefault(key, entry)
            if first is not entry and (only is None or entry.problems is only):
                entry.problems.add(entry.where,
                                   f"duplicate key {key!r} (already used by "
                                   f"{first.where_for(entry.problems)})", _RANK_DUPLICATE)
            elif first is not entry and first.problems is only:
                first.problems.add(first.where,
                                   f"duplicate key {key!r} (also used by "
                                   f"{entry.where_for(first.problems)})", _RANK_DUPLICATE)
            if only is None or entry.problems is only:
                _check_rules(entry)

    def specs(self) -> List[PointSpec]:
        """The finished, immutable entries."""
        return [_to_spec(self.device_type, entry.fields) for entry in self.entries.values()]


def _to_spec(device_type: int, fields: Mapping[str, Any]) -> PointSpec:
    """Freeze a validated field map."""
    return PointSpec(
        device_type=device_type,
        point_id=fields["id"],
        key=fields["key"],
        name=fields["name"],
        api_unit=fields["api_unit"],
        unit=fields["unit"],
        scale=fields["scale"],
        device_class=fields["device_class"],
        state_class=fields["state_class"],
        icon=fields["icon"],
        precision=fields["precision"],
        enabled=fields["enabled"],
        category=fields["category"],
        options=dict(fields["options"] or {}),
        source=fields["source"],
    )


def _check_top(doc: object, allowed: Mapping[str, bool], problems: Problems) -> Dict[str, Any]:
    """Check a file's top-level mapping: ``allowed`` maps each key to "required"."""
    if doc is FAILED:  # not YAML: that is the file's one problem
        return {}
    if not isinstance(doc, dict):
        problems.add("", f"expected a mapping at the top, got {describe(doc)}", _RANK_FILE)
        return {}
    for name in doc:
        if name not in allowed:
            problems.add("", unknown(f"top-level key {str(name)!r}", name, list(allowed)),
                         _RANK_FILE)
    for name, required in allowed.items():
        if required and name not in doc:
            problems.add("", f"missing top-level key {name!r}", _RANK_FILE)
    return doc


def _add_entries(builder: _TypeBuilder, raw_list: object, prefix: str, problems: Problems,
                 source: str, override: bool) -> None:
    """Check and add every entry of one device type's list."""
    if not isinstance(raw_list, list):
        problems.add(prefix, f"expected a list of entries, got {describe(raw_list)}", _RANK_FILE)
        return
    seen_ids: Dict[int, str] = {}
    for index, raw in enumerate(raw_list):
        where = _entry_where(prefix, index, raw)
        fields = _check_fields(raw, where, problems)
        if fields is None:
            continue
        point_id = int(str(fields["id"]))
        if point_id in seen_ids:
            problems.add(where, f"duplicate id {point_id} (already used by {seen_ids[point_id]})",
                         _RANK_DUPLICATE)
            continue
        seen_ids[point_id] = where
        given = {str(name) for name in raw} if isinstance(raw, dict) else set()
        builder.add(fields, where, problems, source, override, given)


def _builtin_data() -> Any:
    """The package's data folder (works from a wheel or a source tree)."""
    return resources.files("sungrow2mqtt.catalog") / "data"


def _builtin_files() -> Iterator[Tuple[str, str]]:
    """(file name, text) of every built-in per-device-type file, in name order."""
    data = _builtin_data()
    for item in sorted(data.iterdir(), key=lambda entry: entry.name):
        if item.name.endswith(".yaml") and item.name != DEVICE_TYPES_FILE:
            yield item.name, item.read_text(encoding="utf-8")


def _load_device_type_names() -> Dict[int, str]:
    """Appendix 1 of the Open API document: device type number -> English name."""
    problems = Problems(DEVICE_TYPES_FILE)
    content = (_builtin_data() / DEVICE_TYPES_FILE).read_text(encoding="utf-8")
    doc = _check_top(load_yaml(content, problems), {"source": True, "device_types": True},
                     problems)
    names: Dict[int, str] = {}
    table = doc.get("device_types")
    if not isinstance(table, dict):
        problems.add("device_types", "expected a mapping of number to name", _RANK_FILE)
    else:
        for number, name in table.items():
            if isinstance(number, bool) or not isinstance(number, int) or not isinstance(name, str):
                problems.add(f"device_types.{number}", "expected number: name", _RANK_ENTRY)
            else:
                names[number] = name
    problems.raise_if_any(CatalogError)
    return names


def _load_builtin(builders: Dict[int, _TypeBuilder]) -> None:
    """Load and fully validate every built-in file (an error here is a bug of the package)."""
    owners: Dict[int, str] = {}
    for file_name, content in _builtin_files():
        problems = Problems(file_name)
        doc = _check_top(load_yaml(content, problems),
                         {"device_type": True, "source": True, "points": True}, problems)
        device_type = doc.get("device_type")
        source = doc.get("source")
        if isinstance(device_type, bool) or not isinstance(device_type, int):
            problems.add("device_type", f"expected an integer, got {describe(device_type)}",
                         _RANK_FILE)
        elif device_type in owners:
            problems.add("device_type", f"device type {device_type} is already defined in "
                                        f"{owners[device_type]}", _RANK_FILE)
        elif not isinstance(source, str) or not source.strip():
            problems.add("source", "expected the table this file comes from", _RANK_FILE)
        else:
            owners[device_type] = file_name
            builder = builders.setdefault(device_type, _TypeBuilder(device_type))
            _add_entries(builder, doc.get("points"), "points", problems, source.strip(),
                         override=False)
            builder.check(problems)
        problems.raise_if_any(CatalogError)
        log.debug("Loaded built-in catalog file %s", file_name)


def _apply_user_doc(doc: object, problems: Problems, builders: Dict[int, _TypeBuilder]) -> None:
    """Merge a parsed user file into the built-in entries, recording every problem."""
    top = _check_top(doc, {"device_types": True, "source": False}, problems)
    source = f"user catalog {problems.source}"
    if "source" in top:
        try:
            source = text(top["source"]).strip()
        except Invalid as exc:
            problems.add("source", exc.render(top["source"]), _RANK_FILE)
    types = top.get("device_types")
    if "device_types" in top and not isinstance(types, dict):
        problems.add("device_types",
                     f"expected a mapping of device type number to a list of entries, "
                     f"got {describe(types)}", _RANK_FILE)
        return
    for raw_type, raw_list in (types or {}).items():
        device_type = as_int(raw_type)  # 14 or "14"
        prefix = f"device_types.{raw_type}"
        if device_type is None or device_type <= 0:
            problems.add(prefix, "a device type must be a positive integer", _RANK_FILE)
            continue
        builder = builders.setdefault(device_type, _TypeBuilder(device_type))
        _add_entries(builder, raw_list, prefix, problems, source, override=True)
    for builder in builders.values():
        builder.check(problems)


def _parse_user_text(content: str, file_label: str,
                     builders: Dict[int, _TypeBuilder]) -> Dict[int, List[PointSpec]]:
    """Merge user catalog text into the built-in entries; raise CatalogError on any problem."""
    problems = Problems(file_label)
    doc = load_yaml(content, problems)
    if doc is not FAILED:
        _apply_user_doc(doc, problems, builders)
    problems.raise_if_any(CatalogError)
    return {number: builder.specs() for number, builder in builders.items()}


_NONE_ENABLED: Mapping[str, PointSpec] = MappingProxyType({})


class Catalog:
    """All known points per device type, so bridge and discovery never special-case a point."""

    def __init__(self, points: Mapping[int, List[PointSpec]],
                 type_names: Mapping[int, str]) -> None:
        self._points: Dict[int, List[PointSpec]] = {
            number: list(specs) for number, specs in points.items() if specs
        }
        self._by_id: Dict[Tuple[int, int], PointSpec] = {
            (spec.device_type, spec.point_id): spec
            for specs in self._points.values() for spec in specs
        }
        self._enabled: Dict[int, Mapping[str, PointSpec]] = {
            number: MappingProxyType({spec.key: spec for spec in specs if spec.polled})
            for number, specs in self._points.items()
        }
        self._type_names = dict(type_names)

    def for_device_type(self, device_type: int) -> List[PointSpec]:
        """Every entry of a device type, enabled or not, in catalog order."""
        return list(self._points.get(device_type, []))

    def enabled(self, device_type: int) -> List[PointSpec]:
        """The entries polled and announced to HA (enabled there or not: see PointSpec.enabled)."""
        return list(self.enabled_by_key(device_type).values())

    def enabled_by_key(self, device_type: int) -> Mapping[str, PointSpec]:
        """:meth:`enabled` by key, in catalog order: built once, as a state's keys are looked
        up here for every entity announced."""
        return self._enabled.get(device_type, _NONE_ENABLED)

    def get(self, device_type: int, point_id: int) -> Optional[PointSpec]:
        """The entry of one point, or None when the catalog does not know it."""
        return self._by_id.get((device_type, point_id))

    def device_types(self) -> List[int]:
        """Device types with at least one entry, ascending."""
        return sorted(self._points)

    def device_type_name(self, device_type: int) -> str:
        """English name of a device type (appendix 1), for HA device models and logs."""
        return self._type_names.get(device_type, f"Device type {device_type}")

    def __len__(self) -> int:
        """Number of entries over all device types."""
        return len(self._by_id)

    def __repr__(self) -> str:
        """Short summary for logs and debugging."""
        return f"<Catalog {len(self._points)} device types, {len(self._by_id)} points>"


def load_catalog(user_file: Optional[Union[str, Path]] = None) -> Catalog:
    """Built-in catalog plus the user's additions, overrides and disabled points."""
    builders: Dict[int, _TypeBuilder] = {}
    _load_builtin(builders)
    type_names = _load_device_type_names()
    if user_file is None:
        points = {number: builder.specs() for number, builder in builders.items()}
    else:
        label = str(user_file)
        content = read_text(Path(user_file), label, CatalogError, what="catalog file")
        points = _parse_user_text(content, label, builders)
        log.info("Applied user point catalog %s", label)
    return Catalog(points, type_names)
