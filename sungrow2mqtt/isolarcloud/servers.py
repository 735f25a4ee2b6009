"""Where the Open API lives: the document's four gateways (appendix 8) or an explicit URL."""
from __future__ import annotations

from typing import Dict
from urllib.parse import urlsplit

REGIONS: Dict[str, str] = {
    "cn": "https://gateway.isolarcloud.com",
    "intl": "https://gateway.isolarcloud.com.hk",
    "eu": "https://gateway.isolarcloud.eu",
    "au": "https://augateway.isolarcloud.com",
}


def resolve_server(server: str) -> str:
    """Turn a region name or a URL into the gateway base URL without a trailing slash.

    Raises ValueError naming what was expected, so config errors read well.
    """
    value = server.strip()
    if value.lower() in REGIONS:
        return REGIONS[value.lower()]
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"expected one of {', '.join(REGIONS)} or an http(s):// URL, got {server!r}")
    return value.rstrip("/")
