"""User catalog files: additions, overrides, disabling, and one clear line per problem."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import List

import pytest

from sungrow2mqtt.catalog import Catalog, load_catalog
from sungrow2mqtt.errors import CatalogError


def new_point(key: str = "my_point") -> str:
    """A complete new entry of device type 14, indented for a ``device_types.14`` list."""
    return textwrap.indent(textwrap.dedent(f"""\
        - id: 13999
          key: {key}
          name: My point
          api_unit: W
          unit: W
          device_class: power
          state_class: measurement
        """), "    ")


def write(tmp_path: Path, body: str, name: str = "my_points.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def load(tmp_path: Path, body: str) -> Catalog:
    return load_catalog(write(tmp_path, body))


def problems(tmp_path: Path, body: str) -> List[str]:
    """The lines of the CatalogError a user file raises."""
    path = write(tmp_path, body)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    lines = str(info.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return [line[len(f"{path}: "):] for line in lines]


def one_problem(tmp_path: Path, body: str) -> str:
    lines = problems(tmp_path, body)
    assert len(lines) == 1, lines
    return lines[0]


def test_add_override_disable(tmp_path: Path) -> None:
    builtin = load_catalog()
    catalog = load(tmp_path, textwrap.dedent("""\
        source: my additions
        device_types:
          55:
            - id: 1
              key: daily_yield
              name: Daily yield
              api_unit: Wh
              unit: kWh
              scale: 0.001
              device_class: energy
              state_class: total_increasing
          14:
            - id: 13141
              scale: 1
            - id: 13119
              enabled: false
        """) + new_point())
    soc = catalog.get(14, 13141)
    before = builtin.get(14, 13141)
    assert soc is not None and before is not None
    assert soc.scale == 1 and soc.convert("87") == 87
    assert (soc.key, soc.name, soc.unit, soc.device_class, soc.source) == (
        before.key, before.name, before.unit, before.device_class, before.source)
    load_power = catalog.get(14, 13119)
    assert load_power is not None and not load_power.enabled
    assert load_power not in catalog.enabled(14)
    assert load_power.key not in catalog.enabled_by_key(14)
    added = catalog.get(14, 13999)
    assert added is not None and added.enabled and added.source == "my additions"
    assert added.convert("12.5") == 12.5
    assert catalog.enabled_by_key(14)[added.key] is added
    assert catalog.for_device_type(14)[-1] == added
    assert len(catalog.for_device_type(14)) == len(builtin.for_device_type(14)) + 1
    assert 55 in catalog.device_types()
    assert catalog.device_type_name(55) == "Microinverter"


def test_numeric_device_type_keys_may_be_quoted(tmp_path: Path) -> None:
    catalog = load(tmp_path, """\
    device_types:
      "14":
        - id: 13119
          enabled: false
    """)
    spec = catalog.get(14, 13119)
    assert spec is not None and not spec.enabled


def test_override_can_turn_point_into_enum(tmp_path: Path) -> None:
    catalog = load(tmp_path, """\
    device_types:
      43:
        - id: 58608
          device_class: enum
          options: {0: Idle, 1: Charging, 2: Discharging}
    """)
    spec = catalog.get(43, 58608)
    assert spec is not None and spec.convert("1") == "Charging"


def test_empty_device_types_is_fine(tmp_path: Path) -> None:
    assert len(load(tmp_path, "device_types: {}\n")) == len(load_catalog())


def test_unknown_field(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13003
          enabled: true
        - id: 13007
          enabled: true
        - id: 13008
          enabled: true
        - id: 13011
          unti: kW
    """) == "device_types.14[3] (id 13011): unknown field 'unti' (did you mean 'unit'?)"


def test_missing_required_field_of_new_point(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13999
          name: My point
    """) == ("device_types.14[0] (id 13999): missing required field 'key' "
             "(id 13999 is not in the built-in catalog, so this entry adds a point)")


def test_missing_id(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - key: foo
    """) == "device_types.14[0]: missing required field 'id'"


@pytest.mark.parametrize("field, value, message", [
    ("scale", '"x"', "field 'scale': expected a number, got 'x'"),
    ("enabled", '"yes"',
     "field 'enabled': expected true, false or optional, got 'yes' (spelled out, without quotes)"),
    ("precision", "-1", "field 'precision': expected an integer >= 0, got -1"),
    ("icon", "battery", "field 'icon': expected 'mdi:<name>', got 'battery'"),
    ("name", "[a, b]", "field 'name': expected a non-empty string, got a list"),
    ("options", "{1: true}", "field 'options': label of code 1 must be a text, got true"),
    ("category", "config", "field 'category': expected one of diagnostic, got 'config'"),
    # only true/false are booleans, as in the config (the same strict YAML reader)
    ("enabled", "no",
     "field 'enabled': expected true, false or optional, got 'no' (spelled out, without quotes)"),
    ("Unit", "kW", "unknown field 'Unit' (did you mean 'unit'?)"),
])
def test_wrong_type(tmp_path: Path, field: str, value: str, message: str) -> None:
    assert one_problem(tmp_path, f"""\
    device_types:
      14:
        - id: 13011
          {field}: {value}
    """) == f"device_types.14[0] (id 13011): {message}"


def test_unknown_device_class(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13011
          device_class: powr
    """) == ("device_types.14[0] (id 13011): field 'device_class': expected a Home Assistant "
             "sensor device class, got 'powr' (did you mean 'power'?)")


def test_unit_not_allowed_for_device_class(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13141
          scale: 1
          unit: fraction
    """) == ("device_types.14[0] (id 13141): unit 'fraction' not allowed for device_class "
             "'battery' (HA allows '%')")


def test_bad_state_class(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13011
          state_class: measurment
    """) == ("device_types.14[0] (id 13011): field 'state_class': expected one of measurement, "
             "total, total_increasing, got 'measurment' (did you mean 'measurement'?)")


def test_state_class_not_allowed_with_device_class(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13112
          state_class: measurement
    """) == ("device_types.14[0] (id 13112): state_class 'measurement' not allowed with "
             "device_class 'energy' (HA allows 'total', 'total_increasing')")


def test_duplicate_id(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13011
          enabled: false
        - id: 13011
          enabled: true
    """) == ("device_types.14[1] (id 13011): duplicate id 13011 "
             "(already used by device_types.14[0] (id 13011))")


def test_duplicate_key_with_builtin(tmp_path: Path) -> None:
    message = one_problem(tmp_path, "device_types:\n  14:\n" + new_point("battery_soc"))
    assert message == ("device_types.14[0] (id 13999): duplicate key 'battery_soc' (already "
                       "used by energy_storage_system.yaml: points[45] (id 13141))")


def test_duplicate_key_by_renaming_builtin(tmp_path: Path) -> None:
    message = one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13119
          key: active_power
    """)
    assert message.startswith("device_types.14[0] (id 13119): duplicate key 'active_power'")


def test_key_not_snake_case(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13011
          key: ActivePower
    """) == ("device_types.14[0] (id 13011): field 'key': 'ActivePower' is not snake_case "
             "([a-z][a-z0-9_]*)")


def test_options_need_enum(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13011
          options: {1: Running}
    """) == "device_types.14[0] (id 13011): options need device_class 'enum'"


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    message = one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13011
          unit: [W
    """)
    assert message.startswith("YAML syntax error at line 5, column 1: ")


def test_yaml_key_given_twice(tmp_path: Path) -> None:
    assert one_problem(tmp_path, """\
    device_types:
      14:
        - id: 13011
          unit: W
          unit: kW
    """) == "line 5: duplicate key 'unit' (first on line 4; only the last one would count)"


def test_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(CatalogError, match=r"^.*nope\.yaml: file not found$"):
        load_catalog(path)


def test_file_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r": cannot read catalog file: "):
        load_catalog(tmp_path)  # a directory
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(CatalogError, match=r"binary\.yaml: cannot read catalog file: "):
        load_catalog(str(binary))


@pytest.mark.parametrize("body, message", [
    ("", "expected a mapping at the top, got null"),
    ("- 1\n", "expected a mapping at the top, got a list"),
    ("device_type: 14\npoints: []\n",
     "unknown top-level key 'device_type' (did you mean 'device_types'?)"),
    ("device_types: [1]\n", "device_types: expected a mapping of device type number to a list "
                            "of entries, got a list"),
    ("device_types:\n  abc: []\n", "device_types.abc: a device type must be a positive integer"),
    ("device_types:\n  14: {id: 1}\n",
     "device_types.14: expected a list of entries, got a mapping"),
    ("device_types:\n  14: [5]\n", "device_types.14[0]: expected a mapping of fields, got 5"),
])
def test_file_shape(tmp_path: Path, body: str, message: str) -> None:
    assert problems(tmp_path, body)[0] == message


def test_all_problems_in_one_error_most_important_first(tmp_path: Path) -> None:
    lines = problems(tmp_path, """\
    device_types:
      14:
        - id: 13011
          state_class: total_increasing
        - id: 13012
          unti: var
        - id: 13011
          enabled: false
      abc: []
    """)
    assert lines == [
        "device_types.abc: a device type must be a positive integer",
        "device_types.14[1] (id 13012): unknown field 'unti' (did you mean 'unit'?)",
        "device_types.14[2] (id 13011): duplicate id 13011 (already used by "
        "device_types.14[0] (id 13011))",
        "device_types.14[0] (id 13011): state_class 'total_increasing' not allowed with "
        "device_class 'power' (HA allows 'measurement')",
    ]


def test_failed_user_file_leaves_builtin_intact(tmp_path: Path) -> None:
    problems(tmp_path, "device_types:\n  14:\n    - id: 13141\n      unit: fraction\n")
    spec = load_catalog().get(14, 13141)
    assert spec is not None and spec.unit == "%"


def test_on_and_off_are_option_labels(tmp_path: Path) -> None:
    spec = load(tmp_path, "device_types:\n  43:\n    - id: 58608\n      device_class: enum\n"
                          "      options: {0: Off, 1: On}\n").get(43, 58608)
    assert spec is not None and spec.convert("1") == "On"


def test_a_key_given_twice_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    lines = problems(tmp_path, "device_types:\n  14:\n    - id: 13011\n"
                               "      precision: -1\n      precision: -2\n")
    assert lines == [
        "line 5: duplicate key 'precision' (first on line 4; only the last one would count)",
        "device_types.14[0] (id 13011): field 'precision': expected an integer >= 0, got -2"]
