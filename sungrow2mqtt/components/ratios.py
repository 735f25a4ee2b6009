"""Ratio points: never an impossible percentage, whichever way a plant sends them.

The catalog reads a ratio point (:attr:`PointSpec.is_ratio`) as a 0-1 fraction, as live data sends
SOC and SOH; some points and firmware send 0-100 instead.  A raw value that cannot be a fraction
(clearly above 1, at most 100) marks that point of that device as 0-100 for good: from then on a
1.0 there means 1 %, not 100 %.  What was learned is kept in the state directory, so a restart
does not read the next 1.0 as 100 % again.  A device that never sent such a value stays a
fraction device (1.0 = 100 %).

Whatever the scale, a share of a whole (:attr:`PointSpec.is_share`: ratios, battery levels) below
0 or above 100 % is impossible: it is dropped, not published, with one log line per episode.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any, Dict, FrozenSet, Mapping, Optional, Sequence, Set, Tuple

from sungrow2mqtt.catalog import PointSpec
from sungrow2mqtt.catalog.spec import to_number
from sungrow2mqtt.components.fleet import PointMap, Values
from sungrow2mqtt.components.state_file import StateFile
from sungrow2mqtt.model import Device

log = logging.getLogger(__name__)

# A fraction is at most 1; a raw value above this cannot be one, however a sensor rounds.
FRACTION_MAX = 1.5
PERCENT_MAX = 100.0


class RatioPoints:
    """Per device and ratio point: fraction (the catalog's default) or 0-100 (learned, kept)."""

    def __init__(self, path: Optional[Path] = None) -> None:
        self._file = StateFile(path)
        self._lock = threading.Lock()
        self._percent: Dict[str, Set[int]] = _percent_points(self._file.load())
        self._dropped: Set[Tuple[str, int]] = set()     # (ps_key, point) with an open episode
        self._variants: Dict[Tuple[PointMap, FrozenSet[int]], PointMap] = {}

    def points_for(self, device: Device, points: PointMap, row: Mapping[str, Any]) -> PointMap:
        """``points`` as this device's ``row`` must be read: its 0-100 ratio points at scale 1.

        A ratio value in ``row`` that cannot be a fraction is learned first.
        """
        if not points.ratios:           # most device types: nothing to learn or to look up
            return points
        learned = [spec for spec in points.ratios
                   if FRACTION_MAX < (to_number(row.get(spec.api_key)) or 0) <= PERCENT_MAX]
        if learned:
            self._learn(device, learned)
        with self._lock:
            percent = self._percent.get(device.ps_key)
            if not percent:
                return points
            read_as_percent = frozenset(spec.point_id for spec in points.ratios
                                        if spec.point_id in percent)
            if not read_as_percent:
                return points
            variant = self._variants.get((points, read_as_percent))
            if variant is None:           # one per combination of points learned, kept
                variant = self._variants[points, read_as_percent] = PointMap(
                    dataclasses.replace(spec, scale=1) if spec.point_id in read_as_percent
                    else spec for spec in points.specs)
            return variant

    def possible(self, device: Device, points: PointMap, values: Values) -> Values:
        """``values`` without impossible shares (below 0 or above 100 %), each logged once."""
        kept = values
        for spec in points.shares:
            value = values.get(spec.key)
            if value is None:
                continue
            impossible = isinstance(value, (int, float)) and not 0 <= value <= PERCENT_MAX
            if not impossible and not self._dropped:    # usual: no episode open, none to end
                continue
            episode = (device.ps_key, spec.point_id)
            with self._lock:
                first = impossible and episode not in self._dropped
                if impossible:
                    self._dropped.add(episode)
                else:
                    self._dropped.discard(episode)
            if impossible:
                if kept is values:
                    kept = dict(values)
                del kept[spec.key]
            if first:
                log.warning("%s of %s: %s %% is impossible (0-100 %% expected); not published",
                            spec.name, device.ps_key, value)
        return kept

    def _learn(self, device: Device, specs: Sequence[PointSpec]) -> None:
        with self._lock:
            known = self._percent.setdefault(device.ps_key, set())
            new = [spec for spec in specs if spec.point_id not in known]
            known.update(spec.point_id for spec in new)
            if new:
                self._file.save({key: sorted(points) for key, points in self._percent.items()})
        for spec in new:
            log.info("%s (%d) of %s arrives as 0-100, not as a 0-1 fraction: reading it so from "
                     "now on", spec.name, spec.point_id, device.ps_key)


def _percent_points(document: Any) -> Dict[str, Set[int]]:
    """The stored ``{ps_key: [point ids]}``; anything else in the file is ignored."""
    if not isinstance(document, dict):
        return {}
    return {str(key): {int(p) for p in points if isinstance(p, int)}
            for key, points in document.items() if isinstance(points, list)}
