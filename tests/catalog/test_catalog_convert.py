"""PointSpec.convert: from the API's strings to the values published on MQTT."""
from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal

import pytest

from sungrow2mqtt.catalog import Catalog, PointSpec, load_catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def spec_of(catalog: Catalog, device_type: int, point_id: int) -> PointSpec:
    spec = catalog.get(device_type, point_id)
    assert spec is not None, (device_type, point_id)
    return spec


def plain(**changes: object) -> PointSpec:
    """A numeric point with the given fields changed."""
    base = PointSpec(device_type=1, point_id=1, key="k", name="K", api_unit="W", unit="W",
                     scale=1.0, device_class="power", state_class="measurement", icon=None,
                     precision=0, enabled=True, category=None, options={}, source="test")
    return dataclasses.replace(base, **changes)


def test_energy_wh_to_kwh(catalog: Catalog) -> None:
    daily = spec_of(catalog, 11, 83022)
    assert daily.convert("190970.0") == 190.97
    assert daily.convert("1") == 0.001
    assert daily.convert(2500) == 2.5
    assert daily.convert("0") == 0
    assert json.dumps(daily.convert("190970.0")) == "190.97"


def test_power_stays_integral(catalog: Catalog) -> None:
    power = spec_of(catalog, 14, 13011)
    assert power.convert("5000") == 5000
    assert isinstance(power.convert("5000.0"), int)
    assert power.convert("-1234.5") == -1234.5
    assert power.convert(" 42 ") == 42


def test_soc_fraction_and_percent(catalog: Catalog) -> None:
    assert spec_of(catalog, 14, 13141).convert("0.873") == 87.3
    assert spec_of(catalog, 43, 58604).convert("1") == 100
    assert spec_of(catalog, 11, 83252).convert("0.5") == 50
    assert spec_of(catalog, 11, 83334).convert("87.3") == 87.3
    assert spec_of(catalog, 11, 83334).convert("100") == 100


def test_millivolt_cells_to_volt(catalog: Catalog) -> None:
    assert spec_of(catalog, 43, 58610).convert("3312") == 3.312


@pytest.mark.parametrize("raw", [None, "--", "", "  ", "-", "null", "NaN", "inf", "abc", "12a",
                                 True, [], {}, float("nan")])
def test_missing_or_junk_is_none(catalog: Catalog, raw: object) -> None:
    assert spec_of(catalog, 11, 83022).convert(raw) is None


def test_float_noise_is_removed() -> None:
    assert plain(scale=0.1).convert("3") == 0.3
    assert plain(scale=0.001).convert("1234567890123") == 1234567890.123
    assert plain(scale=100).convert("0.07") == 7
    assert plain(scale=3).convert("0.1") == 0.3          # not a power of ten: rounded
    assert plain(scale=0.001).convert("190.97000000000003") == 0.19097    # long text: rounded


def decimal_texts(count: int) -> list[str]:
    """Decimal texts as the API sends them, of up to 15 characters, signs and zeros included."""
    draw = random.Random(20261201)
    texts = ["0", "-0", "0.0", "1", "-1", "5000.0", "0.001", "999999999999999", "-99999999999999",
             "0.000000000001", ".5", "5."]
    while len(texts) < count:
        digits = "".join(draw.choice("0123456789") for _ in range(draw.randint(1, 13)))
        point = draw.randint(0, len(digits))
        text = digits[:point] + "." + digits[point:] if draw.random() < 0.7 else digits
        texts.append("-" + text if draw.random() < 0.3 else text)
    return texts


@pytest.mark.parametrize("scale", [0.001, 0.01, 0.1, 1, 10, 100, 1000])
def test_a_decimal_text_becomes_the_nearest_number_to_its_scaled_value(scale: float) -> None:
    """The decimal times the scale, computed exactly, then to the nearest double; whole
    numbers as int (JSON 5000, not 5000.0)."""
    spec = plain(scale=scale)
    for text in decimal_texts(3000):
        exact = float(Decimal(text) * Decimal(repr(scale)))
        expected = int(exact) if exact.is_integer() else exact
        value = spec.convert(text)
        assert value == expected and type(value) is type(expected), (text, scale, value)


def test_texts_off_the_short_path_are_still_read() -> None:
    assert plain(scale=0.001).convert("1.5e3") == 1.5
    assert plain(scale=0.001).convert(" 2500 ") == 2.5
    assert plain(scale=1).convert("1e5") == 100000
    assert plain(scale=1e300).convert("1e10") is None           # overflows: no reading
    assert plain(scale=1e300).convert("999999999") is None
    assert plain(scale=-1).convert("5") == -5


def test_the_largest_scales_stay_finite_or_give_no_reading() -> None:
    """Up to 1e100 a short text is read with the scale as its exponent, and the largest such
    text stays finite; a larger scale is multiplied, and an overflow is no reading."""
    assert plain(scale=1e100).convert("999999999999999") == 999999999999999e100
    assert plain(scale=1e100).convert("-999999999999999") == -999999999999999e100
    assert plain(scale=1e200).convert("12") == 1.2e201
    assert plain(scale=1e300).convert("-999999999") is None


def test_enum_labels(catalog: Catalog) -> None:
    status = spec_of(catalog, 14, 13146)
    assert status.convert("5120") == "Standby"
    assert status.convert(5120) == "Standby"
    assert status.convert("5120.0") == "Standby"
    assert status.convert("0") == "Grid-connected operation"
    assert status.convert("77777") == "77777"          # unknown code stays visible
    assert status.convert("Standby") == "Standby"      # already a label
    assert status.convert("garbage") is None
    assert status.convert("--") is None
    assert spec_of(catalog, 1, 29).convert("32768") == "Shut down"


def test_text_points_pass_through(catalog: Catalog) -> None:
    card = spec_of(catalog, 22, 23008)
    assert card.convert(" 89860012345 ") == "89860012345"
    assert card.convert("--") is None
    battery_status = spec_of(catalog, 43, 58608)
    assert battery_status.convert(3) == "3"


def test_unitless_numbers_stay_numbers(catalog: Catalog) -> None:
    signal = spec_of(catalog, 22, 23014)
    assert signal.convert("-67") == -67
    assert signal.convert("strong") is None
    assert spec_of(catalog, 14, 13013).convert("0.998") == 0.998


def test_api_key_has_p_prefix() -> None:
    assert plain(point_id=13141).api_key == "p13141"
