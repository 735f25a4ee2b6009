"""The one ps_key type of the client, the model, the requests and the command line."""
import pytest

from sungrow2mqtt.isolarcloud.client import device_type_of
from sungrow2mqtt.isolarcloud.ps_key import PsKey


def test_a_ps_key_names_its_plant_and_device_type_and_stays_a_string():
    key = PsKey("1563218_14_1_1")
    assert (key.ps_id, key.device_type) == (1563218, 14)
    assert key == "1563218_14_1_1" and {key: 1}["1563218_14_1_1"] == 1
    assert PsKey.of_plant(1563218) == "1563218_11_0_0"
    assert device_type_of("1563218_22_247_1") == 22


@pytest.mark.parametrize("text", [
    "", "1563218", "1563218_14_1", "0_11_0_0", "1563218_14_1_1/#", "1563218_14_+_1",
    "1563218_14_1_1 ", "1563218_14_123456789_1", "a_14_1_1", 1563218,
])
def test_anything_else_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match="ps_key must look like 1234567_14_1_1"):
        PsKey(text)
