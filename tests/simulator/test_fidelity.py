"""Where the simulator follows the live gateway: E900 tokens and APIs, fail_ps_key_list, ratios."""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from types import SimpleNamespace
from typing import Iterator

import pytest
import requests

from conftest import SIM_START, free_port, wait_for_port
from sim_http import BATTERY, CREDS, ESS, PLANT, Client, headers, post
from sungrow2mqtt.cli import build_parser
from sungrow2mqtt.simulator import SimulatorServer
from sungrow2mqtt.simulator.server import MISSING_READINGS

DEAD = "2481357_" + "0" * 32


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(start_time=SIM_START, burst_capacity=1000) as server:
        yield server


def _plant_list(client: Client) -> dict:
    return client.call("getPowerStationList", curPage=1, size=10)


# ---------------------------------------------------------------------------------------------
# dead tokens
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token_error, message", [
    (None, "Unauthorized access"), ("E900", "Unauthorized access"),
    ("E00003", "er_token_login_invalid"),
])
def test_dead_tokens_get_the_live_code_or_the_documents(token_error, message) -> None:
    kwargs = {} if token_error is None else {"token_error": token_error}
    with SimulatorServer(start_time=SIM_START, **kwargs) as server:
        client = Client(server)
        code = token_error or "E900"
        assert _plant_list(client)["result_code"] == "1"
        server.expire_tokens()
        expired = _plant_list(client)
        assert (expired["result_code"], expired["result_msg"]) == (code, message)
        assert expired["result_data"] is None
        client.token = DEAD                       # never issued
        assert _plant_list(client)["result_code"] == code
        server.set_clock_offset(25 * 3600)        # issued, then unused for more than 24 h
        client.token = Client(server).token
        server.set_clock_offset(50 * 3600)
        assert _plant_list(client)["result_code"] == code
        missing = post(server, "getPowerStationList", {"appkey": CREDS.appkey, "curPage": 1,
                                                       "size": 1})
        assert missing["result_code"] == "002"   # no token at all stays the document's 002


def test_token_error_must_be_a_known_code() -> None:
    with pytest.raises(ValueError, match="token_error must be one of E900, E00003"):
        SimulatorServer(token_error="E901", start_time=SIM_START)


# ---------------------------------------------------------------------------------------------
# APIs the app is not authorised for
# ---------------------------------------------------------------------------------------------


def test_denied_api_is_e900_with_a_valid_token_and_others_keep_working(sim) -> None:
    client = Client(sim)
    sim.deny_api("getFaultAlarmInfo", "getOpenPointInfo")
    denied = client.call("getFaultAlarmInfo", curPage=1, size=10)
    assert (denied["result_code"], denied["result_msg"]) == ("E900", "Unauthorized access")
    client.token = Client(sim).token              # a fresh login does not help
    assert client.call("getFaultAlarmInfo", curPage=1, size=10)["result_code"] == "E900"
    assert _plant_list(client)["result_code"] == "1"
    used = int(client.call("getOpenApiCallInfo")["result_data"]["curr_hour_accessed_times"])
    assert used == 4                                # 2 logins, the plant list, this call
    sim.allow_api("getFaultAlarmInfo")
    assert client.call("getFaultAlarmInfo", curPage=1, size=10)["result_code"] == "1"
    assert client.call("getOpenPointInfo", device_type="14", type="2", curPage=1,
                       size=1)["result_code"] == "E900"
    sim.allow_api()                                 # no names: every service
    assert client.call("getOpenPointInfo", device_type="14", type="2", curPage=1,
                       size=1)["result_code"] == "1"
    sim.deny_api("getFaultAlarmInfo")
    sim.reset()
    assert client.call("getFaultAlarmInfo", curPage=1, size=10)["result_code"] == "1"


def test_deny_api_refuses_unknown_names(sim) -> None:
    with pytest.raises(ValueError, match="unknown service.*getFaults"):
        sim.deny_api("getFaultAlarmInfo", "getFaults")


def test_deny_and_allow_over_http(sim) -> None:
    client = Client(sim)
    base = f"{sim.url}/_sim"
    answer = requests.post(f"{base}/deny-api", json={"services": ["getPowerStationList"]},
                           timeout=10)
    assert answer.json() == {"ok": True}
    assert _plant_list(client)["result_code"] == "E900"
    requests.post(f"{base}/allow-api", json={"services": ["getPowerStationList"]}, timeout=10)
    assert _plant_list(client)["result_code"] == "1"
    bad = requests.post(f"{base}/deny-api", json={"services": "getPowerStationList"}, timeout=10)
    assert bad.status_code == 400 and "list of names" in bad.json()["error"]


# ---------------------------------------------------------------------------------------------
# fail_ps_key_list
# ---------------------------------------------------------------------------------------------


def test_unknown_ps_keys_are_listed_in_fail_ps_key_list(sim) -> None:
    client = Client(sim)
    unknown = ["1563218_14_9_1", "999_14_1_1"]
    data = client.data("getDeviceRealTimeData", device_type="14", point_id_list=["13011"],
                       ps_key_list=[unknown[0], ESS, unknown[1]])
    assert data["fail_ps_key_list"] == unknown
    assert [e["device_point"]["ps_key"] for e in data["device_point_list"]] == [ESS]
    assert "fail_sn_list" not in data
    known = client.data("getDeviceRealTimeData", device_type="14", point_id_list=["13011"],
                        ps_key_list=[ESS])
    assert known["fail_ps_key_list"] == []
    by_sn = client.data("getDeviceRealTimeData", device_type="14", point_id_list=["13011"],
                        sn_list=["NOPE"])
    assert by_sn == {"fail_sn_list": ["NOPE"], "device_point_list": []}
    malformed = client.call("getDeviceRealTimeData", device_type="14", point_id_list=["13011"],
                            ps_key_list=["1563218-14-1-1"])
    assert malformed["result_code"] == "010"


def test_unserved_devices_stay_listed_but_realtime_names_them_in_fail_ps_key_list(sim) -> None:
    client = Client(sim)
    sim.unserve_devices(ESS)
    data = client.data("getDeviceRealTimeData", device_type="14", point_id_list=["13011"],
                       ps_key_list=[ESS])
    assert data == {"fail_ps_key_list": [ESS], "device_point_list": []}
    listed = client.data("getDeviceListByUser", curPage=1, size=100)["pageList"]
    assert ESS in [row["ps_key"] for row in listed]
    requests.post(f"{sim.url}/_sim/serve", json={"ps_keys": [ESS]}, timeout=10)
    served = client.data("getDeviceRealTimeData", device_type="14", point_id_list=["13011"],
                         ps_key_list=[ESS])
    assert served["fail_ps_key_list"] == [] and len(served["device_point_list"]) == 1
    with pytest.raises(ValueError, match="unknown ps_key"):
        sim.unserve_devices("999_14_1_1")


# ---------------------------------------------------------------------------------------------
# ratio points
# ---------------------------------------------------------------------------------------------

RATIOS = {ESS: (14, [13141, 13142]), BATTERY: (43, [58604, 58605]), PLANT: (11, [83252])}


def _ratios(client: Client) -> dict:
    return {key: client.points([key], device_type, points)[key]
            for key, (device_type, points) in RATIOS.items()}


def test_ratio_points_are_fractions_unless_switched_to_percent(sim) -> None:
    client = Client(sim)
    sim.set_time(SIM_START)
    fractions = _ratios(client)
    power = client.points([ESS], 14, [13011])[ESS]["p13011"]
    for key, (_, points) in RATIOS.items():
        for point in points:
            assert 0.0 < float(fractions[key][f"p{point}"]) <= 1.0, (key, point)
    for key in RATIOS:
        sim.set_ratio_scale(key, "percent")
    sim.set_time(SIM_START)                         # the same slot as the fractions
    percents = _ratios(client)
    for key, (_, points) in RATIOS.items():
        for point in points:
            text = percents[key][f"p{point}"]
            assert float(text) == pytest.approx(float(fractions[key][f"p{point}"]) * 100, abs=0.1)
            assert 1.0 < float(text) <= 100.0 and text.count(".") == 1
    assert client.points([ESS], 14, [13011])[ESS]["p13011"] == power  # others untouched
    sim.set_ratio_scale(BATTERY, "fraction")
    assert 0.0 < float(client.points([BATTERY], 43, [58604])[BATTERY]["p58604"]) <= 1.0


def test_percent_ratios_reach_history_too(sim) -> None:
    client = Client(sim)
    sim.set_ratio_scale(ESS, "percent")
    day = SIM_START.strftime("%Y%m%d")
    peaks = client.data("getDevicePointsDayMonthYearDataList", ps_key_list=[ESS],
                        data_point="p13141", start_time=day, end_time=day, data_type="2",
                        query_type="1")
    assert float(peaks[ESS]["p13141"][0]["2"]) > 1.0
    end = SIM_START.replace(tzinfo=None)
    minutes = client.data("getDevicePointMinuteDataList", ps_key_list=[ESS], points="p13141",
                          start_time_stamp=(end - dt.timedelta(hours=1)).strftime("%Y%m%d%H%M%S"),
                          end_time_stamp=end.strftime("%Y%m%d%H%M%S"))
    assert all(float(row["p13141"]) > 1.0 for row in minutes[ESS])
    sim.reset()                                      # back to fractions
    assert float(client.points([ESS], 14, [13141])[ESS]["p13141"]) <= 1.0


def test_ratio_scale_checks_its_arguments(sim) -> None:
    with pytest.raises(ValueError, match="unknown ps_key"):
        sim.set_ratio_scale("1_14_1_1", "percent")
    with pytest.raises(ValueError, match="fraction, percent"):
        sim.set_ratio_scale(ESS, "per mille")
    answer = requests.post(f"{sim.url}/_sim/ratio-scale", json={"ps_key": ESS,
                                                                "scale": "percent"}, timeout=10)
    assert answer.json() == {"ok": True} and sim.fleet.percent_ratios == {ESS}


def test_a_pinned_reading_is_sent_exactly_until_unpinned(sim) -> None:
    client = Client(sim)
    sim.set_ratio_scale(ESS, "percent")
    sim.pin_reading(ESS, 13141, "1.0")
    assert client.points([ESS], 14, [13141, 13011])[ESS]["p13141"] == "1.0"
    answer = requests.post(f"{sim.url}/_sim/reading",
                           json={"ps_key": ESS, "point_id": 13141, "value": None}, timeout=10)
    assert answer.json() == {"ok": True}
    assert float(client.points([ESS], 14, [13141])[ESS]["p13141"]) > 1.0
    with pytest.raises(ValueError, match="unknown ps_key"):
        sim.pin_reading("1_14_1_1", 13141, "1.0")


# ---------------------------------------------------------------------------------------------
# daily limit, CLI switch
# ---------------------------------------------------------------------------------------------


def test_daily_limit_on_demand(sim) -> None:
    client = Client(sim)
    sim.fail_next(1, "code", code="E998")
    answer = _plant_list(client)
    assert (answer["result_code"], answer["result_msg"]) == (
        "E998", "er_month_call_api_times_upper_limit")
    assert _plant_list(client)["result_code"] == "1"


def test_simulate_token_error_flag() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", "simulate", "--port",
                                str(port), "--token-error", "E00003"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        answer = requests.post(f"http://127.0.0.1:{port}/openapi/getPowerStationList",
                               json={"appkey": CREDS.appkey, "token": DEAD, "curPage": 1,
                                     "size": 1}, headers=headers(), timeout=10).json()
        assert answer["result_code"] == "E00003"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_simulate_missing_reading_flag_takes_the_simulators_words() -> None:
    """The parser, built without importing the simulator, offers exactly its words."""
    parser = build_parser()
    for word in MISSING_READINGS:
        assert parser.parse_args(["simulate", "--missing-reading", word]).missing_reading == word
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--missing-reading", "--"])


def test_simulate_missing_reading_flag() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "sungrow2mqtt", "simulate", "--port",
                                str(port), "--missing-reading", "dashes", "--start",
                                SIM_START.isoformat()],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        gateway = SimpleNamespace(url=f"http://127.0.0.1:{port}")
        ess = Client(gateway).points([ESS], 14, [13107, 13141])[ESS]   # type: ignore[arg-type]
        assert ess["p13107"] == "--" and float(ess["p13141"]) >= 0   # no MPPT3; the SOC
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
