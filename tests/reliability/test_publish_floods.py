"""Floods and large fleets must not drop publishes (issue 14, finding 4).

A LAN client that repeats Home Assistant's birth message, and an account with thousands of
devices, both used to push more publishes into paho than it can hold (its message ids wrap at
65,535): the surplus failed, and a discovery config that failed was recorded as sent and never
sent again.  Real mosquitto (keeping every message it queues for a client: it would drop what
the probe, a slow subscriber in this busy process, lags behind), real simulator.
"""
from __future__ import annotations

import json
import logging
import uuid

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bridge_harness import Running, config_dict, ready
from conftest import SIM_START
from mqtt_probe import MqttProbe
from reliability_support import describe, fast_simulator, records, unqueued_broker
from sungrow2mqtt.components import announcer
from sungrow2mqtt.simulator import Fleet

__all__ = ["unqueued_broker"]   # fixture, used by name below
BIRTHS = 2000


def _flood(port: int, topic: str, payload: bytes, count: int) -> None:
    """``count`` retained messages as fast as the broker takes them (a hostile LAN client)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="flood-" + uuid.uuid4().hex[:8])
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1, retain=True) for _ in range(count)]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_flood_of_ha_birth_messages_is_coalesced(unqueued_broker, tmp_path, base_topic,
                                                    caplog):
    broker = unqueued_broker
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    with fast_simulator() as sim:
        config = config_dict(sim, broker.port, base_topic, tmp_path)
        probe = MqttProbe(broker.port, f"{base_topic}/#", f"{base_topic}_ha/#")
        running = Running(config, tmp_path)
        try:
            listed = ready(probe, base_topic)
            plant_state = f"{base_topic}/{listed['plants'][0]['ps_key']}"
            mark = len(probe.history)
            caplog.clear()

            _flood(broker.port, config["homeassistant"]["status_topic"], b"online", BIRTHS)
            births = [r for r in caplog.records if "Home Assistant is online" in r.getMessage()]
            answer = probe.request(base_topic, "info", {}, timeout=60)   # still answering
            assert answer["status"] == "ok"
            running.service.mqtt.wait_published(60)

            republished = sum(1 for t, _, _ in probe.history[mark:] if t == plant_state)
            assert 1 <= republished < BIRTHS // 2, (republished, len(births))
            assert not records(caplog, logging.WARNING), describe(records(caplog))
        finally:
            running.stop()
            probe.close()


def test_a_3000_device_account_loses_no_publish(unqueued_broker, tmp_path, base_topic, caplog,
                                                monkeypatch):
    broker = unqueued_broker
    caplog.set_level(logging.INFO, logger="sungrow2mqtt")
    # the pace kept for Home Assistant would take minutes; not what this test is about
    monkeypatch.setattr(announcer, "FLOOD_RATE", 20_000.0)
    with fast_simulator(fleet=Fleet.synthetic(3000), start_time=SIM_START) as sim:
        # pages of 100 plants take the simulator a while on a busy machine
        config = config_dict(sim, broker.port, base_topic, tmp_path,
                             isolarcloud={"timeout": 30})
        prefix = config["homeassistant"]["prefix"]
        probe = MqttProbe(broker.port, f"{base_topic}/#", f"{prefix}/#")
        running = Running(config, tmp_path)
        try:
            listed = ready(probe, base_topic, timeout=180)   # a busy machine, 60,000 messages
            assert len(listed["devices"]) == 3000
            values = running.service.fleet.snapshot().values
            states = {f"{base_topic}/{ps_key}" for ps_key in values}
            probe.wait_for(lambda p: all(t in p.messages for t in states), 120,
                           "every device's state")
            for ps_key, state in list(values.items())[::100]:
                assert json.loads(probe.messages[f"{base_topic}/{ps_key}"]) == state

            assert running.service.announcer.flush(300), "configs still being announced"
            announced = running.service.announcer.announced()
            assert len(announced) > 50_000
            probe.wait_for(lambda p: all(p.messages.get(t) for t in announced), 180,
                           "every announced discovery config")
            assert running.service.mqtt.stats.refused == 0
            assert not records(caplog, logging.WARNING), describe(records(caplog))
        finally:
            running.stop()
            probe.close()
