"""Home Assistant add-on front end: the Supervisor's options in, ``sungrow2mqtt run`` out.

Inside the add-on the Supervisor hands over the user's options as ``/data/options.json`` and offers
the Mosquitto add-on's broker through its services API; the bridge itself only reads config.yaml.
This module writes ``/data/config.yaml`` from the options (secrets as ``${VAR}`` references whose
values go into the bridge's environment, so the file holds none), fills in the broker from the
Supervisor when the user has not set ``mqtt.host``, and then runs the bridge on that file.

Run as ``python -m sungrow2mqtt.addon`` (the add-on's run script does).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import requests
import yaml

from sungrow2mqtt import cli
from sungrow2mqtt.errors import ConfigError, Sungrow2MqttError
from sungrow2mqtt.isolarcloud.token_store import atomic_write

log = logging.getLogger("sungrow2mqtt.addon")     # not "__main__" when run with -m

SUPERVISOR_URL = "http://supervisor"
# (section, option) of every secret -> the environment variable the config file refers to
SECRETS: Dict[Tuple[str, str], str] = {
    ("isolarcloud", "appkey"): "SUNGROW_APPKEY",
    ("isolarcloud", "access_key"): "SUNGROW_ACCESS_KEY",
    ("isolarcloud", "password"): "SUNGROW_PASSWORD",
    ("mqtt", "password"): "MQTT_PASSWORD",
}
# The options nest one level only (the add-on UI's limit), so mqtt.tls.* is spelled mqtt.tls_*.
TLS_OPTIONS = {"tls": "enabled", "tls_ca_certs": "ca_certs", "tls_certfile": "certfile",
               "tls_keyfile": "keyfile", "tls_insecure": "insecure"}


def read_options(path: Path) -> Dict[str, Any]:
    """The add-on options the Supervisor wrote, as a mapping of sections."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (is this running as the add-on?)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the add-on options ({type(exc).__name__})") \
            from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object of option sections")
    return data


def mqtt_service(supervisor: str, token: Optional[str], timeout: float = 10.0) -> Dict[str, Any]:
    """The broker the Supervisor's MQTT service offers (host, port, username, password, ssl)."""
    if not token:
        raise ConfigError("mqtt.host: not set, and there is no Supervisor to ask for the MQTT "
                          "service (SUPERVISOR_TOKEN is not set); set mqtt.host")
    url = f"{supervisor.rstrip('/')}/services/mqtt"
    try:
        response = requests.get(url, headers={"Authorization": f"Bearer {token}"},
                                timeout=timeout)
    except requests.RequestException as exc:
        raise Sungrow2MqttError(f"cannot reach the Supervisor at {url} to look up the MQTT "
                                f"service ({type(exc).__name__}); set mqtt.host") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    data = answer.get("data")
    if response.ok and answer.get("result") == "ok" and isinstance(data, dict) \
            and data.get("host"):
        return data
    message = answer.get("message")
    raise ConfigError(f"mqtt.host: not set, and the Supervisor offers no MQTT broker "
                      f"(HTTP {response.status_code}: {message or 'no broker in the answer'}); "
                      "install and start the Mosquitto broker add-on, or set mqtt.host")


def _plain(value: Any) -> Any:
    """A value as the loader must read it back: a literal ``${`` is written ``$${``."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def build_config(options: Mapping[str, Any], data_dir: Path,
                 service: Optional[Mapping[str, Any]] = None
                 ) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """(config for the loader, environment holding the secrets) from the add-on options.

    ``service`` is the Supervisor's MQTT service answer; it supplies host, port, credentials and
    TLS when the options name no broker.
    """
    env: Dict[str, str] = {}
    config: Dict[str, Any] = {}
    for section, values in options.items():
        if not isinstance(values, dict):
            config[section] = _plain(values)
            continue
        config[section] = {}
        for key, value in values.items():
            name = SECRETS.get((section, key))
            if name is not None and value not in (None, ""):
                env[name] = str(value)
                config[section][key] = "${" + name + "}"
            else:
                config[section][key] = _plain(value)
    mqtt = config.setdefault("mqtt", {})
    tls = {TLS_OPTIONS[key]: mqtt.pop(key) for key in list(mqtt) if key in TLS_OPTIONS}
    if not mqtt.get("host") and service is not None:
        for key in ("username", "password"):
            mqtt.pop(key, None)
        env.pop("MQTT_PASSWORD", None)
        mqtt["host"] = _plain(service["host"])
        mqtt["port"] = int(service.get("port") or 1883)
        if service.get("username"):
            mqtt["username"] = _plain(service["username"])
        if service.get("password"):
            env["MQTT_PASSWORD"] = str(service["password"])
            mqtt["password"] = "${MQTT_PASSWORD}"
        tls["enabled"] = bool(service.get("ssl"))
    if tls:
        mqtt["tls"] = tls
    config.setdefault("isolarcloud", {})["token_file"] = str(data_dir / "token.json")
    return config, env


def write_config(config: Mapping[str, Any], path: Path) -> None:
    """The generated file, mode 0600, with a note that it is rewritten on every start."""
    text = ("# Written by the sungrow2mqtt add-on from its options on every start; edits are "
            "lost.\n# Secrets are ${VAR} references; their values live only in the add-on "
            "options.\n" + yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True))
    atomic_write(path, text)


def prepare(options_file: Path, data_dir: Path, supervisor: str,
            token: Optional[str]) -> Tuple[Path, Dict[str, str]]:
    """Write the config file for the bridge; return it and the environment its secrets need."""
    options = read_options(options_file)
    mqtt_options = options.get("mqtt")
    service = None
    if not (isinstance(mqtt_options, dict) and mqtt_options.get("host")):
        service = mqtt_service(supervisor, token)
        log.info("MQTT broker: %s:%s from the Supervisor's MQTT service%s", service.get("host"),
                 service.get("port"), " (TLS)" if service.get("ssl") else "")
    config, env = build_config(options, data_dir, service)
    path = data_dir / "config.yaml"
    write_config(config, path)
    return path, env


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the add-on: prepare the config file, then run the bridge on it."""
    parser = argparse.ArgumentParser(prog="python -m sungrow2mqtt.addon",
                                     description="Run sungrow2mqtt as a Home Assistant add-on.")
    parser.add_argument("--options", default="/data/options.json", type=Path,
                        help="the Supervisor's options file (default: /data/options.json)")
    parser.add_argument("--data", default="/data", type=Path,
                        help="persistent directory for config, token and status (default: /data)")
    parser.add_argument("--supervisor", default=SUPERVISOR_URL,
                        help=f"Supervisor API (default: {SUPERVISOR_URL})")
    parser.add_argument("--once", action="store_true", help="one full cycle, then exit")
    args = parser.parse_args(argv)
    cli.setup_logging("INFO", verbose=False)
    try:
        path, env = prepare(args.options, args.data, args.supervisor,
                            os.environ.get("SUPERVISOR_TOKEN"))
    except Sungrow2MqttError as exc:
        cli.fail(str(exc))
        return cli.EXIT_CONFIG if isinstance(exc, ConfigError) else cli.EXIT_FAILURE
    os.environ.update(env)
    return cli.main(["run", "-c", str(path)] + (["--once"] if args.once else []))


if __name__ == "__main__":
    raise SystemExit(main())
