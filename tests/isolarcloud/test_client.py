"""The real client against the simulator over real HTTP, plain and encrypted."""
from __future__ import annotations

import datetime as dt
import logging
import os
import stat

import pytest

from conftest import SIM_START, at_any_hour, make_client, plant_now
from sungrow2mqtt.isolarcloud import errors
from sungrow2mqtt.isolarcloud.client import device_type_of
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, Credentials, Fleet, SimulatorServer


@at_any_hour
def test_every_endpoint_returns_plain_data(any_simulator):
    client = make_client(any_simulator)
    user = client.login()
    assert "token" not in user
    plants = client.get_power_station_list()
    assert len(plants) == 2
    ps_id = plants[0]["ps_id"]
    detail = client.get_power_station_detail(ps_id)
    assert detail["ps_key"] == f"{ps_id}_11_0_0"
    devices = client.get_device_list(ps_id)
    assert devices and all(str(d["ps_key"]).startswith(f"{ps_id}_") for d in devices)
    virtual = client.get_device_list(ps_id, virtual=True)
    assert any(device_type_of(d["ps_key"]) == 11 for d in virtual)
    everyone = client.get_device_list_by_user()
    assert {d["ps_id"] for d in everyone} >= {p["ps_id"] for p in plants}
    comm = client.get_communication_dev_info_by_dev_sn(devices[0]["device_sn"])
    assert comm["ps_id"] == ps_id
    inverters = [d for d in everyone if d["device_type"] == 1]
    pv = client.get_pv_inverter_real_time_data(ps_keys=[d["ps_key"] for d in inverters])
    assert len(pv.devices) == len(inverters)
    assert all(isinstance(d["p24"], (str, type(None))) for d in pv.devices)
    ess = next(d for d in everyone if d["device_type"] == 14)
    realtime = client.get_device_real_time_data(14, [13011, "p13141"], ps_keys=[ess["ps_key"]])
    row = realtime.devices[0]
    assert set(row) >= {"p13011", "p13141", "device_time", "ps_key"}
    now = plant_now(any_simulator, ess["ps_id"])
    end = now.replace(second=0, microsecond=0)
    minute = client.get_device_point_minute_data_list([ess["ps_key"]], [13011], end -
                                                      dt.timedelta(hours=1), end)
    assert minute.data[ess["ps_key"]]
    today = now.date()
    days = client.get_device_points_day_month_year_data_list(
        [ess["ps_key"]], [13112], (today - dt.timedelta(days=5)).strftime("%Y%m%d"),
        today.strftime("%Y%m%d"), 1)
    assert "p13112" in days.data[ess["ps_key"]]
    assert isinstance(client.get_fault_alarm_info(), list)
    points = client.get_open_point_info(14, 2)
    assert any(p["point_id"] in (13011, "13011") for p in points)
    props = client.get_dev_property_point_value(ess["ps_key"].split("_")[0], 14,
                                                [ess["ps_key"]], [13257])
    assert props["property_point_value_list"]
    quota = client.get_open_api_call_info()
    assert "today_accessed_times" in quota


def test_sn_query_and_fail_sn_list(simulator):
    client = make_client(simulator)
    ess = next(d for d in client.get_device_list_by_user() if d["device_type"] == 14)
    result = client.get_device_real_time_data(14, [13011], sns=[ess["device_sn"], "NOSUCHSN"])
    assert [d["ps_key"] for d in result.devices] == [ess["ps_key"]]
    assert result.fail_sn_list == ["NOSUCHSN"]


def test_paging_returns_every_row(simulator):
    client = make_client(simulator, )
    client.page_size = 1
    plants = client.get_power_station_list()
    assert len(plants) == 2
    assert simulator.call_counts()["getPowerStationList"] == 2
    devices = client.get_device_list_by_user()
    assert len(devices) == len({d["ps_key"] for d in devices}) > 2


def test_chunking_splits_into_fewest_calls_and_merges():
    fleet = Fleet.synthetic(120, seed=1)
    with SimulatorServer(fleet=fleet, start_time=SIM_START) as server:
        client = make_client(server)
        devices = client.get_device_list_by_user()
        meters = [d["ps_key"] for d in devices if d["device_type"] == 7]
        assert len(meters) > 0
        server.reset_counts()
        result = client.get_device_real_time_data(7, [8018, 8030], ps_keys=meters)
        assert len(result.devices) == len(meters)
        expected_calls = -(-len(meters) // 50)
        assert server.call_counts()["getDeviceRealTimeData"] == expected_calls
        # mixed types are grouped: one call per type (each type has < 50 devices here or is split)
        server.reset_counts()
        keys = [d["ps_key"] for d in devices]
        types = {device_type_of(k) for k in keys}
        mixed = client.get_real_time_data(keys, {t: [1] for t in types})
        assert len(mixed.devices) == len(keys)
        per_type = [sum(1 for k in keys if device_type_of(k) == t) for t in types]
        assert server.call_counts()["getDeviceRealTimeData"] == sum(-(-n // 50) for n in per_type)


def test_minute_points_split_below_fifty_and_rows_merged(simulator):
    client = make_client(simulator)
    ess = next(d for d in client.get_device_list_by_user() if d["device_type"] == 14)
    points = list(range(13001, 13061))          # 60 points -> 2 calls of < 50
    end = plant_now(simulator, ess["ps_id"]).replace(second=0, microsecond=0)
    simulator.reset_counts()
    result = client.get_device_point_minute_data_list([ess["ps_key"]], points,
                                                      end - dt.timedelta(minutes=30), end)
    assert simulator.call_counts()["getDevicePointMinuteDataList"] == 2
    stamps = [r["time_stamp"] for r in result.data[ess["ps_key"]]]
    assert stamps == sorted(set(stamps))        # one row per time stamp after the merge


@pytest.mark.parametrize("call,limit", [
    (lambda c, now: c.get_device_point_minute_data_list(
        ["1_14_1_1"], [1], now - dt.timedelta(hours=3, minutes=1), now), "3 hours"),
    (lambda c, now: c.get_device_points_day_month_year_data_list(
        ["1_14_1_1"], [1], "20250101", "20250411", 1), "100 days"),
    (lambda c, now: c.get_device_points_day_month_year_data_list(
        ["1_14_1_1"], [1], "202301", "202501", 2), "24 months"),
    (lambda c, now: c.get_device_points_day_month_year_data_list(
        ["1_14_1_1"], [1], "2020", "2025", 3), "5 years"),
    (lambda c, now: c.get_device_real_time_data(14, [1], ps_keys=["1_7_1_1"]), "one type"),
    (lambda c, now: c.get_device_point_minute_data_list(
        ["1_14_1_1", "1_7_1_1"], [1], now - dt.timedelta(hours=1), now), "same type"),
    (lambda c, now: c.get_device_real_time_data(14, [1]), "cannot both be empty"),
    (lambda c, now: c.get_open_point_info(14, 3), "type must be"),
    (lambda c, now: c.get_fault_alarm_info(process_status=9, start=dt.datetime(2025, 1, 30),
                                           end=dt.datetime(2025, 2, 2)), "across months"),
])
def test_document_limits_are_checked_before_any_call(simulator, call, limit):
    client = make_client(simulator)
    with pytest.raises(ValueError, match=limit):
        call(client, dt.datetime(2025, 6, 1, 12, 0))
    assert client.transport.stats.total == 0


def test_headers_and_body_follow_the_document(any_simulator):
    client = make_client(any_simulator, language="_en_US")
    client.get_power_station_list()
    endpoint, headers, body = any_simulator.requests_log[-1]
    headers = {k.lower(): v for k, v in headers.items()}
    assert endpoint == "getPowerStationList"
    assert headers["sys_code"] == "901"
    assert headers["content-type"].startswith("application/json")
    assert headers["x-access-key"] == DEFAULT_CREDENTIALS.access_key
    assert headers["lang"] == "_en_US"
    assert body["appkey"] == DEFAULT_CREDENTIALS.appkey and body["token"]
    assert body["curPage"] == 1 and body["size"]
    if any_simulator.public_key:
        assert "x-random-secret-key" in headers
        assert len(body["api_key_param"]["nonce"]) == 32
    login = next(body for endpoint, _, body in any_simulator.requests_log if endpoint == "login")
    assert login["login_type"] == "1"               # appendix 7, as live-tested clients send it


def test_encrypted_nonces_are_fresh_on_every_request_and_retry(encrypted_simulator):
    client = make_client(encrypted_simulator)
    encrypted_simulator.fail_next(2, "http500")
    client.get_power_station_list()
    nonces = [b["api_key_param"]["nonce"] for _, _, b in encrypted_simulator.requests_log
              if isinstance(b, dict) and "api_key_param" in b]
    assert len(nonces) >= 4 and len(set(nonces)) == len(nonces)


def test_token_file_is_private_and_reused_across_restarts(simulator, tmp_path):
    token_file = tmp_path / "state" / "token.json"
    make_client(simulator, token_file=token_file).get_power_station_list()
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(token_file.parent).st_mode) == 0o700
    assert simulator.call_counts()["login"] == 1
    make_client(simulator, token_file=token_file).get_power_station_list()
    assert simulator.call_counts()["login"] == 1          # the restart reused the token


def test_corrupt_token_file_is_ignored(simulator, tmp_path, caplog):
    token_file = tmp_path / "token.json"
    token_file.write_text("{not json")
    make_client(simulator, token_file=token_file).get_power_station_list()
    assert "corrupt" in caplog.text
    assert simulator.call_counts()["login"] == 1


def test_expired_token_means_exactly_one_new_login(simulator):
    client = make_client(simulator)
    client.get_power_station_list()
    simulator.expire_tokens()
    assert len(client.get_power_station_list()) == 2
    assert simulator.call_counts()["login"] == 2


def test_token_refused_twice_does_not_loop(simulator):
    client = make_client(simulator)
    client.get_power_station_list()             # the token has served, so it may have died
    simulator.fail_next(2, "code", code="E00003")
    with pytest.raises(errors.AuthError, match="E00003"):
        client.get_power_station_list()
    assert simulator.call_counts()["login"] == 2


# E913, E910 and E00003 are retried by the client, their own tests are below; E900 has its own
# in test_tokens.py
@pytest.mark.parametrize("code", sorted(set(errors.RESULT_CODES) - {"E913", "E910", "E00003",
                                                                    "E900"}))
def test_every_result_code_maps_to_its_exception(simulator, code):
    name, meaning, cls = errors.RESULT_CODES[code]
    client = make_client(simulator)
    client.login()
    simulator.fail_next(1, "code", code=code)
    with pytest.raises(cls) as info:
        client.get_power_station_list()
    assert code in str(info.value) and meaning in str(info.value)
    assert info.value.result_code == code and info.value.endpoint == "getPowerStationList"
    if cls is errors.RateLimitError:
        assert info.value.retry_at > dt.datetime.now(dt.timezone.utc)


def test_hourly_quota_error_retries_at_the_next_hour(simulator):
    client = make_client(simulator)
    client.login()
    simulator.fail_next(1, "code", code="E999")
    with pytest.raises(errors.RateLimitError) as info:
        client.get_power_station_list()
    retry_at = info.value.retry_at
    assert (retry_at.minute, retry_at.second) == (0, 0)
    assert 0 < info.value.retry_after() <= 3600


@pytest.mark.parametrize("credentials,message", [
    (Credentials(DEFAULT_CREDENTIALS.appkey, DEFAULT_CREDENTIALS.access_key,
                 DEFAULT_CREDENTIALS.username, "wrong-password"), "wrong password"),
    (Credentials(DEFAULT_CREDENTIALS.appkey, DEFAULT_CREDENTIALS.access_key,
                 "nobody@example.com", "x"), "does not exist"),
])
def test_login_states_give_distinct_messages(simulator, credentials, message):
    client = make_client(simulator, credentials=credentials)
    with pytest.raises(errors.LoginError, match=message):
        client.get_power_station_list()


def test_locked_account(simulator):
    bad = Credentials(DEFAULT_CREDENTIALS.appkey, DEFAULT_CREDENTIALS.access_key,
                      DEFAULT_CREDENTIALS.username, "wrong-password")
    for _ in range(5):
        with pytest.raises(errors.LoginError):
            make_client(simulator, credentials=bad).login()
    with pytest.raises(errors.LoginError, match="locked"):
        make_client(simulator).login()


def test_attempts_left_before_the_lock_are_counted_in_words(simulator):
    bad = Credentials(DEFAULT_CREDENTIALS.appkey, DEFAULT_CREDENTIALS.access_key,
                      DEFAULT_CREDENTIALS.username, "wrong-password")
    messages = []
    for _ in range(4):
        with pytest.raises(errors.LoginError) as info:
            make_client(simulator, credentials=bad).login()
        messages.append(str(info.value))
    assert ", 4 attempts left before the account is locked" in messages[0]
    assert ", 1 attempt left before the account is locked" in messages[3]


@pytest.mark.parametrize("field,code", [("appkey", "E00000"), ("access_key", "E912")])
def test_wrong_keys_are_auth_errors(simulator, field, code):
    values = DEFAULT_CREDENTIALS.__dict__.copy()
    values[field] = "X" * 32
    client = make_client(simulator, credentials=Credentials(**values))
    with pytest.raises(errors.AuthError, match=code):
        client.login()


def test_clock_skew_is_corrected_with_the_timestamp_endpoint(encrypted_simulator):
    client = make_client(encrypted_simulator)
    encrypted_simulator.set_clock_offset(3600)
    assert len(client.get_power_station_list()) == 2
    assert encrypted_simulator.call_counts().get("timestamp") == 1
    assert abs(client.transport._clock_offset_ms - 3_600_000) < 5_000


def test_repeated_request_is_retried_with_a_new_nonce(encrypted_simulator):
    client = make_client(encrypted_simulator)
    client.login()
    encrypted_simulator.fail_next(1, "code", code="E910")
    assert len(client.get_power_station_list()) == 2


@pytest.mark.parametrize("mode", ["http500", "http503", "garbage"])
def test_transient_failures_are_retried(simulator, mode):
    client = make_client(simulator)
    client.login()
    simulator.fail_next(2, mode)
    assert len(client.get_power_station_list()) == 2
    assert client.transport.stats.retries == 2


def test_http_429_is_retried_after_a_refill_and_is_not_a_failed_attempt(simulator):
    client = make_client(simulator, max_retries=0)
    client.login()
    simulator.fail_next(3, "ratelimit429")
    assert len(client.get_power_station_list()) == 2
    stats = client.transport.stats
    assert (stats.retries, stats.rate_limited) == (0, 3)
    assert stats.rate_limit_waits > 0                 # each retry waited for the bucket


def test_timeouts_are_retried_then_reported(simulator):
    client = make_client(simulator, timeout=0.3, max_retries=1)
    client.login()
    simulator.fail_next(2, "timeout", delay=1.0)
    with pytest.raises(errors.ServerError, match="no complete answer within"):
        client.get_power_station_list()


def test_persistent_5xx_gives_up_after_bounded_retries(simulator):
    client = make_client(simulator, max_retries=2)
    client.login()
    simulator.fail_next(10, "http500")
    with pytest.raises(errors.ServerError, match="HTTP 500"):
        client.get_power_station_list()
    assert client.transport.stats.calls["getPowerStationList"] == 3


def test_unreachable_server_is_a_server_error():
    from conftest import free_port
    from sungrow2mqtt.isolarcloud.client import IsolarCloudClient
    from sungrow2mqtt.isolarcloud.transport import Transport
    transport = Transport(f"http://127.0.0.1:{free_port()}", "a" * 32, "b" * 32,
                          max_retries=1, backoff_base=0.01)
    with pytest.raises(errors.ConnectionFailed, match="cannot connect.*Connection refused"):
        IsolarCloudClient(transport, "user", "pw").login()


def test_a_connection_lost_mid_call_is_no_connection_failure(simulator):
    client = make_client(simulator, max_retries=1)
    client.login()
    simulator.fail_next(2, "timeout", delay=0)           # the server hangs up without answering
    with pytest.raises(errors.ServerError, match="connection lost") as info:
        client.get_power_station_list()
    assert not isinstance(info.value, errors.ConnectionFailed)


def test_rate_limit_headers_make_the_client_wait_instead_of_being_refused():
    with SimulatorServer(burst_capacity=3, replenish_rate=20, start_time=SIM_START) as server:
        client = make_client(server)
        client.login()
        for _ in range(12):
            client.get_open_api_call_info()
        assert client.transport.stats.retries == 0         # never refused with 429
        assert client.transport.stats.rate_limit_waits > 0


def test_secrets_never_leak(any_simulator, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    client = make_client(any_simulator, token_file=tmp_path / "t.json")
    client.get_power_station_list()
    token = client._token
    any_simulator.fail_next(1, "code", code="E912")
    with pytest.raises(errors.AuthError) as info:
        client.get_power_station_list()
    bad = make_client(any_simulator, credentials=Credentials(
        DEFAULT_CREDENTIALS.appkey, DEFAULT_CREDENTIALS.access_key, DEFAULT_CREDENTIALS.username,
        "wrong-password"))
    with pytest.raises(errors.LoginError) as login_info:
        bad.login()
    texts = [caplog.text, str(info.value), repr(info.value), str(login_info.value),
             repr(client), repr(client.transport), repr(bad)]
    for secret in (DEFAULT_CREDENTIALS.password, DEFAULT_CREDENTIALS.appkey,
                   DEFAULT_CREDENTIALS.access_key, "wrong-password", token):
        for text in texts:
            assert secret not in text
