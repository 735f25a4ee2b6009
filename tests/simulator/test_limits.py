"""The gateway's burst limit (HTTP 429 and its headers) and the added latency, over real HTTP."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import List

import pytest
import requests

from conftest import SIM_START, free_port, wait_for_port
from sim_http import CREDS, headers
from sungrow2mqtt.simulator import SimulatorServer

LIMIT_HEADERS = ("X-Ratelimit-Burst-Capacity", "X-Ratelimit-Remaining",
                 "X-Ratelimit-Replenish-Rate")
LOGIN = {"appkey": CREDS.appkey, "user_account": CREDS.username,
         "user_password": CREDS.password}


def _login(url: str) -> requests.Response:
    return requests.post(f"{url}/openapi/login", json=LOGIN, headers=headers(), timeout=10)


def test_default_bucket_is_15_calls_refilled_at_10_a_second() -> None:
    with SimulatorServer(start_time=SIM_START) as sim:
        answer = _login(sim.url)
        assert answer.headers["X-Ratelimit-Burst-Capacity"] == "15"
        assert answer.headers["X-Ratelimit-Replenish-Rate"] == "10"
        assert answer.headers["X-Ratelimit-Remaining"] == "14"


def test_every_answer_carries_the_limit_headers_429_too() -> None:
    with SimulatorServer(start_time=SIM_START, burst_capacity=4, replenish_rate=0.001) as sim:
        sim.fail_next(1, "http500")
        answers = [
            requests.post(f"{sim.url}/openapi/login", json=LOGIN, headers=headers(), timeout=10),
            requests.get(f"{sim.url}/timestamp", timeout=10),
            requests.post(f"{sim.url}/openapi/getNothing", json={}, headers=headers(),
                          timeout=10),
            _login(sim.url),
            _login(sim.url),
        ]
        assert [a.status_code for a in answers] == [500, 200, 200, 200, 429]
        assert answers[2].json()["result_code"] == "E996"
        for answer in answers:
            assert all(name in answer.headers for name in LIMIT_HEADERS), answer.headers
        assert [a.headers["X-Ratelimit-Remaining"] for a in answers] == ["3", "2", "1", "0", "0"]
        assert answers[4].content == b""


def test_the_bucket_refills() -> None:
    with SimulatorServer(start_time=SIM_START, burst_capacity=1, replenish_rate=20) as sim:
        assert _login(sim.url).status_code == 200
        assert _login(sim.url).status_code == 429
        time.sleep(0.1)                 # two tokens' worth at 20 a second; the bucket holds one
        assert _login(sim.url).status_code == 200


def test_bucket_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="burst_capacity must be at least 1"):
        SimulatorServer(start_time=SIM_START, burst_capacity=0)
    with pytest.raises(ValueError, match="replenish_rate above 0"):
        SimulatorServer(start_time=SIM_START, replenish_rate=0)
    with pytest.raises(ValueError, match="latency must be 0 or more"):
        SimulatorServer(start_time=SIM_START, latency=-0.1)


def _parallel(url: str, count: int) -> List[int]:
    """``count`` logins sent at the same moment; their HTTP statuses."""
    barrier = threading.Barrier(count)
    statuses: List[int] = []

    def send() -> None:
        barrier.wait()
        statuses.append(_login(url).status_code)

    threads = [threading.Thread(target=send) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


def test_calls_sent_together_are_answered_together_under_latency() -> None:
    with SimulatorServer(start_time=SIM_START, latency=1.0) as sim:
        assert _parallel(sim.url, 4) == [200] * 4
        assert sim.peak_in_flight() == 4     # all four waited out the same latency at once
        sim.reset_counts()
        for _ in range(2):
            _login(sim.url)
        assert sim.peak_in_flight() == 1     # one after the other


def test_latency_and_peak_over_http() -> None:
    with SimulatorServer(start_time=SIM_START) as sim:
        assert requests.post(f"{sim.url}/_sim/latency", json={"seconds": 1.0},
                             timeout=10).json() == {"ok": True}
        _parallel(sim.url, 3)
        assert requests.get(f"{sim.url}/_sim/peak-in-flight", timeout=10).json() == {"peak": 3}
        bad = requests.post(f"{sim.url}/_sim/latency", json={"seconds": -1}, timeout=10)
        assert bad.status_code == 400 and "latency" in bad.json()["error"]


def test_simulate_bucket_and_latency_flags() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sungrow2mqtt", "simulate", "--port", str(port), "--burst", "2",
         "--replenish-rate", "0.001", "--latency", "0.05"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        answers = [_login(f"http://127.0.0.1:{port}") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[0].headers["X-Ratelimit-Burst-Capacity"] == "2"
        assert answers[0].headers["X-Ratelimit-Replenish-Rate"] == "0.001"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize("flag, value, message", [
    ("--burst", "0", "argument --burst: must be at least 1, not 0"),
    ("--replenish-rate", "0", "argument --replenish-rate: must be above 0, not 0"),
    ("--latency", "-1", "argument --latency: must be at least 0, not -1"),
    ("--latency", "soon", "argument --latency: 'soon' is not a number"),
])
def test_simulate_refuses_bad_limits(flag: str, value: str, message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "sungrow2mqtt", "simulate", flag, value],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(message)
