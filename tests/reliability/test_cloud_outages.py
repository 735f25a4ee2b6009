"""The cloud misbehaves for several cycles, then recovers: the bridge must ride it out quietly.

For every kind of outage the same promises hold: no cycle raises, the last good states stay
retained on the broker unchanged, ``bridge/info`` says ``error`` during the outage and ``ok``
after it, the trouble is logged once per episode at WARNING/ERROR (repeats only at DEBUG), and
the recovery is logged.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

from bridge_harness import Running, config_dict, ready
from mqtt_probe import MqttProbe
from reliability_support import (
    Driven, describe, fast_simulator, info_of, messages_since, records, retained_snapshot,
    shared_broker, sim, state_topics, unhandled,
)
from sungrow2mqtt.simulator import SimulatorServer

__all__ = ["shared_broker", "sim"]   # fixtures, used by name below

OUTAGE_CYCLES = 3


@dataclass(frozen=True)
class Outage:
    """How to break the sim, how to mend it, and what the error must mention."""

    start: Callable[[SimulatorServer], None]
    mention: str
    encrypted: bool = False
    timeout_mode: bool = False


def _inject(mode: str, **kwargs) -> Callable[[SimulatorServer], None]:
    return lambda sim: sim.fail_next(10_000, mode, **kwargs)


OUTAGES = {
    "http500": Outage(_inject("http500"), "HTTP 500"),
    "http503": Outage(_inject("http503"), "HTTP 503"),
    "garbage-body": Outage(_inject("garbage"), "not JSON"),
    "timeout": Outage(_inject("timeout", delay=1.5), "no complete answer within 1 s",
                      timeout_mode=True),
    "internal-error-code": Outage(_inject("code", code="-1"), "-1"),
    "e910-repeated": Outage(_inject("code", code="E910"), "E910", encrypted=True),
}


@pytest.fixture
def probe_factory(shared_broker) -> Iterator[Callable[..., MqttProbe]]:
    made = []

    def make(*filters: str) -> MqttProbe:
        made.append(MqttProbe(shared_broker.port, *filters))
        return made[-1]
    yield make
    for probe in made:
        probe.close()


def _driven(sim: SimulatorServer, broker_port: int, base: str, tmp: Path, *,
            timeout: Optional[float] = None, max_retries: int = 1) -> Driven:
    extra = {"isolarcloud": {"timeout": timeout}} if timeout else {}
    return Driven(config_dict(sim, broker_port, base, tmp, **extra), tmp,
                  max_retries=max_retries)


def _assert_quiet_outage(caplog, what: str) -> None:
    loud = records(caplog)
    assert len(loud) == 1 and loud[0].levelno >= logging.WARNING, (
        f"{what}: the outage must be logged exactly once at WARNING/ERROR, got:\n"
        + describe(loud))
    assert not unhandled(caplog), describe(unhandled(caplog))


def _assert_recovery_logged(caplog) -> None:
    recovered = [r for r in records(caplog, logging.INFO) if "recover" in r.getMessage().lower()]
    assert len(recovered) == 1, "recovery must be logged once:\n" + describe(
        records(caplog, logging.INFO))
    assert not [r for r in records(caplog) if r is not recovered[0]], describe(records(caplog))


@pytest.mark.parametrize("name", list(OUTAGES))
def test_outage_keeps_last_states_logs_once_and_recovers(name, shared_broker, base_topic,
                                                         tmp_path, caplog, probe_factory):
    outage = OUTAGES[name]
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    with fast_simulator(encrypted=outage.encrypted) as sim:
        driven = _driven(sim, shared_broker.port, base_topic, tmp_path,
                         timeout=1 if outage.timeout_mode else None,
                         max_retries=0 if outage.timeout_mode else 1)
        try:
            probe = probe_factory(f"{base_topic}/#")
            driven.cycle()
            assert driven.outcome("realtime") == "ok" and driven.outcome("faults") == "ok"
            topics = state_topics(driven)
            assert len(topics) >= 8
            before = retained_snapshot(shared_broker.port, topics)
            probe.wait_for(lambda p: all(t in p.messages for t in topics), 10, "states")
            mark = len(probe.history)
            caplog.clear()

            outage.start(sim)
            # a timeout cycle waits out its calls (1 s each): two cycles show the same
            for number in range(2 if outage.timeout_mode else OUTAGE_CYCLES):
                driven.cycle(devices=number == 1 and not outage.timeout_mode)
                assert driven.outcome("realtime") == "error", number
                assert driven.outcome("faults") == "error", number

            # the devices are still known and their last good states still retained, unchanged
            assert sorted(driven.fleet.snapshot().values) == sorted(
                t.split("/")[-1] for t in topics if not t.endswith("/faults"))
            assert retained_snapshot(shared_broker.port, topics) == before
            changed = messages_since(probe, mark, lambda t: t in before)
            assert not changed, f"states re-published during the outage: {changed[:3]}"
            probe.wait_topic(f"{base_topic}/bridge/info", check=lambda d: json.loads(d)[
                "last_poll"]["faults"]["outcome"] == "error")
            info = info_of(probe, base_topic)
            assert info["last_poll"]["realtime"]["outcome"] == "error"
            assert outage.mention in info["last_poll"]["realtime"]["error"]
            _assert_quiet_outage(caplog, name)
            assert [r for r in caplog.records if r.name == "sungrow2mqtt.components.poller"
                    and r.levelno == logging.DEBUG and "continues" in r.getMessage()]

            caplog.clear()
            sim.reset()                    # the cloud is healthy again
            mark = len(probe.history)
            driven.cycle()
            assert driven.outcome("realtime") == "ok" and driven.outcome("faults") == "ok"
            _assert_recovery_logged(caplog)
            # an unchanged state is not sent again: the retained one must be the fleet's
            latest = driven.fleet.snapshot().values[topics[0].split("/")[-1]]
            probe.wait_for(lambda p: json.loads(p.messages[topics[0]]) == latest, 10,
                           "the recovered states retained")
            probe.wait_topic(f"{base_topic}/bridge/info", check=lambda d: json.loads(d)[
                "last_poll"]["faults"]["outcome"] == "ok")
            assert info_of(probe, base_topic)["last_poll"]["realtime"]["error"] is None
        finally:
            driven.stop()


def _first_good_cycle(driven, probe_factory, broker_port: int, base_topic: str):
    """One good cycle; the probe, the state topics and their retained payloads after it."""
    probe = probe_factory(f"{base_topic}/#")
    driven.cycle()
    topics = state_topics(driven)
    before = retained_snapshot(broker_port, topics)
    probe.wait_for(lambda p: all(t in p.messages for t in topics), 10, "states")
    return probe, topics, before


def test_connection_refused_while_the_cloud_is_down(sim, shared_broker, base_topic,
                                                    tmp_path, caplog, probe_factory):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    driven = _driven(sim, shared_broker.port, base_topic, tmp_path)
    try:
        probe, topics, before = _first_good_cycle(driven, probe_factory, shared_broker.port,
                                                  base_topic)
        mark = len(probe.history)
        caplog.clear()

        sim.stop()                      # nothing listens on the port any more
        for number in range(OUTAGE_CYCLES):
            driven.cycle(devices=number == 1)
            assert driven.outcome("realtime") == "error"
        assert "Connection refused" in driven.fleet.snapshot().outcomes["realtime"].error
        assert retained_snapshot(shared_broker.port, topics) == before
        assert not messages_since(probe, mark, lambda t: t in before)
        _assert_quiet_outage(caplog, "connection refused")

        caplog.clear()
        sim.start()                     # same object, same port, tokens still valid
        driven.cycle()
        assert driven.outcome("realtime") == "ok" and driven.outcome("faults") == "ok"
        _assert_recovery_logged(caplog)
    finally:
        driven.stop()


@pytest.mark.parametrize("code", ["E999", "E998"])
def test_rate_limit_pauses_all_cloud_calls_until_the_retry_time(
        code, sim, shared_broker, base_topic, tmp_path, caplog, probe_factory):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    driven = _driven(sim, shared_broker.port, base_topic, tmp_path)
    try:
        probe, topics, before = _first_good_cycle(driven, probe_factory, shared_broker.port,
                                                  base_topic)
        caplog.clear()

        sim.fail_next(1, "code", code=code)
        driven.cycle()
        blocked = driven.poller.paused_until()
        assert blocked is not None and blocked > driven.clock.wall()
        expected = dt.timedelta(hours=1) if code == "E999" else dt.timedelta(days=1)
        assert blocked - driven.clock.wall() <= expected
        calls = dict(sim.call_counts())
        for number in range(OUTAGE_CYCLES):
            driven.cycle(devices=number == 1)
        assert sim.call_counts() == calls, "cloud called while rate limited"
        assert driven.outcome("realtime") == "error"
        probe.wait_topic(f"{base_topic}/bridge/info",
                         check=lambda d: json.loads(d)["rate_limited_until"] is not None)
        assert retained_snapshot(shared_broker.port, topics) == before
        _assert_quiet_outage(caplog, code)

        caplog.clear()
        # the retry time comes (an hour or a day cannot pass in a test: the clock moves)
        driven.clock.advance(expected.total_seconds())
        assert driven.poller.paused_until() is None
        driven.cycle()
        assert sum(sim.call_counts().values()) > sum(calls.values())
        assert driven.outcome("realtime") == "ok" and driven.outcome("faults") == "ok"
        _assert_recovery_logged(caplog)
        probe.wait_topic(f"{base_topic}/bridge/info",
                         check=lambda d: json.loads(d)["rate_limited_until"] is None)
    finally:
        driven.stop()


def test_token_expiry_mid_run_costs_exactly_one_login(sim, shared_broker, base_topic,
                                                      tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    driven = _driven(sim, shared_broker.port, base_topic, tmp_path)
    try:
        driven.cycle()
        token_file = tmp_path / "token.json"
        old_token = json.loads(token_file.read_text())["token"]
        assert sim.call_counts()["login"] == 1
        caplog.clear()

        sim.expire_tokens()
        for number in range(OUTAGE_CYCLES):
            driven.cycle(devices=number == 0)
            assert driven.outcome("realtime") == "ok" and driven.outcome("faults") == "ok"
        assert sim.call_counts()["login"] == 2, "exactly one new login"
        assert json.loads(token_file.read_text())["token"] != old_token
        assert not records(caplog), describe(records(caplog))
    finally:
        driven.stop()


def test_clock_skew_is_corrected_once_via_timestamp(shared_broker, base_topic, tmp_path,
                                                    caplog):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    with fast_simulator(encrypted=True) as sim:
        driven = _driven(sim, shared_broker.port, base_topic, tmp_path)
        try:
            driven.cycle()
            assert "timestamp" not in sim.call_counts()
            sim.set_clock_offset(3600)            # the server (or our clock) is an hour off
            for _ in range(OUTAGE_CYCLES):
                driven.cycle()
                assert driven.outcome("realtime") == "ok" and driven.outcome("faults") == "ok"
            assert sim.call_counts()["timestamp"] == 1, "one /timestamp read corrects the skew"
            offset = driven.transport._clock_offset_ms
            assert abs(offset - 3_600_000) < 60_000, offset
            sim.set_clock_offset(0)               # and back
            driven.cycle()
            assert driven.outcome("realtime") == "ok"
            assert sim.call_counts()["timestamp"] == 2
            assert not records(caplog), describe(records(caplog))
        finally:
            driven.stop()


def test_single_e910_is_retried_with_a_new_nonce(shared_broker, base_topic, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    with fast_simulator(encrypted=True) as sim:
        driven = _driven(sim, shared_broker.port, base_topic, tmp_path)
        try:
            driven.cycle()
            calls = sim.call_counts()["getDeviceRealTimeData"]
            sim.fail_next(1, "code", code="E910")
            driven.cycle()
            assert driven.outcome("realtime") == "ok"
            nonces = [body["api_key_param"]["nonce"] for endpoint, _, body in sim.requests_log
                      if endpoint == "getDeviceRealTimeData" and "api_key_param" in body]
            assert len(nonces) == len(set(nonces)), "a nonce was reused"
            assert sim.call_counts()["getDeviceRealTimeData"] > calls
            assert not records(caplog), describe(records(caplog))
        finally:
            driven.stop()


def test_worker_thread_survives_an_outage_and_answers_refreshes(
        sim, shared_broker, base_topic, tmp_path, caplog, probe_factory):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    probe = probe_factory(f"{base_topic}/#", f"{base_topic}_ha/#")
    bridge = Running(config_dict(sim, shared_broker.port, base_topic, tmp_path,
                                 polling={"min_refresh_spacing": 0}), tmp_path)
    try:
        bridge.service.client.transport.backoff_base = 0.01
        bridge.service.client.transport.max_retries = 1
        ready(probe, base_topic)
        sim.fail_next(10_000, "http503")
        for _ in range(OUTAGE_CYCLES):
            response = probe.request(base_topic, "refresh", {})
            assert response["status"] == "error" and "HTTP 503" in response["error"]
        assert bridge.thread.is_alive()
        sim.reset()
        response = probe.request(base_topic, "refresh", {})
        assert response["status"] == "ok", response
        assert bridge.thread.is_alive()
        assert not unhandled(caplog), describe(unhandled(caplog))
    finally:
        bridge.stop()
