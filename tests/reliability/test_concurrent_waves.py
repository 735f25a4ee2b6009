"""The independent calls of a poll go out together (issue 11), still the fewest calls.

The simulator adds a latency to every answer and counts the calls it serves at the same time
(``peak_in_flight``): calls sent one after another never overlap there, calls sent together do.
Nothing here measures time.
"""
from __future__ import annotations

from bridge_harness import config_dict
from reliability_support import Driven, fast_simulator, shared_broker
from sungrow2mqtt.components.request_api import Request

__all__ = ["shared_broker"]   # fixture, used by name below

LATENCY = 0.5     # seconds: long enough that calls sent together are served together


def test_the_device_job_asks_for_plants_devices_and_quota_together(shared_broker, tmp_path,
                                                                     base_topic):
    with fast_simulator(latency=LATENCY) as sim:
        driven = Driven(config_dict(sim, shared_broker.port, base_topic, tmp_path), tmp_path)
        try:
            driven.service.client.login()
            sim.reset_counts()
            driven.poller.run("devices")
            assert driven.outcome("devices") == "ok"
            assert sim.call_counts() == {"getPowerStationList": 1, "getDeviceListByUser": 1,
                                         "getOpenApiCallInfo": 1}
            assert sim.peak_in_flight() == 3
            info = driven.fleet.snapshot().outcomes["devices"]
            assert info.api_calls == 3
        finally:
            driven.stop()


def test_a_refresh_sends_every_realtime_chunk_and_the_fault_query_in_one_wave(
        shared_broker, tmp_path, base_topic):
    with fast_simulator(latency=LATENCY) as sim:
        driven = Driven(config_dict(sim, shared_broker.port, base_topic, tmp_path), tmp_path)
        try:
            driven.cycle(devices=True)
            driven.flush()
            driven.clock.advance(1)                    # past min_refresh_spacing
            sim.reset_counts()
            driven.service.refresh.request(Request("refresh", {}, "wave"))
            driven.service.cloud_requests.run_due()
            counts = sim.call_counts()
            assert counts == {"getDeviceRealTimeData": 6, "getFaultAlarmInfo": 1}   # the minimum
            assert sim.peak_in_flight() == 7
            outcomes = driven.fleet.snapshot().outcomes
            assert (outcomes["realtime"].api_calls, outcomes["faults"].api_calls) == (6, 1)
            assert outcomes["realtime"].ok and outcomes["faults"].ok
        finally:
            driven.stop()


def test_a_scheduled_cycle_is_one_wave_too(shared_broker, tmp_path, base_topic):
    with fast_simulator(latency=LATENCY) as sim:
        driven = Driven(config_dict(sim, shared_broker.port, base_topic, tmp_path), tmp_path)
        try:
            driven.poller.run("devices")
            sim.reset_counts()
            driven.poller.run_wave({"realtime": None, "faults": None})
            assert sim.peak_in_flight() == 7
            assert sum(sim.call_counts().values()) == 7
            assert len(driven.fleet.snapshot().values) == 9          # 2 plants, 7 devices
        finally:
            driven.stop()
