"""Independent calls go out together, stream back as they complete and stay inside the bucket.

Concurrency is proven without timing: the test gateway makes the requests wait for each other
(:class:`Rendezvous`), which a client sending them one after another never satisfies.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Dict

import pytest
from gateway import Gateway, Rendezvous, Reply, envelope

from conftest import SIM_START, make_client
from sungrow2mqtt.isolarcloud import errors
from sungrow2mqtt.isolarcloud.client import device_type_of
from sungrow2mqtt.simulator import Fleet, SimulatorServer


def realtime(body: Dict[str, Any]) -> Reply:
    return envelope({"device_point_list": [{"device_point": {"ps_key": key, "p1": "1"}}
                                           for key in body["ps_key_list"]]})


def plants(rows: int):
    def answer(body: Dict[str, Any]) -> Reply:
        first = (body["curPage"] - 1) * body["size"]
        page = [{"ps_id": n} for n in range(first, min(rows, first + body["size"]))]
        return envelope({"pageList": page, "rowCount": rows})
    return answer


def test_realtime_chunks_of_a_refresh_go_out_together():
    keys = [f"1_14_1_{n}" for n in range(120)]              # 3 chunks of at most 50 devices
    with Gateway() as gateway:
        gateway.script("getDeviceRealTimeData", realtime)
        gateway.rendezvous = Rendezvous(3, lambda service, _: service == "getDeviceRealTimeData")
        result = make_client(gateway).get_real_time_data(keys, {14: [1]})
    assert gateway.rendezvous.met
    assert [d["ps_key"] for d in result.devices] == keys        # merged in the order asked
    assert gateway.calls["getDeviceRealTimeData"] == 3


def test_pages_two_to_n_go_out_together_once_page_one_gives_the_row_count():
    with Gateway() as gateway:
        gateway.script("getPowerStationList", plants(450))
        gateway.rendezvous = Rendezvous(4, lambda _, body: body.get("curPage", 1) > 1)
        rows = make_client(gateway, max_workers=4).get_power_station_list()
    assert gateway.rendezvous.met
    assert [row["ps_id"] for row in rows] == list(range(450))
    assert gateway.calls["getPowerStationList"] == 5


def test_each_chunk_is_streamed_as_soon_as_it_is_back():
    slow_key = "1_7_1_1"
    release = threading.Event()
    held = []

    def answer(body: Dict[str, Any]) -> Reply:
        if slow_key in body["ps_key_list"]:
            held.append(release.wait(5))         # False: nobody released it (not streamed)
        return realtime(body)

    with Gateway() as gateway:
        gateway.script("getDeviceRealTimeData", answer)
        client = make_client(gateway)
        parts = client.iter_real_time_data(["1_14_1_1", slow_key], {14: [1], 7: [1]})
        first = next(parts)
        assert [d["ps_key"] for d in first.devices] == ["1_14_1_1"]
        release.set()
        rest = list(parts)
    assert held == [True]
    assert [[d["ps_key"] for d in part.devices] for part in rest] == [[slow_key]]


def test_iter_real_time_data_checks_its_arguments_before_any_call(simulator):
    client = make_client(simulator)
    with pytest.raises(ValueError, match="point id"):
        client.iter_real_time_data(["1_14_1_1"], {14: ["not-a-point"]})
    assert client.transport.stats.total == 0


def test_a_submitted_job_that_pages_does_not_wait_on_a_full_pool():
    with Gateway() as gateway:
        gateway.script("getPowerStationList", plants(350))
        client = make_client(gateway, max_workers=2)
        jobs = [client.submit(client.get_power_station_list) for _ in range(4)]
        results = [job.result(timeout=60) for job in jobs]
    assert all([row["ps_id"] for row in rows] == list(range(350)) for rows in results)


def test_a_thousand_devices_at_once_never_meet_http_429():
    fleet = Fleet.synthetic(1000, seed=3)
    with SimulatorServer(fleet=fleet, burst_capacity=15, replenish_rate=10,
                         start_time=SIM_START) as server:
        client = make_client(server, max_workers=4, timeout=30)   # a loaded CI box is slow
        devices = client.get_device_list_by_user()
        keys = [d["ps_key"] for d in devices]
        types = {device_type_of(k) for k in keys}
        faults = client.submit(client.get_fault_alarm_info)
        result = client.get_real_time_data(keys, {t: [1] for t in types})
        faults.result(timeout=60)
        counts = server.call_counts()
    per_type = [sum(1 for k in keys if device_type_of(k) == t) for t in types]
    assert len(result.devices) == len(keys) == 1000
    assert (client.transport.stats.rate_limited, client.transport.stats.retries) == (0, 0)
    assert counts["getDeviceRealTimeData"] == sum(-(-n // 50) for n in per_type)


def test_more_workers_than_pooled_connections_is_refused(simulator):
    with pytest.raises(ValueError, match="max_workers must be 1..8"):
        make_client(simulator, max_workers=9, pool_size=8)


def test_a_failing_chunk_ends_the_job_only_once_its_other_calls_are_back():
    failed = threading.Event()
    finished = threading.Event()

    def answer(body: Dict[str, Any]) -> Reply:
        if "1_7_1_1" in body["ps_key_list"]:
            failed.set()
            return envelope(None, "E999", "hourly limit")
        failed.wait(5)
        time.sleep(0.2)                   # well after the failure has reached the client
        finished.set()
        return realtime(body)

    with Gateway() as gateway:
        gateway.script("getDeviceRealTimeData", answer)
        client = make_client(gateway)
        with pytest.raises(errors.RateLimitError):
            client.get_real_time_data(["1_14_1_1", "1_7_1_1"], {14: [1], 7: [1]})
        assert finished.is_set()          # no call of the job was still on its way
