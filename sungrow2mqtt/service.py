"""The controller: builds the components, wires them together, starts and stops them.

One worker thread owns the schedule, the quota and the fleet's updates; the calls of a job go out
together on the client's small pool (one round trip per poll), under its client-side copy of the
gateway's rate bucket.  The announcer's thread sends discovery configs and republishes; MQTT
callbacks only validate requests and queue them.  The main thread only waits for a stop signal
(SIGTERM, SIGINT, or SIGHUP: a closed terminal stops the bridge cleanly too; there is no reload,
restart to read a changed config), so a stop publishes ``offline`` and exits within seconds even
while an HTTP call is still waiting.  Under systemd the worker loop pings the watchdog each time
round (:mod:`.systemd`): a loop that hangs gets the service restarted.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, Optional

from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.clock import Clock
from sungrow2mqtt.components.announcer import Announcer
from sungrow2mqtt.components.bridge_requests import bridge_requests
from sungrow2mqtt.components.cloud_requests import CloudRequests
from sungrow2mqtt.components.fleet import FleetState
from sungrow2mqtt.components.jobs import CloudJobs
from sungrow2mqtt.components.poller import Job, Poller
from sungrow2mqtt.components.publisher import Publisher
from sungrow2mqtt.components.ratios import RatioPoints
from sungrow2mqtt.components.refresh import Refresh
from sungrow2mqtt.components.request_api import RequestApi
from sungrow2mqtt.config import Config, IsolarCloudConfig
from sungrow2mqtt.control import load_parameters
from sungrow2mqtt.control.component import SET_REQUEST, Control
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.health import state_path, status_path
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient
from sungrow2mqtt.isolarcloud.params import ParameterClient
from sungrow2mqtt.isolarcloud.token_store import TokenStore
from sungrow2mqtt.isolarcloud.transport import Transport
from sungrow2mqtt.mqtt import MqttConnection
from sungrow2mqtt.systemd import Notifier

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0      # --once: how long to wait for the broker
CLOUD_REFRESH = 300         # seconds: the cloud's realtime values change about this often
PUBLISH_TIMEOUT = 15.0      # --once: how long to wait for the broker's acknowledgements
MAX_IDLE = 1.0              # seconds the worker waits at most before looking at its deadlines


def make_client(config: IsolarCloudConfig, *, max_retries: int = 3,
                stop_event: Optional[threading.Event] = None) -> IsolarCloudClient:
    """An Open API client for the ``isolarcloud`` section of the config."""
    transport = Transport(config.server, config.appkey, config.access_key,
                          rsa_public_key=config.rsa_public_key, language=config.language,
                          timeout=config.timeout, max_retries=max_retries,
                          sleep=stop_event.wait if stop_event is not None else time.sleep)
    store = (TokenStore(config.token_file, config.server, config.username)
             if config.token_file else None)
    return IsolarCloudClient(transport, config.username, config.password, token_store=store)


class Service:
    """The ``run`` command: one bridge between one account and one broker."""

    def __init__(self, config: Config, *, clock: Optional[Clock] = None) -> None:
        clock = clock or Clock()
        self.config = config
        self.stop_event = threading.Event()
        self.stopped_by: Optional[int] = None      # the signal that stopped run_forever
        self.catalog = load_catalog(config.points.catalog)
        self.client = make_client(config.isolarcloud, stop_event=self.stop_event)
        topics = Topics(config.mqtt.base_topic, config.homeassistant.prefix)
        self.mqtt = MqttConnection(config.mqtt, topics.bridge_state)

        def api_calls() -> int:
            return self.client.transport.stats.total

        self.fleet = FleetState()
        self.jobs = CloudJobs(self.client, self.catalog, self.fleet, clock,
                              plants=config.plants,
                              ratios=RatioPoints(state_path(config, "ratio_points.json")))
        polling = config.polling
        calls_of = self.jobs.calls_of
        jobs = [Job("devices", polling.devices, self.jobs.refresh_devices,
                    calls=calls_of("devices"), discovery=True),
                Job("realtime", polling.realtime, self.jobs.poll_realtime,
                    calls=calls_of("realtime")),
                Job("faults", polling.faults, self.jobs.poll_faults,
                    early=self.jobs.start_faults, calls=calls_of("faults"))]
        self.poller = Poller(self.fleet, jobs, clock, api_calls=api_calls, polling=polling,
                             pause_file=state_path(config, "pause.json"))
        self.publisher = Publisher(self.mqtt, topics, self.fleet, api_calls=api_calls,
                                   status_file=status_path(config),
                                   denied_apis=self.client.denied_apis)
        self.announcer = Announcer(self.mqtt, topics, self.catalog, config.homeassistant,
                                   on_republish=self._republish_states)
        self.fleet.listen(self.announcer)     # first: Home Assistant knows an entity before
        self.fleet.listen(self.publisher)     # its first state arrives
        self.requests = RequestApi(self.mqtt, topics)
        self.cloud_requests = CloudRequests(self.fleet, self.poller, self.requests, clock,
                                            spacing=polling.min_refresh_spacing,
                                            api_calls=api_calls)
        self.refresh = Refresh(self.fleet, self.poller, self.jobs.poll_realtime,
                               self.cloud_requests, clock, denied_apis=self.client.denied_apis)
        for name, spec in bridge_requests(self.fleet, self.poller, self.jobs, self.publisher,
                                          self.refresh, self.cloud_requests, self.client,
                                          self.catalog, topics).items():
            self.requests.register(name, spec)
        # built even when disabled: `set` requests are then refused with the reason
        self.control = Control(config.control, load_parameters(), ParameterClient(self.client),
                               self.client, self.mqtt, topics, self.announcer,
                               respond=self.requests.respond,
                               paused_until=self.poller.paused_until, clock=clock)
        self.fleet.listen(self.control)       # after the announcer: its configs go through it
        self.requests.register(SET_REQUEST, self.control.request_spec())
        self.mqtt.on_connected.append(self.republish)
        self.notifier = Notifier()
        self.worker: Optional[threading.Thread] = None

    def republish(self) -> None:
        """States, faults, info and discovery again, soon (a reconnect, Home Assistant's birth);
        the announcer's thread carries it, so paho's own thread never waits for the broker."""
        self.announcer.republish()

    def _republish_states(self) -> None:
        """The announcer's republish: states, faults and info, then the control's read-backs
        (the configs follow on the announcer's thread)."""
        self.publisher.republish()
        self.control.republish()

    def start(self, *, worker: bool = True) -> None:
        """Start the components and connect; the worker thread polls and answers requests."""
        for component in (self.publisher, self.announcer, self.requests, self.poller):
            component.start()
        self.mqtt.start()
        if worker:
            self.control.start()          # not for run --once: no writes in a single cycle
            if self.config.polling.realtime < CLOUD_REFRESH:
                log.warning("polling.realtime is %g s: the cloud refreshes realtime values about "
                            "every %d s, so polling faster spends API calls on the same values",
                            self.config.polling.realtime, CLOUD_REFRESH)
            self.worker = threading.Thread(target=self._work, name="bridge", daemon=True)
            self.worker.start()
            self.notifier.ready()

    def stop(self) -> None:
        """Stop the worker and the components, publish ``offline`` and disconnect."""
        self.notifier.stopping()
        self.stop_event.set()
        for component in (self.poller, self.requests, self.announcer):
            component.stop()
        self.control.stop()               # queued writes get their refusal while connected
        self.mqtt.stop()
        self.publisher.stop()             # the status file now says "not connected"
        if self.worker is not None:
            self.worker.join(timeout=1.0)
        self.client.close()

    def _work(self) -> None:
        """The worker thread: polls when due, deferred refreshes, queued requests, until stopped."""
        while not self.stop_event.is_set():
            self.notifier.alive()
            try:
                self.poller.run_due()
                self.cloud_requests.run_due()
                wait = min(MAX_IDLE, self.poller.seconds_until_due(),
                           self.cloud_requests.seconds_until_due())
                self.requests.handle_next(timeout=max(0.05, wait))
            except Exception:   # the one broad catch: keep the service alive, say what happened
                log.exception("Unexpected error in the polling loop; continuing")
                self.stop_event.wait(5)

    def run_once(self) -> int:
        """One full cycle (devices, states, faults) acked by the broker; 0 if all went well."""
        self.start(worker=False)
        try:
            if not self.mqtt.wait_connected(CONNECT_TIMEOUT):
                log.error("Could not connect to the MQTT broker %s:%d: %s",
                          self.config.mqtt.host, self.config.mqtt.port,
                          self.mqtt.fatal_error or f"no connection within {CONNECT_TIMEOUT:.0f} s "
                          f"({self.mqtt.diagnose()})")
                return 1
            self.poller.run_cycle()
            if not (self.announcer.flush(PUBLISH_TIMEOUT)
                    and self.mqtt.wait_published(PUBLISH_TIMEOUT)):
                log.error("The broker did not acknowledge every publish within %.0f s",
                          PUBLISH_TIMEOUT)
                return 1
            # a poll skipped inside a rate-limit pause did not go well either
            failed = [k for k, o in self.fleet.snapshot().outcomes.items() if o.ok is not True]
            return 1 if failed else 0
        finally:
            self.stop()

    def run_forever(self) -> int:
        """Poll until SIGTERM, SIGHUP or SIGINT, then publish ``offline``; 0 for SIGTERM and
        SIGHUP (a normal stop by systemd or Docker, a closed terminal), 130 for SIGINT (Ctrl-C,
        as a shell reports it)."""
        self._install_signal_handlers()
        self.start()
        while not self.stop_event.wait(1.0):   # a timeout: a signal that lands just before a
            pass                               # blocking wait() would never be handled
        log.info("Stopping")
        self.stop()
        return 130 if self.stopped_by == signal.SIGINT else 0

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: Any) -> None:
            log.info("Received %s", signal.Signals(signum).name)
            self.stopped_by = signum
            self.stop_event.set()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, stop)
