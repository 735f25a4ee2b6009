"""The project's exception root, so callers can catch everything of ours in one place."""


class Sungrow2MqttError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(Sungrow2MqttError, ValueError):
    """The configuration file is missing, unreadable or invalid (exit code 2)."""


class CatalogError(Sungrow2MqttError, ValueError):
    """A point catalog file is invalid; the message names file and entry."""
