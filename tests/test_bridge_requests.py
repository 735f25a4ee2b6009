"""The bridge's requests: every malformed one is refused with a message naming the problem."""
import json

import pytest

from sungrow2mqtt.components.request_api import MAX_PAYLOAD_BYTES, BadRequest
from sungrow2mqtt.config import parse_config
from sungrow2mqtt.model import device_from_row, plant_from_row
from sungrow2mqtt.service import Service
from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS

# the service's own registry; building the service connects to nothing
API = Service(parse_config({
    "isolarcloud": {"server": "http://127.0.0.1:9", "appkey": DEFAULT_CREDENTIALS.appkey,
                    "access_key": DEFAULT_CREDENTIALS.access_key,
                    "username": DEFAULT_CREDENTIALS.username,
                    "password": DEFAULT_CREDENTIALS.password, "token_file": None},
    "mqtt": {"host": "127.0.0.1"}}, "test.yaml")).requests
parse_request = API.parse


def test_empty_payload_is_an_empty_request():
    request = parse_request("refresh", b"")
    assert request.name == "refresh" and request.params == {} and request.transaction is None


def test_transaction_and_ps_id_are_kept():
    request = parse_request("refresh", b'{"transaction": "t1", "ps_id": "5012345"}')
    assert request.transaction == "t1" and request.params == {"ps_id": 5012345}


@pytest.mark.parametrize("name,payload,message", [
    ("reboot", b"", "unknown request 'reboot'; known requests: faults, history, info, quota, "
                    "refresh"),
    ("refresh", b"{oops", "not valid JSON"),
    ("refresh", b'"text"', "must be a JSON object, got str"),
    ("refresh", b"\xff", "not UTF-8"),
    ("refresh", b" " * (MAX_PAYLOAD_BYTES + 1), "too large"),
    ("refresh", b'{"ps_id": true}', "ps_id must be a plant id"),
    ("refresh", b'{"ps_id": -3}', "ps_id must be a plant id"),
    ("refresh", b'{"psid": 1}', "unknown field 'psid'; refresh takes: transaction, ps_id"),
    ("refresh", b'{"transaction": {"a": 1}}', "transaction must be"),
    ("faults", b'{"ps_id": 1}', "unknown field 'ps_id'; faults takes: transaction"),
    ("history", b"{}", "missing field(s): ps_key, points, start, end, interval"),
    ("history", b'{"ps_key": "../../etc", "points": [1], "start": "2025-01-01", '
                b'"end": "2025-01-02", "interval": "day"}', "ps_key must look like"),
    ("history", b'{"ps_key": "1_14_1_1", "points": ["x"], "start": "2025-01-01", '
                b'"end": "2025-01-02", "interval": "day"}', "not a point id"),
    ("history", b'{"ps_key": "1_14_1_1", "points": [1], "start": "2025-01-01", '
                b'"end": "2025-01-02", "interval": "week"}', "interval must be one of"),
    ("history", json.dumps({"ps_key": "1_14_1_1", "points": list(range(60)), "start": "2025",
                            "end": "2025", "interval": "year"}).encode(), "at most 49 points"),
])
def test_bad_requests_name_the_problem(name, payload, message):
    with pytest.raises(BadRequest) as info:
        parse_request(name, payload)
    assert message in str(info.value)


def test_transaction_is_echoed_even_on_errors():
    with pytest.raises(BadRequest) as info:
        parse_request("refresh", b'{"transaction": 7, "ps_id": "x"}')
    assert info.value.transaction == 7 and info.value.name == "refresh"


def test_unsafe_request_names_answer_on_unknown():
    with pytest.raises(BadRequest) as info:
        parse_request("../x", b"")
    assert info.value.name == "unknown"


def test_history_points_accept_strings_and_prefixes():
    request = parse_request("history", b'{"ps_key": "1_14_1_1", "points": "p13011, 13012", '
                                       b'"start": "2025-01-01", "end": "2025-01-02", '
                                       b'"interval": "day"}')
    assert request.params["points"] == ["13011", "13012"]


def test_history_takes_every_ps_key_the_bridge_publishes():
    """One ps_key type: a device the model bridges (8-digit device code) is not refused here."""
    plant = plant_from_row({"ps_id": 1563218, "ps_name": "Home"}, "Plant")
    device = device_from_row({"ps_key": "1563218_1_12345678_1", "device_type": 1}, plant,
                             "Inverter")
    request = parse_request("history", json.dumps({
        "ps_key": device.ps_key, "points": [1], "start": "2025-01-01", "end": "2025-01-02",
        "interval": "day"}).encode())
    assert request.params["ps_key"] == device.ps_key == "1563218_1_12345678_1"
