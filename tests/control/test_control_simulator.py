"""The parameter-setting client against the simulator over real HTTP: writes, read backs, tasks.

Time moves on the simulator's clock (``set_clock_offset``) instead of the tests sleeping.
"""
from __future__ import annotations

from typing import Iterator, List, Tuple

import pytest
from conftest import SIM_START, make_client

from sungrow2mqtt.control import decode, load_parameters, plan_writes
from sungrow2mqtt.isolarcloud.errors import RequestRejected
from sungrow2mqtt.isolarcloud.params import ParameterClient, Submission, TaskStatus
from sungrow2mqtt.simulator import SimulatorServer

ESS, ESS_UUID = "1563218_14_1_1", 2300102
SG5, SG5_UUID = "1587093_1_1_1", 2300202
METER_UUID = 2300103
CATALOG = load_parameters()


class Clock:
    """Moves the simulator's clock; used as the client's sleep and clock while waiting."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.sim = sim
        self.offset = 0.0

    def sleep(self, seconds: float) -> bool:
        self.offset += seconds
        self.sim.set_clock_offset(self.offset)
        return False

    def now(self) -> float:
        return self.offset


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[SimulatorServer]:
    """A plain simulator, or an encrypted one for tests parametrized with "encrypted"."""
    encrypted = getattr(request, "param", "plain") == "encrypted"
    with SimulatorServer(encrypted=encrypted, start_time=SIM_START) as server:
        yield server


@pytest.fixture
def clock(sim: SimulatorServer) -> Clock:
    return Clock(sim)


@pytest.fixture
def params(sim: SimulatorServer) -> Iterator[ParameterClient]:
    client = make_client(sim)
    yield ParameterClient(client)
    client.close()


def wire_pairs(device_type: int, settings: dict) -> List[Tuple[str, str]]:
    """What the bridge will send for a request: validated by the catalog, prerequisites first."""
    return [(w.spec.param_code, w.wire) for w in plan_writes(CATALOG, device_type, settings,
                                                              limits={"rated_power": 5000})]


def finish(params: ParameterClient, clock: Clock, uuid: int, submission: Submission,
           **wait_args: float) -> TaskStatus:
    task = submission.task_for(uuid)
    assert task is not None, submission
    status = params.wait(uuid, task.task_id, sleep=clock.sleep, clock=clock.now, **wait_args)
    assert status is not None
    return status


def read_back(params: ParameterClient, clock: Clock, uuid: int, *codes: str) -> dict:
    status = finish(params, clock, uuid, params.read(uuid, codes))
    assert status.succeeded
    return status.values()


def writes_sent(sim: SimulatorServer) -> list:
    return [body["param_list"] for service, _, body in sim.requests_log
            if service == "paramSetting" and str(body.get("set_type")) == "0"]


@pytest.mark.parametrize("sim", ["plain", "encrypted"], indirect=True)
def test_soc_upper_limit_90_is_one_write_of_900_confirmed_by_the_read_back(
        sim: SimulatorServer, params: ParameterClient, clock: Clock) -> None:
    assert params.check(ESS_UUID).allows(ESS_UUID)
    assert read_back(params, clock, ESS_UUID, "10001") == {"10001": "1000"}
    sim.reset_counts()

    status = finish(params, clock, ESS_UUID, params.write(ESS_UUID, wire_pairs(
        14, {"soc_upper_limit": 90})))

    assert status.succeeded and status.values() == {"10001": "900"}
    assert writes_sent(sim) == [[{"param_code": "10001", "set_value": "900"}]]
    assert sim.call_counts() == {"paramSetting": 1, "getParamSettingTask": 1}  # one poll
    confirmed = read_back(params, clock, ESS_UUID, "10001")
    soc_upper_limit = CATALOG.get(14, "soc_upper_limit")
    assert soc_upper_limit is not None
    assert confirmed == {"10001": "900"} and decode(soc_upper_limit, confirmed["10001"]) == 90


def test_a_task_polls_until_it_ends(
        sim: SimulatorServer, params: ParameterClient, clock: Clock) -> None:
    sim.control.task_seconds = 12.0
    status = finish(params, clock, ESS_UUID, params.write(ESS_UUID, [("10024", "170")]),
                    interval=5.0)
    assert status.succeeded
    assert sim.call_counts()["getParamSettingTask"] == 3  # at 5 s and 10 s running, 15 s done


def test_a_refused_value_fails_the_task_and_the_device_keeps_its_value(
        sim: SimulatorServer, params: ParameterClient, clock: Clock) -> None:
    sim.control.fail_next_write("refused")
    status = finish(params, clock, ESS_UUID, params.write(ESS_UUID, wire_pairs(
        14, {"soc_upper_limit": 90})))
    assert not status.running and not status.succeeded
    assert status.command_status == "4"
    assert read_back(params, clock, ESS_UUID, "10001") == {"10001": "1000"}


def test_the_device_refuses_a_feed_in_limit_while_limitation_is_off(
        params: ParameterClient, clock: Clock) -> None:
    status = finish(params, clock, SG5_UUID, params.write(SG5_UUID, [("10013", "3000")]))
    assert status.command_status == "4"
    assert read_back(params, clock, SG5_UUID, "10012", "10013") == {"10012": "85", "10013": "0"}


def test_prerequisites_first_make_the_same_write_succeed(
        params: ParameterClient, clock: Clock) -> None:
    pairs = wire_pairs(1, {"feed_in_limit": 3000, "feed_in_limitation": "ON"})
    assert pairs == [("10012", "170"), ("10013", "3000")]
    status = finish(params, clock, SG5_UUID, params.write(SG5_UUID, pairs))
    assert status.succeeded
    assert read_back(params, clock, SG5_UUID, "10012", "10013") == {"10012": "170",
                                                                  "10013": "3000"}


def test_the_device_refuses_more_than_its_rated_power(
        params: ParameterClient, clock: Clock) -> None:
    status = finish(params, clock, SG5_UUID, params.write(SG5_UUID, [("10012", "170"),
                                                                   ("10013", "5010")]))
    assert status.command_status == "4"


def test_an_offline_device_fails_its_tasks(
        sim: SimulatorServer, params: ParameterClient, clock: Clock) -> None:
    sim.control.set_offline(ESS)
    status = finish(params, clock, ESS_UUID, params.write(ESS_UUID, [("10001", "900")]))
    assert status.command_status == "5"
    sim.control.set_offline(ESS, False)
    assert read_back(params, clock, ESS_UUID, "10001") == {"10001": "1000"}


def test_an_expired_task(sim: SimulatorServer, params: ParameterClient, clock: Clock) -> None:
    sim.control.fail_next_write("expire")
    status = finish(params, clock, ESS_UUID, params.write(ESS_UUID, [("10001", "900")]))
    assert status.command_status == "6" and not status.succeeded
    assert sim.call_counts()["getParamSettingTask"] == 24  # every 5 s up to expire_second 120
    assert read_back(params, clock, ESS_UUID, "10001") == {"10001": "1000"}


def test_the_client_gives_up_at_its_timeout(
        sim: SimulatorServer, params: ParameterClient, clock: Clock) -> None:
    sim.control.fail_next_write("expire")
    status = finish(params, clock, ESS_UUID, params.write(ESS_UUID, [("10001", "900")]),
                    timeout=12.0)
    assert status.running
    assert sim.call_counts()["getParamSettingTask"] == 3  # at 5, 10 and 12 s


def test_a_second_write_too_soon_gets_check_result_9(params: ParameterClient, clock: Clock) -> None:
    first = params.write(ESS_UUID, [("10001", "900")])
    second = params.write(ESS_UUID, [("10002", "150")])
    assert second.too_fast and second.task_for(ESS_UUID) is None
    assert finish(params, clock, ESS_UUID, first, interval=10.0).succeeded
    third = params.write(ESS_UUID, [("10002", "150")])
    assert not third.too_fast and third.task_for(ESS_UUID) is not None


def test_read_backs_are_not_limited_like_writes(params: ParameterClient) -> None:
    params.write(ESS_UUID, [("10001", "900")])
    assert params.read(ESS_UUID, ["10001"]).task_for(ESS_UUID) is not None


def test_enumerations_come_with_their_labels(params: ParameterClient, clock: Clock) -> None:
    status = finish(params, clock, ESS_UUID, params.read(ESS_UUID, ["10003", "10012"]))
    labels = {p.code: p.labels for p in status.params}
    assert labels["10003"] == {"0": "Self-consumption Mode", "2": "Compulsory Mode",
                               "3": "External Energy Dispatch", "4": "VPP Dispatch"}
    assert labels["10012"] == {"170": "Enable", "85": "Disable"}


def test_string_inverters_take_only_their_parameters(params: ParameterClient) -> None:
    assert params.check(SG5_UUID).allows(SG5_UUID)
    refused = params.write(SG5_UUID, [("10001", "900")])
    assert refused.task_for(SG5_UUID) is None
    assert refused.tasks[str(SG5_UUID)].code == "0"
    assert params.write(SG5_UUID, [("10014", "500")]).task_for(SG5_UUID) is not None


def test_devices_without_parameters(params: ParameterClient) -> None:
    assert not params.check(METER_UUID).allows(METER_UUID)
    assert not params.check(METER_UUID, 2).allows(METER_UUID)
    assert params.write(METER_UUID, [("10001", "900")]).task_for(METER_UUID) is None


@pytest.mark.parametrize("call", [
    lambda p: p.check(999),
    lambda p: p.task(ESS_UUID, "42"),
    lambda p: p.write(999, [("10001", "900")]),
])
def test_unknown_devices_and_tasks_are_refused(params: ParameterClient, call) -> None:
    with pytest.raises(RequestRejected, match="010"):
        call(params)


def test_another_devices_task_is_refused(params: ParameterClient) -> None:
    task = params.write(ESS_UUID, [("10001", "900")]).task_for(ESS_UUID)
    assert task is not None
    with pytest.raises(RequestRejected, match="010"):
        params.task(SG5_UUID, task.task_id)


def test_a_reset_restores_the_defaults(
        sim: SimulatorServer, params: ParameterClient, clock: Clock) -> None:
    assert finish(params, clock, ESS_UUID, params.write(ESS_UUID, [("10001", "900")])).succeeded
    assert sim.control.values(ESS)["10001"] == "900"
    sim.reset()
    assert sim.control.values(ESS)["10001"] == "1000"
