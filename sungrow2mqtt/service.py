"""Lifecycle of the bridge process: build the pieces, run, stop cleanly on SIGTERM/SIGINT.

The cloud work runs on a daemon worker thread; the main thread only waits for a stop signal, so a
stop publishes ``offline`` and exits within seconds even while an HTTP call is still waiting.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any, Optional

from sungrow2mqtt.bridge import Bridge
from sungrow2mqtt.catalog import load_catalog
from sungrow2mqtt.config import Config, IsolarCloudConfig
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.health import status_path
from sungrow2mqtt.isolarcloud.client import IsolarCloudClient
from sungrow2mqtt.isolarcloud.token_store import TokenStore
from sungrow2mqtt.isolarcloud.transport import Transport
from sungrow2mqtt.mqtt import MqttConnection

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0      # --once: how long to wait for the broker
PUBLISH_TIMEOUT = 15.0      # --once: how long to wait for the broker's acknowledgements


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

    def __init__(self, config: Config) -> None:
        self.config = config
        self.stop_event = threading.Event()
        self.stopped_by: Optional[int] = None      # the signal that stopped run_forever
        self.catalog = load_catalog(config.points.catalog)
        self.client = make_client(config.isolarcloud, stop_event=self.stop_event)
        topics = Topics(config.mqtt.base_topic, config.homeassistant.prefix)
        self.mqtt = MqttConnection(config.mqtt, topics.bridge_state)
        self.bridge = Bridge(config, self.client, self.catalog, self.mqtt,
                             stop_event=self.stop_event, status_file=status_path(config))
        self.bridge.attach()

    def run_once(self) -> int:
        """One full cycle (devices, states, faults) acked by the broker; 0 if all went well."""
        self.mqtt.start()
        try:
            if not self.mqtt.wait_connected(CONNECT_TIMEOUT):
                log.error("Could not connect to the MQTT broker %s:%d: %s",
                          self.config.mqtt.host, self.config.mqtt.port,
                          self.mqtt.fatal_error or f"no connection within {CONNECT_TIMEOUT:.0f} s "
                          f"({self.mqtt.diagnose()})")
                return 1
            self.bridge.poll_all()
            if not self.mqtt.wait_published(PUBLISH_TIMEOUT):
                log.error("The broker did not acknowledge every publish within %.0f s",
                          PUBLISH_TIMEOUT)
                return 1
            failed = [k for k, o in self.bridge.outcomes.items() if o.ok is False]
            return 1 if failed else 0
        finally:
            self.mqtt.stop()
            self.client.close()

    def run_forever(self) -> int:
        """Poll until SIGTERM/SIGINT, then publish ``offline``; 0 for SIGTERM (a normal stop
        by systemd or Docker), 130 for SIGINT (Ctrl-C, as a shell reports it)."""
        self._install_signal_handlers()
        self.mqtt.start()
        worker = threading.Thread(target=self.bridge.run_forever, name="bridge", daemon=True)
        worker.start()
        self.stop_event.wait()
        log.info("Stopping")
        self.bridge.stop()
        self.mqtt.stop()
        self.bridge.publish_info()        # the status file now says "not connected"
        worker.join(timeout=1.0)
        self.client.close()
        return 130 if self.stopped_by == signal.SIGINT else 0

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, frame: Any) -> None:
            log.info("Received %s", signal.Signals(signum).name)
            self.stopped_by = signum
            self.stop_event.set()
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
