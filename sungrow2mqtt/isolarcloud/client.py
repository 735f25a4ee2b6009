"""The 14 services of the Open API document as typed methods returning plain Python data.

Each method checks the document's parameter limits *before* calling (``ValueError`` naming the
limit), pages list services to the end, splits oversized requests into the fewest calls and merges
the answers.  Independent calls (realtime chunks, pages 2..n) run together on a small pool; the
client is thread-safe.

The token is obtained once, kept (optionally in a :class:`TokenStore`) and renewed once when the
gateway refuses it (``E900`` or ``E00003``); ``E900`` on a token just issued means the appkey may
not call that API, which is then held back for a while (:meth:`denied_apis`).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import (
    Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, TypeVar,
    Union,
)

from sungrow2mqtt.isolarcloud.concurrency import CallPool
from sungrow2mqtt.isolarcloud.errors import (
    LOCKED_STATES, LOGIN_STATES, AccountLocked, ApiError, ApiNotAuthorised, AuthError, LoginError,
)
from sungrow2mqtt.isolarcloud.ps_key import PsKey
from sungrow2mqtt.isolarcloud.token_store import TokenStore
from sungrow2mqtt.isolarcloud.transport import Response, Transport
from sungrow2mqtt.secret import Secret, register

log = logging.getLogger(__name__)

MAX_DEVICES_PER_CALL = 50          # 2.7 / 2.8: "the maximum number of device is 50"
MAX_MINUTE_POINTS_PER_CALL = 49    # 2.7: "the number of points ... should be less than 50"
MAX_MINUTE_WINDOW = dt.timedelta(hours=3)   # 2.7
REALTIME_POINTS_PER_CALL = 100     # 2.14 names no limit; a bounded chunk keeps requests small
PAGE_SIZE = 100                    # the document names no page-size limit
# A guard against a server that never reports the end: 100 pages are 10,000 rows, three times the
# largest account seen (3,000 devices), while each page costs one call of an hourly quota of a few
# hundred to a few thousand; 1,000 pages would spend a whole hour's quota on one lying list.
MAX_PAGES = 100
# 2.8: day 100 days, month 24 months, year 5 years; query_type -> (name, limit, default data_type)
HISTORY_QUERY_TYPES = {1: ("day", 100, "2"), 2: ("month", 24, "4"), 3: ("year", 5, "4")}
POINT_TYPES = {1: "remote signaling", 2: "telemetry", 5: "property"}
# The live gateway refuses a dead or unknown token with E900 "Unauthorized access", the document
# says E00003; E900 also means "this appkey may not call this API" (README, live gateway quirks).
TOKEN_REFUSED = frozenset({"E900", "E00003"})
# A token our own login issued this long ago, that has not yet served a call, cannot have died of
# age: E900 on it means the API is not authorised rather than the token being dead.
FRESH_TOKEN_SECONDS = 60.0
DENIED_FOR = 3600.0                # how long an API refused with E900 is not called again
# Calls in flight at once: a 100-device refresh (one call per device type and 50-device chunk,
# plus the fault query) in one round trip; beyond the gateway's burst (15) calls only queue at
# the bucket.
MAX_WORKERS = 8
NOT_AUTHORISED_ADVICE = "enable it for your application on the developer portal"

T = TypeVar("T")
Row = Dict[str, Any]
Params = Dict[str, Any]


@dataclass
class RealtimeResult:
    """Realtime answer: one ``device_point`` map per device, plus the SNs and ps_keys the server
    could not serve (the live gateway names bad ps_keys in ``fail_ps_key_list``)."""

    devices: List[Row] = field(default_factory=list)
    fail_sn_list: List[str] = field(default_factory=list)
    fail_ps_key_list: List[str] = field(default_factory=list)

    def by_ps_key(self) -> Dict[str, Row]:
        """The device maps keyed by ps_key."""
        return {str(d.get("ps_key")): d for d in self.devices}

    def extend(self, other: "RealtimeResult") -> None:
        """Add the result of other devices (another type or chunk)."""
        self.devices.extend(other.devices)
        for failed, more in ((self.fail_sn_list, other.fail_sn_list),
                             (self.fail_ps_key_list, other.fail_ps_key_list)):
            failed.extend(item for item in more if item not in failed)


@dataclass
class HistoryResult:
    """History answer: series per ps_key (per point for day/month/year), plus illegal ps_keys."""

    data: Dict[str, Any] = field(default_factory=dict)
    illegal_ps_keys: List[str] = field(default_factory=list)


def device_type_of(ps_key: str) -> int:
    """The device type encoded in a ps_key; ValueError for a malformed one.  A PsKey (the
    bridge's devices) was checked when it was made: checking it again per poll costs ~1 ms at
    1,000 devices."""
    return (ps_key if isinstance(ps_key, PsKey) else PsKey(ps_key)).device_type


def chunks(items: Sequence[T], size: int) -> Iterator[List[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _point_ids(points: Iterable[Union[int, str]]) -> List[str]:
    """Point ids as the bare digits the realtime service wants (``p13011`` or 13011 -> '13011')."""
    ids = []
    for point in points:
        text = str(point).strip()
        text = text[1:] if text[:1] in "pP" else text
        if not text.isdigit():
            raise ValueError(f"point id {point!r} is not a number (like 13011 or p13011)")
        if text not in ids:
            ids.append(text)
    if not ids:
        raise ValueError("at least one point id is required")
    return ids


def _parse_illegal(message: str) -> List[str]:
    """ps_keys named in a 2.7/2.8 ``result_msg`` like ``illegal device list:a,b``."""
    if ":" not in message or "illegal" not in message.lower():
        return []
    return [key.strip() for key in message.split(":", 1)[1].split(",") if key.strip()]


class IsolarCloudClient:
    """A logged-in view of one iSolarCloud account through the Open API."""

    def __init__(
        self,
        transport: Transport,
        username: str,
        password: Union[str, Secret],
        *,
        token_store: Optional[TokenStore] = None,
        page_size: int = PAGE_SIZE,
        max_workers: int = MAX_WORKERS,
        denied_for: float = DENIED_FOR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= max_workers <= transport.pool_size:
            raise ValueError(f"max_workers must be 1..{transport.pool_size} (the transport's "
                             f"connection pool), got {max_workers}")
        self.transport = transport
        self.username = username
        self._password = password if isinstance(password, Secret) else Secret(password)
        self._token_store = token_store
        self.page_size = page_size
        self.denied_for = denied_for
        self._clock = clock
        self.user: Row = {}
        self._login_lock = threading.RLock()      # one login at a time, however many callers
        self._state_lock = threading.Lock()       # guards the three fields below
        self._token: Optional[str] = None
        self._fresh: Optional[Tuple[str, float]] = None   # our login's token until it serves
        self._served: Optional[Tuple[str, float]] = None  # the token of the last answered call
        self._denied: Dict[str, Tuple[float, dt.datetime]] = {}   # API -> (clock, UTC) until
        self._pool = CallPool(max_workers)

    def __repr__(self) -> str:
        return f"IsolarCloudClient({self.transport!r}, username={self.username!r})"

    def close(self) -> None:
        """Start no more calls and release the HTTP connections."""
        self._pool.close()
        self.transport.close()

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> "Future[T]":
        """Run ``fn(*args, **kwargs)`` (a service method, say) on the client's pool, so that
        independent jobs (the fault query beside the realtime wave) overlap."""
        return self._pool.submit(fn, *args, **kwargs)

    # -- token ------------------------------------------------------------------------------

    def login(self) -> Row:
        """2.1 /openapi/login: authenticate, keep the token, return the user info (no token)."""
        with self._login_lock:
            response = self.transport.call("login", {"user_account": self.username,
                                                     "user_password": self._password.reveal(),
                                                     "login_type": "1"})   # appendix 7
            data = response.data if isinstance(response.data, dict) else {}
            token = _login_token(data, response.req_serial_num)
            register(token)
            with self._state_lock:
                self._token, self._fresh = token, (token, self._clock())
            if self._token_store:
                self._token_store.save(token)
            self.user = {k: v for k, v in data.items() if k != "token"}
            log.info("Logged in to %s", self.transport.base_url)
            return self.user

    def _token_for_call(self) -> Tuple[str, bool]:
        """The token to call with (stored or from a login) and whether our login just issued it."""
        with self._state_lock:
            token = self._token
        if token is None:
            with self._login_lock:        # callers arriving together cause one login
                with self._state_lock:
                    token = self._token
                if token is None and self._token_store:
                    token = self._token_store.load()
                    if token:
                        log.debug("Reusing the stored token")
                        with self._state_lock:
                            self._token = token
                if token is None:
                    self.login()
        with self._state_lock:
            token = self._token
            assert token is not None
            fresh = (self._fresh is not None and self._fresh[0] == token
                     and self._clock() - self._fresh[1] < FRESH_TOKEN_SECONDS)
        return token, fresh

    def _renew(self, dead: str, service: str, code: str) -> str:
        """A token in place of ``dead``: one login, however many calls saw it refused at once."""
        with self._login_lock:
            with self._state_lock:
                current = self._token
            if current is not None and current != dead:
                return current            # another call has logged in already
            log.info("%s: token refused (%s); logging in again", service, code)
            if self._token_store:
                self._token_store.clear()
            self.login()
            with self._state_lock:
                assert self._token is not None
                return self._token

    def call(self, service: str, params: Mapping[str, Any], *, idempotent: bool = True
             ) -> Response:
        """Call ``service`` with the token; thread-safe.

        ``idempotent=False`` (a write) is never sent twice once it may have reached the gateway
        (see :meth:`Transport.call`); a refused token is still renewed and the call repeated,
        since the gateway refused it before doing anything.
        A refused token (E900/E00003) that was not just issued costs one login and one repeat.
        E900 on a token just issued means this appkey may not call ``service``: ApiNotAuthorised,
        and ``service`` is refused here without a call for ``denied_for`` seconds; tried again
        after that, E900 while the token answers other calls denies it again without a login.
        """
        self._raise_if_denied(service)
        token, fresh = self._token_for_call()
        try:
            response = self.transport.call(service, params, token, idempotent=idempotent)
        except AuthError as exc:
            if exc.result_code not in TOKEN_REFUSED:
                raise
            if fresh or (exc.result_code == "E900" and self._denied_again(service, token)):
                raise self._refused_fresh(service, exc) from None
            token = self._renew(token, service, str(exc.result_code))
            try:
                response = self.transport.call(service, params, token, idempotent=idempotent)
            except AuthError as again:
                if again.result_code not in TOKEN_REFUSED:
                    raise
                raise self._refused_fresh(service, again) from None
        with self._state_lock:
            if self._fresh is not None and self._fresh[0] == token:
                self._fresh = None        # the token has served: from now on it may die
            self._served = (token, self._clock())
            self._denied.pop(service, None)
        return response

    # -- APIs this appkey may not call ------------------------------------------------------

    def denied_apis(self) -> Dict[str, dt.datetime]:
        """APIs refused with E900 on a fresh token, with the UTC time they are tried again."""
        with self._state_lock:
            now = self._clock()
            return {api: retry_at for api, (until, retry_at) in self._denied.items()
                    if until > now}

    def _denied_again(self, service: str, token: str) -> bool:
        """E900 from an API denied before, on a token that has just answered another call: the
        API is still not authorised, and a login would not tell anything new."""
        with self._state_lock:
            return (service in self._denied and self._served is not None
                    and self._served[0] == token
                    and self._clock() - self._served[1] < FRESH_TOKEN_SECONDS)

    def _refused_fresh(self, service: str, exc: AuthError) -> ApiError:
        """A token just issued was refused: E900 means the API is not authorised."""
        if exc.result_code != "E900":
            return exc
        retry_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=self.denied_for)
        with self._state_lock:
            now = self._clock()
            known = self._denied.get(service)
            first = known is None or known[0] <= now
            self._denied[service] = (now + self.denied_for, retry_at)
        error = _not_authorised(service, retry_at, exc.req_serial_num)
        if first:
            log.warning("%s", error)
        return error

    def _raise_if_denied(self, service: str) -> None:
        with self._state_lock:     # an expired entry stays: the API was denied before
            known = self._denied.get(service)
        if known is not None and known[0] > self._clock():
            raise _not_authorised(service, known[1], None)

    def _page(self, service: str, params: Mapping[str, Any], page: int) -> Tuple[List[Row], int]:
        """One page's rows and the ``rowCount`` it reports (0 when missing or garbage)."""
        data = self.call(service, {**params, "curPage": page, "size": self.page_size}).data
        data = data if isinstance(data, dict) else {}
        batch = data.get("pageList")
        rows = [row for row in batch if isinstance(row, dict)] if isinstance(batch, list) else []
        try:
            total = int(data.get("rowCount") or 0)
        except (TypeError, ValueError, OverflowError):
            total = 0
        return rows, total

    def _pages(self, service: str, params: Mapping[str, Any]) -> List[Row]:
        """Every row of a paged service: page 1, then pages 2..n together once ``rowCount`` is
        known.  The list ends at a short or empty page, at a page seen before (a server that
        ignores curPage) and at MAX_PAGES."""
        rows, total = self._page(service, params, 1)
        if len(rows) < self.page_size or total <= len(rows):
            return rows
        wanted = -(-total // self.page_size)
        paging = _Paging(lambda page: self._page(service, params, page)[0], rows,
                         min(wanted, MAX_PAGES))
        with contextlib.closing(self._pool.completed(paging.fetch, range(2, paging.end))) as done:
            for _ in done:
                if paging.complete():
                    break
        if paging.repeated_at == paging.end:
            log.warning("%s: page %d repeats an earlier page (the server ignores curPage); "
                        "keeping the %d pages before it", service, paging.end, paging.end - 1)
        elif wanted > MAX_PAGES and paging.end > MAX_PAGES:
            log.warning("%s: stopped after %d pages of %d", service, MAX_PAGES, wanted)
        return paging.rows()

    # -- services ---------------------------------------------------------------------------

    def get_open_api_call_info(self) -> Row:
        """2.2: the account's call quota (per hour and day) and what is used."""
        data = self.call("getOpenApiCallInfo", {}).data
        return data if isinstance(data, dict) else {}

    def get_power_station_list(self, *, ps_type: Optional[str] = None,
                               valid_flag: Optional[str] = None, ps_name: Optional[str] = None,
                               org_id: Optional[str] = None, share_type: Optional[str] = None
                               ) -> List[Row]:
        """2.3: every plant of the account (all pages)."""
        params = _present(ps_type=ps_type, valid_flag=valid_flag, ps_name=ps_name,
                          org_id=org_id, share_type=share_type)
        return self._pages("getPowerStationList", params)

    def get_power_station_detail(self, ps_id: Union[int, str, None] = None,
                                 sn: Optional[str] = None) -> Row:
        """2.4: one plant's details, by ps_id or by a communication device SN."""
        if ps_id in (None, "") and not sn:
            raise ValueError("getPowerStationDetail needs ps_id or sn")
        data = self.call("getPowerStationDetail", _present(ps_id=_str(ps_id), sn=sn)).data
        return data if isinstance(data, dict) else {}

    def _device_list_params(self, device_types: Optional[Iterable[int]], virtual: bool,
                            rel_state: Optional[int], firmware: bool) -> Dict[str, Any]:
        params: Dict[str, Any] = {"is_virtual_unit": "1" if virtual else "0",
                                  "is_get_firmware_version": "1" if firmware else "0"}
        if device_types:
            params["device_type_list"] = [str(t) for t in device_types]
        if rel_state is not None:
            params["rel_state"] = str(rel_state)
        return params

    def get_device_list(self, ps_id: Union[int, str], *,
                        device_types: Optional[Iterable[int]] = None,
                        virtual: bool = False, rel_state: Optional[int] = None,
                        firmware: bool = True) -> List[Row]:
        """2.5: devices of a plant (``virtual`` lists the plant and other virtual devices)."""
        params = self._device_list_params(device_types, virtual, rel_state, firmware)
        return self._pages("getDeviceList", {"ps_id": _str(ps_id), **params})

    def get_device_list_by_user(self, ps_id: Union[int, str, None] = None, *,
                                device_types: Optional[Iterable[int]] = None,
                                virtual: bool = False, rel_state: Optional[int] = None,
                                firmware: bool = True) -> List[Row]:
        """2.13: devices of every plant of the account in one paged listing."""
        params = self._device_list_params(device_types, virtual, rel_state, firmware)
        return self._pages("getDeviceListByUser", {**_present(ps_id=_str(ps_id)), **params})

    def get_communication_dev_info_by_dev_sn(self, dev_sn: str) -> Row:
        """2.12: the communication device a device SN reports through."""
        if not dev_sn:
            raise ValueError("getCommunicationDevInfoByDevSn needs dev_sn")
        data = self.call("getCommunicationDevInfoByDevSn", {"dev_sn": dev_sn}).data
        return data if isinstance(data, dict) else {}

    def get_pv_inverter_real_time_data(self, ps_keys: Sequence[str] = (),
                                       sns: Sequence[str] = ()) -> RealtimeResult:
        """2.6: realtime points of PV inverters by ps_key (preferred) or SN, 50 per call."""
        key, items = _keys_or_sns(ps_keys, sns)
        return self._realtime("getPVInverterRealTimeData",
                              [[{key: chunk}] for chunk in chunks(items, MAX_DEVICES_PER_CALL)])

    def get_device_real_time_data(self, device_type: int, point_ids: Iterable[Union[int, str]],
                                  ps_keys: Sequence[str] = (), sns: Sequence[str] = ()
                                  ) -> RealtimeResult:
        """2.14: realtime points of devices of one type, in the fewest 50-device/point chunks."""
        key, items = _keys_or_sns(ps_keys, sns)
        if key == "ps_key_list":
            wrong = [k for k in items if device_type_of(k) != int(device_type)]
            if wrong:
                raise ValueError(f"getDeviceRealTimeData takes devices of one type; {wrong[0]} is "
                                 f"not of device_type {device_type} (use get_real_time_data)")
        return self._realtime("getDeviceRealTimeData",
                              _realtime_chunks(device_type, key, items, point_ids))

    def get_real_time_data(self, ps_keys: Iterable[str],
                           points_by_type: Mapping[int, Iterable[Union[int, str]]]
                           ) -> RealtimeResult:
        """Realtime points of devices of mixed types: every 2.14 chunk of every type at once."""
        return self._realtime("getDeviceRealTimeData", _mixed_chunks(ps_keys, points_by_type))

    def iter_real_time_data(self, ps_keys: Iterable[str],
                            points_by_type: Mapping[int, Iterable[Union[int, str]]]
                            ) -> Iterator[RealtimeResult]:
        """As :meth:`get_real_time_data`, but one result per chunk of at most 50 devices of one
        type, as soon as that chunk's calls are back, so its devices can be published while
        the other chunks are still on their way.  Arguments are checked before any call."""
        groups = _mixed_chunks(ps_keys, points_by_type)
        return (part for _, part in self._realtime_parts("getDeviceRealTimeData", groups))

    def _realtime_parts(self, service: str, groups: List[List[Params]]
                        ) -> Iterator[Tuple[int, RealtimeResult]]:
        """(group, merged answer) per group of calls, as each group completes; all calls at once."""
        calls = [(group, params) for group, group_calls in enumerate(groups)
                 for params in group_calls]
        waiting = {group: len(group_calls) for group, group_calls in enumerate(groups)}
        parts = {group: RealtimeResult() for group in waiting}
        results = self._pool.completed(lambda call: self.call(service, call[1]).data, calls)
        try:
            for (group, _), data in results:
                _merge_realtime(parts[group], data)
                waiting[group] -= 1
                if not waiting[group]:
                    yield group, parts.pop(group)
        finally:
            results.close()

    def _realtime(self, service: str, groups: List[List[Params]]) -> RealtimeResult:
        parts = dict(self._realtime_parts(service, groups))
        result = RealtimeResult()
        for group in sorted(parts):
            result.extend(parts[group])
        return result

    def get_device_point_minute_data_list(
        self, ps_keys: Sequence[str], points: Iterable[Union[int, str]], start: dt.datetime,
        end: dt.datetime, minute_interval: int = 5,
    ) -> HistoryResult:
        """2.7: 5-minute samples, window at most 3 hours; split per 50 devices / 49 points.

        ``start``/``end`` are in the plant's local time, as the service expects.
        """
        if end <= start:
            raise ValueError("getDevicePointMinuteDataList: end must be after start")
        if end - start > MAX_MINUTE_WINDOW:
            raise ValueError(f"getDevicePointMinuteDataList: the window may be at most 3 hours, "
                             f"got {end - start}")
        if not 1 <= int(minute_interval) <= 180:
            raise ValueError("getDevicePointMinuteDataList: minute_interval must be 1-180 minutes")
        keys = _same_type(ps_keys, "getDevicePointMinuteDataList")
        ids = ["p" + p for p in _point_ids(points)]
        result = HistoryResult()
        for key_chunk in chunks(keys, MAX_DEVICES_PER_CALL):
            for point_chunk in chunks(ids, MAX_MINUTE_POINTS_PER_CALL):
                response = self.call("getDevicePointMinuteDataList", {
                    "ps_key_list": key_chunk, "points": ",".join(point_chunk),
                    "start_time_stamp": start.strftime("%Y%m%d%H%M%S"),
                    "end_time_stamp": end.strftime("%Y%m%d%H%M%S"),
                    "minute_interval": str(int(minute_interval))})
                _merge_minute(result, response)
        for rows in result.data.values():
            rows.sort(key=lambda row: str(row.get("time_stamp")))
        return result

    def get_device_points_day_month_year_data_list(
        self, ps_keys: Sequence[str], points: Iterable[Union[int, str]], start: str, end: str,
        query_type: int, data_type: Optional[str] = None, order: int = 0,
    ) -> HistoryResult:
        """2.8: daily/monthly/yearly values within the document's span (100 d / 24 m / 5 y).

        ``start``/``end`` are ``yyyyMMdd``, ``yyyyMM`` or ``yyyy`` for query_type 1, 2, 3.
        """
        if int(query_type) not in HISTORY_QUERY_TYPES:
            raise ValueError("getDevicePointsDayMonthYearDataList: query_type must be 1 (day), "
                             "2 (month) or 3 (year)")
        name, limit, default_data_type = HISTORY_QUERY_TYPES[int(query_type)]
        span = _span(start, end, int(query_type))
        if span > limit:
            raise ValueError(f"getDevicePointsDayMonthYearDataList: a {name} query may span at "
                             f"most {limit} {name}s, got {span}")
        keys = _same_type(ps_keys, "getDevicePointsDayMonthYearDataList")
        ids = ",".join("p" + p for p in _point_ids(points))
        result = HistoryResult()
        for key_chunk in chunks(keys, MAX_DEVICES_PER_CALL):
            response = self.call("getDevicePointsDayMonthYearDataList", {
                "ps_key_list": key_chunk, "data_point": ids, "start_time": start,
                "end_time": end, "data_type": data_type or default_data_type,
                "query_type": str(int(query_type)), "order": str(int(order))})
            if isinstance(response.data, dict):
                result.data.update(response.data)
            result.illegal_ps_keys.extend(_parse_illegal(response.message))
        return result

    def get_fault_alarm_info(
        self, *, ps_id: Union[int, str, None] = None, ps_key: Optional[str] = None,
        process_status: Optional[int] = None, fault_type: Optional[str] = None,
        fault_level: Optional[str] = None, start: Optional[dt.datetime] = None,
        end: Optional[dt.datetime] = None, fault_code: Optional[str] = None,
        fault_name: Optional[str] = None, share_type: Optional[str] = None,
    ) -> List[Row]:
        """2.9: faults and alarms (unclosed by default) of one plant/device or of all plants."""
        if process_status not in (None, 8, 9):
            raise ValueError("getFaultAlarmInfo: process_status must be 8 (active) or 9 (closed)")
        if process_status == 9 and start and end and (start.year, start.month) != (end.year,
                                                                                    end.month):
            raise ValueError("getFaultAlarmInfo: closed faults cannot be queried across months")
        params = _present(ps_id=_str(ps_id), ps_key=ps_key, fault_type=fault_type,
                          fault_level=fault_level, fault_code=fault_code, fault_name=fault_name,
                          share_type=share_type,
                          process_status=_str(process_status),
                          startTime=start.strftime("%Y%m%d%H%M") if start else None,
                          endTime=end.strftime("%Y%m%d%H%M") if end else None)
        return self._pages("getFaultAlarmInfo", params)

    def get_open_point_info(self, device_type: int, point_type: int = 2,
                            device_model_id: Union[int, str, None] = None) -> List[Row]:
        """2.10: the open points of a device type (1 signaling, 2 telemetry, 5 property)."""
        if int(point_type) not in POINT_TYPES:
            raise ValueError("getOpenPointInfo: type must be 1 (remote signaling), 2 (telemetry) "
                             "or 5 (property)")
        params = _present(device_type=str(device_type), type=str(point_type),
                          device_model_id=_str(device_model_id))
        return self._pages("getOpenPointInfo", params)

    def get_dev_property_point_value(self, ps_id: Union[int, str], device_type: int,
                                     ps_keys: Sequence[str], point_ids: Iterable[Union[int, str]]
                                     ) -> Row:
        """2.11: property points (capacity, model codes...) of same-type devices of one plant."""
        keys = _same_type(ps_keys, "getDevPropertyPointValue")
        if device_type_of(keys[0]) != int(device_type):
            raise ValueError(f"getDevPropertyPointValue: {keys[0]} is not of device_type "
                             f"{device_type}")
        data = self.call("getDevPropertyPointValue", {
            "ps_id": _str(ps_id), "device_type": str(device_type), "ps_key_list": keys,
            "point_id_list": _point_ids(point_ids)}).data
        return data if isinstance(data, dict) else {}


# -- helpers ----------------------------------------------------------------------------------

def _login_token(data: Row, serial: Optional[str]) -> str:
    """The token of a login answer, or the LoginError its ``login_state`` means."""
    state = str(data.get("login_state", ""))
    token = data.get("token")
    if state == "1" and token:
        return str(token)
    reason = LOGIN_STATES.get(state, f"login refused (login_state {state or 'missing'})")
    remain = data.get("remain_times")
    if state == "0" and remain not in (None, ""):
        plural = "" if str(remain) == "1" else "s"
        reason += f", {remain} attempt{plural} left before the account is locked"
    error = AccountLocked if state in LOCKED_STATES else LoginError
    raise error(f"login: {reason}", login_state=state, endpoint="login", req_serial_num=serial)


def _not_authorised(service: str, retry_at: dt.datetime, serial: Optional[str]
                    ) -> ApiNotAuthorised:
    until = retry_at.isoformat(timespec="seconds")
    return ApiNotAuthorised(
        f"{service} is not authorised for this appkey: {NOT_AUTHORISED_ADVICE} (E900; not "
        f"called again before {until})",
        retry_at=retry_at, endpoint=service, result_code="E900",
        meaning="access has not been authorized for this API", req_serial_num=serial)


def _str(value: Union[int, str, None]) -> Optional[str]:
    return None if value is None or value == "" else str(value)


def _present(**params: Any) -> Dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None and v != ""}


def _keys_or_sns(ps_keys: Sequence[str], sns: Sequence[str]) -> "tuple[str, List[str]]":
    """The document: ps_key_list wins when both are given; both empty is an error."""
    if ps_keys:
        return "ps_key_list", list(dict.fromkeys(ps_keys))
    if sns:
        return "sn_list", list(dict.fromkeys(sns))
    raise ValueError("ps_key_list and sn_list cannot both be empty")


def _same_type(ps_keys: Sequence[str], service: str) -> List[str]:
    keys = list(dict.fromkeys(ps_keys))
    if not keys:
        raise ValueError(f"{service}: at least one ps_key is required")
    types = {device_type_of(k) for k in keys}
    if len(types) > 1:
        raise ValueError(f"{service}: all devices must be of the same type, got types "
                         f"{sorted(types)}")
    return keys


def _span(start: str, end: str, query_type: int) -> int:
    """Inclusive number of days/months/years between two 2.8 time stamps."""
    formats = {1: "%Y%m%d", 2: "%Y%m", 3: "%Y"}
    try:
        first = dt.datetime.strptime(start, formats[query_type])
        last = dt.datetime.strptime(end, formats[query_type])
    except ValueError:
        raise ValueError(f"getDevicePointsDayMonthYearDataList: start/end must be "
                         f"{formats[query_type].replace('%', '')} for query_type "
                         f"{query_type}") from None
    if last < first:
        raise ValueError("getDevicePointsDayMonthYearDataList: end is before start")
    if query_type == 1:
        return (last - first).days + 1
    if query_type == 2:
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return last.year - first.year + 1


def _realtime_chunks(device_type: int, key: str, items: Sequence[str],
                     point_ids: Iterable[Union[int, str]]) -> List[List[Params]]:
    """2.14 calls for devices of one type: per chunk of 50 devices, one call per 100 points."""
    points = _point_ids(point_ids)
    return [[{key: device_chunk, "point_id_list": point_chunk, "device_type": str(device_type)}
             for point_chunk in chunks(points, REALTIME_POINTS_PER_CALL)]
            for device_chunk in chunks(items, MAX_DEVICES_PER_CALL)]


def _mixed_chunks(ps_keys: Iterable[str], points_by_type: Mapping[int, Iterable[Union[int, str]]]
                  ) -> List[List[Params]]:
    """2.14 calls for devices of mixed types; types without points are left out."""
    by_type: Dict[int, List[str]] = {}
    for ps_key in dict.fromkeys(ps_keys):
        by_type.setdefault(device_type_of(ps_key), []).append(ps_key)
    groups: List[List[Params]] = []
    for device_type, keys in sorted(by_type.items()):
        points = list(points_by_type.get(device_type, ()))
        if points:
            groups.extend(_realtime_chunks(device_type, "ps_key_list", keys, points))
    return groups


class _Paging:
    """Pages 2..n of one list, fetched together.  ``end``, the first page not wanted, comes
    down as pages arrive (empty, short or repeated); pages from ``end`` on are not fetched."""

    def __init__(self, page: Callable[[int], List[Row]], first: List[Row], last: int) -> None:
        self._page = page
        self._size = len(first)
        self._pages = {1: first}
        self._seen = {_fingerprint(first)}
        self._lock = threading.Lock()
        self.end = last + 1
        self.repeated_at: Optional[int] = None     # first page that had been seen before

    def fetch(self, number: int) -> None:
        """Fetch page ``number`` unless the list is known to end before it."""
        if number >= self.end:
            return
        rows = self._page(number)
        mark = _fingerprint(rows)
        with self._lock:
            repeated = bool(rows) and mark in self._seen
            if not rows or repeated:
                self.end = min(self.end, number)
            elif len(rows) < self._size:
                self.end = min(self.end, number + 1)
            if repeated:
                self.repeated_at = min(self.repeated_at or number, number)
            self._seen.add(mark)
            self._pages[number] = rows

    def complete(self) -> bool:
        """Whether every wanted page is in."""
        with self._lock:
            return all(number in self._pages for number in range(2, self.end))

    def rows(self) -> List[Row]:
        """The rows of the wanted pages, in page order."""
        with self._lock:
            return [row for number in sorted(self._pages) if number < self.end
                    for row in self._pages[number]]


def _fingerprint(rows: List[Row]) -> int:
    """Identity of a page's content, to notice a page served twice."""
    return hash(json.dumps(rows, sort_keys=True, default=str))


def _merge_realtime(result: RealtimeResult, data: Any) -> None:
    """Add a 2.6/2.14 answer, merging the points of a device split over point chunks."""
    if not isinstance(data, dict):
        return
    known = result.by_ps_key()
    for item in data.get("device_point_list") or []:
        point_map = item.get("device_point") if isinstance(item, dict) else None
        if not isinstance(point_map, dict):
            continue
        ps_key = str(point_map.get("ps_key"))
        existing = known.get(ps_key)
        if existing is not None:
            existing.update(point_map)
        else:                       # the decoded answer is ours alone: no copy needed
            result.devices.append(point_map)
            known[ps_key] = point_map
    for name, failed in (("fail_sn_list", result.fail_sn_list),
                         ("fail_ps_key_list", result.fail_ps_key_list)):
        items = data.get(name)
        for item in items if isinstance(items, list) else []:
            if str(item) not in failed:
                failed.append(str(item))


def _merge_minute(result: HistoryResult, response: Response) -> None:
    """Add a 2.7 answer, merging rows of the same time stamp split over point chunks."""
    result.illegal_ps_keys.extend(k for k in _parse_illegal(response.message)
                                  if k not in result.illegal_ps_keys)
    if not isinstance(response.data, dict):
        return
    for ps_key, rows in response.data.items():
        series = result.data.setdefault(ps_key, [])
        by_time = {row.get("time_stamp"): row for row in series}
        for row in rows or []:
            if not isinstance(row, dict):
                continue
            existing = by_time.get(row.get("time_stamp"))
            if existing is not None:
                existing.update(row)
            else:
                series.append(dict(row))
                by_time[row.get("time_stamp")] = series[-1]
