"""Soak: days of polling compressed into minutes, with cloud failures and device faults injected
at random, to see whether memory, file descriptors and threads stay flat.

Run from the repository root: ``python benchmarks/soak.py [--minutes 120] [--quick]``.  The bridge
runs its own worker loop in this process with fast intervals (realtime and faults every second
instead of every 300 s) against the simulator (gateway burst limit on) and a real mosquitto.
Exits 1 when RSS grew by more than 20 MB, or file descriptors or threads grew, or the worker
died: a leak check, not a timing assertion.

``--hostile`` (20 minutes unless ``--minutes`` says otherwise) adds what a hostile cloud, network
and LAN do (issue 14): names with half an emoji, answers trickling in, redirects, huge answers,
paging that never ends, floods of Home Assistant birth messages and of requests, and the broker
killed and restarted; the simulator keeps an hourly quota that polling fits.  It also exits 1
when a request went unanswered or the bridge ran into the quota on its own.
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple
from urllib.parse import urlsplit

from _harness import (
    GATEWAY_BURST, GATEWAY_RATE, UNLIMITED_QUOTA, InProcessBridge, Mosquitto, Recorder,
    SimulatorProcess, add_common_arguments, bridge_config, fleet_label, lift_cloud_pause, mib,
    new_base_topic, proc_stats, setup_logging, sockets_to, table, workdir,
)
from sungrow2mqtt.components.fleet import PollOutcome  # after _harness: it sets the path
from sungrow2mqtt.isolarcloud.client import MAX_WORKERS
from sungrow2mqtt.isolarcloud.concurrency import THREAD_NAME_PREFIX

RSS_LIMIT_KIB = 20 * 1024
QUICK_SECONDS = 60
TAIL_SECONDS = 8          # no injections at the end, so the last snapshot sees a quiet bridge
PAUSE_HOLD_SECONDS = 2    # how long an injected E999 pause is left in place before lifting it
MAX_OPEN_FAULTS = 10
POOL_THREAD_PREFIX = THREAD_NAME_PREFIX + "_"   # ThreadPoolExecutor: <prefix>_<n>
# (mode, result code, count range): what the simulator is told to do to the next requests
FAILURES = (("http500", None, (1, 4)), ("garbage", None, (1, 2)), ("timeout", None, (1, 1)),
            ("code", "E999", (1, 1)), ("code", "E00003", (1, 1)))
HOSTILE_MINUTES = 20
HOSTILE_QUOTA = 40_000     # calls an hour: polling every second fits in 80 % of it
ANSWER_WAIT = 90.0         # seconds a request may wait for its answer (spacing, pauses)
HUGE_ANSWER = 24 * 1024 * 1024      # bytes: beyond the client's cap


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
    own_pauses: int = 0                      # rate limits the bridge ran into, none injected
    sent: Dict[int, str] = field(default_factory=dict)        # request transaction -> name
    answered: Set[int] = field(default_factory=set)
    messages: "Counter[str]" = field(default_factory=Counter)  # warnings and errors, by text
    refusals: "Counter[str]" = field(default_factory=Counter)  # error answers, by their start
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unanswered(self) -> Dict[int, str]:
        """Requests sent that got no answer (yet), with their names."""
        with self.lock:
            return {t: name for t, name in self.sent.items() if t not in self.answered}


class LogCounter(logging.Handler):
    """Counts warnings and errors instead of printing them: the soak provokes thousands."""

    def __init__(self, tally: Tally) -> None:
        super().__init__(logging.WARNING)
        self.tally = tally

    def emit(self, record: logging.LogRecord) -> None:
        """Count one record; an unexpected loop exception is a bug and counted apart."""
        with self.tally.lock:
            self.tally.logged[(record.name.split(".")[0], record.levelname)] += 1
            self.tally.messages[f"{record.levelname} {record.msg}"[:90]] += 1
            if record.exc_info and "polling loop" in record.getMessage():
                self.tally.loop_exceptions += 1


def instrument(running: InProcessBridge, tally: Tally) -> None:
    """Count cloud jobs by outcome and every publish, by wrapping the fleet's and the MQTT
    connection's public methods: every job's outcome is recorded, a skipped job beats."""
    fleet, mqtt = running.fleet, running.service.mqtt
    record, beat, publish = fleet.record_outcome, fleet.heartbeat, mqtt.publish

    def counted_outcome(kind: str, outcome: PollOutcome) -> None:
        with tally.lock:
            tally.jobs[(kind, "ok" if outcome.ok else "error")] += 1
            if not outcome.ok and str(outcome.error).startswith("unexpected"):
                tally.unexpected += 1
        record(kind, outcome)

    def counted_beat() -> None:
        with tally.lock:
            tally.jobs[("any", "skipped")] += 1
        beat()

    def counted_publish(topic: str, payload: Any, **kwargs: Any) -> bool:
        with tally.lock:
            tally.publishes += 1
        return bool(publish(topic, payload, **kwargs))
    fleet.record_outcome = counted_outcome    # type: ignore[method-assign]
    fleet.heartbeat = counted_beat            # type: ignore[method-assign]
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

    def actions(self) -> Dict[str, Tuple[int, Callable[[], None]]]:
        """name -> (weight, action)."""
        return {"inject": (4, self.inject), "refresh": (3, lambda: self.request("refresh")),
                "refresh_plant": (1, self.refresh_plant),
                "faults": (1, lambda: self.request("faults")),
                "info": (1, lambda: self.request("info")), "add_fault": (2, self.add_fault),
                "clear_fault": (2, self.clear_fault)}

    def act(self) -> None:
        """One random action: a failure, a fault raised or cleared, or a request over MQTT."""
        actions = self.actions()
        name = self.rng.choices(list(actions), [w for w, _ in actions.values()])[0]
        self.tally.actions[name] += 1
        actions[name][1]()

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
        """Publish a request on the broker, as Home Assistant would; remember it to see that it
        gets an answer."""
        transaction = self.rng.getrandbits(32)
        with self.tally.lock:
            self.tally.sent[transaction] = name
        self.recorder.publish(f"{self.base}/bridge/request/{name}",
                              dict(payload or {}, transaction=transaction))

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

    def wait_answered(self, timeout: float) -> bool:
        """Wait until every request sent so far has its answer."""
        deadline = time.monotonic() + timeout
        while self.tally.unanswered():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

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


class Hostile(Soak):
    """The soak's actions and what a hostile cloud, network and LAN do (issue 14)."""

    def __init__(self, running: InProcessBridge, sim: SimulatorProcess, recorder: Recorder,
                 tally: Tally, rng: random.Random, broker: Mosquitto) -> None:
        super().__init__(running, sim, recorder, tally, rng)
        self.broker = broker

    def actions(self) -> Dict[str, Tuple[int, Callable[[], None]]]:
        """The soak's actions, and the hostile ones."""
        return {**super().actions(),
                "surrogate": (1, lambda: self.fail("surrogate", 2)),
                "trickle": (1, lambda: self.fail("trickle", 1, delay=0.3, service=self.rng.choice(
                    ("getDeviceRealTimeData", "getFaultAlarmInfo", "getOpenApiCallInfo")))),
                "redirect": (1, lambda: self.fail("redirect", self.rng.randint(1, 3),
                                                  code=self.rng.choice(("301", "302", "307")))),
                "huge": (1, lambda: self.fail("huge", 1, size=HUGE_ANSWER)),
                "endless_pages": (1, lambda: self.fail("endless_pages", 3,
                                                       service="getFaultAlarmInfo")),
                "ha_birth_flood": (1, self.ha_birth_flood),
                "request_flood": (1, self.request_flood),
                "history": (1, lambda: self.request("history", self.history_params())),
                "broker_kill": (1, self.broker_kill)}

    def fail(self, mode: str, count: int, **more: Any) -> None:
        """A failure of the simulator's hostile modes."""
        self.sim.fail_next(count, mode, **more)
        self.tally.injected[mode] += count

    def history_params(self) -> Dict[str, Any]:
        """A plant's minute data of some hours yesterday (one to three calls)."""
        plant = self.rng.choice(sorted(self.running.fleet.plant_ids()))
        hour = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
        start = hour - dt.timedelta(days=1, hours=self.rng.randint(0, 12))
        end = start + dt.timedelta(hours=self.rng.randint(1, 9))
        return {"ps_key": f"{plant}_11_0_0", "points": [83022, 83033], "interval": "minute",
                "start": start.strftime("%Y-%m-%dT%H:%M"), "end": end.strftime("%Y-%m-%dT%H:%M")}

    def ha_birth_flood(self) -> None:
        """Home Assistant's birth message, 200 times at once (retained ones included)."""
        topic = f"{self.base}_ha/status"
        for number in range(200):
            self.recorder.client.publish(topic, "online", qos=0, retain=number % 50 == 0)
        self.recorder.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        self.tally.injected["ha_birth"] += 200

    def request_flood(self) -> None:
        """Forty requests of every kind at once, as a runaway automation would send them."""
        kinds = ("refresh", "faults", "quota", "info", "history")
        for _ in range(40):
            name = self.rng.choice(kinds)
            self.request(name, self.history_params() if name == "history" else None)

    def broker_kill(self) -> None:
        """Kill mosquitto once every request has its answer; restart it after a few seconds."""
        self.wait_answered(ANSWER_WAIT)
        self.broker.kill()
        time.sleep(self.rng.uniform(1, 5))
        self.broker.start()
        self.tally.injected["broker_kill"] += 1
        deadline = time.monotonic() + 120
        while not (self.running.service.mqtt.connected and self.recorder.client.is_connected()):
            if time.monotonic() > deadline:
                raise SystemExit("the bridge or the recorder did not reconnect in 120 s")
            time.sleep(0.2)
        time.sleep(1)                             # the recorder's subscriptions are back


def on_message(tally: Tally, base: str) -> Callable[[str, bytes], None]:
    """Counts responses by request and status (the broker's view of the bridge's answers)."""
    prefix = f"{base}/bridge/response/"

    def hook(topic: str, payload: bytes) -> None:
        if topic.startswith(prefix):
            answer = json.loads(payload)
            with tally.lock:
                tally.responses[(topic[len(prefix):], answer.get("status", "?"))] += 1
                if answer.get("error"):
                    tally.refusals[str(answer["error"])[:60]] += 1
                if isinstance(answer.get("transaction"), int):
                    tally.answered.add(answer["transaction"])
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


def pool_threads() -> int:
    """Threads of the client's call pool: the executor starts them as calls need, up to its
    size, so they may grow once during a run without leaking."""
    return sum(t.name.startswith(POOL_THREAD_PREFIX) for t in threading.enumerate())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the soak, print the report, exit 1 on a leak."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float,
                        help=f"default 120 ({HOSTILE_MINUTES} with --hostile)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SECONDS} s, for CI")
    parser.add_argument("--hostile", action="store_true",
                        help="add surrogates, trickles, redirects, huge answers, endless paging, "
                             "HA birth and request floods, broker kills; a quota to keep")
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
    minutes = args.minutes or (HOSTILE_MINUTES if args.hostile else 120.0)
    duration = QUICK_SECONDS if args.quick else minutes * 60
    quota = HOSTILE_QUOTA if args.hostile else UNLIMITED_QUOTA
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
                             quota=quota) as sim, \
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
            first, cloud_port = proc_stats(), urlsplit(sim.url).port or 80
            first["cloud_sockets"] = sockets_to(cloud_port)
            first["pool_threads"] = pool_threads()
            soak = (Hostile(running, sim, recorder, tally, rng, broker) if args.hostile
                    else Soak(running, sim, recorder, tally, rng))
            timeline = [(0.0, first["rss_kib"])]
            end = started + duration - TAIL_SECONDS
            next_sample = time.monotonic() + max(5.0, duration / 10)
            while time.monotonic() < end and running.worker_alive:
                time.sleep(min(rng.expovariate(1 / args.action_every),
                               max(0.0, end - time.monotonic())))
                soak.act()
                if running.poller.paused_until() is not None:   # not injected: its own
                    tally.own_pauses += 1
                    lift_cloud_pause(running)
                if time.monotonic() >= next_sample:
                    timeline.append((time.monotonic() - started, proc_stats()["rss_kib"]))
                    next_sample += max(5.0, duration / 10)
            soak.wait_answered(ANSWER_WAIT)
            served = soak.quiet_down()
            # a job may still be in its retries' backoff (up to ~7 s) when the tail begins
            healthy = wait_healthy(running, max(30, 3 * args.interval + 10))
            time.sleep(2)
            sim.calls()
            gc.collect()
            last = proc_stats()
            last["cloud_sockets"] = sockets_to(cloud_port)
            last["pool_threads"] = pool_threads()
            pool_size = running.client.transport.pool_size
            timeline.append((time.monotonic() - started, last["rss_kib"]))
            alive = running.worker_alive
            api_calls = running.client.transport.stats.total
            retries = running.client.transport.stats.retries
            paced = running.client.transport.stats.rate_limit_waits
            received = recorder.received
            server_calls = served + sum(sim.calls().values())
            waiting = running.service.mqtt.unacknowledged()
    elapsed = time.monotonic() - started
    polls = sum(n for (kind, state), n in tally.jobs.items() if kind == "realtime")
    print(f"Soak of {elapsed / 60:.1f} min, {fleet_label(args.fleet)}, realtime+faults every "
          f"{args.interval} s, devices every {args.devices_interval} s: {polls} realtime polls "
          f"= {polls * 300 / 86400:.1f} days at the default 300 s.\n")
    grew = {k: last[k] - first[k] for k in first}
    print(table(["", "start", "end", "growth"], [
        ["RSS MiB", mib(first["rss_kib"]), mib(last["rss_kib"]), mib(grew["rss_kib"])],
        ["open fds", first["fds"], last["fds"], grew["fds"]],
        [f"  of them keep-alive connections to the cloud (pool of {pool_size}, +1 control)",
         first["cloud_sockets"], last["cloud_sockets"], grew["cloud_sockets"]],
        ["threads", first["threads"], last["threads"], grew["threads"]],
        [f"  of them the client's call pool (up to {MAX_WORKERS}, started as needed)",
         first["pool_threads"], last["pool_threads"], grew["pool_threads"]]]))
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
        ["rate limits the bridge ran into on its own (quota "
         f"{'unlimited' if quota == UNLIMITED_QUOTA else f'{quota:,}/h'})", tally.own_pauses],
        ["API calls an hour, on average", f"{api_calls * 3600 / elapsed:,.0f}"],
        ["requests sent / answered (not answered)",
         f"{len(tally.sent)} / {len(tally.sent) - len(tally.unanswered())} "
         f"({', '.join(sorted(tally.unanswered().values())) or 'none'})"],
        ["actions", ", ".join(f"{k} {n}" for k, n in sorted(tally.actions.items()))],
        ["responses on the broker", ", ".join(f"{k} {s} {n}"
                                              for (k, s), n in sorted(tally.responses.items()))],
        ["publishes by the bridge / messages the probe received (its requests too)",
         f"{tally.publishes} / {received}"],
        ["log records", ", ".join(f"{k} {lvl} {n}" for (k, lvl), n
                                  in sorted(tally.logged.items()))],
        *[[f"  {n} x", text.replace("|", "/")] for text, n in tally.messages.most_common(8)],
        ["error answers, by their start", ""],
        *[[f"  {n} x", text.replace("|", "/")] for text, n in tally.refusals.most_common(8)],
        ["unexpected exceptions: in the polling loop / in cloud jobs",
         f"{tally.loop_exceptions} / {tally.unexpected}"],
        ["QoS 1 publishes unacknowledged at the last sample (diagnostic)", waiting],
        ["healthy cycle after the last injection", "yes" if healthy else "NO"],
    ]))
    problems = []
    if grew["rss_kib"] > RSS_LIMIT_KIB:
        problems.append(f"RSS grew by {mib(grew['rss_kib'])} MiB (> 20 MiB)")
    if grew["fds"] - grew["cloud_sockets"] > 0:
        problems.append(f"{grew['fds'] - grew['cloud_sockets']} more open fds (not counting "
                        "connections to the cloud)")
    if last["cloud_sockets"] > pool_size + 1:
        problems.append(f"{last['cloud_sockets']} connections to the cloud, more than the pool "
                        f"of {pool_size} and the control connection")
    if grew["threads"] - grew["pool_threads"] > 0:
        problems.append(f"{grew['threads'] - grew['pool_threads']} more threads (not counting "
                        "the call pool)")
    if not alive:
        problems.append("the worker thread died")
    if tally.unanswered():
        problems.append(f"{len(tally.unanswered())} requests not answered")
    if tally.own_pauses:
        problems.append(f"the bridge ran into the quota {tally.own_pauses} time(s)")
    print("\nCHECK: " + ("; ".join(problems) if problems else "flat"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
