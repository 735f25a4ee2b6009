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
    ("Refresh", b"", "unknown request 'Refresh' (did you mean 'refresh'?); known requests: "),
    ("refresh", b"{oops", "not valid JSON"),
    ("refresh", b'"text"', "must be a JSON object, got str"),
    ("refresh", b"\xff", "not UTF-8"),
    ("refresh", b" " * (MAX_PAYLOAD_BYTES + 1), "too large"),
    ("refresh", b'{"ps_id": true}', "ps_id: expected a plant id (a positive integer), got true"),
    ("refresh", b'{"ps_id": -3}', "ps_id: expected a plant id (a positive integer), got -3"),
    ("refresh", b'{"ps_id": 0}', "ps_id: expected a plant id (a positive integer), got 0"),
    ("refresh", b'{"psid": 1}', "psid: unknown key (did you mean 'ps_id'?); refresh takes: "
                                "transaction, ps_id"),
    ("refresh", b'{"transaction": {"a": 1}}', "transaction must be"),
    ("faults", b'{"ps_id": 1}', "ps_id: unknown key; faults takes: transaction"),
    ("history", b"{}", "ps_key: required; points: required; start: required; end: required; "
                       "interval: required"),
    ("history", b'{"ps_key": "../../etc", "points": [1], "start": "2025-01-01", '
                b'"end": "2025-01-02", "interval": "day"}',
     "ps_key: expected <ps_id>_<device type>_<device code>_<channel> such as 1234567_14_1_1, "
     "got '../../etc'"),
    ("history", b'{"ps_key": "1_14_1_1", "points": ["x"], "start": "2025-01-01", '
                b'"end": "2025-01-02", "interval": "day"}',
     "points: 'x' is not a point id such as 13011 or p13011"),
    ("history", b'{"ps_key": "1_14_1_1", "points": [1], "start": "2025-01-01", '
                b'"end": "2025-01-02", "interval": "week"}',
     "interval: expected one of minute, day, month, year, got 'week'"),
    ("history", b'{"ps_key": "1_14_1_1", "points": [1], "start": "2025-01-01", '
                b'"end": "2025-01-02", "interval": "dya"}', "got 'dya' (did you mean 'day'?)"),
    ("history", json.dumps({"ps_key": "1_14_1_1", "points": list(range(60)), "start": "2025",
                            "end": "2025", "interval": "year"}).encode(),
     "points: at most 49 points per request, got 60"),
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


def test_every_problem_of_a_request_is_named_on_one_line():
    with pytest.raises(BadRequest) as info:
        parse_request("history", json.dumps({
            "ps_key": "1_14_1_1", "points": [1], "start": 2025, "end": "2025-01-02",
            "interval": "minute", "minute_interval": 0, "colour": "red"}).encode())
    assert str(info.value) == (
        "start: expected a date/time string such as 2026-11-25 or 2026-11-25T10:00, got 2025; "
        "minute_interval: expected an integer 1–180, got 0; colour: unknown key; history takes: "
        "transaction, ps_key, points, start, end, interval, minute_interval")


def test_an_unknown_key_cannot_break_the_error_line():
    """A JSON key may hold a line break: shown quoted, it cannot forge a second log line."""
    with pytest.raises(BadRequest) as info:
        parse_request("refresh", json.dumps({"x\nERROR forged": 1, "y" * 300: 2}).encode())
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("'x\\nERROR forged': unknown key; ")
    assert len(str(info.value)) < 200


def test_history_optional_fields_stay_absent_and_numbers_may_be_text():
    base = {"ps_key": "1_14_1_1", "points": [1], "start": "2025-01-01", "end": "2025-01-02"}
    day = parse_request("history", json.dumps(dict(base, interval="Day")).encode())
    assert day.params == dict(base, points=["1"], interval="day")
    minute = parse_request("history", json.dumps(dict(base, interval="minute",
                                                      minute_interval="15")).encode())
    assert minute.params["minute_interval"] == 15
