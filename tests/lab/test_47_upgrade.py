"""Hardening that lasts: a hardened host upgraded from Debian's packages conforms as it did before.

On the log collector of the hardened fleet, as ops and unattended-upgrades would: `apt-get upgrade`
then `apt-get dist-upgrade` to the latest Debian 12 point release, with no option on the command line
(the updates role's apt configuration answers the conffile questions: --force-confdef --force-confold).
The fleet's image is often already at the latest point release, so the conffile path of dpkg is also
taken for real: every installed package of CONFFILE_PACKAGES whose configuration file the roles changed
is downloaded, rebuilt with a higher version that ships a changed copy of its conffiles (dpkg-deb) and
installed by apt-get from the file. dpkg then faces the case that prompts: changed here and in the new
package. The roles' file must stay, the package's version be left beside it as ``*.dpkg-dist``, and every
rule that passed or was waived before must do so after.

Runs after the reboot test (test_45) and before the drift tests (test_50), which inject drift on another
host: this one keeps the rebuilt packages (their version, ``+0ght1``, sorts below any Debian update, so a
later point release still replaces them).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any

import pytest
from conform_lab import ConformRun, conform, ensure_hardened
from lab_support import Lab

# Packages whose conffiles the roles may change (IAM-004 login.defs, ADM-006 sudoers, LOG-002 auditd.conf,
# NET-011 nftables.conf, LOG-003 rsyslog.conf); only those the roles did change on the host are rebuilt.
CONFFILE_PACKAGES = ("login", "sudo", "auditd", "nftables", "rsyslog")
VERSION_SUFFIX = "+0ght1"
WORK_DIR = "/root/.upgrade-conffiles"
UPGRADE_TIMEOUT = 2400
APT = "apt-get -q -y -o DPkg::Lock::Timeout=900"  # the daily apt timers may hold the lock for a while

# Every conffile of the installed packages, its sha256 and whether it differs from the package's (dpkg's md5).
SNAPSHOT = r"""python3 - <<'PY'
import hashlib, json, os, subprocess
out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\n${Conffiles}\n"], capture_output=True,
                     text=True, check=True).stdout
conffiles, versions, package = {}, {}, None
for line in out.splitlines():
    if not line.startswith(" "):
        package, _, version = line.partition("\t")
        versions[package] = version
        continue
    fields = line.split()
    if len(fields) < 2 or "obsolete" in fields[2:] or not os.path.isfile(fields[0]):
        continue
    data = open(fields[0], "rb").read()
    conffiles[fields[0]] = {"package": package, "sha256": hashlib.sha256(data).hexdigest(),
                            "changed_here": hashlib.md5(data).hexdigest() != fields[1],
                            "dpkg_dist": os.path.exists(fields[0] + ".dpkg-dist")}
options = subprocess.run(["apt-config", "dump", "DPkg::Options"], capture_output=True, text=True).stdout
print(json.dumps({"conffiles": conffiles, "versions": versions, "dpkg_options": options,
                  "debian_version": open("/etc/debian_version").read().strip()}))
PY"""

# A daily apt run that fired meanwhile holds the package lists' lock, which has no timeout: let it end.
UPGRADE = f"""set -eu
export DEBIAN_FRONTEND=noninteractive
while systemctl is-active --quiet apt-daily.service apt-daily-upgrade.service; do sleep 5; done
{APT} update
{APT} upgrade </dev/null
{APT} dist-upgrade </dev/null
"""


def rebuild_script(packages: list[str]) -> str:
    """Download each package, bump its version, append a line to each of its conffiles, install them all."""
    names = " ".join(shlex.quote(p) for p in packages)
    return f"""set -eu
export DEBIAN_FRONTEND=noninteractive
rm -rf {WORK_DIR}; mkdir -m 700 {WORK_DIR}; cd {WORK_DIR}
for pkg in {names}; do
  {APT} download "$pkg" 2>&1
  deb=$(ls "$pkg"_*.deb)
  version=$(dpkg-deb -f "$deb" Version)
  dpkg-deb -R "$deb" "$pkg.tree"
  sed -i "s/^Version: .*/Version: $version{VERSION_SUFFIX}/" "$pkg.tree/DEBIAN/control"
  while read -r conffile; do
    printf '# %s %s: a line new in this version of the package\\n' "$pkg" "$version{VERSION_SUFFIX}" \\
      >> "$pkg.tree$conffile"
  done < "$pkg.tree/DEBIAN/conffiles"
  dpkg-deb -b "$pkg.tree" "bumped-$pkg.deb" >/dev/null
done
{APT} install ./bumped-*.deb </dev/null
rm -rf {WORK_DIR}
"""


@dataclass
class UpgradeRuns:
    host: str
    before: ConformRun
    snapshot_before: dict[str, Any]
    upgrade: subprocess.CompletedProcess[str]
    rebuilt: list[str]
    rebuild: subprocess.CompletedProcess[str]
    snapshot_after: dict[str, Any]
    after: ConformRun

    def owned_conffiles(self, packages: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Conffiles changed on the host before the upgrade (by the roles), of ``packages`` or of all."""
        return {path: info for path, info in self.snapshot_before["conffiles"].items()
                if info["changed_here"] and (packages is None or info["package"] in packages)}


def upgrade_host(lab: Lab) -> str:
    return (lab.group("log_collector") or [h for h in lab.hosts if h != lab.bastion])[0]


def snapshot(lab: Lab, host: str) -> dict[str, Any]:
    result = lab.run(host, SNAPSHOT, sudo=True)
    assert result.returncode == 0, f"{host}: {result.stderr[-2000:]}"
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def upgraded(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> UpgradeRuns:
    hardened = ensure_hardened(lab)
    host = upgrade_host(hardened)
    out = tmp_path_factory.mktemp("upgrade")
    before = conform(hardened, out, "--limit", host)
    snapshot_before = snapshot(hardened, host)
    upgrade = hardened.run(host, UPGRADE, sudo=True, timeout=UPGRADE_TIMEOUT)
    rebuilt = sorted({info["package"] for info in snapshot_before["conffiles"].values()
                      if info["changed_here"] and info["package"] in CONFFILE_PACKAGES})
    assert rebuilt, f"no conffile of {', '.join(CONFFILE_PACKAGES)} is changed on {host}: nothing to rebuild"
    rebuild = hardened.run(host, rebuild_script(rebuilt), sudo=True, timeout=UPGRADE_TIMEOUT)
    return UpgradeRuns(host, before, snapshot_before, upgrade, rebuilt, rebuild, snapshot(hardened, host),
                       conform(hardened, out, "--limit", host))


def test_apt_answers_conffile_questions_the_roles_way(upgraded: UpgradeRuns) -> None:
    options = upgraded.snapshot_before["dpkg_options"]
    assert '"--force-confdef"' in options and '"--force-confold"' in options, options


def test_upgrade_and_dist_upgrade_run_unattended(upgraded: UpgradeRuns) -> None:
    assert upgraded.upgrade.returncode == 0, upgraded.upgrade.stdout[-2000:] + upgraded.upgrade.stderr[-2000:]
    summaries = re.findall(r"^\d+ upgraded, \d+ newly installed.*$", upgraded.upgrade.stdout, re.MULTILINE)
    assert len(summaries) == 2, upgraded.upgrade.stdout[-3000:]
    print(f"\n{upgraded.host}: Debian {upgraded.snapshot_before['debian_version']} -> "
          f"{upgraded.snapshot_after['debian_version']}; upgrade: {summaries[0]}; dist-upgrade: {summaries[1]}")


def test_rebuilt_packages_with_changed_conffiles_are_installed(upgraded: UpgradeRuns) -> None:
    assert upgraded.rebuild.returncode == 0, upgraded.rebuild.stdout[-3000:] + upgraded.rebuild.stderr[-2000:]
    versions = upgraded.snapshot_after["versions"]
    assert all(versions[p].endswith(VERSION_SUFFIX) for p in upgraded.rebuilt), \
        {p: versions[p] for p in upgraded.rebuilt}


def test_conffiles_the_roles_changed_survive_and_the_packages_copy_is_set_aside(upgraded: UpgradeRuns) -> None:
    owned = upgraded.owned_conffiles(upgraded.rebuilt)
    after = upgraded.snapshot_after["conffiles"]
    replaced = [path for path, info in owned.items() if after[path]["sha256"] != info["sha256"]]
    assert not replaced, f"the upgrade replaced the roles' files: {replaced}"
    not_set_aside = [path for path in owned if not after[path]["dpkg_dist"]]
    assert not not_set_aside, f"no .dpkg-dist beside {not_set_aside}: dpkg did not see a new version"


def test_other_conffiles_the_roles_own_survive_the_upgrade(upgraded: UpgradeRuns) -> None:
    after = upgraded.snapshot_after["conffiles"]
    replaced = [path for path, info in upgraded.owned_conffiles().items()
                if path in after and after[path]["sha256"] != info["sha256"]]
    assert not replaced, f"the upgrade replaced locally changed conffiles: {replaced}"


def test_every_rule_that_held_before_the_upgrade_holds_after(upgraded: UpgradeRuns) -> None:
    lost = []
    after = upgraded.after.statuses(upgraded.host)
    for rule_id, status in sorted(upgraded.before.statuses(upgraded.host).items()):
        if status in ("pass", "waived") and after.get(rule_id) != status:
            row = upgraded.after.row(upgraded.host, rule_id)
            lost.append(f"  {rule_id} {status} -> {row['status']}: {row['message']} {row['evidence'][:3]}")
    assert not lost, f"rules lost on {upgraded.host} at the upgrade:\n" + "\n".join(lost)
