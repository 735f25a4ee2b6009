"""The bridge's components, wired together by :mod:`sungrow2mqtt.service` (the controller).

Each takes its dependencies in the constructor and talks to the others through the fleet state
and small callbacks (zigbee2mqtt's controller and extensions):

- :mod:`.fleet`: devices, values, faults, poll outcomes, quota and pause under one lock;
- :mod:`.jobs`: what each poll asks the cloud and how the answer lands in the fleet state;
- :mod:`.poller`: when jobs run (monotonic deadlines), cloud-trouble episodes, pauses;
- :mod:`.announcer`: Home Assistant discovery configs;
- :mod:`.publisher`: states, faults, ``bridge/info``, ``bridge/devices`` and the status file;
- :mod:`.request_api`: ``bridge/request/<name>``: one registry, one dispatcher, one envelope;
- :mod:`.cloud_requests`: requests that call the cloud, shared when alike and spaced;
- :mod:`.refresh`: the refresh request's poll and its answer;
- :mod:`.bridge_requests`: the bridge's own requests (refresh, faults, quota, info, history).
"""
