"""A short soak: many fast cycles with random cloud faults and odd requests, nothing leaks.

The real worker thread runs refresh after refresh (``min_refresh_spacing: 0``) against an encrypted
simulator that fails at random (5xx, 429, garbage, dropped and slow connections, E910, E913 clock
jumps, E00003 and expired tokens, internal errors, E999, and the hostile modes: names with half an
emoji, answers trickling in, redirects, paging that never ends), while bad and good requests
arrive over MQTT; every request is answered (``benchmarks/soak.py --hostile`` is the long run).
Afterwards open file descriptors and threads are back where they were (within a small constant),
no exception went unhandled, and the bridge still answers and publishes.

``S2M_SOAK_SECONDS`` sets the duration (default 15); past 60 s mark the run with ``-m soak``.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
import time
from collections import Counter
from typing import Any, Callable, Dict, List

import pytest

from bridge_harness import MovableClock, Running, config_dict, ready
from mqtt_probe import MqttProbe
from reliability_support import (
    describe, fast_simulator, shared_broker, unhandled, wait_until,
)
from sungrow2mqtt.isolarcloud.client import MAX_WORKERS
from sungrow2mqtt.isolarcloud.concurrency import THREAD_NAME_PREFIX
from sungrow2mqtt.isolarcloud.transport import POOL_SIZE

__all__ = ["shared_broker"]   # fixture, used by name below

SOAK_SECONDS = float(os.environ.get("S2M_SOAK_SECONDS", "15"))
FD_SLACK = 6          # MQTT connections and sockets being closed may differ by a few
THREAD_SLACK = 3


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _resources() -> Dict[str, int]:
    """Threads and fds, with the two bounded pools apart: the client's call threads (started
    as needed, up to MAX_WORKERS) and its keep-alive connections to the in-process simulator,
    each one a simulator thread and two sockets here.  A pool grown to its bound since the
    baseline is no leak; more threads or sockets than the pools account for are."""
    threads = threading.enumerate()
    calls = sum(t.name.startswith(f"{THREAD_NAME_PREFIX}_") for t in threads)
    connections = sum("process_request_thread" in t.name for t in threads)
    return {"other_threads": len(threads) - calls - connections,
            "other_fds": _open_fds() - 2 * connections,
            "call_threads": calls, "connections": connections}


def _settled(baseline: Dict[str, int]) -> bool:
    now = _resources()
    return (now["other_threads"] <= baseline["other_threads"] + THREAD_SLACK
            and now["other_fds"] <= baseline["other_fds"] + FD_SLACK
            and now["call_threads"] <= MAX_WORKERS and now["connections"] <= POOL_SIZE)


def _thread_names() -> str:
    """The live threads, counted by name (what a failed settle left running)."""
    names = Counter(re.sub(r"[-_ ]?\d+", "", t.name) for t in threading.enumerate())
    return ", ".join(f"{name} x{count}" for name, count in sorted(names.items()))


def _lift_pause(bridge: Running, clock: MovableClock) -> None:
    """The rate-limit hour "passes": the bridge's clock moves past the pause."""
    until = bridge.service.poller.paused_until()
    if until is not None:
        clock.advance((until - clock.wall()).total_seconds() + 1)


def _faults(sim: Any, bridge: Running, clock: MovableClock
            ) -> List[Callable[[random.Random], None]]:
    def unblock() -> None:
        _lift_pause(bridge, clock)
    return [
        lambda r: sim.fail_next(r.randint(1, 6), r.choice(["http500", "http503", "garbage"])),
        lambda r: sim.fail_next(r.randint(1, 3), "ratelimit429"),
        lambda r: sim.fail_next(1, "timeout", delay=r.choice([0.2, 1.2])),
        lambda r: sim.fail_next(r.randint(1, 2), "code", code="E910"),
        lambda r: sim.fail_next(1, "code", code=r.choice(["-1", "E997", "E00003"])),
        lambda r: sim.expire_tokens(),
        lambda r: sim.set_clock_offset(r.choice([-3600, 0, 1800, 7200])),
        lambda r: (sim.fail_next(1, "code", code="E999"), threading.Timer(0.3, unblock).start()),
        lambda r: sim.fail_next(r.randint(1, 3), "surrogate"),
        lambda r: sim.fail_next(1, "trickle", delay=0.3),
        lambda r: sim.fail_next(r.randint(1, 2), "redirect", code=r.choice(["302", "307"])),
        lambda r: sim.fail_next(r.randint(1, 3), "endless_pages", service="getFaultAlarmInfo"),
    ]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count fds")
def test_soak_random_faults_leak_nothing(shared_broker, base_topic, tmp_path, caplog,
                                         monkeypatch):
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    thread_errors: List[str] = []
    monkeypatch.setattr(threading, "excepthook",
                        lambda args: thread_errors.append(f"{args.thread}: {args.exc_value!r}"))
    seed = int(os.environ.get("S2M_SOAK_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    # a quota so large that the requests' share of it (a fifth) never runs out here
    with fast_simulator(encrypted=True, hourly_quota=10 ** 7) as sim:
        config = config_dict(sim, shared_broker.port, base_topic, tmp_path,
                             isolarcloud={"timeout": 1}, polling={"min_refresh_spacing": 0})
        probe = MqttProbe(shared_broker.port, f"{base_topic}/#")
        clock = MovableClock()
        bridge = Running(config, tmp_path, clock)
        try:
            bridge.service.client.transport.backoff_base = 0.01
            ready(probe, base_topic)
            faults = _faults(sim, bridge, clock)
            counts: Dict[str, int] = {"cycles": 0, "ok": 0}
            baseline: Dict[str, int] = {}
            deadline = time.monotonic() + SOAK_SECONDS
            while time.monotonic() < deadline:
                if rng.random() < 0.6:
                    rng.choice(faults)(rng)
                if rng.random() < 0.2:
                    probe.publish(f"{base_topic}/bridge/request/{rng.choice(['refresh', 'x'])}",
                                  rng.choice([b"{", b"\xff", b"[]", json.dumps({"ps_id": "?"})]))
                name = rng.choice(["refresh"] * 6 + ["faults", "quota", "info"])
                answer = probe.request(base_topic, name, {}, timeout=20)
                counts["cycles"] += 1
                counts["ok"] += answer["status"] == "ok"
                if counts["cycles"] == 5:
                    baseline = _resources()
            assert bridge.thread.is_alive(), f"worker died (seed {seed})"
            assert counts["cycles"] >= 20 and counts["ok"] >= 5, (counts, seed)

            sim.reset()                                     # healthy again; clock back
            _lift_pause(bridge, clock)
            assert probe.request(base_topic, "refresh", {}, timeout=20)["status"] == "ok"
            mark = len(probe.history)
            assert probe.request(base_topic, "refresh", {}, timeout=20)["status"] == "ok"
            info = f"{base_topic}/bridge/info"    # unchanged states are not sent again
            probe.wait_for(lambda p: any(t == info and json.loads(d)["last_poll"]["realtime"]
                                         ["outcome"] == "ok" for t, d, _ in p.history[mark:]),
                           10, "a good realtime poll")
            # slow simulated answers still sleeping must finish before counting
            wait_until(lambda: _settled(baseline), 10,
                       f"fds/threads to settle (seed {seed}): baseline {baseline}, when the "
                       f"wait began {_resources()}: {_thread_names()}")
        finally:
            bridge.stop()
            probe.close()
    assert not thread_errors, thread_errors
    broken = unhandled(caplog)
    assert not broken, f"seed {seed}:\n" + describe(broken)
