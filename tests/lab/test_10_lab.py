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
from lab_support import Lab, lab_from_status, leftover_qemu, socle

from ght_socle import paths

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


@pytest.fixture(scope="module")
def throwaway_lab(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A second lab of the bastion alone, in its own state directory; always taken down.

    It has its own cache of saved states (the golden images are shared), so it boots cold and saves
    its first boot whatever the session lab did.
    """
    base = tmp_path_factory.mktemp("throwaway")
    cache = base / "cache"
    cache.mkdir()
    for shared in ("images", "accelerator.json"):  # the golden images and the KVM probe's verdict
        if (paths.cache_dir() / shared).exists():
            (cache / shared).symlink_to(paths.cache_dir() / shared)
    env = {"SOCLE_STATE": str(base / "state"), "SOCLE_CACHE": str(cache)}
    state_dir = base / "state" / "lab"
    try:
        up = socle("lab", "up", "--hosts", lab.bastion, env=env)
        assert up.returncode == 0, up.stderr[-3000:]
        yield lab_from_status(state_dir, booted_here=True, env=env)
    finally:
        down = socle("lab", "down", env=env)
        assert down.returncode == 0, down.stderr
        assert leftover_qemu(state_dir) == []
        assert not (state_dir / "lab.json").exists()


def _guest(lab: Lab, command: str) -> str:
    result = lab.run(lab.bastion, command)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_new_lab_of_the_same_plan_resumes_the_saved_first_boot(throwaway_lab: Lab) -> None:
    lab = throwaway_lab
    first = json.loads(socle("lab", "status", "--format", "json", env=lab.env).stdout)["vms"]
    assert [v["resumed"] for v in first] == [False]
    saved = list((Path(lab.env["SOCLE_CACHE"]) / "lab-states").glob("*/saved.json"))
    assert len(saved) == 1, "the cold up did not save the state of its first boot"
    boot_id = _guest(lab, "cat /proc/sys/kernel/random/boot_id")
    assert socle("lab", "down", env=lab.env).returncode == 0
    # Let the saved clock fall well behind, so that a resume without the clock step would show.
    time.sleep(max(0.0, 20 - (time.time() - saved[0].stat().st_mtime)))

    again = socle("lab", "up", "--hosts", lab.bastion, env=lab.env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from a saved first boot" in again.stdout
    second = json.loads(socle("lab", "status", "--format", "json", env=lab.env).stdout)["vms"]
    assert [(v["resumed"], v["status"]) for v in second] == [(True, "running")]
    # The same booted system (not a second boot), over SSH with the host keys recorded at the save,
    assert _guest(lab, "cat /proc/sys/kernel/random/boot_id") == boot_id
    # its clock set from the host's,
    assert abs(float(_guest(lab, "date +%s.%N")) - time.time()) < 10
    # and the generation-id device bound, through which the kernel reseeds its random generator.
    assert "QEMUVGID" in _guest(lab, "ls /sys/bus/acpi/drivers/vmgenid/")


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


def test_a_damaged_saved_state_fails_up_cleanly_and_is_discarded(throwaway_lab: Lab) -> None:
    # Last user of the throwaway lab: it ends with no lab, which the fixture's teardown accepts.
    lab = throwaway_lab
    assert socle("lab", "down", env=lab.env).returncode == 0
    saved = next((Path(lab.env["SOCLE_CACHE"]) / "lab-states").glob("*/saved.json")).parent
    vmstate = saved / lab.bastion / "vmstate"
    vmstate.write_bytes(vmstate.read_bytes()[:4096])  # a state cut short (disk full, interrupted copy)
    up = socle("lab", "up", "--hosts", lab.bastion, env=lab.env)
    assert up.returncode == 2, up.stdout + up.stderr
    error_lines = [line for line in up.stderr.splitlines() if line.startswith("socle: error:")]
    assert len(error_lines) == 1 and f"{lab.bastion} did not resume" in error_lines[0], up.stderr[-2000:]
    assert "Traceback" not in up.stderr
    assert not saved.exists(), "the damaged state was kept: every up would fail the same way"
    assert leftover_qemu(lab.state_dir) == []
    assert not (lab.state_dir / "lab.json").exists()


# --- checks that need no VM: the plan -> lab translation and the one-line errors ---------------------

def test_router_ruleset_follows_the_stack_security_groups() -> None:
    from ght_socle.lab.fleet import fleet_from_plan
    from ght_socle.lab.network import firewall_ruleset
    from ght_socle.plan import run_plan

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEn9fkn2p5c6d5ceS2sG3qMEBxq7c4s4VEjNYSkIN6eV lab"
    fleet = fleet_from_plan(run_plan(stack="lab", config_overrides={"admin_ssh_keys": [key]}))
    assert all(key in host.user_data for host in fleet.hosts)
    ruleset = firewall_ruleset(fleet)
    assert "chain forward {\n    type filter hook forward priority 0; policy drop;" in ruleset
    ssh_rules = [line for line in ruleset.splitlines() if "tcp dport 22 " in line]
    assert ssh_rules, ruleset
    bastion_addresses = set(fleet.host(fleet.bastion).addresses.values())
    workstation = next(h for h in fleet.hosts if "linux_workstations" in h.groups)
    for rule in ssh_rules:
        if "FLOW-002" in rule:  # administration: from the bastion's addresses only
            sources = rule.split("ip saddr { ", 1)[1].split(" }", 1)[0].split(", ")
            assert set(sources) <= bastion_addresses
        for address in workstation.addresses.values():
            assert f"ip saddr {{ {address}" not in rule


def test_host_keys_are_read_from_the_console_between_cloud_init_markers(tmp_path: Path) -> None:
    from ght_socle.lab.access import host_keys_from_console

    console = tmp_path / "console.log"
    console.write_text("boot...\r\n-----BEGIN SSH HOST KEY KEYS-----\r\n")
    assert host_keys_from_console(console) is None  # not printed completely yet
    console.write_text("boot...\r\n-----BEGIN SSH HOST KEY KEYS-----\r\n"
                       "ecdsa-sha2-nistp256 AAAAE2Vj root@app-01\r\n"
                       "[  99.1] ssh-ed25519 AAAAC3Nz root@app-01\r\n"
                       "-----END SSH HOST KEY KEYS-----\r\n")
    assert host_keys_from_console(console) == ["ecdsa-sha2-nistp256 AAAAE2Vj", "ssh-ed25519 AAAAC3Nz"]


def test_missing_tools_are_one_line_with_the_install_command(tmp_path: Path) -> None:
    result = socle("lab", "up", env={"PATH": str(tmp_path), "SOCLE_STATE": str(tmp_path / "state")})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "apt-get install -y --no-install-recommends" in result.stderr
    assert "qemu-system-x86" in result.stderr


def test_a_taken_port_is_refused_before_anything_is_created(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = socle("lab", "up", "--ssh-port", str(port), env={"SOCLE_STATE": str(tmp_path / "state")})
    assert result.returncode == 2
    assert f"127.0.0.1:{port}" in result.stderr and "already in use" in result.stderr
    assert not (tmp_path / "state" / "lab" / "lab.json").exists()
    assert not (tmp_path / "state" / "lab" / "ssh").exists()
