"""The fastest safe polling interval per fleet and hourly quota, from measured calls per cycle.

Run from the repository root: ``python benchmarks/quota_fit.py [--margin 0.8]``.  It answers the
question a user asks before lowering ``polling.realtime``: will this fleet stay within its quota?
"""
from __future__ import annotations

import argparse
from typing import List, Optional, Sequence

from _harness import (
    add_common_arguments, fleet_label, iter_fleets, measure_calls, setup_logging, table,
)

from sungrow2mqtt.quota import MIN_POLL_INTERVAL, calls_per_hour, fastest_safe_interval

QUOTAS = (1000, 10000)
DEFAULT_INTERVALS = (300, 300, 3600)     # polling.realtime, .faults, .devices defaults
DEVICES_INTERVAL = DEFAULT_INTERVALS[2]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print one row per fleet and quota; the README's quota table comes from here."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser, fleets=("default", "10", "100"))
    parser.add_argument("--margin", type=float, default=0.8,
                        help="share of the quota polling may use (default 0.8)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    rows: List[List[object]] = []
    for spec in iter_fleets(args.fleets):
        cycle = measure_calls(spec)
        realtime, faults = cycle.total("realtime"), cycle.total("faults")
        devices = cycle.total("devices")
        at_defaults = calls_per_hour(*DEFAULT_INTERVALS, realtime, faults, devices)
        for quota in QUOTAS:
            raw = fastest_safe_interval(quota, realtime, faults, devices, DEVICES_INTERVAL,
                                        margin=args.margin, minimum=1)
            usable = max(raw, MIN_POLL_INTERVAL)
            spent = calls_per_hour(usable, usable, DEVICES_INTERVAL, realtime, faults, devices)
            rows.append([fleet_label(spec), f"{realtime} + {faults} (+{devices})", quota,
                         raw, usable, f"{spent:.0f} ({spent / quota:.0%})",
                         f"{at_defaults:.0f} ({at_defaults / quota:.0%})"])
    print(f"Fastest safe interval: realtime and faults polled every N s, devices every "
          f"{DEVICES_INTERVAL} s, at most {args.margin:g} x quota calls an hour.  'usable' is "
          f"never below the configuration's minimum of {MIN_POLL_INTERVAL} s.\n")
    print(table(["fleet", "calls: realtime + faults (+devices refresh)", "quota/h",
                 "fastest safe (s)", "usable (s)", "calls/h at usable",
                 "calls/h at defaults 300/300/3600"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
