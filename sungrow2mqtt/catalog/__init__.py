"""The point catalog: how each iSolarCloud measuring point is named, scaled and announced to HA.

The catalog is data, not code: one YAML file per device type in ``catalog/data/`` (plus
``device_types.yaml``, the appendix-1 table of device type names), each citing the portal table
it came from. :func:`load_catalog` reads them, applies an optional user file and validates
everything with the same rules; :meth:`PointSpec.convert` turns an API value into the published
one.

Built-in file (one device type)::

    device_type: 14
    source: common-energy-storage-inverter-measuring-points.md
    points:
      - id: 13141                 # point id (int), unique per device type          required
        key: battery_soc          # stable snake_case [a-z][a-z0-9_]*, unique per type  required
        name: Battery level       # English, sentence case, shown by HA               required
        api_unit: null            # unit the API sends (the table's storage unit)
        unit: "%"                 # unit published to HA (must suit device_class)
        scale: 100                # published = API value * scale (default 1)
        device_class: battery     # HA sensor device class (2024.3), or null
        state_class: measurement  # measurement | total | total_increasing | null
        icon: mdi:battery         # optional
        precision: 1              # optional suggested_display_precision
        enabled: true             # tier: true | optional | false (default true), see below
        category: diagnostic      # optional entity category
        options: {0: Running}     # enum points only: code -> label (device_class enum)
        source: ...               # optional, defaults to the file's source

Tiers (``enabled``): ``true`` points are polled and shown in HA; ``optional`` points are polled
too but announced with ``enabled_by_default: false``, so a user switches them on in HA's UI;
``false`` points are neither (a user catalog can enable them). Default and optional points of a
device type together stay within one realtime call's point chunk
(``isolarcloud.client.REALTIME_POINTS_PER_CALL``), so the optional tier costs no extra call.

Ratios: there is no separate flag. A point the API sends as a 0-1 fraction (SOC 13141, 58604,
83252 on some firmware) has ``unit: "%"`` and ``scale: 100`` (:attr:`PointSpec.is_ratio`); one sent
as 0-100 (83334) has ``scale: 1``. Firmware differs: a ratio point of a device that reports a
value clearly above 1 is read as 0-100 for that device from then on (learned by the bridge and
kept in its state directory), so a user rarely needs to override ``scale``. Ratios and battery
levels (:attr:`PointSpec.is_share`) never publish a value below 0 or above 100 %.

Published values: numeric points (any of unit, state_class, non-enum device_class, precision or
a scale other than 1) publish ``float(value) * scale`` rounded to 15 significant digits, as a JSON
integer when integral; enum points publish the label of the code (an unknown code publishes the
code itself); other points publish the text as sent. "no reading" markers (null, "", "--") and
non-numeric text for a numeric point publish nothing (None).

User file (``points.catalog`` in the configuration): a mapping whose ``device_types`` key maps
a device type number to a list of entries of the same schema, plus an optional ``source``::

    source: my additions             # optional, cited by the points this file adds
    device_types:
      14:
        - id: 13141                  # a built-in id: only the given fields change
          scale: 1                   # e.g. this firmware sends SOC as 0-100
        - id: 13119
          enabled: false             # disable a built-in point
        - id: 13999                  # an unknown id adds a point: key and name required
          key: my_point
          name: My point
          api_unit: W
          unit: W
          device_class: power
          state_class: measurement

Every problem of a file is reported at once in one :class:`~sungrow2mqtt.errors.CatalogError`,
one line each, naming file and entry, e.g.
``my_points.yaml: device_types.14[3] (id 13011): unknown field 'unti' (did you mean 'unit'?)``.
:func:`open_points_to_yaml` writes such a user file from getOpenPointInfo rows.
"""
from __future__ import annotations

from sungrow2mqtt.catalog.ha import DEVICE_CLASS_STATE_CLASSES, DEVICE_CLASS_UNITS
from sungrow2mqtt.catalog.loader import Catalog, load_catalog
from sungrow2mqtt.catalog.openpoints import open_points_to_yaml
from sungrow2mqtt.catalog.spec import PointSpec

__all__ = [
    "DEVICE_CLASS_STATE_CLASSES",
    "DEVICE_CLASS_UNITS",
    "Catalog",
    "PointSpec",
    "load_catalog",
    "open_points_to_yaml",
]
