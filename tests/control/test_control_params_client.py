"""The parameter-setting client reads the answer shapes control-api.md warns about.

These answers come from a scripted caller: the shapes (numbers for strings, missing lists, a
null result_data) are ones the simulator does not all produce, and the live gateway might.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

import pytest

from sungrow2mqtt.isolarcloud.params import ParameterClient
from sungrow2mqtt.isolarcloud.transport import Response


class Scripted:
    """A caller answering each call with the next scripted ``result_data``."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: List[Tuple[str, Dict[str, Any]]] = []
        self.not_repeated: List[str] = []       # services called with idempotent=False

    def call(self, service: str, params: Mapping[str, Any], *, idempotent: bool = True
             ) -> Response:
        self.calls.append((service, dict(params)))
        if not idempotent:
            self.not_repeated.append(f"{service} set_type {params.get('set_type')}")
        return Response(self.answers.pop(0), "success", None)


def test_requests_follow_control_api() -> None:
    caller = Scripted({}, {}, {}, {})
    client = ParameterClient(caller)
    client.check(2300102, 2)
    client.write(2300102, [("10001", 900), (10002, "150")], task_name="t")
    client.read("2300102", ["10003"])
    client.task(2300102, 77)
    assert caller.calls == [
        ("paramSettingCheck", {"set_type": 2, "uuid": "2300102"}),
        ("paramSetting", {"set_type": 0, "uuid": "2300102", "task_name": "t",
                          "expire_second": 120, "param_list": [
                              {"param_code": "10001", "set_value": "900"},
                              {"param_code": "10002", "set_value": "150"}]}),
        ("paramSetting", {"set_type": 2, "uuid": "2300102", "task_name": "sungrow2mqtt read back",
                          "expire_second": 120,
                          "param_list": [{"param_code": "10003", "set_value": ""}]}),
        ("getParamSettingTask", {"task_id": "77", "uuid": "2300102"}),
    ]
    assert caller.not_repeated == ["paramSetting set_type 0"]   # only the write is never resent


@pytest.mark.parametrize("data, allowed", [
    ({"check_result": "1", "dev_result_list": [{"uuid": 5, "check_result": "1"}]}, True),
    ({"check_result": 1, "dev_result_list": [{"uuid": "5", "check_result": 0}]}, False),
    ({"check_result": "1"}, True),                       # the list may be missing
    ({"check_result": "1", "dev_result_list": None}, True),
    ({"check_result": "0", "dev_result_list": ["junk"]}, False),
    (None, False),
])
def test_check_answers(data: Any, allowed: bool) -> None:
    assert ParameterClient(Scripted(data)).check(5).allows(5) is allowed


@pytest.mark.parametrize("data, task_id, too_fast", [
    ({"check_result": "1", "dev_result_list": [{"uuid": 5, "code": 1, "task_id": 901}]},
     "901", False),
    ({"check_result": "1", "dev_result_list": [{"uuid": "5", "code": "0", "task_id": ""}]},
     None, False),
    ({"check_result": "1", "dev_result_list": [{"uuid": "5", "code": "1"}]}, None, False),
    ({"check_result": "1", "dev_result_list": [{"uuid": "6", "code": "1", "task_id": "9"}]},
     None, False),
    ({"check_result": "9"}, None, True),
    ({"check_result": 9, "dev_result_list": [{"uuid": 5, "code": 1, "task_id": 3}]}, None, True),
    ({}, None, False),
])
def test_submission_answers(data: Any, task_id: Any, too_fast: bool) -> None:
    submission = ParameterClient(Scripted(data)).write(5, [("10001", "900")])
    task = submission.task_for(5)
    assert (task.task_id if task else None) == task_id
    assert submission.too_fast is too_fast


def test_task_answers_in_any_shape() -> None:
    client = ParameterClient(Scripted(
        {"command_status": 8, "param_list": [
            {"param_code": 10003, "set_value": "", "return_value": 2,
             "set_val_name": "Self-consumption|Compulsory", "set_val_name_val": "0|2"},
            {"param_code": "10001", "set_value": "900", "return_value": None},
            {"param_code": "10002", "set_value": "", "return_value": ""},
            "junk"]},
        {"command_status": "2"},
        {"command_status": None, "param_list": None},
        None))
    done = client.task(5, 1)
    assert done.succeeded and not done.running
    assert done.values() == {"10003": "2", "10001": "900"}
    assert done.params[0].labels == {"0": "Self-consumption", "2": "Compulsory"}
    assert client.task(5, 1).running
    for _ in range(2):
        unknown = client.task(5, 1)
        assert not unknown.running and not unknown.succeeded and unknown.params == ()


@pytest.mark.parametrize("call, message", [
    (lambda c: c.write(5, []), "paramSetting: at least one parameter is required"),
    (lambda c: c.write(5, [("p10001", "1")]), "paramSetting: parameter code 'p10001' is not a "
                                             "number (like 10001)"),
    (lambda c: c.read(5, ["10001", ""]), "paramSetting: parameter code '' is not a number "
                                         "(like 10001)"),
])
def test_bad_parameters_are_refused_before_calling(call: Any, message: str) -> None:
    caller = Scripted()
    with pytest.raises(ValueError) as info:
        call(ParameterClient(caller))
    assert str(info.value) == message and caller.calls == []


def test_a_stop_before_the_first_poll_costs_no_call() -> None:
    caller = Scripted()
    assert ParameterClient(caller).wait(5, 1, sleep=lambda seconds: True) is None
    assert caller.calls == []


def test_a_stop_while_waiting_returns_the_last_status() -> None:
    caller = Scripted({"command_status": 2}, {"command_status": 2})
    pauses = iter([False, True])
    status = ParameterClient(caller).wait(5, 1, sleep=lambda seconds: next(pauses),
                                          clock=lambda: 0.0)
    assert status is not None and status.running and len(caller.calls) == 1
