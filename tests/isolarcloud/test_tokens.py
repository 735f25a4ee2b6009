"""Dead tokens and unauthorised APIs as the live gateway reports them: both are E900."""
from __future__ import annotations

import logging
import threading
from typing import List

import pytest
from gateway import Gateway, Rendezvous

from conftest import make_client
from sungrow2mqtt.isolarcloud import errors
from sungrow2mqtt.isolarcloud.token_store import TokenStore
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS

DENIED = "getFaultAlarmInfo"


@pytest.fixture
def gateway():
    with Gateway() as running:
        yield running


def stale_token_file(gateway, tmp_path):
    token_file = tmp_path / "token.json"
    TokenStore(token_file, gateway.url, DEFAULT_CREDENTIALS.username).save("dead-token-from-file")
    return token_file


def test_token_dying_with_e900_while_running_costs_one_login(gateway):
    client = make_client(gateway)
    client.get_power_station_list()
    gateway.kill_tokens()
    assert client.get_power_station_list() == []
    assert gateway.calls["login"] == 2
    assert client.get_power_station_list() == [] and gateway.calls["login"] == 2


def test_stale_token_file_at_start_costs_exactly_one_login(gateway, tmp_path):
    token_file = stale_token_file(gateway, tmp_path)
    client = make_client(gateway, token_file=token_file)
    assert client.get_power_station_list() == []
    assert gateway.calls["login"] == 1
    assert "dead-token-from-file" not in token_file.read_text()


def test_stale_token_seen_by_concurrent_calls_causes_one_login(gateway, tmp_path):
    client = make_client(gateway, token_file=stale_token_file(gateway, tmp_path))
    # both calls must be refused with the dead token before either logs in again
    gateway.rendezvous = Rendezvous(2, lambda service, body: service != "login")
    errors_seen: List[BaseException] = []

    def poll() -> None:
        try:
            client.get_power_station_list()
        except BaseException as exc:  # noqa: B036 - reported by the assertion below
            errors_seen.append(exc)

    threads = [threading.Thread(target=poll) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gateway.rendezvous.met and not errors_seen
    assert gateway.calls["login"] == 1
    assert gateway.calls["getPowerStationList"] == 4


def test_api_denied_with_e900_is_named_once_held_back_and_others_keep_working(gateway, caplog):
    gateway.denied.add(DENIED)
    client = make_client(gateway)
    client.get_power_station_list()                 # the token has served: it might die
    with pytest.raises(errors.ApiNotAuthorised) as info:
        client.get_fault_alarm_info()
    assert gateway.calls["login"] == 2              # one login to tell a dead token apart
    assert gateway.calls[DENIED] == 2
    assert info.value.endpoint == DENIED and info.value.result_code == "E900"
    assert isinstance(info.value, errors.ApiError)
    assert not isinstance(info.value, (errors.AuthError, errors.RateLimitError))
    assert 3590 < info.value.retry_after() <= 3600
    assert set(client.denied_apis()) == {DENIED}
    for _ in range(3):                              # held back: no call, no login
        with pytest.raises(errors.ApiNotAuthorised):
            client.get_fault_alarm_info()
    assert gateway.calls[DENIED] == 2 and gateway.calls["login"] == 2
    assert client.get_power_station_list() == []
    lines = [r.getMessage() for r in caplog.records if DENIED in r.getMessage()
             and "not authorised" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].startswith(f"{DENIED} is not authorised for this appkey: enable it for your "
                               "application on the developer portal")


def test_api_denied_on_the_first_call_after_login_costs_no_extra_login(gateway):
    gateway.denied.add(DENIED)
    client = make_client(gateway)
    with pytest.raises(errors.ApiNotAuthorised):
        client.get_fault_alarm_info()
    assert gateway.calls["login"] == 1 and gateway.calls[DENIED] == 1
    assert client.get_power_station_list() == []


def test_a_denied_api_is_tried_again_after_the_hold(gateway):
    now = [1000.0]
    gateway.denied.add(DENIED)
    client = make_client(gateway, clock=lambda: now[0], denied_for=600)
    with pytest.raises(errors.ApiNotAuthorised):
        client.get_fault_alarm_info()
    now[0] += 599
    with pytest.raises(errors.ApiNotAuthorised):
        client.get_fault_alarm_info()
    assert gateway.calls[DENIED] == 1
    now[0] += 2
    assert client.denied_apis() == {}
    gateway.denied.clear()
    assert client.get_fault_alarm_info() == []
    assert gateway.calls[DENIED] == 2


def test_a_token_that_never_served_and_is_old_may_have_died(gateway):
    now = [1000.0]
    client = make_client(gateway, clock=lambda: now[0])
    client.login()
    now[0] += 3600                          # not "just issued" any more
    gateway.kill_tokens()
    assert client.get_power_station_list() == []
    assert gateway.calls["login"] == 2 and client.denied_apis() == {}


def test_stale_token_file_and_a_denied_api_cost_one_login(gateway, tmp_path):
    gateway.denied.add(DENIED)
    client = make_client(gateway, token_file=stale_token_file(gateway, tmp_path))
    with pytest.raises(errors.ApiNotAuthorised):
        client.get_fault_alarm_info()
    assert gateway.calls["login"] == 1
    assert client.get_power_station_list() == [] and gateway.calls["login"] == 1


def test_e00003_on_a_token_just_issued_does_not_log_in_again(simulator, caplog):
    caplog.set_level(logging.INFO)
    client = make_client(simulator)
    client.login()
    simulator.fail_next(1, "code", code="E00003")
    with pytest.raises(errors.AuthError, match="E00003"):
        client.get_power_station_list()
    assert simulator.call_counts()["login"] == 1
    assert client.denied_apis() == {}



def test_a_denied_api_tried_again_after_the_hold_costs_no_login_while_the_token_works(
        gateway, caplog):
    now = [1000.0]
    gateway.denied.add(DENIED)
    client = make_client(gateway, clock=lambda: now[0], denied_for=600)
    with pytest.raises(errors.ApiNotAuthorised):
        client.get_fault_alarm_info()           # fresh token: denied, no second login
    for _ in range(3):                           # every hold ends with the API still denied
        now[0] += 601
        assert client.get_power_station_list() == []
        with pytest.raises(errors.ApiNotAuthorised):
            client.get_fault_alarm_info()
    assert gateway.calls["login"] == 1 and gateway.calls[DENIED] == 4
    assert set(client.denied_apis()) == {DENIED}
    lines = [r for r in caplog.records if "not authorised" in r.getMessage()]
    assert len(lines) == 4                       # one line per hold, none in between
    now[0] += 601
    gateway.kill_tokens()                        # a dead token is still told apart by a login
    assert client.get_power_station_list() == [] and gateway.calls["login"] == 2
