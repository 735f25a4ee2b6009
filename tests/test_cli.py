"""The command line as a user runs it: real processes, the simulator over real HTTP."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import yaml

from conftest import SIM_START, free_port, wait_for_port
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer

SECRETS = (DEFAULT_CREDENTIALS.password, DEFAULT_CREDENTIALS.appkey,
           DEFAULT_CREDENTIALS.access_key)


def run_cli(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = 60
            ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sungrow2mqtt", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def write_config(tmp: Path, server: str, public_key: Optional[str] = None, *,
                 mqtt_port: Optional[int] = None, **overrides: str) -> Path:
    section = {"server": server, "appkey": DEFAULT_CREDENTIALS.appkey,
               "access_key": DEFAULT_CREDENTIALS.access_key,
               "username": DEFAULT_CREDENTIALS.username, "password": "${SIM_PASSWORD}",
               "rsa_public_key": public_key, "token_file": None, "timeout": 2}
    section.update(overrides)
    path = tmp / "config.yaml"
    # no broker given: a port where nothing listens
    mqtt = {"host": "127.0.0.1", "port": mqtt_port or free_port()}
    path.write_text(yaml.safe_dump({"isolarcloud": section, "mqtt": mqtt}))
    path.chmod(0o600)
    return path


ENV = {"SIM_PASSWORD": DEFAULT_CREDENTIALS.password}


@pytest.mark.parametrize("encrypted", [False, True])
def test_check_lists_both_plants_and_all_devices(tmp_path, encrypted, broker):
    with SimulatorServer(encrypted=encrypted, start_time=SIM_START) as sim:
        result = run_cli("check", "-c", str(write_config(tmp_path, sim.url, sim.public_key,
                                                         mqtt_port=broker.port)), env=ENV)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        for plant in sim.fleet.plants:
            assert str(plant.ps_id) in out and plant.name in out
        for device in sim.fleet.devices():
            if not device.virtual:
                assert device.ps_key in out
        assert "Call quota" in out
        assert f"broker 127.0.0.1:{broker.port}: connected" in out
        assert ("encrypted" in out) == encrypted
        for secret in SECRETS:
            assert secret not in out + result.stderr


@pytest.mark.parametrize("overrides,message", [
    ({"password": "not-the-password"}, "wrong password"),
    ({"username": "nobody@example.com"}, "account does not exist"),
    ({"access_key": "K" * 32}, "E912"),
    ({"appkey": "A" * 32}, "E00000"),
])
def test_check_names_the_cause_in_one_line(tmp_path, overrides, message):
    with SimulatorServer(start_time=SIM_START) as sim:
        result = run_cli("check", "-c", str(write_config(tmp_path, sim.url, **overrides)),
                         env=ENV)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    for secret in (*SECRETS, "not-the-password", "K" * 32, "A" * 32):
        assert secret not in result.stdout + result.stderr


def test_check_unreachable_server(tmp_path):
    result = run_cli("check", "-c", str(write_config(tmp_path,
                                                     f"http://127.0.0.1:{free_port()}")),
                     env=ENV)
    assert result.returncode == 1
    assert "cannot connect" in result.stderr and "isolarcloud.server" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_wrong_url_path(tmp_path):
    with SimulatorServer(start_time=SIM_START) as sim:
        result = run_cli("check", "-c", str(write_config(tmp_path, sim.url + "/wrong")),
                         env=ENV)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1


def test_check_tests_the_broker_too(tmp_path):
    port = free_port()
    with SimulatorServer(start_time=SIM_START) as sim:
        result = run_cli("check", "-c", str(write_config(tmp_path, sim.url, mqtt_port=port)),
                         env=ENV)
    assert result.returncode == 1
    assert "Call quota" in result.stdout                 # the cloud part was checked first
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr
    assert f"MQTT broker 127.0.0.1:{port} (mqtt.host/mqtt.port)" in errors[0], errors
    assert "Traceback" not in result.stderr


def test_check_config_error_exits_2_naming_the_key(tmp_path):
    path = write_config(tmp_path, "mars")
    result = run_cli("check", "-c", str(path), env=ENV)
    assert result.returncode == 2
    assert "isolarcloud.server" in result.stderr and "Traceback" not in result.stderr


def test_verbose_shows_debug_logs_without_secrets(tmp_path, broker):
    with SimulatorServer(start_time=SIM_START) as sim:
        result = run_cli("check", "-v", "-c", str(write_config(tmp_path, sim.url,
                                                               mqtt_port=broker.port)), env=ENV)
    assert result.returncode == 0
    assert "DEBUG" in result.stderr
    assert re.search(r"POST \S+/openapi/login attempt 1 \{", result.stderr)  # secrets left out
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize("encrypted", [False, True])
def test_simulate_prints_a_config_block_that_check_accepts(tmp_path, encrypted, broker):
    port = free_port()
    args = [sys.executable, "-m", "sungrow2mqtt", "simulate", "--port", str(port)]
    if encrypted:
        args.append("--encrypted")
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port)
        lines: List[str] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if line.strip().startswith("language:"):
                break
        text = "".join(lines)
        block = text[text.index("isolarcloud:"):]
        config = yaml.safe_load(block)
        assert config["isolarcloud"]["server"] == f"http://127.0.0.1:{port}"
        assert bool(config["isolarcloud"].get("rsa_public_key")) == encrypted
        path = tmp_path / "config.yaml"
        path.write_text(block + f"\nmqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n")
        path.chmod(0o600)
        result = run_cli("check", "-c", str(path))
        assert result.returncode == 0, result.stderr
        assert len(re.findall(r"ps_key \d+_", result.stdout)) >= 7
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_version_and_help():
    from sungrow2mqtt import __version__
    assert __version__ in run_cli("--version").stdout
    for command in ("run", "check", "points", "simulate"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "example:" in result.stdout


def test_points_prints_catalog_yaml_that_loads_as_a_user_catalog(tmp_path):
    from sungrow2mqtt.catalog import load_catalog
    with SimulatorServer(start_time=SIM_START) as sim:
        result = run_cli("points", "-c", str(write_config(tmp_path, sim.url)),
                         "--device-type", "14", env=ENV)
    assert result.returncode == 0, result.stderr
    user_file = tmp_path / "my_points.yaml"
    user_file.write_text(result.stdout)
    catalog = load_catalog(user_file)
    assert len(catalog.for_device_type(14)) >= len(load_catalog().for_device_type(14))
    assert "device_types:" in result.stdout
