"""Wall and CPU time of a realtime poll cycle, split into cloud wait and the bridge's own work,
plus how many points a second the catalog mapping gets through.

Run from the repository root: ``python benchmarks/cycle_time.py [--cycles 100] [--profile]``.
The simulator runs in another process, so CPU time here is the bridge's (and paho's) alone.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import math
import pstats
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from _harness import (
    GATEWAY_BURST, GATEWAY_RATE, MISSING_READINGS, InProcessBridge, Mosquitto, SimulatorProcess,
    add_common_arguments, bridge_config, fleet_label, iter_fleets, ms, new_base_topic,
    setup_logging, summary, table, workdir,
)

from sungrow2mqtt.model import Device

MODES = ("no broker", "mosquitto")
WARMUP_CYCLES = 5
THROUGHPUT_SECONDS = 1.0
CLOUD_REFRESH = 300.0      # seconds between the cloud's 5-minute slots of values
BROKER_UPDATES = 2000      # device states published per fleet to time the broker path


class Stopwatch:
    """Wall and thread-CPU time spent inside wrapped calls, from any thread (the client's pool
    runs the calls), to split a cycle into its parts."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self._lock = threading.Lock()

    def wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """``func``, timed into this stopwatch, so the bridge calls it unaware of the timing."""
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                with self._lock:
                    self.wall += time.perf_counter() - wall
                    self.cpu += time.thread_time() - cpu
        return timed

    def reset(self) -> None:
        """Zero the tallies: each cycle is split on its own."""
        with self._lock:
            self.wall = self.cpu = 0.0


@contextlib.contextmanager
def running_bridge(spec: str, with_broker: bool, tmp: Path, **simulator: Any
                   ) -> Iterator[Tuple[InProcessBridge, SimulatorProcess]]:
    """A bridge with its devices known, against a simulator (and a mosquitto if asked)."""
    with SimulatorProcess(spec, **simulator) as sim, contextlib.ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(tmp)) if with_broker else None
        config = bridge_config(sim.url, broker.port if broker else None, new_base_topic(), tmp)
        running = stack.enter_context(InProcessBridge(config, tmp))
        if broker:
            running.connect()
        running.poller.run("devices")
        if broker and not running.service.announcer.flush(600):
            raise RuntimeError("the discovery configs were not all sent")
        yield running, sim


def time_cycles(running: InProcessBridge, sim: SimulatorProcess, cycles: int
                ) -> Dict[str, List[float]]:
    """Per-cycle wall, process CPU, worker CPU, client (HTTP + JSON) and mapping times of
    realtime polls.  Each cycle reads the next 5-minute slot of values, as a poll every 300 s
    does (an unchanged state would not be published again)."""
    client_watch, mapping_watch = Stopwatch(), Stopwatch()
    transport, jobs = running.client.transport, running.jobs
    transport.call = client_watch.wrap(transport.call)  # type: ignore[method-assign]
    jobs.update_device = mapping_watch.wrap(  # type: ignore[method-assign]
        jobs.update_device)
    figures: Dict[str, List[float]] = {k: [] for k in (
        "wall", "cpu", "worker_cpu", "client_cpu", "mapping", "network_wait")}
    for index in range(WARMUP_CYCLES + cycles):
        sim.move_clock((index + 1) * CLOUD_REFRESH)
        client_watch.reset()
        mapping_watch.reset()
        wall, cpu, worker = time.perf_counter(), time.process_time(), time.thread_time()
        running.poller.run("realtime")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        worker = time.thread_time() - worker
        outcome = running.fleet.snapshot().outcomes["realtime"]
        if outcome.ok is not True:
            raise RuntimeError(f"realtime poll failed: {outcome.error}")
        if index < WARMUP_CYCLES:
            continue
        for key, value in (("wall", wall), ("cpu", cpu), ("worker_cpu", worker),
                           ("client_cpu", client_watch.cpu), ("mapping", mapping_watch.wall),
                           ("network_wait", max(0.0, wall - worker))):
            figures[key].append(value)
    running.service.mqtt.wait_published(30)
    return figures


def realtime_rows(running: InProcessBridge) -> List[Tuple[Device, Dict[str, Any]]]:
    """(device, raw realtime row) of every device: realistic input for the mapping loops."""
    devices = running.fleet.devices()
    catalog = running.service.catalog
    points = {t: [s.point_id for s in catalog.enabled(t)]
              for t in {d.device_type for d in devices}}
    rows = running.client.get_real_time_data([d.ps_key for d in devices], points).by_ps_key()
    return [(d, rows[d.ps_key]) for d in devices if d.ps_key in rows]


def throughput(work: Callable[[], int]) -> float:
    """Points a second ``work`` (returning points handled) manages; a second evens out noise."""
    done, started = 0, time.perf_counter()
    while True:
        done += work()
        elapsed = time.perf_counter() - started
        if elapsed >= THROUGHPUT_SECONDS:
            return done / elapsed


def mapping_throughput(running: InProcessBridge, connected: bool) -> Dict[str, float]:
    """Points/s through PointSpec.convert alone and through the bridge's update_device.

    With a broker, a fixed number of device updates is timed until mosquitto acknowledged every
    publish: paho queues faster than it sends, so a loop alone would time the queueing.
    """
    pairs = realtime_rows(running)
    specs = {d.device_type: running.service.catalog.enabled(d.device_type) for d, _ in pairs}
    points = sum(len(specs[d.device_type]) for d, _ in pairs)
    polled_at = dt.datetime.now(dt.timezone.utc)

    def convert_all() -> int:
        for device, row in pairs:
            for spec in specs[device.device_type]:
                spec.convert(row.get(spec.api_key))
        return points

    def update_all() -> int:
        for device, row in pairs:
            running.jobs.update_device(device, row, polled_at)
        return points
    if not connected:
        return {"convert": throughput(convert_all), "update": throughput(update_all)}
    rounds = max(1, math.ceil(BROKER_UPDATES / len(pairs)))
    # every round a new device_time, so every state changed and is published (as in real polls)
    slots = [[(device, {**row, "device_time": (polled_at + dt.timedelta(minutes=5 * number))
                        .strftime("%Y%m%d%H%M%S")}) for device, row in pairs]
             for number in range(1, rounds + 1)]
    started = time.perf_counter()
    for slot in slots:
        for device, row in slot:
            running.jobs.update_device(device, row, polled_at)
    if not running.service.mqtt.wait_published(120):
        raise RuntimeError("mosquitto did not acknowledge the updates within 120 s")
    elapsed = time.perf_counter() - started
    return {"update": rounds * points / elapsed, "messages": rounds * len(pairs) / elapsed}


def paced_cycles(spec: str, tmp: Path, cycles: int) -> Tuple[float, float]:
    """Median wall time and rate-limit wait per back-to-back cycle under the gateway's bucket."""
    with running_bridge(spec, False, tmp, burst=GATEWAY_BURST, rate=GATEWAY_RATE
                        ) as (running, _):
        stats = running.client.transport.stats
        walls, waits = [], []
        for _ in range(cycles):
            before, started = stats.rate_limit_waits, time.perf_counter()
            running.poller.run("realtime")
            walls.append(time.perf_counter() - started)
            waits.append(stats.rate_limit_waits - before)
        return summary(walls)["median"], summary(waits)["median"]


def profile(spec: str, tmp: Path, cycles: int) -> str:
    """cProfile's top functions (own time) over cycles with a broker: where the CPU goes."""
    with running_bridge(spec, True, tmp) as (running, sim):
        profiler = cProfile.Profile()
        for index in range(cycles):
            sim.move_clock((index + 1) * CLOUD_REFRESH)
            profiler.enable()
            running.poller.run("realtime")
            profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
        return out.getvalue()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print cycle and throughput tables; --profile adds where a cycle's CPU goes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--cycles", type=int, default=100, help="timed cycles per fleet and mode")
    parser.add_argument("--paced-cycles", type=int, default=10,
                        help="cycles under the gateway's burst limit (0 skips that table)")
    parser.add_argument("--profile", metavar="FLEET", nargs="?", const="100",
                        help="also profile cycles of this fleet (default 100 devices)")
    parser.add_argument("--missing-reading", choices=MISSING_READINGS, default="null",
                        help="how the simulator sends a point without a reading: null "
                             "(the document, default) or dashes (\"--\", some live plants)")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    cycle_rows: List[List[object]] = []
    mapping_rows: List[List[object]] = []
    paced_rows: List[List[object]] = []
    with workdir() as name:
        tmp = Path(name)
        for spec in iter_fleets(args.fleets):
            rates: Dict[str, float] = {}
            for mode in MODES:
                connected = mode == "mosquitto"
                with running_bridge(spec, connected, tmp,
                                    missing_reading=args.missing_reading) as (running, sim):
                    devices = len(running.fleet.devices())
                    figures = time_cycles(running, sim, args.cycles)
                    med = {k: summary(v)["median"] for k, v in figures.items()}
                    cycle_rows.append([
                        fleet_label(spec), devices, mode, ms(med["wall"]),
                        ms(summary(figures["wall"])["p95"]), ms(med["cpu"]),
                        ms(med["network_wait"]), ms(med["worker_cpu"]),
                        ms(med["client_cpu"]), ms(med["mapping"])])
                    rates.update({f"{key} ({mode})": value for key, value
                                  in mapping_throughput(running, connected).items()})
            mapping_rows.append([fleet_label(spec), f"{rates['convert (no broker)']:,.0f}",
                                 f"{rates['update (no broker)']:,.0f}",
                                 f"{rates['update (mosquitto)']:,.0f}",
                                 f"{rates['messages (mosquitto)']:,.0f}"])
            if args.paced_cycles:
                wall, wait = paced_cycles(spec, tmp, args.paced_cycles)
                paced_rows.append([fleet_label(spec), ms(wall), ms(wait)])
        print(f"Realtime cycle (poller.run('realtime')), median of {args.cycles} "
              f"after {WARMUP_CYCLES} warm-up cycles, milliseconds; simulator without "
              "burst limit in another process; every cycle reads new values (the simulator's "
              f"clock moves 5 minutes); no reading sent as {args.missing_reading}.\n")
        print(table(["fleet", "bridged", "MQTT", "wall", "wall p95", "CPU (process)",
                     "cloud wait (wall - worker CPU)", "worker CPU",
                     "client CPU (HTTP+JSON, pool)", "mapping+publish"], cycle_rows))
        print("\nMapping throughput, points per second (realistic raw values from the simulator):"
              "\n")
        print(table(["fleet", "PointSpec.convert", "update_device, no broker",
                     "update_device + mosquitto (acknowledged)", "state messages/s"],
                    mapping_rows))
        if paced_rows:
            print(f"\nBack-to-back realtime cycles under the gateway's burst limit "
                  f"({GATEWAY_BURST} calls, {GATEWAY_RATE:g}/s), median ms per cycle:\n")
            print(table(["fleet", "wall", "rate-limit waits (summed over the pool's calls)"],
                        paced_rows))
        if args.profile:
            print(f"\nProfile of {args.cycles} cycles, {fleet_label(args.profile)}, with "
                  "mosquitto (top 20 by own time):\n")
            print(profile(args.profile, tmp, args.cycles))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
