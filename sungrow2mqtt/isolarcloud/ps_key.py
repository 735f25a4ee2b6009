"""The ps_key: ``<ps_id>_<device_type>_<device code>_<channel>``, one device of one plant.

One type for the client, the bridge's model, its requests and the command line, so a device the
bridge publishes is never refused by another part.  It is a ``str``: it goes into topics, JSON
and dictionaries as it is.
"""
from __future__ import annotations

import re
from typing import Any

PLANT_DEVICE_TYPE = 11
# digits only: a ps_key becomes an MQTT topic level and part of Home Assistant ids
_PATTERN = re.compile(r"[1-9]\d{0,11}_\d{1,4}_\d{1,8}_\d{1,8}")
EXAMPLE = "1234567_14_1_1"


class PsKey(str):
    """A well-formed ps_key; constructing one from anything else raises ValueError."""

    def __new__(cls, value: Any) -> "PsKey":
        if not isinstance(value, str) or not _PATTERN.fullmatch(value):
            raise ValueError(f"ps_key must look like {EXAMPLE}, got {value!r:.60}")
        return super().__new__(cls, value)

    @classmethod
    def of_plant(cls, ps_id: int) -> "PsKey":
        """The plant's own ps_key (the plant is device type 11, code and channel 0)."""
        return cls(f"{ps_id}_{PLANT_DEVICE_TYPE}_0_0")

    @property
    def ps_id(self) -> int:
        """The plant this device belongs to."""
        return int(self.split("_")[0])

    @property
    def device_type(self) -> int:
        """The device type (appendix 1)."""
        return int(self.split("_")[1])
