"""Soak: days of polling compressed into minutes, with cloud failures and device faults injected
at random, to see whether memory, file descriptors and threads stay flat.

Run from the repository root: ``python benchmarks/soak.py [--minutes 120] [--quick]``.  The bridge
runs its own worker loop in this process with fast intervals (realtime and faults every second
instead of every 300 s) against the simulator (gateway burst limit on) and a real mosquitto.
Exits 1 when RSS grew by more than 20 MB, or file descriptors or threads grew, or the worker
died: a leak check, not a timing assertion.
"""
from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from _harness import (
    GATEWAY_BURST, GATEWAY_RATE, UNLIMITED_QUOTA, InProcessBridge, Mosquitto, Recorder,
    SimulatorProcess, acknowledged_but_held, add_common_arguments, bridge_config, fleet_label,
    lift_cloud_pause, mib, new_base_topic, proc_stats, setup_logging, table, workdir,
)

RSS_LIMIT_KIB = 20 * 1024
QUICK_SECONDS = 60
TAIL_SECONDS = 8          # no injections at the end, so the last snapshot sees a quiet bridge
PAUSE_HOLD_SECONDS = 2    # how long an injected E999 pause is left in place before lifting it
MAX_OPEN_FAULTS = 10
# (mode, result code, count range): what the simulator is told to do to the next requests
FAILURES = (("http500", None, (1, 4)), ("garbage", None, (1, 2)), ("timeout", None, (1, 1)),
            ("code", "E999", (1, 1)), ("code", "E00003", (1, 1)))


@dataclass
class Tally:
    """What happened during the soak, counted from the bridge's and the broker's side."""

    jobs: "Counter[Tuple[str, str]]" = field(default_factory=Counter)   # kind, ok|error|skipped
    publishes: int = 0
    responses: "Counter[Tuple[str, str]]" = field(default_factory=Counter)  # request, status
    injected: "Counter[str]" = field(default_factory=Counter)
    actions: "Counter[str]" = field(default_factory=Counter)
    logged: "Counter[Tuple[str, str]]" = field(default_factory=Counter)  # logger, level
    loop_exceptions: int = 0
    unexpected: int = 0                                       # jobs failing on non-API errors
    paused_seen: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class LogCounter(logging.Handler):
    """Counts warnings and errors instead of printing them: the soak provokes thousands."""

    def __init__(self, tally: Tally) -> None:
        super().__init__(logging.WARNING)
        self.tally = tally

    def emit(self, record: logging.LogRecord) -> None:
        """Count one record; an unexpected loop exception is a bug and counted apart."""
        with self.tally.lock:
            self.tally.logged[(record.name.split(".")[0], record.levelname)] += 1
            if record.exc_info and "polling loop" in record.getMessage():
                self.tally.loop_exceptions += 1


def instrument(running: InProcessBridge, tally: Tally) -> None:
    """Count cloud jobs by outcome and every publish, by wrapping the bridge's own methods."""
    poller, fleet, mqtt = running.poller, running.fleet, running.service.mqtt
    run_job, publish = poller.run, mqtt.publish

    def counted_job(kind: str, work: Optional[Callable[[], Any]] = None) -> Any:
        before = fleet.snapshot().outcomes.get(kind)
        stamp = before.time if before else None
        result = run_job(kind, work)
        outcome = fleet.snapshot().outcomes[kind]
        state = ("skipped" if outcome.time == stamp else "ok" if outcome.ok else "error")
        with tally.lock:
            tally.jobs[(kind, state)] += 1
            if state == "error" and str(outcome.error).startswith("unexpected"):
                tally.unexpected += 1
        return result

    def counted_publish(topic: str, payload: Any, **kwargs: Any) -> bool:
        with tally.lock:
            tally.publishes += 1
        return bool(publish(topic, payload, **kwargs))
    poller.run = counted_job                  # type: ignore[method-assign]
    mqtt.publish = counted_publish            # type: ignore[method-assign]


class Soak:
    """The random actions of the soak, kept together with what they need to undo themselves."""

    def __init__(self, running: InProcessBridge, sim: SimulatorProcess, recorder: Recorder,
                 tally: Tally, rng: random.Random) -> None:
        self.running, self.sim, self.recorder = running, sim, recorder
        self.tally, self.rng = tally, rng
        self.base = running.base
        self.open_faults: List[str] = []
        self.devices = [d.ps_key for d in running.fleet.devices() if not d.is_plant]

    def act(self) -> None:
        """One random action: a failure, a fault raised or cleared, or a request over MQTT."""
        actions: Dict[str, Callable[[], None]] = {
            "inject": self.inject, "refresh": lambda: self.request("refresh"),
            "refresh_plant": self.refresh_plant, "faults": lambda: self.request("faults"),
            "info": lambda: self.request("info"), "add_fault": self.add_fault,
            "clear_fault": self.clear_fault}
        weights = {"inject": 4, "refresh": 3, "refresh_plant": 1, "faults": 1, "info": 1,
                   "add_fault": 2, "clear_fault": 2}
        name = self.rng.choices(list(weights), list(weights.values()))[0]
        self.tally.actions[name] += 1
        actions[name]()

    def inject(self) -> None:
        """Tell the simulator to fail the next request(s); lift an E999 pause after a while."""
        mode, code, (low, high) = self.rng.choice(FAILURES)
        count = self.rng.randint(low, high)
        self.sim.fail_next(count, mode, code, delay=3.0 if mode == "timeout" else None)
        self.tally.injected[code or mode] += count
        if code == "E999":
            deadline = time.monotonic() + 15
            paused = self.running.poller.paused_until
            while time.monotonic() < deadline and not paused():
                time.sleep(0.1)
            if paused():
                self.tally.paused_seen += 1
                time.sleep(PAUSE_HOLD_SECONDS)       # polls are skipped meanwhile
                lift_cloud_pause(self.running)

    def request(self, name: str, payload: Optional[Dict[str, Any]] = None) -> None:
        """Publish a request on the broker, as Home Assistant would."""
        self.recorder.publish(f"{self.base}/bridge/request/{name}",
                              dict(payload or {}, transaction=self.rng.getrandbits(32)))

    def refresh_plant(self) -> None:
        """Refresh one plant only, the other path through the refresh code."""
        plants = list(self.running.fleet.plant_ids())
        self.request("refresh", {"ps_id": self.rng.choice(plants)})

    def add_fault(self) -> None:
        """Raise a fault or alarm on a random device, so fault topics change."""
        if len(self.open_faults) >= MAX_OPEN_FAULTS:
            return self.clear_fault()
        kind = self.rng.choice((1, 2))
        self.open_faults.append(self.sim.add_fault(
            self.rng.choice(self.devices), self.rng.randint(100, 99999),
            "Soak fault" if kind == 1 else "Soak alarm", fault_type=kind))
        return None

    def clear_fault(self) -> None:
        """Close a random open fault, so fault topics change back."""
        if self.open_faults:
            self.sim.clear_fault(self.open_faults.pop(self.rng.randrange(len(self.open_faults))))

    def quiet_down(self) -> int:
        """Clear faults, queued failures and any pause, so the tail shows a healthy bridge.

        Returns the requests the simulator had served, as the reset zeroes its counts.
        """
        while self.open_faults:
            self.sim.clear_fault(self.open_faults.pop())
        served = sum(self.sim.calls().values())
        self.sim.reset()
        lift_cloud_pause(self.running)
        return served


def on_message(tally: Tally, base: str) -> Callable[[str, bytes], None]:
    """Counts responses by request and status (the broker's view of the bridge's answers)."""
    prefix = f"{base}/bridge/response/"

    def hook(topic: str, payload: bytes) -> None:
        if topic.startswith(prefix):
            status = json.loads(payload).get("status", "?")
            with tally.lock:
                tally.responses[(topic[len(prefix):], status)] += 1
    return hook


def wait_healthy(running: InProcessBridge, timeout: float) -> bool:
    """Wait until realtime and faults both succeeded since now: the bridge is healthy again."""
    since = time.monotonic()
    deadline = since + timeout
    seen = {k: running.fleet.snapshot().outcomes[k].time for k in ("realtime", "faults")}
    while time.monotonic() < deadline:
        outcomes = running.fleet.snapshot().outcomes
        if all(outcomes[k].ok and outcomes[k].time != seen[k] for k in seen):
            return True
        time.sleep(0.2)
    return False


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the soak, print the report, exit 1 on a leak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120.0)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS} s, for CI")
    parser.add_argument("--fleet", default="default", help="'default' or a number of devices")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval", type=int, default=1,
                        help="realtime and faults polling interval, seconds (default 1)")
    parser.add_argument("--devices-interval", type=int, default=30)
    parser.add_argument("--action-every", type=float, default=1.0,
                        help="mean seconds between random actions")
    add_common_arguments(parser, fleets=None)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    duration = QUICK_SECONDS if args.quick else args.minutes * 60
    rng = random.Random(args.seed)
    tally = Tally()
    counter = LogCounter(tally)
    for name in ("sungrow2mqtt", "paho"):
        logging.getLogger(name).addHandler(counter)
        logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger(name).propagate = args.verbose
    started = time.monotonic()
    with workdir() as name, \
            SimulatorProcess(args.fleet, burst=GATEWAY_BURST, rate=GATEWAY_RATE,
                             quota=UNLIMITED_QUOTA) as sim, \
            Mosquitto(Path(name)) as broker:
        tmp, base = Path(name), new_base_topic()
        config = bridge_config(sim.url, broker.port, base, tmp, timeout=2)
        with InProcessBridge(config, tmp, realtime=args.interval, faults=args.interval,
                             devices=args.devices_interval) as running, \
                Recorder(broker.port, f"{base}/#", f"{base}_ha/#", keep=False,
                         hook=on_message(tally, base)) as recorder:
            instrument(running, tally)
            running.connect(worker=True)
            if not wait_healthy(running, 60):
                raise SystemExit("the bridge never completed a healthy cycle")
            time.sleep(3)
            sim.calls()               # the control connection is open at both snapshots
            gc.collect()
            first = proc_stats()
            soak = Soak(running, sim, recorder, tally, rng)
            timeline = [(0.0, first["rss_kib"])]
            end = started + duration - TAIL_SECONDS
            next_sample = time.monotonic() + max(5.0, duration / 10)
            while time.monotonic() < end and running.worker_alive:
                time.sleep(min(rng.expovariate(1 / args.action_every),
                               max(0.0, end - time.monotonic())))
                soak.act()
                if time.monotonic() >= next_sample:
                    timeline.append((time.monotonic() - started, proc_stats()["rss_kib"]))
                    next_sample += max(5.0, duration / 10)
            served = soak.quiet_down()
            # a job may still be in its retries' backoff (up to ~7 s) when the tail begins
            healthy = wait_healthy(running, max(30, 3 * args.interval + 10))
            time.sleep(2)
            sim.calls()
            gc.collect()
            last = proc_stats()
            timeline.append((time.monotonic() - started, last["rss_kib"]))
            alive = running.worker_alive
            api_calls = running.client.transport.stats.total
            retries = running.client.transport.stats.retries
            paced = running.client.transport.stats.rate_limit_waits
            received = recorder.received
            server_calls = served + sum(sim.calls().values())
            stale = acknowledged_but_held(running)
    elapsed = time.monotonic() - started
    polls = sum(n for (kind, state), n in tally.jobs.items() if kind == "realtime")
    print(f"Soak of {elapsed / 60:.1f} min, {fleet_label(args.fleet)}, realtime+faults every "
          f"{args.interval} s, devices every {args.devices_interval} s: {polls} realtime polls "
          f"= {polls * 300 / 86400:.1f} days at the default 300 s.\n")
    grew = {k: last[k] - first[k] for k in first}
    print(table(["", "start", "end", "growth"], [
        ["RSS MiB", mib(first["rss_kib"]), mib(last["rss_kib"]), mib(grew["rss_kib"])],
        ["open fds", first["fds"], last["fds"], grew["fds"]],
        ["threads", first["threads"], last["threads"], grew["threads"]]]))
    print("\nRSS timeline (s: MiB): " + ", ".join(f"{t:.0f}: {mib(r)}" for t, r in timeline))
    print("\n" + table(["what", "count"], [
        ["cloud jobs ok / error / skipped (paused)",
         " / ".join(str(sum(n for (_, s), n in tally.jobs.items() if s == state))
                    for state in ("ok", "error", "skipped"))],
        ["  by kind", ", ".join(f"{k} {s} {n}" for (k, s), n in sorted(tally.jobs.items()))],
        ["API calls in all (client, retries included) / served by the simulator",
         f"{api_calls} / {server_calls}"],
        ["transport retries / seconds paced by the rate-limit headers",
         f"{retries} / {paced:.1f}"],
        ["injected failures", ", ".join(f"{k} {n}" for k, n in sorted(tally.injected.items()))],
        ["E999 pauses seen (then lifted)", tally.paused_seen],
        ["actions", ", ".join(f"{k} {n}" for k, n in sorted(tally.actions.items()))],
        ["responses on the broker", ", ".join(f"{k} {s} {n}"
                                              for (k, s), n in sorted(tally.responses.items()))],
        ["publishes by the bridge / messages the probe received (its requests too)",
         f"{tally.publishes} / {received}"],
        ["log records", ", ".join(f"{k} {lvl} {n}" for (k, lvl), n
                                  in sorted(tally.logged.items()))],
        ["unexpected exceptions: in the polling loop / in cloud jobs",
         f"{tally.loop_exceptions} / {tally.unexpected}"],
        ["acknowledged QoS 1 infos MqttConnection still holds (diagnostic)", stale],
        ["healthy cycle after the last injection", "yes" if healthy else "NO"],
    ]))
    problems = []
    if grew["rss_kib"] > RSS_LIMIT_KIB:
        problems.append(f"RSS grew by {mib(grew['rss_kib'])} MiB (> 20 MiB)")
    if grew["fds"] > 0:
        problems.append(f"{grew['fds']} more open fds")
    if grew["threads"] > 0:
        problems.append(f"{grew['threads']} more threads")
    if not alive:
        problems.append("the worker thread died")
    print("\nLEAK CHECK: " + ("; ".join(problems) if problems else "flat"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
