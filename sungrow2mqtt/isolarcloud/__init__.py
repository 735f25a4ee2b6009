"""A client library for the SUNGROW iSolarCloud Open API; knows nothing of MQTT or HA."""
