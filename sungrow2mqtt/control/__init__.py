"""Device control: the parameter catalog (appendix 10), its encodings and request validation.

The catalog is data: ``control/data/parameters.yaml`` lists each settable parameter once, citing
its appendix-10 row. :func:`load_parameters` reads and checks it; :func:`encode`/:func:`decode`
turn Home Assistant values into paramSetting wire values and back; :func:`plan_writes` checks a
whole request (ranges, dependencies) before anything is sent.  :mod:`.discovery` turns a
parameter into a Home Assistant entity, and :mod:`.component` is the bridge component that reads
back, writes and confirms (imported on its own: it needs MQTT and the bridge's components).

Entry schema::

    - code: 10013               # appendix-10 param_code                              required
      key: feed_in_limit        # snake_case, unique per device type (topics, requests) required
      name: Feed-in limit       # English, sentence case, shown by HA                   required
      device_types: [1, 14]     # appendix-1 types: 1 PV inverter, 14 hybrid inverter  required
      component: number         # number | select | switch | button                   required
      source: "appendix 10, ..."  # the row it comes from                              required
      # number
      unit: W                   # HA unit; with device_class it must be one HA allows
      device_class: power       # optional HA number device class
      scale: 1                  # wire = value * scale (10 = tenths), default 1
      min: 0                    # a number, or {from: property <point id> | rated power,
      max: {from: rated power}  #   default: number}: a device limit in the entry's unit
      step: 10                  # HA step; values off the grid from min are refused
      mode: box                 # auto | box | slider
      # select:  options: {0: Self-consumption, 2: Compulsory}   wire code -> label
      # switch:  on_value: 170, off_value: 85                      (the defaults)
      # button:  press: 174                                        wire value sent
      requires: {feed_in_limitation: "ON"}   # other settings' values needed before a write
      icon: mdi:transmission-tower-import    # optional
      enabled: true             # announced by default (default true)

Device limits (``limits`` arguments) map ``rated_power`` or ``property:<point id>`` to a
number in the entry's unit, read once per device.
"""
from sungrow2mqtt.control.encoding import HaValue, SettingError, allowed_values, decode, encode
from sungrow2mqtt.control.loader import ParameterCatalog, load_parameters, parse_parameters
from sungrow2mqtt.control.settings import Write, plan_writes
from sungrow2mqtt.control.spec import RATED_POWER, Bound, ParameterSpec, property_limit

__all__ = [
    "RATED_POWER",
    "Bound",
    "HaValue",
    "ParameterCatalog",
    "ParameterSpec",
    "SettingError",
    "Write",
    "allowed_values",
    "decode",
    "encode",
    "load_parameters",
    "parse_parameters",
    "plan_writes",
    "property_limit",
]
