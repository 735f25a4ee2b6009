"""The gateway in front of the services: apps, logins and tokens, quota, encryption, burst limit.

It turns a raw request into an authenticated :class:`Call` or a :class:`RequestError` carrying the
result code the document (or the live gateway) gives, and wraps results in the envelope of 1.3 (7).
The check order is described in :mod:`sungrow2mqtt.simulator.server`.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional, Set, Tuple

from Crypto.PublicKey import RSA

from sungrow2mqtt.isolarcloud.crypto import (
    CryptoError, aes_decrypt_hex, public_key_base64, rsa_decrypt,
)
from sungrow2mqtt.isolarcloud.errors import RESULT_CODES
from sungrow2mqtt.simulator.clock import SimClock

SYS_CODE = "901"
TOKEN_LIFETIME = 24 * 3600.0
MAX_WRONG_PASSWORDS = 5
LOCK_SECONDS = 3600.0
USER_ID = "2481357"
ORG_ID = "3081924"
# what a call with an unknown or expired token gets: the live gateway's code, the document's
TOKEN_ERRORS = ("E900", "E00003")
_NONCE = re.compile(r"[A-Za-z0-9]{32}")


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


class RequestError(Exception):
    """An envelope error: result_code plus the document's name as result_msg."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Call:
    """One authenticated request as the services see it."""

    body: Dict[str, Any]
    appkey: str
    now: float
    lang: str


@dataclass
class _Token:
    appkey: str
    expires: float


def utc(ts: float) -> dt.datetime:
    """A naive UTC date-time for an epoch time (no deprecated utcfromtimestamp)."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=ts)


def _serial() -> str:
    return utc(time.time()).strftime("%Y%m%d") + uuid.uuid4().hex[:24]


def success(data: Any, message: str = "success") -> Dict[str, Any]:
    """The envelope of a successful call."""
    return {"req_serial_num": _serial(), "result_code": "1", "result_msg": message,
            "result_data": data}


def error(code: str) -> Dict[str, Any]:
    """The envelope of a refused call: the code, its appendix-2 name, no data."""
    name = RESULT_CODES[code][0] if code in RESULT_CODES else "error"
    return {"req_serial_num": _serial(), "result_code": code, "result_msg": name,
            "result_data": None}


def present(value: Any) -> bool:
    """A parameter counts as given unless None, empty string, list or object."""
    return value is not None and value != "" and value != [] and value != {}


class TokenBucket:
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


class Gateway:
    """Apps, the account, tokens, quota and the encryption of one simulated gateway."""

    def __init__(self, credentials: Credentials, clock: SimClock, *, encrypted: bool,
                 hourly_quota: int, timestamp_tolerance: float, token_error: str = "E900"
                 ) -> None:
        if token_error not in TOKEN_ERRORS:
            raise ValueError(f"token_error must be one of {', '.join(TOKEN_ERRORS)}, "
                             f"not {token_error!r}")
        self.token_error = token_error
        self.credentials = credentials
        self.clock = clock
        self.encrypted = encrypted
        self.timestamp_tolerance = timestamp_tolerance
        self.private_key = RSA.generate(1024) if encrypted else None
        self.public_key: Optional[str] = (
            public_key_base64(self.private_key) if self.private_key else None)
        self.hourly_quota = hourly_quota
        self._lock = threading.RLock()
        self._tokens: Dict[str, _Token] = {}
        self.reset()

    def reset(self) -> None:
        """Forget wrong passwords, locks, quota use, nonces and denied APIs (tokens stay valid)."""
        with self._lock:
            self.denied: Set[str] = set()
            self._wrong_passwords = 0
            self._locked_until: Optional[float] = None
            self._admin_locked = False
            self._usage: Dict[Tuple[str, str, int], int] = {}
            self._nonces: Dict[str, float] = {}

    # -- request pipeline --------------------------------------------------------------------
    def access_key(self, headers: Dict[str, str]) -> str:
        """The ``x-access-key`` header of a known app (E911 missing, E912 unknown)."""
        access_key = headers.get("x-access-key")
        if not access_key:
            raise RequestError("E911")
        if access_key not in self.credentials.apps().values():
            raise RequestError("E912")
        return access_key

    def decode(self, headers: Dict[str, str], raw: bytes) -> Dict[str, Any]:
        """The request body: plain JSON, or AES hex under the RSA-encrypted request key."""
        text = raw.decode("utf-8", errors="replace").strip()
        if not self.encrypted:
            try:
                body = json.loads(text) if text else {}
            except ValueError:
                raise RequestError("010") from None
            if not isinstance(body, dict):
                raise RequestError("010")
            return body
        if text.startswith("{"):
            raise RequestError("E902")
        secret = headers.get("x-random-secret-key")
        if not secret:
            raise RequestError("E904")
        assert self.private_key is not None
        try:
            key = rsa_decrypt(secret, self.private_key)
        except CryptoError:
            raise RequestError("E906") from None
        if len(key) != 16:
            raise RequestError("E907")
        try:
            body = json.loads(aes_decrypt_hex(text, key))
        except (CryptoError, ValueError):
            raise RequestError("E905") from None
        if not isinstance(body, dict):
            raise RequestError("E905")
        return body

    def answer_key(self, headers: Dict[str, str]) -> Optional[str]:
        """The request's AES key, when the header decrypts to 16 characters."""
        secret = headers.get("x-random-secret-key")
        if not (self.encrypted and secret and self.private_key is not None):
            return None
        try:
            key = rsa_decrypt(secret, self.private_key)
        except CryptoError:
            return None
        return key if len(key) == 16 else None

    def authenticate(self, service: str, headers: Dict[str, str], body: Dict[str, Any],
                     access_key: str) -> Call:
        """Nonce and timestamp, sys_code, appkey, quota, then the token (not for login)."""
        self._check_api_key_param(body)
        sys_code = headers.get("sys_code")
        if not sys_code:
            raise RequestError("003")
        if sys_code.strip() != SYS_CODE:
            raise RequestError("E994")
        appkey = body.get("appkey")
        if not present(appkey):
            raise RequestError("001")
        apps = self.credentials.apps()
        if appkey not in apps:
            raise RequestError("E00000")
        if apps[appkey] != access_key:
            raise RequestError("E914")
        if service in self.denied:
            raise RequestError("E900")
        now = self.clock.now()
        moment = utc(now)
        usage_key = (appkey, moment.strftime("%Y%m%d"), moment.hour)
        with self._lock:
            if self._usage.get(usage_key, 0) >= self.hourly_quota:
                raise RequestError("E999")
            self._usage[usage_key] = self._usage.get(usage_key, 0) + 1
            if service != "login":
                token = body.get("token")
                if not present(token):
                    raise RequestError("002")
                issued = self._tokens.get(str(token))
                if issued is None or issued.appkey != appkey or issued.expires < now:
                    raise RequestError(self.token_error)
                issued.expires = now + TOKEN_LIFETIME
        lang = headers.get("lang") or str(body.get("lang") or "") or "_zh_CN"
        return Call(body=body, appkey=appkey, now=now, lang=lang)

    def _check_api_key_param(self, body: Dict[str, Any]) -> None:
        param = body.get("api_key_param")
        if param is None and not self.encrypted:
            return
        if not isinstance(param, dict):
            raise RequestError("E908")
        nonce = param.get("nonce")
        if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
            raise RequestError("E909")
        now = self.clock.gateway_now()
        with self._lock:
            if nonce in self._nonces:
                raise RequestError("E910")
            try:
                stamp = int(str(param.get("timestamp")).strip())
            except ValueError:
                raise RequestError("E913") from None
            if abs(stamp - now * 1000.0) > self.timestamp_tolerance * 1000.0:
                raise RequestError("E913")
            if len(self._nonces) > 20000:
                horizon = now - 2 * self.timestamp_tolerance - 60
                self._nonces = {n: t for n, t in self._nonces.items() if t >= horizon}
            self._nonces[nonce] = now

    # -- the account -------------------------------------------------------------------------
    def login(self, account: str, password: str, call: Call) -> Dict[str, Any]:
        """2.1: the login state and, on success, a 40-character token."""
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
            result["disable_time"] = utc(locked_until).strftime("%Y-%m-%d %H:%M:%S")
        return dict(sorted(result.items()))

    def quota_report(self, appkey: str, now: float) -> Dict[str, Any]:
        """2.2: the hourly quota and today's use, all as strings."""
        moment = utc(now)
        date = moment.strftime("%Y%m%d")
        with self._lock:
            quota = self.hourly_quota
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

    # -- controls ----------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Invalidate every issued token."""
        with self._lock:
            self._tokens.clear()

    def deny(self, services: Set[str]) -> None:
        """Answer E900 to these services whatever the token (app not authorised for them)."""
        with self._lock:
            self.denied |= services

    def allow(self, services: Set[str]) -> None:
        """Serve these services again; an empty set allows every service."""
        with self._lock:
            self.denied = self.denied - services if services else set()

    def set_quota(self, hourly: int) -> None:
        """Change the hourly call quota (E999 once used up)."""
        with self._lock:
            self.hourly_quota = int(hourly)

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
