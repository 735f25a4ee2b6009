"""The Home Assistant add-on (ha-addon/ and sungrow2mqtt.addon), without a Supervisor.

The manifest and its options schema are checked by a small validator written from the add-on
configuration documentation (developers.home-assistant.io, "App configuration" and "Create an app
repository"); a real local HTTP server plays the Supervisor's MQTT service, and the add-on's own
run script bridges the simulator to a real mosquitto.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Set, Tuple

import pytest
import yaml
from Crypto.PublicKey import RSA

from bridge_harness import ready
from conftest import SIM_START, free_port
from mqtt_probe import MqttProbe
from sungrow2mqtt import __version__
from sungrow2mqtt.addon import (SECRETS, TLS_OPTIONS, build_config, mqtt_service, prepare,
                                 write_config)
from sungrow2mqtt.config import known_keys, load_config, parse_config
from sungrow2mqtt.errors import ConfigError, Sungrow2MqttError
from sungrow2mqtt.isolarcloud.crypto import public_key_base64
from sungrow2mqtt.secret import Secret
from sungrow2mqtt.simulator import Credentials, SimulatorServer

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "ha-addon"
MANIFEST: Dict[str, Any] = yaml.safe_load((ADDON / "config.yaml").read_text(encoding="utf-8"))
SCHEMA: Dict[str, Any] = MANIFEST["schema"]

# --- the add-on configuration as documented -----------------------------------------------------

REQUIRED = {"name": str, "version": str, "slug": str, "description": str, "arch": list}
OPTIONAL = {
    "machine": list, "url": str, "startup": str, "webui": str, "boot": str, "ports": dict,
    "ports_description": dict, "host_network": bool, "host_ipc": bool, "host_dbus": bool,
    "host_pid": bool, "host_uts": bool, "devices": list, "homeassistant": str,
    "hassio_role": str, "hassio_api": bool, "homeassistant_api": bool, "docker_api": bool,
    "privileged": list, "full_access": bool, "apparmor": (bool, str), "map": list,
    "environment": dict, "audio": bool, "video": bool, "gpio": bool, "usb": bool, "uart": bool,
    "udev": bool, "devicetree": bool, "kernel_modules": bool, "stdin": bool, "legacy": bool,
    "options": dict, "schema": (dict, bool), "image": str, "timeout": int, "tmpfs": bool,
    "discovery": list, "services": list, "auth_api": bool, "ingress": bool, "ingress_port": int,
    "ingress_entry": str, "ingress_stream": bool, "panel_icon": str, "panel_title": str,
    "panel_admin": bool, "backup": str, "backup_pre": str, "backup_post": str,
    "backup_exclude": list, "stage": str, "init": bool, "watchdog": str, "realtime": bool,
    "journald": bool, "breaking_versions": list, "ulimits": dict,
}
CHOICES = {
    "startup": {"initialize", "system", "services", "application", "once"},
    "boot": {"auto", "manual", "manual_only"},
    "stage": {"stable", "experimental", "deprecated"},
    "backup": {"hot", "cold"},
    "hassio_role": {"default", "homeassistant", "backup", "manager", "admin"},
}
ARCHES = {"aarch64", "amd64"}
MAP_TYPES = {"homeassistant_config", "addon_config", "ssl", "addons", "backup", "share", "media",
             "all_addon_configs", "data"}
SERVICE = re.compile(r"(mqtt|mysql):(provide|want|need)")
SLUG = re.compile(r"[a-z0-9_]+")        # "URI friendly"; unique within the repository

# The schema mini-language: str/int/float with optional (min,max) ranges, bool, email, url,
# password, port, match(REGEX), list(a|b|...), device(filter); a trailing ? makes it optional.
ELEMENT = re.compile(r"""(?P<type>
      bool | email | url | password | port
    | device (?:\(subsystem=[a-z]+\))?
    | (?:str|int) (?:\((?P<min>-?\d+)?,(?P<max>-?\d+)?\))?
    | float (?:\((?P<fmin>-?\d*\.?\d+)?,(?P<fmax>-?\d*\.?\d+)?\))?
    | match\((?P<regex>.+)\)
    | list\((?P<choices>[^|()]+(?:\|[^|()]+)*)\)
    )(?P<optional>\?)?""", re.VERBOSE)
MAX_SECTION_DEPTH = 1                   # "nested arrays and dictionaries ... maximum depth of two"


def manifest_problems(manifest: Any) -> List[str]:
    """Everything in an add-on config.yaml that the documentation does not allow."""
    if not isinstance(manifest, dict):
        return ["expected a mapping"]
    problems = [f"{key}: required" for key in REQUIRED if key not in manifest]
    for key, value in manifest.items():
        expected = REQUIRED.get(key) or OPTIONAL.get(key)
        if expected is None:
            problems.append(f"{key}: not a documented option")
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            problems.append(f"{key}: expected {expected}, got {value!r}")
        elif key in CHOICES and value not in CHOICES[key]:
            problems.append(f"{key}: {value!r} is not one of {sorted(CHOICES[key])}")
    if isinstance(manifest.get("slug"), str) and not SLUG.fullmatch(manifest["slug"]):
        problems.append(f"slug: {manifest['slug']!r} is not URI friendly")
    for arch in manifest.get("arch") or []:
        if arch not in ARCHES:
            problems.append(f"arch: {arch!r} is not one of {sorted(ARCHES)}")
    for service in manifest.get("services") or []:
        if not SERVICE.fullmatch(str(service)):
            problems.append(f"services: {service!r} is not service:provide|want|need")
    for entry in manifest.get("map") or []:
        kind = entry.get("type") if isinstance(entry, dict) else str(entry).split(":")[0]
        if kind not in MAP_TYPES:
            problems.append(f"map: unknown type {kind!r}")
        if isinstance(entry, dict) and not isinstance(entry.get("read_only", True), bool):
            problems.append(f"map: {kind}: read_only must be true or false")
    schema = manifest.get("schema", {})
    if isinstance(schema, dict):
        problems += schema_problems(schema, manifest.get("options", {}))
    return problems


def schema_problems(schema: Mapping[str, Any], options: Any, path: str = "",
                    depth: int = 0) -> List[str]:
    """Problems of a schema and of the default options given for it."""
    if not isinstance(options, dict):
        return [f"options.{path or '<root>'}: expected a mapping"]
    problems = [f"options.{path}{key}: not in the schema" for key in options
                if key not in schema]
    for key, typ in schema.items():
        where = f"{path}{key}"
        if isinstance(typ, dict):
            if depth >= MAX_SECTION_DEPTH:
                problems.append(f"schema.{where}: nested deeper than the documented limit")
            elif key not in options:
                problems.append(f"options.{where}: a section must be given (it cannot be "
                                "optional)")
            else:
                problems += schema_problems(typ, options[key], where + ".", depth + 1)
            continue
        if isinstance(typ, list) and (len(typ) != 1 or not isinstance(typ[0], (str, dict))):
            problems.append(f"schema.{where}: a list holds exactly one element type")
            continue
        broken = _element_problems(typ[0] if isinstance(typ, list) else typ, f"schema.{where}")
        problems += broken
        if key in options and not broken:
            problems += value_problems(typ, options[key], f"options.{where}")
    return problems


def _element_problems(typ: Any, where: str) -> List[str]:
    if isinstance(typ, dict):
        return [f"{where}: a section inside a list is deeper than needed here"]
    if not isinstance(typ, str) or not ELEMENT.fullmatch(typ):
        return [f"{where}: {typ!r} is not a documented type"]
    match = ELEMENT.fullmatch(typ)
    assert match is not None
    if match.group("regex") is not None:
        try:
            re.compile(match.group("regex"))
        except re.error as exc:
            return [f"{where}: bad regular expression ({exc})"]
    return []


def value_problems(typ: Any, value: Any, where: str) -> List[str]:
    """Whether ``value`` is what an option of type ``typ`` holds (lists: each item)."""
    if isinstance(typ, list):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [p for item in value for p in value_problems(typ[0], item, where + "[]")]
    match = ELEMENT.fullmatch(typ)
    assert match is not None, typ
    kind = match.group("type").split("(")[0]
    low = match.group("min") or match.group("fmin")
    high = match.group("max") or match.group("fmax")
    bad = [f"{where}: {value!r} is not a valid {typ.rstrip('?')}"]
    if value is None:
        return bad
    if kind in ("str", "password", "email", "url", "match", "list", "device"):
        if not isinstance(value, str):
            return bad
        size: float = len(value)
    elif kind == "bool":
        return [] if isinstance(value, bool) else bad
    elif kind in ("int", "port"):
        if isinstance(value, bool) or not isinstance(value, int):
            return bad
        size = value
        low, high = ("1", "65535") if kind == "port" else (low, high)
    else:  # float
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return bad
        size = value
    if (low is not None and size < float(low)) or (high is not None and size > float(high)):
        return bad
    if kind == "match" and not re.fullmatch(match.group("regex"), value):
        return bad
    if kind == "list" and value not in match.group("choices").split("|"):
        return bad
    if kind == "url" and not re.fullmatch(r"[a-z][a-z0-9+.-]*://[^\s/]+\S*", value):
        return bad
    if kind == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        return bad
    return []


def options_problems(schema: Mapping[str, Any], options: Any, path: str = "") -> List[str]:
    """What the Supervisor would refuse in a user's options: unknown, missing or bad values."""
    if not isinstance(options, dict):
        return [f"{path or '<root>'}: expected a mapping"]
    problems = [f"{path}{key}: unknown option" for key in options if key not in schema]
    for key, typ in schema.items():
        where = f"{path}{key}"
        if isinstance(typ, dict):
            problems += options_problems(typ, options.get(key), where + ".")
        elif key in options:
            problems += value_problems(typ, options[key], where)
        elif not (typ[0] if isinstance(typ, list) else typ).endswith("?"):
            problems.append(f"{where}: required")
    return problems


def leaves(schema: Mapping[str, Any], path: str = "") -> Dict[str, Any]:
    """Every option of the schema as a dotted path -> its type."""
    found: Dict[str, Any] = {}
    for key, typ in schema.items():
        if isinstance(typ, dict):
            found.update(leaves(typ, f"{path}{key}."))
        else:
            found[f"{path}{key}"] = typ
    return found


def config_key(option: str) -> str:
    """The config.yaml key an option fills (mqtt.tls_insecure -> mqtt.tls.insecure)."""
    section, _, name = option.partition(".")
    if section == "mqtt" and name in TLS_OPTIONS:
        return f"mqtt.tls.{TLS_OPTIONS[name]}"
    return option


# --- the repository -----------------------------------------------------------------------------

def repository_files() -> List[str]:
    """The files a clone of this repository holds (tracked, or new and not ignored)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [line for line in listed.splitlines() if (ROOT / line).exists()]


def test_the_repository_holds_one_add_on_and_its_repository_file():
    files = repository_files()
    configs = [f for f in files if re.fullmatch(r"(.*/)?config\.(yaml|yml|json)", f)]
    repositories = [f for f in files if re.fullmatch(r"(.*/)?repository\.(yaml|yml|json)", f)]
    assert configs == ["ha-addon/config.yaml"], "the Supervisor takes every config.* for an add-on"
    assert repositories == ["repository.yaml"]
    repository = yaml.safe_load((ROOT / "repository.yaml").read_text(encoding="utf-8"))
    assert isinstance(repository.get("name"), str) and repository["name"]
    assert set(repository) <= {"name", "url", "maintainer"}
    # Supervisor 2026.04 and later warn about a build.yaml: the Dockerfile names its base.
    assert not [f for f in files if re.fullmatch(r"ha-addon/build\.(yaml|yml|json)", f)]


def test_the_add_on_folder_has_what_the_store_shows():
    for name in ("Dockerfile", "run.sh", "DOCS.md", "README.md", "CHANGELOG.md", "icon.png",
                 "translations/en.yaml"):
        assert (ADDON / name).is_file(), name
    assert os.access(ADDON / "run.sh", os.X_OK)
    png = (ADDON / "icon.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == height == 128                           # square, 128 px recommended
    changelog = (ADDON / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(MANIFEST['version'])}\b", changelog, re.MULTILINE)


def test_the_manifest_follows_the_documented_configuration():
    assert manifest_problems(MANIFEST) == []
    assert MANIFEST["version"] == __version__       # the image installs exactly this version
    assert "mqtt:want" in MANIFEST["services"]
    assert set(MANIFEST["arch"]) == ARCHES


@pytest.mark.parametrize("change, problem", [
    ({"slug": None}, "slug: required"),
    ({"arch": ["amd64", "armv7"]}, "arch: 'armv7'"),
    ({"boot": "always"}, "boot: 'always'"),
    ({"services": ["mqtt:use"]}, "services: 'mqtt:use'"),
    ({"servics": ["mqtt:want"]}, "servics: not a documented option"),
    ({"map": [{"type": "secrets"}]}, "map: unknown type 'secrets'"),
    ({"version": 0.1}, "version: expected"),
    ({"init": "false"}, "init: expected"),
    ({"schema": {"port": "int(1,65535)"}, "options": {"port": 0}}, "options.port: 0"),
    ({"schema": {"level": "list(INFO|DEBUG)"}, "options": {"level": "TRACE"}}, "'TRACE'"),
    ({"schema": {"name": "string"}, "options": {}}, "'string' is not a documented type"),
    ({"schema": {"a": "str"}, "options": {"b": "x"}}, "options.b: not in the schema"),
    ({"schema": {"a": {"b": {"c": "str"}}}, "options": {"a": {"b": {}}}}, "deeper"),
    ({"schema": {"a": {"b": "str?"}}, "options": {}}, "options.a: a section must be given"),
    ({"schema": {"p": "port"}, "options": {"p": 70000}}, "options.p: 70000"),
    ({"schema": {"t": "match(^[a-z]+$)"}, "options": {"t": "A1"}}, "options.t: 'A1'"),
    ({"schema": {"b": "bool"}, "options": {"b": "yes"}}, "options.b: 'yes'"),
    ({"schema": {"l": ["int", "str"]}, "options": {}}, "exactly one element type"),
    ({"schema": {"u": "url"}, "options": {"u": "core-mosquitto"}}, "options.u"),
])
def test_the_manifest_validator_catches_mistakes(change, problem):
    manifest = {key: value for key, value in {**MANIFEST, **change}.items() if value is not None}
    problems = manifest_problems(manifest)
    assert any(problem in line for line in problems), problems


def full_options(tmp_path: Path) -> Dict[str, Any]:
    """Every option set to a valid non-default value, files included."""
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text("not read before connecting\n")
    (tmp_path / "points.yaml").write_text("device_types: {}\n")
    return {
        "isolarcloud": {"server": "au", "appkey": "ADDONAPPKEY0000000000000000000001",
                        "access_key": "addonaccesskey00000000000000001",
                        "username": "owner@example.com", "password": "hunter2-addon",
                        "rsa_public_key": public_key_base64(RSA.generate(1024)),
                        "language": "_de_DE", "timeout": 30.5},
        "mqtt": {"host": "broker.lan", "port": 8883, "username": "bridge",
                 "password": "mqtt-pw-addon", "client_id": "s2m-roof", "base_topic": "solar",
                 "keepalive": 30, "tls": True, "tls_ca_certs": str(tmp_path / "ca.crt"),
                 "tls_certfile": str(tmp_path / "client.crt"),
                 "tls_keyfile": str(tmp_path / "client.key"), "tls_insecure": True},
        "homeassistant": {"discovery": False, "prefix": "ha", "status_topic": "ha/status"},
        "polling": {"realtime": 600, "faults": 900, "devices": 7200, "min_refresh_spacing": 2.5},
        "plants": [1563218, 7654321],
        "points": {"catalog": str(tmp_path / "points.yaml")},
        "control": {"enabled": True, "plants": [1563218], "devices": ["A2231234567"]},
        "logging": {"level": "WARNING"},
    }


def with_credentials(**mqtt: Any) -> Dict[str, Any]:
    """The manifest's defaults plus what a user must fill in."""
    options = json.loads(json.dumps(MANIFEST["options"]))
    options["isolarcloud"].update(appkey="ADDONAPPKEY0000000000000000000001",
                                  access_key="addonaccesskey00000000000000001",
                                  username="owner@example.com", password="hunter2-addon")
    options["mqtt"].update(mqtt)
    return options


def test_the_supervisor_accepts_filled_in_options_and_names_missing_ones(tmp_path):
    assert options_problems(SCHEMA, with_credentials()) == []
    assert options_problems(SCHEMA, full_options(tmp_path)) == []
    options = with_credentials()
    del options["isolarcloud"]["password"]
    options["mqtt"]["port"] = 0
    assert options_problems(SCHEMA, options) == ["isolarcloud.password: required",
                                                 "mqtt.port: 0 is not a valid port"]


def test_the_options_mirror_every_config_key():
    options = {config_key(option) for option in leaves(SCHEMA)}
    assert options == set(known_keys()) - {"isolarcloud.token_file"}


def secret_paths(value: Any, path: str = "") -> Set[str]:
    """Dotted paths of every Secret in a parsed Config."""
    if isinstance(value, Secret):
        return {path}
    if dataclasses.is_dataclass(value):
        return {found for field in dataclasses.fields(value)
                for found in secret_paths(getattr(value, field.name),
                                          f"{path}.{field.name}".lstrip("."))}
    return set()


def test_password_fields_are_exactly_the_secrets_of_the_config(tmp_path):
    config, env = build_config(full_options(tmp_path), tmp_path)
    parsed = parse_config(config, environ=env)
    passwords = {config_key(option) for option, typ in leaves(SCHEMA).items()
                 if typ in ("password", "password?")}
    assert passwords == secret_paths(parsed) == {".".join(key) for key in SECRETS}


def test_every_option_reaches_the_config(tmp_path):
    options = full_options(tmp_path)
    config, env = build_config(options, tmp_path / "data")
    parsed = parse_config(config, environ=env)
    iso, mqtt = parsed.isolarcloud, parsed.mqtt
    assert (iso.region, iso.language, iso.timeout, iso.username) == ("au", "_de_DE", 30.5,
                                                                     "owner@example.com")
    assert iso.password.reveal() == "hunter2-addon"
    assert iso.rsa_public_key == options["isolarcloud"]["rsa_public_key"]
    assert iso.token_file == tmp_path / "data" / "token.json"
    assert (mqtt.host, mqtt.port, mqtt.username, mqtt.client_id, mqtt.base_topic,
            mqtt.keepalive) == ("broker.lan", 8883, "bridge", "s2m-roof", "solar", 30)
    assert mqtt.password is not None and mqtt.password.reveal() == "mqtt-pw-addon"
    assert mqtt.tls.enabled and mqtt.tls.insecure
    assert mqtt.tls.ca_certs == tmp_path / "ca.crt" and mqtt.tls.keyfile == tmp_path / "client.key"
    assert (parsed.homeassistant.discovery, parsed.homeassistant.prefix) == (False, "ha")
    assert (parsed.polling.realtime, parsed.polling.faults, parsed.polling.devices,
            parsed.polling.min_refresh_spacing) == (600, 900, 7200, 2.5)
    assert parsed.plants == (1563218, 7654321)
    assert parsed.points.catalog == tmp_path / "points.yaml"
    assert (parsed.control.enabled, parsed.control.plants, parsed.control.devices) == (
        True, (1563218,), ("A2231234567",))
    assert parsed.logging.level == "WARNING"


def test_the_default_options_give_the_loaders_defaults(tmp_path):
    config, env = build_config(with_credentials(host="broker.lan"), tmp_path)
    parsed = parse_config(config, environ=env)
    reference = parse_config({"isolarcloud": {
        "server": "eu", "appkey": "a" * 32, "access_key": "b" * 32, "username": "u",
        "password": "p"}, "mqtt": {"host": "broker.lan"}}, environ={})
    for section in ("homeassistant", "polling", "points", "control", "logging", "plants"):
        assert getattr(parsed, section) == getattr(reference, section), section
    assert dataclasses.replace(parsed.mqtt, password=None) == reference.mqtt
    assert (parsed.isolarcloud.language, parsed.isolarcloud.timeout) == ("_en_US", 20)


def test_written_config_holds_no_secret_and_no_option_is_expanded(tmp_path):
    options = with_credentials(host="broker.lan", username="me", password="m${HOME}q-pass")
    options["isolarcloud"]["username"] = "me+${HOME}@example.com"
    options["isolarcloud"]["password"] = "p$${x}${SUNGROW_APPKEY}w"
    config, env = build_config(options, tmp_path)
    path = tmp_path / "config.yaml"
    write_config(config, path)
    text = path.read_text(encoding="utf-8")
    for secret in ("ADDONAPPKEY0000000000000000000001", "addonaccesskey00000000000000001",
                   "p$${x}", "m${HOME}q-pass"):
        assert secret not in text
    assert path.stat().st_mode & 0o777 == 0o600
    parsed = load_config(path, environ=dict(env, HOME="/root"))
    assert parsed.isolarcloud.username == "me+${HOME}@example.com"
    assert parsed.isolarcloud.password.reveal() == "p$${x}${SUNGROW_APPKEY}w"
    assert parsed.mqtt.password is not None
    assert parsed.mqtt.password.reveal() == "m${HOME}q-pass"


# --- the Supervisor's MQTT service --------------------------------------------------------------

TOKEN = "supervisor-token-0123456789abcdef"
SERVICE_ANSWER = {"addon": "core_mosquitto", "host": "core-mosquitto", "port": 1883,
                  "ssl": False, "protocol": "3.1.1", "username": "addons",
                  "password": "service-pw-5f2a"}


class FakeSupervisor:
    """A real HTTP server answering GET /services/mqtt the way the Supervisor does."""

    def __init__(self, service: Optional[Dict[str, Any]]) -> None:
        self.service = service
        self.requests: List[Tuple[str, Optional[str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                auth = self.headers.get("Authorization")
                owner.requests.append((self.path, auth))
                status, body = owner.answer(self.path, auth)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, path: str, auth: Optional[str]) -> Tuple[int, Dict[str, Any]]:
        if auth != f"Bearer {TOKEN}":
            return 401, {"result": "error", "message": "Invalid token"}
        if path != "/services/mqtt":
            return 404, {"result": "error", "message": "Not found"}
        if self.service is None:
            return 400, {"result": "error", "message": "Service not enabled"}
        return 200, {"result": "ok", "data": self.service}

    def __enter__(self) -> "FakeSupervisor":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def supervisor() -> Iterator[FakeSupervisor]:
    with FakeSupervisor(dict(SERVICE_ANSWER)) as fake:
        yield fake


def write_options(tmp_path: Path, options: Mapping[str, Any]) -> Path:
    path = tmp_path / "options.json"
    path.write_text(json.dumps(options), encoding="utf-8")
    return path


def test_without_a_host_the_broker_comes_from_the_supervisor(tmp_path, supervisor):
    options = with_credentials(port=1999, username="ignored", password="ignored-pw")
    path, env = prepare(write_options(tmp_path, options), tmp_path, supervisor.url, TOKEN)
    assert supervisor.requests == [("/services/mqtt", f"Bearer {TOKEN}")]
    parsed = load_config(path, environ=env)
    assert (parsed.mqtt.host, parsed.mqtt.port, parsed.mqtt.username) == (
        "core-mosquitto", 1883, "addons")
    assert parsed.mqtt.password is not None and parsed.mqtt.password.reveal() == "service-pw-5f2a"
    assert not parsed.mqtt.tls.enabled
    assert "service-pw-5f2a" not in path.read_text(encoding="utf-8")


def test_a_tls_service_turns_tls_on(tmp_path):
    with FakeSupervisor(dict(SERVICE_ANSWER, port="8883", ssl=True)) as fake:
        path, env = prepare(write_options(tmp_path, with_credentials()), tmp_path, fake.url,
                            TOKEN)
    parsed = load_config(path, environ=env)
    assert (parsed.mqtt.port, parsed.mqtt.tls.enabled) == (8883, True)


def test_a_host_in_the_options_wins_and_the_supervisor_is_not_asked(tmp_path, supervisor):
    options = with_credentials(host="broker.lan", port=1884, username="me", password="my-pw")
    path, env = prepare(write_options(tmp_path, options), tmp_path, supervisor.url, TOKEN)
    assert supervisor.requests == []
    parsed = load_config(path, environ=env)
    assert (parsed.mqtt.host, parsed.mqtt.port, parsed.mqtt.username) == ("broker.lan", 1884,
                                                                          "me")


def test_no_mqtt_service_is_a_clear_error(tmp_path):
    with FakeSupervisor(None) as fake, pytest.raises(ConfigError) as error:
        prepare(write_options(tmp_path, with_credentials()), tmp_path, fake.url, TOKEN)
    message = str(error.value)
    assert message.startswith("mqtt.host: not set") and "Mosquitto broker add-on" in message
    assert "Service not enabled" in message and TOKEN not in message


def test_no_supervisor_token_or_no_supervisor_names_mqtt_host(tmp_path):
    with pytest.raises(ConfigError, match=r"^mqtt\.host: .*SUPERVISOR_TOKEN"):
        mqtt_service("http://127.0.0.1:9", None)
    with pytest.raises(Sungrow2MqttError, match="cannot reach the Supervisor.*set mqtt.host"):
        mqtt_service(f"http://127.0.0.1:{free_port()}", TOKEN, timeout=2)


def test_a_bad_token_is_reported_without_echoing_it(tmp_path, supervisor):
    with pytest.raises(ConfigError) as error:
        mqtt_service(supervisor.url, "wrong-token-value")
    assert "HTTP 401" in str(error.value) and "wrong-token-value" not in str(error.value)


# --- the add-on's run script, end to end --------------------------------------------------------

SECRET_CREDENTIALS = Credentials(appkey="ADDONE2EAPPKEY00000000000000007Q",
                                 access_key="addone2eaccesskey000000000007q",
                                 username="owner+${HOME}@example.com",
                                 password="e2e-Pa$${ss}word")


def run_script(args: List[str], token: str = TOKEN) -> subprocess.CompletedProcess:
    """The add-on's run.sh with this interpreter as python3, as the Supervisor would start it."""
    env = dict(os.environ, SUPERVISOR_TOKEN=token,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["sh", str(ADDON / "run.sh"), *args], capture_output=True, text=True,
                          env=env, timeout=90)


def test_run_script_bridges_the_simulator_to_the_supervisors_broker_without_leaking_secrets(
        broker, base_topic, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    answer = dict(SERVICE_ANSWER, host="127.0.0.1", port=broker.port)
    with SimulatorServer(credentials=SECRET_CREDENTIALS, start_time=SIM_START) as sim, \
            FakeSupervisor(answer) as fake:
        options = with_credentials(base_topic=base_topic, client_id="s2m-" + base_topic[-8:])
        options["isolarcloud"].update(server=sim.url, appkey=SECRET_CREDENTIALS.appkey,
                                      access_key=SECRET_CREDENTIALS.access_key,
                                      username=SECRET_CREDENTIALS.username,
                                      password=SECRET_CREDENTIALS.password, timeout=5)
        options["homeassistant"].update(prefix=f"{base_topic}_ha",
                                        status_topic=f"{base_topic}_ha/status")
        options["logging"]["level"] = "DEBUG"
        assert options_problems(SCHEMA, options) == []
        result = run_script(["--options", str(write_options(tmp_path, options)), "--data",
                             str(data), "--supervisor", fake.url, "--once"])
        assert fake.requests == [("/services/mqtt", f"Bearer {TOKEN}")]
    assert result.returncode == 0, result.stdout
    assert result.stderr == ""                                  # logs go to stdout
    assert "Supervisor's MQTT service" in result.stdout and "DEBUG" in result.stdout
    probe = MqttProbe(broker.port, f"{base_topic}/#")
    try:
        listed = ready(probe, base_topic)
        assert len(listed["plants"]) == 2
        assert any(topic.endswith("_11_0_0") for topic in probe.messages)
    finally:
        probe.close()
    assert sorted(p.name for p in data.iterdir()) == ["config.yaml", "status.json", "token.json"]
    secrets = [SECRET_CREDENTIALS.appkey, SECRET_CREDENTIALS.access_key,
               SECRET_CREDENTIALS.password, answer["password"], TOKEN]
    written = "".join(p.read_text(encoding="utf-8") for p in data.iterdir())
    for secret in secrets:
        assert secret not in result.stdout and secret not in written, secret


def test_run_script_without_a_broker_exits_2_naming_mqtt_host(tmp_path):
    with FakeSupervisor(None) as fake:
        result = run_script(["--options", str(write_options(tmp_path, with_credentials())),
                             "--data", str(tmp_path), "--supervisor", fake.url])
    assert result.returncode == 2
    assert result.stdout.startswith("sungrow2mqtt: error: mqtt.host: not set")
    assert len(result.stdout.splitlines()) == 1 and TOKEN not in result.stdout


def test_bad_options_exit_2_with_the_loaders_one_line_errors(tmp_path, supervisor):
    options = with_credentials(host="broker.lan")
    options["polling"]["realtime"] = 5
    result = run_script(["--options", str(write_options(tmp_path, options)), "--data",
                         str(tmp_path)])
    assert result.returncode == 2
    assert "polling.realtime: expected an integer 10–86400, got 5" in result.stdout
    assert "hunter2-addon" not in result.stdout


# --- the image ----------------------------------------------------------------------------------

def test_the_dockerfile_builds_from_the_add_on_folder_on_a_named_base():
    text = (ADDON / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^ARG BUILD_FROM=(\S+)$", text, re.MULTILINE)
    assert base and base.group(1).startswith("ghcr.io/home-assistant/base-python:")
    assert re.search(r"^FROM \$\{BUILD_FROM\}$", text, re.MULTILINE)
    for source in re.findall(r"^COPY (\S+) ", text, re.MULTILINE):
        assert (ADDON / source).exists(), f"COPY {source}: not in the build context"
    assert '"sungrow2mqtt==${BUILD_VERSION}"' in text
    assert re.search(r'^CMD \["/run.sh"\]$', text, re.MULTILINE)
    assert MANIFEST.get("init", True) is True      # Docker's init, as ENTRYPOINT [] expects


def test_translations_name_every_option_and_only_those():
    translations = yaml.safe_load((ADDON / "translations" / "en.yaml").read_text("utf-8"))

    def check(schema: Mapping[str, Any], names: Mapping[str, Any], where: str) -> None:
        assert set(names) == set(schema), where
        for key, entry in names.items():
            assert isinstance(entry.get("name"), str) and entry["name"], f"{where}{key}"
            assert isinstance(entry.get("description", ""), str), f"{where}{key}"
            if isinstance(schema[key], dict):
                check(schema[key], entry.get("fields", {}), f"{where}{key}.")
            else:
                assert "fields" not in entry and entry.get("description"), f"{where}{key}"

    check(SCHEMA, translations["configuration"], "")
    assert set(translations) == {"configuration"}

