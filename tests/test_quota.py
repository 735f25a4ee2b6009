"""Quota arithmetic: calls an hour of a polling setup, and the fastest interval within a quota."""
import pytest

from sungrow2mqtt.config import parse_config
from sungrow2mqtt.errors import ConfigError
from sungrow2mqtt.quota import MIN_POLL_INTERVAL, calls_per_hour, fastest_safe_interval


def test_calls_per_hour_adds_the_three_kinds_of_poll():
    # 6 realtime + 1 faults call every 5 minutes, 3 device-list calls an hour
    assert calls_per_hour(300, 300, 3600, 6, 1, 3) == pytest.approx(87.0)
    assert calls_per_hour(60, 120, 1800, 2, 1, 2) == pytest.approx(120 + 30 + 4)


def test_calls_per_hour_of_nothing_is_zero():
    assert calls_per_hour(10, 10, 60, 0, 0, 0) == 0


@pytest.mark.parametrize("args", [
    (0, 300, 3600, 1, 1, 1), (300, -1, 3600, 1, 1, 1), (300, 300, float("inf"), 1, 1, 1),
    (300, 300, 3600, -1, 1, 1), (300, 300, 3600, 1, float("nan"), 1),
])
def test_calls_per_hour_rejects_impossible_inputs(args):
    with pytest.raises(ValueError):
        calls_per_hour(*args)


def test_fastest_safe_interval_fits_the_budget_and_one_second_less_does_not():
    seconds = fastest_safe_interval(1000, 6, 1, 3, minimum=1)
    assert seconds == 32            # 3600 * 7 / (800 - 3) = 31.6
    assert calls_per_hour(seconds, seconds, 3600, 6, 1, 3) <= 800
    assert calls_per_hour(seconds - 1, seconds - 1, 3600, 6, 1, 3) > 800


@pytest.mark.parametrize("quota,realtime,faults,devices,margin", [
    (1000, 6, 1, 3, 0.8), (10000, 6, 1, 3, 0.8), (1000, 7, 1, 3, 0.5), (10000, 22, 3, 12, 0.9),
    (500, 1, 1, 0, 1.0), (3600, 3, 1, 0, 1.0), (7, 1, 0, 0, 1.0),
])
def test_the_answer_is_the_smallest_whole_second_within_the_budget(quota, realtime, faults,
                                                                   devices, margin):
    seconds = fastest_safe_interval(quota, realtime, faults, devices, margin=margin, minimum=1)
    budget = margin * quota

    def spent(interval):
        return calls_per_hour(interval, interval, 3600, realtime, faults, devices)
    assert spent(seconds) <= budget
    assert seconds == 1 or spent(seconds - 1) > budget


def test_an_exact_fit_is_not_rounded_up():
    # 8 calls per cycle, budget 800: exactly 36 s, even though 0.8 * 1000 is not exact in binary
    assert fastest_safe_interval(1000, 7, 1, minimum=1) == 36


def test_the_configuration_minimum_is_the_default_floor():
    assert fastest_safe_interval(10000, 6, 1, 3, minimum=1) == 4
    assert fastest_safe_interval(10000, 6, 1, 3) == MIN_POLL_INTERVAL


def test_the_floor_matches_what_the_configuration_accepts():
    base = {"isolarcloud": {"server": "eu", "appkey": "a", "access_key": "k", "username": "u",
                            "password": "p", "token_file": None}}
    for name in ("realtime", "faults"):
        parse_config({**base, "polling": {name: MIN_POLL_INTERVAL}}, "q.yaml")
        with pytest.raises(ConfigError):
            parse_config({**base, "polling": {name: MIN_POLL_INTERVAL - 1}}, "q.yaml")


def test_a_bigger_margin_or_quota_polls_faster_and_more_calls_poll_slower():
    assert fastest_safe_interval(1000, 6, 1, margin=0.9, minimum=1) < \
        fastest_safe_interval(1000, 6, 1, margin=0.5, minimum=1)
    assert fastest_safe_interval(2000, 6, 1, minimum=1) < fastest_safe_interval(1000, 6, 1,
                                                                                 minimum=1)
    assert fastest_safe_interval(1000, 20, 1, minimum=1) > fastest_safe_interval(1000, 6, 1,
                                                                                 minimum=1)


def test_slower_device_refreshes_leave_more_for_polling():
    # 3600 * 7 / (800 - 3) = 31.6, but with 180 device calls an hour 3600 * 7 / 620 = 40.6
    assert fastest_safe_interval(1000, 6, 1, 3, devices_interval=3600, minimum=1) == 32
    assert fastest_safe_interval(1000, 6, 1, 3, devices_interval=60, minimum=1) == 41


def test_no_calls_per_cycle_polls_at_the_floor():
    assert fastest_safe_interval(1000, 0, 0, 3) == MIN_POLL_INTERVAL


def test_device_refreshes_beyond_the_budget_are_refused():
    with pytest.raises(ValueError, match="alone needs more"):
        fastest_safe_interval(100, 6, 1, devices_calls=100, devices_interval=3600)


@pytest.mark.parametrize("kwargs", [
    {"hourly_quota": 0}, {"hourly_quota": -5}, {"margin": 0}, {"margin": 1.5},
    {"minimum": 0}, {"realtime_calls": -1}, {"devices_interval": 0},
])
def test_fastest_safe_interval_rejects_impossible_inputs(kwargs):
    args = {"hourly_quota": 1000, "realtime_calls": 6, "faults_calls": 1, **kwargs}
    with pytest.raises(ValueError):
        fastest_safe_interval(**args)
