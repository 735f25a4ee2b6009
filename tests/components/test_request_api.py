"""The request API alone: registry, dispatcher, envelope, queue."""
from __future__ import annotations

from typing import Any, Dict, List

import pytest

from component_support import RecordingMqtt
from sungrow2mqtt.components.request_api import (
    NO_FIELDS,
    BadRequest,
    Request,
    RequestApi,
    RequestSpec,
)
from sungrow2mqtt.discovery import Topics
from sungrow2mqtt.validation import Field, Section, integer

TOPICS = Topics("s2m")


def make_api(max_queued: int = 20):
    mqtt, handled = RecordingMqtt(), []  # type: ignore[var-annotated]
    api = RequestApi(mqtt, TOPICS, max_queued=max_queued)   # type: ignore[arg-type]

    def handle_set(request: Request) -> Dict[str, Any]:
        handled.append(request)
        if request.params["soc_max"] == 13:
            raise BadRequest("set", "13 is unlucky", request.transaction)
        return {"soc_max": request.params["soc_max"]}

    # a component elsewhere (control, say) adds a request by registering one spec, its schema
    # built from the validation toolkit's pieces
    api.register("set", RequestSpec(Section((Field("soc_max", integer(0, 100)),)), handle_set))
    api.register("later", RequestSpec(NO_FIELDS, lambda request: None))
    api.start()
    return api, mqtt, handled


def answers(mqtt: RecordingMqtt, name: str) -> List[Dict[str, Any]]:
    return mqtt.on(TOPICS.response(name))


def test_a_registered_request_is_validated_queued_carried_out_and_answered():
    api, mqtt, handled = make_api()
    mqtt.deliver("s2m/bridge/request/set", b'{"soc_max": 90, "transaction": "t1"}')
    assert not handled                                 # the MQTT thread only queues
    api.handle_next(timeout=0)
    assert handled == [Request("set", {"soc_max": 90}, "t1")]
    assert answers(mqtt, "set") == [{"status": "ok", "data": {"soc_max": 90},
                                     "transaction": "t1"}]


@pytest.mark.parametrize("payload,error", [
    (b'{"soc_max": 190}', "soc_max: expected an integer 0–100, got 190"),
    (b"{}", "soc_max: required"),
    (b'{"soc_max": 13}', "13 is unlucky"),
])
def test_a_refused_request_gets_one_error_envelope(payload, error):
    api, mqtt, _ = make_api()
    mqtt.deliver("s2m/bridge/request/set", payload)
    api.handle_next(timeout=0)
    assert answers(mqtt, "set") == [{"status": "error", "data": {}, "error": error}]


def test_unknown_names_retained_requests_and_late_answers():
    api, mqtt, handled = make_api()
    mqtt.deliver("s2m/bridge/request/reboot", b"")
    assert answers(mqtt, "reboot")[0]["error"] == \
        "unknown request 'reboot'; known requests: later, set"
    mqtt.deliver("s2m/bridge/request/set", b'{"soc_max": 1}', retained=True)
    mqtt.deliver("s2m/bridge/request/later", b"")
    api.handle_next(timeout=0)
    api.handle_next(timeout=0)
    assert not handled and not answers(mqtt, "later")   # retained: ignored; later: not yet


def test_a_full_queue_is_answered_not_dropped_and_names_are_registered_once():
    api, mqtt, _ = make_api(max_queued=1)
    mqtt.deliver("s2m/bridge/request/set", b'{"soc_max": 1}')
    mqtt.deliver("s2m/bridge/request/set", b'{"soc_max": 2, "transaction": 2}')
    assert answers(mqtt, "set") == [{"status": "error", "data": {}, "transaction": 2,
                                     "error": "too many requests queued; try again later"}]
    with pytest.raises(ValueError, match="not a new"):
        api.register("set", RequestSpec(NO_FIELDS, lambda request: None))


def test_a_checker_that_fails_unexpectedly_still_gets_the_request_answered(caplog):
    api, mqtt, handled = make_api()

    def broken(value: Any) -> Any:
        raise ValueError("a bug in a checker")
    api.register("broken", RequestSpec(Section((Field("x", broken),)), handled.append))
    mqtt.deliver("s2m/bridge/request/broken", b'{"x": 1, "transaction": "t9"}')
    assert answers(mqtt, "broken") == [{
        "status": "error", "data": {}, "transaction": "t9",
        "error": "the bridge failed to check this request (a bug: see its log)"}]
    assert not handled and "a bug in a checker" in caplog.text
