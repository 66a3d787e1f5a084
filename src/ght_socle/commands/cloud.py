"""`socle cloud`: a local OpenStack from Debian 12's packages, for the stacks to preview (and next, deploy) against.

``up --control-plane`` installs the packages when missing, starts MariaDB and the API services as
plain processes on 127.0.0.1, syncs their schemas, registers the catalog and seeds what the stack
configs name; ``status`` checks every process through its API; ``down`` stops them by pid.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ght_socle.cloud.layout import CLOUD_NAME, Layout
from ght_socle.output import add_format_option, print_json, progress, table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "cloud", help="start, inspect and stop a local OpenStack (Debian 12 packages, loopback only)",
        description="A local OpenStack for the stacks: Keystone, Glance, Placement, Nova API, Neutron server and "
                    "Cinder API from Debian 12's packages, as processes listening on 127.0.0.1. State, "
                    "configuration, logs and credentials in $SOCLE_STATE/cloud (default .socle/cloud).")
    actions = parser.add_subparsers(dest="cloud_action", metavar="ACTION")
    actions.required = True

    up = actions.add_parser("up", help="install when missing, start and seed the local cloud (idempotent)")
    up.add_argument("--control-plane", action="store_true",
                    help="the API services only (no compute, no network agents, no block storage backend)")
    up.set_defaults(handler=_up)

    status = actions.add_parser("status", help="running / not answering / dead per process (exit 1 unless all run)")
    add_format_option(status)
    status.set_defaults(handler=_status)

    down = actions.add_parser("down", help="stop every process `up` started")
    down.add_argument("--purge", action="store_true",
                      help="also remove the state directory (databases, images, credentials, logs)")
    down.set_defaults(handler=_down)


def _terminate(signum: int, _frame: object) -> None:
    # A terminated `up` must stop what it started, as an interrupted one does.
    raise KeyboardInterrupt(f"signal {signum}")


def _up(args: argparse.Namespace) -> int:
    from ght_socle.cloud import manager  # the OpenStack SDK (`cloud` extra), only when a cloud is managed

    signal.signal(signal.SIGTERM, _terminate)
    layout = Layout.default()
    result = manager.up(progress, control_plane=args.control_plane, layout=layout)
    how = f"{len(result.started)} started, {len(result.reused)} reused"
    print(f"cloud up: control plane of region {result.state.region} ({how})")
    _print_rows(manager.status(layout))
    print(f"\nimage:   {result.state.image_source or 'already in Glance'}")
    print(f"clouds:  export OS_CLIENT_CONFIG_FILE={layout.clouds_yaml} OS_CLOUD={CLOUD_NAME}")
    print(f"or:      . {layout.openrc}      (Python: ght_socle.cloud.client_env())")
    print("next:    openstack image list; socle cloud status; socle cloud down")
    return 0


def _print_rows(rows: list[dict[str, object]]) -> None:
    table(([r["name"], r["status"], r["pid"], r["listen"], r["rss_mib"], r["log"]] for r in rows),
          ["process", "status", "pid", "listen", "RSS MiB", "log"])


def _status(args: argparse.Namespace) -> int:
    from ght_socle.cloud import manager  # the OpenStack SDK (`cloud` extra), only when a cloud is managed

    layout = Layout.default()
    state = manager.require_state(layout)
    rows = manager.status(layout)
    if args.format == "json":
        print_json({"region": state.region, "plane": state.plane, "clouds_yaml": str(layout.clouds_yaml),
                    "image_source": state.image_source, "processes": rows})
    else:
        if rows:
            _print_rows(rows)
        print(f"\nimage: {state.image_source or '-'}\nclouds.yaml: {layout.clouds_yaml} (cloud {CLOUD_NAME})")
        for row in rows:
            if row["status"] != "running":
                print(f"{row['name']} is {row['status']}: see {row['log']}; `socle cloud up --control-plane` "
                      "restarts it", file=sys.stderr)
        if not rows:
            print("no process running: `socle cloud up --control-plane` starts them", file=sys.stderr)
    return 0 if rows and all(r["status"] == "running" for r in rows) else 1


def _down(args: argparse.Namespace) -> int:
    from ght_socle.cloud import manager  # the OpenStack SDK (`cloud` extra), only when a cloud is managed

    if manager.down(progress, purge=args.purge):
        what = "and state removed" if args.purge else f"(state kept in {Layout.default().root})"
        print(f"cloud down: every process stopped {what}")
    else:
        print("no local cloud to take down")
    return 0
