#!/bin/sh
# Add-on entry point: write /data/config.yaml from the add-on options (broker from the
# Supervisor's MQTT service unless mqtt.host is set), then run the bridge on it.
# Everything it logs goes to stdout, i.e. the add-on's Log tab.
exec python3 -m sungrow2mqtt.addon "$@" 2>&1
