"""API calls that control spends: setting a device up, and one write as it ends.

Run from the repository root: ``python benchmarks/control_quota.py [--expire]``.
Everything runs with the product's defaults: tasks polled every 5 s, writes to one device 10 s
apart, the simulator's tasks take 3 s and expire after 120 s (``--expire`` waits for that:
about two minutes more).  Every call counts against the same hourly quota as polling.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from _harness import ROOT, Mosquitto, setup_logging, table

sys.path.insert(0, str(ROOT / "tests" / "control"))

from control_harness import ESS, SG5, SG8, ControlUnderTest  # noqa: E402
from mqtt_probe import MqttProbe  # noqa: E402

from sungrow2mqtt.control.component import WRITE_SPACING  # noqa: E402
from sungrow2mqtt.isolarcloud.params import POLL_INTERVAL  # noqa: E402
from sungrow2mqtt.simulator import SimulatorServer  # noqa: E402

SETUP_SERVICES = ("paramSettingCheck", "getDevPropertyPointValue", "paramSetting",
                  "getParamSettingTask")


def _calls(sim: SimulatorServer) -> Dict[str, int]:
    """Control's calls only: the device list the set-up reads is the bridge's, not control's."""
    return {k: v for k, v in sim.call_counts().items() if k in SETUP_SERVICES}


def _cell(calls: Dict[str, int]) -> str:
    parts = [f"{calls[s]} {s}" for s in SETUP_SERVICES if calls.get(s)]
    return f"{sum(calls.values())} ({', '.join(parts)})"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the calls per control action; the README's quota figures come from here."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expire", action="store_true", help="also a write whose task expires")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the logs")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    rows: List[List[Any]] = []
    with tempfile.TemporaryDirectory() as tmp, Mosquitto(Path(tmp)) as broker, \
            SimulatorServer() as sim:
        base = "control_quota"
        probe = MqttProbe(broker.port, f"{base}/#")
        control = ControlUnderTest(sim, broker.port, base, poll_interval=POLL_INTERVAL,
                                   write_spacing=WRITE_SPACING)
        try:
            sim.reset_counts()
            started = time.monotonic()
            control.refresh_devices()
            for ps_key in (ESS, SG5, SG8):
                probe.wait_topic(f"{base}/{ps_key}/control", timeout=120)
            rows.append(["set up 1 hybrid + 2 string inverters", _cell(_calls(sim)),
                         f"{time.monotonic() - started:.1f} s"])

            def write(label: str, settings: Dict[str, Any], ps_key: str = ESS,
                      prepare: Callable[[], None] = lambda: None) -> None:
                prepare()
                sim.reset_counts()
                started = time.monotonic()
                answer = probe.request(base, "set", {"ps_key": ps_key, "settings": settings},
                                       timeout=300)
                outcome = answer["status"] + (f": {answer['error']}" if "error" in answer else "")
                rows.append([f"{label} -> {outcome}", _cell(_calls(sim)),
                             f"{time.monotonic() - started:.1f} s"])

            write("write 1 setting (SOC upper limit 90 %)", {"soc_upper_limit": 90})
            write("write a forced charging window (5 settings, 1 request)", {
                "forced_charging": "ON", "forced_charging_1_start_hour": 1,
                "forced_charging_1_end_hour": 5, "forced_charging_1_target_soc": 90,
                "forced_charging_days": "Every day"})
            write("write refused by the device", {"soc_lower_limit": 20},
                  prepare=lambda: sim.control.fail_next_write("refused"))
            write("write to an offline device", {"battery_first": "ON"},
                  prepare=lambda: sim.control.set_offline(ESS))
            sim.control.set_offline(ESS, False)
            if args.expire:
                write("write whose task expires", {"soc_lower_limit": 20},
                      prepare=lambda: sim.control.fail_next_write("expire"))
        finally:
            control.close()
            probe.close()
    print(f"Control: API calls per action (task polls every {POLL_INTERVAL:g} s, writes to one "
          f"device {WRITE_SPACING:g} s apart, simulator tasks {3:g} s)\n")
    print(table(["action", "API calls", "took"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
