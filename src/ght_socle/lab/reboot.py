"""Real guest reboots of lab VMs: ``systemctl reboot`` over SSH, then wait until SSH answers again.

A hardened setting that only lives in memory is lost at the next boot; rebooting the guest (not
restoring a QEMU state) is the only way to see what the host's files give it. QEMU runs on across
the reboot (the VMs run without ``-no-reboot``): the guest's reset boots the same kernel and disks.
A reboot is over when SSH answers with a new boot id (``/proc/sys/kernel/random/boot_id``), so an
SSH session that still reached the old system never counts.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ght_socle.errors import SocleError
from ght_socle.lab import access
from ght_socle.lab.manager import LabState, Progress, inventory_dir, vm_status, write_inventory

BOOT_ID = "cat /proc/sys/kernel/random/boot_id"
POLL_SECONDS = 2.0
# Each attempt while the guest is down: the connection is refused or times out fast, then again.
POLL_CONNECT_TIMEOUT = 10
REBOOT_WAIT_SECONDS = 900.0


@dataclass(frozen=True)
class Rebooted:
    name: str
    seconds_to_ssh: float  # from `systemctl reboot` to SSH answering with the new boot id


def _boot_id(ssh_config: Path, name: str, connect_timeout: int = 90) -> str | None:
    argv = access.ssh_command(ssh_config, name, [BOOT_ID], connect_timeout=connect_timeout)
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=connect_timeout + 60,
                                   check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None
    boot_id = completed.stdout.strip()
    return boot_id if completed.returncode == 0 and boot_id else None


def _ask_reboot(ssh_config: Path, name: str) -> float:
    """Send ``systemctl reboot``; return when it was sent (the start of the reboot-to-SSH time)."""
    started = time.monotonic()
    asked = subprocess.run(access.ssh_command(ssh_config, name, ["sudo -n systemctl reboot"]), capture_output=True,
                           text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    # 255: the session was cut by the guest's shutdown (or never opened; the new boot id will tell).
    if asked.returncode not in (0, 255):
        detail = (asked.stderr.strip().splitlines() or [f"exit {asked.returncode}"])[-1]
        raise SocleError(f"{name} refused `systemctl reboot`: {detail}", where="lab")
    return started


def _wait_back(state: LabState, ssh_config: Path, name: str, before: str, started: float, deadline: float,
               progress: Progress) -> Rebooted:
    while True:
        if vm_status(state, name) != "running":
            raise SocleError(f"VM {name} {vm_status(state, name)} during its reboot (console: "
                             f"{state.vm_dir(name) / 'console.log'})", where="lab")
        after = _boot_id(ssh_config, name, connect_timeout=POLL_CONNECT_TIMEOUT)
        if after is not None and after != before:
            seconds = round(time.monotonic() - started, 1)
            progress(f"  {name}: SSH ready {seconds:.0f} s after `systemctl reboot`")
            return Rebooted(name, seconds)
        if time.monotonic() > deadline:
            raise SocleError(f"{name} not back over SSH in time after `systemctl reboot` (console: "
                             f"{state.vm_dir(name) / 'console.log'})", where="lab")
        time.sleep(POLL_SECONDS)


def reboot(state: LabState, names: list[str], progress: Progress,
           wait_seconds: float = REBOOT_WAIT_SECONDS) -> list[Rebooted]:
    """Reboot ``names`` (every VM when empty) at once and wait until each answers SSH again."""
    fleet = state.fleet_model()
    for name in names:
        fleet.host(name)  # clear error on an unknown name
    chosen = names or [host.name for host in fleet.hosts]
    not_running = [name for name in chosen if vm_status(state, name) != "running"]
    if not_running:
        raise SocleError(f"not running: {', '.join(not_running)} (`socle lab up` starts them)", where="lab")
    ssh_config = inventory_dir() / "ssh_config"
    if not ssh_config.exists():
        write_inventory(state)
    progress(f"rebooting {', '.join(chosen)} (systemctl reboot in each guest)")
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        before = dict(zip(chosen, pool.map(lambda name: _boot_id(ssh_config, name), chosen), strict=True))
        silent = [name for name, boot_id in before.items() if boot_id is None]
        if silent:
            raise SocleError(f"no SSH answer from {', '.join(silent)}: nothing rebooted (`socle lab status`)",
                             where="lab")
        # Every other VM is reached through the bastion: they are asked first, the bastion last.
        others = [name for name in chosen if name != fleet.bastion]
        started = dict(zip(others, pool.map(lambda name: _ask_reboot(ssh_config, name), others), strict=True))
        if fleet.bastion in chosen:
            started[fleet.bastion] = _ask_reboot(ssh_config, fleet.bastion)
        deadline = time.monotonic() + wait_seconds
        futures = [pool.submit(_wait_back, state, ssh_config, name, before[name] or "", started[name], deadline,
                               progress) for name in chosen]
        results = [future.result() for future in futures]
    # A VM resumed from a saved first boot had its clock set by `up` after the jump, not its emulated
    # real-time clock, which a boot reads: set it from the host's again, as `up` does after a resume.
    resumed = [name for name in chosen if state.vms[name].resumed]
    if resumed:
        access.set_guest_clocks(ssh_config, resumed)
    return results
