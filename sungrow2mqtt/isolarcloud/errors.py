"""Open API failures as exceptions, one class per way a caller has to react.

Every ``result_code`` of the document's appendix 2 is listed in :data:`RESULT_CODES` with the
document's name and meaning; :func:`error_for_code` picks the class.  Messages quote the code and
the meaning, never a secret.
"""
from __future__ import annotations

import datetime as dt
from typing import Dict, Optional, Tuple, Type

from sungrow2mqtt.errors import Sungrow2MqttError


class ApiError(Sungrow2MqttError):
    """An Open API call failed; carries endpoint, result code, meaning and request serial."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        result_code: Optional[str] = None,
        meaning: str = "",
        req_serial_num: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.result_code = result_code
        self.meaning = meaning
        self.req_serial_num = req_serial_num


class AuthError(ApiError):
    """Credentials were refused: appkey, access key, account, password or token."""


class LoginError(AuthError):
    """``/openapi/login`` answered with a ``login_state`` other than success."""

    def __init__(self, message: str, *, login_state: str, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.login_state = login_state


class AccountLocked(LoginError):
    """The account is locked (``login_state`` 2: too many wrong passwords, 5: by an
    administrator).  Not a rate limit: waiting for a quota window does not unlock it."""


class _RetryAt(ApiError):
    """A failure that lifts at ``retry_at`` (UTC); the subclass says what to hold back."""

    def __init__(self, message: str, *, retry_at: dt.datetime, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_at = retry_at

    def retry_after(self, now: Optional[dt.datetime] = None) -> float:
        """Seconds from ``now`` until the limit lifts (never negative)."""
        now = now or dt.datetime.now(dt.timezone.utc)
        return max(0.0, (self.retry_at - now).total_seconds())


class RateLimitError(_RetryAt):
    """The call quota or the call frequency limit was hit: hold back every call until
    ``retry_at``."""


class ApiNotAuthorised(_RetryAt):
    """E900 on a token just issued: this appkey may not call ``endpoint``.

    Only that API is held back until ``retry_at``; every other API keeps working.  Neither an
    AuthError (the credentials are fine) nor a RateLimitError (nothing else has to pause).
    """


class RequestRejected(ApiError, ValueError):
    """The server refused the request's parameters or its encryption envelope."""


class ServerError(ApiError):
    """The server failed (5xx, internal exception, garbage body) or could not be reached."""


class ConnectionFailed(ServerError):
    """No connection to the gateway could be made: DNS, refused, unreachable, TLS or connect
    timeout (check the server/region and the network)."""


# code -> (document name, document meaning, exception class)
RESULT_CODES: Dict[str, Tuple[str, str, Type[ApiError]]] = {
    "-1": ("error", "internal exception of service", ServerError),
    "000": ("er_unknown_exception", "unknown exception", ServerError),
    "001": ("er_missing_parameter:appkey", "appkey cannot be empty", AuthError),
    "002": ("er_missing_parameter:token", "token cannot be empty", AuthError),
    "003": ("er_missing_parameter:sys_code", "sys_code cannot be empty", RequestRejected),
    "E00000": ("er_invalid_appkey", "appkey is invalid", AuthError),
    "E00001": ("er_api_service_has_expired", "API service has expired", AuthError),
    "E00002": ("er_parameter_decrypt_error", "parameter decryption exception", RequestRejected),
    "E00003": ("er_token_login_invalid", "token is invalid or has expired", AuthError),
    "E998": ("er_month_call_api_times_upper_limit", "number of API calls reached the limit",
             RateLimitError),
    "E999": ("er_hour_call_api_times_upper_limit", "number of API calls reached the hourly limit",
             RateLimitError),
    "009": ("er_missing_parameter", "required parameter is missing", RequestRejected),
    "010": ("er_parameter_value_invalid", "parameter value is invalid", RequestRejected),
    "011": ("er_sql_exception", "SQL exception", ServerError),
    "E900": ("Unauthorized access", "access has not been authorized for this API", AuthError),
    "E901": ("Call too frequently", "the call frequency is too high", RateLimitError),
    "E902": ("Request is not encrypted", "the request has not been encrypted", RequestRejected),
    "E903": ("Abnormal network environment", "IP address switching is too frequent",
             RateLimitError),
    "E904": ("Missing parameter in request header: x-random-secret-key",
             "x-random-secret-key is missing from the request header", RequestRejected),
    "E905": ("AES decryption exception", "AES decryption exception", RequestRejected),
    "E906": ("RSA decryption exception", "RSA decryption exception (is rsa_public_key right?)",
             AuthError),
    "E907": ("AES random secret key length must be 16", "AES random secret key length must be 16",
             RequestRejected),
    "E908": ("Missing key parameter: api_key_param", "api_key_param is missing", RequestRejected),
    "E909": ("Invalid parameter format: nonce", "nonce must be a 32-character string of letters "
             "and numbers", RequestRejected),
    "E910": ("Repeated request", "repeated request, the nonce must be regenerated",
             RequestRejected),
    "E911": ("Missing parameter in request header: x-access-key",
             "x-access-key is missing from the request header", AuthError),
    "E912": ("Illegal x-access-key", "the x-access-key is invalid", AuthError),
    "E913": ("Expired request", "the request timestamp differs too much from the server time",
             RequestRejected),
    "E914": ("Mismatched appkey and x-access-key", "appkey and access key do not match", AuthError),
    "E916": ("Login too frequently", "too many login attempts", RateLimitError),
    "E918": ("Permit Denied By White IP Address", "this IP address is not on the allowed list",
             AuthError),
    "E919": ("Permit Denied By White List User", "this account is not on the allowed user list",
             AuthError),
    "E994": ("system not found", "the target system does not exist", RequestRejected),
    "E995": ("request body too large", "the request body exceeds the server's limit",
             RequestRejected),
    "E996": ("api not found", "the API address does not exist (wrong server URL?)",
             RequestRejected),
    "E997": ("transform business response data occur error",
             "the server failed to convert its response data", ServerError),
}

# login_state of /openapi/login -> what the user should read
LOGIN_STATES: Dict[str, str] = {
    "-1": "the account does not exist (check username and server region)",
    "0": "wrong password",
    "2": "the account is locked after too many wrong passwords",
    "5": "the account is locked by the administrator",
}
LOCKED_STATES = frozenset({"2", "5"})


def next_rate_limit_window(code: str, now: dt.datetime) -> dt.datetime:
    """When a rate limit named by ``code`` lifts, by the document's naming of the limit.

    E999 is the hourly quota: the next full hour.  E998 is named a monthly limit while the quota
    endpoint reports daily figures; waiting for the next UTC day and then trying once costs one call
    a day and never hammers the gateway.  E901/E903/E916 are frequency limits: a minute.
    """
    if code == "E999":
        return now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    if code == "E998":
        return now.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    return now + dt.timedelta(minutes=1)


def error_for_code(
    code: str, *, endpoint: str, message: str = "", req_serial_num: Optional[str] = None
) -> ApiError:
    """Build the exception for a non-success ``result_code`` of ``endpoint``."""
    name, meaning, cls = RESULT_CODES.get(code, ("", "", ServerError))
    if not meaning:
        meaning = message or "unknown result code"
    text = f"{endpoint}: {code} {meaning}"
    if message and message not in (name, meaning, "success"):
        text += f" ({message[:200]})"
    if cls is RateLimitError:
        retry_at = next_rate_limit_window(code, dt.datetime.now(dt.timezone.utc))
        return RateLimitError(f"{text}; retry after {retry_at.isoformat(timespec='seconds')}",
                              retry_at=retry_at, endpoint=endpoint, result_code=code,
                              meaning=meaning, req_serial_num=req_serial_num)
    return cls(text, endpoint=endpoint, result_code=code, meaning=meaning,
               req_serial_num=req_serial_num)
