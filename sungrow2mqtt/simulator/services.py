"""The services of the Open API (section 2), over a fleet; the gateway has admitted the call.

Each service is a function of the :class:`World` (fleet, accounts, per-device switches) and the
:class:`~sungrow2mqtt.simulator.gateway.Call`, registered by name with :func:`service` in
:data:`SERVICES`.  Another module adds services the same way (``@service("paramSetting")``) and
is imported by :mod:`sungrow2mqtt.simulator` so they are registered before a request comes in.
A handler returns ``result_data``, or ``(result_data, result_msg)``; it raises
:class:`~sungrow2mqtt.simulator.gateway.RequestError` for a refusal.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from sungrow2mqtt.simulator.control import ControlSimulator
from sungrow2mqtt.simulator.fleet import DEVICE_TYPE_NAMES, Device, Fault, Fleet, Period, Plant
from sungrow2mqtt.simulator.gateway import ORG_ID, Call, Gateway, RequestError, present
from sungrow2mqtt.simulator.values import (
    PROPERTY_POINTS, SHOW_UNITS, SOURCE_MAPS, PointInfo, date_day, day_date, point_name,
    remote_signal_points, slot_datetime, telemetry_points,
)

MAX_DEVICES = 50
MAX_MINUTE_POINTS = 49
MAX_MINUTE_WINDOW = dt.timedelta(hours=3)
MAX_PERIODS = {"1": 100, "2": 24, "3": 5}
_PS_KEY = re.compile(r"(\d+)_(\d+)_(\d+)_(\d+)")
_POINT = re.compile(r"p(\d+)")


@dataclass
class World:
    """What the services read and change, one per simulator."""

    fleet: Fleet
    gateway: Gateway
    control: ControlSimulator                              # device parameters and their tasks
    extras: Dict[str, Any] = field(default_factory=dict)  # state of services added elsewhere
    missing_reading: Optional[str] = None                  # a realtime point without a reading


Handler = Callable[[World, Call], Any]
SERVICES: Dict[str, Handler] = {}


def service(name: str) -> Callable[[Handler], Handler]:
    """Register a handler as ``/openapi/<name>``."""
    def register(handler: Handler) -> Handler:
        SERVICES[name] = handler
        return handler
    return register


# ---------------------------------------------------------------------------------------------
# parameter helpers
# ---------------------------------------------------------------------------------------------


def _required(body: Dict[str, Any], name: str) -> Any:
    value = body.get(name)
    if not present(value):
        raise RequestError("009")
    return value


def _int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise RequestError("010") from None


def _str_list(value: Any) -> List[str]:
    """A List<String> parameter; a comma-separated string is accepted too."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise RequestError("010")
    out: List[str] = []
    for item in items:
        if isinstance(item, (dict, list)):
            raise RequestError("010")
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
        raise RequestError("010")
    return page, size


def _page(rows: List[Dict[str, Any]], body: Dict[str, Any]) -> Dict[str, Any]:
    page, size = _paging(body)
    return {"pageList": rows[(page - 1) * size:page * size], "rowCount": len(rows)}


def _points(value: Any, prefixed: bool) -> List[int]:
    out = []
    for item in _str_list(value):
        match = _POINT.fullmatch(item) if prefixed else re.fullmatch(r"\d+", item)
        if match is None:
            raise RequestError("010")
        out.append(int(match.group(1) if prefixed else item))
    return out


def compact(value: float, decimals: int = 3) -> str:
    """A number as the gateway writes it: at most ``decimals`` decimals, no trailing zeros."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _value_map(value: float, unit: str, big_unit: Optional[str] = None) -> Dict[str, str]:
    """``{"unit":..,"value":..}``; switches to ``big_unit`` (x1000) from 1000 on."""
    if big_unit and abs(value) >= 1000.0:
        return {"unit": big_unit, "value": compact(value / 1000.0)}
    return {"unit": unit, "value": compact(value)}


def _parse_time(text: Any, fmt: str, digits: int) -> dt.datetime:
    raw = str(text).strip()
    if not re.fullmatch(rf"\d{{{digits}}}", raw):
        raise RequestError("010")
    try:
        return dt.datetime.strptime(raw, fmt)
    except ValueError:
        raise RequestError("010") from None


def _local_text(plant: Plant, ts: float) -> str:
    return plant.local_time(ts).strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------------------------------------
# the services
# ---------------------------------------------------------------------------------------------


# -- 2.1 / 2.2 ---------------------------------------------------------------------------
@service("login")
def login(world: World, call: Call) -> Dict[str, Any]:
    """2.1: the login state and, on success, a 40-character token."""
    account = str(_required(call.body, "user_account"))
    password = str(_required(call.body, "user_password"))
    return world.gateway.login(account, password, call)


@service("getOpenApiCallInfo")
def get_open_api_call_info(world: World, call: Call) -> Dict[str, Any]:
    """2.2: the hourly quota and today's use, all as strings."""
    return world.gateway.quota_report(call.appkey, call.now)


# -- 2.3 / 2.4 ---------------------------------------------------------------------------
def _plant_figures(fleet: Fleet, plant: Plant, now: float) -> Dict[str, Any]:
    sample = fleet.sample(plant, now)
    today_kwh, total_kwh = sample.today["pv"] / 1000.0, sample.total["pv"] / 1000.0
    faults, alarms = fleet.fault_counts(plant)
    updated = plant.iso_time(slot_datetime(sample.day, sample.slot))
    figures: Dict[str, Any] = {
        "alarm_count": alarms,
        "fault_count": faults,
        "ps_fault_status": fleet.fault_status(d.ps_key for d in plant.devices),
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


def _plant_common(plant: Plant) -> Dict[str, Any]:
    return {
        "build_status": plant.build_status, "connect_type": plant.connect_type,
        "description": None, "install_date": plant.install_date,
        "latitude": plant.params.latitude, "longitude": plant.params.longitude,
        "ps_current_time_zone": plant.time_zone, "ps_id": plant.ps_id,
        "ps_location": plant.location, "ps_name": plant.ps_name, "ps_type": plant.ps_type,
        "share_type": plant.share_type,
    }


@service("getPowerStationList")
def get_power_station_list(world: World, call: Call) -> Dict[str, Any]:
    """2.3: the user's plants, filtered and paged."""
    body = call.body
    _paging(body)
    ps_types = _int_set(body.get("ps_type"))
    valid_flags = _int_set(body.get("valid_flag")) or {1}
    share_types = set(_str_list(body.get("share_type"))) or None
    name = str(body.get("ps_name") or "").lower()
    org_id = str(body.get("org_id") or "")
    rows = []
    for plant in world.fleet.plants:
        if ((ps_types and plant.ps_type not in ps_types)
                or plant.valid_flag not in valid_flags
                or (share_types and plant.share_type not in share_types)
                or name not in plant.ps_name.lower() or (org_id and org_id != ORG_ID)):
            continue
        row = _plant_common(plant)
        row.update(_plant_figures(world.fleet, plant, call.now))
        row["valid_flag"] = plant.valid_flag
        rows.append(dict(sorted(row.items())))
    return _page(rows, body)


def _plant_param(fleet: Fleet, value: Any) -> Plant:
    plant = fleet.plant(_int(value))
    if plant is None:
        raise RequestError("010")
    return plant


@service("getPowerStationDetail")
def get_power_station_detail(world: World, call: Call) -> Dict[str, Any]:
    """2.4: one plant by ps_id, or by the SN of one of its communication devices."""
    if present(call.body.get("ps_id")):
        plant = _plant_param(world.fleet, call.body["ps_id"])
    elif present(call.body.get("sn")):
        device = world.fleet.device_by_sn(str(call.body["sn"]))
        if device is None:
            raise RequestError("010")
        plant = world.fleet.plant_of(device)
    else:
        raise RequestError("009")
    row = _plant_common(plant)
    faults, alarms = world.fleet.fault_counts(plant)
    row.update({
        "alarm_count": alarms, "fault_count": faults,
        "communication_dev_detail_list": [{"is_enable": 1, "sn": sn}
                                          for sn in plant.communication_sns],
        "design_capacity": plant.params.pv_wp, "email": plant.email,
        "param_income_unit_name": plant.currency,
        "ps_fault_status": world.fleet.fault_status(d.ps_key for d in plant.devices),
        "ps_key": plant.ps_key, "ps_price": None,
        "ps_price_kwh": compact(plant.price_kwh), "ps_status": 1,
        "ps_type_name": plant.ps_type_name, "share_user_type": None,
        "user_moble_tel": None,
    })
    return dict(sorted(row.items()))


# -- 2.5 / 2.12 / 2.13 -------------------------------------------------------------------
def _device_row(fleet: Fleet, device: Device, firmware: bool, with_ps_id: bool) -> Dict[str, Any]:
    row: Dict[str, Any] = {
        "chnnl_id": device.chnnl_id, "communication_dev_sn": device.communication_dev_sn,
        "dev_fault_status": str(fleet.fault_status([device.ps_key])),
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


def _device_rows(fleet: Fleet, call: Call, devices: Sequence[Device],
                 with_ps_id: bool) -> Dict[str, Any]:
    body = call.body
    _paging(body)
    virtual = str(body.get("is_virtual_unit") or "0").strip()
    firmware = str(body.get("is_get_firmware_version") or "0").strip()
    if virtual not in ("0", "1") or firmware not in ("0", "1"):
        raise RequestError("010")
    types = _int_set(body.get("device_type_list"))
    rel_state = body.get("rel_state")
    rel = _int(rel_state) if present(rel_state) else None
    rows = [_device_row(fleet, d, firmware == "1", with_ps_id) for d in devices
            if d.virtual == (virtual == "1") and (not types or d.device_type in types)
            and (rel is None or d.rel_state == rel)]
    return _page(rows, body)


@service("getDeviceList")
def get_device_list(world: World, call: Call) -> Dict[str, Any]:
    """2.5: devices of one plant; plant-level devices only with ``is_virtual_unit`` 1."""
    plant = _plant_param(world.fleet, _required(call.body, "ps_id"))
    return _device_rows(world.fleet, call, plant.devices, with_ps_id=False)


@service("getDeviceListByUser")
def get_device_list_by_user(world: World, call: Call) -> Dict[str, Any]:
    """2.13: devices of all the user's plants (or of one)."""
    if present(call.body.get("ps_id")):
        devices = _plant_param(world.fleet, call.body["ps_id"]).devices
    else:
        devices = world.fleet.devices()
    return _device_rows(world.fleet, call, devices, with_ps_id=True)


@service("getCommunicationDevInfoByDevSn")
def get_communication_dev_info(world: World, call: Call) -> Optional[Dict[str, Any]]:
    """2.12: the communication device a device SN reports through."""
    device = world.fleet.device_by_sn(str(_required(call.body, "dev_sn")))
    if device is None:
        raise RequestError("010")
    module = device if device.device_type == 22 else (
        world.fleet.device_by_sn(device.communication_dev_sn or ""))
    if module is None:
        return None
    plant = world.fleet.plant_of(module)
    return {"device_model_code": module.model_code, "ps_id": plant.ps_id,
            "ps_key": module.ps_key, "ps_name": plant.ps_name, "sn": module.sn,
            "uuid": module.uuid}


# -- 2.6 / 2.14 --------------------------------------------------------------------------
def _realtime_targets(fleet: Fleet, body: Dict[str, Any],
                      device_type: int) -> Tuple[List[Device], Dict[str, List[str]]]:
    """The devices asked for, and ``{"fail_ps_key_list" or "fail_sn_list": what is unknown}``."""
    ps_keys = _str_list(body.get("ps_key_list"))
    sns = _str_list(body.get("sn_list"))
    if not ps_keys and not sns:
        raise RequestError("009")
    if len(ps_keys or sns) > MAX_DEVICES:
        raise RequestError("010")
    devices: List[Device] = []
    failed: List[str] = []
    if ps_keys:
        for key in ps_keys:
            match = _PS_KEY.fullmatch(key)
            if match is None or int(match.group(2)) != device_type:
                raise RequestError("010")
            device = fleet.device(key)
            if device is None or key in fleet.unserved:
                failed.append(key)
            else:
                devices.append(device)
        return devices, {"fail_ps_key_list": failed}
    for sn in sns:
        device = fleet.device_by_sn(sn)
        if device is not None and device.device_type == device_type:
            devices.append(device)
        else:
            failed.append(sn)
    return devices, {"fail_sn_list": failed}


def _device_points(world: World, devices: Sequence[Device], point_ids: Sequence[int],
                   failures: Dict[str, List[str]], now: float) -> Dict[str, Any]:
    fleet, entries = world.fleet, []
    for device in devices:
        plant = fleet.plant_of(device)
        point: Dict[str, Any] = {
            "communication_dev_sn": device.communication_dev_sn,
            "dev_fault_status": fleet.fault_status([device.ps_key]), "dev_status": 1,
            "device_name": device.name, "device_sn": device.sn,
            "device_time": fleet.device_time(plant, now), "ps_id": device.ps_id,
            "ps_key": device.ps_key, "uuid": device.uuid,
        }
        for pid, text in fleet.readings(device, point_ids, now).items():
            point[f"p{pid}"] = world.missing_reading if text is None else text
        entries.append({"device_point": dict(sorted(point.items()))})
    return {**failures, "device_point_list": entries}


@service("getPVInverterRealTimeData")
def get_pv_inverter_real_time_data(world: World, call: Call) -> Dict[str, Any]:
    """2.6: the fixed point set of PV inverters (type 1), unknown points null.

    Unknown SNs are listed in ``fail_sn_list`` (2.6.4); unknown ps_keys are left out.
    """
    devices, failures = _realtime_targets(world.fleet, call.body, 1)
    failures.pop("fail_ps_key_list", None)
    return _device_points(world, devices, PV_INVERTER_POINTS, failures, call.now)


@service("getDeviceRealTimeData")
def get_device_real_time_data(world: World, call: Call) -> Dict[str, Any]:
    """2.14: chosen points of devices of one type, by ps_key or by SN.

    Unknown SNs go to ``fail_sn_list`` (2.14.4), unknown ps_keys to ``fail_ps_key_list`` (the
    portal's sample and live answers), always present, empty when every key is known.
    """
    device_type = _int(_required(call.body, "device_type"))
    point_ids = _points(_required(call.body, "point_id_list"), prefixed=False)
    devices, failures = _realtime_targets(world.fleet, call.body, device_type)
    return _device_points(world, devices, point_ids, failures, call.now)


# -- 2.7 / 2.8 ---------------------------------------------------------------------------
def _history_devices(fleet: Fleet, body: Dict[str, Any]) -> Tuple[List[Device], List[str]]:
    keys = _str_list(_required(body, "ps_key_list"))
    if len(keys) > MAX_DEVICES:
        raise RequestError("010")
    devices, illegal = [], []
    for key in keys:
        device = fleet.device(key)
        if device is None:
            illegal.append(key)
        else:
            devices.append(device)
    if len({d.device_type for d in devices}) > 1:
        raise RequestError("010")
    return devices, illegal


def _history_message(illegal: List[str]) -> str:
    return "illegal device list:" + ",".join(illegal) if illegal else "success"


@service("getDevicePointMinuteDataList")
def get_device_point_minute_data_list(world: World, call: Call) -> Tuple[Dict[str, Any], str]:
    """2.7: 5-minute history (window at most 3 h, fewer than 50 points, 50 devices)."""
    body = call.body
    point_ids = _points(_required(body, "points"), prefixed=True)
    start = _parse_time(_required(body, "start_time_stamp"), "%Y%m%d%H%M%S", 14)
    end = _parse_time(_required(body, "end_time_stamp"), "%Y%m%d%H%M%S", 14)
    interval = 5
    if present(body.get("minute_interval")):
        interval = _int(body["minute_interval"])
    if (not point_ids or len(point_ids) > MAX_MINUTE_POINTS or end < start
            or end - start > MAX_MINUTE_WINDOW or interval < 1):
        raise RequestError("010")
    devices, illegal = _history_devices(world.fleet, body)
    data = {d.ps_key: world.fleet.minute_rows(d, point_ids, start, end, interval, call.now)
            for d in devices}
    return data, _history_message(illegal)


@service("getDevicePointsDayMonthYearDataList")
def get_device_points_day_month_year(world: World, call: Call) -> Tuple[Dict[str, Any], str]:
    """2.8: daily, monthly or yearly average/peak/valley/total per point."""
    body = call.body
    point_ids = _points(_required(body, "data_point"), prefixed=True)
    query_type = str(_required(body, "query_type")).strip()
    data_types = _str_list(_required(body, "data_type"))
    order = str(body.get("order") or "0").strip()
    if (query_type not in MAX_PERIODS or not point_ids or order not in ("0", "1")
            or not set(data_types) <= {"1", "2", "3", "4"}):
        raise RequestError("010")
    periods = _periods(query_type, _required(body, "start_time"), _required(body, "end_time"))
    devices, illegal = _history_devices(world.fleet, body)
    data = {}
    for device in devices:
        rows = world.fleet.period_rows(device, point_ids, periods, data_types, call.now)
        if order == "1":
            rows = {point: list(reversed(entries)) for point, entries in rows.items()}
        data[device.ps_key] = rows
    return data, _history_message(illegal)


# -- 2.9 ---------------------------------------------------------------------------------
@service("getFaultAlarmInfo")
def get_fault_alarm_info(world: World, call: Call) -> Dict[str, Any]:
    """2.9: faults and alarms, unclosed ones unless ``process_status`` is 9."""
    body = call.body
    _paging(body)
    status = str(body.get("process_status") or "8").strip()
    if status not in ("8", "9"):
        raise RequestError("010")
    fault_types = _int_set(body.get("fault_type"))
    levels = _int_set(body.get("fault_level"))
    plant = _plant_param(world.fleet, body["ps_id"]) if present(body.get("ps_id")) else None
    ps_key = str(body.get("ps_key") or "")
    fault_code = str(body.get("fault_code") or "")
    name = str(body.get("fault_name") or "").lower()
    share_types = set(_str_list(body.get("share_type"))) or None
    start = _fault_time(body.get("startTime"))
    end = _fault_time(body.get("endTime"))
    if status == "9" and start and end and (start.year, start.month) != (end.year, end.month):
        raise RequestError("010")
    rows = []
    for fault in sorted(world.fleet.faults, key=lambda f: f.created, reverse=True):
        device = world.fleet.device(fault.ps_key)
        if device is None or fault.active != (status == "8"):
            continue
        owner = world.fleet.plant_of(device)
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
        rows.append(_fault_row(fault, device, owner))
    return _page(rows, body)


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
@service("getOpenPointInfo")
def get_open_point_info(world: World, call: Call) -> Dict[str, Any]:
    """2.10: the open points of a device type, from the portal tables."""
    body = call.body
    device_type = _int(_required(body, "device_type"))
    point_type = str(_required(body, "type")).strip()
    _paging(body)
    if device_type not in DEVICE_TYPE_NAMES or point_type not in ("1", "2", "5"):
        raise RequestError("010")
    infos: Sequence[PointInfo]
    if point_type == "1":
        infos = remote_signal_points(device_type)
    elif point_type == "5":
        infos = PROPERTY_POINTS.get(device_type, ())
    else:
        infos = telemetry_points(device_type)
        if present(body.get("device_model_id")):
            model_id = _int(body["device_model_id"])
            known = any(d.model_id == model_id and d.device_type == device_type
                        for d in world.fleet.devices())
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


@service("getDevPropertyPointValue")
def get_dev_property_point_value(world: World, call: Call) -> Dict[str, Any]:
    """2.11: property points (capacities, battery type) of devices of one plant."""
    body = call.body
    plant = _plant_param(world.fleet, _required(body, "ps_id"))
    device_type = _int(_required(body, "device_type"))
    keys = _str_list(_required(body, "ps_key_list"))
    point_ids = _points(_required(body, "point_id_list"), prefixed=False)
    units = {p.point_id: p.unit for p in PROPERTY_POINTS.get(device_type, ())}
    values = []
    for key in keys:
        match = _PS_KEY.fullmatch(key)
        if (match is None or int(match.group(2)) != device_type
                or int(match.group(1)) != plant.ps_id):
            raise RequestError("010")
        device = world.fleet.device(key)
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
        raise RequestError("010")
    periods: List[Period] = []
    if query_type == "1":
        if (end - start).days + 1 > MAX_PERIODS["1"]:
            raise RequestError("010")
        for day in range(date_day(start), date_day(end) + 1):
            periods.append(Period(day_date(day).strftime("%Y%m%d"), day, day))
        return periods
    if query_type == "2":
        count = (end.year - start.year) * 12 + end.month - start.month + 1
        if count > MAX_PERIODS["2"]:
            raise RequestError("010")
        year, month = start.year, start.month
        for _ in range(count):
            first = dt.date(year, month, 1)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            following = dt.date(year, month, 1)
            periods.append(Period(first.strftime("%Y%m"), date_day(first),
                                  date_day(following) - 1))
        return periods
    if end.year - start.year + 1 > MAX_PERIODS["3"]:
        raise RequestError("010")
    for year in range(start.year, end.year + 1):
        periods.append(Period(str(year), date_day(dt.date(year, 1, 1)),
                              date_day(dt.date(year, 12, 31))))
    return periods


def _fault_time(value: Any) -> Optional[dt.datetime]:
    """``yyyyMMddHHmm`` (separators tolerated, as in the 2.9.5 sample) or nothing."""
    if not present(value):
        return None
    digits = re.sub(r"\D", "", str(value))
    return _parse_time(digits, "%Y%m%d%H%M", 12)


# -- parameter setting (control-api.md; the state is World.control) ----------------------------
@service("paramSettingCheck")
def param_setting_check(world: World, call: Call) -> Dict[str, Any]:
    """Whether a device's parameters may be set or read."""
    return world.control.param_setting_check(call)


@service("paramSetting")
def param_setting(world: World, call: Call) -> Dict[str, Any]:
    """Start a write or read-back task."""
    return world.control.param_setting(call)


@service("getParamSettingTask")
def get_param_setting_task(world: World, call: Call) -> Dict[str, Any]:
    """A task's state."""
    return world.control.get_param_setting_task(call)
