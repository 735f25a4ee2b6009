"""The transport against a hostile or broken server: every call ends, cleanly and bounded.

Each test reproduces a failure seen on the old code (issue 14): a trickling answer hung a call,
an endless answer filled memory, a redirect carried the credentials elsewhere, odd rate-limit
headers and deep JSON escaped as raw Python errors, paging never ended.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from types import SimpleNamespace
from typing import Any, Dict

import pytest
from gateway import Gateway, Reply, envelope

from conftest import make_client
from sungrow2mqtt.isolarcloud import errors
from sungrow2mqtt.isolarcloud.client import MAX_PAGES
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS

PLANTS = "getPowerStationList"


@pytest.fixture
def gateway():
    with Gateway() as running:
        yield running


@pytest.mark.parametrize("part", ["body", "head"])
def test_a_trickling_answer_ends_at_the_call_deadline(gateway, part):
    # the whole answer would take about 5 s: far past a one-second deadline, each byte in time
    answer = envelope({"pageList": [], "rowCount": 0})
    answer.body += b" " * (100 - len(answer.body) if part == "body" else 0)
    gateway.script(PLANTS, lambda body: Reply(body=answer.body, trickle=part, pause=0.05))
    client = make_client(gateway, timeout=1.0, max_retries=0)
    client.login()
    with pytest.raises(errors.ServerError, match="no complete answer within 1 s"):
        client.get_power_station_list()


def _deadline_threads() -> set:
    return {t for t in threading.enumerate() if t.name == "isolarcloud-deadlines"}


def test_the_deadline_thread_ends_with_nothing_to_watch_and_the_next_call_is_still_cut(gateway):
    # each session's deadline thread used to live for ever: hundreds of them in a test run
    before = _deadline_threads()
    client = make_client(gateway, timeout=1.0, max_retries=0)
    client.login()
    watching = _deadline_threads() - before
    assert watching                                      # the login's deadline is watched
    give_up = time.monotonic() + 10
    while any(t.is_alive() for t in watching) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert not any(t.is_alive() for t in watching)      # its deadline passed: nothing to watch
    answer = envelope({"pageList": [], "rowCount": 0})
    gateway.script(PLANTS, lambda body: Reply(body=answer.body, trickle="head", pause=0.05))
    with pytest.raises(errors.ServerError, match="no complete answer within 1 s"):
        client.get_power_station_list()


@pytest.mark.parametrize("length", [True, False])
def test_an_oversized_answer_is_refused_without_retries(gateway, length):
    huge = envelope({"pageList": [{"name": "x" * (2 << 20)}], "rowCount": 1}).body
    gateway.script(PLANTS, lambda body: Reply(body=huge, length=length))
    client = make_client(gateway, max_response_bytes=1 << 20)
    client.login()
    with pytest.raises(errors.ServerError, match="larger than 1 MiB"):
        client.get_power_station_list()
    assert gateway.calls[PLANTS] == 1


def test_the_default_answer_cap_is_16_mib(gateway):
    huge = envelope({"pageList": [{"name": "x" * (17 << 20)}], "rowCount": 1}).body
    gateway.script(PLANTS, lambda body: Reply(body=huge))
    client = make_client(gateway)
    client.login()
    with pytest.raises(errors.ServerError, match="larger than 16 MiB"):
        client.get_power_station_list()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_an_error_naming_the_target_and_sends_nothing_there(gateway, status):
    with Gateway() as elsewhere:
        target = elsewhere.url.split("//", 1)[1]
        gateway.script("login", lambda body: Reply(status, headers={
            "Location": f"{elsewhere.url}/openapi/login"}))
        client = make_client(gateway)
        with pytest.raises(errors.ServerError, match=f"redirect to {target}") as info:
            client.login()
        assert sum(elsewhere.calls.values()) == 0            # the password went nowhere else
    assert gateway.calls["login"] == 1                       # and was not sent twice
    assert DEFAULT_CREDENTIALS.password not in str(info.value)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "-5", "1e400",
                                   "99999999999999999999999", "abc", "", "1e6x"])
def test_odd_rate_limit_headers_are_ignored(gateway, value):
    gateway.rate_headers = {"X-Ratelimit-Burst-Capacity": value,
                            "X-Ratelimit-Remaining": value,
                            "X-Ratelimit-Replenish-Rate": value}
    client = make_client(gateway)
    for _ in range(3):
        assert client.get_power_station_list() == []
    assert client.transport.stats.rate_limited == 0


def test_deeply_nested_json_is_a_server_error(gateway):
    depth = 100_000
    nested = b'{"result_code":"1","result_data":' + b"[" * depth + b"]" * depth + b"}"
    gateway.script(PLANTS, lambda body: Reply(body=nested))
    client = make_client(gateway, max_retries=1)
    client.login()
    with pytest.raises(errors.ServerError, match="nested"):
        client.get_power_station_list()


def test_paging_stops_when_the_server_ignores_cur_page(gateway, caplog):
    page = [{"ps_id": n} for n in range(100)]
    gateway.script(PLANTS, lambda body: envelope({"pageList": page, "rowCount": 10 ** 9}))
    client = make_client(gateway, max_workers=4)
    assert client.get_power_station_list() == page
    assert gateway.calls[PLANTS] <= 1 + 4
    assert "repeats an earlier page" in caplog.text


def test_paging_is_capped_when_the_server_never_ends(gateway, caplog):
    def endless(body: Dict[str, Any]) -> Reply:
        first = (body["curPage"] - 1) * body["size"]
        rows = [{"ps_id": n} for n in range(first, first + body["size"])]
        return envelope({"pageList": rows, "rowCount": 10 ** 9})
    gateway.script(PLANTS, endless)
    rows = make_client(gateway).get_power_station_list()
    assert gateway.calls[PLANTS] == MAX_PAGES < 1000
    assert len(rows) == MAX_PAGES * 100 == len({row["ps_id"] for row in rows})
    assert f"stopped after {MAX_PAGES} pages" in caplog.text


@pytest.mark.parametrize("state", ["2", "5"])
def test_a_locked_account_is_a_login_error_not_a_rate_limit(gateway, state):
    gateway.script("login", lambda body: envelope({"login_state": state, "token": None}))
    client = make_client(gateway)
    with pytest.raises(errors.AccountLocked, match="locked") as info:
        client.get_power_station_list()
    assert isinstance(info.value, errors.LoginError)
    assert not isinstance(info.value, errors.RateLimitError)
    assert info.value.login_state == state


def test_close_ends_a_call_in_flight(gateway):
    answer = envelope({"pageList": [], "rowCount": 0}).body + b" " * 10_000
    gateway.script(PLANTS, lambda body: Reply(body=answer, trickle="body", pause=0.05))
    client = make_client(gateway, timeout=300)
    client.login()
    outcome: Dict[str, Any] = {}

    def poll() -> None:
        try:
            client.get_power_station_list()
        except errors.ApiError as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=poll, daemon=True)
    caller.start()
    while gateway.calls[PLANTS] == 0:
        caller.join(0.01)
    client.close()
    caller.join(30)                         # a liveness bound: the trickle alone lasts 500 s
    assert not caller.is_alive()
    assert isinstance(outcome.get("error"), errors.ServerError)
    with pytest.raises(errors.ServerError, match="closed"):
        client.get_power_station_list()


def test_answers_are_logged_without_secrets_even_when_refused(gateway, caplog):
    caplog.set_level(logging.DEBUG)
    gateway.script(PLANTS, lambda body: Reply(302, headers={"Location": "http://x.invalid/"}))
    client = make_client(gateway)
    with pytest.raises(errors.ServerError):
        client.get_power_station_list()
    for secret in (DEFAULT_CREDENTIALS.password, DEFAULT_CREDENTIALS.appkey,
                   DEFAULT_CREDENTIALS.access_key):
        assert secret not in caplog.text
    assert json.dumps(DEFAULT_CREDENTIALS.password) not in caplog.text


def _clear_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def test_calls_go_through_the_proxy_the_environment_names(gateway, monkeypatch):
    # the session reads the environment once per server, not per call: proxies still work
    _clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("http_proxy", gateway.url)
    behind_the_proxy = SimpleNamespace(url="http://gateway.invalid:8082", public_key=None)
    client = make_client(behind_the_proxy, max_retries=0)
    client.login()
    assert client.get_power_station_list() == []
    assert gateway.calls[PLANTS] == 1


def test_a_server_listed_in_no_proxy_is_called_directly(gateway, monkeypatch):
    _clear_proxy_environment(monkeypatch)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")      # nothing listens there
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    client = make_client(gateway, max_retries=0)
    client.login()
    assert client.get_power_station_list() == []
    assert gateway.calls[PLANTS] == 1
