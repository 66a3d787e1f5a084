"""The session lab: real QEMU VMs of the ``lab`` stack, booted once for every test under tests/lab.

Use the ``lab`` fixture (session scope) in any ``tests/lab/test_*.py``::

    def test_auditd_runs(lab):
        result = lab.run("app-01", "systemctl is-active auditd", sudo=True)
        assert result.stdout.strip() == "active"

``lab`` is a :class:`Lab`:

* ``lab.inventory``: the inventory directory (``hosts.yml``, ``ssh_config``, ``known_hosts``), e.g. for
  ``socle harden --inventory`` / ``socle conform --inventory``;
* ``lab.hosts``: every VM name; ``lab.groups``: inventory group -> VM names (``lab.group("dpi_app")``);
  ``lab.bastion``: the bastion's name; ``lab.addresses``: VM -> {zone: address};
* ``lab.run(host, command, sudo=False, timeout=300)``: runs a shell command on ``host`` over the real
  ssh_config (ProxyJump through the bastion, host keys checked) and returns the
  ``subprocess.CompletedProcess`` (text); it never raises on a non-zero exit status.

A session boots the CI fleet (``CI_FLEET``: one host of each kind; ``SOCLE_LAB_HOSTS=all`` for the whole
stack). A lab that is already up (``socle lab up`` before pytest) is reused (VMs not running are restarted)
and left running. A lab this session booted is taken down at the end, and the session then asserts
that no QEMU process of the lab is left; set ``SOCLE_LAB_KEEP=1`` to keep it for the next run.
Every test here is marked ``lab``.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ght_socle.lab import manager, vm

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    state_dir = manager.lab_state_dir()
    # A lab that exists (even with a crashed VM) belongs to whoever started it: `up` restarts what is
    # not running, and the session leaves that lab up at the end.
    existed = (state_dir / manager.STATE_FILE).exists()
    if not (existed and lab_is_running()):
        fleet = os.environ.get("SOCLE_LAB_HOSTS", CI_FLEET)
        up = socle("lab", "up", *([] if fleet == "all" else ["--hosts", fleet]))
        if up.returncode != 0:
            raise AssertionError(f"socle lab up failed ({up.returncode}):\n{up.stderr[-3000:]}")
    handle = lab_from_status(state_dir, booted_here=not existed)
    yield handle
    if handle.booted_here and os.environ.get("SOCLE_LAB_KEEP") != "1":
        down = socle("lab", "down")
        assert down.returncode == 0, down.stderr
        assert leftover_qemu(state_dir) == [], "QEMU processes of the lab left after socle lab down"
