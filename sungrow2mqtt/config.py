"""Read, check and freeze the YAML configuration, so no other module ever touches raw YAML.

The whole file is checked at once and every problem is reported in one :class:`ConfigError`, one
line each, as ``config.yaml: mqtt.port: expected an integer 1–65535, got 'abc'``.  Secret values
are wrapped in :class:`Secret` and never echoed.  The schema below is the single list of keys,
checks and defaults; defaults are raw YAML values and go through the same checks as user input.

String values may hold ``${VAR}`` references to the environment (``$${`` is a literal ``${``).
Numeric keys accept strings of digits, so ``port: ${MQTT_PORT}`` works; booleans must be written
``true``/``false`` (the loader does not read ``yes``/``on`` as booleans).
"""
from __future__ import annotations

import difflib
import logging
import math
import os
import re
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

import yaml

from sungrow2mqtt.errors import ConfigError
from sungrow2mqtt.isolarcloud.crypto import CryptoError, load_public_key
from sungrow2mqtt.isolarcloud.servers import REGIONS, resolve_server
from sungrow2mqtt.secret import Secret

log = logging.getLogger(__name__)

LANGUAGES: Tuple[str, ...] = (
    "_zh_CN", "_en_US", "_ja_JP", "_es_ES", "_de_DE", "_pt_BR", "_fr_FR", "_it_IT", "_ko_KR",
    "_nl_NL", "_pl_PL", "_vi_VN", "_zh_TW",
)
LOG_LEVELS: Tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR")
QUOTA_WARNING_BELOW = 60
CLIENT_ID_RECOMMENDED = 23


# --- the frozen result --------------------------------------------------------------------------

@dataclass(frozen=True)
class IsolarCloudConfig:
    """How to reach and log in to the iSolarCloud Open API."""

    region: str
    server: str
    appkey: Secret
    access_key: Secret
    username: str = field(repr=False)
    password: Secret
    rsa_public_key: Optional[str] = field(repr=False)
    language: str
    token_file: Optional[Path]
    timeout: float

    @property
    def encrypted(self) -> bool:
        """Whether calls are encrypted, i.e. an RSA public key was configured."""
        return self.rsa_public_key is not None


@dataclass(frozen=True)
class TlsConfig:
    """How to secure the broker connection."""

    enabled: bool
    ca_certs: Optional[Path]
    certfile: Optional[Path]
    keyfile: Optional[Path]
    insecure: bool


@dataclass(frozen=True)
class MqttConfig:
    """Where the broker is and how this bridge shows itself there."""

    host: str
    port: int
    username: Optional[str]
    password: Optional[Secret]
    client_id: str
    base_topic: str
    keepalive: int
    tls: TlsConfig


@dataclass(frozen=True)
class HomeAssistantConfig:
    """Whether and where to announce entities to Home Assistant."""

    discovery: bool
    prefix: str
    status_topic: str


@dataclass(frozen=True)
class PollingConfig:
    """How often the cloud is asked, which is what the API quota is spent on."""

    realtime: int
    faults: int
    devices: int
    min_refresh_spacing: float


@dataclass(frozen=True)
class PointsConfig:
    """Where a user point catalog lives, if any."""

    catalog: Optional[Path]


@dataclass(frozen=True)
class LoggingConfig:
    """How talkative the service is."""

    level: str


@dataclass(frozen=True)
class Config:
    """The whole validated configuration; ``source`` names the file it came from."""

    isolarcloud: IsolarCloudConfig
    mqtt: MqttConfig
    homeassistant: HomeAssistantConfig
    polling: PollingConfig
    plants: Tuple[int, ...]
    points: PointsConfig
    logging: LoggingConfig
    source: str


# --- checks -------------------------------------------------------------------------------------

class _Invalid(Exception):
    """One problem with one value; the parser adds file, key path and (maybe) the value."""

    def __init__(self, message: str, show_got: bool = True, hint: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.show_got = show_got
        self.hint = hint


class _Failed:
    """Marker for a value that did not pass its check (the problem is already recorded)."""

    def __repr__(self) -> str:
        return "<failed>"


_FAILED: Any = _Failed()
_REQUIRED: Any = object()
_QUOTE_HINT = "put it in quotes"

Check = Callable[["_Parser", str, Any], Any]
Finish = Callable[["_Parser", str, Dict[str, Any]], None]


def _join(path: str, name: object) -> str:
    return f"{path}.{name}" if path else str(name)


def _describe(value: object, echo: bool) -> str:
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


def _suggest(value: object, options: Sequence[str]) -> Optional[str]:
    """``did you mean 'x'?`` for the closest option, compared case-insensitively."""
    if not isinstance(value, str):
        return None
    lowered = {option.lower(): option for option in options}
    close = difflib.get_close_matches(value.strip().lower(), list(lowered), n=1, cutoff=0.6)
    return f"did you mean {lowered[close[0]]!r}?" if close else None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_int(value: object) -> Optional[int]:
    """An int, or the int a string of digits spells (what ${VAR} gives); None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        return int(value)
    return None


def _text(nullable: bool = False) -> Check:
    """A string; optional ones take null or an empty string (handy for unset ${VAR}s) as unset."""
    expected = "a string or null" if nullable else "a non-empty string"

    def check(p: _Parser, path: str, value: Any) -> Optional[str]:
        if value is None or value == "":
            if nullable:
                return None
            raise _Invalid(f"expected {expected}")
        if not isinstance(value, str):
            raise _Invalid(f"expected {expected}", hint=_QUOTE_HINT if _is_number(value) else None)
        return value
    return check


_required_text = _text()
_optional_text = _text(nullable=True)


def _boolean(p: _Parser, path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        hint = "spelled out, without quotes" if isinstance(value, str) else None
        raise _Invalid("expected true or false", hint=hint)
    return value


def _integer(low: int, high: int) -> Check:
    """An integer in range; a string of digits is accepted, since ${VAR} gives strings."""
    def check(p: _Parser, path: str, value: Any) -> int:
        number = _as_int(value)
        if number is None or not low <= number <= high:
            raise _Invalid(f"expected an integer {low}–{high}")
        return number
    return check


def _number(low: float, high: float) -> Check:
    """A finite number in range; numeric strings are accepted, since ${VAR} gives strings."""
    def check(p: _Parser, path: str, value: Any) -> float:
        number: Optional[float] = None
        if _is_number(value):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None or not math.isfinite(number) or not low <= number <= high:
            raise _Invalid(f"expected a number {low:g}–{high:g}")
        return number
    return check


def _choice(options: Sequence[str]) -> Check:
    """One of ``options``, matched case-insensitively and returned in its canonical spelling."""
    def check(p: _Parser, path: str, value: Any) -> str:
        if isinstance(value, str):
            for option in options:
                if option.lower() == value.strip().lower():
                    return option
        raise _Invalid(f"expected one of {', '.join(options)}", hint=_suggest(value, options))
    return check


def _topic(p: _Parser, path: str, value: Any) -> str:
    """A concrete topic (or prefix) that other topics are built from."""
    text: str = _required_text(p, path, value)
    if "+" in text or "#" in text:
        raise _Invalid("expected a topic without wildcards (+ #)")
    if text.startswith("/") or text.endswith("/"):
        raise _Invalid("expected a topic without a leading or trailing '/'")
    if "//" in text:
        raise _Invalid("expected a topic without empty levels")
    if text.startswith("$") or "\0" in text:
        raise _Invalid("expected a topic not starting with '$' and without NUL characters")
    return text


def _host(p: _Parser, path: str, value: Any) -> str:
    text: str = _required_text(p, path, value)
    if "://" in text or "/" in text or any(char.isspace() for char in text):
        raise _Invalid("expected a host name or IP address (no scheme, path or spaces)")
    return text


def _client_id(p: _Parser, path: str, value: Any) -> str:
    text: str = _required_text(p, path, value)
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", text):
        raise _Invalid("expected 1–64 characters of A-Z a-z 0-9 _ -")
    if len(text) > CLIENT_ID_RECOMMENDED:
        p.warn(path, f"longer than {CLIENT_ID_RECOMMENDED} characters; MQTT 3.1.1 brokers may "
                     "refuse it")
    return text


def _server(p: _Parser, path: str, value: Any) -> Tuple[str, str]:
    """(as written, resolved gateway URL); the finisher splits it into ``region`` and ``server``."""
    text = _required_text(p, path, value).strip()
    try:
        url = resolve_server(text)
    except ValueError as exc:
        raise _Invalid(str(exc), show_got=False, hint=_suggest(text, list(REGIONS))) from None
    local = ("localhost", "127.0.0.1", "::1")
    if url.startswith("http://") and urlsplit(url).hostname not in local:
        p.warn(path, "plain http:// sends the credentials unencrypted; use it only for a simulator")
    region = text.lower() if text.lower() in REGIONS else text
    return region, url


def _existing_file(file: Path) -> Path:
    if not file.exists():
        raise _Invalid(f"file not found: {file}", show_got=False)
    if not file.is_file():
        raise _Invalid(f"not a regular file: {file}", show_got=False)
    if not os.access(file, os.R_OK):
        raise _Invalid(f"file is not readable: {file}", show_got=False)
    return file


def _path(must_exist: bool) -> Check:
    """A file path: ``~`` expanded, relative to the config file's directory; null = none."""
    def check(p: _Parser, path: str, value: Any) -> Optional[Path]:
        text: Optional[str] = _optional_text(p, path, value)
        if text is None:
            return None
        file = p.resolve_path(text)
        if must_exist:
            return _existing_file(file)
        if file.is_dir():
            raise _Invalid(f"is a directory, expected a file path: {file}", show_got=False)
        return file
    return check


def _looks_like_path(text: str) -> bool:
    # Base64 X.509 text never holds '.' or '~' and starts with 'MI' (a DER sequence).
    return "." in text or text.startswith(("/", "~"))


def _is_file_quietly(file: Path) -> bool:
    try:
        return file.is_file()
    except (OSError, ValueError):  # name too long, NUL byte: key text, not a path
        return False


def _rsa_public_key(p: _Parser, path: str, value: Any) -> Optional[str]:
    """The key TEXT: given inline (base64 X.509 or PEM) or read from the file it names."""
    text: Optional[str] = _optional_text(p, path, value)
    if text is None:
        return None
    text = text.strip()
    origin = ""
    if not text.startswith("-----BEGIN") and "\n" not in text:
        file = p.resolve_path(text)
        if _looks_like_path(text) or _is_file_quietly(file):
            _existing_file(file)
            try:
                text = file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise _Invalid(f"cannot read {file} as text ({type(exc).__name__})",
                               show_got=False) from None
            origin = f"{file}: "
    try:
        load_public_key(text)
    except CryptoError:
        raise _Invalid(f"{origin}not a usable RSA public key (expected base64 X.509 text, PEM, "
                       "or the path of a file holding one)", show_got=False) from None
    return text


def _plants(p: _Parser, path: str, value: Any) -> Any:
    """Plant ids (ps_id) to bridge, duplicates dropped; every bad entry is reported."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Invalid("expected a list of plant ids (ps_id)")
    ids: List[int] = []
    ok = True
    for index, item in enumerate(value):
        if item is _FAILED:  # its ${VAR} problem is already reported
            ok = False
            continue
        ps_id = _as_int(item)
        if ps_id is None or ps_id <= 0:
            p.invalid(f"{path}[{index}]", _Invalid("expected a positive integer plant id (ps_id)"),
                      item, echo=True)
            ok = False
        elif ps_id not in ids:
            ids.append(ps_id)
    return tuple(ids) if ok else _FAILED


# --- cross-key checks ---------------------------------------------------------------------------

def _finish_isolarcloud(p: _Parser, path: str, values: Dict[str, Any]) -> None:
    server = values.pop("server", None)
    if server is not None:
        values["region"], values["server"] = server


def _finish_tls(p: _Parser, path: str, values: Dict[str, Any]) -> None:
    if values.get("keyfile") is not None and "certfile" in values and not values["certfile"]:
        p.problem(_join(path, "keyfile"), f"needs {_join(path, 'certfile')} as well")
    if values.get("enabled") and values.get("insecure"):
        p.warn(_join(path, "insecure"), "the broker's certificate is not verified")


def _finish_mqtt(p: _Parser, path: str, values: Dict[str, Any]) -> None:
    if values.get("password") is not None and "username" in values and not values["username"]:
        p.problem(_join(path, "password"), f"needs {_join(path, 'username')} as well")


def _finish_polling(p: _Parser, path: str, values: Dict[str, Any]) -> None:
    for name in ("realtime", "faults"):
        seconds = values.get(name)
        if seconds is not None and seconds < QUOTA_WARNING_BELOW:
            p.warn(_join(path, name), f"polling every {seconds} s eats the API quota fast; "
                                      "use it for testing only")


def _finish_config(p: _Parser, path: str, values: Dict[str, Any]) -> None:
    values["source"] = p.source


# --- the schema ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Key:
    """One key: its check, its raw default (``_REQUIRED`` if none) and how secret it is."""

    name: str
    check: Check
    default: Any = _REQUIRED
    secret: bool = False  # wrapped in Secret, never echoed
    quiet: bool = False   # never echoed either (username, whole sections)


@dataclass(frozen=True)
class _Section:
    """A mapping of keys that becomes one dataclass; it is itself a check."""

    cls: Callable[..., Any]
    keys: Tuple[_Key, ...]
    finish: Optional[Finish] = None

    def __call__(self, p: _Parser, path: str, value: Any) -> Any:
        return p.section(path, value, self)


_SCHEMA = _Section(Config, (
    _Key("isolarcloud", _Section(IsolarCloudConfig, (
        _Key("server", _server),
        _Key("appkey", _required_text, secret=True),
        _Key("access_key", _required_text, secret=True),
        _Key("username", _required_text, quiet=True),
        _Key("password", _required_text, secret=True),
        _Key("rsa_public_key", _rsa_public_key, None),
        _Key("language", _choice(LANGUAGES), "_en_US"),
        _Key("token_file", _path(must_exist=False), "~/.local/state/sungrow2mqtt/token.json"),
        _Key("timeout", _number(1, 300), 20),
    ), _finish_isolarcloud), None, quiet=True),
    _Key("mqtt", _Section(MqttConfig, (
        _Key("host", _host, "localhost"),
        _Key("port", _integer(1, 65535), 1883),
        _Key("username", _optional_text, None, quiet=True),
        _Key("password", _optional_text, None, secret=True),
        _Key("client_id", _client_id, "sungrow2mqtt"),
        _Key("base_topic", _topic, "sungrow2mqtt"),
        _Key("keepalive", _integer(5, 3600), 60),
        _Key("tls", _Section(TlsConfig, (
            _Key("enabled", _boolean, False),
            _Key("ca_certs", _path(must_exist=True), None),
            _Key("certfile", _path(must_exist=True), None),
            _Key("keyfile", _path(must_exist=True), None),
            _Key("insecure", _boolean, False),
        ), _finish_tls), None, quiet=True),
    ), _finish_mqtt), None, quiet=True),
    _Key("homeassistant", _Section(HomeAssistantConfig, (
        _Key("discovery", _boolean, True),
        _Key("prefix", _topic, "homeassistant"),
        _Key("status_topic", _topic, "homeassistant/status"),
    )), None, quiet=True),
    _Key("polling", _Section(PollingConfig, (
        _Key("realtime", _integer(10, 86400), 300),
        _Key("faults", _integer(10, 86400), 300),
        _Key("devices", _integer(60, 604800), 3600),
        _Key("min_refresh_spacing", _number(0, 10), 5),
    ), _finish_polling), None, quiet=True),
    _Key("plants", _plants, None),
    _Key("points", _Section(PointsConfig, (
        _Key("catalog", _path(must_exist=True), None),
    )), None, quiet=True),
    _Key("logging", _Section(LoggingConfig, (
        _Key("level", _choice(LOG_LEVELS), "INFO"),
    )), None, quiet=True),
), _finish_config)


def known_keys() -> Tuple[str, ...]:
    """Every leaf key as a dotted path, so docs and tests can enumerate the schema."""
    def walk(section: _Section, path: str) -> List[str]:
        found: List[str] = []
        for key in section.keys:
            if isinstance(key.check, _Section):
                found.extend(walk(key.check, _join(path, key.name)))
            else:
                found.append(_join(path, key.name))
        return found
    return tuple(walk(_SCHEMA, ""))


# --- the parser ---------------------------------------------------------------------------------

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")


def _written_inline(raw: str) -> bool:
    """Whether a string holds anything besides ${VAR} references (i.e. a secret in the file)."""
    return bool(_ENV_REFERENCE.sub("", raw.replace("$${", "${{")).strip())


def _same(p: _Parser, path: str, value: Any) -> Any:
    return value


_ITEM = _Key("item", _same)  # list entries: substituted here, checked by the list's own check


class _Parser:
    """Walks the data along the schema, collecting problems instead of stopping at the first."""

    def __init__(self, source: str, environ: Mapping[str, str], base_dir: Path) -> None:
        self.source = source
        self.environ = environ
        self.base_dir = base_dir
        self.problems: List[str] = []
        self.inline_secrets: List[str] = []

    def problem(self, path: str, message: str) -> None:
        """Record one error line."""
        self.problems.append(f"{self.source}: {path}: {message}" if path
                             else f"{self.source}: {message}")

    def warn(self, path: str, message: str) -> None:
        """Log a warning about a value that is allowed but probably unwise."""
        log.warning("%s: %s: %s", self.source, path, message)

    def invalid(self, path: str, exc: _Invalid, value: object, echo: bool) -> None:
        """Record a failed check, adding what was found unless that would echo a secret."""
        message = exc.message
        if exc.show_got:
            message += f", got {_describe(value, echo)}"
        if exc.hint:
            message += f" ({exc.hint})"
        self.problem(path, message)

    def resolve_path(self, text: str) -> Path:
        """``~`` expanded (HOME from the given environment), relative to the config's directory."""
        home = self.environ.get("HOME")
        if home and (text == "~" or text.startswith("~/")):
            file = Path(home + text[1:])
        else:
            file = Path(text).expanduser()
        return file if file.is_absolute() else self.base_dir / file

    def substitute(self, value: Any) -> Any:
        """Replace ${VAR} references in a string; other values pass through."""
        if not isinstance(value, str) or "${" not in value:
            return value
        missing: List[str] = []
        malformed = False

        def replace(match: "re.Match[str]") -> str:
            nonlocal malformed
            if match.group(0) == "$${":
                return "${"
            name = match.group(1)
            if name is None or not _ENV_NAME.fullmatch(name):
                malformed = True
                return ""
            if name not in self.environ:
                missing.append(name)
                return ""
            return self.environ[name]

        result = _REFERENCE.sub(replace, value)
        if malformed:
            raise _Invalid("malformed ${...} reference (a name of letters, digits and _ is "
                           "expected; write $${ for a literal ${)", show_got=False)
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            verb = "is" if len(set(missing)) == 1 else "are"
            plural = "" if len(set(missing)) == 1 else "s"
            raise _Invalid(f"environment variable{plural} {names} {verb} not set", show_got=False)
        return result

    def value(self, path: str, key: _Key, raw: Any, given: bool) -> Any:
        """The checked value of one key, or ``_FAILED`` with the problem recorded."""
        if isinstance(raw, list):
            # A missing variable is reported at the entry that holds it.
            # Entries that failed stay in as _FAILED; the list's check skips them.
            raw = [self.value(f"{path}[{index}]", _ITEM, item, given)
                   for index, item in enumerate(raw)]
        value = raw
        try:
            value = self.substitute(raw)
            if key.secret and given and raw is not None and (
                    not isinstance(raw, str) or _written_inline(raw)):
                self.inline_secrets.append(path)
            result = key.check(self, path, value)
        except _Invalid as exc:
            self.invalid(path, exc, value, echo=not (key.secret or key.quiet))
            return _FAILED
        if key.secret and result is not None and result is not _FAILED:
            result = Secret(result)
        return result

    def section(self, path: str, data: Any, spec: _Section) -> Any:
        """Check every key of one mapping, report unknown ones, and build its dataclass."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise _Invalid("expected a mapping")
        before = len(self.problems)
        values: Dict[str, Any] = {}
        for key in spec.keys:
            key_path = _join(path, key.name)
            if key.name in data:
                result = self.value(key_path, key, data[key.name], given=True)
            elif key.default is _REQUIRED:
                self.problem(key_path, "required")
                continue
            else:
                result = self.value(key_path, key, key.default, given=False)
            if result is not _FAILED:
                values[key.name] = result
        names = [key.name for key in spec.keys]
        for name in data:
            if name not in names:
                hint = _suggest(str(name), names)
                self.problem(_join(path, name), f"unknown key ({hint})" if hint else "unknown key")
        if spec.finish is not None:
            spec.finish(self, path, values)
        if len(self.problems) > before:
            return _FAILED
        return spec.cls(**values)


def _parse(data: object, source: str, environ: Optional[Mapping[str, str]],
           base_dir: Optional[Path], file_mode: Optional[int] = None,
           problems: Sequence[str] = ()) -> Config:
    """The one place a Config is made: check everything, warn, then raise or return."""
    parser = _Parser(source, os.environ if environ is None else environ,
                     Path.cwd() if base_dir is None else Path(base_dir).absolute())
    parser.problems.extend(problems)
    if not isinstance(data, dict):
        names = ", ".join(key.name for key in _SCHEMA.keys)
        parser.problem("", f"expected a mapping of sections ({names}) at the top level, "
                           f"got {_describe(data, echo=False)}")
        raise ConfigError("\n".join(parser.problems))
    config = parser.section("", data, _SCHEMA)
    if file_mode is not None and file_mode & stat.S_IROTH and parser.inline_secrets:
        log.warning("%s is readable by other users and holds secrets written inline (%s); "
                    "run 'chmod 600 %s' or use ${VAR} environment references instead",
                    source, ", ".join(parser.inline_secrets), source)
    if parser.problems:
        raise ConfigError("\n".join(parser.problems))
    assert isinstance(config, Config)
    return config


# --- YAML ---------------------------------------------------------------------------------------

_BOOL_TAG = "tag:yaml.org,2002:bool"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads only true/false as booleans and notes duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: List[Tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                if key_node.value in seen:
                    self.duplicates.append((key_node.start_mark.line + 1, key_node.value))
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _read_yaml(file: Path, source: str) -> Tuple[Any, List[str]]:
    """The file's data and its duplicate-key problems; unreadable or broken files raise."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(f"{source}: cannot read the file: permission denied") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file: {exc.strerror or exc}") from None
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        # Only the problem and its position: the excerpt in str(exc) could show a secret.
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{source}: YAML syntax error{where}: {problem}") from None
    finally:
        loader.dispose()
    if data is None:
        raise ConfigError(f"{source}: the file is empty")
    duplicates = [f"{source}: line {line}: duplicate key {key!r} (only the last one would count)"
                  for line, key in loader.duplicates]
    return data, duplicates


# --- public API ---------------------------------------------------------------------------------

def load_config(path: Union[str, Path], environ: Optional[Mapping[str, str]] = None) -> Config:
    """Read and check the configuration file, raising one ConfigError listing every problem."""
    file = Path(path)
    source = str(path)
    data, problems = _read_yaml(file, source)
    try:
        file_mode: Optional[int] = file.stat().st_mode
    except OSError:
        file_mode = None
    config = _parse(data, source, environ, file.absolute().parent, file_mode, problems)
    log.debug("Configuration read from %s", source)
    return config


def parse_config(data: object, source: str = "<config>",
                 environ: Optional[Mapping[str, str]] = None,
                 base_dir: Optional[Path] = None) -> Config:
    """Check already-loaded data (tests, other front ends); paths are relative to ``base_dir``."""
    return _parse(data, source, environ, base_dir)


def example_config_text() -> str:
    """The annotated example file shipped with the package, for ``--print-example`` and docs."""
    resource = resources.files("sungrow2mqtt") / "data" / "config.yaml.example"
    return resource.read_text(encoding="utf-8")
