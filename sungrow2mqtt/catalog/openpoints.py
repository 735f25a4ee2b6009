"""Turn getOpenPointInfo rows into user catalog YAML, so new points need no code change."""
from __future__ import annotations

import json
import logging
import re
import textwrap
from typing import Iterable, List, Mapping, Optional, Set

import yaml

from sungrow2mqtt.catalog.ha import guess_from_units
from sungrow2mqtt.catalog.loader import KEY_PATTERN, Catalog, load_catalog

__all__ = ["open_points_to_yaml", "sentence_case", "snake_key"]

log = logging.getLogger(__name__)

_MAX_KEY_LENGTH = 60
_PLAIN_SAFE = re.compile(r"^[A-Za-z][\w .()/°²-]*$")


def snake_key(name: str) -> Optional[str]:
    """A snake_case entity key from an English point name, or None if it yields none."""
    if not name.isascii():
        return None
    key = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:_MAX_KEY_LENGTH].rstrip("_")
    return key if KEY_PATTERN.match(key) else None


def _sentence_word(word: str) -> str:
    """Lower-case a Capitalised word; keep acronyms (PV, SOC), codes (MPPT1) and phase letters."""
    if "-" in word:
        return "-".join(_sentence_word(part) for part in word.split("-"))
    letters = [char for char in word if char.isalpha()]
    if len(letters) <= 1 or not letters[0].isupper() or not all(c.islower() for c in letters[1:]):
        return word
    first = word.index(letters[0])
    return word[:first] + word[first].lower() + word[first + 1:]


def sentence_case(name: str) -> str:
    """HA wants entity names in sentence case: "Total Active Power" -> "Total active power"."""
    words = name.split()
    if not words:
        return ""
    first = words[0][:1].upper() + words[0][1:]
    return " ".join([first] + [_sentence_word(word) for word in words[1:]])


def _yaml_scalar(value: object) -> str:
    """One YAML scalar: plain when YAML reads it back unchanged, else JSON-quoted (valid YAML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN_SAFE.match(text):
        try:
            if yaml.safe_load(f"k: {text}") == {"k": text}:
                return text
        except yaml.YAMLError:
            pass
    return json.dumps(text, ensure_ascii=False)


def _unique_key(wanted: Optional[str], point_id: int, taken: Set[str]) -> str:
    """A key not used yet in this device type: the name's, else with the id, else point_<id>."""
    for candidate in (wanted, f"{wanted}_{point_id}" if wanted else None, f"point_{point_id}"):
        if candidate and KEY_PATTERN.match(candidate) and candidate not in taken:
            return candidate
    return f"point_{point_id}_{len(taken)}"


def _row_id(row: Mapping[str, object]) -> Optional[int]:
    """The point id of a row, which the API may send as number or text."""
    value = row.get("point_id")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _text_field(row: Mapping[str, object], name: str) -> str:
    """A text field of a row; absent or null -> ""."""
    value = row.get(name)
    return value.strip() if isinstance(value, str) else ""


def _entry_lines(point_id: int, key: str, row: Mapping[str, object]) -> List[str]:
    """The YAML lines of one generated, disabled entry."""
    raw_name = _text_field(row, "point_name")
    name = sentence_case(raw_name) if raw_name and raw_name.isascii() else f"Point {point_id}"
    api_unit, guess = guess_from_units(_text_field(row, "storage_unit"),
                                       _text_field(row, "show_unit"))
    original = f"  # {raw_name}" if raw_name and not raw_name.isascii() else ""
    fields = [
        ("key", key), ("name", name), ("api_unit", api_unit), ("unit", guess.unit),
        ("scale", guess.scale), ("device_class", guess.device_class),
        ("state_class", guess.state_class), ("precision", guess.precision),
        ("enabled", False),
    ]
    lines = [f"    - id: {point_id}"]
    for field_name, value in fields:
        suffix = original if field_name == "name" else ""
        lines.append(f"      {field_name}: {_yaml_scalar(value)}{suffix}")
    remark = _text_field(row, "open_point_remark")
    if remark:
        lines.insert(1, f"      # {' '.join(remark.split())}")
    return lines


def open_points_to_yaml(device_type: int, rows: Iterable[Mapping[str, object]],
                        catalog: Optional[Catalog] = None) -> str:
    """Turn getOpenPointInfo pageList rows into user catalog YAML for points the catalog lacks.

    Keys come from the English name (ASCII only; other names give ``point_<id>``), unit,
    scale, device_class and state_class from the storage unit by the catalog's own rules (no
    storage unit but shown in % is a 0-1 fraction: scale 100), and every entry is disabled.
    Points ``catalog`` (default: the built-in one) already knows are left out, so pasting the
    output never changes or clashes with an existing entry.
    """
    known = catalog if catalog is not None else load_catalog()
    taken = {spec.key for spec in known.for_device_type(device_type)}
    seen_ids: Set[int] = set()
    body: List[str] = []
    skipped: List[str] = []
    for row in rows:
        point_id = _row_id(row)
        if point_id is None or point_id in seen_ids:
            log.debug("Skipping open point row without a usable id: %r", row)
            continue
        seen_ids.add(point_id)
        if known.get(device_type, point_id) is not None:
            skipped.append(str(point_id))
            continue
        key = _unique_key(snake_key(_text_field(row, "point_name")), point_id, taken)
        taken.add(key)
        body.extend(_entry_lines(point_id, key, row))
    type_name = known.device_type_name(device_type)
    header = [
        f"# Points of device type {device_type} ({type_name}) reported by getOpenPointInfo.",
        "# Units and HA classes are guessed from the storage unit; every entry is disabled:",
        "# check name, unit and scale, then set 'enabled: true' (or 'optional': polled, off in",
        "# Home Assistant until switched on there) for the points you want.",
    ]
    if skipped:
        header += textwrap.wrap(f"Already in the catalog, left out: {', '.join(skipped)}",
                                width=98, initial_indent="# ", subsequent_indent="# ")
    header += [
        f"source: {_yaml_scalar(f'getOpenPointInfo, device_type {device_type}')}",
        "device_types:",
    ]
    if not body:
        header.append(f"  {device_type}: []")
        return "\n".join(header) + "\n"
    return "\n".join(header + [f"  {device_type}:"] + body) + "\n"
