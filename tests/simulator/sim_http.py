"""Callers of the simulator over real HTTP, built by hand from the API document (1.3)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

import requests

from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS, SimulatorServer

CREDS = DEFAULT_CREDENTIALS
GMT1 = dt.timezone(dt.timedelta(hours=1))  # the storage plant's zone
STORAGE_PS_ID, PV_PS_ID = 1563218, 1587093
ESS, METER, BATTERY = "1563218_14_1_1", "1563218_7_2_1", "1563218_43_3_1"
MODULE = "1563218_22_247_1"
PLANT = "1563218_11_0_0"
SG5, SG8 = "1587093_1_1_1", "1587093_1_2_1"


def headers(**changes: Optional[str]) -> Dict[str, str]:
    """The document's request headers (1.3 (5)); a None value drops a header."""
    base: Dict[str, Optional[str]] = {"Content-Type": "application/json;charset=UTF-8",
                                      "sys_code": "901", "x-access-key": CREDS.access_key,
                                      "lang": "_en_US"}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def post(sim: SimulatorServer, service: str, body: Dict[str, Any],
         hdrs: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    """POST a plain JSON body to a service and return the envelope."""
    response = requests.post(f"{sim.url}/openapi/{service}", json=body,
                             headers=hdrs or headers(), timeout=10)
    assert response.status_code == 200
    return response.json()


def login(sim: SimulatorServer, password: str = CREDS.password,
          account: str = CREDS.username) -> Dict[str, Any]:
    """Call /openapi/login (2.1)."""
    return post(sim, "login", {"appkey": CREDS.appkey, "user_account": account,
                               "user_password": password})


class Client:
    """A logged-in caller of the plain simulator."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.sim = sim
        self.token = login(sim)["result_data"]["token"]

    def call(self, service: str, **body: Any) -> Dict[str, Any]:
        """The envelope of a call with appkey and token added."""
        return post(self.sim, service, {"appkey": CREDS.appkey, "token": self.token, **body})

    def data(self, service: str, **body: Any) -> Any:
        """result_data of a call that must succeed."""
        answer = self.call(service, **body)
        assert answer["result_code"] == "1", answer
        return answer["result_data"]

    def points(self, ps_keys: List[str], device_type: int,
               point_ids: List[int]) -> Dict[str, Dict[str, Any]]:
        """getDeviceRealTimeData device_point maps by ps_key."""
        data = self.data("getDeviceRealTimeData", ps_key_list=ps_keys,
                         device_type=str(device_type),
                         point_id_list=[str(p) for p in point_ids])
        return {e["device_point"]["ps_key"]: e["device_point"] for e in data["device_point_list"]}
