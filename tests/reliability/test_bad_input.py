"""Bad input from every side: MQTT requests, the config file, the token file, a user catalog.

The bridge answers every bad request with a clear error and stays up; the command line reports
every config or catalog mistake on its own line (exit 2, no traceback); a broken token file costs a
login, never the service.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from bridge_harness import Running, config_dict, ready
from mqtt_probe import MqttProbe
from reliability_support import (
    describe, records, run_cli, shared_broker, sim, traceback_free, unhandled,
    write_yaml,
)
from sungrow2mqtt.config import parse_config
from sungrow2mqtt.service import Service
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer

__all__ = ["shared_broker", "sim"]   # fixtures, used by name below


# -- MQTT requests -------------------------------------------------------------------------------

HISTORY = {"ps_key": "1234567_14_1_1", "points": [13011], "interval": "day",
           "start": "2026-11-01", "end": "2026-11-02"}

# (request name, payload, the response topic's name, what the error must say)
BAD_REQUESTS: List[Tuple[str, Any, str, str]] = [
    ("refresh", b"\xff\xfe\x00\x80binary", "refresh", "not UTF-8"),
    ("refresh", b"\x00\x00\x00", "refresh", "not valid JSON"),
    ("refresh", b"{" * 10, "refresh", "not valid JSON"),
    ("refresh", b"[" * 3000, "refresh", "JSON"),                     # deeply nested
    ("refresh", b'{"ps_id": ' + b"[" * 2000 + b"]" * 2000 + b"}", "refresh", "JSON"),
    ("refresh", b"x" * 300_000, "refresh", "too large"),
    ("refresh", b'"refresh"', "refresh", "JSON object"),
    ("refresh", b"42", "refresh", "JSON object"),
    ("refresh", b"null", "refresh", "JSON object"),
    ("refresh", {"ps_id": []}, "refresh", "ps_id: expected a plant id"),
    ("refresh", {"ps_id": {"$gt": 0}}, "refresh", "ps_id: expected a plant id"),
    ("refresh", {"ps_id": True}, "refresh", "ps_id: expected a plant id"),
    ("refresh", {"ps_id": -5}, "refresh", "ps_id: expected a plant id"),
    ("refresh", {"ps_id": 1.5}, "refresh", "ps_id: expected a plant id"),
    ("refresh", {"ps_id": None}, "refresh", "ps_id: expected a plant id"),
    ("refresh", {"ps_id": "1" * 40}, "refresh", "ps_id: expected a plant id"),
    ("refresh", {"ps_id": 123456}, "refresh", "unknown plant 123456"),
    ("refresh", {"transaction": ["a"]}, "refresh", "transaction must be"),
    ("refresh", {"transaction": "t" * 500}, "refresh", "transaction must be"),
    ("faults", {"all": True}, "faults", "all: unknown key; faults takes: transaction"),
    ("quota", {"hour": 3}, "quota", "hour: unknown key; quota takes: transaction"),
    ("info", [], "info", "JSON object"),
    ("history", {}, "history", "ps_key: required; points: required"),
    ("history", dict(HISTORY, points="abc"), "history", "not a point id"),
    ("history", dict(HISTORY, points=[True]), "history", "not a point id"),
    ("history", dict(HISTORY, points=list(range(13000, 13050))), "history", "at most 49"),
    ("history", dict(HISTORY, ps_key=1234567), "history", "ps_key: expected <ps_id>_"),
    ("history", dict(HISTORY, interval="hour"), "history", "interval: expected one of minute"),
    ("history", dict(HISTORY, start=20261101), "history", "start: expected a date/time string"),
    ("history", dict(HISTORY, interval="minute", minute_interval="5 min"), "history",
     "minute_interval: expected an integer 1–180"),
    ("history", dict(HISTORY, interval="minute", minute_interval=0), "history",
     "minute_interval: expected an integer 1–180"),
    ("history", dict(HISTORY, start="2026-13-45"), "history", "unknown ps_key"),
    ("reboot", {}, "reboot", "unknown request 'reboot'"),
    ("refrsh", {}, "refrsh", "unknown request 'refrsh' (did you mean 'refresh'?)"),
    ("REFRESH", {}, "unknown", "unknown request 'REFRESH'"),
    ("a" * 200, {}, "unknown", "unknown request"),
    ("über", {}, "unknown", "unknown request"),
    ("..", {}, "unknown", "unknown request"),
    ("", {}, "unknown", "unknown request"),
]


@pytest.fixture
def running_bridge(sim, shared_broker, base_topic, tmp_path) -> Iterator[Running]:
    bridge = Running(config_dict(sim, shared_broker.port, base_topic, tmp_path), tmp_path)
    yield bridge
    bridge.stop()


def test_every_bad_request_gets_a_clear_error_and_the_bridge_stays_up(
        sim, running_bridge, shared_broker, base_topic, caplog):
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
    try:
        ready(probe, base_topic)
        calls = sum(sim.call_counts().values())
        problems = []
        for index, (name, payload, answered_on, expected) in enumerate(BAD_REQUESTS):
            topic = f"{base_topic}/bridge/response/{answered_on}"
            mark = len(probe.history)
            data = payload if isinstance(payload, bytes) else json.dumps(payload)
            probe.publish(f"{base_topic}/bridge/request/{name}", data)
            try:
                probe.wait_for(lambda p, topic=topic, mark=mark: any(
                    t == topic for t, _, _ in p.history[mark:]), 3, f"answer {index}")
            except AssertionError:
                problems.append(f"#{index} {name[:20]!r} {data[:30]!r}: no answer on {topic}")
                continue
            answer = next(json.loads(d) for t, d, _ in probe.history[mark:] if t == topic)
            if answer.get("status") != "error" or expected not in answer.get("error", ""):
                problems.append(f"#{index} {name[:20]!r} {data[:30]!r}: {answer}")
        assert not problems, "\n".join(problems)
        assert sum(sim.call_counts().values()) == calls, "a bad request reached the cloud"
        assert probe.request(base_topic, "info", {})["status"] == "ok"
        assert running_bridge.thread.is_alive()
        assert not unhandled(caplog), describe(unhandled(caplog))
    finally:
        probe.close()


def test_retained_requests_are_not_replayed(sim, shared_broker, base_topic, tmp_path):
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
    bridge = None
    try:
        # left on the broker by a careless client; a (re)starting bridge gets it as retained
        probe.publish(f"{base_topic}/bridge/request/quota", {"transaction": "retained-1"},
                      retain=True)
        bridge = Running(config_dict(sim, shared_broker.port, base_topic, tmp_path), tmp_path)
        ready(probe, base_topic)
        quota_calls = sim.call_counts()["getOpenApiCallInfo"]      # the first cycle's one
        assert probe.request(base_topic, "info", {})["status"] == "ok"
        answers = [json.loads(d) for t, d, _ in probe.history
                   if t == f"{base_topic}/bridge/response/quota"]
        assert not [a for a in answers if a.get("transaction") == "retained-1"], answers
        assert sim.call_counts()["getOpenApiCallInfo"] == quota_calls
    finally:
        probe.publish(f"{base_topic}/bridge/request/quota", b"", retain=True)
        probe.close()
        if bridge:
            bridge.stop()


# -- the config file -----------------------------------------------------------------------------

BAD_CONFIG = """\
isolarcloud:
  server: eurpoe
  appkey: 98765432109876
  access_key: ""
  username: someone@example.invalid
  password: ${S2M_TEST_UNSET_VARIABLE}
  language: english
  timeout: 0
  rsa_public_key: no-such-key.pem
  tokenfile: token.json
mqtt:
  host: mqtt://broker:1883
  port: 70000
  client_id: "bad id!"
  base_topic: sungrow/#
  keepalive: 1
  password: hunter2-mqtt-secret
  tls:
    enabled: "yes"
    ca_certs: /nonexistent/ca.pem
homeassistant:
  discovery: maybe
  prefix: /homeassistant/
  prefix: homeassistant
polling:
  realtime: 5
  faults: abc
  devices: 10
  min_refresh_spacing: 99
plants: [123, -4, abc]
points:
  catalog: missing-catalog.yaml
logging:
  level: LOUD
extra_section: 1
"""

# every mistake above, by the key path its line must name (or the duplicate key)
CONFIG_MISTAKES = [
    "isolarcloud.server", "isolarcloud.appkey", "isolarcloud.access_key",
    "isolarcloud.password", "isolarcloud.language", "isolarcloud.timeout",
    "isolarcloud.rsa_public_key", "isolarcloud.tokenfile", "mqtt.host", "mqtt.port",
    "mqtt.client_id", "mqtt.base_topic", "mqtt.keepalive", "mqtt.password",
    "mqtt.tls.enabled", "mqtt.tls.ca_certs", "homeassistant.discovery", "duplicate key 'prefix'",
    "polling.realtime", "polling.faults", "polling.devices", "polling.min_refresh_spacing",
    "plants[1]", "plants[2]", "points.catalog", "logging.level", "extra_section",
]


def _problem_lines(stderr: str, source: str) -> List[str]:
    lines = []
    for line in stderr.splitlines():
        line = line.replace("sungrow2mqtt: error: ", "", 1)
        if line.startswith(source + ": "):
            lines.append(line)
    return lines


def test_config_with_every_kind_of_mistake_lists_each_once(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(BAD_CONFIG)
    path.chmod(0o600)
    result = run_cli("check", "-c", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert traceback_free(output), output
    lines = _problem_lines(result.stderr, str(path))
    for mistake in CONFIG_MISTAKES:
        marker = mistake if mistake.startswith("duplicate") else f"{path}: {mistake}: "
        naming = [line for line in lines if marker in line]
        assert len(naming) == 1, f"{mistake}: expected one line, got {naming}\n{output}"
    assert len(lines) == len(CONFIG_MISTAKES), "\n".join(lines)
    for secret in ("98765432109876", "hunter2-mqtt-secret"):
        assert secret not in output


@pytest.mark.parametrize("content,expected", [
    ("isolarcloud: [unclosed\n", "YAML syntax error at line"),
    ("", "empty"),
    ("- just\n- a list\n", "expected a mapping"),
    ("\xff\xfe".encode("latin-1"), "UTF-8"),
    (None, "is a directory"),
], ids=["syntax", "empty", "list", "binary", "directory"])
def test_unusable_config_file_is_one_clear_line(tmp_path, content, expected):
    path = tmp_path / "config.yaml"
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = run_cli("check", "-c", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert traceback_free(output)
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and expected in errors[0], output


# -- the token file ------------------------------------------------------------------------------

def _owner(sim: SimulatorServer) -> str:
    """The token file's owner hash for the simulator's account (as TokenStore writes it)."""
    return hashlib.sha256(f"{sim.url}\n{DEFAULT_CREDENTIALS.username}".encode()).hexdigest()


def _run_once(config: Dict[str, Any], tmp: Path) -> int:
    return Service(parse_config(config, "test.yaml", base_dir=tmp)).run_once()


@pytest.mark.parametrize("content", [
    b"\x00\x01\x02 not json at all \xff",
    b"",
    b'{"token": 12345, "owner": "OWNER"}',
    b'{"token": "0000000_not-a-valid-token", "owner": "OWNER"}',
    b'{"owner": "someone else", "token": "x"}',
    b'{"token": "truncated',
], ids=["binary", "empty", "number-token", "refused-token", "other-owner", "truncated"])
def test_corrupt_token_file_costs_one_login_and_is_rewritten(
        content, sim, shared_broker, base_topic, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    token_file = tmp_path / "state" / "token.json"
    token_file.parent.mkdir(mode=0o700)
    token_file.write_bytes(content.replace(b"OWNER", _owner(sim).encode()))
    config = config_dict(sim, shared_broker.port, base_topic, tmp_path,
                         isolarcloud={"token_file": str(token_file)})
    assert _run_once(config, tmp_path) == 0
    assert sim.call_counts()["login"] == 1
    saved = json.loads(token_file.read_text())
    assert saved["owner"] == _owner(sim) and isinstance(saved["token"], str)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert not unhandled(caplog), describe(unhandled(caplog))


@pytest.mark.parametrize("kind", ["parent-is-a-file", "unreadable-file", "read-only-dir"])
def test_unreadable_token_file_is_survived(kind, sim, shared_broker, base_topic, tmp_path,
                                           caplog):
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    if kind == "parent-is-a-file":           # works as root too: nothing can be read or written
        (tmp_path / "state").write_text("a file where a directory should be")
        token_file = tmp_path / "state" / "token.json"
    else:
        if os.geteuid() == 0:
            pytest.skip("root can read and write anything; covered by parent-is-a-file")
        directory = tmp_path / "state"
        directory.mkdir(mode=0o700)
        token_file = directory / "token.json"
        token_file.write_text("{}")
        if kind == "unreadable-file":
            token_file.chmod(0)
        else:
            directory.chmod(0o500)
    config = config_dict(sim, shared_broker.port, base_topic, tmp_path,
                         isolarcloud={"token_file": str(token_file)})
    try:
        assert _run_once(config, tmp_path) == 0
    finally:
        if kind == "read-only-dir":
            (tmp_path / "state").chmod(0o700)
    assert sim.call_counts()["login"] == 1
    warned = [r for r in records(caplog) if "token file" in r.getMessage().lower()]
    assert warned, describe(records(caplog))
    assert not unhandled(caplog), describe(unhandled(caplog))


def test_token_file_that_is_a_directory_is_a_config_error(sim, tmp_path):
    (tmp_path / "token.json").mkdir()
    config = config_dict(sim, 1883, "s2m", tmp_path)
    path = write_yaml(tmp_path / "config.yaml", config)
    result = run_cli("run", "--once", "-c", str(path))
    assert result.returncode == 2, result.stderr
    assert "isolarcloud.token_file" in result.stderr and "directory" in result.stderr
    assert traceback_free(result.stderr)


# -- a user catalog with errors ------------------------------------------------------------------

BAD_CATALOG = """\
source: my additions
device_types:
  14:
    - id: 13141
      scale: "x"
    - id: 99999
      key: Bad Key
      name: Bad
    - id: 13119
      unti: W
    - id: 99998
      name: no key given
  abc:
    - id: 1
"""

CATALOG_MISTAKES = ["device_types.14[0] (id 13141)", "device_types.14[1] (id 99999)",
                    "device_types.14[2] (id 13119)", "device_types.14[3] (id 99998)",
                    "device_types.abc"]


def test_bad_user_catalog_stops_run_once_with_one_line_per_entry(sim, tmp_path):
    catalog = tmp_path / "my_points.yaml"
    catalog.write_text(BAD_CATALOG)
    config = config_dict(sim, 1883, "s2m", tmp_path, points={"catalog": "my_points.yaml"})
    path = write_yaml(tmp_path / "config.yaml", config)
    result = run_cli("run", "--once", "-c", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert traceback_free(output), output
    lines = _problem_lines(result.stderr, str(catalog))
    for entry in CATALOG_MISTAKES:
        naming = [line for line in lines if line.startswith(f"{catalog}: {entry}")]
        assert len(naming) == 1, f"{entry}: expected one line, got {naming}\n{output}"
    assert len(lines) == len(CATALOG_MISTAKES), output
    assert not sim.call_counts(), "the cloud was called despite the broken catalog"

