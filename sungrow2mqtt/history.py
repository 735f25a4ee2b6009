"""History series of one device from the 2.7/2.8 services, in the catalog's names and units.

Shared by the ``history`` MQTT request and the ``history`` CLI command.  A long download that the
cloud stops part way (the hourly quota runs out: a year of minute data is 2,650 calls) raises
:class:`HistoryStopped` with what arrived before, so nothing downloaded is lost.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from sungrow2mqtt.catalog import Catalog
from sungrow2mqtt.errors import Sungrow2MqttError
from sungrow2mqtt.isolarcloud.client import (
    HISTORY_QUERY_TYPES,
    MAX_MINUTE_WINDOW,
    IsolarCloudClient,
)
from sungrow2mqtt.isolarcloud.errors import ApiError
from sungrow2mqtt.model import Device, publishable

_MINUTE_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
                   "%Y%m%d%H%M%S", "%Y%m%d%H%M")
# interval -> (query_type, accepted input formats, API format, output format)
_PERIODS = {
    "day": (1, ("%Y-%m-%d", "%Y%m%d"), "%Y%m%d", "%Y-%m-%d"),
    "month": (2, ("%Y-%m", "%Y%m"), "%Y%m", "%Y-%m"),
    "year": (3, ("%Y",), "%Y", "%Y"),
}


class HistoryStopped(Sungrow2MqttError):
    """The cloud refused a window of a download after earlier ones came: ``partial`` holds
    them (the result's shape, fewer samples)."""

    def __init__(self, message: str, partial: Dict[str, Any]) -> None:
        super().__init__(message)
        self.partial = partial


def _parse(text: str, formats: Tuple[str, ...], field: str) -> dt.datetime:
    for fmt in formats:
        try:
            return dt.datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise ValueError(f"{field}: {text!r} does not match {' or '.join(formats)}"
                     .replace("%Y", "YYYY").replace("%m", "MM").replace("%d", "DD")
                     .replace("%H", "hh").replace("%M", "mm").replace("%S", "ss"))


def _in_order(first: dt.datetime, last: dt.datetime, start: str, end: str, *,
              minutes: bool = False) -> None:
    """A minute range needs two different times; a day, month or year range may be one.
    (One window's order is the client's check; a range must be checked before it is split.)"""
    if first > last or (minutes and first == last):
        raise ValueError(f"start: {start!r} must come before end {end!r}")


def fetch_history(client: IsolarCloudClient, catalog: Catalog, device: Device,
                  params: Mapping[str, Any]) -> Dict[str, Any]:
    """``{"series": {key: [{"time", "value"}]}, "points": {...}}`` for one device and interval.

    ``params``: points (ids), start, end, interval (minute/day/month/year), minute_interval.
    Raises ValueError when a window exceeds the document's limits (checked before calling).
    """
    interval = params["interval"]
    points = [str(p) for p in params["points"]]
    if interval == "minute":
        start = _parse(params["start"], _MINUTE_FORMATS, "start")
        end = _parse(params["end"], _MINUTE_FORMATS, "end")
        result = client.get_device_point_minute_data_list(
            [device.ps_key], points, start, end, int(params.get("minute_interval") or 5))
        rows = _rows(result.data.get(device.ps_key))
        raw = {p: [(r.get("time_stamp"), r.get(f"p{p}")) for r in rows if f"p{p}" in r]
               for p in points}
    else:
        query_type, formats, api_format, _ = _PERIODS[interval]
        start_text = _parse(params["start"], formats, "start").strftime(api_format)
        end_text = _parse(params["end"], formats, "end").strftime(api_format)
        data_type = HISTORY_QUERY_TYPES[query_type][2]
        result = client.get_device_points_day_month_year_data_list(
            [device.ps_key], points, start_text, end_text, query_type)
        by_point = result.data.get(device.ps_key)
        by_point = by_point if isinstance(by_point, dict) else {}
        raw = {p: [(r.get("time_stamp"), r.get(data_type)) for r in _rows(by_point.get(f"p{p}"))]
               for p in points}
    series: Dict[str, List[Dict[str, Any]]] = {}
    described: Dict[str, Dict[str, Any]] = {}
    for point in points:
        spec = catalog.get(device.device_type, int(point))
        name = spec.key if spec else f"p{point}"
        described[name] = {"point_id": int(point), "name": spec.name if spec else None,
                           "unit": spec.unit if spec else None}
        series[name] = [{"time": _time(stamp, interval, device), "value": _value(spec, value)}
                        for stamp, value in raw[point]]
    return {"ps_key": device.ps_key, "interval": interval, "points": described,
            "series": series}


def _rows(series: Any) -> List[Dict[str, Any]]:
    """The samples of a series; whatever else the cloud sent in its place is no sample."""
    return [row for row in series if isinstance(row, dict)] if isinstance(series, list) else []


def _time(stamp: Any, interval: str, device: Device) -> Optional[str]:
    text = publishable(str(stamp or ""))
    try:
        if interval == "minute":
            return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=device.tz).isoformat()
        _, _, api_format, out_format = _PERIODS[interval]
        return dt.datetime.strptime(text, api_format).strftime(out_format)
    except ValueError:
        return text or None


def _value(spec: Any, raw: Any) -> Any:
    if spec is not None:
        return publishable(spec.convert(raw))
    try:
        return float(raw)
    except (TypeError, ValueError):
        return None


def split_range(interval: str, start: str, end: str) -> List[Tuple[str, str]]:
    """Consecutive windows within the document's limits covering ``start``..``end``.

    For downloads longer than one call may ask for (3 h of minutes, 100 days, 24 months,
    5 years); the windows share no sample, so merged series have no duplicates. Raises
    ValueError for unreadable or reversed dates, so there is always at least one window.
    """
    if interval == "minute":
        first, last = _parse(start, _MINUTE_FORMATS, "start"), _parse(end, _MINUTE_FORMATS, "end")
        _in_order(first, last, start, end, minutes=True)
        windows = []
        while first < last:
            stop = min(first + MAX_MINUTE_WINDOW, last)
            windows.append((first.strftime("%Y%m%d%H%M%S"), stop.strftime("%Y%m%d%H%M%S")))
            first = stop + dt.timedelta(minutes=1)
        return windows
    query_type, formats, api_format, _ = _PERIODS[interval]
    limit = HISTORY_QUERY_TYPES[query_type][1]
    first, last = _parse(start, formats, "start"), _parse(end, formats, "end")
    _in_order(first, last, start, end)
    windows = []
    while first <= last:
        stop = min(_advance(first, interval, limit - 1), last)
        windows.append((first.strftime(api_format), stop.strftime(api_format)))
        first = _advance(stop, interval, 1)
    return windows


def _advance(moment: dt.datetime, interval: str, count: int) -> dt.datetime:
    if interval == "day":
        return moment + dt.timedelta(days=count)
    if interval == "month":
        months = moment.year * 12 + moment.month - 1 + count
        return moment.replace(year=months // 12, month=months % 12 + 1)
    return moment.replace(year=moment.year + count)


def fetch_history_range(client: IsolarCloudClient, catalog: Catalog, device: Device,
                        params: Mapping[str, Any],
                        progress: Callable[[int, int], None] = lambda done, total: None
                        ) -> Dict[str, Any]:
    """:func:`fetch_history` over any range, one window at a time, calling ``progress``.

    When the cloud refuses a window after earlier ones came, HistoryStopped carries those.
    """
    windows = split_range(params["interval"], params["start"], params["end"])
    merged: Dict[str, Any] = {}
    for number, (start, end) in enumerate(windows, 1):
        try:
            part = fetch_history(client, catalog, device, {**params, "start": start, "end": end})
        except ApiError as exc:
            if not merged:
                raise
            raise HistoryStopped(f"stopped after window {number - 1} of {len(windows)}: {exc}",
                                 merged) from exc
        if not merged:
            merged = part
        else:
            for key, rows in part["series"].items():
                merged["series"][key].extend(rows)
        progress(number, len(windows))
    return merged
