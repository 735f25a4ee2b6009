"""Secrets stay secret, TLS is verified, and the command topic cannot be abused.

* a verbose (DEBUG) ``run --once`` and ``check`` runs, right and wrong credentials: no configured
  secret, token or AES request key appears in any output or MQTT payload;
* the token file is mode 0600 in a 0700 directory; a world-readable config with inline secrets
  is warned about;
* the broker's certificate is verified (right CA works, wrong CA fails clearly, ``insecure``
  works and warns); the cloud's HTTPS certificate is verified by default;
* requests cannot name URLs, paths or endpoints; history windows are limited; a flood of
  requests does not turn into a flood of cloud calls.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import ssl
import stat
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import yaml

from bridge_harness import Running, config_dict, ready
from conftest import mosquitto_binary
from mqtt_probe import MqttProbe
from reliability_support import (
    Collector, CustomBroker, fast_simulator, need_mosquitto, run_cli, shared_broker, sim, start_cli,
    traceback_free, write_yaml,
)
from sungrow2mqtt.config import load_config
from sungrow2mqtt.isolarcloud.crypto import rsa_decrypt
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS

__all__ = ["shared_broker", "sim"]   # fixtures, used by name below

MQTT_USER, MQTT_PASSWORD = "bridge-user", "Mqtt-Pa55word-" + uuid.uuid4().hex[:12]


# -- certificates --------------------------------------------------------------------------------

def _openssl(*args: str, cwd: Path) -> None:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    subprocess.run(["openssl", *args], cwd=str(cwd), check=True, capture_output=True,
                   timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """A CA with a server certificate for 127.0.0.1/localhost, a second CA, a self-signed cert."""
    tmp = tmp_path_factory.mktemp("pki")
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for ca in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-subj", f"/CN=test {ca}",
                 cwd=tmp)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
             "server.csr", "-subj", "/CN=localhost", cwd=tmp)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", "server.pem",
             cwd=tmp)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout",
             "self.key", "-out", "self.pem", "-subj", "/CN=localhost", "-addext",
             "subjectAltName=IP:127.0.0.1,DNS:localhost", cwd=tmp)
    return {name: tmp / name for name in ("ca.pem", "other-ca.pem", "server.pem", "server.key",
                                          "self.pem", "self.key")}


# -- no secret anywhere --------------------------------------------------------------------------

def _password_file(tmp: Path) -> Path:
    path = tmp / "passwords"
    path.write_text("")
    tool = shutil.which("mosquitto_passwd")
    if not tool:
        pytest.skip("mosquitto_passwd is not installed")
    subprocess.run([tool, "-b", str(path), MQTT_USER, MQTT_PASSWORD], check=True,
                   capture_output=True, timeout=30)
    return path


def _aes_keys(sim: Any) -> List[str]:
    """The AES request keys the bridge sent, decrypted with the simulator's private key."""
    keys = []
    for _, headers, _ in sim.requests_log:
        secret = headers.get("x-random-secret-key")
        if secret:
            keys.append(rsa_decrypt(secret, sim.gateway.private_key))
    return keys


def test_verbose_runs_leak_no_secret_to_output_or_mqtt(tmp_path):
    need_mosquitto()
    broker = CustomBroker(tmp_path, ["allow_anonymous false",
                                     f"password_file {_password_file(tmp_path)}"]).start()
    collector = Collector(broker.port, username=MQTT_USER, password=MQTT_PASSWORD)
    home = tmp_path / "home"
    home.mkdir()
    base = "s2m_secret_" + uuid.uuid4().hex[:6]
    outputs: List[Tuple[str, str]] = []
    wrong = {"password": "Wrong-Pa55-" + uuid.uuid4().hex[:10],
             "appkey": "WRONGAPPKEY" + uuid.uuid4().hex.upper()[:20],
             "access_key": "wrongaccesskey" + uuid.uuid4().hex[:18]}
    try:
        with fast_simulator(encrypted=True) as sim:
            config = config_dict(sim, broker.port, base, tmp_path)
            config["isolarcloud"].pop("token_file")          # the default, under $HOME
            config["mqtt"].update(username=MQTT_USER, password=MQTT_PASSWORD)
            path = write_yaml(tmp_path / "config.yaml", config)
            env = {"HOME": str(home)}

            for args in (["run", "--once", "-v", "-c", str(path)],
                         ["check", "-v", "-c", str(path)]):
                result = run_cli(*args, env=env)
                assert result.returncode == 0, result.stderr[-3000:]
                outputs.append((result.stdout, result.stderr))
            for key, value in wrong.items():
                bad = yaml.safe_load(path.read_text())
                bad["isolarcloud"][key] = value
                bad_path = write_yaml(tmp_path / f"config-{key}.yaml", bad)
                result = run_cli("check", "-v", "-c", str(bad_path), env=env)
                assert result.returncode == 1, (key, result.stderr[-3000:])
                assert traceback_free(result.stdout), result.stdout
                outputs.append((result.stdout, result.stderr))
            aes_keys = _aes_keys(sim)
        # nothing arrives later: --once waited for the broker's acknowledgements
        time.sleep(0.3)
        payloads = collector.text()
    finally:
        collector.close()
        broker.stop()

    token_file = home / ".local" / "state" / "sungrow2mqtt" / "token.json"
    token = json.loads(token_file.read_text())["token"]
    assert token and token not in token_file.name
    assert aes_keys, "no encrypted request was seen"
    secrets = {"appkey": DEFAULT_CREDENTIALS.appkey, "access_key": DEFAULT_CREDENTIALS.access_key,
               "password": DEFAULT_CREDENTIALS.password, "mqtt password": MQTT_PASSWORD,
               "token": token, **{f"wrong {k}": v for k, v in wrong.items()},
               **{f"AES key {i}": k for i, k in enumerate(aes_keys)}}
    assert f"{base}/bridge/info" in payloads and f"{base}/bridge/state" in payloads
    assert "DEBUG" in outputs[0][1], "the run was not verbose"
    for name, secret in secrets.items():
        for index, (out, err) in enumerate(outputs):
            assert secret not in out and secret not in err, f"{name} in the output of run {index}"
        assert secret not in payloads, f"{name} in an MQTT payload"

    # the token file: 0600 in a 0700 directory, both created by the bridge
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700


def test_world_readable_config_with_inline_secrets_is_warned_about(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="sungrow2mqtt")
    inline = {"isolarcloud": {"server": "eu", "appkey": "INLINEAPPKEY123456",
                              "access_key": "inlineaccesskey123456", "username": "user",
                              "password": "inline-password-123", "token_file": None},
              "mqtt": {"username": "u", "password": "inline-mqtt-password"}}
    path = write_yaml(tmp_path / "config.yaml", inline, mode=0o644)
    load_config(path, environ={})
    warnings = [r.getMessage() for r in caplog.records if "readable by other users" in
                r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    for key in ("isolarcloud.appkey", "isolarcloud.access_key", "isolarcloud.password",
                "mqtt.password"):
        assert key in warnings[0]
    for secret in ("INLINEAPPKEY123456", "inlineaccesskey123456", "inline-password-123",
                   "inline-mqtt-password"):
        assert secret not in warnings[0]

    caplog.clear()
    path.chmod(0o600)
    load_config(path, environ={})
    assert not [r for r in caplog.records if "readable by other users" in r.getMessage()]

    caplog.clear()
    referenced = yaml.safe_load(path.read_text())
    for section, key in (("isolarcloud", "appkey"), ("isolarcloud", "access_key"),
                         ("isolarcloud", "password"), ("mqtt", "password")):
        referenced[section][key] = "${S2M_" + key.upper() + "}"
    write_yaml(path, referenced, mode=0o644)
    load_config(path, environ={"S2M_APPKEY": "a" * 8, "S2M_ACCESS_KEY": "b" * 8,
                               "S2M_PASSWORD": "c" * 8})
    assert not [r for r in caplog.records if "readable by other users" in r.getMessage()]


# -- HTTPS to the cloud --------------------------------------------------------------------------

class _HttpsServer:
    """An HTTPS server with a self-signed certificate that records whether anyone got through."""

    def __init__(self, pki: Dict[str, Path]) -> None:
        self.requests: List[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                server.requests.append(self.path)
                self.send_response(500)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(pki["self.pem"]), str(pki["self.key"]))
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def https_server(pki) -> Iterator[_HttpsServer]:
    server = _HttpsServer(pki)
    yield server
    server.stop()


def test_cloud_https_certificate_is_verified_by_default(https_server, tmp_path):
    config = {"isolarcloud": {"server": https_server.url, "appkey": DEFAULT_CREDENTIALS.appkey,
                              "access_key": DEFAULT_CREDENTIALS.access_key,
                              "username": DEFAULT_CREDENTIALS.username,
                              "password": DEFAULT_CREDENTIALS.password, "token_file": None,
                              "timeout": 5}}
    path = write_yaml(tmp_path / "config.yaml", config)
    result = run_cli("check", "-c", str(path))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert traceback_free(output), output
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and re.search(r"certificate", errors[0], re.IGNORECASE), output
    assert not https_server.requests, "a request got through an unverified connection"
    assert DEFAULT_CREDENTIALS.password not in output


# -- the command topic ---------------------------------------------------------------------------

@pytest.fixture
def running_bridge(sim, shared_broker, base_topic, tmp_path) -> Iterator[Tuple[Running,
                                                                               MqttProbe]]:
    probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
    bridge = Running(config_dict(sim, shared_broker.port, base_topic, tmp_path), tmp_path)
    try:
        yield bridge, probe
    finally:
        bridge.stop()
        probe.close()


def test_requests_cannot_name_urls_paths_or_endpoints(sim, running_bridge, base_topic):
    bridge, probe = running_bridge
    listed = ready(probe, base_topic)
    plant = listed["plants"][0]["ps_key"]
    sim.reset_counts()
    abuse: List[Tuple[str, Dict[str, Any]]] = [
        ("refresh", {"url": "http://attacker.invalid/openapi/login"}),
        ("refresh", {"server": "http://attacker.invalid"}),
        ("quota", {"endpoint": "login"}),
        ("faults", {"service": "getPowerStationList", "path": "/openapi/login"}),
        ("history", {"ps_key": "../../openapi/login", "points": [1], "interval": "day",
                     "start": "2026-11-01", "end": "2026-11-02"}),
        ("history", {"ps_key": plant, "points": ["../login"], "interval": "day",
                     "start": "2026-11-01", "end": "2026-11-02"}),
        ("history", {"ps_key": plant, "points": [83022], "interval": "day",
                     "start": "2026-11-01", "end": "2026-11-02", "service": "login"}),
        ("login", {}), ("getPowerStationList", {}), ("getopenapicallinfo", {}),
        ("timestamp", {}), ("openapi", {}), ("_sim", {}),
    ]
    for name, payload in abuse:
        answer = _ask(probe, base_topic, name, payload)
        assert answer["status"] == "error", (name, payload, answer)
    assert not sim.call_counts(), f"the cloud was called: {sim.call_counts()}"
    assert bridge.thread.is_alive()


def _ask(probe: MqttProbe, base: str, name: str, payload: Dict[str, Any]) -> Dict[str, Any]:
    """Send a request; the answer comes on the request's own topic (or 'unknown')."""
    transaction = uuid.uuid4().hex
    mark = len(probe.history)
    probe.publish(f"{base}/bridge/request/{name}", dict(payload, transaction=transaction))
    found: Dict[str, Any] = {}

    def answered(p: MqttProbe) -> bool:
        for topic, data, _ in p.history[mark:]:
            if topic.startswith(f"{base}/bridge/response/"):
                message = json.loads(data)
                if message.get("transaction") == transaction:
                    found.update(message)
                    return True
        return False
    probe.wait_for(answered, 10, f"answer to {name}")
    return found


HISTORY_CALLS = ("getDevicePointMinuteDataList", "getDevicePointsDayMonthYearDataList")


def test_history_window_limits_are_enforced_before_calling(sim, running_bridge, base_topic):
    bridge, probe = running_bridge
    listed = ready(probe, base_topic)
    plant = listed["plants"][0]["ps_key"]
    # a range is split into the document's windows (3 h, 100 days, 24 months, 5 years), at most
    # 8 of them: one request costs at most 8 calls
    too_big = [
        ("minute", "2026-11-01T00:00", "2026-11-02T00:10", "at most 8"),
        ("minute", "2026-11-01T00:00", "2026-11-05T00:00", "at most 8"),
        ("day", "2000-01-01", "2026-01-01", "at most 8"),
        ("month", "2000-01", "2026-01", "at most 8"),
        ("year", "1900", "2026", "at most 8"),
        ("minute", "2026-11-01T03:00", "2026-11-01T00:00", "before end"),
        ("day", "2026-11-05", "2026-11-01", "before end"),
    ]
    for interval, start, end, expected in too_big:
        answer = _ask(probe, base_topic, "history", {"ps_key": plant, "points": [83022],
                                                     "interval": interval, "start": start,
                                                     "end": end})
        assert answer["status"] == "error" and expected in answer["error"], (interval, answer)
    assert not [c for c in HISTORY_CALLS if sim.call_counts().get(c)]
    answer = _ask(probe, base_topic, "history", {"ps_key": plant, "points": [83022],
                                                 "interval": "day", "start": "2026-01-01",
                                                 "end": "2026-04-10"})       # exactly 100 days
    assert answer["status"] == "ok", answer
    assert bridge.thread.is_alive()


def test_a_flood_of_requests_does_not_flood_the_cloud(sim, running_bridge, base_topic):
    bridge, probe = running_bridge
    ready(probe, base_topic)
    for name in ("refresh", "quota"):        # coalesced polls / one cloud call each
        before = sum(sim.call_counts().values())
        transactions = [f"flood-{name}-{i}" for i in range(200)]
        topic = f"{base_topic}/bridge/request/{name}"
        sent = [probe.client.publish(topic, json.dumps({"transaction": t}), qos=1)
                for t in transactions]
        for message in sent:
            message.wait_for_publish(5)
        answered: Dict[str, str] = {}

        def all_answered(p: MqttProbe, name: str = name,
                         transactions: List[str] = transactions,
                         answered: Dict[str, str] = answered) -> bool:
            for t, data, _ in p.history:
                if t == f"{base_topic}/bridge/response/{name}":
                    message = json.loads(data)
                    answered.setdefault(str(message.get("transaction")), message["status"])
            return all(t in answered for t in transactions)
        probe.wait_for(all_answered, 30, f"an answer to every {name} request")
        calls = sum(sim.call_counts().values()) - before
        assert calls < 100, f"{calls} cloud calls for 200 {name} requests"
        assert any(answered[t] == "ok" for t in transactions)
        # and the bridge is still responsive
        assert _ask(probe, base_topic, "info", {})["status"] == "ok"
    assert bridge.thread.is_alive()


# -- TLS to the broker ---------------------------------------------------------------------------

class TlsRuns:
    """``run --once`` against a TLS broker three ways, started when the module starts.

    A refused certificate may keep ``--once`` waiting for its connect timeout; running the three
    side by side, in the background of this module's other tests, keeps the suite fast.
    """

    CASES = {
        "right CA": {"enabled": True, "ca_certs": "ca.pem"},
        "wrong CA": {"enabled": True, "ca_certs": "other-ca.pem"},
        "insecure": {"enabled": True, "ca_certs": "other-ca.pem", "insecure": True},
    }

    def __init__(self, pki: Dict[str, Path], tmp: Path) -> None:
        self.sim = fast_simulator().start()
        self.broker = CustomBroker(tmp, ["allow_anonymous true", f"cafile {pki['ca.pem']}",
                                         f"certfile {pki['server.pem']}",
                                         f"keyfile {pki['server.key']}"]).start()
        self.processes: Dict[str, subprocess.Popen] = {}
        for name, case in self.CASES.items():
            tls = dict(case, ca_certs=str(pki[case["ca_certs"]]))
            config = config_dict(self.sim, self.broker.port, "s2m_tls_" + uuid.uuid4().hex[:6],
                                 tmp, mqtt={"tls": tls})
            config["isolarcloud"]["token_file"] = str(tmp / f"token-{name[:5]}.json")
            path = write_yaml(tmp / f"tls-{name.replace(' ', '-')}.yaml", config)
            self.processes[name] = start_cli("run", "--once", "-c", str(path))

    def results(self) -> Dict[str, Tuple[int, str, str]]:
        return {name: (p.wait(60), *p.communicate(timeout=10))
                for name, p in self.processes.items()}

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        self.broker.stop()
        self.sim.stop()


@pytest.fixture(scope="module", autouse=True)
def tls_runs(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Optional[TlsRuns]]:
    if not (mosquitto_binary() and shutil.which("openssl")):
        yield None                     # the TLS test skips; the others need neither
        return
    runs = TlsRuns(request.getfixturevalue("pki"), tmp_path_factory.mktemp("tls"))
    yield runs
    runs.stop()


def test_broker_tls_is_verified(tls_runs):
    if tls_runs is None:
        pytest.skip("needs mosquitto and openssl")
    results = tls_runs.results()
    problems = []
    code, out, err = results["right CA"]
    if code != 0 or "insecure" in err:
        problems.append(f"right CA: exit {code}, expected 0 without warnings:\n{err[-2000:]}")
    code, out, err = results["wrong CA"]
    if code != 1 or not traceback_free(out + err) or not re.search(r"certificate", err, re.I):
        problems.append(f"wrong CA: exit {code}, expected 1 with a message saying the broker's "
                        f"certificate could not be verified:\n{err[-2000:]}")
    code, out, err = results["insecure"]
    if code != 0 or not re.search(r"WARNING .*insecure", err):
        problems.append(f"insecure with a wrong CA: exit {code}, expected 0 and a warning:\n"
                        f"{err[-2000:]}")
    assert not problems, "\n\n".join(problems)
