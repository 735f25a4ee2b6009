"""Startup time to the first published state, and memory, threads and file descriptors of the
bridge after startup and after 1,000 realtime cycles.

Run from the repository root: ``python benchmarks/startup_memory.py [--runs 5] [--cycles 1000]``.
The bridge runs for months on small boxes (a Raspberry Pi next to Home Assistant), so what it
holds after startup and whether that grows with every cycle matters more than speed.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from _harness import (
    BridgeProcess, InProcessBridge, Mosquitto, Recorder, SimulatorProcess,
    add_common_arguments, bridge_config, child_env, fleet_label, make_fleet, mib,
    new_base_topic, proc_stats, setup_logging, table, wait_first_cycle, workdir,
    write_config,
)


def python_start(code: str, runs: int) -> float:
    """Median seconds for ``python -c code``: the floor under the bridge's startup."""
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", code], check=True, env=child_env())
        times.append(time.monotonic() - started)
    return statistics.median(times)


def subprocess_startups(sim: SimulatorProcess, broker: Mosquitto, tmp: Path, plant_key: str,
                        runs: int) -> Dict[str, List[float]]:
    """Per run: seconds to online and to the first plant state, the child's RSS etc., stop time."""
    figures: Dict[str, List[float]] = {k: [] for k in (
        "online", "first_state", "first_cycle", "rss_kib", "threads", "fds", "stop", "exit")}
    errors: List[str] = []
    for run in range(runs):
        base = new_base_topic()
        config_path = write_config(bridge_config(sim.url, broker.port, base, tmp), tmp)
        with Recorder(broker.port, f"{base}/#") as recorder:
            with BridgeProcess(config_path, tmp / f"stderr-{run}.log") as bridge:
                started = bridge.started_at
                online, _ = recorder.first(f"{base}/bridge/state", started, 60,
                                           check=lambda payload: payload == b"online")
                state, _ = recorder.first(f"{base}/{plant_key}", started, 60)
                wait_first_cycle(recorder, base, started)
                cycle_done = time.monotonic()
                stats = proc_stats(bridge.pid)
            errors.extend(bridge.logged("ERROR"))
        for key, value in (("online", online - started), ("first_state", state - started),
                           ("first_cycle", cycle_done - started), ("stop", bridge.stop_seconds),
                           ("exit", float(bridge.exit_code or 0))):
            figures[key].append(value)
        for key in ("rss_kib", "threads", "fds"):
            figures[key].append(float(stats[key]))
    for line in sorted(set(errors)):
        print(f"bridge stderr (ERROR): {line}")
    return figures


def in_process_cycles(sim: SimulatorProcess, broker: Mosquitto, tmp: Path, cycles: int
                      ) -> List[List[object]]:
    """RSS, threads and fds of this process: before the bridge, after startup, after cycles."""
    rows: List[List[object]] = []

    def snapshot(label: str, seconds: Optional[float] = None) -> None:
        stats = proc_stats()
        rows.append([label, mib(stats["rss_kib"]), stats["threads"], stats["fds"],
                     "" if seconds is None else f"{seconds:.1f}"])
    gc.collect()
    snapshot("before the bridge (imports done)")
    started = time.monotonic()
    config = bridge_config(sim.url, broker.port, new_base_topic(), tmp)
    with InProcessBridge(config, tmp) as running:
        running.connect()
        running.poller.run_cycle()
        outcomes = running.fleet.snapshot().outcomes
        if not all(o.ok for o in outcomes.values()):
            raise RuntimeError(f"the first cycle failed: {outcomes}")
        running.service.mqtt.wait_published(30)
        snapshot("after startup (connect + first full cycle)", time.monotonic() - started)
        started = time.monotonic()
        for _ in range(cycles):
            running.poller.run("realtime")
        running.service.mqtt.wait_published(60)
        failed = running.fleet.snapshot().outcomes["realtime"].ok is not True
        snapshot(f"after {cycles} realtime cycles", time.monotonic() - started)
        gc.collect()
        snapshot(f"after {cycles} realtime cycles and gc.collect()")
        waiting = running.service.mqtt.unacknowledged()
        rows.append([f"(QoS 1 publishes still unacknowledged: {waiting}; "
                     f"API calls: {running.client.transport.stats.total}"
                     f"{'; LAST CYCLE FAILED' if failed else ''})", "", "", "", ""])
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the startup and memory tables for the README."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="subprocess startups to time")
    parser.add_argument("--cycles", type=int, default=1000, help="in-process realtime cycles")
    parser.add_argument("--fleet", default="default", help="'default' or a number of devices")
    add_common_arguments(parser, fleets=None)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    plant_key = make_fleet(args.fleet).plants[0].ps_key
    with workdir() as name, SimulatorProcess(args.fleet) as sim, \
            Mosquitto(Path(name)) as broker:
        tmp = Path(name)
        bare = python_start("pass", args.runs)
        imports = python_start("import sungrow2mqtt.service", args.runs)
        runs = subprocess_startups(sim, broker, tmp, plant_key, args.runs)
        memory = in_process_cycles(sim, broker, tmp, args.cycles)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"Startup of `python -m sungrow2mqtt run -c cfg`, {fleet_label(args.fleet)}, median of "
          f"{args.runs} runs (min-max), seconds from spawning the process.\n")
    rows = [["python -c pass", f"{bare:.3f}"],
            ["python -c 'import sungrow2mqtt.service'", f"{imports:.3f}"]]
    for key, label in (("online", "bridge/state online"),
                       ("first_state", f"first <base>/{plant_key}"),
                       ("first_cycle", "first cycle done (bridge/info: faults ok)"),
                       ("stop", "SIGTERM -> exit")):
        rows.append([label, f"{med[key]:.3f} ({min(runs[key]):.3f}-{max(runs[key]):.3f})"])
    print(table(["milestone", "seconds"], rows))
    print(f"\nThe bridge process after its first cycle: RSS {mib(med['rss_kib'])} MiB, "
          f"{med['threads']:.0f} threads, {med['fds']:.0f} open fds; exit codes "
          f"{sorted(set(int(c) for c in runs['exit']))}.\n")
    print(f"In-process ({fleet_label(args.fleet)}, mosquitto, cycles driven by "
          "poller.run('realtime')):\n")
    print(table(["moment", "RSS MiB", "threads", "fds", "took s"], memory))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
