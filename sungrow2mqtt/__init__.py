"""sungrow2mqtt: bridge a SUNGROW iSolarCloud plant (Open API) to MQTT and Home Assistant."""

__version__ = "0.1.0"
