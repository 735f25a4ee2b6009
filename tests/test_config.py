"""The configuration loader: defaults, checks, one report of every problem, and no leaked secret."""
from __future__ import annotations

import base64
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest
import yaml
from Crypto.PublicKey import RSA

from sungrow2mqtt.config import (
    Config,
    example_config_text,
    known_keys,
    load_config,
    parse_config,
)
from sungrow2mqtt.errors import ConfigError
from sungrow2mqtt.isolarcloud.servers import REGIONS
from sungrow2mqtt.secret import Secret

APPKEY = "AK0123456789abcdefAK"
ACCESS_KEY = "XS9876543210zyxwvuXS"
PASSWORD = "pw-Tr0ub4dor&3-pw"
MQTT_PASSWORD = "mq-correct-horse-mq"
SECRETS = (APPKEY, ACCESS_KEY, PASSWORD, MQTT_PASSWORD)
USERNAME = "someone@example.com"
ENV = {
    "SUNGROW_APPKEY": APPKEY,
    "SUNGROW_ACCESS_KEY": ACCESS_KEY,
    "SUNGROW_PASSWORD": PASSWORD,
    "MQTT_PASSWORD": MQTT_PASSWORD,
    "HOME": "/home/tester",
}
EXAMPLE = Path(__file__).resolve().parents[1] / "sungrow2mqtt" / "data" / "config.yaml.example"


def minimal(**overrides: Any) -> Dict[str, Any]:
    """The smallest valid data, with sections merged key by key from ``overrides``."""
    data: Dict[str, Any] = {"isolarcloud": {
        "server": "eu", "appkey": "${SUNGROW_APPKEY}", "access_key": "${SUNGROW_ACCESS_KEY}",
        "username": USERNAME, "password": "${SUNGROW_PASSWORD}",
    }}
    for section, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **value}
        else:
            data[section] = value
    return data


def parse(data: Any, **kwargs: Any) -> Config:
    kwargs.setdefault("environ", ENV)
    return parse_config(data, "config.yaml", **kwargs)


def problems(data: Any, **kwargs: Any) -> List[str]:
    with pytest.raises(ConfigError) as caught:
        parse(data, **kwargs)
    return str(caught.value).splitlines()


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.fixture(scope="module")
def rsa_key() -> RSA.RsaKey:
    return RSA.generate(1024)


@pytest.fixture(scope="module")
def rsa_text(rsa_key: RSA.RsaKey) -> str:
    """The key as the portal hands it out: base64 of the X.509 DER."""
    return base64.b64encode(rsa_key.publickey().export_key("DER")).decode("ascii")


# --- defaults and values ------------------------------------------------------------------------

def test_defaults_applied() -> None:
    config = parse(minimal())
    cloud = config.isolarcloud
    assert (cloud.region, cloud.server) == ("eu", "https://gateway.isolarcloud.eu")
    assert cloud.appkey == Secret(APPKEY) and cloud.appkey.reveal() == APPKEY
    assert cloud.access_key.reveal() == ACCESS_KEY and cloud.password.reveal() == PASSWORD
    assert cloud.username == USERNAME
    assert cloud.rsa_public_key is None and not cloud.encrypted
    assert cloud.language == "_en_US"
    assert cloud.token_file == Path("/home/tester/.local/state/sungrow2mqtt/token.json")
    assert cloud.timeout == 20.0
    mqtt = config.mqtt
    assert (mqtt.host, mqtt.port, mqtt.username, mqtt.password) == ("localhost", 1883, None, None)
    assert (mqtt.client_id, mqtt.base_topic, mqtt.keepalive) == ("sungrow2mqtt", "sungrow2mqtt", 60)
    assert dataclasses.astuple(mqtt.tls) == (False, None, None, None, False)
    assert dataclasses.astuple(config.homeassistant) == (True, "homeassistant",
                                                         "homeassistant/status")
    assert dataclasses.astuple(config.polling) == (300, 300, 3600, 5.0)
    assert config.plants == ()
    assert config.points.catalog is None
    assert config.logging.level == "INFO"
    assert config.source == "config.yaml"


def test_null_sections_take_defaults() -> None:
    data = minimal(mqtt=None, homeassistant=None, polling=None, points=None, logging=None)
    data["plants"] = None
    assert parse(data) == parse(minimal())


def test_values_are_taken_and_normalised() -> None:
    config = parse(minimal(
        isolarcloud={"language": "_DE_de", "timeout": "7.5", "token_file": None},
        mqtt={"host": "broker.lan", "port": "8883", "username": "bridge",
              "password": "${MQTT_PASSWORD}", "client_id": "sg-1", "base_topic": "solar/roof",
              "keepalive": 30, "tls": {"enabled": True, "insecure": False}},
        homeassistant={"discovery": False, "prefix": "ha", "status_topic": "ha/status"},
        polling={"realtime": 60, "faults": 120, "devices": 60, "min_refresh_spacing": 0},
        logging={"level": "debug"},
    ))
    assert config.isolarcloud.language == "_de_DE"
    assert config.isolarcloud.timeout == 7.5
    assert config.isolarcloud.token_file is None
    assert config.mqtt.port == 8883 and config.mqtt.password == Secret(MQTT_PASSWORD)
    assert config.mqtt.tls.enabled is True
    assert config.homeassistant.prefix == "ha"
    assert config.polling.min_refresh_spacing == 0.0
    assert config.logging.level == "DEBUG"


def test_empty_optional_strings_mean_unset() -> None:
    config = parse(minimal(mqtt={"username": "${U}", "password": "${P}"}),
                   environ={**ENV, "U": "", "P": ""})
    assert config.mqtt.username is None and config.mqtt.password is None


def test_config_is_frozen() -> None:
    config = parse(minimal())
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.mqtt.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(REGIONS))
def test_region_names_resolve(name: str) -> None:
    cloud = parse(minimal(isolarcloud={"server": name.upper()})).isolarcloud
    assert (cloud.region, cloud.server) == (name, REGIONS[name])


def test_server_url_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    cloud = parse(minimal(isolarcloud={"server": "http://127.0.0.1:8080/"})).isolarcloud
    assert (cloud.region, cloud.server) == ("http://127.0.0.1:8080/", "http://127.0.0.1:8080")
    assert "plain http" not in caplog.text
    parse(minimal(isolarcloud={"server": "http://gateway.example.com"}))
    assert "plain http" in caplog.text


# --- environment variables ----------------------------------------------------------------------

def test_env_substitution_inside_strings_and_escape() -> None:
    config = parse(minimal(mqtt={"base_topic": "${SITE}/pv", "username": "a$${B}c"}),
                   environ={**ENV, "SITE": "home"})
    assert config.mqtt.base_topic == "home/pv"
    assert config.mqtt.username == "a${B}c"


def test_numbers_come_from_env() -> None:
    config = parse(minimal(mqtt={"port": "${PORT}"}, plants=["${PLANT}"]),
                   environ={**ENV, "PORT": "1884", "PLANT": "42"})
    assert config.mqtt.port == 1884 and config.plants == (42,)


def test_missing_env_var() -> None:
    env = {key: value for key, value in ENV.items() if key != "SUNGROW_PASSWORD"}
    assert problems(minimal(), environ=env) == [
        "config.yaml: isolarcloud.password: environment variable SUNGROW_PASSWORD is not set"]


def test_several_missing_env_vars_in_one_value() -> None:
    assert problems(minimal(mqtt={"base_topic": "${A}/${B}"})) == [
        "config.yaml: mqtt.base_topic: environment variables A, B are not set"]


def test_malformed_reference() -> None:
    lines = problems(minimal(isolarcloud={"password": "x${not closed"}))
    expected = ("config.yaml: isolarcloud.password: malformed ${...} reference (a name of "
                "letters, digits and _ is expected; write $${ for a literal ${)")
    assert lines == [expected]


# A value from the environment is never shown, wherever it lands (issue 14.11).
ENV_SECRET = "s3cr3t #Value"  # fails every check below, a topic's and a host's included


@pytest.mark.parametrize("overrides, field", [
    ({"isolarcloud": {"pasword": "${SECRET}"}}, "isolarcloud.pasword"),
    ({"isolarcloud": {"server": "${SECRET}"}}, "isolarcloud.server"),
    ({"isolarcloud": {"language": "${SECRET}"}}, "isolarcloud.language"),
    ({"isolarcloud": {"rsa_public_key": "${SECRET}"}}, "isolarcloud.rsa_public_key"),
    ({"mqtt": {"port": "${SECRET}"}}, "mqtt.port"),
    ({"mqtt": {"host": "${SECRET}"}}, "mqtt.host"),
    ({"mqtt": {"client_id": "${SECRET}"}}, "mqtt.client_id"),
    ({"mqtt": {"base_topic": "x/${SECRET}"}}, "mqtt.base_topic"),
    ({"mqtt": {"tls": {"ca_certs": "${SECRET}"}}}, "mqtt.tls.ca_certs"),
    ({"mqtt": {"tls": {"enabled": "${SECRET}"}}}, "mqtt.tls.enabled"),
    ({"logging": {"level": "${SECRET}"}}, "logging.level"),
    ({"plants": ["${SECRET}"]}, "plants[0]"),
])
def test_values_from_the_environment_are_never_shown(
        overrides: Dict[str, Any], field: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        lines = problems(minimal(**overrides), environ={**ENV, "SECRET": ENV_SECRET},
                         base_dir=tmp_path)
    assert any(line.startswith(f"config.yaml: {field}: ") for line in lines), lines
    for text in (*lines, caplog.text):
        assert ENV_SECRET not in text and "s3cr3t" not in text


def test_a_value_from_the_environment_is_described_by_its_variable() -> None:
    assert problems(minimal(mqtt={"port": "${PORT}"}), environ={**ENV, "PORT": "abc"}) == [
        "config.yaml: mqtt.port: expected an integer 1–65535, got a string from ${PORT}"]
    assert problems(minimal(mqtt={"tls": {"ca_certs": "${CA}"}}),
                    environ={**ENV, "CA": "/nonexistent/ca.pem"}) == [
        "config.yaml: mqtt.tls.ca_certs: file not found (value from ${CA})"]


# --- $VAR without braces ------------------------------------------------------------------------

@pytest.mark.parametrize("section, key", [
    ("isolarcloud", "appkey"), ("isolarcloud", "access_key"), ("isolarcloud", "username"),
    ("isolarcloud", "password"), ("mqtt", "username"), ("mqtt", "password"),
])
def test_a_credential_written_as_bare_variable_is_refused(section: str, key: str) -> None:
    overrides: Dict[str, Any] = {section: {key: "$SUNGROW_PASSWORD"}}
    if section == "mqtt":
        overrides["mqtt"] = {"username": "bridge", "password": "${MQTT_PASSWORD}",
                             key: "$SUNGROW_PASSWORD"}
    assert problems(minimal(**overrides)) == [
        f"config.yaml: {section}.{key}: looks like an environment variable without braces; "
        "write ${SUNGROW_PASSWORD} to read it from the environment (as written it would be "
        "sent literally, and failed logins count toward the account lockout)"]


def test_a_bare_credential_naming_no_set_variable_is_not_shown() -> None:
    message = "\n".join(problems(minimal(isolarcloud={"password": "$Summer2024"})))
    assert "write ${VAR} to read it from the environment" in message
    assert "Summer2024" not in message


@pytest.mark.parametrize("password", ["pa$$word", "Tr0ub$dor&3", "$", "${P}"])
def test_dollars_inside_a_credential_are_fine(
        password: str, caplog: pytest.LogCaptureFixture) -> None:
    config = parse(minimal(isolarcloud={"password": password}), environ={**ENV, "P": "$X"})
    assert config.isolarcloud.password.reveal() == password.replace("${P}", "$X")
    assert "not expanded" not in caplog.text


def test_bare_variables_elsewhere_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    config = parse(minimal(mqtt={"base_topic": "solar/$SITE", "host": "$BROKER"},
                           isolarcloud={"token_file": "$STATE_DIRECTORY/token.json"}))
    assert config.mqtt.base_topic == "solar/$SITE"
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == [
        ("config.yaml: isolarcloud.token_file: $STATE_DIRECTORY is not expanded: write "
         "${STATE_DIRECTORY} to read the environment (the value is used as written)"),
        ("config.yaml: mqtt.host: $BROKER is not expanded: write ${BROKER} to read the "
         "environment (the value is used as written)"),
        ("config.yaml: mqtt.base_topic: $SITE is not expanded: write ${SITE} to read the "
         "environment (the value is used as written)"),
    ]


# --- one line per mistake -----------------------------------------------------------------------

@pytest.mark.parametrize("overrides, expected", [
    ({"mqtt": {"port": "abc"}}, "mqtt.port: expected an integer 1–65535, got 'abc'"),
    ({"mqtt": {"port": 0}}, "mqtt.port: expected an integer 1–65535, got 0"),
    ({"mqtt": {"port": True}}, "mqtt.port: expected an integer 1–65535, got true"),
    ({"mqtt": {"port": 1883.5}}, "mqtt.port: expected an integer 1–65535, got 1883.5"),
    ({"mqtt": {"keepalive": 2}}, "mqtt.keepalive: expected an integer 5–3600, got 2"),
    ({"mqtt": {"hots": "x"}}, "mqtt.hots: unknown key (did you mean 'host'?)"),
    ({"mqtt": {"Port": 1}}, "mqtt.Port: unknown key (did you mean 'port'?)"),
    ({"mqtt": {"zzzzz": 1}}, "mqtt.zzzzz: unknown key"),
    ({"mqt": {}}, "mqt: unknown key (did you mean 'mqtt'?)"),
    ({"mqtt": "localhost"}, "mqtt: expected a mapping, got a string"),
    ({"mqtt": {"tls": True}}, "mqtt.tls: expected a mapping, got a boolean"),
    ({"mqtt": {"host": "mqtt://broker"}},
     ("mqtt.host: expected a host name or IP address (no scheme, path or spaces), "
      "got 'mqtt://broker'")),
    ({"mqtt": {"client_id": "bad id!"}},
     "mqtt.client_id: expected 1–64 characters of A-Z a-z 0-9 _ -, got 'bad id!'"),
    ({"mqtt": {"base_topic": "a/#"}},
     "mqtt.base_topic: expected a topic without wildcards (+ #), got 'a/#'"),
    ({"mqtt": {"base_topic": "a/"}},
     "mqtt.base_topic: expected a topic without a leading or trailing '/', got 'a/'"),
    ({"mqtt": {"base_topic": "a//b"}},
     "mqtt.base_topic: expected a topic without empty levels, got 'a//b'"),
    ({"mqtt": {"tls": {"insecure": "yes"}}},
     "mqtt.tls.insecure: expected true or false, got 'yes' (spelled out, without quotes)"),
    ({"mqtt": {"tls": {"enabled": 1}}}, "mqtt.tls.enabled: expected true or false, got 1"),
    ({"mqtt": {"password": "${MQTT_PASSWORD}"}}, "mqtt.password: needs mqtt.username as well"),
    ({"homeassistant": {"prefix": ""}},
     "homeassistant.prefix: expected a non-empty string, got an empty string"),
    ({"homeassistant": {"discovery": "true"}},
     "homeassistant.discovery: expected true or false, got 'true' (spelled out, without quotes)"),
    ({"homeassistant": {"status_topic": "+/status"}},
     "homeassistant.status_topic: expected a topic without wildcards (+ #), got '+/status'"),
    ({"polling": {"realtime": 5}}, "polling.realtime: expected an integer 10–86400, got 5"),
    ({"polling": {"faults": 86401}}, "polling.faults: expected an integer 10–86400, got 86401"),
    ({"polling": {"devices": 59}}, "polling.devices: expected an integer 60–604800, got 59"),
    ({"polling": {"min_refresh_spacing": 11}},
     "polling.min_refresh_spacing: expected a number 0–10, got 11"),
    ({"isolarcloud": {"timeout": "fast"}},
     "isolarcloud.timeout: expected a number 1–300, got 'fast'"),
    ({"isolarcloud": {"timeout": float("nan")}},
     "isolarcloud.timeout: expected a number 1–300, got nan"),
    ({"isolarcloud": {"server": "mars"}},
     "isolarcloud.server: expected one of cn, intl, eu, au or an http(s):// URL, got 'mars'"),
    ({"isolarcloud": {"language": "en_US"}},
     ("isolarcloud.language: expected one of _zh_CN, _en_US, _ja_JP, _es_ES, _de_DE, _pt_BR, "
      "_fr_FR, _it_IT, _ko_KR, _nl_NL, _pl_PL, _vi_VN, _zh_TW, got 'en_US' "
      "(did you mean '_en_US'?)")),
    ({"isolarcloud": {"appkey": 12345}},
     "isolarcloud.appkey: expected a non-empty string, got a number (put it in quotes)"),
    ({"isolarcloud": {"access_key": ""}},
     "isolarcloud.access_key: expected a non-empty string, got an empty string"),
    ({"isolarcloud": {"password": None}},
     "isolarcloud.password: expected a non-empty string, got null"),
    ({"isolarcloud": {"username": 13800138000}},
     "isolarcloud.username: expected a non-empty string, got a number (put it in quotes)"),
    ({"isolarcloud": {"rsa_public_key": "MIIBnotakey"}},
     ("isolarcloud.rsa_public_key: not a usable RSA public key (expected base64 X.509 text, "
      "PEM, or the path of a file holding one)")),
    ({"logging": {"level": "verbose"}},
     "logging.level: expected one of DEBUG, INFO, WARNING, ERROR, got 'verbose'"),
    ({"plants": 123}, "plants: expected a list of plant ids (ps_id), got 123"),
    ({"plants": [1, 0]}, "plants[1]: expected a positive integer plant id (ps_id), got 0"),
])
def test_each_mistake_gives_its_line(overrides: Dict[str, Any], expected: str) -> None:
    assert problems(minimal(**overrides)) == ["config.yaml: " + expected]


def test_missing_required_keys() -> None:
    assert problems({"mqtt": {}}) == [
        f"config.yaml: isolarcloud.{name}: required"
        for name in ("server", "appkey", "access_key", "username", "password")]


def test_top_level_must_be_a_mapping() -> None:
    assert problems(["isolarcloud"]) == [
        ("config.yaml: expected a mapping of sections (isolarcloud, mqtt, homeassistant, polling, "
         "plants, points, control, logging) at the top level, got a list")]


def test_all_mistakes_reported_together(tmp_path: Path) -> None:
    key = write(tmp_path / "client.key", "not really a key")
    data = minimal(
        isolarcloud={"server": "mars", "appkey": ["x"], "language": "english"},
        mqtt={"hots": "broker", "port": "abc", "tls": {"keyfile": str(key), "insecure": "no"}},
        polling={"realtime": 1},
        plants=[1, "two"],
    )
    del data["isolarcloud"]["username"]
    lines = problems(data)
    assert lines == [
        ("config.yaml: isolarcloud.server: expected one of cn, intl, eu, au or an http(s):// "
         "URL, got 'mars'"),
        "config.yaml: isolarcloud.appkey: expected a non-empty string, got a list",
        "config.yaml: isolarcloud.username: required",
        ("config.yaml: isolarcloud.language: expected one of _zh_CN, _en_US, _ja_JP, _es_ES, "
         "_de_DE, _pt_BR, _fr_FR, _it_IT, _ko_KR, _nl_NL, _pl_PL, _vi_VN, _zh_TW, got 'english'"),
        "config.yaml: mqtt.port: expected an integer 1–65535, got 'abc'",
        ("config.yaml: mqtt.tls.insecure: expected true or false, got 'no' "
         "(spelled out, without quotes)"),
        "config.yaml: mqtt.tls.keyfile: needs mqtt.tls.certfile as well",
        "config.yaml: mqtt.hots: unknown key (did you mean 'host'?)",
        "config.yaml: polling.realtime: expected an integer 10–86400, got 1",
        "config.yaml: plants[1]: expected a positive integer plant id (ps_id), got 'two'",
    ]


# --- the file -----------------------------------------------------------------------------------

def test_file_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^config\.yaml: file not found$"):
        load_config("config.yaml", ENV)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, ENV)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"mqtt:\n  host: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, ENV)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "mqtt: {}\n", mode=0o000)
    with pytest.raises(ConfigError, match="permission denied"):
        load_config(path, ENV)


NOBODY = 65534


def _as_nobody(action: Callable[[], str]) -> str:
    """What ``action`` returns when run as user nobody: a forked child that drops root."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest clean-up of any kind, just the answer
        try:
            os.close(read_end)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, action().encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return answer


def test_permission_denied_names_the_user_and_the_likely_cause(tmp_path: Path) -> None:
    # The systemd unit's DynamicUser cannot read a root-owned 0600 config (issue 12).
    path = write(tmp_path / "config.yaml", "mqtt: {}\n", mode=0o600)

    def error() -> str:
        with pytest.raises(ConfigError) as caught:
            load_config(path, ENV)
        return str(caught.value)

    if os.geteuid() == 0:
        message = _as_nobody(error)
    else:
        path.chmod(0)
        message = error()
    assert message.startswith(f"{path}: cannot read the file: permission denied for user ")
    assert "\n" not in message
    for advice in ("DynamicUser", "environment file", "${VAR}", "chmod 644",
                   "README's systemd section"):
        assert advice in message


def test_yaml_syntax_error_has_line_and_no_secret(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml",
                 f"isolarcloud:\n  server: eu\n  password: \"{PASSWORD}\n  appkey: x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    message = str(caught.value)
    assert message.startswith(f"{path}: YAML syntax error at line ")
    assert PASSWORD not in message


def test_yaml_syntax_error_line_number(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "mqtt:\n  host: a\n   port: 1\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error at line 3, column 8: "):
        load_config(path, ENV)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "config.yaml", text)
    with pytest.raises(ConfigError, match=r"^.*config\.yaml: the file is empty$"):
        load_config(path, ENV)


def test_top_level_scalar_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "just text\n")
    with pytest.raises(ConfigError, match="at the top level, got a string$"):
        load_config(path, ENV)


def test_duplicate_keys_are_reported_with_the_rest(tmp_path: Path) -> None:
    text = yaml.safe_dump(minimal(), sort_keys=False) + "mqtt:\n  port: 1\nmqtt:\n  port: 0\n"
    path = write(tmp_path / "config.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, ENV)
    first = text.splitlines().index("mqtt:") + 1
    line = text.splitlines().index("mqtt:", first) + 1
    assert str(caught.value).splitlines() == [
        f"{path}: line {line}: duplicate key 'mqtt' (first on line {first}; "
        "only the last one would count)",
        f"{path}: mqtt.port: expected an integer 1–65535, got 0"]


def test_yes_and_on_are_not_booleans_in_files(tmp_path: Path) -> None:
    text = yaml.safe_dump(minimal(), sort_keys=False) + "homeassistant:\n  discovery: yes\n"
    path = write(tmp_path / "config.yaml", text)
    with pytest.raises(ConfigError, match="homeassistant.discovery: expected true or false, "
                                          "got 'yes'"):
        load_config(path, ENV)
    path.write_text(text.replace("yes", "false"), encoding="utf-8")
    assert load_config(path, ENV).homeassistant.discovery is False


# --- secrets ------------------------------------------------------------------------------------

def test_secrets_never_in_errors() -> None:
    data = minimal(
        isolarcloud={"appkey": [APPKEY], "access_key": {"k": ACCESS_KEY},
                     "password": PASSWORD + "${"},
        mqtt={"username": None, "password": MQTT_PASSWORD, "port": "abc"},
    )
    message = "\n".join(problems(data))
    assert "isolarcloud.appkey: expected a non-empty string, got a list" in message
    assert "isolarcloud.access_key: expected a non-empty string, got a mapping" in message
    assert "isolarcloud.password: malformed" in message
    assert "mqtt.password: needs mqtt.username as well" in message
    for secret in SECRETS:
        assert secret not in message


def test_secret_in_a_wrong_type_is_not_echoed() -> None:
    message = "\n".join(problems(minimal(isolarcloud={"password": 987654321})))
    assert "987654321" not in message and "got a number" in message


def test_repr_shows_no_secret_nor_username() -> None:
    config = parse(minimal(mqtt={"username": "bridge", "password": "${MQTT_PASSWORD}"}))
    text = repr(config) + str(config)
    for secret in SECRETS:
        assert secret not in text
    assert USERNAME not in text
    assert "Secret('***')" in text


@pytest.mark.parametrize("mode, inline, warned", [
    (0o644, True, True),
    (0o604, True, True),
    (0o640, True, False),
    (0o600, True, False),
    (0o644, False, False),
])
def test_world_readable_file_with_inline_secret_warns_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int, inline: bool,
        warned: bool) -> None:
    data = minimal()
    if inline:
        data["isolarcloud"].update(appkey=APPKEY, password=PASSWORD)
    path = write(tmp_path / "config.yaml", yaml.safe_dump(data), mode=mode)
    with caplog.at_level(logging.WARNING, logger="sungrow2mqtt.config"):
        load_config(path, ENV)
    records = [r for r in caplog.records if "readable by other users" in r.getMessage()]
    assert len(records) == (1 if warned else 0)
    if warned:
        message = records[0].getMessage()
        assert str(path) in message and "chmod 600" in message and "${VAR}" in message
        assert "isolarcloud.appkey, isolarcloud.password" in message
        assert APPKEY not in message and PASSWORD not in message


def test_world_readable_warning_also_when_invalid(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = minimal(isolarcloud={"password": PASSWORD}, mqtt={"port": 0})
    path = write(tmp_path / "config.yaml", yaml.safe_dump(data), mode=0o644)
    with pytest.raises(ConfigError):
        load_config(path, ENV)
    assert "readable by other users" in caplog.text


# --- RSA key ------------------------------------------------------------------------------------

def test_rsa_key_from_text(rsa_text: str) -> None:
    cloud = parse(minimal(isolarcloud={"rsa_public_key": rsa_text})).isolarcloud
    assert cloud.rsa_public_key == rsa_text and cloud.encrypted
    assert rsa_text not in repr(cloud)


def test_rsa_key_from_pem_text(rsa_key: RSA.RsaKey) -> None:
    pem = rsa_key.publickey().export_key("PEM").decode("ascii")
    assert parse(minimal(isolarcloud={"rsa_public_key": pem})).isolarcloud.encrypted


def test_rsa_key_from_env(rsa_text: str) -> None:
    config = parse(minimal(isolarcloud={"rsa_public_key": "${RSA}"}),
                   environ={**ENV, "RSA": rsa_text})
    assert config.isolarcloud.rsa_public_key == rsa_text


def test_rsa_key_from_file_relative_to_config(
        tmp_path: Path, rsa_text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "keys").mkdir()
    write(tmp_path / "keys" / "rsa_public", rsa_text + "\n")  # no dot: found as an existing file
    write(tmp_path / "keys" / "rsa.pub", rsa_text + "\n")
    for name in ("keys/rsa_public", "keys/rsa.pub"):
        path = write(tmp_path / "config.yaml",
                     yaml.safe_dump(minimal(isolarcloud={"rsa_public_key": name})))
        monkeypatch.chdir("/")
        assert load_config(path, ENV).isolarcloud.rsa_public_key == rsa_text


def test_rsa_key_file_missing_or_bad(tmp_path: Path) -> None:
    write(tmp_path / "bad.pem", "garbage that is no key")
    lines = problems(minimal(isolarcloud={"rsa_public_key": "missing.pem"}), base_dir=tmp_path)
    missing = tmp_path / "missing.pem"
    assert lines == [f"config.yaml: isolarcloud.rsa_public_key: file not found: {missing}"]
    lines = problems(minimal(isolarcloud={"rsa_public_key": "bad.pem"}), base_dir=tmp_path)
    expected = (f"config.yaml: isolarcloud.rsa_public_key: {tmp_path / 'bad.pem'}: not a "
                "usable RSA public key (expected base64 X.509 text, PEM, or the path of a "
                "file holding one)")
    assert lines == [expected]
    assert "garbage" not in lines[0]


def test_private_key_text_is_not_echoed() -> None:
    message = "\n".join(problems(minimal(isolarcloud={"rsa_public_key": "MIIsecretish+/=="})))
    assert "MIIsecretish" not in message


# --- paths --------------------------------------------------------------------------------------

def test_relative_paths_resolve_against_config_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_dir = tmp_path / "etc"
    (config_dir / "certs").mkdir(parents=True)
    for name in ("ca.pem", "client.pem", "client.key"):
        write(config_dir / "certs" / name, "x")
    write(config_dir / "points.yaml", "[]\n")
    data = minimal(
        isolarcloud={"token_file": "state/token.json"},
        mqtt={"tls": {"enabled": True, "ca_certs": "certs/ca.pem", "certfile": "certs/client.pem",
                      "keyfile": "certs/client.key"}},
        points={"catalog": "points.yaml"},
    )
    path = write(config_dir / "config.yaml", yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    config = load_config("etc/config.yaml", ENV)
    assert config.isolarcloud.token_file == config_dir / "state" / "token.json"
    assert config.mqtt.tls.ca_certs == config_dir / "certs" / "ca.pem"
    assert config.mqtt.tls.certfile == config_dir / "certs" / "client.pem"
    assert config.mqtt.tls.keyfile == config_dir / "certs" / "client.key"
    assert config.points.catalog == config_dir / "points.yaml"
    assert config.source == "etc/config.yaml"
    assert path.exists()


def test_parse_config_paths_default_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse(minimal(isolarcloud={"token_file": "token.json"}))
    assert config.isolarcloud.token_file == tmp_path / "token.json"


def test_home_and_env_expanded_in_token_file() -> None:
    config = parse(minimal(isolarcloud={"token_file": "${STATE}/t.json"}),
                   environ={**ENV, "STATE": "/var/lib/sg"})
    assert config.isolarcloud.token_file == Path("/var/lib/sg/t.json")


def test_missing_files_are_reported(tmp_path: Path) -> None:
    lines = problems(minimal(mqtt={"tls": {"ca_certs": "nope.pem"}},
                             points={"catalog": "nope.yaml"}), base_dir=tmp_path)
    assert lines == [
        f"config.yaml: mqtt.tls.ca_certs: file not found: {tmp_path / 'nope.pem'}",
        f"config.yaml: points.catalog: file not found: {tmp_path / 'nope.yaml'}"]


def test_token_file_must_not_be_a_directory(tmp_path: Path) -> None:
    lines = problems(minimal(isolarcloud={"token_file": str(tmp_path)}))
    expected = "config.yaml: isolarcloud.token_file: is a directory, expected a file path: "
    assert lines == [expected + str(tmp_path)]


# --- plants -------------------------------------------------------------------------------------

@pytest.mark.parametrize("plants, expected", [
    ([], ()),
    (None, ()),
    ([5123456], (5123456,)),
    (["123", 456, " 789 "], (123, 456, 789)),
    ([7, 7, "7", 8], (7, 8)),
])
def test_plants(plants: Any, expected: Any) -> None:
    assert parse(minimal(plants=plants)).plants == expected


def test_every_bad_plant_is_reported() -> None:
    lines = problems(minimal(plants=[1, 0, -3, "abc", True, 1.5, None]))
    assert [line.split(": ")[1] for line in lines] == [
        "plants[1]", "plants[2]", "plants[3]", "plants[4]", "plants[5]", "plants[6]"]
    assert lines[2].endswith("got 'abc'")


# --- warnings -----------------------------------------------------------------------------------

def test_fast_polling_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sungrow2mqtt.config"):
        parse(minimal(polling={"realtime": 10, "faults": 59}))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert all("quota" in message for message in messages)
    assert "polling.realtime" in messages[0] and "polling.faults" in messages[1]
    caplog.clear()
    parse(minimal(polling={"realtime": 60}))
    assert "quota" not in caplog.text


def test_long_client_id_warns(caplog: pytest.LogCaptureFixture) -> None:
    config = parse(minimal(mqtt={"client_id": "x" * 64}))
    assert config.mqtt.client_id == "x" * 64
    assert "23" in caplog.text


# --- the example file ---------------------------------------------------------------------------

def _leaf_paths(data: Any, prefix: str = "") -> List[str]:
    if not isinstance(data, dict):
        return [prefix]
    paths: List[str] = []
    for key, value in data.items():
        paths.extend(_leaf_paths(value, f"{prefix}.{key}" if prefix else key))
    return paths


def test_example_text_is_the_packaged_file() -> None:
    assert example_config_text() == EXAMPLE.read_text(encoding="utf-8")


def test_example_parses_and_shows_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", example_config_text())
    config = load_config(path, ENV)
    defaults = parse(minimal(), base_dir=tmp_path)
    for section in ("mqtt", "homeassistant", "polling", "plants", "points", "logging"):
        assert getattr(config, section) == getattr(defaults, section), section
    cloud = config.isolarcloud
    assert cloud.appkey.reveal() == APPKEY and cloud.access_key.reveal() == ACCESS_KEY
    assert cloud.password.reveal() == PASSWORD
    assert dataclasses.replace(cloud, username=USERNAME) == defaults.isolarcloud


def test_example_mentions_every_key_with_a_comment() -> None:
    text = example_config_text()
    raw = yaml.safe_load(text)
    assert sorted(_leaf_paths(raw)) == sorted(known_keys())
    lines = text.splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not stripped.endswith(":"):
            assert lines[index - 1].strip().startswith("#"), f"no comment above {stripped!r}"


def test_example_secrets_are_env_references() -> None:
    raw = yaml.safe_load(example_config_text())
    assert raw["isolarcloud"]["appkey"] == "${SUNGROW_APPKEY}"
    assert raw["isolarcloud"]["access_key"] == "${SUNGROW_ACCESS_KEY}"
    assert raw["isolarcloud"]["password"] == "${SUNGROW_PASSWORD}"
    assert raw["mqtt"]["password"] is None


def test_example_header_names_regions_and_credentials() -> None:
    text = example_config_text()
    for name, url in REGIONS.items():
        assert any(name in line and url in line for line in text.splitlines()), name
    for word in ("Appkey", "Secret Key", "x-access-key", "RSA public key"):
        assert word in text

