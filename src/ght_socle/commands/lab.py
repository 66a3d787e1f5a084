"""`socle lab`: the local lab, a real fleet of Debian 12 VMs under QEMU standing in for the base.

``up`` boots one VM per instance the ``lab`` stack declares (same names, zones, groups and
cloud-init user-data), ``status`` says which run, ``ssh`` opens a session or runs a command through
the bastion, ``inventory`` rewrites the Ansible inventory, ``reboot`` reboots guests for real and
waits for SSH, ``down`` removes everything ``up`` made.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ght_socle.lab import manager
from ght_socle.lab import reboot as lab_reboot
from ght_socle.output import add_format_option, print_json, progress, table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "lab", help="boot, inspect and remove the local lab (QEMU VMs of the lab stack)",
        description="The local lab: one QEMU VM per instance of the `lab` stack, zones as separate L2 "
                    "segments behind a filtering router, only the bastion reachable (127.0.0.1). State in "
                    "$SOCLE_STATE/lab (default .socle/lab); set SOCLE_STATE to run a second lab beside the first.")
    actions = parser.add_subparsers(dest="lab_action", metavar="ACTION")
    actions.required = True

    up = actions.add_parser("up", help="build/reuse the golden image and boot the lab (idempotent)")
    up.add_argument("--ssh-port", type=int, default=None,
                    help="port on 127.0.0.1 forwarded to the bastion's SSH (default: a free port)")
    up.add_argument("--timeout", type=float, default=manager.SSH_WAIT_SECONDS, metavar="SECONDS",
                    help=f"how long to wait for SSH on every VM (default {manager.SSH_WAIT_SECONDS:.0f})")
    up.add_argument("--hosts", default=None, metavar="NAME[,NAME...]",
                    help="boot only these instances of the lab stack (the bastion always comes too)")
    up.add_argument("--cold", action="store_true",
                    help="boot every VM from scratch, neither resuming nor saving the state of a first boot")
    up.set_defaults(handler=_up)

    status = actions.add_parser("status", help="running / crashed / stopped per VM (exit 1 if any is not running)")
    add_format_option(status)
    status.set_defaults(handler=_status)

    ssh = actions.add_parser("ssh", help="ssh to a lab VM through the bastion: socle lab ssh NAME [-- COMMAND]")
    ssh.add_argument("name", help="VM name (e.g. app-01)")
    ssh.add_argument("remote_command", nargs=argparse.REMAINDER, help="command to run (after --)")
    ssh.set_defaults(handler=_ssh)

    inventory = actions.add_parser("inventory", help="rewrite the lab inventory (hosts.yml, ssh_config, known_hosts)")
    inventory.set_defaults(handler=_inventory)

    reboot = actions.add_parser("reboot", help="reboot lab VMs for real (systemctl reboot in the guest) and wait "
                                               "for SSH: socle lab reboot [NAME...]")
    reboot.add_argument("names", nargs="*", metavar="NAME", help="VMs to reboot (default: every VM)")
    reboot.add_argument("--timeout", type=float, default=lab_reboot.REBOOT_WAIT_SECONDS, metavar="SECONDS",
                        help=f"how long to wait for SSH again (default {lab_reboot.REBOOT_WAIT_SECONDS:.0f})")
    add_format_option(reboot)
    reboot.set_defaults(handler=_reboot)

    down = actions.add_parser("down", help="stop every lab VM and remove overlays, seeds, network and state")
    down.set_defaults(handler=_down)


def _terminate(signum: int, _frame: object) -> None:
    # A terminated `up` must clean what it started, as an interrupted one does.
    raise KeyboardInterrupt(f"signal {signum}")


def _up(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    only = [name.strip() for name in args.hosts.split(",") if name.strip()] if args.hosts else None
    state = manager.up(progress, ssh_port=args.ssh_port, only=only, wait_seconds=args.timeout, cold=args.cold)
    fleet = state.fleet_model()
    inventory = manager.inventory_dir()
    resumed = sum(entry.resumed for entry in state.vms.values())
    how = f", {resumed} resumed from a saved first boot" if resumed else ""
    print(f"lab up: {len(fleet.hosts)} VMs ({state.accelerator.upper()}{how}), bastion {fleet.bastion} on "
          f"127.0.0.1:{state.ssh_port}")
    table(([h.name, h.zone, ", ".join(h.addresses.values()), ", ".join(h.groups[:3])] for h in fleet.hosts),
          ["name", "zone", "addresses", "groups"])
    other = next((h.name for h in fleet.hosts if not h.is_bastion), fleet.bastion)
    print(f"\ninventory: {inventory}")
    print(f"ssh:       socle lab ssh {other} -- uname -a    (or ssh -F {inventory / 'ssh_config'} {other})")
    print(f"next:      socle harden --inventory {inventory}")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = manager.require_state()
    rows = manager.status(state)
    if args.format == "json":
        print_json({"namespace": state.namespace, "accelerator": state.accelerator, "ssh_port": state.ssh_port,
                    "inventory": str(manager.inventory_dir()), "vms": rows})
    else:
        table(([r["name"], r["zone"], ", ".join(r["addresses"].values()), r["status"], r["pid"] or "-"]
               for r in rows), ["name", "zone", "addresses", "status", "pid"])
        not_running = [r["name"] for r in rows if r["status"] != "running"]
        if not_running:
            print(f"\n{len(not_running)} VM(s) not running: `socle lab up` restarts them", file=sys.stderr)
    return 0 if all(r["status"] == "running" for r in rows) else 1


def _ssh(args: argparse.Namespace) -> int:
    command = list(args.remote_command)
    if command and command[0] == "--":
        command = command[1:]
    return manager.ssh(manager.require_state(), args.name, command)


def _inventory(args: argparse.Namespace) -> int:
    target = manager.write_inventory(manager.require_state())
    print(f"lab inventory written to {target} (hosts.yml, ssh_config, known_hosts)")
    print(f"next: socle harden --inventory {target}")
    return 0


def _reboot(args: argparse.Namespace) -> int:
    rebooted = lab_reboot.reboot(manager.require_state(), list(args.names), progress, wait_seconds=args.timeout)
    if args.format == "json":
        print_json({"rebooted": [{"name": r.name, "seconds_to_ssh": r.seconds_to_ssh} for r in rebooted]})
        return 0
    table(([r.name, f"{r.seconds_to_ssh:.1f}"] for r in rebooted), ["name", "reboot to SSH (s)"])
    print("\nnext: socle conform --inventory " + str(manager.inventory_dir()) + "   (what the host's files give it)")
    return 0


def _down(args: argparse.Namespace) -> int:
    if manager.down(progress):
        print("lab down: every VM stopped, overlays, seeds, network namespace and state removed")
    else:
        print("no lab to take down")
    return 0
