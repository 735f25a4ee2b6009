"""The client against the simulator in its live-gateway mode and with its hostile failures.

The same behaviours as test_tokens.py / test_hostile.py, this time against the project's own
simulator, so that both sides of the contract stay honest.
"""
from __future__ import annotations

import logging

import pytest

from conftest import SIM_START, make_client
from sungrow2mqtt.isolarcloud import errors
from sungrow2mqtt.isolarcloud.client import device_type_of
from sungrow2mqtt.isolarcloud.token_store import TokenStore
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, Fleet, SimulatorServer

DENIED = "getFaultAlarmInfo"


def test_dead_tokens_answered_with_e900_cost_one_login_each(simulator, tmp_path):
    token_file = tmp_path / "token.json"
    TokenStore(token_file, simulator.url, DEFAULT_CREDENTIALS.username).save("stale-token")
    client = make_client(simulator, token_file=token_file)
    assert len(client.get_power_station_list()) == 2           # stale file: one login
    assert simulator.call_counts()["login"] == 1
    simulator.expire_tokens()                                   # dies while running: one more
    assert len(client.get_power_station_list()) == 2
    assert simulator.call_counts()["login"] == 2


def test_a_denied_api_is_held_back_with_one_line_and_no_login_loop(simulator, caplog):
    simulator.deny_api(DENIED)
    client = make_client(simulator)
    client.get_power_station_list()
    for _ in range(3):
        with pytest.raises(errors.ApiNotAuthorised):
            client.get_fault_alarm_info()
    assert simulator.call_counts()["login"] == 2
    assert simulator.call_counts()[DENIED] == 2
    assert len(client.get_power_station_list()) == 2
    assert sum(f"{DENIED} is not authorised" in r.getMessage() for r in caplog.records) == 1


def test_unknown_ps_keys_come_back_in_fail_ps_key_list(simulator):
    client = make_client(simulator)
    ess = next(d for d in client.get_device_list_by_user() if d["device_type"] == 14)
    unknown = f"{ess['ps_id']}_14_9_9"
    result = client.get_device_real_time_data(14, [13011], ps_keys=[ess["ps_key"], unknown])
    assert [d["ps_key"] for d in result.devices] == [ess["ps_key"]]
    assert result.fail_ps_key_list == [unknown]


def test_a_refresh_goes_out_in_parallel_and_never_meets_429():
    """Nine calls on eight connections: the fault query and seven realtime chunks overlap.

    The latency is what makes them overlap on the server, so it is kept well above the time a
    loaded CI machine may take to start the pool's threads (0.2 s once fell short there: 7).
    """
    with SimulatorServer(fleet=Fleet.synthetic(300, seed=5), latency=1.0,
                         start_time=SIM_START) as server:
        client = make_client(server, timeout=30)
        keys = [d["ps_key"] for d in client.get_device_list_by_user()]
        server.reset_counts()
        faults = client.submit(client.get_fault_alarm_info)
        result = client.get_real_time_data(keys, {device_type_of(k): [1] for k in keys})
        faults.result(timeout=60)
        assert len(result.devices) == len(keys)
        assert server.peak_in_flight() >= 8
    assert client.transport.stats.rate_limited == 0


@pytest.mark.parametrize("mode,args,match", [
    ("trickle", {"delay": 0.2}, "no complete answer within 1 s"),
    ("huge", {"size": 2 << 20}, "larger than 1 MiB"),
    ("redirect", {"code": "307", "location": "http://elsewhere.invalid"},
     "redirect to elsewhere.invalid"),
])
def test_hostile_answers_end_the_call_cleanly(simulator, mode, args, match, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(simulator, timeout=1.0, max_retries=0, max_response_bytes=1 << 20)
    client.login()
    simulator.fail_next(1, mode, **args)
    with pytest.raises(errors.ServerError, match=match):
        client.get_power_station_list()
    assert DEFAULT_CREDENTIALS.password not in caplog.text


def test_endless_pages_stop_at_the_repeated_page(simulator, caplog):
    client = make_client(simulator, max_workers=4, page_size=1)
    simulator.fail_next(1000, "endless_pages", service="getPowerStationList")   # every page
    plants = client.get_power_station_list()
    assert len(plants) == 1
    assert simulator.call_counts()["getPowerStationList"] <= 1 + 4
    assert "repeats an earlier page" in caplog.text


@pytest.mark.parametrize("idempotent, sent", [(True, 2), (False, 1)])
def test_a_write_that_may_have_reached_the_gateway_is_never_sent_again(simulator, idempotent,
                                                                      sent):
    """A slow answer is retried for a read, never for a write: the gateway may have taken it."""
    client = make_client(simulator, timeout=1.0, max_retries=1)
    client.login()
    simulator.reset_counts()
    simulator.fail_next(1, "trickle", delay=0.3, service="getOpenApiCallInfo")
    if idempotent:
        client.call("getOpenApiCallInfo", {})
    else:
        with pytest.raises(errors.ServerError, match="not repeated, since the gateway may have"):
            client.call("getOpenApiCallInfo", {}, idempotent=False)
    assert simulator.call_counts()["getOpenApiCallInfo"] == sent
