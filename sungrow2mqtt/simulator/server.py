"""A simulated iSolarCloud Open API gateway, speaking real HTTP, for tests and demos.

It follows the Open API document (``isolarcloud-openapi.txt``), not any client.

Checks the document prescribes (section, appendix):

* headers: ``sys_code`` missing -> 003; ``x-access-key`` missing -> E911, unknown -> E912 (1.3 (5),
  appendix 2); body ``appkey`` missing -> 001, unknown -> E00000, paired with another app's access
  key -> E914; ``token`` missing -> 002, unknown or expired -> E00003, except for ``login``
  (1.3 (3)(4)); a token lives 24 h and every call restarts that (1.1);
* envelope ``req_serial_num``/``result_code``/``result_msg``/``result_data`` (1.3 (7)); errors
  carry the appendix-2 name as ``result_msg`` and a null ``result_data``;
* required parameters missing -> 009, invalid -> 010; at most 50 devices per realtime, minute and
  day/month/year call; minute window at most 3 h and fewer than 50 points (2.7.1); day span 100
  days, month span 24 months, year span 5 years (2.8.1); ``ps_key_list`` and ``sn_list`` not both
  empty (2.6.3, 2.14.3); devices of one type per call (2.7.3, 2.8.3, 2.14.3); illegal ps_keys of
  2.7/2.8 listed in ``result_msg`` as ``illegal device list:...`` (1.3 (7), 2.7.5);
* encrypted calls (appendix 4-7): ``x-random-secret-key`` missing -> E904, RSA failure -> E906, key
  not 16 characters -> E907, body not AES hex -> E905, plain JSON -> E902, ``api_key_param``
  missing -> E908, nonce not 32 letters/digits -> E909, nonce reused -> E910, timestamp too far
  from the server clock -> E913; the answer is AES-encrypted with the request's key;
* ``X-Ratelimit-Burst-Capacity``/``-Remaining``/``-Replenish-Rate`` on every answer (the
  screenshots); hourly call quota -> E999, reported by ``getOpenApiCallInfo`` (2.2).

Choices where the document is silent:

* check order: E996, E911/E912, decryption (E902/E904/E906/E907/E905), ``api_key_param``
  (E908/E909/E910/E913), 003, ``sys_code`` other than 901 -> E994, 001, E00000, E914, E999,
  002/E00003, then the endpoint's parameters; a plain request whose ``api_key_param`` is present
  is checked like an encrypted one; a missing nonce counts as malformed (E909), a missing or
  non-numeric timestamp as expired (E913); errors found before the request key is known are
  answered in plain JSON;
* a plain-mode body that is not a JSON object -> 010; decrypted text that is not a JSON object ->
  E905; ``Content-Type`` is not enforced; unknown ``POST`` paths -> E996, unknown ``GET`` -> 404;
* ``GET /timestamp`` answers the envelope with the server's UTC milliseconds as a string;
* the token bucket is per server, not per client; the 429 body is empty; the hourly quota is per
  appkey and per UTC hour, the daily figure is 24 x the hourly one and is not enforced (no E998);
  calls refused with E999 do not count;
* five wrong passwords lock the account (``login_state`` 2) for an hour; a right password resets
  the count; ``login_state`` 5 only via :meth:`SimulatorServer.lock_account`;
* unknown but well-formed ps_keys are left out of realtime answers; malformed ones, or ones whose
  type differs from ``device_type`` (or is not 1 for ``getPVInverterRealTimeData``) -> 010; SNs of
  the wrong type or unknown go to ``fail_sn_list``; unknown ``ps_id`` -> 010;
* point lists must use the document's ``p`` prefix in 2.7/2.8 (``"p1,p2"``), bare IDs in 2.14 and
  2.11; minute and day/month/year times are the plant's local time, minute rows start at the
  first 5-minute boundary and never reach past "now"; ``null`` and ``"--"`` count as no data in
  history; day spans count both ends (at most 100 days, 24 months, 5 years);
* average ("1") is the mean of hourly samples (of daily means for months and years); "4" is given
  only for daily counters, as the sum of the days' finals, and never for day queries;
* getFaultAlarmInfo compares ``startTime``/``endTime`` (digits of ``yyyyMMddHHmm``) with the
  plant-local ``create_time``; closed faults without times are those of the current month;
  active faults have ``process_status`` 1 and ``over_time`` "";
* getOpenPointInfo type 1 (remote signaling) lists the unit-less *status* points of the portal
  table, type 5 the property points; with ``device_model_id`` only points the simulator models;
* plant list values: ``curr_power`` in kW, ``today_energy`` in kWh, ``total_energy`` in kWh below
  1000 and MWh above, CO2 at 0.997 kg/kWh (t above 1000 kg), revenue at the plant's tariff;
* ``ps_current_time_zone`` is a fixed offset without daylight saving.

Clocks: the data (readings, ``device_time``, history, faults), tokens, account locks and quota
hours follow the *plant clock*, which ``start_time`` (constructor), :meth:`SimulatorServer.set_time`
or ``simulate --start`` pin to an instant from which it runs at real speed (unpinned it is the wall
clock).  The anti-replay check (E913) and ``GET /timestamp`` use the *real* clock, since the client
signs requests with the machine's time: a pinned clock therefore costs no E913 and no extra
``/timestamp`` call, and call counts stay exact.  :meth:`SimulatorServer.set_clock_offset` moves
both clocks (so it still provokes E913).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Set, Tuple
from urllib.parse import urlsplit

from Crypto.PublicKey import RSA

from sungrow2mqtt.isolarcloud.crypto import (
    CryptoError, aes_decrypt_hex, aes_encrypt_hex, public_key_base64, rsa_decrypt,
)
from sungrow2mqtt.isolarcloud.errors import RESULT_CODES
from sungrow2mqtt.simulator.clock import Instant, SimClock, parse_instant
from sungrow2mqtt.simulator.fleet import DEVICE_TYPE_NAMES, Device, Fault, Fleet, Period, Plant
from sungrow2mqtt.simulator.values import (
    PROPERTY_POINTS, SHOW_UNITS, SOURCE_MAPS, PointInfo, date_day, day_date, point_name,
    remote_signal_points, slot_datetime, telemetry_points,
)

logger = logging.getLogger(__name__)

SYS_CODE = "901"
TOKEN_LIFETIME = 24 * 3600.0
MAX_WRONG_PASSWORDS = 5
LOCK_SECONDS = 3600.0
MAX_DEVICES = 50
MAX_MINUTE_POINTS = 49
MAX_MINUTE_WINDOW = dt.timedelta(hours=3)
MAX_PERIODS = {"1": 100, "2": 24, "3": 5}
USER_ID = "2481357"
ORG_ID = "3081924"
FAILURE_MODES = ("http500", "http503", "garbage", "timeout", "code", "ratelimit429")
_NONCE = re.compile(r"[A-Za-z0-9]{32}")
_PS_KEY = re.compile(r"(\d+)_(\d+)_(\d+)_(\d+)")
_POINT = re.compile(r"p(\d+)")
_HTML_ERROR = ("<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center>"
               "<hr><center>nginx</center></body></html>")


@dataclass(frozen=True)
class Credentials:
    """The simulator's app and account; the optional second app makes E914 testable."""

    appkey: str
    access_key: str
    username: str
    password: str
    other_appkey: Optional[str] = None
    other_access_key: Optional[str] = None

    def apps(self) -> Dict[str, str]:
        """Every app the gateway knows, as appkey -> access key."""
        apps = {self.appkey: self.access_key}
        if self.other_appkey and self.other_access_key:
            apps[self.other_appkey] = self.other_access_key
        return apps


DEFAULT_CREDENTIALS = Credentials(
    appkey="DEMOSIMULATORAPPKEY0000000000001",
    access_key="demosimulatoraccesskey0000000001",
    username="demo@sungrow2mqtt.invalid",
    password="demo-password",
    other_appkey="DEMOSIMULATORAPPKEY0000000000002",
    other_access_key="demosimulatoraccesskey0000000002",
)


class _RequestError(Exception):
    """An envelope error: result_code plus the document's name as result_msg."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Call:
    """One authenticated request as the endpoint handlers see it."""

    body: Dict[str, Any]
    appkey: str
    now: float
    lang: str


@dataclass
class _Token:
    appkey: str
    expires: float


@dataclass
class _Failure:
    mode: str
    code: Optional[str]
    delay: float


@dataclass
class _Answer:
    """What goes back over HTTP; ``drop`` closes the connection without an answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    request_id: Optional[str] = None
    drop: bool = False


class _TokenBucket:
    """The gateway's burst limiter: ``capacity`` calls, refilled at ``rate`` per second."""

    def __init__(self, capacity: int, rate: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self._tokens = float(capacity)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> Tuple[bool, int]:
        """Spend one token if there is one; returns (allowed, tokens left)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1.0:
                return False, 0
            self._tokens -= 1.0
            return True, int(self._tokens)


# ---------------------------------------------------------------------------------------------
# parameter helpers
# ---------------------------------------------------------------------------------------------


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _required(body: Dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if not _present(value):
        raise _RequestError("009")
    return value


def _int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise _RequestError("010") from None


def _str_list(value: Any) -> List[str]:
    """A List<String> parameter; a comma-separated string is accepted too."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise _RequestError("010")
    out: List[str] = []
    for item in items:
        if isinstance(item, (dict, list)):
            raise _RequestError("010")
        text = str(item).strip()
        if text and text not in out:
            out.append(text)
    return out


def _int_set(value: Any) -> Optional[Set[int]]:
    items = _str_list(value)
    return {_int(item) for item in items} if items else None


def _paging(body: Dict[str, Any]) -> Tuple[int, int]:
    page, size = _int(_required(body, "curPage")), _int(_required(body, "size"))
    if page < 1 or size < 1:
        raise _RequestError("010")
    return page, size


def _page(rows: List[Dict[str, Any]], body: Dict[str, Any]) -> Dict[str, Any]:
    page, size = _paging(body)
    return {"pageList": rows[(page - 1) * size:page * size], "rowCount": len(rows)}


def _points(value: Any, prefixed: bool) -> List[int]:
    out = []
    for item in _str_list(value):
        match = _POINT.fullmatch(item) if prefixed else re.fullmatch(r"\d+", item)
        if match is None:
            raise _RequestError("010")
        out.append(int(match.group(1) if prefixed else item))
    return out


def _compact(value: float, decimals: int = 3) -> str:
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _value_map(value: float, unit: str, big_unit: Optional[str] = None) -> Dict[str, str]:
    """``{"unit":..,"value":..}``; switches to ``big_unit`` (x1000) from 1000 on."""
    if big_unit and abs(value) >= 1000.0:
        return {"unit": big_unit, "value": _compact(value / 1000.0)}
    return {"unit": unit, "value": _compact(value)}


def _parse_time(text: Any, fmt: str, digits: int) -> dt.datetime:
    raw = str(text).strip()
    if not re.fullmatch(rf"\d{{{digits}}}", raw):
        raise _RequestError("010")
    try:
        return dt.datetime.strptime(raw, fmt)
    except ValueError:
        raise _RequestError("010") from None


def _local_text(plant: Plant, ts: float) -> str:
    return plant.local_time(ts).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------------------------------------
# the endpoints
# ---------------------------------------------------------------------------------------------


class _OpenApi:
    """The 14 services of section 2, over a fleet; the gateway has checked auth already."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.sim = sim
        self.fleet = sim.fleet
        self.handlers: Dict[str, Callable[[_Call], Any]] = {
            "login": self.login,
            "getOpenApiCallInfo": self.get_open_api_call_info,
            "getPowerStationList": self.get_power_station_list,
            "getPowerStationDetail": self.get_power_station_detail,
            "getDeviceList": self.get_device_list,
            "getDeviceListByUser": self.get_device_list_by_user,
            "getCommunicationDevInfoByDevSn": self.get_communication_dev_info,
            "getPVInverterRealTimeData": self.get_pv_inverter_real_time_data,
            "getDeviceRealTimeData": self.get_device_real_time_data,
            "getDevicePointMinuteDataList": self.get_device_point_minute_data_list,
            "getDevicePointsDayMonthYearDataList": self.get_device_points_day_month_year,
            "getFaultAlarmInfo": self.get_fault_alarm_info,
            "getOpenPointInfo": self.get_open_point_info,
            "getDevPropertyPointValue": self.get_dev_property_point_value,
        }

    # -- 2.1 / 2.2 ---------------------------------------------------------------------------
    def login(self, call: _Call) -> Dict[str, Any]:
        """2.1: the login state and, on success, a 40-character token."""
        account = str(_required(call.body, "user_account"))
        password = str(_required(call.body, "user_password"))
        return self.sim._login(account, password, call)

    def get_open_api_call_info(self, call: _Call) -> Dict[str, Any]:
        """2.2: the hourly quota and today's use, all as strings."""
        return self.sim._quota_report(call.appkey, call.now)

    # -- 2.3 / 2.4 ---------------------------------------------------------------------------
    def _plant_figures(self, plant: Plant, now: float) -> Dict[str, Any]:
        sample = self.fleet.sample(plant, now)
        today_kwh, total_kwh = sample.today["pv"] / 1000.0, sample.total["pv"] / 1000.0
        faults, alarms = self.fleet.fault_counts(plant)
        updated = plant.iso_time(slot_datetime(sample.day, sample.slot))
        figures: Dict[str, Any] = {
            "alarm_count": alarms,
            "fault_count": faults,
            "ps_fault_status": self.fleet.fault_status(d.ps_key for d in plant.devices),
            "ps_status": 1,
            "curr_power": _value_map(sample.pv_w / 1000.0, "kW"),
            "today_energy": _value_map(today_kwh, "kWh"),
            "total_energy": _value_map(total_kwh, "kWh", "MWh"),
            "today_income": _value_map(today_kwh * plant.price_kwh, plant.currency),
            "total_income": _value_map(total_kwh * plant.price_kwh, plant.currency),
            "co2_reduce": _value_map(today_kwh * 0.997, "kg", "t"),
            "co2_reduce_total": _value_map(total_kwh * 0.997, "kg", "t"),
            "total_capcity": _value_map(plant.params.pv_wp / 1000.0, "kWp"),
            "equivalent_hour": _value_map(sample.today["pv"] / plant.params.pv_wp, "hour"),
        }
        for name in ("total_energy", "today_energy", "cur_power", "today_income", "total_income",
                     "co2_reduce", "co2_reduce_total", "total_capcity", "equivalent_hour"):
            figures[f"{name}_update_time"] = updated
        return figures

    def _plant_common(self, plant: Plant) -> Dict[str, Any]:
        return {
            "build_status": plant.build_status, "connect_type": plant.connect_type,
            "description": None, "install_date": plant.install_date,
            "latitude": plant.params.latitude, "longitude": plant.params.longitude,
            "ps_current_time_zone": plant.time_zone, "ps_id": plant.ps_id,
            "ps_location": plant.location, "ps_name": plant.ps_name, "ps_type": plant.ps_type,
            "share_type": plant.share_type,
        }

    def get_power_station_list(self, call: _Call) -> Dict[str, Any]:
        """2.3: the user's plants, filtered and paged."""
        body = call.body
        _paging(body)
        ps_types = _int_set(body.get("ps_type"))
        valid_flags = _int_set(body.get("valid_flag")) or {1}
        share_types = set(_str_list(body.get("share_type"))) or None
        name = str(body.get("ps_name") or "").lower()
        org_id = str(body.get("org_id") or "")
        rows = []
        for plant in self.fleet.plants:
            if ((ps_types and plant.ps_type not in ps_types)
                    or plant.valid_flag not in valid_flags
                    or (share_types and plant.share_type not in share_types)
                    or name not in plant.ps_name.lower() or (org_id and org_id != ORG_ID)):
                continue
            row = self._plant_common(plant)
            row.update(self._plant_figures(plant, call.now))
            row["valid_flag"] = plant.valid_flag
            rows.append(dict(sorted(row.items())))
        return _page(rows, body)

    def _plant_param(self, value: Any) -> Plant:
        plant = self.fleet.plant(_int(value))
        if plant is None:
            raise _RequestError("010")
        return plant

    def get_power_station_detail(self, call: _Call) -> Dict[str, Any]:
        """2.4: one plant by ps_id, or by the SN of one of its communication devices."""
        if _present(call.body.get("ps_id")):
            plant = self._plant_param(call.body["ps_id"])
        elif _present(call.body.get("sn")):
            device = self.fleet.device_by_sn(str(call.body["sn"]))
            if device is None:
                raise _RequestError("010")
            plant = self.fleet.plant_of(device)
        else:
            raise _RequestError("009")
        row = self._plant_common(plant)
        faults, alarms = self.fleet.fault_counts(plant)
        row.update({
            "alarm_count": alarms, "fault_count": faults,
            "communication_dev_detail_list": [{"is_enable": 1, "sn": sn}
                                              for sn in plant.communication_sns],
            "design_capacity": plant.params.pv_wp, "email": plant.email,
            "param_income_unit_name": plant.currency,
            "ps_fault_status": self.fleet.fault_status(d.ps_key for d in plant.devices),
            "ps_key": plant.ps_key, "ps_price": None,
            "ps_price_kwh": _compact(plant.price_kwh), "ps_status": 1,
            "ps_type_name": plant.ps_type_name, "share_user_type": None,
            "user_moble_tel": None,
        })
        return dict(sorted(row.items()))

    # -- 2.5 / 2.12 / 2.13 -------------------------------------------------------------------
    def _device_row(self, device: Device, firmware: bool, with_ps_id: bool) -> Dict[str, Any]:
        row: Dict[str, Any] = {
            "chnnl_id": device.chnnl_id, "communication_dev_sn": device.communication_dev_sn,
            "dev_fault_status": str(self.fleet.fault_status([device.ps_key])),
            "dev_status": "1", "device_code": device.device_code,
            "device_model_code": device.model_code, "device_model_id": device.model_id,
            "device_name": device.name, "device_sn": device.sn,
            "device_type": device.device_type, "factory_name": device.factory_name,
            "ps_key": device.ps_key, "rel_state": device.rel_state,
            "type_name": device.type_name, "uuid": device.uuid,
        }
        if firmware:
            row["firmware_version_info"] = dict(device.firmware) or None
        if with_ps_id:
            row["ps_id"] = device.ps_id
        return dict(sorted(row.items()))

    def _device_rows(self, call: _Call, devices: Sequence[Device],
                     with_ps_id: bool) -> Dict[str, Any]:
        body = call.body
        _paging(body)
        virtual = str(body.get("is_virtual_unit") or "0").strip()
        firmware = str(body.get("is_get_firmware_version") or "0").strip()
        if virtual not in ("0", "1") or firmware not in ("0", "1"):
            raise _RequestError("010")
        types = _int_set(body.get("device_type_list"))
        rel_state = body.get("rel_state")
        rel = _int(rel_state) if _present(rel_state) else None
        rows = [self._device_row(d, firmware == "1", with_ps_id) for d in devices
                if d.virtual == (virtual == "1") and (not types or d.device_type in types)
                and (rel is None or d.rel_state == rel)]
        return _page(rows, body)

    def get_device_list(self, call: _Call) -> Dict[str, Any]:
        """2.5: devices of one plant; plant-level devices only with ``is_virtual_unit`` 1."""
        plant = self._plant_param(_required(call.body, "ps_id"))
        return self._device_rows(call, plant.devices, with_ps_id=False)

    def get_device_list_by_user(self, call: _Call) -> Dict[str, Any]:
        """2.13: devices of all the user's plants (or of one)."""
        if _present(call.body.get("ps_id")):
            devices = self._plant_param(call.body["ps_id"]).devices
        else:
            devices = self.fleet.devices()
        return self._device_rows(call, devices, with_ps_id=True)

    def get_communication_dev_info(self, call: _Call) -> Optional[Dict[str, Any]]:
        """2.12: the communication device a device SN reports through."""
        device = self.fleet.device_by_sn(str(_required(call.body, "dev_sn")))
        if device is None:
            raise _RequestError("010")
        module = device if device.device_type == 22 else (
            self.fleet.device_by_sn(device.communication_dev_sn or ""))
        if module is None:
            return None
        plant = self.fleet.plant_of(module)
        return {"device_model_code": module.model_code, "ps_id": plant.ps_id,
                "ps_key": module.ps_key, "ps_name": plant.ps_name, "sn": module.sn,
                "uuid": module.uuid}

    # -- 2.6 / 2.14 --------------------------------------------------------------------------
    def _realtime_targets(self, body: Dict[str, Any],
                          device_type: int) -> Tuple[List[Device], Optional[List[str]]]:
        ps_keys = _str_list(body.get("ps_key_list"))
        sns = _str_list(body.get("sn_list"))
        if not ps_keys and not sns:
            raise _RequestError("009")
        if len(ps_keys or sns) > MAX_DEVICES:
            raise _RequestError("010")
        devices: List[Device] = []
        if ps_keys:
            for key in ps_keys:
                match = _PS_KEY.fullmatch(key)
                if match is None or int(match.group(2)) != device_type:
                    raise _RequestError("010")
                device = self.fleet.device(key)
                if device is not None:
                    devices.append(device)
            return devices, None
        failed = []
        for sn in sns:
            device = self.fleet.device_by_sn(sn)
            if device is not None and device.device_type == device_type:
                devices.append(device)
            else:
                failed.append(sn)
        return devices, failed

    def _device_points(self, devices: Sequence[Device], point_ids: Sequence[int],
                       failed: Optional[List[str]], now: float) -> Dict[str, Any]:
        entries = []
        for device in devices:
            plant = self.fleet.plant_of(device)
            point: Dict[str, Any] = {
                "communication_dev_sn": device.communication_dev_sn,
                "dev_fault_status": self.fleet.fault_status([device.ps_key]), "dev_status": 1,
                "device_name": device.name, "device_sn": device.sn,
                "device_time": self.fleet.device_time(plant, now), "ps_id": device.ps_id,
                "ps_key": device.ps_key, "uuid": device.uuid,
            }
            for pid, text in self.fleet.readings(device, point_ids, now).items():
                point[f"p{pid}"] = text
            entries.append({"device_point": dict(sorted(point.items()))})
        result: Dict[str, Any] = {"device_point_list": entries}
        if failed is not None:
            result["fail_sn_list"] = failed
        return result

    def get_pv_inverter_real_time_data(self, call: _Call) -> Dict[str, Any]:
        """2.6: the fixed point set of PV inverters (type 1), unknown points null."""
        devices, failed = self._realtime_targets(call.body, 1)
        return self._device_points(devices, PV_INVERTER_POINTS, failed, call.now)

    def get_device_real_time_data(self, call: _Call) -> Dict[str, Any]:
        """2.14: chosen points of devices of one type, by ps_key or by SN."""
        device_type = _int(_required(call.body, "device_type"))
        point_ids = _points(_required(call.body, "point_id_list"), prefixed=False)
        devices, failed = self._realtime_targets(call.body, device_type)
        return self._device_points(devices, point_ids, failed, call.now)

    # -- 2.7 / 2.8 ---------------------------------------------------------------------------
    def _history_devices(self, body: Dict[str, Any]) -> Tuple[List[Device], List[str]]:
        keys = _str_list(_required(body, "ps_key_list"))
        if len(keys) > MAX_DEVICES:
            raise _RequestError("010")
        devices, illegal = [], []
        for key in keys:
            device = self.fleet.device(key)
            if device is None:
                illegal.append(key)
            else:
                devices.append(device)
        if len({d.device_type for d in devices}) > 1:
            raise _RequestError("010")
        return devices, illegal

    @staticmethod
    def _history_message(illegal: List[str]) -> str:
        return "illegal device list:" + ",".join(illegal) if illegal else "success"

    def get_device_point_minute_data_list(self, call: _Call) -> Tuple[Dict[str, Any], str]:
        """2.7: 5-minute history (window at most 3 h, fewer than 50 points, 50 devices)."""
        body = call.body
        point_ids = _points(_required(body, "points"), prefixed=True)
        start = _parse_time(_required(body, "start_time_stamp"), "%Y%m%d%H%M%S", 14)
        end = _parse_time(_required(body, "end_time_stamp"), "%Y%m%d%H%M%S", 14)
        interval = 5
        if _present(body.get("minute_interval")):
            interval = _int(body["minute_interval"])
        if (not point_ids or len(point_ids) > MAX_MINUTE_POINTS or end < start
                or end - start > MAX_MINUTE_WINDOW or interval < 1):
            raise _RequestError("010")
        devices, illegal = self._history_devices(body)
        data = {d.ps_key: self.fleet.minute_rows(d, point_ids, start, end, interval, call.now)
                for d in devices}
        return data, self._history_message(illegal)

    def get_device_points_day_month_year(self, call: _Call) -> Tuple[Dict[str, Any], str]:
        """2.8: daily, monthly or yearly average/peak/valley/total per point."""
        body = call.body
        point_ids = _points(_required(body, "data_point"), prefixed=True)
        query_type = str(_required(body, "query_type")).strip()
        data_types = _str_list(_required(body, "data_type"))
        order = str(body.get("order") or "0").strip()
        if (query_type not in MAX_PERIODS or not point_ids or order not in ("0", "1")
                or not set(data_types) <= {"1", "2", "3", "4"}):
            raise _RequestError("010")
        periods = _periods(query_type, _required(body, "start_time"), _required(body, "end_time"))
        devices, illegal = self._history_devices(body)
        data = {}
        for device in devices:
            rows = self.fleet.period_rows(device, point_ids, periods, data_types, call.now)
            if order == "1":
                rows = {point: list(reversed(entries)) for point, entries in rows.items()}
            data[device.ps_key] = rows
        return data, self._history_message(illegal)

    # -- 2.9 ---------------------------------------------------------------------------------
    def get_fault_alarm_info(self, call: _Call) -> Dict[str, Any]:
        """2.9: faults and alarms, unclosed ones unless ``process_status`` is 9."""
        body = call.body
        _paging(body)
        status = str(body.get("process_status") or "8").strip()
        if status not in ("8", "9"):
            raise _RequestError("010")
        fault_types = _int_set(body.get("fault_type"))
        levels = _int_set(body.get("fault_level"))
        plant = self._plant_param(body["ps_id"]) if _present(body.get("ps_id")) else None
        ps_key = str(body.get("ps_key") or "")
        fault_code = str(body.get("fault_code") or "")
        name = str(body.get("fault_name") or "").lower()
        share_types = set(_str_list(body.get("share_type"))) or None
        start = _fault_time(body.get("startTime"))
        end = _fault_time(body.get("endTime"))
        if status == "9" and start and end and (start.year, start.month) != (end.year, end.month):
            raise _RequestError("010")
        rows = []
        for fault in sorted(self.fleet.faults, key=lambda f: f.created, reverse=True):
            device = self.fleet.device(fault.ps_key)
            if device is None or fault.active != (status == "8"):
                continue
            owner = self.fleet.plant_of(device)
            created = owner.local_time(fault.created)
            if status == "9" and not start and not end:
                current = owner.local_time(call.now)
                if (created.year, created.month) != (current.year, current.month):
                    continue
            if ((fault_types and fault.fault_type not in fault_types)
                    or (levels and fault.fault_level not in levels)
                    or (plant and owner is not plant) or (ps_key and fault.ps_key != ps_key)
                    or (fault_code and fault.fault_id != fault_code)
                    or name not in fault.name.lower()
                    or (share_types and owner.share_type not in share_types)
                    or (start and created < start) or (end and created > end)):
                continue
            rows.append(self._fault_row(fault, device, owner))
        return _page(rows, body)

    @staticmethod
    def _fault_row(fault: Fault, device: Device, plant: Plant) -> Dict[str, Any]:
        return {
            "create_time": _local_text(plant, fault.created),
            "device_model_code": device.model_code, "device_name": device.name,
            "fault_code": fault.fault_id, "fault_desc": "", "fault_level": fault.fault_level,
            "fault_name": fault.name, "fault_type": fault.fault_type,
            "fault_type_code": fault.code,
            "over_time": "" if fault.closed is None else _local_text(plant, fault.closed),
            "process_status": 1 if fault.active else 9, "ps_id": plant.ps_id,
            "ps_key": fault.ps_key, "ps_name": plant.ps_name, "type_name": device.type_name,
            "uuid": device.uuid,
        }

    # -- 2.10 / 2.11 -------------------------------------------------------------------------
    def get_open_point_info(self, call: _Call) -> Dict[str, Any]:
        """2.10: the open points of a device type, from the portal tables."""
        body = call.body
        device_type = _int(_required(body, "device_type"))
        point_type = str(_required(body, "type")).strip()
        _paging(body)
        if device_type not in DEVICE_TYPE_NAMES or point_type not in ("1", "2", "5"):
            raise _RequestError("010")
        infos: Sequence[PointInfo]
        if point_type == "1":
            infos = remote_signal_points(device_type)
        elif point_type == "5":
            infos = PROPERTY_POINTS.get(device_type, ())
        else:
            infos = telemetry_points(device_type)
            if _present(body.get("device_model_id")):
                model_id = _int(body["device_model_id"])
                known = any(d.model_id == model_id and d.device_type == device_type
                            for d in self.fleet.devices())
                modelled = SOURCE_MAPS.get(device_type, {})
                infos = [p for p in infos if known and p.point_id in modelled]
        rows = []
        for info in infos:
            row: Dict[str, Any] = {"device_type": device_type, "open_point_remark": None,
                                   "point_id": info.point_id,
                                   "point_name": point_name(device_type, info.point_id)}
            if point_type != "1":
                row["show_unit"] = SHOW_UNITS.get(info.unit, info.unit)
                row["storage_unit"] = info.unit
            rows.append(row)
        return _page(rows, body)

    def get_dev_property_point_value(self, call: _Call) -> Dict[str, Any]:
        """2.11: property points (capacities, battery type) of devices of one plant."""
        body = call.body
        plant = self._plant_param(_required(body, "ps_id"))
        device_type = _int(_required(body, "device_type"))
        keys = _str_list(_required(body, "ps_key_list"))
        point_ids = _points(_required(body, "point_id_list"), prefixed=False)
        units = {p.point_id: p.unit for p in PROPERTY_POINTS.get(device_type, ())}
        values = []
        for key in keys:
            match = _PS_KEY.fullmatch(key)
            if (match is None or int(match.group(2)) != device_type
                    or int(match.group(1)) != plant.ps_id):
                raise _RequestError("010")
            device = self.fleet.device(key)
            if device is None:
                continue
            for pid in point_ids:
                if pid in device.properties:
                    values.append({"device_type": device_type, "property_code": str(pid),
                                   "property_value": device.properties[pid],
                                   "ps_key": device.ps_key, "unit": units.get(pid, ""),
                                   "uuid": device.uuid})
        return {"code": "1" if values else "4", "property_point_value_list": values}


# 2.6.4 and the 2.6.5 sample: the points getPVInverterRealTimeData always answers
PV_INVERTER_POINTS: Tuple[int, ...] = tuple(sorted(
    {1, 2, 4, 14, 24, 25, 26, 27, 43, 87, 88, 304}
    | set(range(5, 11)) | set(range(15, 24)) | set(range(45, 59)) | set(range(70, 80))
    | set(range(96, 106))))


def _periods(query_type: str, start_text: Any, end_text: Any) -> List[Period]:
    """The days, months or years between two times of 2.8, at most 100, 24 or 5 of them."""
    fmt, digits = {"1": ("%Y%m%d", 8), "2": ("%Y%m", 6), "3": ("%Y", 4)}[query_type]
    start = _parse_time(start_text, fmt, digits).date()
    end = _parse_time(end_text, fmt, digits).date()
    if end < start:
        raise _RequestError("010")
    periods: List[Period] = []
    if query_type == "1":
        if (end - start).days + 1 > MAX_PERIODS["1"]:
            raise _RequestError("010")
        for day in range(date_day(start), date_day(end) + 1):
            periods.append(Period(day_date(day).strftime("%Y%m%d"), day, day))
        return periods
    if query_type == "2":
        count = (end.year - start.year) * 12 + end.month - start.month + 1
        if count > MAX_PERIODS["2"]:
            raise _RequestError("010")
        year, month = start.year, start.month
        for _ in range(count):
            first = dt.date(year, month, 1)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            following = dt.date(year, month, 1)
            periods.append(Period(first.strftime("%Y%m"), date_day(first),
                                  date_day(following) - 1))
        return periods
    if end.year - start.year + 1 > MAX_PERIODS["3"]:
        raise _RequestError("010")
    for year in range(start.year, end.year + 1):
        periods.append(Period(str(year), date_day(dt.date(year, 1, 1)),
                              date_day(dt.date(year, 12, 31))))
    return periods


def _fault_time(value: Any) -> Optional[dt.datetime]:
    """``yyyyMMddHHmm`` (separators tolerated, as in the 2.9.5 sample) or nothing."""
    if not _present(value):
        return None
    digits = re.sub(r"\D", "", str(value))
    return _parse_time(digits, "%Y%m%d%H%M", 12)


# ---------------------------------------------------------------------------------------------
# the gateway
# ---------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the simulator; logs through :mod:`logging`."""

    protocol_version = "HTTP/1.1"
    server_version = "iSolarCloudSimulator/1.0"
    # headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every answer
    disable_nagle_algorithm = True
    sim: SimulatorServer

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        """Serve GET (``/timestamp``, ``/_sim/calls``)."""
        self.sim._serve(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        """Serve POST (``/openapi/...``, ``/_sim/...``)."""
        self.sim._serve(self, "POST")

    def do_DELETE(self) -> None:  # noqa: N802
        """Serve DELETE (``/_sim/faults/<id>``)."""
        self.sim._serve(self, "DELETE")

    def setup(self) -> None:
        """Register the connection so :meth:`SimulatorServer.stop` can close idle keep-alives."""
        super().setup()
        self.sim._track(self.connection, True)

    def finish(self) -> None:
        """Forget the connection again."""
        try:
            super().finish()
        finally:
            self.sim._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        """Route http.server's access log to debug logging."""
        logger.debug("%s " + format, self.address_string(), *args)


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer whose handler errors (clients hanging up) go to logging, not stderr."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed request at debug level; a vanished client is routine."""
        logger.debug("request from %s failed", client_address, exc_info=True)


class SimulatorServer:
    """A local iSolarCloud Open API gateway with a fleet, faults, limits and failure injection."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        encrypted: bool = False,
        fleet: Optional[Fleet] = None,
        credentials: Credentials = DEFAULT_CREDENTIALS,
        burst_capacity: int = 15,
        replenish_rate: float = 10,
        hourly_quota: int = 10000,
        timestamp_tolerance: float = 300.0,
        start_time: Optional[Instant] = None,
    ) -> None:
        self.host = host
        self.port = port
        self.encrypted = encrypted
        self.clock = SimClock(start_time)
        self.fleet = fleet if fleet is not None else Fleet.default(now=self.clock.now())
        self.credentials = credentials
        self.timestamp_tolerance = timestamp_tolerance
        self._private_key = RSA.generate(1024) if encrypted else None
        self.public_key: Optional[str] = (
            public_key_base64(self._private_key) if self._private_key else None)
        self._bucket = _TokenBucket(burst_capacity, replenish_rate)
        self._api = _OpenApi(self)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._hourly_quota = hourly_quota
        self._tokens: Dict[str, _Token] = {}
        self._connections: Set[socket.socket] = set()
        self._reset_state()

    def _reset_state(self) -> None:
        with self._lock:
            self._counts: Dict[str, int] = {}
            self._log: Deque[Tuple[str, Dict[str, str], Dict[str, Any]]] = deque(maxlen=2000)
            self._failures: Deque[_Failure] = deque()
            self.clock.reset()
            self._wrong_passwords = 0
            self._locked_until: Optional[float] = None
            self._admin_locked = False
            self._usage: Dict[Tuple[str, str, int], int] = {}
            self._nonces: Dict[str, float] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> SimulatorServer:
        """Bind and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("simulator already started")
        handler = type("SimulatorHandler", (_Handler,), {"sim": self})
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), handler)
        self.port = self._httpd.server_address[1]
        # a short poll interval makes stop() quick (tests start and stop many simulators)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="isolarcloud-simulator", daemon=True)
        self._thread.start()
        logger.info("iSolarCloud simulator listening on %s (encrypted=%s)", self.url,
                    self.encrypted)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; sleeping ``timeout`` failures wake up."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running simulator, e.g. ``http://127.0.0.1:54321``."""
        if self._httpd is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self.port}"

    # -- control surface ---------------------------------------------------------------------
    def now(self) -> float:
        """The plant clock (UTC epoch seconds): pinned by ``start_time``, plus any offset."""
        return self.clock.now()

    def set_time(self, when: Optional[Instant]) -> None:
        """Pin the plant clock to ``when`` (aware datetime or epoch seconds) from now on.

        It runs on at real speed; None makes it follow the wall clock again.
        """
        self.clock.pin(when)

    def fail_next(self, count: int, mode: str, code: Optional[str] = None,
                  delay: Optional[float] = None) -> None:
        """Make the next ``count`` Open API requests fail the way ``mode`` says."""
        if mode not in FAILURE_MODES:
            raise ValueError(f"mode must be one of {', '.join(FAILURE_MODES)}")
        if mode == "code" and not code:
            raise ValueError("mode 'code' needs a result code")
        failure = _Failure(mode, str(code) if code else None,
                           5.0 if delay is None else float(delay))
        with self._lock:
            self._failures.extend(failure for _ in range(int(count)))

    def expire_tokens(self) -> None:
        """Invalidate every issued token (the next call with one gets E00003)."""
        with self._lock:
            self._tokens.clear()

    def add_fault(self, ps_key: str, fault_code_int: int, name: str, *, fault_type: int = 1,
                  fault_level: int = 1) -> str:
        """Raise a fault or alarm on a device now; returns its ``fault_code`` id."""
        with self._lock:
            return self.fleet.add_fault(ps_key, fault_code_int, name, fault_type=fault_type,
                                        fault_level=fault_level, now=self.now())

    def clear_fault(self, fault_id: str) -> bool:
        """Close a fault (it moves to process_status 9 with an over_time)."""
        with self._lock:
            return self.fleet.clear_fault(fault_id, now=self.now())

    def call_counts(self) -> Dict[str, int]:
        """Requests per endpoint name, failed ones included."""
        with self._lock:
            return dict(self._counts)

    def reset_counts(self) -> None:
        """Zero the call counts and the request log."""
        with self._lock:
            self._counts.clear()
            self._log.clear()

    def reset(self) -> None:
        """Back to a fresh state: counts, log, failures, clock, locks, quota use, nonces."""
        self._reset_state()

    def set_clock_offset(self, seconds: float) -> None:
        """Run both clocks ahead (positive) or behind; readings and E913 follow it."""
        self.clock.set_offset(seconds)

    def set_quota(self, hourly: int) -> None:
        """Change the hourly call quota (E999 once used up)."""
        with self._lock:
            self._hourly_quota = int(hourly)

    def lock_account(self) -> None:
        """Lock the account as an administrator would (login_state 5)."""
        with self._lock:
            self._admin_locked = True

    def unlock_account(self) -> None:
        """Lift both kinds of lock and forget wrong passwords."""
        with self._lock:
            self._admin_locked = False
            self._locked_until = None
            self._wrong_passwords = 0

    @property
    def requests_log(self) -> List[Tuple[str, Dict[str, str], Dict[str, Any]]]:
        """(endpoint, lower-cased headers, decoded body) of recent requests, oldest first."""
        with self._lock:
            return list(self._log)

    # -- account and quota (used by the endpoints) ------------------------------------------
    def _login(self, account: str, password: str, call: _Call) -> Dict[str, Any]:
        creds = self.credentials
        result: Dict[str, Any] = dict.fromkeys(
            ("disable_time", "email", "err_times", "language", "mobile_tel", "remain_times",
             "token", "user_account", "user_id", "user_master_org_id", "user_master_org_name",
             "user_name"))
        if account != creds.username:
            result["login_state"] = "-1"
            return dict(sorted(result.items()))
        with self._lock:
            if self._locked_until is not None and call.now >= self._locked_until:
                self._locked_until, self._wrong_passwords = None, 0
            if self._admin_locked:
                state = "5"
            elif self._locked_until is not None:
                state = "2"
            elif password != creds.password:
                self._wrong_passwords += 1
                state = "0"
                if self._wrong_passwords >= MAX_WRONG_PASSWORDS:
                    self._locked_until = call.now + LOCK_SECONDS
                    state = "2"
            else:
                self._wrong_passwords = 0
                state = "1"
                token = f"{USER_ID}_{uuid.uuid4().hex}"
                if len(self._tokens) > 1000:
                    self._tokens = {t: v for t, v in self._tokens.items() if v.expires >= call.now}
                self._tokens[token] = _Token(call.appkey, call.now + TOKEN_LIFETIME)
                result["token"] = token
            wrong, locked_until = self._wrong_passwords, self._locked_until
        result.update({
            "login_state": state, "err_times": str(wrong),
            "remain_times": str(max(0, MAX_WRONG_PASSWORDS - wrong)),
            "email": "demo.owner@example.invalid",
            "language": "English" if call.lang == "_en_US" else "Chinese",
            "user_account": account, "user_id": USER_ID, "user_master_org_id": ORG_ID,
            "user_master_org_name": "Demo Installer Org", "user_name": "Demo Owner",
        })
        if locked_until is not None:
            result["disable_time"] = _utc(locked_until).strftime("%Y-%m-%d %H:%M:%S")
        return dict(sorted(result.items()))

    def _quota_report(self, appkey: str, now: float) -> Dict[str, Any]:
        moment = _utc(now)
        date = moment.strftime("%Y%m%d")
        with self._lock:
            quota = self._hourly_quota
            used = [self._usage.get((appkey, date, hour), 0) for hour in range(24)]
        return {
            "per_hour_access_times_config": [{"hour": str(h), "max_call_times": str(quota)}
                                             for h in range(24)],
            "per_day_access_times_config": str(quota * 24),
            "today_accessed_times": str(sum(used)),
            "curr_hour_accessed_times": str(used[moment.hour]),
            "per_hour_residue_times": [{"times": str(max(0, quota - used[h])), "hour": f"{h:02d}"}
                                       for h in range(24)],
        }

    # -- HTTP --------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length > 0 else b""
        path = urlsplit(handler.path).path
        if path.startswith("/_sim/"):
            status, payload = self._control(method, path, raw)
            self._write(handler, _Answer(status, json.dumps(payload).encode("utf-8")), {})
            return
        endpoint = path[len("/openapi/"):].strip("/") if path.startswith("/openapi/") else (
            path.strip("/") or "/")
        with self._lock:
            self._counts[endpoint] = self._counts.get(endpoint, 0) + 1
        headers = {k.lower(): v for k, v in handler.headers.items()}
        allowed, remaining = self._bucket.take()
        limits = {"X-Ratelimit-Burst-Capacity": str(self._bucket.capacity),
                  "X-Ratelimit-Remaining": str(remaining),
                  "X-Ratelimit-Replenish-Rate": _compact(self._bucket.rate)}
        answer = _Answer(429, content_type="text/plain") if not allowed else (
            self._injected(method, path, headers))
        if answer is None:
            answer = self._gateway(method, path, headers, raw)
        else:  # refused before the gateway looked at it: log what can be read of it
            with self._lock:
                self._log.append((endpoint, headers, self._readable_body(headers, raw)))
        self._write(handler, answer, limits)

    def _readable_body(self, headers: Dict[str, str], raw: bytes) -> Dict[str, Any]:
        """The request body for the log, decrypted when possible; {} when unreadable."""
        try:
            return self._decode(headers, raw)
        except _RequestError:
            return {}

    def _write(self, handler: BaseHTTPRequestHandler, answer: _Answer,
               extra: Dict[str, str]) -> None:
        if answer.drop:
            handler.close_connection = True
            return
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        handler.send_header("Content-Length", str(len(answer.body)))
        if answer.request_id:
            handler.send_header("X-Log-Requestid", answer.request_id)
        for name, value in extra.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(answer.body)

    def _injected(self, method: str, path: str, headers: Dict[str, str]) -> Optional[_Answer]:
        if not (method == "POST" and path.startswith("/openapi/")):
            return None
        with self._lock:
            if not self._failures:
                return None
            failure = self._failures.popleft()
        logger.debug("injecting failure %s into %s", failure.mode, path)
        if failure.mode in ("http500", "http503"):
            title = ("500 Internal Server Error" if failure.mode == "http500"
                     else "503 Service Temporarily Unavailable")
            return _Answer(int(failure.mode[4:]), _HTML_ERROR.format(title).encode("utf-8"),
                           "text/html")
        if failure.mode == "garbage":
            return _Answer(200, b"upstream connect error or disconnect/reset before headers",
                           "text/plain")
        if failure.mode == "timeout":
            self._stopping.wait(failure.delay)
            return _Answer(0, drop=True)
        if failure.mode == "ratelimit429":
            return _Answer(429, content_type="text/plain")
        return self._envelope_answer(_error(failure.code or "-1"), self._soft_key(headers))

    def _soft_key(self, headers: Dict[str, str]) -> Optional[str]:
        """The request's AES key, when the header decrypts to 16 characters."""
        secret = headers.get("x-random-secret-key")
        if not (self.encrypted and secret and self._private_key is not None):
            return None
        try:
            key = rsa_decrypt(secret, self._private_key)
        except CryptoError:
            return None
        return key if len(key) == 16 else None

    def _envelope_answer(self, envelope: Dict[str, Any], key: Optional[str]) -> _Answer:
        text = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))
        if key is not None:
            text = aes_encrypt_hex(text, key)
        return _Answer(200, text.encode("utf-8"), request_id=envelope["req_serial_num"])

    def _gateway(self, method: str, path: str, headers: Dict[str, str], raw: bytes) -> _Answer:
        now = self.now()
        if method == "GET" and path == "/timestamp":
            with self._lock:
                self._log.append(("timestamp", headers, {}))
            return self._envelope_answer(_success(str(int(self.clock.gateway_now() * 1000))),
                                         None)
        if method != "POST":
            return _Answer(404, b"", "text/plain")
        key = self._soft_key(headers)
        service = path[len("/openapi/"):].strip("/") if path.startswith("/openapi/") else ""
        body: Dict[str, Any] = {}
        try:
            handler = self._api.handlers.get(service)
            if handler is None:
                raise _RequestError("E996")
            access_key = headers.get("x-access-key")
            if not access_key:
                raise _RequestError("E911")
            if access_key not in self.credentials.apps().values():
                raise _RequestError("E912")
            body = self._decode(headers, raw)
            self._check_api_key_param(body, self.clock.gateway_now())
            call = self._authenticate(service, headers, body, access_key, now)
            result = handler(call)
            message = "success"
            if isinstance(result, tuple):
                result, message = result
            envelope = _success(result, message)
        except _RequestError as reject:
            envelope = _error(reject.code)
        finally:
            with self._lock:
                self._log.append((service or path, headers, body))
        if envelope["result_code"] != "1":
            logger.debug("%s -> %s", service or path, envelope["result_code"])
        return self._envelope_answer(envelope, key)

    def _decode(self, headers: Dict[str, str], raw: bytes) -> Dict[str, Any]:
        text = raw.decode("utf-8", errors="replace").strip()
        if not self.encrypted:
            try:
                body = json.loads(text) if text else {}
            except ValueError:
                raise _RequestError("010") from None
            if not isinstance(body, dict):
                raise _RequestError("010")
            return body
        if text.startswith("{"):
            raise _RequestError("E902")
        secret = headers.get("x-random-secret-key")
        if not secret:
            raise _RequestError("E904")
        assert self._private_key is not None
        try:
            key = rsa_decrypt(secret, self._private_key)
        except CryptoError:
            raise _RequestError("E906") from None
        if len(key) != 16:
            raise _RequestError("E907")
        try:
            body = json.loads(aes_decrypt_hex(text, key))
        except (CryptoError, ValueError):
            raise _RequestError("E905") from None
        if not isinstance(body, dict):
            raise _RequestError("E905")
        return body

    def _check_api_key_param(self, body: Dict[str, Any], now: float) -> None:
        param = body.get("api_key_param")
        if param is None and not self.encrypted:
            return
        if not isinstance(param, dict):
            raise _RequestError("E908")
        nonce = param.get("nonce")
        if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
            raise _RequestError("E909")
        with self._lock:
            if nonce in self._nonces:
                raise _RequestError("E910")
            try:
                stamp = int(str(param.get("timestamp")).strip())
            except ValueError:
                raise _RequestError("E913") from None
            if abs(stamp - now * 1000.0) > self.timestamp_tolerance * 1000.0:
                raise _RequestError("E913")
            if len(self._nonces) > 20000:
                horizon = now - 2 * self.timestamp_tolerance - 60
                self._nonces = {n: t for n, t in self._nonces.items() if t >= horizon}
            self._nonces[nonce] = now

    def _authenticate(self, service: str, headers: Dict[str, str], body: Dict[str, Any],
                      access_key: str, now: float) -> _Call:
        sys_code = headers.get("sys_code")
        if not sys_code:
            raise _RequestError("003")
        if sys_code.strip() != SYS_CODE:
            raise _RequestError("E994")
        appkey = body.get("appkey")
        if not _present(appkey):
            raise _RequestError("001")
        apps = self.credentials.apps()
        if appkey not in apps:
            raise _RequestError("E00000")
        if apps[appkey] != access_key:
            raise _RequestError("E914")
        moment = _utc(now)
        usage_key = (appkey, moment.strftime("%Y%m%d"), moment.hour)
        with self._lock:
            if self._usage.get(usage_key, 0) >= self._hourly_quota:
                raise _RequestError("E999")
            self._usage[usage_key] = self._usage.get(usage_key, 0) + 1
            if service != "login":
                token = body.get("token")
                if not _present(token):
                    raise _RequestError("002")
                issued = self._tokens.get(str(token))
                if issued is None or issued.appkey != appkey or issued.expires < now:
                    raise _RequestError("E00003")
                issued.expires = now + TOKEN_LIFETIME
        lang = headers.get("lang") or str(body.get("lang") or "") or "_zh_CN"
        return _Call(body=body, appkey=appkey, now=now, lang=lang)

    # -- HTTP control surface ----------------------------------------------------------------
    def _control(self, method: str, path: str, raw: bytes) -> Tuple[int, Any]:
        try:
            payload = json.loads(raw.decode("utf-8")) if raw.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("expected a JSON object")
            return self._control_action(method, path[len("/_sim/"):].strip("/"), payload)
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"error": str(exc)}

    def _control_action(self, method: str, action: str, payload: Dict[str, Any]
                        ) -> Tuple[int, Any]:
        if method == "GET" and action == "calls":
            return 200, self.call_counts()
        if method == "DELETE" and action.startswith("faults/"):
            closed = self.clear_fault(action[len("faults/"):])
            return (200 if closed else 404), {"closed": closed}
        if method != "POST":
            return 404, {"error": f"no control endpoint {method} /_sim/{action}"}
        if action == "faults":
            fault_id = self.add_fault(str(payload["ps_key"]), int(payload["code"]),
                                      str(payload["name"]),
                                      fault_type=int(payload.get("fault_type", 1)),
                                      fault_level=int(payload.get("fault_level", 1)))
            return 200, {"id": fault_id}
        actions: Dict[str, Callable[[], None]] = {
            "reset": self.reset,
            "reset-counts": self.reset_counts,
            "expire-tokens": self.expire_tokens,
            "lock-account": self.lock_account,
            "unlock-account": self.unlock_account,
            "fail": lambda: self.fail_next(int(payload.get("count", 1)), str(payload["mode"]),
                                           payload.get("code"), payload.get("delay")),
            "clock": lambda: self._set_clock(payload),
            "quota": lambda: self.set_quota(int(payload["hourly"])),
        }
        if action not in actions:
            return 404, {"error": f"no control endpoint POST /_sim/{action}"}
        actions[action]()
        return 200, {"ok": True}

    def _set_clock(self, payload: Dict[str, Any]) -> None:
        """``{"offset": seconds}`` and/or ``{"time": ISO 8601 or epoch seconds}``."""
        if "offset" not in payload and "time" not in payload:
            raise ValueError("expected 'offset' (seconds) or 'time' (ISO 8601 or epoch seconds)")
        if "time" in payload:
            self.set_time(parse_instant(str(payload["time"])))
        if "offset" in payload:
            self.set_clock_offset(float(payload["offset"]))


def _utc(ts: float) -> dt.datetime:
    """A naive UTC date-time for an epoch time (no deprecated utcfromtimestamp)."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=ts)


def _serial() -> str:
    return _utc(time.time()).strftime("%Y%m%d") + uuid.uuid4().hex[:24]


def _success(data: Any, message: str = "success") -> Dict[str, Any]:
    return {"req_serial_num": _serial(), "result_code": "1", "result_msg": message,
            "result_data": data}


def _error(code: str) -> Dict[str, Any]:
    name = RESULT_CODES[code][0] if code in RESULT_CODES else "error"
    return {"req_serial_num": _serial(), "result_code": code, "result_msg": name,
            "result_data": None}


def config_block(server: SimulatorServer) -> str:
    """The ``isolarcloud:`` YAML section that points sungrow2mqtt at a running simulator."""
    creds = server.credentials
    lines = [
        "isolarcloud:",
        f"  server: {server.url}",
        f"  appkey: {json.dumps(creds.appkey)}",
        f"  access_key: {json.dumps(creds.access_key)}",
        f"  username: {json.dumps(creds.username)}",
        f"  password: {json.dumps(creds.password)}",
    ]
    if server.public_key:
        lines.append(f"  rsa_public_key: {json.dumps(server.public_key)}")
    lines.append("  language: _en_US")
    return "\n".join(lines) + "\n"
