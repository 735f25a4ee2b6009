"""Hostile failures on demand, over real HTTP: trickles, redirects, endless pages, huge answers,
broken characters, and failures aimed at one service."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List, Tuple

import pytest
import requests

from conftest import SIM_START, make_client
from sim_http import CREDS, Client, headers
from sungrow2mqtt.simulator import SimulatorServer
from sungrow2mqtt.simulator.failures import ENDLESS_ROWS

LOGIN = {"appkey": CREDS.appkey, "user_account": CREDS.username,
         "user_password": CREDS.password}


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(start_time=SIM_START, burst_capacity=1000) as server:
        yield server


# ---------------------------------------------------------------------------------------------
# trickle
# ---------------------------------------------------------------------------------------------


def _raw_post(sim: SimulatorServer, path: str, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", sim.port), timeout=10)
    sock.sendall(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nsys_code: 901\r\n"
                 b"x-access-key: " + CREDS.access_key.encode() + b"\r\nContent-Type: "
                 b"application/json\r\nContent-Length: " + str(len(body)).encode() +
                 b"\r\n\r\n" + body)
    return sock


def test_trickle_sends_the_real_answer_one_byte_at_a_time(sim) -> None:
    sim.fail_next(1, "trickle", delay=0.3)
    sock = _raw_post(sim, "/openapi/login", json.dumps(LOGIN).encode())
    try:
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(4096)
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and len(body) <= 1
        pieces = [sock.recv(4096) for _ in range(3)]
        assert [len(piece) for piece in pieces] == [1, 1, 1]
        assert (body + b"".join(pieces)) == b'{"re'[:len(body) + 3]   # the envelope's start
    finally:
        sock.close()


def test_a_quick_trickle_delivers_the_whole_answer(sim) -> None:
    sim.fail_next(1, "trickle", delay=0.001)
    answer = requests.post(f"{sim.url}/openapi/getPowerStationList", timeout=30,
                           json={"appkey": CREDS.appkey, "curPage": 1, "size": 1},
                           headers=headers())
    assert answer.json()["result_code"] == "002"     # the real answer: no token


# ---------------------------------------------------------------------------------------------
# redirect
# ---------------------------------------------------------------------------------------------


class _Capture(ThreadingHTTPServer):
    """Another host: it records what reaches it."""

    def __init__(self) -> None:
        self.seen: List[Tuple[str, str, dict, bytes]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                capture.seen.append(("POST", self.path, dict(self.headers),
                                     self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def elsewhere() -> Iterator[_Capture]:
    server = _Capture()
    yield server
    server.shutdown()
    server.server_close()


def test_redirect_sends_clients_to_another_host(sim, elsewhere) -> None:
    sim.fail_next(1, "redirect", location=elsewhere.url)
    answer = requests.post(f"{sim.url}/openapi/login", json=LOGIN, headers=headers(),
                           timeout=10, allow_redirects=False)
    assert answer.status_code == 307
    assert answer.headers["Location"] == f"{elsewhere.url}/openapi/login"
    assert "X-Ratelimit-Remaining" in answer.headers
    # what a client that follows redirects gives away: the key and, after a 307, the password
    sim.fail_next(1, "redirect", location=elsewhere.url)
    requests.post(f"{sim.url}/openapi/login", json=LOGIN, headers=headers(), timeout=10)
    (method, path, sent, body), = elsewhere.seen
    assert (method, path) == ("POST", "/openapi/login")
    assert sent["x-access-key"] == CREDS.access_key
    assert json.loads(body)["user_password"] == CREDS.password


def test_redirect_codes_and_default_target(sim) -> None:
    sim.fail_next(1, "redirect", code="302")
    answer = requests.post(f"{sim.url}/openapi/login", json=LOGIN, headers=headers(),
                           timeout=10, allow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "http://sungrow-redirect.invalid/openapi/login"
    with pytest.raises(ValueError, match="redirect's code must be one of 301"):
        sim.fail_next(1, "redirect", code="200")


# ---------------------------------------------------------------------------------------------
# endless pages, huge answers, broken characters
# ---------------------------------------------------------------------------------------------


def test_endless_pages_ignore_cur_page_and_claim_a_billion_rows(sim) -> None:
    client = Client(sim)
    first = client.data("getPowerStationList", curPage=1, size=1)["pageList"]
    sim.fail_next(1, "endless_pages")
    client.data("getOpenApiCallInfo")                 # not paged: the failure waits
    endless = client.data("getPowerStationList", curPage=2, size=1)
    assert endless == {"pageList": first, "rowCount": ENDLESS_ROWS}
    assert client.data("getPowerStationList", curPage=2, size=1)["rowCount"] == 2
    logged = [body for endpoint, _, body in sim.requests_log if endpoint == "getPowerStationList"]
    assert logged[1]["curPage"] == 2                  # the log shows what the client sent


def test_huge_answer_is_the_real_one_padded_to_size(sim) -> None:
    client = Client(sim)
    sim.fail_next(1, "huge", size=3 * 1024 * 1024)
    answer = requests.post(f"{sim.url}/openapi/getOpenApiCallInfo", timeout=30,
                           json={"appkey": CREDS.appkey, "token": client.token},
                           headers=headers())
    assert len(answer.content) == int(answer.headers["Content-Length"]) == 3 * 1024 * 1024
    assert answer.json()["result_code"] == "1"        # still valid JSON when read whole
    assert client.call("getOpenApiCallInfo")["result_code"] == "1"


def test_surrogate_names_are_json_escaped_and_cannot_be_encoded(sim) -> None:
    client = Client(sim)
    sim.fail_next(1, "surrogate")
    client.data("getOpenApiCallInfo")                 # no names: the failure waits
    answer = requests.post(f"{sim.url}/openapi/getPowerStationList", timeout=10,
                           json={"appkey": CREDS.appkey, "token": client.token, "curPage": 1,
                                 "size": 10}, headers=headers())
    assert b'Demo Hybrid Home \\ud83c"' in answer.content
    names = [row["ps_name"] for row in answer.json()["result_data"]["pageList"]]
    assert names == ["Demo Hybrid Home \ud83c", "Demo PV Farmhouse \ud83c"]
    with pytest.raises(UnicodeEncodeError):
        names[0].encode("utf-8")
    again = client.data("getPowerStationList", curPage=1, size=10)["pageList"]
    assert again[0]["ps_name"] == "Demo Hybrid Home"


def test_surrogate_reaches_a_client_through_encryption() -> None:
    with SimulatorServer(start_time=SIM_START, encrypted=True) as server:
        client = make_client(server)
        client.login()
        server.fail_next(1, "surrogate", service="getDeviceListByUser")
        plants = client.get_power_station_list()
        assert plants[0]["ps_name"] == "Demo Hybrid Home"
        devices = client.get_device_list_by_user()
        assert all(d["device_name"].endswith(" \ud83c") for d in devices)


# ---------------------------------------------------------------------------------------------
# aiming and checking
# ---------------------------------------------------------------------------------------------


def test_a_failure_can_wait_for_one_service(sim) -> None:
    client = Client(sim)
    sim.fail_next(1, "http500", service="getFaultAlarmInfo")
    assert client.call("getPowerStationList", curPage=1, size=1)["result_code"] == "1"
    faults = requests.post(f"{sim.url}/openapi/getFaultAlarmInfo", timeout=10,
                           json={"appkey": CREDS.appkey, "token": client.token, "curPage": 1,
                                 "size": 10}, headers=headers())
    assert faults.status_code == 500
    assert client.call("getFaultAlarmInfo", curPage=1, size=10)["result_code"] == "1"


def test_new_modes_over_http(sim, elsewhere) -> None:
    answer = requests.post(f"{sim.url}/_sim/fail", timeout=10, json={
        "mode": "redirect", "code": "308", "location": elsewhere.url, "service": "login"})
    assert answer.json() == {"ok": True}
    redirected = requests.post(f"{sim.url}/openapi/login", json=LOGIN, headers=headers(),
                               timeout=10, allow_redirects=False)
    assert redirected.status_code == 308
    bad = requests.post(f"{sim.url}/_sim/fail", json={"mode": "huge", "size": -1}, timeout=10)
    assert bad.status_code == 400 and "size" in bad.json()["error"]


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "explode"}, "mode must be one of"),
    ({"mode": "trickle", "delay": -1}, "delay must be 0 or more"),
    ({"mode": "huge", "size": -5}, "size must be 0 or more"),
])
def test_failure_arguments_are_checked(sim, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        sim.fail_next(1, **kwargs)
