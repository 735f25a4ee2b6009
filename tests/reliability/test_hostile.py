"""A hostile cloud: broken text, no answer at the first poll, a rate limit behind a refresh.

Each test reproduces a finding of issue 14 against the simulator over HTTP and a real mosquitto:
it failed on the code before the fix.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

from bridge_harness import config_dict, ready
from mqtt_probe import MqttProbe
from reliability_support import (
    Driven, describe, fast_simulator, records, shared_broker, sim, unhandled,
)
from sungrow2mqtt.config import parse_config
from sungrow2mqtt.service import Service

__all__ = ["shared_broker", "sim"]   # fixtures, used by name below

REPLACEMENT = "\ufffd"


@pytest.fixture
def probe(shared_broker, base_topic) -> Iterator[MqttProbe]:
    made = MqttProbe(shared_broker.port, f"{base_topic}/#", f"{base_topic}_ha/#")
    yield made
    made.close()


class Worker:
    """The real service with its worker thread; the transport retries fast, set before start."""

    def __init__(self, config: Dict[str, Any], tmp: Path) -> None:
        self.service = Service(parse_config(config, "test.yaml", base_dir=tmp))
        self.service.client.transport.backoff_base = 0.01
        self.service.client.transport.max_retries = 1
        self.service.start()

    def stop(self) -> None:
        self.service.stop()


def _names(info: Dict[str, Any]) -> list:
    return [p["name"] for p in info["plants"]]


# -- finding 1: one broken character stops the bridge ----------------------------------------

def test_a_lone_surrogate_at_start_is_published_replaced_and_polling_goes_on(
        sim, shared_broker, base_topic, tmp_path, probe, caplog):
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    sim.fail_next(2, "surrogate")         # the plant list and the device list of the start
    worker = Worker(config_dict(sim, shared_broker.port, base_topic, tmp_path), tmp_path)
    try:
        info = ready(probe, base_topic)   # states and faults of the first cycle are out
        assert any(name.endswith(REPLACEMENT) for name in _names(info)), _names(info)
        plant = info["plants"][0]["ps_key"]
        config = probe.json(f"{base_topic}_ha/binary_sensor/sungrow2mqtt_{plant}/problem/config")
        assert config["device"]["name"].endswith(REPLACEMENT)
        assert sim.call_counts()["getPowerStationList"] == 1, "device discovery was re-run"
        assert worker.service.worker is not None and worker.service.worker.is_alive()
        assert not unhandled(caplog), describe(unhandled(caplog))
    finally:
        worker.stop()


def test_a_lone_surrogate_mid_run_fails_nothing(sim, shared_broker, base_topic, tmp_path,
                                                probe, caplog):
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    driven = Driven(config_dict(sim, shared_broker.port, base_topic, tmp_path), tmp_path)
    try:
        driven.cycle()
        sim.fail_next(2, "surrogate")
        driven.cycle(devices=True)        # raised UnicodeEncodeError out of the job before
        assert driven.outcome("devices") == "ok" and driven.outcome("realtime") == "ok"
        probe.wait_topic(f"{base_topic}/bridge/info", check=lambda d: any(
            n.endswith(REPLACEMENT) for n in _names(json.loads(d))))
        assert not unhandled(caplog), describe(unhandled(caplog))
    finally:
        driven.stop()


# -- finding 2: cloud unreachable at the first poll ------------------------------------------

def test_a_cloud_unreachable_at_start_is_retried_within_seconds(shared_broker, base_topic,
                                                                tmp_path, probe, caplog):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    with fast_simulator() as cloud:
        config = config_dict(cloud, shared_broker.port, base_topic, tmp_path)
        cloud.stop()                          # "network online" is not "internet up"
        worker = Worker(config, tmp_path)
        try:
            probe.wait_topic(f"{base_topic}/bridge/info", check=lambda d: json.loads(d)[
                "last_poll"]["realtime"]["outcome"] is not None)
            info = probe.json(f"{base_topic}/bridge/info")
            assert info["last_poll"]["devices"]["outcome"] == "error"
            # a poll of no devices is no success
            assert info["last_poll"]["realtime"]["outcome"] == "error", info["last_poll"]
            assert "no devices known yet" in info["last_poll"]["realtime"]["error"]
            refresh = probe.request(base_topic, "refresh", {})
            assert refresh["status"] == "error", refresh
            assert not [r for r in records(caplog, logging.INFO) if "recover" in r.getMessage()]

            cloud.start()                     # the internet is up (polling.devices is 2 h)
            ready(probe, base_topic)
            recovered = [r for r in records(caplog, logging.INFO)
                         if "recover" in r.getMessage()]
            assert len(recovered) == 1, describe(records(caplog, logging.INFO))
            assert probe.request(base_topic, "refresh", {})["status"] == "ok"
        finally:
            worker.stop()


def test_discovery_that_keeps_failing_backs_off(shared_broker, base_topic, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    with fast_simulator() as cloud:
        cloud.fail_next(10_000, "http503", service="getPowerStationList")
        driven = Driven(config_dict(cloud, shared_broker.port, base_topic, tmp_path), tmp_path)
        try:
            poller = driven.poller
            poller.start()
            retries = []
            for _ in range(8):
                before = driven.clock.monotonic()
                poller.run_due()
                wait = poller.seconds_until_due()
                retries.append(round(wait))
                driven.clock.advance(wait)
                assert driven.clock.monotonic() >= before
            assert retries[:7] == [5, 10, 20, 40, 80, 160, 300], retries
            assert driven.outcome("realtime") == "error"
            loud = records(caplog)
            assert len(loud) == 1 and "HTTP 503" in loud[0].getMessage(), describe(loud)
        finally:
            driven.stop()
