"""The validation toolkit on its own: checkers, tables, problem lines, the strict YAML reader."""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest

from sungrow2mqtt.errors import ConfigError
from sungrow2mqtt.secret import Secret
from sungrow2mqtt import validation as v


def complaint(check: Any, value: Any) -> str:
    """The message a checker gives for ``value``, as a problem line would show it."""
    with pytest.raises(v.Invalid) as caught:
        check(value)
    return caught.value.render(value)


# --- describing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value, shown, kind", [
    (None, "null", "null"),
    (True, "true", "a boolean"),
    (3, "3", "a number"),
    (float("nan"), "nan", "a number"),
    ("", "an empty string", "an empty string"),
    ("abc", "'abc'", "a string"),
    ("x" * 70, repr("x" * 57) + "…", "a string"),
    ([1], "a list", "a list"),
    ({"a": 1}, "a mapping", "a mapping"),
    (b"x", "a bytes", "a bytes"),
])
def test_describe_shows_the_value_only_when_it_may(value: Any, shown: str, kind: str) -> None:
    assert v.describe(value) == shown
    assert v.describe(value, echo=False) == kind


def test_suggest_is_case_insensitive_and_gives_the_canonical_spelling() -> None:
    assert v.suggest("HOTS", ["host", "port"]) == "did you mean 'host'?"
    assert v.suggest("en_us", ["_en_US", "_de_DE"]) == "did you mean '_en_US'?"
    assert v.suggest("zzzz", ["host", "port"]) is None
    assert v.suggest(12, ["host"]) is None


def test_unknown_names_the_closest_option() -> None:
    assert v.unknown("key", "prot", ["port"]) == "unknown key (did you mean 'port'?)"
    assert v.unknown("field 'x'", "x", ["port"]) == "unknown field 'x'"


def test_render_keeps_withheld_values_out() -> None:
    exc = v.Invalid("file not found: /etc/secret", show_got=False, withheld="file not found")
    assert exc.render("/etc/secret") == "file not found: /etc/secret"
    assert exc.render("/etc/secret", echo=False) == "file not found"
    assert exc.render("x", echo=False, origin="${CA}") == "file not found (value from ${CA})"
    exc = v.Invalid("expected an integer", hint="a hint")
    assert exc.render("pw", echo=False, origin="${P}") == (
        "expected an integer, got a string from ${P} (a hint)")


# --- problems -----------------------------------------------------------------------------------

def test_problems_are_one_line_each_most_important_first(caplog: pytest.LogCaptureFixture) -> None:
    problems = v.Problems("points.yaml")
    problems.add("device_types.14[0]", "late", rank=3)
    problems.add("", "whole file", rank=0)
    problems.add("device_types.14[1]", "early", rank=1)
    problems.warn("device_types", "only a warning")
    assert len(problems) == 3
    assert problems.text().splitlines() == [
        "points.yaml: whole file",
        "points.yaml: device_types.14[1]: early",
        "points.yaml: device_types.14[0]: late",
    ]
    assert "points.yaml: device_types: only a warning" in caplog.text
    with pytest.raises(ConfigError, match="^points.yaml: whole file\n"):
        problems.raise_if_any(ConfigError)
    v.Problems("empty.yaml").raise_if_any(ConfigError)  # nothing to say: no error


# --- checkers -----------------------------------------------------------------------------------

def test_text() -> None:
    assert v.text("a b") == "a b"
    assert complaint(v.text, "  ") == "expected a non-empty string, got '  '"
    assert complaint(v.text, 12) == "expected a non-empty string, got 12 (put it in quotes)"
    assert complaint(v.text, ["a"]) == "expected a non-empty string, got a list"


def test_boolean() -> None:
    assert v.boolean(False) is False
    assert complaint(v.boolean, "no") == ("expected true or false, got 'no' "
                                        "(spelled out, without quotes)")
    assert complaint(v.boolean, 0) == "expected true or false, got 0"


@pytest.mark.parametrize("check, value, expected", [
    (v.integer(1, 9), 10, "expected an integer 1–9, got 10"),
    (v.integer(0), -1, "expected an integer >= 0, got -1"),
    (v.integer(), "x", "expected an integer, got 'x'"),
    (v.integer(), True, "expected an integer, got true"),
    (v.integer(), 1.5, "expected an integer, got 1.5"),
    (v.number(0, 10), 11, "expected a number 0–10, got 11"),
    (v.number(0.5), 0.25, "expected a number >= 0.5, got 0.25"),
    (v.number(), float("inf"), "expected a number, got inf"),
    (v.number(), "abc", "expected a number, got 'abc'"),
    (v.choice(("DEBUG", "INFO")), "inf", "expected one of DEBUG, INFO, got 'inf' "
                                       "(did you mean 'INFO'?)"),
    (v.choice(("DEBUG", "INFO")), 3, "expected one of DEBUG, INFO, got 3"),
    (v.choice(("power", "energy"), "a device class"), "powr",
     "expected a device class, got 'powr' (did you mean 'power'?)"),
    (v.choice(("power", "energy"), "a device class"), "volume",
     "expected a device class, got 'volume' (one of power, energy)"),
    (v.matching(r"mdi:[a-z-]+", "'mdi:<name>'"), "battery", "expected 'mdi:<name>', got 'battery'"),
    (v.matching(r"mdi:[a-z-]+", "'mdi:<name>'"), None, "expected a non-empty string, got null"),
])
def test_checker_messages(check: Any, value: Any, expected: str) -> None:
    assert complaint(check, value) == expected


def test_numbers_may_be_strings_of_digits_as_environment_and_json_give_them() -> None:
    assert v.integer(1, 65535)(" 1883 ") == 1883
    assert v.as_int("-1") is None and v.as_int(False) is None and v.as_int(7) == 7
    assert v.number(0, 10)("2.5") == 2.5
    assert math.isclose(v.number()(1), 1.0)


def test_choice_returns_the_canonical_spelling() -> None:
    assert v.choice(("_en_US", "_de_DE"))(" _EN_us ") == "_en_US"


def test_optional_takes_null_and_empty_as_unset() -> None:
    check = v.optional(v.integer(0))
    assert check(None) is None and check("") is None and check(3) == 3
    assert complaint(check, -1) == "expected an integer >= 0, got -1"


def test_file_path_resolves_and_withholds_the_path(tmp_path: Path) -> None:
    def resolve(name: str) -> Path:
        return tmp_path / name

    (tmp_path / "a.pem").write_text("x", encoding="utf-8")
    assert v.file_path(resolve, must_exist=True)("a.pem") == tmp_path / "a.pem"
    assert v.file_path(resolve, must_exist=False)("new.json") == tmp_path / "new.json"
    with pytest.raises(v.Invalid) as caught:
        v.file_path(resolve, must_exist=True)("b.pem")
    assert caught.value.render("b.pem") == f"file not found: {tmp_path / 'b.pem'}"
    assert caught.value.render("b.pem", echo=False) == "file not found"
    (tmp_path / "dir").mkdir()
    assert complaint(v.file_path(resolve, must_exist=True), "dir") == (
        f"not a regular file: {tmp_path / 'dir'}")
    assert complaint(v.file_path(resolve, must_exist=False), "dir") == (
        f"is a directory, expected a file path: {tmp_path / 'dir'}")


# --- tables -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    password: Optional[Secret]


def _finish(problems: v.Problems, path: str, values: Any) -> None:
    if values.get("port") == 1:
        problems.add(f"{path}.port", "port 1 is reserved")


SCHEMA = v.Section((
    v.Field("broker", v.Section((
        v.Field("host", v.text, "localhost"),
        v.Field("port", v.integer(1, 65535), 1883),
        v.Field("password", v.optional(v.text), None, secret=True),
    ), Broker, _finish), None),
    v.Field("plants", v.ListOf(v.integer(1), "a list of plant ids", tuple), None),
    v.Field("name", v.text),
))


def walk(data: Any, prepare: Any = None) -> Tuple[Any, List[str]]:
    problems = v.Problems("test.yaml")
    walker = v.Walker(problems) if prepare is None else v.Walker(problems, prepare)
    result = walker.section("", data, SCHEMA)
    return result, problems.text().splitlines()


def test_walker_builds_sections_with_checked_defaults() -> None:
    result, lines = walk({"name": "n", "broker": {"password": "pw"}, "plants": ["2", 3]})
    assert lines == []
    assert result == {"name": "n", "broker": Broker("localhost", 1883, Secret("pw")),
                      "plants": (2, 3)}
    assert isinstance(result["broker"].password, Secret)


def test_walker_reports_every_problem_in_schema_order() -> None:
    result, lines = walk({"broker": {"prot": 1, "port": 0, "password": 12345678},
                          "plants": [1, "x", -1], "extra": 1})
    assert result is v.FAILED
    assert lines == [
        "test.yaml: broker.port: expected an integer 1–65535, got 0",
        "test.yaml: broker.password: expected a non-empty string, got a number "
        "(put it in quotes)",
        "test.yaml: broker.prot: unknown key (did you mean 'port'?)",
        "test.yaml: plants[1]: expected an integer >= 1, got 'x'",
        "test.yaml: plants[2]: expected an integer >= 1, got -1",
        "test.yaml: name: required",
        "test.yaml: extra: unknown key",
    ]


def test_walker_finish_sees_the_values_that_passed() -> None:
    _, lines = walk({"name": "n", "broker": {"port": 1}})
    assert lines == ["test.yaml: broker.port: port 1 is reserved"]


def test_walker_never_echoes_what_stands_where_a_section_or_list_belongs() -> None:
    _, lines = walk({"name": "n", "broker": "secret-host", "plants": "secret"})
    assert lines == ["test.yaml: broker: expected a mapping, got a string",
                     "test.yaml: plants: expected a list of plant ids, got 'secret'"]
    with pytest.raises(v.Invalid, match="expected a mapping"):
        v.Walker(v.Problems("x")).section("", ["a"], SCHEMA)


def test_walker_prepare_hook_names_where_a_value_came_from() -> None:
    def prepare(path: str, field: v.Field, raw: Any, given: bool) -> Tuple[Any, Optional[str]]:
        if raw == "${PORT}":
            return "not-a-port", "${PORT}"
        if raw == "${MISSING}":
            raise v.Invalid("environment variable MISSING is not set", show_got=False)
        return raw, None

    _, lines = walk({"name": "${MISSING}", "broker": {"port": "${PORT}"}}, prepare)
    assert lines == [
        "test.yaml: broker.port: expected an integer 1–65535, got a string from ${PORT}",
        "test.yaml: name: environment variable MISSING is not set",
    ]


def test_a_request_schema_fits_the_same_tables() -> None:
    # How bridge requests port onto the toolkit: a flat Section built into a dict.
    history = v.Section((
        v.Field("ps_key", v.matching(r"\d{1,12}_\d{1,3}_\d{1,6}_\d{1,6}", "a ps_key such as "
                                                                        "1234567_14_1_1")),
        v.Field("interval", v.choice(("minute", "day", "month", "year"))),
        v.Field("minute_interval", v.integer(1, 180), 5),
    ))
    problems = v.Problems("history")
    params = v.Walker(problems).section("", {"ps_key": "1_14_1_1", "interval": "Day"}, history)
    assert params == {"ps_key": "1_14_1_1", "interval": "day", "minute_interval": 5}
    assert v.Walker(problems).section("", {"interval": "dya", "minute_interval": 0},
                                    history) is v.FAILED
    assert problems.text().splitlines() == [
        "history: ps_key: required",
        "history: interval: expected one of minute, day, month, year, got 'dya' "
        "(did you mean 'day'?)",
        "history: minute_interval: expected an integer 1–180, got 0",
    ]


def test_an_absent_field_stays_out_and_problems_can_be_one_line() -> None:
    # What MQTT requests need: optional fields without a default, and one line for an answer.
    refresh = v.Section((v.Field("ps_id", v.integer(1), v.ABSENT),))
    problems = v.Problems("")
    assert v.Walker(problems).section("", {}, refresh) == {}
    assert v.Walker(problems).section("", {"ps_id": None, "x\ny": 1, "z" * 99: 2},
                                      refresh) is v.FAILED
    assert problems.text("; ") == (
        "ps_id: expected an integer >= 1, got null; 'x\\ny': unknown key; "
        f"'{'z' * 57}'…: unknown key")


# --- YAML ---------------------------------------------------------------------------------------

def yaml_of(content: str) -> Tuple[Any, List[str]]:
    problems = v.Problems("f.yaml")
    data = v.load_yaml(content, problems)
    return data, problems.text().splitlines()


def test_only_true_and_false_are_booleans() -> None:
    data, lines = yaml_of("a: yes\nb: on\nc: true\nd: False\ne: No\noptions: {0: Off, 1: On}\n")
    assert lines == []
    assert data == {"a": "yes", "b": "on", "c": True, "d": False, "e": "No",
                    "options": {0: "Off", 1: "On"}}


def test_every_duplicate_key_is_reported_with_both_lines() -> None:
    data, lines = yaml_of(
        "a: 1\n"            # 1
        "b:\n"              # 2
        "  - {x: 1, x: 2}\n"  # 3
        "  - y: 1\n"        # 4
        "    z: 2\n"        # 5
        "    y: 3\n"        # 6
        "c: {1: a, '1': b}\n"  # 7: an int and a string: two keys
        "a: 2\n")           # 8
    assert data["a"] == 2 and data["b"][1]["y"] == 3
    assert lines == [
        "f.yaml: line 3: duplicate key 'x' (first on line 3; only the last one would count)",
        "f.yaml: line 6: duplicate key 'y' (first on line 4; only the last one would count)",
        "f.yaml: line 8: duplicate key 'a' (first on line 1; only the last one would count)",
    ]


def test_merge_keys_and_their_overrides_are_no_duplicates() -> None:
    data, lines = yaml_of("base: &b {x: 1, y: 2}\n"
                          "mid: &m\n  <<: *b\n  x: 3\n"
                          "top:\n  <<: *m\n  y: 4\n")
    assert lines == []
    assert data["mid"] == {"x": 3, "y": 2} and data["top"]["y"] == 4


def test_a_syntax_error_is_one_line_with_its_position_and_no_excerpt() -> None:
    data, lines = yaml_of('a:\n  password: "hunter2-secret\n  b: 1\n')
    assert data is v.FAILED
    assert len(lines) == 1 and lines[0].startswith("f.yaml: YAML syntax error at line ")
    assert "hunter2" not in lines[0]
    data, lines = yaml_of("a: !!python/object:os.system x\n")
    assert data is v.FAILED and "YAML syntax error at line 1" in lines[0]


def test_an_empty_document_is_none() -> None:
    assert yaml_of("# nothing\n") == (None, [])


# --- files --------------------------------------------------------------------------------------

def test_read_text_names_every_failure(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("a: ü\n", encoding="utf-8")
    assert v.read_text(good, "good.yaml", ConfigError) == "a: ü\n"
    with pytest.raises(ConfigError, match=r"^nope\.yaml: file not found$"):
        v.read_text(tmp_path / "nope.yaml", "nope.yaml", ConfigError)
    with pytest.raises(ConfigError, match=re.escape(
            f"{tmp_path}: cannot read points: it is a directory")):
        v.read_text(tmp_path, str(tmp_path), ConfigError, what="points")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"a: 1\n\xff")
    with pytest.raises(ConfigError, match=r"^b: cannot read the file: not UTF-8 text "
                                          r"\(at byte 5\)$"):
        v.read_text(binary, "b", ConfigError)


def test_warnings_go_to_the_callers_logger(caplog: pytest.LogCaptureFixture) -> None:
    problems = v.Problems("c.yaml", logging.getLogger("sungrow2mqtt.config"))
    problems.warn("mqtt.client_id", "long")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("sungrow2mqtt.config", "c.yaml: mqtt.client_id: long")]
