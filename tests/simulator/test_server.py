"""The iSolarCloud simulator over real HTTP, with requests built by hand from the API document."""
from __future__ import annotations

import datetime as dt
import json
import re
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import requests
import yaml

from conftest import SIM_START, at_any_hour, plant_now
from sim_http import (
    BATTERY, CREDS, ESS, GMT1, METER, MODULE, PLANT, PV_PS_ID, SG5, SG8, STORAGE_PS_ID, Client,
    headers, login, post,
)
from sungrow2mqtt.isolarcloud.crypto import aes_decrypt_hex, aes_encrypt_hex, new_nonce, rsa_encrypt
from sungrow2mqtt.isolarcloud.errors import RESULT_CODES
from sungrow2mqtt.simulator import (
    Credentials, Fleet, SimulatorServer, config_block,
)

AES_KEY = "A123456zA123456z"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    """One plain simulator for the module, with a bucket too big to get in the way."""
    with SimulatorServer(burst_capacity=10000, replenish_rate=10000, start_time=SIM_START) as sim:
        yield sim


@pytest.fixture
def sim(server: SimulatorServer, sim_start: dt.datetime) -> Iterator[SimulatorServer]:
    """The plain simulator with its clock at ``sim_start``, reset after each test."""
    server.set_time(sim_start)
    yield server
    server.reset()


@pytest.fixture
def client(sim: SimulatorServer) -> Client:
    """A logged-in caller of the plain simulator."""
    return Client(sim)


@pytest.fixture(scope="module")
def enc_server() -> Iterator[SimulatorServer]:
    """One encrypted simulator for the module."""
    with SimulatorServer(encrypted=True, burst_capacity=10000, replenish_rate=10000,
                         start_time=SIM_START) as sim:
        yield sim


@pytest.fixture
def enc_sim(enc_server: SimulatorServer, sim_start: dt.datetime) -> Iterator[SimulatorServer]:
    """The encrypted simulator with its clock at ``sim_start``, reset after each test."""
    enc_server.set_time(sim_start)
    yield enc_server
    enc_server.reset()


# ---------------------------------------------------------------------------------------------
# envelope, headers, credentials
# ---------------------------------------------------------------------------------------------


def test_login_envelope_and_string_values(sim: SimulatorServer) -> None:
    response = requests.post(f"{sim.url}/openapi/login", headers=headers(), timeout=10,
                             json={"appkey": CREDS.appkey, "user_account": CREDS.username,
                                   "user_password": CREDS.password})
    answer = response.json()
    assert set(answer) == {"req_serial_num", "result_code", "result_msg", "result_data"}
    assert re.fullmatch(r"[0-9a-f]{32}", answer["req_serial_num"])
    assert (answer["result_code"], answer["result_msg"]) == ("1", "success")
    data = answer["result_data"]
    assert data["login_state"] == "1"
    assert len(data["token"]) == 40 and data["token"].startswith(data["user_id"] + "_")
    assert data["err_times"] == "0" and data["remain_times"] == "5"
    assert response.headers["X-Log-Requestid"] == answer["req_serial_num"]
    for name in ("Burst-Capacity", "Remaining", "Replenish-Rate"):
        assert f"X-Ratelimit-{name}" in response.headers


def test_timestamp_endpoint_answers_server_milliseconds(sim: SimulatorServer) -> None:
    sim.set_clock_offset(3600)
    answer = requests.get(f"{sim.url}/timestamp", timeout=10).json()
    assert answer["result_code"] == "1"
    assert abs(int(answer["result_data"]) - (time.time() + 3600) * 1000) < 60_000


OTHER_APP = CREDS.other_appkey


@pytest.mark.parametrize("hdrs, body, code", [
    (headers(sys_code=None), {}, "003"),
    (headers(sys_code="207"), {}, "E994"),
    (headers(**{"x-access-key": None}), {}, "E911"),
    (headers(**{"x-access-key": "x" * 32}), {}, "E912"),
    (headers(), {"appkey": None}, "001"),
    (headers(), {"appkey": "NOSUCHAPPKEY0000000000000000000"}, "E00000"),
    (headers(), {"appkey": OTHER_APP}, "E914"),
    (headers(), {"token": None}, "002"),
    (headers(), {"token": "2481357_" + "0" * 32}, "E900"),  # the live gateway's code
])
def test_gateway_checks(client: Client, hdrs: Dict[str, str], body: Dict[str, Any],
                        code: str) -> None:
    request = {"appkey": CREDS.appkey, "token": client.token, "curPage": 1, "size": 10}
    request.update(body)
    request = {k: v for k, v in request.items() if v is not None}
    answer = post(client.sim, "getPowerStationList", request, hdrs)
    assert answer["result_code"] == code
    assert answer["result_msg"] == RESULT_CODES[code][0]
    assert answer["result_data"] is None


def test_unknown_service_is_e996(client: Client) -> None:
    answer = client.call("getNothing")
    assert (answer["result_code"], answer["result_msg"]) == ("E996", "api not found")


def test_second_app_is_a_real_app(sim: SimulatorServer) -> None:
    hdrs = headers(**{"x-access-key": CREDS.other_access_key})
    data = post(sim, "login", {"appkey": OTHER_APP, "user_account": CREDS.username,
                               "user_password": CREDS.password}, hdrs)["result_data"]
    body = {"appkey": OTHER_APP, "token": data["token"], "curPage": 1, "size": 5}
    assert post(sim, "getPowerStationList", body, hdrs)["result_code"] == "1"
    body["appkey"] = CREDS.appkey  # token of the other app, with this app's key pair
    assert post(sim, "getPowerStationList", body)["result_code"] == "E900"


def test_login_states_and_lock(sim: SimulatorServer) -> None:
    assert login(sim, account="nobody")["result_data"]["login_state"] == "-1"
    first = login(sim, password="wrong")["result_data"]
    assert (first["login_state"], first["err_times"], first["remain_times"]) == ("0", "1", "4")
    assert first["token"] is None
    states = [login(sim, password="wrong")["result_data"]["login_state"] for _ in range(4)]
    assert states == ["0", "0", "0", "2"]
    locked = login(sim)["result_data"]
    assert locked["login_state"] == "2" and locked["disable_time"]
    sim.set_clock_offset(3601)
    assert login(sim)["result_data"]["login_state"] == "1"
    sim.lock_account()
    assert login(sim)["result_data"]["login_state"] == "5"
    sim.unlock_account()
    assert login(sim)["result_data"]["login_state"] == "1"


def test_expired_tokens(client: Client) -> None:
    assert client.call("getPowerStationList", curPage=1, size=1)["result_code"] == "1"
    client.sim.expire_tokens()
    assert client.call("getPowerStationList", curPage=1, size=1)["result_code"] == "E900"
    client.token = login(client.sim)["result_data"]["token"]
    assert client.call("getPowerStationList", curPage=1, size=1)["result_code"] == "1"


def test_token_lives_24_hours_from_last_use(client: Client) -> None:
    client.sim.set_clock_offset(20 * 3600)
    assert client.call("getOpenApiCallInfo")["result_code"] == "1"
    client.sim.set_clock_offset(40 * 3600)  # 20 h after the last use
    assert client.call("getOpenApiCallInfo")["result_code"] == "1"
    client.sim.set_clock_offset(65 * 3600)
    assert client.call("getOpenApiCallInfo")["result_code"] == "E900"


# ---------------------------------------------------------------------------------------------
# plants, devices, paging
# ---------------------------------------------------------------------------------------------


def test_plant_list_paging_and_fields(client: Client) -> None:
    everything = client.data("getPowerStationList", curPage=1, size=10)
    assert everything["rowCount"] == 2 and len(everything["pageList"]) == 2
    pages = [client.data("getPowerStationList", curPage=p, size="1") for p in (1, 2, 3)]
    assert [len(p["pageList"]) for p in pages] == [1, 1, 0]
    assert {p["rowCount"] for p in pages} == {2}
    storage = client.data("getPowerStationList", curPage=1, size=10, ps_type="5")["pageList"]
    assert [p["ps_id"] for p in storage] == [STORAGE_PS_ID]
    row = storage[0]
    assert row["ps_current_time_zone"] == "GMT+1" and row["ps_type"] == 5
    assert row["curr_power"]["unit"] == "kW" and isinstance(row["curr_power"]["value"], str)
    assert row["total_capcity"] == {"unit": "kWp", "value": "10"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+01:00", row["cur_power_update_time"])
    pv = client.data("getPowerStationList", curPage=1, size=10, ps_name="farm")["pageList"]
    assert pv[0]["ps_current_time_zone"] == "GMT+10" and pv[0]["ps_type"] == 4


@pytest.mark.parametrize("body, code", [
    ({"size": 10}, "009"), ({"curPage": 1}, "009"), ({"curPage": "x", "size": 10}, "010"),
    ({"curPage": 0, "size": 10}, "010"), ({"curPage": 1, "size": 10, "ps_type": "a"}, "010"),
])
def test_paging_parameters(client: Client, body: Dict[str, Any], code: str) -> None:
    assert client.call("getPowerStationList", **body)["result_code"] == code


def test_plant_detail(client: Client) -> None:
    detail = client.data("getPowerStationDetail", ps_id=str(STORAGE_PS_ID))
    assert detail["ps_key"] == PLANT and detail["design_capacity"] == 10000.0
    assert detail["communication_dev_detail_list"] == [{"is_enable": 1, "sn": "B2230987654"}]
    assert detail["ps_type_name"] == "Residential Storage"
    by_sn = client.data("getPowerStationDetail", sn="B2240556677")
    assert by_sn["ps_id"] == PV_PS_ID and by_sn["ps_current_time_zone"] == "GMT+10"
    assert client.call("getPowerStationDetail")["result_code"] == "009"
    assert client.call("getPowerStationDetail", ps_id="999")["result_code"] == "010"


def test_device_lists(client: Client) -> None:
    physical = client.data("getDeviceList", ps_id=str(STORAGE_PS_ID), curPage=1, size=10,
                           is_get_firmware_version="1")["pageList"]
    by_type = {d["device_type"]: d for d in physical}
    assert sorted(by_type) == [7, 14, 22, 43]
    ess = by_type[14]
    assert ess["ps_key"] == ESS and ess["device_model_code"] == "SH10RT"
    assert ess["device_sn"] == "A2231234567" and ess["dev_status"] == "1"
    assert ess["firmware_version_info"]["lcd_version"]
    assert by_type[43]["device_model_code"] == "SBR096"
    virtual = client.data("getDeviceList", ps_id=STORAGE_PS_ID, curPage=1, size=10,
                          is_virtual_unit="1")["pageList"]
    assert [d["ps_key"] for d in virtual] == [PLANT]
    inverters = client.data("getDeviceList", ps_id=PV_PS_ID, curPage=1, size=10,
                            device_type_list=["1"])
    assert inverters["rowCount"] == 2
    assert "firmware_version_info" not in inverters["pageList"][0]
    assert {d["device_model_code"] for d in inverters["pageList"]} == {"SG5.0RS", "SG8.0RS"}
    assert client.call("getDeviceList", curPage=1, size=10)["result_code"] == "009"
    user = client.data("getDeviceListByUser", curPage=1, size=100)
    assert user["rowCount"] == 7 and all("ps_id" in d for d in user["pageList"])


def test_communication_device_by_sn(client: Client) -> None:
    info = client.data("getCommunicationDevInfoByDevSn", dev_sn="A2240112244")
    assert info["sn"] == "B2240556677" and info["ps_key"] == "1587093_22_247_1"
    assert info["device_model_code"] == "WiNet-S" and info["ps_id"] == PV_PS_ID
    assert client.call("getCommunicationDevInfoByDevSn")["result_code"] == "009"


# ---------------------------------------------------------------------------------------------
# realtime
# ---------------------------------------------------------------------------------------------


def test_pv_inverter_realtime_fixed_points(client: Client) -> None:
    data = client.data("getPVInverterRealTimeData", ps_key_list=[SG5, SG8])
    points = [e["device_point"] for e in data["device_point_list"]]
    assert [p["ps_key"] for p in points] == [SG5, SG8] and "fail_sn_list" not in data
    point = points[0]
    for key in ("p1", "p2", "p14", "p24", "p18", "p21", "p27", "p4", "p5", "p6", "p7", "p8"):
        assert isinstance(point[key], str), key
    for key in ("p9", "p10", "p45", "p58", "p19", "p20", "p22", "p23", "p15", "p304"):
        assert key in point and point[key] is None, key
    assert re.fullmatch(r"\d+\.\d", point["p2"])
    assert re.fullmatch(r"\d{14}", point["device_time"])
    by_sn = client.data("getPVInverterRealTimeData", sn_list=["A2240112233", "A2231234567"])
    assert by_sn["fail_sn_list"] == ["A2231234567"]
    assert client.call("getPVInverterRealTimeData", ps_key_list=[ESS])["result_code"] == "010"
    assert client.call("getPVInverterRealTimeData")["result_code"] == "009"


@at_any_hour
def test_device_realtime_quirks(client: Client) -> None:
    ess = client.points([ESS], 14, [13011, 13141, 13107, 13119, 13112])[ESS]
    assert set(ess) >= {"p13011", "p13141", "p13107", "device_time", "dev_status", "uuid"}
    assert 0.0 <= float(ess["p13141"]) <= 1.0 and re.fullmatch(r"0\.\d{3}", ess["p13141"])
    assert ess["p13107"] is None  # MPPT3 on a 2-MPPT inverter
    plant = client.points([PLANT], 11, [83252, 83334, 83012, 83022])[PLANT]
    assert plant["p83012"] == "--"
    assert float(plant["p83334"]) == pytest.approx(float(plant["p83252"]) * 100, abs=0.1)
    assert client.points([MODULE], 22, [23001])[MODULE]["p23001"] == "--"
    battery = client.points([BATTERY], 43, [58604, 58621])[BATTERY]
    assert 0.0 <= float(battery["p58604"]) <= 1.0 and battery["p58621"] is None
    pv_plant = client.points(["1587093_11_0_0"], 11, [83252, 83106])["1587093_11_0_0"]
    assert pv_plant["p83252"] is None and pv_plant["p83106"] is None  # no battery, no meter
    local = dt.datetime.strptime(ess["device_time"], "%Y%m%d%H%M%S")
    expected = plant_now(client.sim, STORAGE_PS_ID)
    assert dt.timedelta(0) <= expected - local < dt.timedelta(minutes=10)


def test_a_gateway_that_sends_dashes_where_the_document_has_null(client: Client,
                                                                  sim_start: dt.datetime) -> None:
    """Some live plants send "--" for a point without a reading: the switch does so for every
    realtime point the document's sample would send as null, and changes nothing else."""
    asked = {ESS: (14, [13011, 13141, 13107, 13119]),
             f"{PV_PS_ID}_11_0_0": (11, [83252, 83012, 83022, 83106])}
    with SimulatorServer(start_time=sim_start, missing_reading="--") as server:
        dashes = Client(server)
        for ps_key, (device_type, point_ids) in asked.items():
            plain = client.points([ps_key], device_type, point_ids)[ps_key]
            sent = dashes.points([ps_key], device_type, point_ids)[ps_key]
            points = [key for key in plain if re.fullmatch(r"p\d+", key)]
            assert None in map(plain.get, points) and None not in map(sent.get, points)
            assert sent == {key: "--" if value is None and key in points else value
                            for key, value in plain.items()}   # other fields stay as they were
    with pytest.raises(ValueError, match="missing_reading must be None or '--', not 'n/a'"):
        SimulatorServer(start_time=sim_start, missing_reading="n/a")


def test_device_realtime_by_sn(client: Client) -> None:
    data = client.data("getDeviceRealTimeData", device_type="14", point_id_list=["13011"],
                       sn_list=["A2231234567", "NOPE", "A2240112233"])
    assert [e["device_point"]["ps_key"] for e in data["device_point_list"]] == [ESS]
    assert data["fail_sn_list"] == ["NOPE", "A2240112233"]


@pytest.mark.parametrize("body, code", [
    ({"device_type": "14", "point_id_list": ["13011"], "ps_key_list": [ESS, METER]}, "010"),
    ({"device_type": "14", "point_id_list": ["13011"],
      "ps_key_list": [f"1563218_14_{n}_1" for n in range(51)]}, "010"),
    ({"device_type": "14", "point_id_list": ["13011"]}, "009"),
    ({"device_type": "14", "point_id_list": ["13011"], "ps_key_list": [], "sn_list": []}, "009"),
    ({"point_id_list": ["13011"], "ps_key_list": [ESS]}, "009"),
    ({"device_type": "14", "ps_key_list": [ESS]}, "009"),
    ({"device_type": "14", "point_id_list": ["p13011"], "ps_key_list": [ESS]}, "010"),
    ({"device_type": "x", "point_id_list": ["13011"], "ps_key_list": [ESS]}, "010"),
])
def test_device_realtime_parameters(client: Client, body: Dict[str, Any], code: str) -> None:
    assert client.call("getDeviceRealTimeData", **body)["result_code"] == code


COUNTERS = [13134, 13148, 13125, 13034, 13035, 13130]


def test_values_move_and_counters_never_decrease(client: Client) -> None:
    seen: List[Dict[str, Any]] = []
    for hour in range(0, 49, 3):
        client.sim.set_clock_offset(hour * 3600)
        seen.append(client.points([ESS], 14, [13011, 13141, 13119] + COUNTERS)[ESS])
    for key in ("p13011", "p13141", "p13119"):
        assert len({s[key] for s in seen}) > 3, key
    for point in COUNTERS:
        values = [float(s[f"p{point}"]) for s in seen]
        assert values == sorted(values), point
    assert float(seen[-1]["p13134"]) > float(seen[0]["p13134"])


@at_any_hour
def test_daily_counters_restart_at_local_midnight(client: Client) -> None:
    midnight = plant_now(client.sim, STORAGE_PS_ID).date() + dt.timedelta(days=1)
    client.sim.set_time(dt.datetime.combine(midnight, dt.time(0, 1), GMT1))
    client.token = login(client.sim)["result_data"]["token"]  # a day on: log in again
    ess = client.points([ESS], 14, [13112, 13199, 13147, 13134])[ESS]
    assert ess["device_time"].endswith("000000")
    assert ess["p13112"] == "0.0" and ess["p13199"] == "0.0" and ess["p13147"] == "0.0"
    assert float(ess["p13134"]) > 0


# ---------------------------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------------------------


def _window(sim: SimulatorServer, hours_back: float, length: float) -> Tuple[str, str]:
    """A storage-plant-local (GMT+1) minute window ending ``hours_back`` ago."""
    end = plant_now(sim, STORAGE_PS_ID) - dt.timedelta(hours=hours_back)
    start = end - dt.timedelta(hours=length)
    return start.strftime("%Y%m%d%H%M%S"), end.strftime("%Y%m%d%H%M%S")


@at_any_hour
def test_minute_data(client: Client) -> None:
    start, end = _window(client.sim, 5, 3)
    answer = client.call("getDevicePointMinuteDataList", points="p13011,p13141,p13107",
                         ps_key_list=[ESS, "1563218_14_9_9"], start_time_stamp=start,
                         end_time_stamp=end, minute_interval="15")
    assert answer["result_code"] == "1"
    assert answer["result_msg"] == "illegal device list:1563218_14_9_9"
    rows = answer["result_data"][ESS]
    assert 12 <= len(rows) <= 13
    assert all(set(r) == {"p13011", "p13141", "time_stamp"} for r in rows)  # p13107 has no data
    stamps = [dt.datetime.strptime(r["time_stamp"], "%Y%m%d%H%M%S") for r in rows]
    assert {b - a for a, b in zip(stamps, stamps[1:])} == {dt.timedelta(minutes=15)}
    five = client.data("getDevicePointMinuteDataList", points="p13011", ps_key_list=[ESS],
                       start_time_stamp=start, end_time_stamp=end)
    assert 36 <= len(five[ESS]) <= 37


@pytest.mark.parametrize("changes, code", [
    ({"window": (5, 3.1)}, "010"),
    ({"points": ",".join(f"p{n}" for n in range(13001, 13051))}, "010"),
    ({"points": "13011"}, "010"),
    ({"ps_key_list": [ESS, METER]}, "010"),
    ({"ps_key_list": [f"1563218_14_{n}_1" for n in range(51)]}, "010"),
    ({"start_time_stamp": "2024-01-01"}, "010"),
    ({"points": None}, "009"),
    ({"ps_key_list": None}, "009"),
])
def test_minute_data_parameters(client: Client, changes: Dict[str, Any], code: str) -> None:
    start, end = _window(client.sim, 1, changes.pop("window", (1, 1))[1])
    body = {"points": "p13011", "ps_key_list": [ESS], "start_time_stamp": start,
            "end_time_stamp": end}
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}
    assert client.call("getDevicePointMinuteDataList", **body)["result_code"] == code


@at_any_hour
def test_day_month_year_data(client: Client) -> None:
    today = plant_now(client.sim, STORAGE_PS_ID)
    first = today - dt.timedelta(days=3)
    before = float(client.points([ESS], 14, [13112])[ESS]["p13112"])
    days = client.data("getDevicePointsDayMonthYearDataList", ps_key_list=[ESS, PLANT + "x"],
                       data_point="p13112,p13107", start_time=first.strftime("%Y%m%d"),
                       end_time=today.strftime("%Y%m%d"), data_type="2", query_type="1",
                       order="0")
    series = days[ESS]["p13112"]
    assert "p13107" not in days[ESS]
    assert [e["time_stamp"] for e in series] == [
        (first + dt.timedelta(days=n)).strftime("%Y%m%d") for n in range(4)]
    assert all(set(e) == {"2", "time_stamp"} for e in series)
    assert all(float(e["2"]) > 0 for e in series[:-1])  # whole days made some energy
    after = float(client.points([ESS], 14, [13112])[ESS]["p13112"])
    assert before <= float(series[-1]["2"]) <= after  # today's peak is today's yield so far
    months = client.data("getDevicePointsDayMonthYearDataList", ps_key_list=[ESS],
                         data_point="p13112,p13134", start_time=first.strftime("%Y%m"),
                         end_time=today.strftime("%Y%m"), data_type="1,2,3,4", query_type="2",
                         order="1")
    month = months[ESS]["p13112"][0]
    assert set(month) == {"1", "2", "3", "4", "time_stamp"}
    assert float(month["4"]) >= float(month["2"]) >= float(month["1"]) >= float(month["3"])
    assert "4" not in months[ESS]["p13134"][0]  # a lifetime counter is not summed
    years = client.data("getDevicePointsDayMonthYearDataList", ps_key_list=[PLANT],
                        data_point="p83022", start_time=str(today.year - 1),
                        end_time=str(today.year), data_type="4", query_type="3")
    assert [e["time_stamp"] for e in years[PLANT]["p83022"]] == [
        str(today.year - 1), str(today.year)]


@pytest.mark.parametrize("query_type, start, end, code", [
    ("1", "20240101", "20240409", "1"), ("1", "20240101", "20240410", "010"),
    ("2", "202301", "202412", "1"), ("2", "202301", "202501", "010"),
    ("3", "2020", "2024", "1"), ("3", "2020", "2025", "010"),
    ("1", "20240110", "20240101", "010"), ("4", "2020", "2024", "010"),
    ("2", "20240101", "20240110", "010"),
])
def test_day_month_year_spans(client: Client, query_type: str, start: str, end: str,
                              code: str) -> None:
    answer = client.call("getDevicePointsDayMonthYearDataList", ps_key_list=[PLANT],
                         data_point="p83022", start_time=start, end_time=end, data_type="2",
                         query_type=query_type)
    assert answer["result_code"] == code


# ---------------------------------------------------------------------------------------------
# faults, points, properties, quota
# ---------------------------------------------------------------------------------------------


@at_any_hour
def test_faults(sim_start: dt.datetime) -> None:
    with SimulatorServer(start_time=sim_start, burst_capacity=1000) as sim:
        _check_faults(Client(sim))


def _check_faults(client: Client) -> None:
    sim = client.sim
    assert client.data("getFaultAlarmInfo", curPage=1, size=10)["rowCount"] == 0
    (old,) = sim.fleet.faults  # the default fleet's: raised 6 h ago, closed 5 h ago
    created = sim.fleet.plant(PV_PS_ID).local_time(old.created)  # its plant is the PV one
    this_month = created.strftime("%Y%m") == plant_now(sim, PV_PS_ID).strftime("%Y%m")
    closed = client.data("getFaultAlarmInfo", curPage=1, size=10, process_status="9")
    assert [r["fault_code"] for r in closed["pageList"]] == [old.fault_id] * this_month
    that_day = client.data("getFaultAlarmInfo", curPage=1, size=10, process_status="9",
                           startTime=created.strftime("%Y%m%d0000"),
                           endTime=created.strftime("%Y%m%d2359"))["pageList"]
    assert [r["fault_code"] for r in that_day] == [old.fault_id] and that_day[0]["over_time"]
    fault_id = sim.add_fault(ESS, 13822, "BMS Communication Fault")
    sim.add_fault(SG5, 60019, "Meter Communication Abnormal Alarm", fault_type=2, fault_level=3)
    active = client.data("getFaultAlarmInfo", curPage=1, size=10)
    assert active["rowCount"] == 2
    rows = {r["fault_code"]: r for r in active["pageList"]}
    row = rows[fault_id]
    assert (row["fault_type_code"], row["process_status"], row["over_time"]) == (13822, 1, "")
    assert row["ps_key"] == ESS and row["ps_id"] == STORAGE_PS_ID
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["create_time"])
    filtered = client.data("getFaultAlarmInfo", curPage=1, size=10, fault_type="2")
    assert [r["fault_type_code"] for r in filtered["pageList"]] == [60019]
    by_plant = client.data("getFaultAlarmInfo", curPage=1, size=10, ps_id=str(STORAGE_PS_ID))
    assert [r["fault_code"] for r in by_plant["pageList"]] == [fault_id]
    plants = client.data("getPowerStationList", curPage=1, size=10)["pageList"]
    status = {p["ps_id"]: (p["ps_fault_status"], p["fault_count"], p["alarm_count"])
              for p in plants}
    assert status == {STORAGE_PS_ID: (1, 1, 0), PV_PS_ID: (2, 0, 1)}
    assert sim.clear_fault(fault_id)
    assert client.data("getFaultAlarmInfo", curPage=1, size=10)["rowCount"] == 1
    closed = client.data("getFaultAlarmInfo", curPage=1, size=10, process_status="9")
    assert fault_id in {r["fault_code"] for r in closed["pageList"]}
    assert client.call("getFaultAlarmInfo", curPage=1, size=10,
                       process_status="3")["result_code"] == "010"


def test_open_point_info(client: Client) -> None:
    telemetry = client.data("getOpenPointInfo", device_type="14", type="2", curPage=1, size=500)
    assert telemetry["rowCount"] > 100
    rows = {r["point_id"]: r for r in telemetry["pageList"]}
    assert rows[13011]["storage_unit"] == "W" and rows[13011]["show_unit"] == "kW"
    assert rows[13011]["device_type"] == 14 and rows[13011]["point_name"] == "Active Power"
    assert rows[13141]["point_name"] == "电池电量(SOC)"  # Chinese despite _en_US
    page = client.data("getOpenPointInfo", device_type="1", type="2", curPage=2, size=10)
    assert len(page["pageList"]) == 10 and page["rowCount"] > 150
    signals = client.data("getOpenPointInfo", device_type="14", type="1", curPage=1, size=50)
    assert 13146 in {r["point_id"] for r in signals["pageList"]}
    assert "storage_unit" not in signals["pageList"][0]
    props = client.data("getOpenPointInfo", device_type="14", type="5", curPage=1, size=50)
    assert {r["point_id"] for r in props["pageList"]} == {13251, 13257, 13258, 13261}
    modelled = client.data("getOpenPointInfo", device_type="14", type="2", curPage=1,
                           size=500, device_model_id="1366")
    assert 0 < modelled["rowCount"] < telemetry["rowCount"]
    assert client.call("getOpenPointInfo", device_type="14", type="3", curPage=1,
                       size=5)["result_code"] == "010"


def test_property_point_values(client: Client) -> None:
    data = client.data("getDevPropertyPointValue", ps_id=str(STORAGE_PS_ID), device_type="14",
                       ps_key_list=[ESS], point_id_list=["13251", "13257", "13258", "13261"])
    assert data["code"] == "1"
    values = {v["property_code"]: (v["property_value"], v["unit"])
              for v in data["property_point_value_list"]}
    assert values == {"13251": ("CB0", ""), "13257": ("10000.0", "Wp"),
                      "13258": ("9600.0", "Wh"), "13261": ("0", "Ah")}
    assert client.call("getDevPropertyPointValue", ps_id=str(PV_PS_ID), device_type="14",
                       ps_key_list=[ESS], point_id_list=["13251"])["result_code"] == "010"


def test_call_info_and_quota(client: Client) -> None:
    info = client.data("getOpenApiCallInfo")
    assert len(info["per_hour_access_times_config"]) == 24
    assert info["per_hour_access_times_config"][0] == {"hour": "0", "max_call_times": "10000"}
    assert info["per_day_access_times_config"] == "240000"
    assert len(info["per_hour_residue_times"]) == 24
    assert info["per_hour_residue_times"][5]["hour"] == "05"
    used = int(info["curr_hour_accessed_times"])
    assert used >= 2 and int(info["today_accessed_times"]) >= used
    again = client.data("getOpenApiCallInfo")
    assert int(again["curr_hour_accessed_times"]) == used + 1
    client.sim.set_quota(used + 1)  # the next call would be number used + 2
    answer = client.call("getOpenApiCallInfo")
    assert (answer["result_code"], answer["result_msg"]) == (
        "E999", "er_hour_call_api_times_upper_limit")


# ---------------------------------------------------------------------------------------------
# encrypted calls
# ---------------------------------------------------------------------------------------------


def enc_post(sim: SimulatorServer, service: str, body: Dict[str, Any], *, key: str = AES_KEY,
             secret: Optional[str] = None, api_key_param: Optional[Dict[str, str]] = None,
             raw: Optional[str] = None) -> Tuple[Dict[str, Any], bool]:
    """Appendix 7 by hand; returns the decoded envelope and whether it came encrypted."""
    payload = {"appkey": CREDS.appkey, **body}
    if api_key_param is None:
        api_key_param = {"nonce": new_nonce(), "timestamp": str(int(time.time() * 1000))}
    if api_key_param:
        payload["api_key_param"] = api_key_param
    hdrs = headers()
    header = rsa_encrypt(key, sim.public_key) if secret is None else secret
    if header:
        hdrs["x-random-secret-key"] = header
    data = aes_encrypt_hex(json.dumps(payload), key) if raw is None else raw
    response = requests.post(f"{sim.url}/openapi/{service}", data=data, headers=hdrs,
                             timeout=10)
    assert response.status_code == 200
    if response.text.startswith("{"):
        return response.json(), False
    assert re.fullmatch(r"[0-9A-F]+", response.text)
    return json.loads(aes_decrypt_hex(response.text, key)), True


def test_encrypted_end_to_end(enc_sim: SimulatorServer) -> None:
    assert enc_sim.public_key and len(enc_sim.public_key) > 100
    answer, encrypted = enc_post(enc_sim, "login", {"user_account": CREDS.username,
                                                    "user_password": CREDS.password})
    assert encrypted and answer["result_data"]["login_state"] == "1"
    token = answer["result_data"]["token"]
    answer, encrypted = enc_post(enc_sim, "getDeviceRealTimeData", {
        "token": token, "device_type": "14", "point_id_list": ["13011", "13141"],
        "ps_key_list": [ESS]})
    assert encrypted and answer["result_code"] == "1"
    assert answer["result_data"]["device_point_list"][0]["device_point"]["ps_key"] == ESS
    assert enc_sim.requests_log[-1][2]["ps_key_list"] == [ESS]
    enc_sim.fail_next(1, "http500")
    body = {"appkey": CREDS.appkey, "token": token,
            "api_key_param": {"nonce": new_nonce(), "timestamp": str(int(time.time() * 1000))}}
    response = requests.post(f"{enc_sim.url}/openapi/getOpenApiCallInfo",
                             data=aes_encrypt_hex(json.dumps(body), AES_KEY), timeout=10,
                             headers={**headers(), "x-random-secret-key": rsa_encrypt(
                                 AES_KEY, enc_sim.public_key)})
    assert response.status_code == 500
    assert enc_sim.requests_log[-1][0] == "getOpenApiCallInfo"
    assert enc_sim.requests_log[-1][2] == body  # injected failures are logged, decrypted


NONCE = "cb360459bd624c6ab15308c4b6847856"


@pytest.mark.parametrize("kwargs, code, encrypted", [
    ({"raw": json.dumps({"appkey": CREDS.appkey}), "secret": ""}, "E902", False),
    ({"secret": ""}, "E904", False),
    ({"raw": "NOT-HEX"}, "E905", True),
    ({"secret": "bm90IGFuIFJTQSBibG9jaw"}, "E906", False),
    ({"key": "short"}, "E907", False),
    ({"api_key_param": {}}, "E908", True),
    ({"api_key_param": {"nonce": "abc", "timestamp": "0"}}, "E909", True),
    ({"api_key_param": {"nonce": new_nonce(), "timestamp": "1616725497384"}}, "E913", True),
])
def test_encrypted_errors(enc_sim: SimulatorServer, kwargs: Dict[str, Any], code: str,
                          encrypted: bool) -> None:
    answer, came_encrypted = enc_post(enc_sim, "login", {"user_account": CREDS.username,
                                                         "user_password": CREDS.password},
                                      **kwargs)
    assert answer["result_code"] == code
    assert answer["result_msg"] == RESULT_CODES[code][0]
    assert came_encrypted == encrypted


def test_encrypted_nonce_replay_and_clock(enc_sim: SimulatorServer) -> None:
    param = {"nonce": new_nonce(), "timestamp": str(int(time.time() * 1000))}
    body = {"user_account": CREDS.username, "user_password": CREDS.password}
    assert enc_post(enc_sim, "login", body, api_key_param=dict(param))[0]["result_code"] == "1"
    assert enc_post(enc_sim, "login", body, api_key_param=dict(param))[0]["result_code"] == "E910"
    enc_sim.set_clock_offset(3600)
    assert enc_post(enc_sim, "login", body)[0]["result_code"] == "E913"
    server_ms = requests.get(f"{enc_sim.url}/timestamp", timeout=10).json()["result_data"]
    corrected = {"nonce": new_nonce(), "timestamp": server_ms}
    assert enc_post(enc_sim, "login", body, api_key_param=corrected)[0]["result_code"] == "1"


def test_plain_mode_checks_api_key_param_when_present(sim: SimulatorServer) -> None:
    body = {"appkey": CREDS.appkey, "user_account": CREDS.username,
            "user_password": CREDS.password,
            "api_key_param": {"nonce": NONCE, "timestamp": str(int(time.time() * 1000))}}
    assert post(sim, "login", body)["result_code"] == "1"
    assert post(sim, "login", body)["result_code"] == "E910"
    body["api_key_param"] = {"nonce": new_nonce(), "timestamp": "1000"}
    assert post(sim, "login", body)["result_code"] == "E913"
    assert sim.public_key is None


# ---------------------------------------------------------------------------------------------
# rate limits, failure injection, control surface
# ---------------------------------------------------------------------------------------------


def test_rate_limit_headers_and_429() -> None:
    with SimulatorServer(burst_capacity=3, replenish_rate=0.001, start_time=SIM_START) as sim:
        body = {"appkey": CREDS.appkey, "user_account": CREDS.username,
                "user_password": CREDS.password}
        responses = [requests.post(f"{sim.url}/openapi/login", json=body, headers=headers(),
                                   timeout=10) for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert [r.headers["X-Ratelimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]
        assert responses[0].headers["X-Ratelimit-Burst-Capacity"] == "3"
        assert responses[0].headers["X-Ratelimit-Replenish-Rate"] == "0.001"
        assert responses[3].content == b""
        assert sim.call_counts() == {"login": 4}


def test_fail_next_modes(client: Client) -> None:
    sim = client.sim
    url = f"{sim.url}/openapi/getOpenApiCallInfo"
    body = {"appkey": CREDS.appkey, "token": client.token}

    def send() -> requests.Response:
        """One getOpenApiCallInfo call."""
        return requests.post(url, json=body, headers=headers(), timeout=10)

    sim.fail_next(1, "http500")
    sim.fail_next(1, "http503")
    sim.fail_next(1, "garbage")
    sim.fail_next(1, "ratelimit429")
    sim.fail_next(2, "code", code="E999")
    first, second, third, fourth = send(), send(), send(), send()
    assert first.status_code == 500 and "<html>" in first.text
    assert second.status_code == 503
    assert third.status_code == 200
    with pytest.raises(ValueError):
        third.json()
    assert fourth.status_code == 429 and fourth.content == b""
    assert [send().json()["result_code"] for _ in range(3)] == ["E999", "E999", "1"]
    sim.fail_next(1, "timeout", delay=0.05)
    with pytest.raises(requests.ConnectionError):
        send()
    assert send().json()["result_code"] == "1"
    with pytest.raises(ValueError):
        sim.fail_next(1, "explode")


def test_http_control_surface(client: Client) -> None:
    base = f"{client.sim.url}/_sim"
    client.sim.reset_counts()
    assert requests.post(f"{base}/fail", json={"count": 1, "mode": "code", "code": "-1"},
                         timeout=10).json() == {"ok": True}
    answer = client.call("getOpenApiCallInfo")
    assert (answer["result_code"], answer["result_msg"]) == ("-1", "error")
    assert requests.get(f"{base}/calls", timeout=10).json() == {"getOpenApiCallInfo": 1}
    fault = requests.post(f"{base}/faults", json={"ps_key": SG8, "code": 60005,
                                                  "name": "Grid Power Outage"}, timeout=10)
    fault_id = fault.json()["id"]
    rows = client.data("getFaultAlarmInfo", curPage=1, size=10)["pageList"]
    assert [r["fault_code"] for r in rows] == [fault_id]
    assert requests.delete(f"{base}/faults/{fault_id}", timeout=10).json() == {"closed": True}
    assert requests.delete(f"{base}/faults/{fault_id}", timeout=10).status_code == 404
    assert client.data("getFaultAlarmInfo", curPage=1, size=10)["rowCount"] == 0
    requests.post(f"{base}/clock", json={"offset": 7200}, timeout=10)
    stamp = int(requests.get(f"{client.sim.url}/timestamp", timeout=10).json()["result_data"])
    assert stamp > (time.time() + 7000) * 1000
    requests.post(f"{base}/expire-tokens", timeout=10)
    assert client.call("getOpenApiCallInfo")["result_code"] == "E900"
    assert requests.post(f"{base}/reset", timeout=10).json() == {"ok": True}
    assert requests.get(f"{base}/calls", timeout=10).json() == {}
    assert requests.post(f"{base}/fail", data="nope", timeout=10).status_code == 400
    assert requests.post(f"{base}/nothing", json={}, timeout=10).status_code == 404


def test_call_counts_and_request_log(client: Client) -> None:
    sim = client.sim
    sim.reset_counts()
    client.call("getPowerStationList", curPage=1, size=10)
    client.call("getPowerStationList")  # 009 still counts
    post(sim, "getPowerStationList", {"appkey": CREDS.appkey}, headers(sys_code=None))
    requests.get(f"{sim.url}/timestamp", timeout=10)
    assert sim.call_counts() == {"getPowerStationList": 3, "timestamp": 1}
    endpoint, hdrs, body = sim.requests_log[0]
    assert endpoint == "getPowerStationList"
    assert hdrs["sys_code"] == "901" and hdrs["x-access-key"] == CREDS.access_key
    assert hdrs["lang"] == "_en_US" and body["curPage"] == 1
    sim.reset_counts()
    assert sim.call_counts() == {} and sim.requests_log == []


# ---------------------------------------------------------------------------------------------
# fleets and configuration
# ---------------------------------------------------------------------------------------------


def test_synthetic_fleet_sizes() -> None:
    fleet = Fleet.synthetic(95, seed=3)
    physical = [d for d in fleet.devices() if not d.virtual]
    assert len(physical) == 95 and len(fleet.plants) == 10
    assert {d.device_type for d in physical} == {1, 7, 14, 22, 43}
    assert all(sum(d.device_type == 11 for d in p.devices) == 1 for p in fleet.plants)
    assert len({d.ps_key for d in fleet.devices()}) == 105
    assert [d.ps_key for d in Fleet.synthetic(95, seed=3).devices()] == [
        d.ps_key for d in fleet.devices()]
    assert len(Fleet.synthetic(1000).plants) == 100


def test_synthetic_fleet_is_served() -> None:
    fleet = Fleet.synthetic(30, seed=1)
    with SimulatorServer(fleet=fleet, burst_capacity=1000, replenish_rate=1000,
                         start_time=SIM_START) as sim:
        client = Client(sim)
        devices = client.data("getDeviceListByUser", curPage=1, size=100)
        assert devices["rowCount"] == 30
        keys = [d["ps_key"] for d in devices["pageList"] if d["device_type"] == 1]
        points = client.points(keys, 1, [1, 2, 24])
        assert set(points) == set(keys)
        assert all(isinstance(p["p2"], str) for p in points.values())


def test_stop_closes_keep_alive_connections() -> None:
    session = requests.Session()
    with SimulatorServer(start_time=SIM_START) as sim:
        url = f"{sim.url}/timestamp"
        assert session.get(url, timeout=10).json()["result_code"] == "1"
    with pytest.raises(requests.ConnectionError):
        session.get(url, timeout=10)


def test_config_block() -> None:
    with SimulatorServer(encrypted=True, start_time=SIM_START) as sim:
        section = yaml.safe_load(config_block(sim))["isolarcloud"]
        assert section == {"server": sim.url, "appkey": CREDS.appkey,
                           "access_key": CREDS.access_key, "username": CREDS.username,
                           "password": CREDS.password, "rsa_public_key": sim.public_key,
                           "language": "_en_US"}
    custom = Credentials("K" * 32, "a" * 32, "user", "pw")
    with SimulatorServer(credentials=custom, start_time=SIM_START) as sim:
        section = yaml.safe_load(config_block(sim))["isolarcloud"]
        assert "rsa_public_key" not in section and section["appkey"] == "K" * 32
