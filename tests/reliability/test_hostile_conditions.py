"""A hostile cloud: broken text, no answer at the first poll, a rate limit behind a refresh.

Each test reproduces a finding of issue 14 against the simulator over HTTP and a real mosquitto:
it failed on the code before the fix.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from typing import Any, Dict, List, Tuple


from bridge_harness import config_dict, ready
from conftest import free_port, plant_now
from mqtt_probe import MqttProbe
from reliability_support import (
    Driven, describe, fast_simulator, probe, records, run_cli, shared_broker, sim, start_driven,
    start_worker, traceback_free, unhandled, write_yaml,
)
from sungrow2mqtt.components.request_api import MAX_QUEUED_REQUESTS

__all__ = ["probe", "shared_broker", "sim", "start_driven", "start_worker"]   # fixtures

REPLACEMENT = "\ufffd"


def _names(listed: Dict[str, Any]) -> list:
    """The plant names in bridge/devices."""
    return [p["name"] for p in listed["plants"]]


# -- finding 1: one broken character stops the bridge ----------------------------------------

def test_a_lone_surrogate_at_start_is_published_replaced_and_polling_goes_on(
        sim, shared_broker, base_topic, tmp_path, probe, caplog, start_worker):
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    sim.fail_next(2, "surrogate")         # the plant list and the device list of the start
    worker = start_worker(config_dict(sim, shared_broker.port, base_topic, tmp_path))
    listed = ready(probe, base_topic)   # states and faults of the first cycle are out
    assert any(name.endswith(REPLACEMENT) for name in _names(listed)), _names(listed)
    plant = listed["plants"][0]["ps_key"]
    config = probe.json(f"{base_topic}_ha/binary_sensor/sungrow2mqtt_{plant}/problem/config")
    assert config["device"]["name"].endswith(REPLACEMENT)
    assert sim.call_counts()["getPowerStationList"] == 1, "device discovery was re-run"
    assert worker.alive()
    assert not unhandled(caplog), describe(unhandled(caplog))


def test_a_lone_surrogate_mid_run_fails_nothing(sim, shared_broker, base_topic, tmp_path,
                                                probe, caplog, start_driven):
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    driven = start_driven(config_dict(sim, shared_broker.port, base_topic, tmp_path))
    driven.cycle()
    sim.fail_next(2, "surrogate")
    driven.cycle(devices=True)        # raised UnicodeEncodeError out of the job before
    assert driven.outcome("devices") == "ok" and driven.outcome("realtime") == "ok"
    probe.wait_topic(f"{base_topic}/bridge/devices", check=lambda d: any(
        n.endswith(REPLACEMENT) for n in _names(json.loads(d))))
    assert not unhandled(caplog), describe(unhandled(caplog))


# -- finding 2: cloud unreachable at the first poll ------------------------------------------

def test_a_cloud_unreachable_at_start_is_retried_within_seconds(
        shared_broker, base_topic, tmp_path, probe, caplog, start_worker):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    with fast_simulator() as cloud:
        config = config_dict(cloud, shared_broker.port, base_topic, tmp_path)
        cloud.stop()                          # "network online" is not "internet up"
        start_worker(config)
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


def test_discovery_that_keeps_failing_backs_off(shared_broker, base_topic, tmp_path, caplog,
                                                start_driven):
    caplog.set_level(logging.DEBUG, logger="sungrow2mqtt")
    with fast_simulator() as cloud:
        cloud.fail_next(10_000, "http503", service="getPowerStationList")
        driven = start_driven(config_dict(cloud, shared_broker.port, base_topic, tmp_path))
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


def _ask_many(probe: MqttProbe, base: str, asks: List[Tuple[str, Dict[str, Any]]],
              timeout: float = 30.0) -> List[Dict[str, Any]]:
    """Publish every request at once, then wait for each answer (matched by transaction)."""
    sent = []
    for number, (name, payload) in enumerate(asks):
        transaction = f"t{number}"
        probe.publish(f"{base}/bridge/request/{name}", dict(payload, transaction=transaction))
        sent.append((f"{base}/bridge/response/{name}", transaction))

    def answers(p: MqttProbe) -> Dict[str, Dict[str, Any]]:
        found = {}
        for topic, data, _ in p.history:
            if "/bridge/response/" in topic:
                message = json.loads(data)
                found[(topic, message.get("transaction"))] = message
        return found
    probe.wait_for(lambda p: all(key in answers(p) for key in sent), timeout,
                   f"{len(sent)} answers")
    found = answers(probe)
    return [found[key] for key in sent]


# -- finding 5: any MQTT client can burn the quota --------------------------------------------

def test_a_flood_of_requests_shares_spaced_cloud_calls(sim, shared_broker, base_topic, tmp_path,
                                                       probe, start_worker):
    start_worker(config_dict(sim, shared_broker.port, base_topic, tmp_path,
                                polling={"min_refresh_spacing": 2}))
    listed = ready(probe, base_topic)
    plant = listed["plants"][0]
    day = plant_now(sim, plant["ps_id"]).date().isoformat()
    history = {"ps_key": plant["ps_key"], "points": [83022], "interval": "day",
               "start": day, "end": day}
    before = sim.call_counts()
    # as many at once as the queue holds (6 of each kind): beyond that a flood is refused by
    # design (test_request_api), and how fast the worker drains the queue is the machine's
    asks = [(name, history if name == "history" else {})
            for _ in range(MAX_QUEUED_REQUESTS // 3) for name in ("quota", "faults", "history")]
    answers = _ask_many(probe, base_topic, asks)
    assert all(a["status"] == "ok" for a in answers), [a for a in answers
                                                       if a["status"] != "ok"][:3]
    calls = {k: v - before.get(k, 0) for k, v in sim.call_counts().items()}
    # 18 requests, three kinds: each kind's requests share a call, twice at most
    for service in ("getOpenApiCallInfo", "getFaultAlarmInfo",
                    "getDevicePointsDayMonthYearDataList"):
        assert 1 <= calls.get(service, 0) <= 2, calls


def test_requests_cannot_spend_the_quota_polling_needs(shared_broker, base_topic, tmp_path,
                                                      probe, start_worker):
    with fast_simulator(hourly_quota=50) as cloud:       # requests may spend 10 calls an hour
        worker = start_worker(config_dict(cloud, shared_broker.port, base_topic, tmp_path))
        listed = ready(probe, base_topic)
        plant = listed["plants"][0]
        today = plant_now(cloud, plant["ps_id"]).date()
        asks = [("history", {"ps_key": plant["ps_key"], "points": [83022],
                             "interval": "day", "start": str(day), "end": str(day)})
                for day in (today - dt.timedelta(days=n) for n in range(15))]
        answers = _ask_many(probe, base_topic, asks)
        assert [a["status"] for a in answers[:10]] == ["ok"] * 10, answers[:10]
        refused = answers[10:]
        assert all(a["status"] == "error" and "requests have spent their 10 API calls"
                   in a["error"] for a in refused), refused
        assert cloud.call_counts()["getDevicePointsDayMonthYearDataList"] == 10
        assert worker.service.poller.paused_until() is None    # the cloud never said E999


def test_a_history_request_has_a_cost_cap_and_says_what_it_cost(sim, shared_broker, base_topic,
                                                                 tmp_path, probe, start_worker):
    start_worker(config_dict(sim, shared_broker.port, base_topic, tmp_path))
    listed = ready(probe, base_topic)
    plant = listed["plants"][0]
    today = plant_now(sim, plant["ps_id"]).date()
    minutes = {"ps_key": plant["ps_key"], "points": [83022], "interval": "minute"}
    calls = sim.call_counts().get("getDevicePointMinuteDataList", 0)
    six_hours = probe.request(base_topic, "history", dict(
        minutes, start=f"{today}T06:00", end=f"{today}T12:00"))
    assert six_hours["status"] == "ok", six_hours
    assert six_hours["data"]["api_calls"] == 2 and six_hours["data"]["max_api_calls"] == 8
    assert sim.call_counts()["getDevicePointMinuteDataList"] == calls + 2
    week = probe.request(base_topic, "history", dict(
        minutes, start=f"{today - dt.timedelta(days=7)}T00:00", end=f"{today}T00:00"))
    assert week["status"] == "error" and "at most 8" in week["error"], week
    assert "takes 56 API calls" in week["error"]
    assert sim.call_counts()["getDevicePointMinuteDataList"] == calls + 2


# -- finding 13: a refresh waiting behind an E999 answers what happened -----------------------

def test_a_refresh_waiting_behind_a_rate_limit_says_so(sim, shared_broker, base_topic, tmp_path,
                                                       probe, start_worker):
    start_worker(config_dict(sim, shared_broker.port, base_topic, tmp_path,
                                polling={"min_refresh_spacing": 5}))
    ready(probe, base_topic)
    assert probe.request(base_topic, "refresh", {})["status"] == "ok"
    sim.fail_next(1, "code", code="E999")      # the next call meets the hourly limit
    waiting, quota = _ask_many(probe, base_topic, [("refresh", {}), ("quota", {})])
    assert waiting["status"] == "error", waiting         # was "ok", old figures, 0 calls
    assert "E999" in waiting["error"] or "paused" in waiting["error"], waiting
    assert quota["status"] == "error" and "E999" in quota["error"] + waiting["error"]


# -- finding 15: a locked account is no rate limit; no pause in the past ----------------------

def test_a_locked_account_is_reported_as_locked_not_rate_limited(sim, shared_broker, base_topic,
                                                                 tmp_path, probe, start_worker):
    start_worker(config_dict(sim, shared_broker.port, base_topic, tmp_path))
    ready(probe, base_topic)
    sim.lock_account()
    sim.expire_tokens()                  # the next call logs in again: login_state 5
    first = probe.request(base_topic, "refresh", {})
    assert first["status"] == "error" and "locked" in first["error"], first
    calls = sum(sim.call_counts().values())
    second = probe.request(base_topic, "refresh", {})
    assert second["status"] == "error" and "locked" in second["error"], second
    assert "rate limit" not in second["error"], second
    assert sum(sim.call_counts().values()) == calls      # no login attempt while paused


def test_a_pause_that_ran_out_is_not_shown_while_other_trouble_goes_on(
        sim, shared_broker, base_topic, tmp_path, probe, start_driven):
    driven = start_driven(config_dict(sim, shared_broker.port, base_topic, tmp_path))
    driven.cycle()
    sim.fail_next(1, "code", code="E901")      # a minute's pause, whatever the time of day
    driven.cycle()
    assert driven.poller.paused_until() is not None
    driven.clock.advance(61)                   # the minute is over, the cloud still fails
    sim.fail_next(10_000, "http503")
    driven.cycle()
    assert driven.outcome("realtime") == "error"
    info = probe.json(f"{base_topic}/bridge/info")
    assert info["rate_limited_until"] is None, info["rate_limited_until"]


# -- finding 7: nested base topics delete each other's entities -------------------------------

def test_a_bridge_on_a_parent_base_topic_leaves_the_nested_bridges_entities(
        sim, shared_broker, base_topic, tmp_path, probe, start_driven):
    prefix = f"{base_topic}_ha"

    def bridge(base: str, ps_id: int, name: str) -> Driven:
        tmp = tmp_path / name
        tmp.mkdir()
        return start_driven(config_dict(
            sim, shared_broker.port, base, tmp, plants=[ps_id],
            homeassistant={"prefix": prefix, "status_topic": f"{prefix}/status"},
            mqtt={"client_id": f"s2m-{name}-{base_topic[-8:]}"}), tmp)
    garage = bridge(f"{base_topic}/garage", 1587093, "garage")
    garage.cycle()
    garage_configs = set(garage.service.announcer.announced())
    probe.wait_for(lambda p: garage_configs <= set(p.messages), 10, "the garage's configs")
    home = bridge(base_topic, 1563218, "home")
    home.cycle()
    # Home Assistant's birth makes home republish its configs: once they arrive, home has
    # handled every retained config it was sent before (the garage's too)
    own = f"{prefix}/button/sungrow2mqtt_bridge_{base_topic}/refresh/config"
    mark = len(probe.history)
    probe.publish(f"{prefix}/status", "online")
    probe.wait_for(lambda p: any(t == own for t, _, _ in p.history[mark:]), 10,
                   "home's republished configs")
    cleared = [t for t, payload, _ in probe.history if t in garage_configs and not payload]
    assert not cleared, f"home cleared the garage's configs: {cleared[:3]}"
    after = MqttProbe(shared_broker.port, f"{prefix}/#")
    try:
        after.wait_for(lambda p: garage_configs <= set(p.messages), 10, "retained configs")
    finally:
        after.close()


# -- finding 6: paging that never ends ---------------------------------------------------------

def test_paging_that_never_ends_costs_a_few_calls_and_a_capped_payload(
        sim, shared_broker, base_topic, tmp_path, probe, start_driven):
    driven = start_driven(config_dict(sim, shared_broker.port, base_topic, tmp_path))
    driven.cycle()
    for number in range(120):
        sim.add_fault("1563218_14_1_1", 100 + number, f"Fault {number}")
    sim.fail_next(10_000, "endless_pages", service="getFaultAlarmInfo")
    before = sim.call_counts()["getFaultAlarmInfo"]
    driven.poller.run("faults")
    driven.flush()
    calls = sim.call_counts()["getFaultAlarmInfo"] - before
    assert driven.outcome("faults") == "ok"
    assert calls <= 10, f"{calls} calls for one fault poll of a server that pages forever"
    topic = f"{base_topic}/1563218_14_1_1/faults"
    probe.wait_topic(topic, check=lambda d: "not_shown" in json.loads(d))
    payload = probe.json(topic)
    assert len(payload["faults"]) == 50 and payload["not_shown"] == 50, payload["not_shown"]
    assert len(probe.messages[topic]) < 16_384


def test_the_history_command_warns_before_outrunning_the_quota_and_writes_what_came(tmp_path):
    with fast_simulator(hourly_quota=12) as cloud:
        plant = cloud.fleet.plants[0]
        today = plant.local_time(cloud.now()).date()
        config = write_yaml(tmp_path / "config.yaml",
                            config_dict(cloud, free_port(), "s2m_history", tmp_path))
        done = run_cli("history", "-c", str(config), "--ps-key", f"{plant.ps_id}_11_0_0",
                       "--points", "83022", "--interval", "minute",
                       "--from", f"{today - dt.timedelta(days=2)}T00:00",
                       "--to", f"{today}T00:00")
        calls = cloud.call_counts()
    assert traceback_free(done.stderr), done.stderr
    warning = done.stderr.index("warning: this download takes 16 API calls and the quota has")
    assert warning < done.stderr.index("window 1/16"), done.stderr
    assert done.returncode == 1 and "E999" in done.stderr.splitlines()[-1], done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["time", "daily_yield (kWh)"] and len(rows) > 10, done.stdout
    assert calls["getDevicePointMinuteDataList"] < 16
