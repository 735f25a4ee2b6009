"""API calls per poll cycle against the simulator, next to the fewest the Open API allows.

Run from the repository root: ``python benchmarks/calls_per_cycle.py [--fleets 1,10,100,default]``.
The quota is spent on calls, so this is the figure that decides how often a fleet can be polled.
"""
from __future__ import annotations

import argparse
import math
from typing import Dict, List, Optional, Sequence

from _harness import (
    CycleCalls, add_common_arguments, fleet_label, iter_fleets, measure_calls, setup_logging,
    table,
)

# The document's limits (2.14: at most 50 devices per getDeviceRealTimeData call, one device type
# per call).  It names no page size nor point limit; 100 is what the client asks for, so a point
# chunk and a page are 100 here too.
DEVICES_PER_CALL = 50
POINTS_PER_CALL = 100
ROWS_PER_PAGE = 100


def minimum_calls(cycle: CycleCalls) -> Dict[str, int]:
    """The fewest calls each kind of poll needs for this fleet under the document's limits."""
    realtime = sum(math.ceil(count / DEVICES_PER_CALL)
                   * math.ceil(cycle.points_by_type[device_type] / POINTS_PER_CALL)
                   for device_type, count in cycle.by_type.items()
                   if cycle.points_by_type[device_type])
    devices = (math.ceil(max(cycle.plants, 1) / ROWS_PER_PAGE)
               + math.ceil(max(cycle.devices, 1) / ROWS_PER_PAGE))
    faults = math.ceil(max(cycle.open_faults, 1) / ROWS_PER_PAGE)
    return {"devices": devices, "realtime": realtime, "faults": faults}


def _cell(measured: int, least: int) -> str:
    return f"{measured} / {least}" + ("" if measured <= least else " (!)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the calls table; its numbers feed quota_fit.py and the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--open-faults", type=int, default=0,
                        help="raise this many faults first, to see the faults poll page")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    rows: List[List[object]] = []
    details: List[List[object]] = []
    for spec in iter_fleets(args.fleets):
        cycle = measure_calls(spec, args.open_faults)
        least = minimum_calls(cycle)
        quota_calls = cycle.calls["devices"].get("getOpenApiCallInfo", 0)
        devices = cycle.total("devices") - quota_calls
        poll = cycle.total("realtime") + cycle.total("faults")
        rows.append([
            fleet_label(spec), cycle.plants, cycle.devices, len(cycle.by_type),
            _cell(devices, least["devices"]) + f" +{quota_calls} quota",
            _cell(cycle.total("realtime"), least["realtime"]),
            _cell(cycle.total("faults"), least["faults"]),
            _cell(poll, least["realtime"] + least["faults"]),
            "yes" if cycle.calls == cycle.server_calls else "NO",
        ])
        for kind, services in cycle.calls.items():
            details.append([fleet_label(spec), kind,
                            ", ".join(f"{name} x{n}" for name, n in sorted(services.items()))])
    print("API calls per poll, measured / theoretical minimum "
          f"({DEVICES_PER_CALL} devices of one type per realtime call, {POINTS_PER_CALL} points "
          f"per chunk, {ROWS_PER_PAGE} rows per page); login (1 call) is once per token, "
          "not per cycle.\n")
    print(table(["fleet", "plants", "devices", "types", "devices refresh", "realtime", "faults",
                 "poll cycle (realtime+faults)", "client = simulator count"], rows))
    print("\nBy service:\n")
    print(table(["fleet", "poll", "HTTP requests"], details))
    print("\n(!) marks a poll that used more calls than the minimum.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
