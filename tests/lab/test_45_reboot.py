"""Hardening that lasts: the hardened fleet, rebooted for real, conforms as it did before the reboot.

A setting applied to the running system only (a value loaded but undone by a file read later at
boot, a service started but not enabled, a rule loaded but not saved) passes a check made right
after the converge and is lost at the next boot. Every VM is rebooted from inside the guest
(`socle lab reboot`: `systemctl reboot`, not a QEMU state restore), all at once, and every rule that
passed or was waived before must do so again. Runs after the hardened fleet's conformance
(test_40) and before the drift tests (test_50), which then start from a rebooted fleet.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

import pytest
from conform_lab import ConformRun, conform, ensure_hardened
from lab_support import Lab, socle

BOOT_ID = "cat /proc/sys/kernel/random/boot_id"
REBOOT_TIMEOUT = 1800


@dataclass
class RebootRuns:
    before: ConformRun
    boot_ids_before: dict[str, str]
    reboot: subprocess.CompletedProcess[str]
    boot_ids_after: dict[str, str]
    after: ConformRun


def boot_ids(lab: Lab) -> dict[str, str]:
    ids = {}
    for host in lab.hosts:
        result = lab.run(host, BOOT_ID)
        assert result.returncode == 0, f"{host}: {result.stderr[-1000:]}"
        ids[host] = result.stdout.strip()
    return ids


@pytest.fixture(scope="module")
def rebooted(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> RebootRuns:
    hardened = ensure_hardened(lab)
    out = tmp_path_factory.mktemp("reboot")
    before = conform(hardened, out)
    ids_before = boot_ids(hardened)
    reboot = socle("lab", "reboot", "--format", "json", env=hardened.env, timeout=REBOOT_TIMEOUT)
    return RebootRuns(before, ids_before, reboot, boot_ids(hardened), conform(hardened, out))


def test_every_vm_rebooted_for_real_and_answers_ssh(lab: Lab, rebooted: RebootRuns) -> None:
    assert rebooted.reboot.returncode == 0, rebooted.reboot.stderr[-3000:]
    reported = {entry["name"] for entry in json.loads(rebooted.reboot.stdout)["rebooted"]}
    assert reported == set(lab.hosts)
    same = [host for host in lab.hosts if rebooted.boot_ids_after[host] == rebooted.boot_ids_before[host]]
    assert not same, f"boot id unchanged (not rebooted): {same}"


def test_every_rule_that_held_before_the_reboot_holds_after(lab: Lab, rebooted: RebootRuns) -> None:
    lost = []
    for host in lab.hosts:
        after = rebooted.after.statuses(host)
        for rule_id, status in sorted(rebooted.before.statuses(host).items()):
            if status in ("pass", "waived") and after.get(rule_id) != status:
                row = rebooted.after.row(host, rule_id)
                lost.append(f"  {host} {rule_id} {status} -> {row['status']}: {row['message']} {row['evidence'][:3]}")
    assert not lost, "rules lost at the reboot:\n" + "\n".join(lost)
    assert rebooted.after.code == rebooted.before.code, rebooted.after.stdout[-2000:]


def test_hardened_kernel_parameters_are_the_boot_values(lab: Lab, rebooted: RebootRuns) -> None:
    # Debian's /usr/lib/sysctl.d/99-protect-links.conf sets 1 at boot; the hardened file must come later.
    for host in lab.hosts:
        result = lab.run(host, "cat /proc/sys/fs/protected_fifos")
        assert result.returncode == 0 and result.stdout.strip() == "2", f"{host}: {result.stdout}{result.stderr}"
