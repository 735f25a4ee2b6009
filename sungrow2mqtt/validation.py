"""One way to check what people write: the config file, point catalogs and MQTT requests.

* A *checker* takes a raw value and returns the cleaned one, or raises :class:`Invalid` saying
  what was expected; :func:`text`, :func:`boolean`, :func:`integer`, :func:`number`,
  :func:`choice`, :func:`matching`, :func:`file_path` and :func:`optional` are the shared ones.
* A :class:`Section` is a declarative table of :class:`Field` s (a name, a checker or a nested
  Section/:class:`ListOf`, a default); :class:`Walker` checks a mapping against it.
* :class:`Problems` collects every complaint about one source and reports them together, one
  line each: ``config.yaml: mqtt.port: expected an integer 1–65535, got 'abc'``.
* :func:`suggest` is the one "did you mean" helper; :func:`load_yaml` the one strict YAML reader
  (only ``true``/``false`` are booleans, a key given twice is reported with both lines) and
  :func:`read_text` the one way to read a file, with a clear line for every way that fails.

Values that must not be shown (secrets, values taken from the environment) are described by kind
only ("a string"), and checkers whose message would name something derived from the value give a
``withheld`` variant without it.
"""
from __future__ import annotations

import difflib
import logging
import math
import os
import pwd
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Type, Union

import yaml

from sungrow2mqtt.secret import Secret

log = logging.getLogger(__name__)

Check = Callable[[Any], Any]


class _Marker:
    """A named sentinel, so reprs in tracebacks say what they are."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


REQUIRED: Any = _Marker("<required>")  # a Field default: the key must be given
ABSENT: Any = _Marker("<absent>")      # a Field default: a key not given stays out of the result
FAILED: Any = _Marker("<failed>")      # a value that did not pass; its problem is recorded


# --- describing values and problems -------------------------------------------------------------

def describe(value: object, echo: bool = True) -> str:
    """What was found, for an error line; ``echo=False`` names only the kind of value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower() if echo else "a boolean"
    if isinstance(value, (int, float)):
        return repr(value) if echo else "a number"
    if isinstance(value, str):
        if not value:
            return "an empty string"
        if not echo:
            return "a string"
        return repr(value) if len(value) <= 60 else repr(value[:57]) + "…"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def suggest(name: object, options: Sequence[str]) -> Optional[str]:
    """``did you mean 'x'?`` for the closest option, compared case-insensitively."""
    if not isinstance(name, str):
        return None
    lowered = {option.lower(): option for option in options}
    close = difflib.get_close_matches(name.strip().lower(), list(lowered), n=1, cutoff=0.6)
    return f"did you mean {lowered[close[0]]!r}?" if close else None


def unknown(what: str, name: object, options: Sequence[str]) -> str:
    """``unknown <what> (did you mean 'x'?)`` for a key or field nobody defined."""
    hint = suggest(str(name), options)
    return f"unknown {what} ({hint})" if hint else f"unknown {what}"


class Invalid(Exception):
    """One value that does not fit: what was expected, and maybe a hint how to fix it.

    ``show_got`` adds ", got <value>"; ``withheld`` replaces the message where the value must
    not be shown, for messages that name something derived from it (such as a resolved path).
    """

    def __init__(self, message: str, *, show_got: bool = True, hint: Optional[str] = None,
                 withheld: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.show_got = show_got
        self.hint = hint
        self.withheld = withheld

    def render(self, value: object, echo: bool = True, origin: Optional[str] = None) -> str:
        """The complaint as text; ``echo=False`` keeps the value out, ``origin`` says where
        it came from (``${VAR}``)."""
        message = self.message if echo or self.withheld is None else self.withheld
        if self.show_got:
            message += f", got {describe(value, echo)}"
            if origin:
                message += f" from {origin}"
        elif origin:
            message += f" (value from {origin})"
        if self.hint:
            message += f" ({self.hint})"
        return message


class Problems:
    """Every problem found in one source, reported together, most important (lowest rank) first.

    Each line reads ``<source>: <where>: <message>``; ``where`` is a key path, an entry or a
    line number, or empty for the source as a whole.  An empty ``source`` leaves its part out
    (an MQTT request's answer already says which request it refuses).
    """

    def __init__(self, source: str, logger: logging.Logger = log) -> None:
        self.source = source
        self._logger = logger
        self._items: List[Tuple[int, int, str]] = []

    def add(self, where: str, message: str, rank: int = 0) -> None:
        """Record one problem."""
        line = f"{where}: {message}" if where else message
        if self.source:
            line = f"{self.source}: {line}"
        self._items.append((rank, len(self._items), line))

    def invalid(self, where: str, exc: Invalid, value: object, echo: bool = True,
                origin: Optional[str] = None) -> None:
        """Record a checker's complaint about ``value``."""
        self.add(where, exc.render(value, echo, origin))

    def warn(self, where: str, message: str) -> None:
        """Log something that is allowed but probably unwise (not a problem: nothing fails)."""
        self._logger.warning("%s: %s: %s", self.source, where, message)

    def __len__(self) -> int:
        return len(self._items)

    def text(self, separator: str = "\n") -> str:
        """Every problem, one a line (or joined by ``separator``), most important first."""
        return separator.join(line for _, _, line in sorted(self._items))

    def raise_if_any(self, error: Type[Exception]) -> None:
        """Raise ``error`` listing every problem, if there is one."""
        if self._items:
            raise error(self.text())


# --- checkers -----------------------------------------------------------------------------------

def as_int(value: object) -> Optional[int]:
    """An int, or the int a string of digits spells (what ${VAR} and JSON clients give)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        return int(value)
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(low: Optional[float], high: Optional[float]) -> str:
    if low is not None and high is not None:
        return f" {low:g}–{high:g}"
    if low is not None:
        return f" >= {low:g}"
    return f" <= {high:g}" if high is not None else ""


def text(value: Any) -> str:
    """A string with something in it (not only blanks)."""
    if not isinstance(value, str) or not value.strip():
        hint = "put it in quotes" if _is_number(value) else None
        raise Invalid("expected a non-empty string", hint=hint)
    return value


def boolean(value: Any) -> bool:
    """``true`` or ``false``, written as such (YAML's yes/on are strings to :func:`load_yaml`)."""
    if not isinstance(value, bool):
        hint = "spelled out, without quotes" if isinstance(value, str) else None
        raise Invalid("expected true or false", hint=hint)
    return value


def integer(low: Optional[int] = None, high: Optional[int] = None) -> Check:
    """An integer within bounds; a string of digits counts (${VAR} and JSON give strings)."""
    expected = "expected an integer" + _bounds(low, high)

    def check(value: Any) -> int:
        number = as_int(value)
        if number is None or (low is not None and number < low) or (
                high is not None and number > high):
            raise Invalid(expected)
        return number
    return check


def number(low: Optional[float] = None, high: Optional[float] = None) -> Check:
    """A finite number within bounds, as a float; numeric strings count."""
    expected = "expected a number" + _bounds(low, high)

    def check(value: Any) -> float:
        result: Optional[float] = None
        if _is_number(value):
            result = float(value)
        elif isinstance(value, str):
            try:
                result = float(value)
            except ValueError:
                pass
        if result is None or not math.isfinite(result) or (low is not None and result < low) or (
                high is not None and result > high):
            raise Invalid(expected)
        return result
    return check


def choice(options: Sequence[str], noun: Optional[str] = None) -> Check:
    """One of ``options``, matched case-insensitively and returned in its canonical spelling.

    A long list is better named than spelled out: with ``noun`` the message says "expected
    <noun>" and lists the options only when no close one can be suggested.
    """
    listed = f"one of {', '.join(options)}"

    def check(value: Any) -> str:
        if isinstance(value, str):
            for option in options:
                if option.lower() == value.strip().lower():
                    return option
        hint = suggest(value, options)
        if noun is None:
            raise Invalid(f"expected {listed}", hint=hint)
        raise Invalid(f"expected {noun}", hint=hint or listed)
    return check


def matching(pattern: str, expected: str) -> Check:
    """A string matching ``pattern`` in full; ``expected`` says what that means to a person."""
    compiled = re.compile(pattern)

    def check(value: Any) -> str:
        if not compiled.fullmatch(text(value)):
            raise Invalid(f"expected {expected}")
        return str(value)
    return check


def optional(check: Check) -> Check:
    """``check``, or None for null or an empty string (what an unset ${VAR} gives)."""
    def checker(value: Any) -> Any:
        return None if value is None or value == "" else check(value)
    return checker


def _user() -> str:
    """Who this process runs as, for a permission problem: ``name (uid N)``."""
    uid = os.geteuid()
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:  # a uid without a name (containers)
        return f"uid {uid}"


def existing_file(file: Path) -> Path:
    """``file`` if it is a regular file this process may read."""
    if not file.exists():
        message = "file not found"
    elif not file.is_file():
        message = "not a regular file"
    elif not os.access(file, os.R_OK):
        message = f"file is not readable by user {_user()}"
    else:
        return file
    raise Invalid(f"{message}: {file}", show_got=False, withheld=message)


def file_path(resolve: Callable[[str], Path], must_exist: bool) -> Check:
    """A file path, made absolute by ``resolve`` (the caller's base directory and ``~``)."""
    def check(value: Any) -> Path:
        file = resolve(text(value))
        if must_exist:
            return existing_file(file)
        if file.is_dir():
            raise Invalid(f"is a directory, expected a file path: {file}", show_got=False,
                          withheld="is a directory, expected a file path")
        return file
    return check


# --- declarative tables -------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One key of a mapping: its checker (or a nested Section or ListOf) and its default.

    The default is a raw value that goes through the same check as user input; ``REQUIRED``
    means the key must be given, ``ABSENT`` that without it the result has no such key.
    ``secret`` values are never shown and come out wrapped in :class:`Secret`; ``quiet`` ones
    are never shown either (user names).
    """

    name: str
    check: Union[Check, "Section", "ListOf"]
    default: Any = REQUIRED
    secret: bool = False
    quiet: bool = False


Finish = Callable[[Problems, str, Dict[str, Any]], None]


@dataclass(frozen=True)
class Section:
    """A mapping of fields that becomes one object: ``build(**values)``.

    ``finish`` sees the values that passed (a failed one is missing) before they are built, to
    check keys against each other, warn, or reshape them.
    """

    fields: Tuple[Field, ...]
    build: Callable[..., Any] = dict
    finish: Optional[Finish] = None


@dataclass(frozen=True)
class ListOf:
    """A list whose every item is checked (and reported) on its own; null is an empty list."""

    item: Check
    expected: str
    build: Callable[[List[Any]], Any] = tuple


# Turns a raw value into the value to check, and says where it came from (e.g. "${PORT}"), so
# that a value from elsewhere is never shown; it may raise Invalid.  Arguments: key path, field,
# raw value, and whether the user gave it (rather than the default).
Prepare = Callable[[str, Field, Any, bool], Tuple[Any, Optional[str]]]


def _as_written(path: str, field: Field, raw: Any, given: bool) -> Tuple[Any, Optional[str]]:
    return raw, None


_PLAIN_KEY = re.compile(r"[\w-]{1,40}")


def _shown_key(name: object) -> str:
    """A key nobody defined, as it can be shown: quoted and shortened unless it is a plain
    word, so that a line break in it (a JSON key can hold one) cannot forge a log line."""
    return name if isinstance(name, str) and _PLAIN_KEY.fullmatch(name) else describe(name)


def join(path: str, name: object) -> str:
    """``path.name``, or just ``name`` at the top."""
    return f"{path}.{name}" if path else str(name)


class Walker:
    """Checks data against Sections, collecting every problem instead of stopping at the first."""

    def __init__(self, problems: Problems, prepare: Prepare = _as_written) -> None:
        self.problems = problems
        self.prepare = prepare

    def section(self, path: str, data: Any, section: Section) -> Any:
        """The built object of one mapping, or FAILED with its problems recorded."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise Invalid("expected a mapping")
        before = len(self.problems)
        values: Dict[str, Any] = {}
        for field in section.fields:
            field_path = join(path, field.name)
            if field.name in data:
                result = self.value(field_path, field, data[field.name], given=True)
            elif field.default is REQUIRED:
                self.problems.add(field_path, "required")
                continue
            elif field.default is ABSENT:
                continue
            else:
                result = self.value(field_path, field, field.default, given=False)
            if result is not FAILED:
                values[field.name] = result
        names = [field.name for field in section.fields]
        for name in data:
            if name not in names:
                self.problems.add(join(path, _shown_key(name)), unknown("key", name, names))
        if section.finish is not None:
            section.finish(self.problems, path, values)
        return FAILED if len(self.problems) > before else section.build(**values)

    def value(self, path: str, field: Field, raw: Any, given: bool) -> Any:
        """The checked value of one field, or FAILED with its problem recorded."""
        value, origin = raw, None
        echo = not (field.secret or field.quiet)
        try:
            if isinstance(field.check, Section):
                echo = False  # "got a string" where a section belongs, whatever the string
                return self.section(path, raw, field.check)
            value, origin = self.prepare(path, field, raw, given)
            if isinstance(field.check, ListOf):
                return self._items(path, field, field.check, value, given)
            result = field.check(value)
        except Invalid as exc:
            self.problems.invalid(path, exc, value, echo=echo and origin is None, origin=origin)
            return FAILED
        return Secret(result) if field.secret and result is not None else result

    def _items(self, path: str, field: Field, spec: ListOf, value: Any, given: bool) -> Any:
        if value is None:
            return spec.build([])
        if not isinstance(value, list):
            raise Invalid(f"expected {spec.expected}")
        item = Field(f"{field.name}[]", spec.item, secret=field.secret, quiet=field.quiet)
        results = [self.value(f"{path}[{index}]", item, raw, given)
                   for index, raw in enumerate(value)]
        return FAILED if FAILED in results else spec.build(results)


# --- files and YAML -----------------------------------------------------------------------------

def read_text(file: Path, source: str, error: Type[Exception], what: str = "the file") -> str:
    """The file's text; any way reading fails is one ``error`` line naming the likely cause."""
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{source}: file not found") from None
    except IsADirectoryError:
        reason = "it is a directory"
    except PermissionError:
        reason = (f"permission denied for user {_user()}; if the service runs as another user "
                  "than the file's owner (systemd's DynamicUser does), keep secrets out of the "
                  "file (in the environment file, as ${VAR}) and make it readable (chmod 644, "
                  "its directory 755), see the README's systemd section")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text (at byte {exc.start})"
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise error(f"{source}: cannot read {what}: {reason}")


_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# libyaml's parser when PyYAML was built with it: the built-in catalog is parsed on every start.
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_SafeLoader):  # type: ignore[misc]
    """A safe loader that reads only true/false as booleans (``yes``, ``on`` stay strings)."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _duplicate_keys(root: yaml.Node) -> List[Tuple[int, str, int]]:
    """(line, key, first line) of every key given twice in one mapping, in document order."""
    seen_nodes: Set[int] = set()
    stack = [root]
    found: List[Tuple[int, str, int]] = []
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes or isinstance(node, yaml.ScalarNode):
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
            continue
        first: Dict[Tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            stack.extend((key_node, value_node))
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            line = key_node.start_mark.line + 1
            identity = (key_node.tag, key_node.value)
            if identity in first:
                found.append((line, key_node.value, first[identity]))
            else:
                first[identity] = line
    return sorted(found)


def load_yaml(content: str, problems: Problems) -> Any:
    """The document's data; syntax errors and keys given twice are recorded in ``problems``.

    Returns FAILED when the text is not YAML at all (then that is the only problem).
    """
    loader = _StrictLoader(content)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        for line, key, first in _duplicate_keys(node):
            problems.add(f"line {line}", f"duplicate key {key!r} (first on line {first}; "
                                         "only the last one would count)")
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        # Only the problem and its position: the excerpt in str(exc) could show a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        problems.add("", f"YAML syntax error{where}: {problem}")
        return FAILED
    finally:
        loader.dispose()
