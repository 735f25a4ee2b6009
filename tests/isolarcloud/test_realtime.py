"""Realtime answers as the live gateway gives them: bad ps_keys in ``fail_ps_key_list``."""
from __future__ import annotations

from typing import Any, Dict

from gateway import Gateway, Reply, envelope

from conftest import make_client

KNOWN = {"1_14_1_1", "1_14_1_2", "1_7_1_1"}


def realtime(body: Dict[str, Any]) -> Reply:
    """getDeviceRealTimeData: known keys answer p1 = 1, the others are named as failed."""
    keys = body["ps_key_list"]
    return envelope({
        "device_point_list": [{"device_point": {"ps_key": k, "p1": "1", "device_time":
                                                "20250601120000"}} for k in keys if k in KNOWN],
        "fail_ps_key_list": [k for k in keys if k not in KNOWN]})


def test_fail_ps_key_list_is_read_and_merged_over_device_types():
    with Gateway() as gateway:
        gateway.script("getDeviceRealTimeData", realtime)
        client = make_client(gateway)
        keys = ["1_14_1_1", "1_14_9_9", "1_7_1_1", "1_7_8_8", "1_14_1_2"]
        result = client.get_real_time_data(keys, {14: [1], 7: [1]})
    assert sorted(result.by_ps_key()) == sorted(KNOWN)
    assert sorted(result.fail_ps_key_list) == ["1_14_9_9", "1_7_8_8"]
    assert result.fail_sn_list == []
