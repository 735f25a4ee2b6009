"""Every request gets an answer, and ``check`` prints one line, whatever the cloud answers.

A hostile Open API server (:class:`FakeOpenApi`, a real HTTP peer) answers with JSON nested
deeper than Python's parser goes, history series of the wrong shape, rate-limit headers that are
no numbers, names holding half an emoji and types that are not.  Issue 14, finding 12.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from bridge_harness import config_dict
from conftest import free_port
from reliability_support import (
    Answer, FakeOpenApi, Raw, ServerUrl, Worker, probe, run_cli, shared_broker, start_worker,
    traceback_free, write_yaml,
)

__all__ = ["probe", "shared_broker", "start_worker"]   # fixtures, used by name below

PLANT = {"ps_id": "5001", "ps_name": "Sunny roof", "ps_type": "5",
         "ps_current_time_zone": "GMT+1", "valid_flag": "1"}
ESS = {"ps_id": "5001", "ps_key": "5001_14_1_1", "device_type": "14", "device_sn": "A2231234567",
       "device_model_code": "SH10RT"}
NESTED = b'{"result_code":"1","result_msg":"success","result_data":' + b"[" * 100_000 + \
    b"]" * 100_000 + b"}"


def _page(rows: Any) -> Answer:
    return lambda body: {"pageList": rows, "rowCount": len(rows)}


def _escaped(data: Any) -> Answer:
    """``data`` as the gateway writes it: every non-ASCII character escaped (``\\ud83c``)."""
    envelope = {"req_serial_num": "1", "result_code": "1", "result_msg": "success",
                "result_data": data}
    return lambda body: Raw(json.dumps(envelope, ensure_ascii=True).encode("ascii"))


def _after_first(first: Any, then: Any) -> Answer:
    calls = []

    def answer(body: Dict[str, Any]) -> Any:
        calls.append(body)
        return first if len(calls) == 1 else then
    return answer


FLEET: Dict[str, Answer] = {
    "getPowerStationList": _page([PLANT]),
    "getDeviceListByUser": _page([ESS]),
    "getDeviceRealTimeData": lambda body: {"device_point_list": [{"device_point": {
        "ps_key": "5001_11_0_0" if body.get("device_type") == "11" else "5001_14_1_1",
        "p83022": "5", "p13011": "100"}}]},
    "getFaultAlarmInfo": _page([]),
}


@pytest.fixture
def bridge(shared_broker, base_topic, tmp_path, start_worker
           ) -> Iterator[Callable[..., Worker]]:
    """Starts a bridge against a hostile server playing ``scenario``; both stop at the end."""
    servers: List[FakeOpenApi] = []

    def start(scenario: Dict[str, Answer], headers: Optional[Dict[str, str]] = None) -> Worker:
        servers.append(FakeOpenApi(scenario, headers))
        return start_worker(config_dict(ServerUrl(servers[-1].url), shared_broker.port,
                                        base_topic, tmp_path), max_retries=0)
    yield start
    for server in servers:
        server.stop()


def test_requests_are_answered_whatever_the_cloud_answers(base_topic, probe, bridge):
    scenario = dict(FLEET, **{
        "getDevicePointsDayMonthYearDataList": lambda body: {"5001_11_0_0": ["no", "series"]},
        "getDevicePointMinuteDataList": lambda body: {"5001_11_0_0": 42},
        "getOpenApiCallInfo": _after_first({}, Raw(NESTED)),     # the start's call goes well
    })
    worker = bridge(scenario)
    probe.wait_topic(f"{base_topic}/5001_11_0_0")
    history = {"ps_key": "5001_11_0_0", "points": [83022]}
    day = probe.request(base_topic, "history", dict(history, interval="day",
                                                    start="2026-11-01", end="2026-11-02"))
    assert day["status"] == "ok" and day["data"]["series"] == {"daily_yield": []}, day
    minute = probe.request(base_topic, "history", dict(
        history, interval="minute", start="2026-11-01T10:00", end="2026-11-01T11:00"))
    assert minute["status"] in ("ok", "error"), minute     # answered, either way
    quota = probe.request(base_topic, "quota", {})
    assert quota["status"] == "error", quota
    assert worker.alive()


@pytest.mark.parametrize("remaining", ["inf", "NaN", "-1e400", "9" * 400])
def test_a_rate_limit_header_that_is_no_number_leaves_no_request_unanswered(
        remaining, base_topic, probe, bridge):
    headers = {"X-Ratelimit-Remaining": remaining, "X-Ratelimit-Replenish-Rate": remaining,
               "X-Ratelimit-Burst-Capacity": remaining}
    worker = bridge(FLEET, headers)
    probe.wait_topic(f"{base_topic}/bridge/info", check=lambda d: json.loads(d)[
        "last_poll"]["faults"]["outcome"] is not None)
    answer = probe.request(base_topic, "quota", {})
    assert answer["status"] in ("ok", "error"), answer
    assert worker.alive()


@pytest.mark.parametrize("odd", ["surrogate-names", "device-type-text", "nested-quota"])
def test_check_prints_one_line_for_odd_answers(odd, tmp_path):
    scenario = dict(FLEET)
    if odd == "surrogate-names":
        scenario["getPowerStationList"] = _escaped({"pageList": [dict(
            PLANT, ps_name="Sunny roof \ud83c")], "rowCount": 1})
        scenario["getDeviceListByUser"] = _escaped({"pageList": [dict(
            ESS, device_sn="A22\ud83c")], "rowCount": 1})
    elif odd == "device-type-text":
        scenario["getDeviceListByUser"] = _page([dict(ESS, device_type="ESS")])
    else:
        scenario["getOpenApiCallInfo"] = lambda body: Raw(NESTED)
    api = FakeOpenApi(scenario)
    try:
        config = config_dict(ServerUrl(api.url), free_port(), "s2m_check", tmp_path)
        path = write_yaml(tmp_path / "config.yaml", config)
        done = run_cli("check", "-c", str(path), env={"PYTHONIOENCODING": "utf-8"})
    finally:
        api.stop()
    output = done.stdout + done.stderr
    assert traceback_free(output), output
    if odd == "surrogate-names":
        assert "Sunny roof \ufffd" in done.stdout and "A22\ufffd" in done.stdout, output
    elif odd == "nested-quota":
        assert done.returncode == 1, output
        assert done.stderr.strip().splitlines()[-1].startswith("sungrow2mqtt: error: "), output
    else:
        assert "5001_14_1_1" in done.stdout, output
