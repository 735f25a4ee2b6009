"""Read, validate and merge the built-in catalog files and an optional user catalog file.

Every problem of a file is collected and reported in one :class:`CatalogError`, one line per
problem, most important first (file-level problems, then malformed entries, then duplicates, then
Home Assistant rule violations), each line naming the file and the entry::

    my_points.yaml: device_types.14[3] (id 13011): unknown field 'unti' (did you mean 'unit'?)
"""
from __future__ import annotations

import difflib
import logging
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Set, Tuple, Union

import yaml

from sungrow2mqtt.catalog.ha import (
    DEVICE_CLASS_STATE_CLASSES,
    DEVICE_CLASS_UNITS,
    ENTITY_CATEGORIES,
    NON_NUMERIC_DEVICE_CLASSES,
    STATE_CLASSES,
)
from sungrow2mqtt.catalog.spec import OPTIONAL, PointSpec
from sungrow2mqtt.errors import CatalogError

__all__ = ["Catalog", "load_catalog"]

log = logging.getLogger(__name__)

DEVICE_TYPES_FILE = "device_types.yaml"
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
REQUIRED_FIELDS = ("id", "key", "name")

# Problem ranks: the first line of an error message is the most important problem.
_RANK_FILE = 0
_RANK_ENTRY = 1
_RANK_DUPLICATE = 2
_RANK_RULE = 3


class _FieldError(Exception):
    """A field value that does not fit the schema.

    The message completes "field '<name>': ...", unless ``complete`` says it names the field.
    """

    def __init__(self, message: str, complete: bool = False) -> None:
        super().__init__(message)
        self.complete = complete


def _describe(value: object) -> str:
    """Show a wrong value the way the user wrote it in YAML."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _optional(check: Callable[[object], object]) -> Callable[[object], object]:
    """Let a field checker accept null as "not set"."""

    def checker(value: object) -> object:
        return None if value is None else check(value)

    return checker


def _int(minimum: int) -> Callable[[object], object]:
    """Checker for whole numbers from ``minimum`` up (YAML booleans are not numbers)."""

    def checker(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _FieldError(f"expected an integer, got {_describe(value)}")
        if value < minimum:
            raise _FieldError(f"expected an integer >= {minimum}, got {value}")
        return value

    return checker


def _text(value: object) -> object:
    """Checker for a non-empty string."""
    if not isinstance(value, str):
        raise _FieldError(f"expected a text, got {_describe(value)}")
    if not value.strip():
        raise _FieldError("must not be empty")
    return value.strip()


def _key(value: object) -> object:
    """Checker for the stable entity key, which ends up in MQTT topics and unique ids."""
    text = _text(value)
    if not KEY_PATTERN.match(str(text)):
        raise _FieldError(f"{text!r} is not snake_case ([a-z][a-z0-9_]*)")
    return text


def _scale(value: object) -> object:
    """Checker for the multiplier from API value to published value."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _FieldError(f"expected a number, got {_describe(value)}")
    if not math.isfinite(value) or value == 0:
        raise _FieldError(f"expected a finite, non-zero number, got {value}")
    return float(value)


def _tier(value: object) -> object:
    """Checker for ``enabled``: true, false or optional (polled, announced disabled in HA)."""
    if not isinstance(value, bool) and value != OPTIONAL:
        raise _FieldError(f"expected true, false or {OPTIONAL}, got {_describe(value)}")
    return value


def _one_of(choices: Any, what: str) -> Callable[[object], object]:
    """Checker for a text out of a fixed set."""

    def checker(value: object) -> object:
        text = _text(value)
        if text not in choices:
            hint = difflib.get_close_matches(str(text), list(choices), n=1)
            if hint:
                expected = f"did you mean {hint[0]!r}?"
            else:
                expected = f"expected one of {', '.join(sorted(choices))}"
            raise _FieldError(f"unknown {what} {text!r} ({expected})", complete=True)
        return text

    return checker


def _icon(value: object) -> object:
    """Checker for a Material Design icon name as HA expects it."""
    text = _text(value)
    if not re.match(r"^mdi:[a-z0-9-]+$", str(text)):
        raise _FieldError(f"expected 'mdi:<name>', got {text!r}")
    return text


def _options(value: object) -> object:
    """Checker for the code -> label map of an enum point; codes are kept as text."""
    if not isinstance(value, dict) or not value:
        raise _FieldError(f"expected a non-empty mapping of code to label, got {_describe(value)}")
    result: Dict[str, str] = {}
    for code, label in value.items():
        if isinstance(code, bool) or not isinstance(code, (int, str)):
            raise _FieldError(f"code {_describe(code)} must be an integer or a text")
        if not isinstance(label, str) or not label.strip():
            raise _FieldError(f"label of code {code} must be a text, got {_describe(label)}")
        result[str(code).strip()] = label.strip()
    return result


_FIELDS: Dict[str, Callable[[object], object]] = {
    "id": _int(1),
    "key": _key,
    "name": _text,
    "api_unit": _optional(_text),
    "unit": _optional(_text),
    "scale": _scale,
    "device_class": _optional(_one_of(DEVICE_CLASS_UNITS, "device_class")),
    "state_class": _optional(_one_of(STATE_CLASSES, "state_class")),
    "icon": _optional(_icon),
    "precision": _optional(_int(0)),
    "enabled": _tier,
    "category": _optional(_one_of(ENTITY_CATEGORIES, "category")),
    "options": _optional(_options),
    "source": _text,
}

_DEFAULTS: Dict[str, object] = {
    "api_unit": None,
    "unit": None,
    "scale": 1.0,
    "device_class": None,
    "state_class": None,
    "icon": None,
    "precision": None,
    "enabled": True,
    "category": None,
    "options": None,
}


@dataclass
class _Problems:
    """The problems found in one file, reported together when the file is done."""

    file: str
    items: List[Tuple[int, int, str]] = field(default_factory=list)

    def add(self, rank: int, where: str, message: str) -> None:
        """Remember one problem; ``where`` is the entry location or "" for the whole file."""
        prefix = f"{self.file}: {where}: " if where else f"{self.file}: "
        self.items.append((rank, len(self.items), prefix + message))

    def raise_if_any(self) -> None:
        """Raise one CatalogError listing every problem, most important first."""
        if self.items:
            lines = [text for _, _, text in sorted(self.items)]
            raise CatalogError("\n".join(lines))


# libyaml's parser when PyYAML was built with it: the built-in files are parsed on every load.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc]
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> Dict[Any, Any]:
    """Build a mapping and fail on a repeated key, naming its line."""
    seen: Dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            hash(key)
        except TypeError:
            continue  # the base constructor reports unhashable keys itself
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice (first on line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    mapping: Dict[Any, Any] = loader.construct_mapping(node)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _load_yaml(text: str, problems: _Problems) -> object:
    """Parse YAML text, turning syntax errors into a one-line problem with the line number."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.add(_RANK_FILE, where, f"YAML syntax error: {reason}")
        return None


@dataclass
class _Entry:
    """A catalog entry on its way to a PointSpec: fields so far and who last changed it."""

    fields: Dict[str, object]
    where: str
    problems: _Problems

    def where_for(self, reader: _Problems) -> str:
        """Location of the entry as seen from a message about ``reader``'s file."""
        if reader is self.problems:
            return self.where
        return f"{self.problems.file}: {self.where}"


def _entry_where(prefix: str, index: int, raw: object) -> str:
    """Location of an entry for messages: ``device_types.14[3] (id 13011)``."""
    where = f"{prefix}[{index}]"
    if isinstance(raw, dict):
        point_id = raw.get("id")
        if isinstance(point_id, int) and not isinstance(point_id, bool):
            where += f" (id {point_id})"
    return where


def _check_fields(raw: object, where: str, problems: _Problems) -> Optional[Dict[str, object]]:
    """Check the fields one by one; None when the entry is unusable."""
    if not isinstance(raw, dict):
        problems.add(_RANK_ENTRY, where, f"expected a mapping of fields, got {_describe(raw)}")
        return None
    fields: Dict[str, object] = {}
    usable = True
    for name, value in raw.items():
        checker = _FIELDS.get(name) if isinstance(name, str) else None
        if checker is None:
            hint = difflib.get_close_matches(str(name), list(_FIELDS), n=1)
            suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.add(_RANK_ENTRY, where, f"unknown field {str(name)!r}{suffix}")
            continue
        try:
            fields[name] = checker(value)
        except _FieldError as exc:
            problems.add(_RANK_ENTRY, where, str(exc) if exc.complete else f"field {name!r}: {exc}")
            usable = usable and name != "id"
    if "id" not in raw:
        problems.add(_RANK_ENTRY, where, "missing required field 'id'")
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
        add(_RANK_RULE, where, "options need device_class 'enum'")
    if device_class is None:
        return
    units = DEVICE_CLASS_UNITS[str(device_class)]
    if unit not in units:
        allowed = ", ".join(sorted("no unit" if u is None else repr(u) for u in units))
        add(_RANK_RULE, where,
            f"unit {_describe(unit)} not allowed for device_class {device_class!r} "
            f"(HA allows {allowed})")
    state_classes = DEVICE_CLASS_STATE_CLASSES[str(device_class)]
    if state_class is not None and state_class not in state_classes:
        allowed = ", ".join(repr(s) for s in sorted(state_classes)) or "none"
        add(_RANK_RULE, where,
            f"state_class {state_class!r} not allowed with device_class {device_class!r} "
            f"(HA allows {allowed})")
    if device_class in NON_NUMERIC_DEVICE_CLASSES:
        if not options:
            add(_RANK_RULE, where, f"device_class {device_class!r} needs 'options' (code: label)")
        if fields["precision"] is not None:
            add(_RANK_RULE, where, f"precision not allowed with device_class {device_class!r}")
        if fields["scale"] != 1:
            add(_RANK_RULE, where, f"scale not allowed with device_class {device_class!r}")


class _TypeBuilder:
    """The entries of one device type, in file order, merged by point id."""

    def __init__(self, device_type: int) -> None:
        self.device_type = device_type
        self.entries: Dict[int, _Entry] = {}

    def add(self, fields: Dict[str, object], where: str, problems: _Problems,
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
            problems.add(_RANK_DUPLICATE, where,
                         f"duplicate id {point_id} (already used by {existing.where})")
            return None
        # a field given with a bad value is reported as bad, not again as missing
        missing = [name for name in REQUIRED_FIELDS if name not in fields and name not in given]
        for name in missing:
            why = f" (id {point_id} is not in the built-in catalog, so this entry adds a point)"
            problems.add(_RANK_ENTRY, where,
                         f"missing required field {name!r}" + (why if override else ""))
        if any(name not in fields for name in REQUIRED_FIELDS):
            return None
        merged: Dict[str, object] = dict(_DEFAULTS, source=source)
        merged.update(fields)
        entry = _Entry(merged, where, problems)
        self.entries[point_id] = entry
        return entry

    def check(self, only: Optional[_Problems] = None) -> None:
        """Check rules and key uniqueness of the entries last changed by ``only`` (or all)."""
        by_key: Dict[str, _Entry] = {}
        for entry in self.entries.values():
            key = str(entry.fields["key"])
            first = by_key.setdefault(key, entry)
            if first is not entry and (only is None or entry.problems is only):
                entry.problems.add(_RANK_DUPLICATE, entry.where,
                                   f"duplicate key {key!r} (already used by "
                                   f"{first.where_for(entry.problems)})")
            elif first is not entry and first.problems is only:
                first.problems.add(_RANK_DUPLICATE, first.where,
                                   f"duplicate key {key!r} (also used by "
                                   f"{entry.where_for(first.problems)})")
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


def _check_top(doc: object, allowed: Mapping[str, bool], problems: _Problems) -> Dict[str, Any]:
    """Check a file's top-level mapping: ``allowed`` maps each key to "required"."""
    if not isinstance(doc, dict):
        problems.add(_RANK_FILE, "", f"expected a mapping at the top, got {_describe(doc)}")
        return {}
    for name in doc:
        if name not in allowed:
            hint = difflib.get_close_matches(str(name), list(allowed), n=1)
            suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.add(_RANK_FILE, "", f"unknown top-level key {str(name)!r}{suffix}")
    for name, required in allowed.items():
        if required and name not in doc:
            problems.add(_RANK_FILE, "", f"missing top-level key {name!r}")
    return doc


def _add_entries(builder: _TypeBuilder, raw_list: object, prefix: str, problems: _Problems,
                 source: str, override: bool) -> None:
    """Check and add every entry of one device type's list."""
    if not isinstance(raw_list, list):
        problems.add(_RANK_FILE, prefix, f"expected a list of entries, got {_describe(raw_list)}")
        return
    seen_ids: Dict[int, str] = {}
    for index, raw in enumerate(raw_list):
        where = _entry_where(prefix, index, raw)
        fields = _check_fields(raw, where, problems)
        if fields is None:
            continue
        point_id = int(str(fields["id"]))
        if point_id in seen_ids:
            problems.add(_RANK_DUPLICATE, where,
                         f"duplicate id {point_id} (already used by {seen_ids[point_id]})")
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
    problems = _Problems(DEVICE_TYPES_FILE)
    text = (_builtin_data() / DEVICE_TYPES_FILE).read_text(encoding="utf-8")
    doc = _check_top(_load_yaml(text, problems), {"source": True, "device_types": True},
                     problems)
    names: Dict[int, str] = {}
    table = doc.get("device_types")
    if not isinstance(table, dict):
        problems.add(_RANK_FILE, "device_types", "expected a mapping of number to name")
    else:
        for number, name in table.items():
            if isinstance(number, bool) or not isinstance(number, int) or not isinstance(name, str):
                problems.add(_RANK_ENTRY, f"device_types.{number}", "expected number: name")
            else:
                names[number] = name
    problems.raise_if_any()
    return names


def _load_builtin(builders: Dict[int, _TypeBuilder]) -> None:
    """Load and fully validate every built-in file (an error here is a bug of the package)."""
    owners: Dict[int, str] = {}
    for file_name, text in _builtin_files():
        problems = _Problems(file_name)
        doc = _check_top(_load_yaml(text, problems),
                         {"device_type": True, "source": True, "points": True}, problems)
        device_type = doc.get("device_type")
        source = doc.get("source")
        if isinstance(device_type, bool) or not isinstance(device_type, int):
            problems.add(_RANK_FILE, "device_type", f"expected an integer, got "
                                                    f"{_describe(device_type)}")
        elif device_type in owners:
            problems.add(_RANK_FILE, "device_type",
                         f"device type {device_type} is already defined in {owners[device_type]}")
        elif not isinstance(source, str) or not source.strip():
            problems.add(_RANK_FILE, "source", "expected the table this file comes from")
        else:
            owners[device_type] = file_name
            builder = builders.setdefault(device_type, _TypeBuilder(device_type))
            _add_entries(builder, doc.get("points"), "points", problems, source.strip(),
                         override=False)
            builder.check(problems)
        problems.raise_if_any()
        log.debug("Loaded built-in catalog file %s", file_name)


def _device_type_number(value: object) -> Optional[int]:
    """A device type key of the user file: 14 or "14"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str) and value.strip().isdigit() and int(value) > 0:
        return int(value)
    return None


def _apply_user_doc(doc: object, problems: _Problems, builders: Dict[int, _TypeBuilder]) -> None:
    """Merge a parsed user file into the built-in entries, recording every problem."""
    top = _check_top(doc, {"device_types": True, "source": False}, problems)
    source = top.get("source", f"user catalog {problems.file}")
    if not isinstance(source, str) or not source.strip():
        problems.add(_RANK_FILE, "source", f"expected a text, got {_describe(source)}")
        source = f"user catalog {problems.file}"
    types = top.get("device_types")
    if "device_types" in top and not isinstance(types, dict):
        problems.add(_RANK_FILE, "device_types",
                     f"expected a mapping of device type number to a list of entries, "
                     f"got {_describe(types)}")
        return
    for raw_type, raw_list in (types or {}).items():
        device_type = _device_type_number(raw_type)
        prefix = f"device_types.{raw_type}"
        if device_type is None:
            problems.add(_RANK_FILE, prefix, "a device type must be a positive integer")
            continue
        builder = builders.setdefault(device_type, _TypeBuilder(device_type))
        _add_entries(builder, raw_list, prefix, problems, source.strip(), override=True)
    for builder in builders.values():
        builder.check(problems)


def _parse_user_text(text: str, file_label: str,
                     builders: Dict[int, _TypeBuilder]) -> Dict[int, List[PointSpec]]:
    """Merge user catalog text into the built-in entries; raise CatalogError on any problem."""
    problems = _Problems(file_label)
    doc = _load_yaml(text, problems)
    if not problems.items:
        _apply_user_doc(doc, problems, builders)
    problems.raise_if_any()
    return {number: builder.specs() for number, builder in builders.items()}


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
        self._type_names = dict(type_names)

    def for_device_type(self, device_type: int) -> List[PointSpec]:
        """Every entry of a device type, enabled or not, in catalog order."""
        return list(self._points.get(device_type, []))

    def enabled(self, device_type: int) -> List[PointSpec]:
        """The entries polled and announced to HA (enabled there or not: see PointSpec.enabled)."""
        return [spec for spec in self._points.get(device_type, []) if spec.polled]

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


def _read_user_file(path: Path, label: str) -> str:
    """Read the user file, turning OS errors into a one-line CatalogError."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"{label}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CatalogError(f"{label}: cannot read catalog file: {reason}") from None


def load_catalog(user_file: Optional[Union[str, Path]] = None) -> Catalog:
    """Built-in catalog plus the user's additions, overrides and disabled points."""
    builders: Dict[int, _TypeBuilder] = {}
    _load_builtin(builders)
    type_names = _load_device_type_names()
    if user_file is None:
        points = {number: builder.specs() for number, builder in builders.items()}
    else:
        label = str(user_file)
        text = _read_user_file(Path(user_file), label)
        points = _parse_user_text(text, label, builders)
        log.info("Applied user point catalog %s", label)
    return Catalog(points, type_names)
