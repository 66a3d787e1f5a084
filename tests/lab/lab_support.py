"""Helpers of the lab tests (the ``Lab`` handle, ``socle`` runner, fleet constants), in a module name no
other test directory uses: two directories' ``conftest`` modules would shadow each other on import."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ght_socle.lab import vm

SOCLE = [sys.executable, "-m", "ght_socle.cli"]

# The fleet a session boots: every kind of host of the lab stack once (bastion, HDS application
# server, log collector and backup tier, workstation). app-02, the HA twin of app-01, adds nothing
# the roles or the conformance suites would see differently, and each VM under emulation slows every
# other one on a 2-core runner. SOCLE_LAB_HOSTS=all boots the whole stack, or names another subset.
CI_FLEET = "app-01,logbak-01,wks-01"


def socle(*args: str, env: dict[str, str] | None = None, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Run the real ``socle`` command line (progress on stderr is kept for failure messages)."""
    return subprocess.run([*SOCLE, *args], capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


@dataclass
class Lab:
    inventory: Path
    bastion: str
    hosts: list[str]
    groups: dict[str, list[str]]
    addresses: dict[str, dict[str, str]]
    state_dir: Path
    booted_here: bool = False
    env: dict[str, str] = field(default_factory=dict)

    @property
    def ssh_config(self) -> Path:
        return self.inventory / "ssh_config"

    def group(self, name: str) -> list[str]:
        return self.groups.get(name, [])

    def run(self, host: str, command: str, sudo: bool = False,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        remote = f"sudo -n sh -c {shlex.quote(command)}" if sudo else command
        argv = ["ssh", "-F", str(self.ssh_config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=90", host, remote]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)


def lab_from_status(state_dir: Path, booted_here: bool, env: dict[str, str] | None = None) -> Lab:
    """A :class:`Lab` handle for the lab whose state is in ``state_dir`` (as `socle lab status` sees it)."""
    status = socle("lab", "status", "--format", "json", env=env)
    if status.returncode != 0:
        raise AssertionError(f"socle lab status failed ({status.returncode}): {status.stdout}{status.stderr}")
    data = json.loads(status.stdout)
    groups: dict[str, list[str]] = {}
    for entry in data["vms"]:
        for group in entry["groups"]:
            groups.setdefault(group, []).append(entry["name"])
    bastion = next(entry["name"] for entry in data["vms"] if entry["bastion"])
    return Lab(inventory=Path(data["inventory"]), bastion=bastion, hosts=[e["name"] for e in data["vms"]],
               groups=groups, addresses={e["name"]: e["addresses"] for e in data["vms"]}, state_dir=state_dir,
               booted_here=booted_here, env=dict(env or {}))


def lab_is_running(env: dict[str, str] | None = None) -> bool:
    status = socle("lab", "status", "--format", "json", env=env)
    return status.returncode == 0


def leftover_qemu(state_dir: Path) -> list[int]:
    """QEMU processes whose command line names this lab's VM directory."""
    return vm.lab_qemu_pids(str(state_dir / "vms") + "/")


