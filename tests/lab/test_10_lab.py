"""The lab itself: access through the bastion, PSSI partition layout, zone isolation, reliability.

Runs on the session lab (``lab`` fixture, see conftest.py). The crash and idempotency checks that
need to kill a VM use a throwaway second lab (its own ``SOCLE_STATE``, namespace and port) holding
only the bastion, so the shared lab is never disturbed.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Lab, lab_from_status, leftover_qemu, socle

SEPARATE_MOUNTS = ("/tmp", "/var", "/var/tmp", "/var/log", "/var/log/audit", "/home")

# Prints open | refused | timeout for a TCP connection from the VM (refused means the packet got
# through the network and the host answered: the path is open).
PROBE = ("python3 -c 'import socket,sys\n"
         "s=socket.socket(); s.settimeout(6)\n"
         "try:\n s.connect((sys.argv[1], int(sys.argv[2]))); print(\"open\")\n"
         "except ConnectionRefusedError: print(\"refused\")\n"
         "except OSError: print(\"timeout\")' {address} {port}")


def probe(lab: Lab, source: str, address: str, port: int) -> str:
    result = lab.run(source, PROBE.format(address=address, port=port))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def non_bastion(lab: Lab) -> str:
    return next(h for h in lab.hosts if h != lab.bastion)


def test_command_runs_on_a_vm_behind_the_bastion(lab: Lab) -> None:
    host = non_bastion(lab)
    config = lab.ssh_config.read_text()
    block = config.split(f"Host {host}\n", 1)[1].split("\nHost ", 1)[0]
    assert f"ProxyJump {lab.bastion}" in block
    assert "StrictHostKeyChecking yes" in block
    result = lab.run(host, "hostname; uname -s")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [host, "Linux"]
    # The CLI path as documented: socle lab ssh NAME -- COMMAND
    cli = socle("lab", "ssh", host, "--", "hostname", env=lab.env)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.strip() == host


def test_only_the_bastion_is_reachable_from_the_host(lab: Lab) -> None:
    config = lab.ssh_config.read_text()
    bastion_block = config.split(f"Host {lab.bastion}\n", 1)[1].split("\nHost ", 1)[0]
    assert "HostName 127.0.0.1" in bastion_block
    for host in lab.hosts:
        if host != lab.bastion:
            block = config.split(f"Host {host}\n", 1)[1].split("\nHost ", 1)[0]
            assert "127.0.0.1" not in block


def test_partition_layout_is_the_pssi_one(lab: Lab) -> None:
    host = non_bastion(lab)
    result = lab.run(host, "findmnt --json --real -o TARGET,SOURCE,FSTYPE")
    assert result.returncode == 0, result.stderr
    mounts: dict[str, dict[str, str]] = {}

    def walk(nodes: list[dict[str, object]]) -> None:
        for node in nodes:
            mounts[str(node["target"])] = {"source": str(node["source"]), "fstype": str(node["fstype"])}
            walk(node.get("children", []))  # type: ignore[arg-type]

    walk(json.loads(result.stdout)["filesystems"])
    for target in ("/", *SEPARATE_MOUNTS):
        assert target in mounts, f"{target} is not a separate filesystem on {host}: {sorted(mounts)}"
        assert mounts[target]["fstype"] == "ext4"
    sources = [mounts[t]["source"] for t in ("/", *SEPARATE_MOUNTS)]
    assert len(set(sources)) == len(sources), f"filesystems share a device: {sources}"


def test_zones_are_isolated_except_declared_flows(lab: Lab) -> None:
    workstation = lab.group("linux_workstations")[0]
    backup_server = lab.group("backup_server")[0]
    backup_address = lab.addresses[backup_server]["backup"]
    assert "backup" not in lab.addresses[workstation]
    # Declared flow (administration from the bastion only): the bastion reaches the backup zone.
    assert probe(lab, lab.bastion, backup_address, 22) == "open"
    # No flow from the workstation zone to SSH in the backup zone: the lab router drops it.
    assert probe(lab, workstation, backup_address, 22) == "timeout"
    # Nor to the bastion's SSH (only the admin networks may).
    assert probe(lab, workstation, lab.addresses[lab.bastion]["admin"], 22) == "timeout"


def test_vms_reach_debians_registry_through_their_nat_nic(lab: Lab) -> None:
    host = non_bastion(lab)
    url = "http://deb.debian.org/debian/dists/bookworm/Release"
    result = lab.run(host, f"python3 -c 'import urllib.request as u; print(u.urlopen(\"{url}\", timeout=30).status)'")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200"


def test_up_twice_is_idempotent_on_the_session_lab(lab: Lab) -> None:
    before = json.loads(socle("lab", "status", "--format", "json", env=lab.env).stdout)
    again = socle("lab", "up", env=lab.env)
    assert again.returncode == 0, again.stderr
    after = json.loads(socle("lab", "status", "--format", "json", env=lab.env).stdout)
    assert [(v["name"], v["pid"]) for v in after["vms"]] == [(v["name"], v["pid"]) for v in before["vms"]]
    assert all(v["status"] == "running" for v in after["vms"])


@pytest.fixture
def throwaway_lab(lab: Lab, tmp_path: Path) -> Iterator[Lab]:
    """A second lab of the bastion alone, in its own state directory; always taken down."""
    env = {"SOCLE_STATE": str(tmp_path / "state")}
    state_dir = tmp_path / "state" / "lab"
    try:
        up = socle("lab", "up", "--hosts", lab.bastion, env=env)
        assert up.returncode == 0, up.stderr[-3000:]
        yield lab_from_status(state_dir, booted_here=True, env=env)
    finally:
        down = socle("lab", "down", env=env)
        assert down.returncode == 0, down.stderr
        assert leftover_qemu(state_dir) == []
        assert not (state_dir / "lab.json").exists()


def test_status_reports_a_killed_vm_as_crashed(throwaway_lab: Lab) -> None:
    lab = throwaway_lab
    status = json.loads(socle("lab", "status", "--format", "json", env=lab.env).stdout)
    assert [v["status"] for v in status["vms"]] == ["running"]
    # up again: nothing restarted
    again = socle("lab", "up", env=lab.env)
    assert again.returncode == 0, again.stderr
    assert json.loads(socle("lab", "status", "--format", "json", env=lab.env).stdout)["vms"][0]["pid"] == \
        status["vms"][0]["pid"]
    pid = status["vms"][0]["pid"]
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes():
            break
        time.sleep(0.1)
    crashed = socle("lab", "status", "--format", "json", env=lab.env)
    assert crashed.returncode == 1
    assert json.loads(crashed.stdout)["vms"][0]["status"] == "crashed"
    text = socle("lab", "status", env=lab.env)
    assert text.returncode == 1
    assert "crashed" in text.stdout
