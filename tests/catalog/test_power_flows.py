"""The energy dashboard's power flows (HA 2025.12+) get HA's signs from the catalog's sensors.

HA wants grid power positive when importing and battery power positive when discharging, or two
non-negative sensors per flow. The README maps: grid = purchased power (in) / feed-in power
(out), battery = discharging (out of the battery) / charging power (in), solar = the plant's PV
power. Checked on the simulator's hybrid plant through the catalog's conversions, at pinned
times over two days (night, morning, noon, evening), so the result does not depend on the clock.
"""
from __future__ import annotations

import datetime as dt
from typing import Dict

import pytest

from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.simulator import Fleet

CATALOG = load_catalog()
FLEET = Fleet.default()
PLANT_PS_ID = 1563218       # the simulator's hybrid plant: ESS, meter, battery
START = dt.datetime(2026, 6, 20, tzinfo=dt.timezone(dt.timedelta(hours=1))).timestamp()
MOMENTS = [START + minutes * 60 for minutes in range(0, 2 * 24 * 60, 25)]


def published(ps_key: str, ts: float) -> Dict[str, float]:
    """What the bridge publishes for the device's default points at ``ts`` (key -> value)."""
    device = FLEET.device(ps_key)
    assert device is not None
    specs = [spec for spec in CATALOG.enabled(device.device_type) if spec.enabled is True]
    raw = FLEET.readings(device, [spec.point_id for spec in specs], ts)
    values = {spec.key: spec.convert(raw[spec.point_id]) for spec in specs}
    return {key: float(value) for key, value in values.items() if isinstance(value, (int, float))}


@pytest.mark.parametrize("ts", MOMENTS[::6])
def test_flows_are_non_negative_and_balance(ts: float) -> None:
    plant = published(f"{PLANT_PS_ID}_11_0_0", ts)
    ess = published(f"{PLANT_PS_ID}_14_1_1", ts)
    meter = published(f"{PLANT_PS_ID}_7_2_1", ts)
    for value in (ess["purchased_power"], ess["feed_in_power"], ess["battery_charging_power"],
                  ess["battery_discharging_power"], plant["pv_power"]):
        assert value >= 0
    grid_in = ess["purchased_power"] - ess["feed_in_power"]
    # the signed grid sensors agree: positive while importing
    assert plant["grid_active_power"] == pytest.approx(grid_in, abs=0.2)
    assert meter["active_power"] == pytest.approx(grid_in, abs=0.2)
    # what comes in (solar, battery out, grid in) is what the house uses
    supply = (plant["pv_power"] + ess["battery_discharging_power"]
              - ess["battery_charging_power"] + grid_in)
    assert plant["load_power"] == pytest.approx(supply, abs=1.0)


def test_the_simulated_days_have_every_flow_direction() -> None:
    """Else the sign test above proves little: import and export, charge and discharge."""
    seen = [published(f"{PLANT_PS_ID}_14_1_1", ts) for ts in MOMENTS]
    for key in ("purchased_power", "feed_in_power", "battery_charging_power",
                "battery_discharging_power"):
        assert any(values[key] > 50 for values in seen), key
