"""Command line: ``sungrow2mqtt <command>`` (also ``python -m sungrow2mqtt``).

Exit codes: 0 success, 1 cloud, network or broker failure, 2 configuration error, 130 interrupted.
Failures print one line naming the cause; ``-v`` adds DEBUG logs and tracebacks.
"""
from __future__ import annotations

import argparse
import datetime
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from sungrow2mqtt import __version__
from sungrow2mqtt.config import Config, load_config
from sungrow2mqtt.errors import CatalogError, ConfigError, Sungrow2MqttError
from sungrow2mqtt.isolarcloud.errors import ApiError, ConnectionFailed
from sungrow2mqtt.secret import RedactingFilter, redact

if TYPE_CHECKING:
    from sungrow2mqtt.isolarcloud.client import IsolarCloudClient

log = logging.getLogger("sungrow2mqtt")

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130
# result code -> the config key to look at
HINTS: Dict[str, str] = {
    "E00000": "check isolarcloud.appkey",
    "E00001": "the app's API service has expired: renew it on the developer portal",
    "E911": "check isolarcloud.access_key",
    "E912": "check isolarcloud.access_key (the portal's secret key)",
    "E914": "isolarcloud.appkey and isolarcloud.access_key belong to different apps",
    "E906": "check isolarcloud.rsa_public_key (the portal's RSA public key of this app)",
    "E902": "this app requires encrypted calls: set isolarcloud.rsa_public_key",
    "E900": "this app is not authorised for that API on the developer portal",
    "E918": "this machine's IP address is not on the app's allowed list",
}


def setup_logging(level: str, verbose: bool) -> None:
    """Log to stderr; under systemd (JOURNAL_STREAM) without our own timestamps."""
    handler = logging.StreamHandler()
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    handler.setFormatter(logging.Formatter(stamp + "%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO))
    if not verbose:
        logging.getLogger("urllib3").setLevel(logging.WARNING)
        # paho logs every failed reconnect as ERROR; mqtt.py reports each episode once instead
        logging.getLogger("paho.mqtt").setLevel(logging.CRITICAL)


def fail(message: str) -> None:
    """Print one clean error line (secrets scrubbed)."""
    print(f"sungrow2mqtt: error: {redact(message)}", file=sys.stderr)


def describe_error(exc: BaseException) -> str:
    """The one line a user reads for an error, with a hint where one helps."""
    text = str(exc)
    if isinstance(exc, ApiError):
        hint = HINTS.get(str(exc.result_code or ""))
        if hint is None and isinstance(exc, ConnectionFailed):
            hint = "check isolarcloud.server (region or URL) and the network"
        if hint:
            text = f"{text} — {hint}"
    return text


# -- commands -----------------------------------------------------------------------------------

def cmd_check(args: argparse.Namespace, config: Config) -> int:
    """Log in and list plants, devices and the call quota; then connect to the broker."""
    from sungrow2mqtt.catalog import load_catalog
    from sungrow2mqtt.model import as_int, publishable
    from sungrow2mqtt.mqtt import check_broker
    from sungrow2mqtt.service import make_client

    def text(value: Any) -> str:          # the cloud's text, printable whatever it holds
        return str(publishable(str(value)))

    catalog = load_catalog(config.points.catalog)
    client = make_client(config.isolarcloud, max_retries=1)
    try:
        mode = "encrypted" if client.transport.encrypted else "plain"
        print(f"Server:   {client.transport.base_url} ({mode} calls)")
        client.login()
        print(f"Account:  {config.isolarcloud.username}: login ok")
        plants = client.get_power_station_list()
        devices = client.get_device_list_by_user()
        print(f"\nPlants ({len(plants)}):")
        for plant in plants:
            print(f"  {text(plant.get('ps_id'))}  {text(plant.get('ps_name'))}  "
                  f"(time zone {text(plant.get('ps_current_time_zone') or '?')})")
            for device in devices:
                if str(device.get("ps_id")) != str(plant.get("ps_id")):
                    continue
                type_name = catalog.device_type_name(as_int(device.get("device_type")))
                print(f"      {type_name:<28} {text(device.get('device_model_code') or '-'):<12} "
                      f"SN {text(device.get('device_sn') or '-'):<14} "
                      f"ps_key {text(device.get('ps_key'))}")
        quota = client.get_open_api_call_info()
        print(f"\nCall quota: {text(quota.get('today_accessed_times', '?'))} calls today of "
              f"{text(quota.get('per_day_access_times_config', '?'))} per day; "
              f"{text(quota.get('curr_hour_accessed_times', '?'))} this hour")
        print(f"API calls made by this check: {client.transport.stats.total}")
    finally:
        client.close()
    print(f"\nMQTT:     broker {check_broker(config.mqtt)}: connected", flush=True)
    return EXIT_OK


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    """Run the bridge (``--once``: one cycle, then exit)."""
    from sungrow2mqtt.service import Service

    service = Service(config)
    return service.run_once() if args.once else service.run_forever()


def cmd_points(args: argparse.Namespace, config: Config) -> int:
    """Print the cloud's open points of a device type as catalog YAML."""
    from sungrow2mqtt.catalog import open_points_to_yaml
    from sungrow2mqtt.service import make_client

    client = make_client(config.isolarcloud, max_retries=1)
    try:
        rows = client.get_open_point_info(args.device_type, args.point_type)
    finally:
        client.close()
    sys.stdout.write(open_points_to_yaml(args.device_type, rows))
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace, config: Optional[Config]) -> int:
    """Serve the built-in Open API simulator until interrupted."""
    from sungrow2mqtt.simulator import SimulatorServer, config_block
    from sungrow2mqtt.simulator.server import MISSING_READINGS

    stop = threading.Event()
    stopped_by: List[int] = []

    def stop_on(signum: int, frame: Any) -> None:
        stopped_by.append(signum)
        stop.set()
    # before the server starts: a signal that comes while it starts up must not be lost
    signal.signal(signal.SIGTERM, stop_on)
    signal.signal(signal.SIGINT, stop_on)
    server = SimulatorServer(args.host, args.port, encrypted=args.encrypted,
                             start_time=args.start, token_error=args.token_error,
                             burst_capacity=args.burst, replenish_rate=args.replenish_rate,
                             latency=args.latency,
                             missing_reading=MISSING_READINGS[args.missing_reading])
    server.start()
    if args.public_key_file and server.public_key:
        with open(args.public_key_file, "w", encoding="ascii") as handle:
            handle.write(server.public_key + "\n")
    print(f"iSolarCloud Open API simulator listening on {server.url}"
          f" ({'encrypted' if args.encrypted else 'plain'} calls). Ctrl-C stops it.")
    if args.start is not None:
        print(f"Simulated clock starts at {_utc_text(args.start)} and runs at real speed.")
    print("Paste this into config.yaml (demo credentials of the simulator, not secrets):\n")
    print(config_block(server), flush=True)
    try:
        while not stop.wait(0.5):   # a timeout: a blocked wait() may never see the signal
            pass
    finally:
        server.stop()
    return EXIT_INTERRUPTED if signal.SIGINT in stopped_by else EXIT_OK


def _sim_instant(text: str) -> float:
    """``simulate --start``: ISO 8601 with a UTC offset, or epoch seconds."""
    from sungrow2mqtt.simulator.clock import parse_instant

    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _bounded(convert: Callable[[str], Any], low: float, strict: bool = False
             ) -> Callable[[str], Any]:
    """An argparse type: a number at least (``strict``: above) ``low``."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(
                f"must be {'above' if strict else 'at least'} {low:g}, not {text}")
        return value
    return parse


def _utc_text(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="seconds")


def cmd_init(args: argparse.Namespace, config: Optional[Config]) -> int:
    """Write the annotated example configuration (stdout, or a new file with mode 0600)."""
    from sungrow2mqtt.config import example_config_text

    text = example_config_text()
    if not args.output or args.output == "-":
        sys.stdout.write(text)
        return EXIT_OK
    if os.path.exists(args.output) and not args.force:
        fail(f"{args.output} exists; use --force to overwrite it")
        return EXIT_CONFIG
    fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    print(f"Wrote {args.output}: fill in the isolarcloud section, then run "
          f"'sungrow2mqtt check -c {args.output}'", file=sys.stderr)
    return EXIT_OK


def cmd_history(args: argparse.Namespace, config: Config) -> int:
    """Download a device's history (any range, split into the document's windows); warn first
    when it needs more calls than the quota has left, and write what came if the cloud stops it."""
    from sungrow2mqtt.catalog import load_catalog
    from sungrow2mqtt.components.bridge_requests import HISTORY
    from sungrow2mqtt.components.request_api import BadRequest, parse_fields
    from sungrow2mqtt.history import HistoryStopped, fetch_history_range, split_range
    from sungrow2mqtt.model import PLANT_DEVICE_TYPE, device_from_row, plant_from_row
    from sungrow2mqtt.service import make_client

    request = {"ps_key": args.ps_key, "points": args.points, "start": args.start,
               "end": args.end, "interval": args.interval}
    try:
        params = parse_fields("history", request, HISTORY)
        calls = len(split_range(args.interval, args.start, args.end))   # dates readable, in order
    except (BadRequest, ValueError) as exc:
        fail(str(exc))
        return EXIT_CONFIG
    ps_key = params["ps_key"]
    catalog = load_catalog(config.points.catalog)
    client = make_client(config.isolarcloud, max_retries=2)
    try:
        row = next((p for p in client.get_power_station_list()
                    if str(p.get("ps_id")) == str(ps_key.ps_id)), None)
        if row is None:
            fail(f"plant {ps_key.ps_id} (from --ps-key) is not in this account")
            return EXIT_FAILURE
        plant = plant_from_row(row, catalog.device_type_name(PLANT_DEVICE_TYPE))
        device = plant if ps_key == plant.ps_key else device_from_row(
            {"ps_key": ps_key, "device_type": ps_key.device_type}, plant,
            catalog.device_type_name(ps_key.device_type))

        terminal = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            """One updating line on a terminal; one line per window in a log or a pipe."""
            if total > 1:
                line = f"downloading window {done}/{total}"
                if terminal:
                    print("\r" + line, end="" if done < total else "\n", file=sys.stderr,
                          flush=True)
                else:
                    print(line, file=sys.stderr, flush=True)
        _warn_if_over_quota(client, calls)
        stopped = None
        try:
            result = fetch_history_range(client, catalog, device, params, progress)
        except HistoryStopped as exc:
            if terminal:
                print(file=sys.stderr)          # end the progress line
            result, stopped = exc.partial, exc
    finally:
        client.close()
    _write_history(result, args.format)
    if stopped is not None:
        fail(f"{stopped}; the samples before it are written")
        return EXIT_FAILURE
    return EXIT_OK


def _warn_if_over_quota(client: "IsolarCloudClient", calls: int) -> None:
    """Say before a download that it needs more calls than the quota has left (1 call)."""
    from sungrow2mqtt.components.fleet import quota_summary

    try:
        quota = quota_summary(client.get_open_api_call_info(),
                              datetime.datetime.now(datetime.timezone.utc).hour)
    except ApiError:
        quota = {}
    room = [total - used for total, used in ((quota.get("per_hour"), quota.get("this_hour_used")),
                                             (quota.get("per_day"), quota.get("today_used")))
            if total is not None and used is not None]
    if room and calls > min(room):
        print(f"warning: this download takes {calls} API calls and the quota has {min(room)} "
              "left: the cloud will refuse the rest (E999) and what came before is written. "
              "A shorter range or a coarser --interval costs fewer calls.", file=sys.stderr,
              flush=True)


def _write_history(result: Dict[str, Any], form: str) -> None:
    """The series as JSON, or as CSV: one row per time, one column per point."""
    import csv
    import json

    if form == "json":
        json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return
    keys = list(result["series"])
    rows: Dict[Any, Dict[str, Any]] = {}
    for key in keys:
        for sample in result["series"][key]:
            rows.setdefault(sample["time"], {})[key] = sample["value"]
    units = {k: result["points"][k].get("unit") for k in keys}
    writer = csv.writer(sys.stdout)
    writer.writerow(["time"] + [f"{k} ({units[k]})" if units[k] else k for k in keys])
    for moment in sorted(rows, key=str):
        writer.writerow([moment] + [rows[moment].get(k, "") for k in keys])


def cmd_health(args: argparse.Namespace, config: Optional[Config]) -> int:
    """Exit 0 when the running bridge is alive and connected (for Docker's HEALTHCHECK)."""
    from sungrow2mqtt.health import check_health, load_config_for_health

    healthy, reason = check_health(load_config_for_health(args.config))
    print(("healthy: " if healthy else "unhealthy: ") + reason)
    return EXIT_OK if healthy else EXIT_FAILURE


def cmd_demo(args: argparse.Namespace, config: Optional[Config]) -> int:
    """Simulator + embedded broker + bridge, showing what is published."""
    from sungrow2mqtt.demo import run_demo

    broker = None
    if args.broker:
        host, _, port = args.broker.rpartition(":")
        if not host or not port.isdigit():
            fail(f"--broker: expected HOST:PORT, got {args.broker!r}")
            return EXIT_CONFIG
        broker = (host, int(port))
    return run_demo(broker, args.duration, sys.stdout)


# -- parser -------------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace, Any], int]


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree; every subcommand has help with an example."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="DEBUG logs and tracebacks")
    common.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="log level (default: logging.level of the config, else INFO)")
    with_config = argparse.ArgumentParser(add_help=False, parents=[common])
    with_config.add_argument("-c", "--config", default="config.yaml",
                             help="configuration file (default: ./config.yaml)")

    parser = argparse.ArgumentParser(
        prog="sungrow2mqtt", description="Bridge a SUNGROW iSolarCloud plant to MQTT and Home "
        "Assistant.", epilog="Exit codes: 0 ok, 1 cloud/network/broker failure, 2 config "
        "error, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    def add(name: str, func: Command, help_text: str, example: str,
            parents: Sequence[argparse.ArgumentParser]) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=list(parents), help=help_text,
                                 description=help_text, epilog=f"example: {example}",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        command.set_defaults(func=func, needs_config=with_config in parents)
        return command

    run = add("run", cmd_run, "run the bridge: poll the cloud, publish to MQTT",
              "sungrow2mqtt run -c /etc/sungrow2mqtt/config.yaml", [with_config])
    run.add_argument("--once", action="store_true",
                     help="one full cycle, wait for the broker's acknowledgements, exit")
    add("check", cmd_check, "log in, list plants, devices and the call quota, test the broker",
        "sungrow2mqtt check -c config.yaml", [with_config])
    points = add("points", cmd_points, "print a device type's open points as catalog YAML",
                 "sungrow2mqtt points -c config.yaml --device-type 14 > my_points.yaml",
                 [with_config])
    points.add_argument("--device-type", type=int, required=True,
                        help="device type number (appendix 1), e.g. 14 energy storage system")
    points.add_argument("--point-type", type=int, default=2, choices=[1, 2, 5],
                        help="1 remote signaling, 2 telemetry (default), 5 property")
    simulate = add("simulate", cmd_simulate, "serve the built-in iSolarCloud Open API simulator",
                   "sungrow2mqtt simulate --port 8086 --encrypted", [common])
    simulate.add_argument("--host", default="127.0.0.1", help="listen address")
    simulate.add_argument("--port", type=int, default=8086, help="listen port (0: any free)")
    simulate.add_argument("--encrypted", action="store_true",
                          help="require encrypted calls (appendix 4-7); prints the public key")
    simulate.add_argument("--public-key-file", help="also write the RSA public key here")
    simulate.add_argument("--start", type=_sim_instant, metavar="TIME",
                          help="pin the simulated clock: it starts at TIME (ISO 8601 with a UTC "
                               "offset, e.g. 2026-06-17T12:00:00+01:00, or epoch seconds) and "
                               "runs at real speed (default: the wall clock)")
    simulate.add_argument("--token-error", choices=["E900", "E00003"], default="E900",
                          help="result code for an unknown or expired token: E900 like the live "
                               "gateway (default) or E00003 as the Open API document says")
    simulate.add_argument("--burst", type=_bounded(int, 1), default=15, metavar="N",
                          help="rate-limit bucket: N calls at once (default 15), then HTTP 429")
    simulate.add_argument("--replenish-rate", type=_bounded(float, 0, strict=True), default=10,
                          metavar="R",
                          help="rate-limit bucket: refilled by R calls a second (default 10)")
    simulate.add_argument("--latency", type=_bounded(float, 0), default=0.0, metavar="SECONDS",
                          help="add SECONDS to every answer, like a gateway far away (default 0;"
                               " the real one is 0.1-0.4 s away); parallel calls overlap")
    simulate.add_argument("--missing-reading", choices=["null", "dashes"], default="null",
                          help="a realtime point without a reading: null like the document's "
                               "sample (default), or dashes (\"--\") as some live plants send it")
    demo = add("demo", cmd_demo, "try everything locally: simulator, embedded broker, bridge",
               "sungrow2mqtt demo   (or: sungrow2mqtt demo --broker localhost:1883)", [common])
    demo.add_argument("--broker", help="use this broker (HOST:PORT) instead of the embedded one")
    demo.add_argument("--duration", type=float, help="stop after this many seconds")
    init = add("init", cmd_init, "write the annotated example configuration",
               "sungrow2mqtt init -o config.yaml", [common])
    init.add_argument("-o", "--output", help="file to write (default: standard output)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    history = add("history", cmd_history, "download a device's history as CSV or JSON",
                  "sungrow2mqtt history -c config.yaml --ps-key 1563218_11_0_0 --points 83022 "
                  "--from 2026-01-01 --to 2026-11-24 --interval day", [with_config])
    history.add_argument("--ps-key", required=True, help="device ps_key (see 'check')")
    history.add_argument("--points", required=True,
                         help="comma-separated point ids, e.g. 83022,83024")
    history.add_argument("--from", dest="start", required=True,
                         help="start: 2026-11-24T10:00 (minute), 2026-11-01 (day), 2026-01 "
                              "(month), 2020 (year)")
    history.add_argument("--to", dest="end", required=True, help="end, same format as --from")
    history.add_argument("--interval", required=True, choices=["minute", "day", "month", "year"])
    history.add_argument("--format", choices=["csv", "json"], default="csv")
    health = add("health", cmd_health, "exit 0 if the running bridge is alive and connected",
                 "sungrow2mqtt health -c /config/config.yaml", [with_config])
    health.set_defaults(needs_config=False)     # reads the file itself, without the secrets
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``sungrow2mqtt`` command."""
    args = build_parser().parse_args(argv)
    config: Optional[Config] = None
    setup_logging(args.log_level or "INFO", args.verbose)
    try:
        if args.needs_config:
            config = load_config(args.config)
            if not args.log_level:
                setup_logging(config.logging.level, args.verbose)
        return int(args.func(args, config))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (ApiError, Sungrow2MqttError, OSError) as exc:
        if args.verbose:
            log.exception("Failed")
        fail(describe_error(exc))
        return EXIT_CONFIG if isinstance(exc, (ConfigError, CatalogError)) else EXIT_FAILURE
    except Exception as exc:   # an answer nobody foresaw: one line still, the traceback with -v
        if args.verbose:
            log.exception("Failed")
        fail(f"unexpected {type(exc).__name__}: {str(exc)[:200]} (-v shows where)")
        return EXIT_FAILURE
