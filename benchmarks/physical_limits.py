"""The bridge against the physical limits: refresh and cold start under added latency, CPU and
memory at 1,000 devices, each figure beside the limit it is held to and the ratio.

Run from the repository root: ``python benchmarks/physical_limits.py [--samples 10]``
(about 20 minutes).  The real gateway is 100-400 ms away; the simulator adds the same latency
to every answer (its own ``latency``), so calls sent together cost one latency, calls sent one
after another one each.  Every simulator here has the gateway's burst limit on (15 calls,
10/s) unless a row says otherwise.

Limits:

* refresh, 7 and 100 devices: one round trip plus the local work (the refresh at 0 ms added
  latency, same machine, same code);
* refresh, 1,000 devices: the gateway's bucket lets 15 calls go at once and 10 a second after,
  so the last of N calls cannot leave before (N - 15) / 10 s: that, plus one round trip, plus the
  local work (a cycle without the bucket, at 0 ms);
* cold start (``python -m sungrow2mqtt run`` to every state), default fleet: the cold start at
  0 ms plus three dependent round trips (login; plant list, device list and quota together;
  the realtime wave);
* CPU per cycle, 1,000 devices: 80 ms (the issue's figure), and 1.29 times the CPU of a
  minimal poller (:func:`minimal_child`) measured in the same run, the issue's own ratio.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

REFRESH_FLEETS = ("default", "100", "1000")
LATENCIES = (0.0, 0.1, 0.3)
COLD_LATENCY = 0.3
COLD_ROUND_TRIPS = 3
BURST, RATE = 15, 10.0            # the simulator's (and the document's) gateway bucket
TARGETS = {"default": 1.3, "100": 1.3, "1000": 1.5, "cold": 1.5}
MIN_CALLS = {"default": 7, "100": 8, "1000": 23}     # calls_per_cycle.py: the document's minimum
CPU_CYCLES = 100
CPU_PAIRS = 3                     # bridge and minimal poller runs, taking turns
# The CPU target, 80 ms, was set on a machine where a minimal poller took 62 ms: the
# same ratio holds the bridge to it on any machine (minimal_child).
MINIMAL_RATIO = round(80 / 62, 2)
CLOUD_REFRESH = 300.0             # seconds between the cloud's 5-minute slots


# -- the child: a bridge alone in its process, cycled for CPU and memory ---------------------------

def cycles_child(config_path: str, sim_url: str, cycles: int, new_values: bool = True) -> int:
    """``physical_limits.py cycles CONFIG SIM_URL N [new|same]``: run N realtime+faults waves of
    a bridge in this process (nothing else imported: the RSS is the bridge's) and print the
    figures.  ``same``: the cloud's values do not change between the waves (after the first)."""
    import requests
    import yaml

    from sungrow2mqtt.config import parse_config
    from sungrow2mqtt.service import Service

    config = parse_config(yaml.safe_load(Path(config_path).read_text()), config_path)
    service = Service(config)
    answered: List[float] = []
    first_state: List[float] = []
    transport, mqtt = service.client.transport, service.mqtt
    call, publish = transport.call, mqtt.publish
    base = config.mqtt.base_topic

    def timed_call(name: str, *args: Any, **kwargs: Any) -> Any:
        result = call(name, *args, **kwargs)
        if name == "getDeviceRealTimeData" and not answered:
            answered.append(time.perf_counter())
        return result

    def timed_publish(topic: str, *args: Any, **kwargs: Any) -> bool:
        """Notes the first state of a cycle, then steps aside: the other thousand publishes
        of the cycle cost the bridge nothing for being measured."""
        if topic.count("/") == 1 and topic.startswith(base + "/") \
                and not topic.endswith("/bridge"):
            first_state.append(time.perf_counter())
            vars(mqtt).pop("publish", None)
        return publish(topic, *args, **kwargs)
    transport.call = timed_call        # type: ignore[assignment]
    control = requests.Session()
    service.start(worker=False)
    try:
        if not mqtt.wait_connected(30):
            raise SystemExit("the bridge could not connect to the broker")
        service.poller.run("devices")
        if not (service.announcer.flush(600) and mqtt.wait_published(600)):
            raise SystemExit("the discovery flood did not finish")
        walls, cpus, to_state = [], [], []
        for cycle in range(cycles + 3):                 # three warm-up cycles
            offset = (cycle + 1 if new_values else 1) * CLOUD_REFRESH
            control.post(f"{sim_url}/_sim/clock", json={"offset": offset},
                         timeout=10).raise_for_status()
            # configs of values seen for the first time go out first (startup, not a cycle)
            if not service.announcer.flush(600):
                raise SystemExit("the discovery flood did not finish")
            answered.clear()
            first_state.clear()
            mqtt.publish = timed_publish                # type: ignore[method-assign]
            wall, cpu = time.perf_counter(), time.process_time()
            service.poller.run_wave({"realtime": None, "faults": None})
            if not mqtt.wait_published(60):
                raise SystemExit("the broker did not acknowledge a cycle")
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if cycle >= 3:
                walls.append(wall)
                cpus.append(cpu)
                if first_state:                         # none when nothing changed
                    to_state.append(first_state[0] - answered[0])
        outcomes = service.fleet.snapshot().outcomes
        with open("/proc/self/status", encoding="ascii") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        print(json.dumps({
            "wall": statistics.median(walls), "cpu": statistics.median(cpus),
            "to_state": statistics.median(to_state) if to_state else None, "rss_kib": rss,
            "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "calls": outcomes["realtime"].api_calls + outcomes["faults"].api_calls,
            "devices": len(service.fleet.snapshot().values)}), flush=True)
    finally:
        service.stop()
        control.close()
    return 0


def minimal_child(sim_url: str, port: int, cycles: int, new_values: bool = True) -> int:
    """``physical_limits.py minimal SIM_URL PORT N [new|same]``: the least CPU a cycle of any
    bridge of this fleet takes, for scale on this machine.  The same realtime and fault calls
    through ``requests`` one after another, each value of the bridge's points read as a number
    (or kept as text), one JSON state per device published retained at the bridge's state QoS,
    and one QoS 1 message at the end (the bridge's ``bridge/info``).  No checks, no catalog
    conversion, no change detection, no threads of its own."""
    import paho.mqtt.client as mqtt
    import requests
    from paho.mqtt.enums import CallbackAPIVersion

    from sungrow2mqtt.catalog import load_catalog
    from sungrow2mqtt.components.publisher import STATE_QOS
    from sungrow2mqtt.isolarcloud.client import IsolarCloudClient, device_type_of
    from sungrow2mqtt.isolarcloud.transport import Transport
    from sungrow2mqtt.simulator import DEFAULT_CREDENTIALS as CREDENTIALS

    setup = IsolarCloudClient(Transport(sim_url, CREDENTIALS.appkey, CREDENTIALS.access_key),
                              CREDENTIALS.username, CREDENTIALS.password)
    ps_keys = [f"{row['ps_id']}_11_0_0" for row in setup.get_power_station_list()]
    ps_keys += [str(row["ps_key"]) for row in setup.get_device_list_by_user()]
    catalog = load_catalog()
    groups = []                       # (device type, ps_keys, point ids, (api key, key, scale))
    for device_type in sorted({device_type_of(key) for key in ps_keys}):
        specs = list(catalog.enabled(device_type))
        keys = [key for key in ps_keys if device_type_of(key) == device_type]
        reads = [(s.api_key, s.key, s.scale if s.is_numeric else None) for s in specs]
        groups += [(device_type, keys[i:i + 50], [s.point_id for s in specs], reads)
                   for i in range(0, len(keys), 50) if specs]
    session = requests.Session()
    body = {"appkey": CREDENTIALS.appkey, "lang": "_en_US"}
    headers = {"x-access-key": CREDENTIALS.access_key, "sys_code": "901"}

    def call(service: str, **params: Any) -> Any:
        reply = session.post(f"{sim_url}/openapi/{service}", json={**body, **params},
                             headers=headers, timeout=30)
        return reply.json()["result_data"]
    body["token"] = call("login", user_account=CREDENTIALS.username,
                         user_password=CREDENTIALS.password, login_type="1")["token"]
    broker = mqtt.Client(CallbackAPIVersion.VERSION2)
    broker.connect("127.0.0.1", port)
    broker.loop_start()
    control = requests.Session()
    cpus = []
    for cycle in range(cycles + 3):                     # three warm-up cycles
        offset = (cycle + 1 if new_values else 1) * CLOUD_REFRESH
        control.post(f"{sim_url}/_sim/clock", json={"offset": offset},
                     timeout=10).raise_for_status()
        cpu = time.process_time()
        for device_type, keys, point_ids, reads in groups:
            data = call("getDeviceRealTimeData", ps_key_list=keys, point_id_list=point_ids,
                        device_type=str(device_type))
            for item in data["device_point_list"]:
                row, state = item["device_point"], {}
                for api_key, key, scale in reads:
                    raw = row.get(api_key)
                    if raw is not None:
                        try:
                            state[key] = raw if scale is None else float(raw) * scale
                        except ValueError:
                            pass
                broker.publish(f"minimal/{row['ps_key']}", json.dumps(state), qos=STATE_QOS,
                               retain=True)
        call("getFaultAlarmInfo", curPage=1, size=100)
        broker.publish("minimal/info", "{}", qos=1, retain=True).wait_for_publish(60)
        if cycle >= 3:
            cpus.append(time.process_time() - cpu)
    broker.loop_stop()
    print(json.dumps({"cpu": statistics.median(cpus)}), flush=True)
    return 0


# -- the parent: simulators, broker, measurements, the table --------------------------------------

def refresh_samples(fleet: str, tmp: Path, samples: int) -> Dict[str, Any]:
    """Refresh request -> response (median, ms) at each latency, calls and 429s, one bridge."""
    from _harness import (
        GATEWAY_BURST, GATEWAY_RATE, InProcessBridge, Mosquitto, Recorder, SimulatorProcess,
        bridge_config, new_base_topic, wait_first_cycle,
    )
    gap = 3.0 if fleet == "1000" else 1.0       # the bucket refills between samples
    with SimulatorProcess(fleet, burst=GATEWAY_BURST, rate=GATEWAY_RATE) as sim, \
            Mosquitto(tmp, nodelay=True) as broker:
        base = new_base_topic()
        config = bridge_config(sim.url, broker.port, base, tmp, timeout=30)
        response = f"{base}/bridge/response/refresh"
        with Recorder(broker.port, response, f"{base}/bridge/info") as recorder, \
                InProcessBridge(config, tmp) as running:
            running.connect(60, worker=True)
            wait_first_cycle(recorder, base, timeout=300)
            if not (running.service.announcer.flush(600)
                    and running.service.mqtt.wait_published(600)):
                raise RuntimeError("the discovery flood did not finish")
            stats = running.client.transport.stats
            limited_before = stats.rate_limited
            figures: Dict[str, Any] = {"median": {}, "calls": set()}
            for latency in LATENCIES:
                sim.set_latency(latency)
                times = []
                for sample in range(samples + 1):       # the first one is a warm-up
                    time.sleep(gap)
                    elapsed, answer = _refresh(recorder, base, response)
                    if answer["status"] != "ok":
                        raise RuntimeError(f"refresh failed: {answer}")
                    figures["calls"].add(answer["data"]["api_calls"])
                    if sample:
                        times.append(elapsed)
                figures["median"][latency] = statistics.median(times)
            figures["http_429"] = stats.rate_limited - limited_before
            return figures


def _refresh(recorder: Any, base: str, response: str) -> Tuple[float, Dict[str, Any]]:
    transaction = uuid.uuid4().hex
    started = time.monotonic()
    recorder.publish(f"{base}/bridge/request/refresh", {"transaction": transaction})
    arrived, payload = recorder.first(
        response, started, 60,
        check=lambda data: json.loads(data).get("transaction") == transaction)
    return arrived - started, json.loads(payload)


def cold_starts(tmp: Path, runs: int) -> Dict[float, float]:
    """Median seconds from spawning ``sungrow2mqtt run`` to every state, at 0 ms and 300 ms."""
    from _harness import (
        GATEWAY_BURST, GATEWAY_RATE, BridgeProcess, Mosquitto, Recorder, SimulatorProcess,
        bridge_config, make_fleet, new_base_topic, write_config,
    )
    states = [d.ps_key for d in make_fleet("default").devices()]
    medians = {}
    with SimulatorProcess("default", burst=GATEWAY_BURST, rate=GATEWAY_RATE) as sim, \
            Mosquitto(tmp, nodelay=True) as broker:
        for latency in (0.0, COLD_LATENCY):
            sim.set_latency(latency)
            times = []
            for _ in range(runs):
                time.sleep(2.0)                          # a full bucket, as after a restart
                base = new_base_topic()                  # a new token file: a real login
                path = write_config(bridge_config(sim.url, broker.port, base, tmp), tmp)
                topics = {f"{base}/{key}" for key in states}
                with Recorder(broker.port, f"{base}/+") as recorder, BridgeProcess(path) as run:
                    done = recorder.wait_for(_last_of(topics), 60, "every state")
                    times.append(done - run.started_at)
            medians[latency] = statistics.median(times)
    return medians


def _last_of(topics: Set[str]) -> Callable[[List[Tuple[float, str, bytes]]], Optional[float]]:
    """When the last of ``topics`` arrived, once every one of them has (for Recorder.wait_for)."""
    def arrived(messages: List[Tuple[float, str, bytes]]) -> Optional[float]:
        seen = {topic: at for at, topic, _ in messages if topic in topics}
        return max(seen.values()) if len(seen) == len(topics) else None
    return arrived


def cpu_memory(tmp: Path, cycles: int, values: str = "new", pairs: int = CPU_PAIRS
               ) -> Dict[str, Any]:
    """The child's figures: 1,000 devices, no added latency, no bucket (the bridge's own work);
    ``values`` ``new`` or ``same``: whether the cloud's values change between cycles.  Also
    ``minimal``: the CPU per cycle of the minimal poller on the same fleet.

    The bridge and the minimal poller take turns, ``pairs`` times: on a shared machine the CPU
    a cycle takes drifts by a tenth or more within minutes, so each ratio compares runs made
    side by side, and the medians are reported (RSS: the largest)."""
    from _harness import Mosquitto, SimulatorProcess, bridge_config, new_base_topic, write_config
    runs: List[Dict[str, Any]] = []
    minimal: List[float] = []
    with SimulatorProcess("1000") as sim, Mosquitto(tmp, nodelay=True) as broker:
        path = write_config(bridge_config(sim.url, broker.port, new_base_topic(), tmp,
                                          timeout=30), tmp)
        for _ in range(pairs):
            runs.append(_child("cycles", str(path), sim.url, str(cycles), values))
            minimal.append(_child("minimal", sim.url, str(broker.port), str(cycles),
                                  values)["cpu"])
    figures = {key: statistics.median(run[key] for run in runs)
               for key in ("wall", "cpu", "to_state") if runs[0][key] is not None}
    paired = [(run["cpu"], least) for run, least in zip(runs, minimal)]
    return {**runs[0], **figures, "minimal": statistics.median(minimal), "pairs": paired,
            "ratio": statistics.median(cpu / least for cpu, least in paired),
            "rss_kib": max(run["rss_kib"] for run in runs),
            "max_rss_kib": max(run["max_rss_kib"] for run in runs)}


def _child(*args: str) -> Dict[str, Any]:
    """Run this script's child mode ``args`` in a fresh Python and return its figures."""
    import subprocess

    from _harness import child_env
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env=child_env(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {args[0]} child failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def cold_start_rows(cold: Dict[float, float]) -> List[List[object]]:
    """The cold-start rows of the table, at 0 ms and beside their limit at 300 ms."""
    limit = cold[0.0] + COLD_ROUND_TRIPS * COLD_LATENCY
    return [["cold start to every state, default fleet", "0 ms", f"{cold[0.0] * 1000:.0f} ms",
             "", "", ""],
            ["cold start to every state, default fleet", f"{COLD_LATENCY * 1000:.0f} ms",
             f"{cold[COLD_LATENCY] * 1000:.0f} ms", f"{limit * 1000:.0f} ms",
             f"{cold[COLD_LATENCY] / limit:.2f}", f"<= {TARGETS['cold']}"]]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print the table: measured, limit, ratio and target for every figure."""
    if argv is None and sys.argv[1:2] == ["cycles"]:
        return cycles_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] != "same")
    if argv is None and sys.argv[1:2] == ["minimal"]:
        return minimal_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                             sys.argv[5] != "same")
    from _harness import fleet_label, mib, setup_logging, table, workdir
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10, help="refreshes per fleet and latency")
    parser.add_argument("--cold-runs", type=int, default=5, help="cold starts per latency")
    parser.add_argument("--cycles", type=int, default=CPU_CYCLES,
                        help="cycles of the 1,000-device CPU and memory run")
    parser.add_argument("--fleets", default=",".join(REFRESH_FLEETS))
    parser.add_argument("--pairs", type=int, default=CPU_PAIRS,
                        help="bridge and minimal poller runs, taking turns, per CPU row")
    parser.add_argument("--cpu-only", action="store_true",
                        help="only the 1,000-device CPU and memory rows")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the bridge's logs")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    rows: List[List[object]] = []
    notes: List[str] = []
    with workdir() as name:
        tmp = Path(name)
        machine = cpu_memory(tmp, args.cycles, "new", args.pairs)
        unchanged = cpu_memory(tmp, args.cycles, "same", args.pairs)
        for fleet in [] if args.cpu_only else args.fleets.split(","):
            figures = refresh_samples(fleet, tmp, args.samples)
            local = figures["median"][0.0] if fleet != "1000" else machine["wall"]
            calls = max(figures["calls"])
            for latency, measured in figures["median"].items():
                limit = max(0.0, calls - BURST) / RATE + latency + local
                ratio = measured / limit
                rows.append([f"refresh, {fleet_label(fleet)} ({calls} calls)",
                             f"{latency * 1000:.0f} ms", f"{measured * 1000:.0f} ms",
                             f"{limit * 1000:.0f} ms", f"{ratio:.2f}",
                             f"<= {TARGETS[fleet]}"])
            notes.append(f"{fleet_label(fleet)}: calls per refresh {sorted(figures['calls'])} "
                         f"(minimum {MIN_CALLS.get(fleet, '?')}), HTTP 429: "
                         f"{figures['http_429']}")
        if not args.cpu_only:
            rows.extend(cold_start_rows(cold_starts(tmp, args.cold_runs)))
    rows.append([f"1,000 devices: RSS after {args.cycles} cycles", "0 ms",
                 f"{mib(machine['rss_kib'])} MiB", "60 MiB",
                 f"{machine['rss_kib'] / 1024 / 60:.2f}", "<= 1"])
    for label, figures in (("new values", machine), ("values unchanged", unchanged)):
        rows.append([f"1,000 devices: CPU per cycle, {label}", "0 ms",
                     f"{figures['cpu'] * 1000:.0f} ms", "80 ms",
                     f"{figures['cpu'] * 1000 / 80:.2f}", "<= 1"])
        rows.append(["  the same, against a minimal poller on this machine", "0 ms",
                     f"{figures['cpu'] * 1000:.0f} ms", f"{figures['minimal'] * 1000:.0f} ms",
                     f"{figures['ratio']:.2f}", f"<= {MINIMAL_RATIO}"])
    rows.append(["1,000 devices: first realtime answer -> first state", "0 ms",
                 f"{machine['to_state'] * 1000:.1f} ms", "1 round trip (100-300 ms)", "", ""])
    print("Physical limits, medians; mosquitto with set_tcp_nodelay; simulator in its own "
          f"process with the gateway's bucket ({BURST} calls, {RATE:g}/s).\n")
    print(table(["figure", "added latency", "measured", "limit", "ratio", "target"], rows))
    print()
    for note in notes:
        print(f"* {note}")
    for label, figures in (("new values", machine), ("values unchanged", unchanged)):
        pairs = ", ".join(f"{cpu * 1000:.0f}/{least * 1000:.0f} ({cpu / least:.2f})"
                          for cpu, least in figures["pairs"])
        print(f"* CPU per cycle, {label}, each pair in turn (bridge/minimal poller, ms): {pairs}")
    print(f"* 1,000 devices without the bucket: {machine['calls']} calls per cycle, "
          f"{machine['wall'] * 1000:.0f} ms wall per cycle (the local work of the 1,000-device "
          f"limit), peak RSS {mib(machine['max_rss_kib'])} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
