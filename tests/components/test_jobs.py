"""CloudJobs details that need no cloud: which hour's quota row counts."""
from __future__ import annotations

import datetime as dt
import time
from typing import Any, Dict, Iterator

import pytest

from component_support import FakeClock
from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.jobs import CloudJobs


class QuotaOnly:
    """Answers getOpenApiCallInfo with a different quota for every hour (quota = 100 + hour)."""

    def get_open_api_call_info(self) -> Dict[str, Any]:
        return {"per_hour_access_times_config": [
            {"hour": str(hour), "max_call_times": str(100 + hour)} for hour in range(24)]}


@pytest.fixture
def far_east_machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bridge's machine keeps its clock in UTC+8."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_quota_row_is_the_utc_hour_a_rate_limit_pause_counts_in(far_east_machine):
    clock = FakeClock(dt.datetime(2026, 6, 17, 23, 30, tzinfo=dt.timezone.utc))
    fleet = FleetState()
    jobs = CloudJobs(QuotaOnly(), load_catalog(), fleet, clock)   # type: ignore[arg-type]
    assert jobs.fetch_quota()["per_hour"] == 123          # not 107 (07:30 in UTC+8)
    assert fleet.snapshot().quota["per_hour"] == 123
