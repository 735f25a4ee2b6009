"""Latency of an on-demand refresh through a real broker, next to the cloud's own answer time.

Run from the repository root: ``python benchmarks/refresh_latency.py [--samples 20]``.  A user
pressing "refresh" in Home Assistant waits for this, so the bridge's share of it must be small.
"""
from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from _harness import (
    BridgeProcess, InProcessBridge, Mosquitto, Recorder, SimulatorProcess,
    add_common_arguments, bridge_config, fleet_label, ms, new_base_topic, setup_logging, summary,
    table, wait_first_cycle, workdir, write_config,
)

GAP_SECONDS = 0.05     # between samples, so one refresh never coalesces with the next
CLOUD_REFRESH = 300.0  # seconds between the cloud's 5-minute slots of values


def refresh_samples(recorder: Recorder, sim: SimulatorProcess, base: str, plant_key: str,
                    samples: int) -> Dict[str, List[float]]:
    """Seconds from publishing a refresh request to the plant's new state and to the response.

    Before each refresh the simulator's clock moves on 5 minutes, so the cloud has new values
    (the bridge does not publish a state again that did not change).
    """
    state_topic, response_topic = f"{base}/{plant_key}", f"{base}/bridge/response/refresh"
    figures: Dict[str, List[float]] = {"state": [], "response": [], "polls": [], "api_calls": []}
    for sample in range(samples):
        sim.move_clock((sample + 1) * CLOUD_REFRESH)
        transaction = uuid.uuid4().hex

        def ours(data: bytes, expected: str = transaction) -> bool:
            return bool(json.loads(data).get("transaction") == expected)
        started = time.monotonic()
        recorder.publish(f"{base}/bridge/request/refresh", {"transaction": transaction})
        state_at, _ = recorder.first(state_topic, started)
        answered_at, payload = recorder.first(response_topic, started, check=ours)
        response = json.loads(payload)
        if response["status"] != "ok":
            raise RuntimeError(f"refresh failed: {response}")
        figures["state"].append(state_at - started)
        figures["response"].append(answered_at - started)
        figures["api_calls"].append(float(response["data"]["api_calls"]))
        info = json.loads(recorder.between(f"{base}/bridge/info", started, answered_at)[-1])
        figures["polls"].append(max(info["last_poll"][kind]["duration_s"]
                                    for kind in ("realtime", "faults")))
        time.sleep(GAP_SECONDS)
    return figures


def measure(recorder: Recorder, sim: SimulatorProcess, base: str, samples: int
            ) -> Dict[str, List[float]]:
    """Wait for the bridge's first cycle (a refresh before it would measure startup), sample."""
    wait_first_cycle(recorder, base)
    listed = json.loads(recorder.between(f"{base}/bridge/devices", 0.0, time.monotonic())[-1])
    plant_key = listed["plants"][0]["ps_key"]
    return refresh_samples(recorder, sim, base, plant_key, samples)


def cloud_samples(sim_url: str, tmp: Path, samples: int) -> Dict[str, List[float]]:
    """Seconds the cloud (with the HTTP client) takes for one refresh's calls, called directly
    and together, as the bridge sends them; and per call, one at a time."""
    config = bridge_config(sim_url, None, new_base_topic(), tmp)
    with InProcessBridge(config, tmp) as running:
        client, catalog = running.client, running.service.catalog
        running.jobs.refresh_devices()
        devices = running.fleet.devices()
        keys = [d.ps_key for d in devices]
        points = {t: [s.point_id for s in catalog.enabled(t)]
                  for t in {d.device_type for d in devices}}
        figures: Dict[str, List[float]] = {"refresh_calls": [], "per_call": []}
        for _ in range(samples):
            started = time.perf_counter()
            faults = client.submit(client.get_fault_alarm_info)
            client.get_real_time_data(keys, points)
            faults.result()
            figures["refresh_calls"].append(time.perf_counter() - started)
            started = time.perf_counter()
            client.get_fault_alarm_info()
            figures["per_call"].append(time.perf_counter() - started)
        return figures


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the latency table; the README's refresh row comes from here."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--fleet", default="default", help="'default' or a number of devices")
    parser.add_argument("--broker-nodelay", action="store_true",
                        help="run mosquitto with set_tcp_nodelay true")
    add_common_arguments(parser, fleets=None)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    with workdir() as name, SimulatorProcess(args.fleet) as sim, \
            Mosquitto(Path(name), nodelay=args.broker_nodelay) as broker:
        tmp, base = Path(name), new_base_topic()
        config = bridge_config(sim.url, broker.port, base, tmp)
        with Recorder(broker.port, f"{base}/#") as recorder:
            with BridgeProcess(write_config(config, tmp)) as bridge:
                refresh = measure(recorder, sim, base, args.samples)
            if bridge.exit_code != 0:
                print(f"warning: the bridge exited with {bridge.exit_code} on SIGTERM")
        cloud = cloud_samples(sim.url, tmp, args.samples)
    rows = []
    for label, values in (("request -> plant state", refresh["state"]),
                          ("request -> response", refresh["response"]),
                          ("bridge's realtime+faults wave (bridge/info)", refresh["polls"]),
                          ("cloud alone: the refresh's calls", cloud["refresh_calls"]),
                          ("cloud alone: per HTTP call", cloud["per_call"])):
        figures = summary(values)
        rows.append([label] + [ms(figures[k]) for k in ("min", "median", "p95", "max")])
    overhead = summary(refresh["response"])["median"] - summary(cloud["refresh_calls"])["median"]
    notes = " (set_tcp_nodelay true)" if args.broker_nodelay else ""
    print(f"Refresh latency, {fleet_label(args.fleet)}, N={args.samples}, min_refresh_spacing 0, "
          f"bridge as `python -m sungrow2mqtt run`, mosquitto{notes}; milliseconds.\n")
    print(table(["path", "min", "median", "p95", "max"], rows))
    print(f"\nAPI calls per refresh: {summary(refresh['api_calls'])['median']:.0f}; bridge and "
          f"broker overhead (median response - median cloud calls): {ms(overhead)} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
