"""Read, check and freeze the YAML configuration, so no other module ever touches raw YAML.

The whole file is checked at once with the shared toolkit (:mod:`sungrow2mqtt.validation`) and
every problem is reported in one :class:`ConfigError`, one line each, as
``config.yaml: mqtt.port: expected an integer 1–65535, got 'abc'``.  Secret values are wrapped in
:class:`Secret` and never echoed, nor is any value taken from the environment.  The schema below
is the single list of keys, checks and defaults; defaults are raw YAML values and go through the
same checks as user input.

String values may hold ``${VAR}`` references to the environment (``$${`` is a literal ``${``).
Numeric keys accept strings of digits, so ``port: ${MQTT_PORT}`` works; booleans must be written
``true``/``false`` (the loader does not read ``yes``/``on`` as booleans).  A ``$VAR`` without
braces is not expanded: it draws a warning, and an error in a credential, where it would be sent
as written and count toward the account lockout.
"""
from __future__ import annotations

import logging
import os
import re
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from sungrow2mqtt.errors import ConfigError
from sungrow2mqtt.isolarcloud.crypto import CryptoError, load_public_key
from sungrow2mqtt.isolarcloud.servers import REGIONS, resolve_server
from sungrow2mqtt.secret import Secret
from sungrow2mqtt.validation import (
    FAILED,
    Check,
    Field,
    Invalid,
    ListOf,
    Problems,
    Section,
    Walker,
    as_int,
    boolean,
    choice,
    describe,
    existing_file,
    file_path,
    integer,
    join,
    load_yaml,
    matching,
    number,
    optional,
    read_text,
    suggest,
    text,
)

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
class ControlConfig:
    """Whether inverter settings may be changed over MQTT, and on which plants and devices.

    Off unless asked: writing settings to someone's inverter must be a decision.  Empty
    ``plants`` and ``devices`` mean every bridged device whose settings the cloud lets this
    account change.
    """

    enabled: bool
    plants: Tuple[int, ...]
    devices: Tuple[str, ...]

    def allows(self, ps_id: int, serial: str, ps_key: str) -> bool:
        """Whether a device may be controlled by this configuration."""
        return self.enabled and (not self.plants or ps_id in self.plants) and (
            not self.devices or serial in self.devices or ps_key in self.devices)


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
    control: ControlConfig
    logging: LoggingConfig
    source: str


# --- checks -------------------------------------------------------------------------------------

_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _topic(value: Any) -> str:
    """A concrete topic (or prefix) that other topics are built from."""
    topic = text(value)
    if "+" in topic or "#" in topic:
        raise Invalid("expected a topic without wildcards (+ #)")
    if topic.startswith("/") or topic.endswith("/"):
        raise Invalid("expected a topic without a leading or trailing '/'")
    if "//" in topic:
        raise Invalid("expected a topic without empty levels")
    if topic.startswith("$") or "\0" in topic:
        raise Invalid("expected a topic not starting with '$' and without NUL characters")
    return topic


def _host(value: Any) -> str:
    host = text(value)
    if "://" in host or "/" in host or any(char.isspace() for char in host):
        raise Invalid("expected a host name or IP address (no scheme, path or spaces)")
    return host


_client_id = matching(r"[A-Za-z0-9_-]{1,64}", "1–64 characters of A-Z a-z 0-9 _ -")


def _server(value: Any) -> Tuple[str, str]:
    """(as written, resolved gateway URL); the finisher splits it into ``region`` and ``server``."""
    name = text(value).strip()
    try:
        url = resolve_server(name)
    except ValueError:
        raise Invalid(f"expected one of {', '.join(REGIONS)} or an http(s):// URL",
                      hint=suggest(name, list(REGIONS))) from None
    return (name.lower() if name.lower() in REGIONS else name), url


def _looks_like_path(key: str) -> bool:
    # Base64 X.509 text never holds '.' or '~' and starts with 'MI' (a DER sequence).
    return "." in key or key.startswith(("/", "~"))


def _is_file_quietly(file: Path) -> bool:
    try:
        return file.is_file()
    except (OSError, ValueError):  # name too long, NUL byte: key text, not a path
        return False


def _rsa_public_key(resolve: Callable[[str], Path]) -> Check:
    """The key TEXT: given inline (base64 X.509 or PEM) or read from the file it names."""
    unusable = ("not a usable RSA public key (expected base64 X.509 text, PEM, or the path of a "
                "file holding one)")

    def check(value: Any) -> str:
        key = text(value).strip()
        origin = ""
        if not key.startswith("-----BEGIN") and "\n" not in key:
            file = resolve(key)
            if _looks_like_path(key) or _is_file_quietly(file):
                existing_file(file)
                try:
                    key = file.read_text(encoding="utf-8").strip()
                except (OSError, UnicodeDecodeError) as exc:
                    reason = f"as text ({type(exc).__name__})"
                    raise Invalid(f"cannot read {file} {reason}", show_got=False,
                                  withheld=f"cannot read the file {reason}") from None
                origin = f"{file}: "
        try:
            load_public_key(key)
        except CryptoError:
            raise Invalid(origin + unusable, show_got=False, withheld=unusable) from None
        return key
    return check


def _plant_id(value: Any) -> int:
    ps_id = as_int(value)
    if ps_id is None or ps_id <= 0:
        raise Invalid("expected a positive integer plant id (ps_id)")
    return ps_id


_device_id = matching(r"[A-Za-z0-9_.-]{1,64}",
                      "a device serial number or ps_key (like A2231234567 or 1234567_14_1_1)")


def _unique(ids: List[Any]) -> Tuple[Any, ...]:
    return tuple(dict.fromkeys(ids))


# --- cross-key checks ---------------------------------------------------------------------------

def _finish_isolarcloud(problems: Problems, path: str, values: Dict[str, Any]) -> None:
    server = values.pop("server", None)
    if server is None:
        return
    values["region"], values["server"] = server
    if server[1].startswith("http://") and urlsplit(server[1]).hostname not in _LOCAL_HOSTS:
        problems.warn(join(path, "server"), "plain http:// sends the credentials unencrypted; "
                                            "use it only for a simulator")


def _finish_tls(problems: Problems, path: str, values: Dict[str, Any]) -> None:
    if values.get("keyfile") is not None and "certfile" in values and not values["certfile"]:
        problems.add(join(path, "keyfile"), f"needs {join(path, 'certfile')} as well")
    if values.get("enabled") and values.get("insecure"):
        problems.warn(join(path, "insecure"), "the broker's certificate is not verified")


def _finish_mqtt(problems: Problems, path: str, values: Dict[str, Any]) -> None:
    if values.get("password") is not None and "username" in values and not values["username"]:
        problems.add(join(path, "password"), f"needs {join(path, 'username')} as well")
    if len(values.get("client_id", "")) > CLIENT_ID_RECOMMENDED:
        problems.warn(join(path, "client_id"), f"longer than {CLIENT_ID_RECOMMENDED} characters; "
                                               "MQTT 3.1.1 brokers may refuse it")


def _finish_polling(problems: Problems, path: str, values: Dict[str, Any]) -> None:
    for name in ("realtime", "faults"):
        seconds = values.get(name)
        if seconds is not None and seconds < QUOTA_WARNING_BELOW:
            problems.warn(join(path, name), f"polling every {seconds} s eats the API quota "
                                            "fast; use it for testing only")


def _finish_control(problems: Problems, path: str, values: Dict[str, Any]) -> None:
    if values.get("enabled") is False and (values.get("plants") or values.get("devices")):
        problems.warn(join(path, "enabled"), "control is off, so control.plants and "
                                             "control.devices have no effect")


def _finish_config(problems: Problems, path: str, values: Dict[str, Any]) -> None:
    values["source"] = problems.source
    plants, control = values.get("plants"), values.get("control")
    if plants and control is not None:
        for ps_id in control.plants:
            if ps_id not in plants:
                problems.warn("control.plants", f"plant {ps_id} is not bridged (not in plants), "
                                                "so it cannot be controlled")


# --- the schema ---------------------------------------------------------------------------------

def _schema(resolve: Callable[[str], Path]) -> Section:
    """Every key with its check and raw default; paths are made absolute by ``resolve``."""
    def path(must_exist: bool) -> Check:
        return optional(file_path(resolve, must_exist))

    return Section((
        Field("isolarcloud", Section((
            Field("server", _server),
            Field("appkey", text, secret=True),
            Field("access_key", text, secret=True),
            Field("username", text, quiet=True),
            Field("password", text, secret=True),
            Field("rsa_public_key", optional(_rsa_public_key(resolve)), None),
            Field("language", choice(LANGUAGES), "_en_US"),
            Field("token_file", path(must_exist=False), "~/.local/state/sungrow2mqtt/token.json"),
            Field("timeout", number(1, 300), 20),
        ), IsolarCloudConfig, _finish_isolarcloud), None),
        Field("mqtt", Section((
            Field("host", _host, "localhost"),
            Field("port", integer(1, 65535), 1883),
            Field("username", optional(text), None, quiet=True),
            Field("password", optional(text), None, secret=True),
            Field("client_id", _client_id, "sungrow2mqtt"),
            Field("base_topic", _topic, "sungrow2mqtt"),
            Field("keepalive", integer(5, 3600), 60),
            Field("tls", Section((
                Field("enabled", boolean, False),
                Field("ca_certs", path(must_exist=True), None),
                Field("certfile", path(must_exist=True), None),
                Field("keyfile", path(must_exist=True), None),
                Field("insecure", boolean, False),
            ), TlsConfig, _finish_tls), None),
        ), MqttConfig, _finish_mqtt), None),
        Field("homeassistant", Section((
            Field("discovery", boolean, True),
            Field("prefix", _topic, "homeassistant"),
            Field("status_topic", _topic, "homeassistant/status"),
        ), HomeAssistantConfig), None),
        Field("polling", Section((
            Field("realtime", integer(10, 86400), 300),
            Field("faults", integer(10, 86400), 300),
            Field("devices", integer(60, 604800), 3600),
            Field("min_refresh_spacing", number(0, 10), 5),
        ), PollingConfig, _finish_polling), None),
        Field("plants", ListOf(_plant_id, "a list of plant ids (ps_id)", _unique), None),
        Field("points", Section((
            Field("catalog", path(must_exist=True), None),
        ), PointsConfig), None),
        Field("control", Section((
            Field("enabled", boolean, False),
            Field("plants", ListOf(_plant_id, "a list of plant ids (ps_id)", _unique), None),
            Field("devices", ListOf(_device_id, "a list of device serial numbers or ps_keys",
                                    _unique), None),
        ), ControlConfig, _finish_control), None),
        Field("logging", Section((
            Field("level", choice(LOG_LEVELS), "INFO"),
        ), LoggingConfig), None),
    ), Config, _finish_config)


def known_keys() -> Tuple[str, ...]:
    """Every leaf key as a dotted path, so docs and tests can enumerate the schema."""
    def walk(section: Section, path: str) -> List[str]:
        found: List[str] = []
        for key in section.fields:
            if isinstance(key.check, Section):
                found.extend(walk(key.check, join(path, key.name)))
            else:
                found.append(join(path, key.name))
        return found
    return tuple(walk(_schema(Path), ""))


# --- the environment ----------------------------------------------------------------------------

_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_BARE_REFERENCE = re.compile(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)")


def _written_inline(raw: str) -> bool:
    """Whether a string holds anything besides ${VAR} references (i.e. a secret in the file)."""
    return bool(_ENV_REFERENCE.sub("", raw.replace("$${", "${{")).strip())


class _Environment:
    """Replaces ${VAR} references before a value is checked, and notes what to tell about them."""

    def __init__(self, environ: Mapping[str, str], problems: Problems) -> None:
        self.environ = environ
        self.problems = problems
        self.inline_secrets: List[str] = []

    def prepare(self, path: str, key: Field, raw: Any, given: bool) -> Tuple[Any, Optional[str]]:
        """(value with ${VAR}s replaced, the references it came from, if any)."""
        if key.secret and given and raw is not None and (
                not isinstance(raw, str) or _written_inline(raw)):
            self.inline_secrets.append(path)
        if not isinstance(raw, str):
            return raw, None
        if given:
            self._check_bare_references(path, key, raw)
        if "${" not in raw:
            return raw, None
        missing: List[str] = []
        used: List[str] = []
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
            used.append(f"${{{name}}}")
            return self.environ[name]

        value = _REFERENCE.sub(replace, raw)
        if malformed:
            raise Invalid("malformed ${...} reference (a name of letters, digits and _ is "
                          "expected; write $${ for a literal ${)", show_got=False)
        if missing:
            names = list(dict.fromkeys(missing))
            verb, plural = ("is", "") if len(names) == 1 else ("are", "s")
            raise Invalid(f"environment variable{plural} {', '.join(names)} {verb} not set",
                          show_got=False)
        return value, " and ".join(dict.fromkeys(used)) or None

    def _check_bare_references(self, path: str, key: Field, raw: str) -> None:
        """``$VAR`` is not expanded: say so, and refuse it as a whole credential.

        A credential sent as ``$SUNGROW_PASSWORD`` fails the login, and failed logins count
        toward the account lockout (on every restart).  Its value is not shown (it might be
        the real password after all), except the name of a variable that is actually set.
        """
        names = _BARE_REFERENCE.findall(raw)
        if not names:
            return
        if key.secret or key.quiet:
            whole = _BARE_REFERENCE.fullmatch(raw.strip())
            if whole:
                name = whole.group(1) if whole.group(1) in self.environ else "VAR"
                raise Invalid(f"looks like an environment variable without braces; write "
                              f"${{{name}}} to read it from the environment (as written it "
                              "would be sent literally, and failed logins count toward the "
                              "account lockout)", show_got=False)
            return
        written = ", ".join(f"${name}" for name in names)
        wanted = ", ".join(f"${{{name}}}" for name in names)
        self.problems.warn(path, f"{written} is not expanded: write {wanted} to read the "
                                 "environment (the value is used as written)")


def _resolver(environ: Mapping[str, str], base_dir: Path) -> Callable[[str], Path]:
    """``~`` expanded (HOME from the given environment), relative to the config's directory."""
    def resolve(path: str) -> Path:
        home = environ.get("HOME")
        if home and (path == "~" or path.startswith("~/")):
            file = Path(home + path[1:])
        else:
            file = Path(path).expanduser()
        return file if file.is_absolute() else base_dir / file
    return resolve


# --- parsing ------------------------------------------------------------------------------------

def _parse(data: object, problems: Problems, environ: Optional[Mapping[str, str]],
           base_dir: Optional[Path], file_mode: Optional[int] = None) -> Config:
    """The one place a Config is made: check everything, warn, then raise or return."""
    environ = os.environ if environ is None else environ
    base = Path.cwd() if base_dir is None else Path(base_dir).absolute()
    schema = _schema(_resolver(environ, base))
    if not isinstance(data, dict):
        names = ", ".join(key.name for key in schema.fields)
        problems.add("", f"expected a mapping of sections ({names}) at the top level, "
                         f"got {describe(data, echo=False)}")
        problems.raise_if_any(ConfigError)
    environment = _Environment(environ, problems)
    config = Walker(problems, environment.prepare).section("", data, schema)
    if file_mode is not None and file_mode & stat.S_IROTH and environment.inline_secrets:
        source = problems.source
        log.warning("%s is readable by other users and holds secrets written inline (%s); "
                    "run 'chmod 600 %s' or use ${VAR} environment references instead",
                    source, ", ".join(environment.inline_secrets), source)
    problems.raise_if_any(ConfigError)
    assert isinstance(config, Config)
    return config


# --- public API ---------------------------------------------------------------------------------

def load_config(path: Union[str, Path], environ: Optional[Mapping[str, str]] = None) -> Config:
    """Read and check the configuration file, raising one ConfigError listing every problem."""
    file = Path(path)
    source = str(path)
    problems = Problems(source, log)
    data = load_yaml(read_text(file, source, ConfigError), problems)
    if data is FAILED:
        problems.raise_if_any(ConfigError)
    if data is None:
        raise ConfigError(f"{source}: the file is empty")
    try:
        file_mode: Optional[int] = file.stat().st_mode
    except OSError:
        file_mode = None
    config = _parse(data, problems, environ, file.absolute().parent, file_mode)
    log.debug("Configuration read from %s", source)
    return config


def parse_config(data: object, source: str = "<config>",
                 environ: Optional[Mapping[str, str]] = None,
                 base_dir: Optional[Path] = None) -> Config:
    """Check already-loaded data (tests, other front ends); paths are relative to ``base_dir``."""
    return _parse(data, Problems(source, log), environ, base_dir)


def example_config_text() -> str:
    """The annotated example file shipped with the package, for ``--print-example`` and docs."""
    resource = resources.files("sungrow2mqtt") / "data" / "config.yaml.example"
    return resource.read_text(encoding="utf-8")
