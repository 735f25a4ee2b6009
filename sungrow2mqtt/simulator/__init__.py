"""A simulated iSolarCloud Open API gateway, so the client and bridge can run without an account.

Start one with ``SimulatorServer(...).start()`` (or as a context manager) and point the client at
``server.url``; :func:`config_block` writes the matching ``isolarcloud:`` configuration section.
"""
from sungrow2mqtt.simulator.fleet import Fleet
from sungrow2mqtt.simulator.gateway import DEFAULT_CREDENTIALS, Credentials
from sungrow2mqtt.simulator.server import SimulatorServer, config_block

__all__ = ["Credentials", "DEFAULT_CREDENTIALS", "Fleet", "SimulatorServer", "config_block"]
